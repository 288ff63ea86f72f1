package fs

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestHugeBuffers: a request-sized buffer ends up on a huge page, a second sight of it costs
// no system call and no allocation, and small buffers are left alone.
func TestHugeBuffers(t *testing.T) {
	h := newHugeBuffers()
	if h.size == 0 {
		t.Skip("transparent huge pages are off on this machine (/sys/kernel/mm/transparent_hugepage/enabled)")
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	h.back(buf)
	addr := uintptr(unsafe.Pointer(&buf[0]))
	if huge, eligible := thpOf(t, addr); !eligible || huge == 0 {
		err := advise(addr&^(h.size-1), h.size)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOMEM) {
			t.Skipf("the kernel has no free huge page now (%v); nothing to check", err)
		}
		t.Errorf("after back: the buffer's mapping has THPeligible=%v and %d KiB on huge pages, want eligible and some (advise again: %v)", eligible, huge, err)
	}
	for i := range buf {
		if buf[i] != byte(i*7) {
			t.Fatalf("byte %d changed when the buffer moved to a huge page", i)
		}
	}
	if h.claim(addr &^ (h.size - 1)) {
		t.Error("the buffer's region was not recorded: every request would madvise again")
	}
	if a := testing.AllocsPerRun(100, func() { h.back(buf) }); a != 0 {
		t.Errorf("back of a known buffer: %v allocations, want 0", a)
	}
	fresh := newHugeBuffers()
	fresh.back(make([]byte, 4096))
	if len(fresh.seen) != 0 {
		t.Errorf("a 4 KiB buffer was advised (%d regions): small requests should leave the heap alone", len(fresh.seen))
	}
	var none *hugeBuffers
	none.back(buf) // a filesystem made without Mount has none
}

// thpOf reads /proc/self/smaps for the mapping holding addr: its AnonHugePages in KiB and
// whether the kernel would back it with huge pages.
func thpOf(t *testing.T, addr uintptr) (hugeKiB int, eligible bool) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(fields[0], "-"); ok && !strings.HasSuffix(fields[0], ":") {
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				if in {
					return hugeKiB, eligible
				}
				in = uint64(addr) >= a && uint64(addr) < b
				continue
			}
		}
		if !in || len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "AnonHugePages:":
			hugeKiB, _ = strconv.Atoi(fields[1])
		case "THPeligible:":
			eligible = fields[1] == "1"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !in {
		t.Fatalf("no mapping in /proc/self/smaps holds %#x", addr)
	}
	return hugeKiB, eligible
}
