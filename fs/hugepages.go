package fs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// HugeBuffers moves the buffers of regular-file I/O (go-fuse's WRITE payloads and READ
// destinations, our copy_file_range buffer) onto transparent huge pages, the first time
// each is seen.
//
// Each byte of a WRITE is copied by the kernel into the daemon's request buffer, which it
// pins one 4 KiB page at a time (fuse_copy_fill); our O_DIRECT write of the same bytes pins
// the pages again and hands the volume one segment per page. A READ's reply makes the same
// trip backwards. On a huge page the page walks are short and the volume gets a few large
// segments; on a VM each segment also costs the host work. See docs/benchmarks.md.
//
// The buffers are Go heap memory, which Go does not put on huge pages where THP is in
// "madvise" mode (the common default). go-fuse keeps its buffers in pools and reuses them,
// so collapsing each 2 MiB region once (MADV_COLLAPSE, Linux 6.1) reaches nearly every
// request. A collapse keeps the contents (pages never touched become zero pages of the huge
// page, which is what the Go runtime expects of them) and leaves the mapping's flags alone,
// so khugepaged does not come back to it. What it costs: the untouched part of a region
// becomes resident (at most 2 MiB per region, a few regions in all), and the calling thread
// may reclaim or compact memory to get the huge page.
//
// That last cost is why a collapse never runs for a pinned swapfile's I/O, nor while any
// swapfile of the mount is attached to a loop device: reclaim started by the daemon could
// then need swap I/O that only the daemon can serve. A refused collapse (THP "never", an
// older kernel, a region that is not one plain mapping) costs speed only.
type HugeBuffers struct {
	size uintptr // 2 MiB, or 0: no collapsing at all
	// swapAttached reports whether the mount may be serving swap now; nil means never.
	swapAttached func() bool

	mu      sync.Mutex
	regions map[uintptr]regionState // by start address
}

// regionState is what is known of one region: done (collapsed, or refused for good), or
// how many transient failures it has had and when it may be tried again.
type regionState struct {
	done  bool
	tries uint8
	after int64 // unix nanoseconds
}

const (
	// hugeSize is the only huge page size collapsed: the PMD size with 4 KiB pages. Larger
	// ones (arm64 with 64 KiB pages: 512 MiB) would reach beyond Go's heap arenas.
	hugeSize = 2 << 20
	// hugeMin is the smallest buffer worth a region: a bulk transfer. Every bulk request
	// buffer of go-fuse is about 1 MiB.
	hugeMin = 128 << 10
	// maxHugeRegions bounds regions: the daemon's heap is tens of MiB, so more regions than
	// this mean its addresses moved on, and forgetting them costs one more collapse each.
	maxHugeRegions = 4096
	// A region whose collapse failed for a passing reason (its pages pinned by I/O in
	// flight, no free huge page) is tried again after retryAfter, up to maxTries times.
	maxTries   = 5
	retryAfter = time.Second
)

// NewHugeBuffers collapses buffers while swapAttached (nil: never) reports no swapfile of
// the mount attached. swapbench's FUSE floor uses it too, so that its daemon receives
// requests as swapfs does.
func NewHugeBuffers(swapAttached func() bool) *HugeBuffers {
	h := &HugeBuffers{swapAttached: swapAttached, regions: make(map[uintptr]regionState)}
	if thpUsable() {
		h.size = hugeSize
	}
	return h
}

// thpUsable reports whether 2 MiB transparent huge pages may be used: THP is not "never",
// its PMD size is 2 MiB, and GODEBUG does not ask Go to stay off huge pages.
func thpUsable() bool {
	const dir = "/sys/kernel/mm/transparent_hugepage/"
	mode, err := os.ReadFile(dir + "enabled")
	if err != nil || strings.Contains(string(mode), "[never]") {
		return false
	}
	size, err := os.ReadFile(dir + "hpage_pmd_size")
	if err != nil || strings.TrimSpace(string(size)) != fmt.Sprint(hugeSize) {
		return false
	}
	return !strings.Contains(os.Getenv("GODEBUG"), "disablethp=1")
}

// Back collapses the regions p spans that are due. A nil HugeBuffers does nothing.
func (h *HugeBuffers) Back(p []byte) {
	if h == nil || h.size == 0 || len(p) < hugeMin {
		return
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	first := start &^ (h.size - 1)
	last := (start + uintptr(len(p)) - 1) &^ (h.size - 1)
	checked := false
	now := time.Now().UnixNano()
	for region := first; region <= last; region += h.size {
		if !h.due(region, now) {
			continue
		}
		if !checked {
			if h.swapAttached != nil && h.swapAttached() {
				return // not recorded: tried again once the swapfiles are detached
			}
			checked = true
		}
		h.record(region, collapse(region, h.size), now)
	}
}

// due reports whether region should be collapsed now.
func (h *HugeBuffers) due(region uintptr, now int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.regions[region]
	return !ok || !st.done && now >= st.after
}

// record notes the outcome of a collapse of region.
func (h *HugeBuffers) record(region uintptr, err error, now int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.regions) >= maxHugeRegions {
		clear(h.regions)
	}
	st := h.regions[region]
	st.tries++
	st.after = now + int64(retryAfter)
	st.done = err == nil || !transient(err) || st.tries >= maxTries
	h.regions[region] = st
}

// transient reports whether a collapse may succeed later: EAGAIN (pages pinned or locked
// for the moment), ENOMEM (no free huge page), EBUSY (the memory cgroup is at its limit).
func transient(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EBUSY)
}

// collapse puts [region, region+size) on a huge page now rather than whenever khugepaged
// comes by (it would not: the mapping is not marked MADV_HUGEPAGE). The region is an
// address range, not a Go object (it reaches past the buffer), so it goes to the kernel as
// numbers.
func collapse(region, size uintptr) error {
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, region, size, unix.MADV_COLLAPSE); e != 0 {
		return fmt.Errorf("madvise MADV_COLLAPSE: %w", e)
	}
	return nil
}
