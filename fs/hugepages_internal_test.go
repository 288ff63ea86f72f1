package fs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestHugeBuffers: a request-sized buffer moves to a huge page with its contents intact;
// seeing it again costs no system call and no allocation; small buffers, and any buffer
// while a swapfile is attached, are left alone.
func TestHugeBuffers(t *testing.T) {
	h := NewHugeBuffers(nil)
	if h.size == 0 {
		t.Skip("2 MiB transparent huge pages are off on this machine (/sys/kernel/mm/transparent_hugepage)")
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	addr := uintptr(unsafe.Pointer(&buf[0]))
	if onHugePage(t, addr) {
		t.Skip("the Go heap is on huge pages already (THP \"always\"): nothing for back to do")
	}
	h.Back(buf)
	if !onHugePage(t, addr) {
		err := collapse(addr&^(hugeSize-1), hugeSize)
		switch {
		case transient(err):
			t.Skipf("the kernel could not give a huge page now (%v); nothing to check", err)
		case errors.Is(err, unix.EINVAL) && kernelBefore(6, 1):
			t.Skipf("MADV_COLLAPSE needs Linux 6.1 (%v)", err)
		case err != nil || !onHugePage(t, addr):
			t.Errorf("after back the buffer is not on a huge page (a second collapse: %v)", err)
		default:
			t.Error("back left the buffer on small pages; a second collapse then worked")
		}
	}
	for i := range buf {
		if buf[i] != byte(i*7) {
			t.Fatalf("byte %d changed when the buffer moved to a huge page", i)
		}
	}
	if h.due(addr&^(hugeSize-1), time.Now().UnixNano()) {
		t.Error("the buffer's region is still due: every request would collapse it again")
	}
	if a := testing.AllocsPerRun(100, func() { h.Back(buf) }); a != 0 {
		t.Errorf("back of a known buffer: %v allocations, want 0", a)
	}

	small := NewHugeBuffers(nil)
	small.Back(make([]byte, 4096))
	if len(small.regions) != 0 {
		t.Errorf("a 4 KiB buffer was collapsed (%d regions): small requests should leave the heap alone", len(small.regions))
	}
	attached := NewHugeBuffers(func() bool { return true })
	attached.Back(make([]byte, 1<<20))
	if len(attached.regions) != 0 {
		t.Error("a buffer was collapsed while a swapfile was attached")
	}
}

// TestHugeRegionRetries: a collapse refused for a passing reason is tried again after a
// while, a bounded number of times; one refused for good, or done, is not.
func TestHugeRegionRetries(t *testing.T) {
	h := &HugeBuffers{size: hugeSize, regions: make(map[uintptr]regionState)}
	const r = 4 << 20
	now := int64(1e18)
	for try := 1; try <= maxTries; try++ {
		if !h.due(r, now) {
			t.Fatalf("try %d: not due", try)
		}
		h.record(r, unix.EAGAIN, now)
		if h.due(r, now) {
			t.Fatalf("try %d: due again at once after a transient failure", try)
		}
		now += int64(retryAfter)
	}
	if h.due(r, now) {
		t.Errorf("still due after %d transient failures", maxTries)
	}
	h.record(r+hugeSize, unix.EINVAL, now)
	h.record(r+2*hugeSize, nil, now)
	for _, x := range []uintptr{r + hugeSize, r + 2*hugeSize} {
		if h.due(x, now+int64(time.Hour)) {
			t.Errorf("region %#x is due again after a permanent refusal or a success", x)
		}
	}
}

// onHugePage reports whether the page at addr is part of a transparent huge page, from
// /proc/self/pagemap and /proc/kpageflags (root only).
func onHugePage(t *testing.T, addr uintptr) bool {
	t.Helper()
	const pfnMask, present, kpfTHP = 1<<55 - 1, 1 << 63, 22
	entry := readUint64(t, "/proc/self/pagemap", int64(addr/uintptr(os.Getpagesize()))*8)
	if entry&present == 0 {
		t.Fatalf("page %#x is not present", addr)
	}
	pfn := entry & pfnMask
	if pfn == 0 {
		t.Skip("/proc/self/pagemap hides page frame numbers: not root")
	}
	return readUint64(t, "/proc/kpageflags", int64(pfn)*8)&(1<<kpfTHP) != 0
}

func readUint64(t *testing.T, path string, off int64) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("%s: %v (needs root)", path, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [8]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatalf("%s at %d: %v", path, off, err)
	}
	return binary.LittleEndian.Uint64(b[:])
}

// kernelBefore reports whether the running kernel is older than major.minor.
func kernelBefore(major, minor int) bool {
	var u unix.Utsname
	var a, b int
	if unix.Uname(&u) != nil {
		return false
	}
	if _, err := fmt.Sscanf(unix.ByteSliceToString(u.Release[:]), "%d.%d", &a, &b); err != nil {
		return false
	}
	return a < major || a == major && b < minor
}

// TestSwapAttached: the mount counts as serving swap while a pinned file is open for
// writing (its loop device's handle), not while only other files are.
func TestSwapAttached(t *testing.T) {
	s := newSwapFiles(nil)
	const pinnedIno, otherIno = 7, 8
	s.files[pinnedIno] = &swapFile{}
	s.addWriter(otherIno, 1)
	if s.attached() {
		t.Error("attached with only an ordinary file open for writing")
	}
	s.addWriter(pinnedIno, 1)
	if !s.attached() {
		t.Error("not attached while a pinned file is open for writing")
	}
	s.addWriter(pinnedIno, -1)
	if s.attached() {
		t.Error("still attached after the pinned file's writer closed")
	}
}
