package fs

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugeBuffers backs the buffers go-fuse hands us (a WRITE's payload, a READ's destination)
// with transparent huge pages, the first time each is seen.
//
// Each byte of a WRITE is copied by the kernel into the daemon's request buffer, which it
// pins one 4 KiB page at a time (fuse_copy_fill), and our O_DIRECT write of the same bytes
// pins the pages again and hands the volume one segment per page; a READ's reply makes the
// same trip backwards. On a huge page the page walks are short and the volume gets a few
// large segments. On the bench machine (a VM, where each segment costs the host work too),
// 1 MiB O_DIRECT reads went from about 850 to 1500 MiB/s; writes, whose cost is mostly the
// kernel's copy, took 6% less daemon CPU.
//
// The buffers are Go heap memory, which Go does not back with huge pages when THP is in
// "madvise" mode (the common default). go-fuse keeps them in pools and reuses them, so
// advising each 2 MiB region once (MADV_HUGEPAGE) and collapsing it now (MADV_COLLAPSE,
// Linux 6.1; it keeps the contents) reaches nearly every request. Both only change how
// memory is backed, never what it holds, so a refusal (THP "never", an older kernel, a
// region partly outside the heap's mapping) costs speed only, and the region is left alone.
type hugeBuffers struct {
	size uintptr // the PMD huge page size; 0 when THP is unavailable

	mu   sync.Mutex
	seen map[uintptr]struct{} // regions already advised, by start address
}

// hugeMin is the smallest buffer worth a region of its own: a request of at least this
// size is a bulk transfer, and every bulk request buffer of go-fuse is about 1 MiB.
const hugeMin = 128 << 10

// maxHugeRegions bounds seen: the daemon's heap is tens of MiB, so more distinct regions
// than this mean the heap's addresses moved on, and forgetting them only costs a madvise.
const maxHugeRegions = 4096

func newHugeBuffers() *hugeBuffers {
	return &hugeBuffers{size: thpSize(), seen: make(map[uintptr]struct{})}
}

// thpSize is the PMD huge page size the kernel offers, or 0 when THP is off ("never") or
// not built in.
func thpSize() uintptr {
	const dir = "/sys/kernel/mm/transparent_hugepage/"
	mode, err := os.ReadFile(dir + "enabled")
	if err != nil || strings.Contains(string(mode), "[never]") {
		return 0
	}
	b, err := os.ReadFile(dir + "hpage_pmd_size")
	if err != nil {
		return 2 << 20
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n == 0 || n&(n-1) != 0 {
		return 2 << 20
	}
	return uintptr(n)
}

// back advises the huge-page regions p spans, once each.
func (h *hugeBuffers) back(p []byte) {
	if h == nil || h.size == 0 || len(p) < hugeMin {
		return
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	first := start &^ (h.size - 1)
	last := (start + uintptr(len(p)) - 1) &^ (h.size - 1)
	for region := first; region <= last; region += h.size {
		if h.claim(region) {
			advise(region, h.size)
		}
	}
}

// claim reports whether region is new, and records it.
func (h *hugeBuffers) claim(region uintptr) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.seen[region]; ok {
		return false
	}
	if len(h.seen) >= maxHugeRegions {
		clear(h.seen)
	}
	h.seen[region] = struct{}{}
	return true
}

// advise asks for huge pages on [region, region+size) and for a collapse now rather than
// when khugepaged comes by. back ignores the error: see hugeBuffers. The region is an
// address range, not a Go object (it can reach past the buffer), so it goes to the kernel
// as numbers.
func advise(region, size uintptr) error {
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, region, size, unix.MADV_HUGEPAGE); e != 0 {
		return fmt.Errorf("madvise MADV_HUGEPAGE: %w", e)
	}
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, region, size, unix.MADV_COLLAPSE); e != 0 {
		return fmt.Errorf("madvise MADV_COLLAPSE: %w", e)
	}
	return nil
}
