package swap_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/meta"
	"github.com/swapfs/swapfs/swap"
)

// Each kernel call that could hang gets this long before the test fails instead.
const kernelTimeout = 30 * time.Second

// needLoop skips the test where loop devices cannot be attached.
func needLoop(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("attaching loop devices needs root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("needs loop devices: %v", err)
	}
}

// within runs f and fails the test if it does not return in time. A syscall cannot be
// abandoned: on timeout its goroutine is left behind, and the test fails rather than hangs.
func within[T any](t testing.TB, what string, f func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-time.After(kernelTimeout):
		t.Fatalf("%s: no answer after %v", what, kernelTimeout)
		panic("unreachable")
	}
}

// backingFile creates a file of size bytes, allocated, in a fresh temporary directory, and
// returns its path and identity.
func backingFile(t testing.TB, size int64) (path string, dev, ino uint64) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "backing")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		t.Fatalf("fallocate %s: %v", path, err)
	}
	dev, ino = identity(t, path)
	return path, dev, ino
}

func identity(t testing.TB, path string) (dev, ino uint64) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Dev, st.Ino
}

// attach attaches a loop device to path and makes sure, whatever happens in the test, that
// no loop device or swap area on that file outlives it.
func attach(t testing.TB, path string, opts swap.LoopOptions) string {
	t.Helper()
	cleanupLoops(t, path)
	dev, err := within(t, "AttachLoop", func() (string, error) { return swap.AttachLoop(path, opts) })
	if err != nil {
		t.Fatal(err)
	}
	return dev
}

// cleanupLoops registers the removal of every loop device backed by path, and of the swap
// areas on them. It goes by the file's identity, not a device name: a device the test
// detached may have been taken by another process since.
func cleanupLoops(t testing.TB, path string) {
	t.Helper()
	dev, ino := identity(t, path)
	t.Cleanup(func() {
		loops, err := within(t, "LoopsBacking", func() ([]swap.LoopInfo, error) { return swap.LoopsBacking(dev, ino) })
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		for _, l := range loops {
			if active, err := swap.IsActiveSwap(l.Device); err != nil || active {
				if _, err := within(t, "Swapoff", func() (int, error) { return 0, swap.Swapoff(l.Device) }); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
			if _, err := within(t, "DetachLoop", func() (int, error) { return 0, swap.DetachLoop(l.Device) }); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
}

// loopNamed describes the loop device dev, which must be attached.
func loopNamed(t testing.TB, dev string) swap.LoopInfo {
	t.Helper()
	loops, err := within(t, "Loops", func() ([]swap.LoopInfo, error) { return swap.Loops() })
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range loops {
		if l.Device == dev {
			return l
		}
	}
	t.Fatalf("%s is not among the attached loop devices", dev)
	return swap.LoopInfo{}
}

func loopsBacking(t testing.TB, dev, ino uint64) []swap.LoopInfo {
	t.Helper()
	loops, err := within(t, "LoopsBacking", func() ([]swap.LoopInfo, error) { return swap.LoopsBacking(dev, ino) })
	if err != nil {
		t.Fatal(err)
	}
	return loops
}

func sysfs(t testing.TB, dev, attr string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), attr))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestAttachLoop(t *testing.T) {
	needLoop(t)
	path, fdev, fino := backingFile(t, 64<<20)
	dev := attach(t, path, swap.LoopOptions{})

	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		t.Fatalf("%s is not a block device: %v (mode %o)", dev, err, st.Mode)
	}
	all, err := swap.Loops()
	if err != nil {
		t.Fatal(err)
	}
	want := swap.LoopInfo{Device: dev, BackingDev: fdev, BackingIno: fino, BackingFile: path, DirectIO: true}
	var found bool
	for _, l := range all {
		if l.Device == dev {
			found = true
			if l != want {
				t.Errorf("Loops() has %+v, want %+v", l, want)
			}
		}
	}
	if !found {
		t.Errorf("Loops() = %+v, no %s", all, dev)
	}
	if got := loopsBacking(t, fdev, fino); len(got) != 1 || got[0] != want {
		t.Errorf("LoopsBacking = %+v, want [%+v]", got, want)
	}
	if bs := sysfs(t, dev, "queue/logical_block_size"); bs != "4096" {
		t.Errorf("logical block size %s, want 4096", bs)
	}
	if ro := sysfs(t, dev, "ro"); ro != "0" {
		t.Errorf("ro = %s, want 0", ro)
	}
	if size := sysfs(t, dev, "size"); size != fmt.Sprint(64<<20/512) {
		t.Errorf("size = %s sectors, want %d", size, 64<<20/512)
	}

	checkDataPath(t, dev, path)

	if _, err := within(t, "DetachLoop", func() (int, error) { return 0, swap.DetachLoop(dev) }); err != nil {
		t.Fatal(err)
	}
	if got := loopsBacking(t, fdev, fino); len(got) != 0 {
		t.Fatalf("after DetachLoop, LoopsBacking = %+v", got)
	}
	// The file is free again: the kernel dropped its reference when the device let go.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}

// checkDataPath writes through the device and reads the file, and the other way round.
func checkDataPath(t *testing.T, dev, path string) {
	t.Helper()
	lo, err := os.OpenFile(dev, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lo.Close()
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()

	buf := meta.AlignedBuffer(3 * 4096)
	for i := range buf {
		buf[i] = byte(i*7 + 1)
	}
	if _, err := lo.WriteAt(buf, 1<<20); err != nil {
		t.Fatalf("write %s: %v", dev, err)
	}
	if err := lo.Sync(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(buf))
	if _, err := file.ReadAt(got, 1<<20); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, buf) {
		t.Fatalf("the file does not hold what was written through %s", dev)
	}

	for i := range buf {
		buf[i] = byte(i*13 + 5)
	}
	if _, err := file.WriteAt(buf, 8<<20); err != nil {
		t.Fatal(err)
	}
	if err := file.Sync(); err != nil {
		t.Fatal(err)
	}
	back := meta.AlignedBuffer(len(buf))
	if _, err := lo.ReadAt(back, 8<<20); err != nil {
		t.Fatalf("read %s: %v", dev, err)
	}
	if !bytes.Equal(back, buf) {
		t.Fatalf("%s does not show what was written to the file", dev)
	}

	// 512 bytes is below the logical block size: O_DIRECT must refuse it.
	if _, err := lo.ReadAt(back[:512], 512); !errors.Is(err, unix.EINVAL) {
		t.Errorf("512-byte O_DIRECT read: %v, want EINVAL (4096-byte blocks)", err)
	}
}

func TestAttachLoopReadOnly(t *testing.T) {
	needLoop(t)
	path, fdev, fino := backingFile(t, 1<<20)
	dev := attach(t, path, swap.LoopOptions{ReadOnly: true, BlockSize: 512})
	if ro := sysfs(t, dev, "ro"); ro != "1" {
		t.Errorf("ro = %s, want 1", ro)
	}
	if bs := sysfs(t, dev, "queue/logical_block_size"); bs != "512" {
		t.Errorf("logical block size %s, want 512", bs)
	}
	if got := loopsBacking(t, fdev, fino); len(got) != 1 || !got[0].DirectIO {
		t.Errorf("LoopsBacking = %+v, want one with direct I/O", got)
	}
	lo, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err == nil {
		_, err = lo.WriteAt(make([]byte, 4096), 0)
		lo.Close()
	}
	if err == nil {
		t.Errorf("writing to read-only %s worked", dev)
	}
}

func TestAttachLoopConcurrent(t *testing.T) {
	needLoop(t)
	const n = 6
	paths := make([]string, n)
	for i := range paths {
		paths[i], _, _ = backingFile(t, 1<<20)
		cleanupLoops(t, paths[i])
	}
	devs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range paths {
		wg.Go(func() { devs[i], errs[i] = swap.AttachLoop(paths[i], swap.LoopOptions{}) })
	}
	within(t, "concurrent AttachLoop", func() (int, error) { wg.Wait(); return 0, nil })
	seen := map[string]bool{}
	for i, err := range errs {
		if err != nil {
			t.Errorf("AttachLoop %d: %v", i, err)
			continue
		}
		if seen[devs[i]] {
			t.Errorf("%s handed out twice", devs[i])
		}
		seen[devs[i]] = true
		dev, ino := identity(t, paths[i])
		if got := loopsBacking(t, dev, ino); len(got) != 1 || got[0].Device != devs[i] {
			t.Errorf("LoopsBacking(%s) = %+v, want %s", paths[i], got, devs[i])
		}
	}
}

// TestAttachLoopHeldDevice holds the device LOOP_CTL_GET_FREE hands out with O_EXCL, as a
// prober or another tool may: LOOP_CONFIGURE on it fails with EBUSY for as long as it is held,
// and GET_FREE keeps returning it. AttachLoop must move on to another device rather than
// spin until its deadline.
func TestAttachLoopHeldDevice(t *testing.T) {
	needLoop(t)
	path, _, _ := backingFile(t, 1<<20)
	held, release := unboundLoop(t)
	defer release()
	existed, err := filepath.Glob("/sys/block/loop*")
	if err != nil {
		t.Fatal(err)
	}
	var dev string
	// AttachLoop may have created the device (LOOP_CTL_ADD); remove it once detached (this
	// cleanup runs after the one attach registers), or every run would leave one more.
	t.Cleanup(func() { removeCreatedLoop(t, dev, existed) })
	start := time.Now()
	dev = attach(t, path, swap.LoopOptions{})
	if dev == held {
		t.Fatalf("attached %s, which is held exclusively", dev)
	}
	// Far below the 10 s it retries a busy device, with room for a loaded machine.
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("AttachLoop took %v next to a held device", d)
	}
}

// removeCreatedLoop removes dev (LOOP_CTL_REMOVE) unless it was among existed. The kernel
// refuses with EBUSY a device that is bound or open, so another process's device is safe.
func removeCreatedLoop(t testing.TB, dev string, existed []string) {
	t.Helper()
	if dev == "" {
		return
	}
	name := filepath.Base(dev)
	for _, e := range existed {
		if filepath.Base(e) == name {
			return
		}
	}
	n, err := strconv.Atoi(strings.TrimPrefix(name, "loop"))
	if err != nil {
		t.Errorf("cleanup: %s: %v", dev, err)
		return
	}
	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer unix.Close(ctl)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(ctl), unix.LOOP_CTL_REMOVE, uintptr(n)); errno != 0 {
		t.Logf("cleanup: remove %s, which AttachLoop created: %v", dev, errno)
	}
}

func TestAttachLoopErrors(t *testing.T) {
	needLoop(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name, path string
		opts       swap.LoopOptions
		is         error
	}{
		{"missing file", missing, swap.LoopOptions{}, os.ErrNotExist},
		{"directory", dir, swap.LoopOptions{}, unix.EISDIR},
		{"directory read-only", dir, swap.LoopOptions{ReadOnly: true}, unix.EINVAL},
		{"block size not a power of two", "", swap.LoopOptions{BlockSize: 1000}, unix.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.path
			if path == "" {
				path, _, _ = backingFile(t, 1<<20)
				cleanupLoops(t, path)
			}
			dev, err := within(t, "AttachLoop", func() (string, error) { return swap.AttachLoop(path, tt.opts) })
			if err == nil {
				t.Fatalf("AttachLoop(%s) = %s, want an error", path, dev)
			}
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), "attach loop device to "+path) {
				t.Fatalf("AttachLoop(%s): %v, want %v with the path", path, err, tt.is)
			}
			t.Log(err)
		})
	}
}

// TestAttachLoopNoDirectIO backs a loop device with a file on an ext4 whose device has
// 4096-byte sectors: a 512-byte loop block size cannot do direct I/O there, and AttachLoop
// must say so and leave nothing attached.
func TestAttachLoopNoDirectIO(t *testing.T) {
	needLoop(t)
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skipf("needs mkfs.ext4: %v", err)
	}
	img, _, _ := backingFile(t, 64<<20)
	outer := attach(t, img, swap.LoopOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), kernelTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, mkfs, "-q", "-F", outer).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	mnt := t.TempDir()
	if err := unix.Mount(outer, mnt, "ext4", 0, ""); err != nil {
		t.Fatalf("mount %s: %v", outer, err)
	}
	// Registered after attach, so it runs before the detach.
	t.Cleanup(func() {
		for i := 0; ; i++ {
			err := unix.Unmount(mnt, 0)
			if err == nil || errors.Is(err, unix.EINVAL) {
				return
			}
			if i == 50 {
				t.Errorf("cleanup: unmount %s: %v", mnt, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	inner := filepath.Join(mnt, "f")
	if err := os.WriteFile(inner, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	cleanupLoops(t, inner)
	dev, err := within(t, "AttachLoop", func() (string, error) {
		return swap.AttachLoop(inner, swap.LoopOptions{BlockSize: 512})
	})
	if err == nil {
		t.Fatalf("AttachLoop with 512-byte blocks on a 4096-byte-sector ext4 = %s, want an error", dev)
	}
	if !strings.Contains(err.Error(), "direct I/O") {
		t.Errorf("error does not mention direct I/O: %v", err)
	}
	t.Log(err)
	fdev, fino := identity(t, inner)
	if got := loopsBacking(t, fdev, fino); len(got) != 0 {
		t.Errorf("left attached: %+v", got)
	}
	// With 4096-byte blocks it works.
	dev = attach(t, inner, swap.LoopOptions{})
	if got := loopsBacking(t, fdev, fino); len(got) != 1 || got[0].Device != dev || !got[0].DirectIO {
		t.Errorf("LoopsBacking = %+v, want %s with direct I/O", got, dev)
	}
	if _, err := within(t, "DetachLoop", func() (int, error) { return 0, swap.DetachLoop(dev) }); err != nil {
		t.Fatal(err)
	}
}

func TestDetachLoopNotAttached(t *testing.T) {
	needLoop(t)
	dev, release := unboundLoop(t)
	defer release()
	err := swap.DetachLoop(dev)
	if !errors.Is(err, unix.ENXIO) || !strings.Contains(err.Error(), dev) {
		t.Fatalf("DetachLoop of unbound %s: %v, want ENXIO naming the device", dev, err)
	}
	t.Log(err)

	if err := swap.DetachLoop("/dev/null"); !errors.Is(err, unix.ENOTBLK) {
		t.Errorf("DetachLoop(/dev/null): %v, want ENOTBLK", err)
	}
	if err := swap.DetachLoop("/dev/loop-does-not-exist"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("DetachLoop of a missing node: %v, want ENOENT", err)
	}
}

// unboundLoop returns an unbound loop device that stays unbound until release: it is held
// with O_EXCL, which makes LOOP_CONFIGURE by anyone else fail with EBUSY (loop_configure
// claims the device), so the test cannot detach a device another process just attached.
func unboundLoop(t testing.TB) (string, func()) {
	t.Helper()
	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ctl)
	for range 100 {
		n, err := unix.IoctlRetInt(ctl, unix.LOOP_CTL_GET_FREE)
		if err != nil {
			t.Fatal(err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		if _, err := unix.IoctlLoopGetStatus64(fd); errors.Is(err, unix.ENXIO) {
			return dev, func() { unix.Close(fd) }
		}
		unix.Close(fd)
	}
	t.Fatal("no unbound loop device to hold")
	return "", nil
}

// TestSwapLoopsBackingUnknownAreas: a swap area that cannot be a loop device of ours (a node
// removed since swapon, a swapfile of another filesystem) does not stop the search, while a
// loop device node that cannot be looked at fails it: a failure to tell must not let a change
// through to an active swapfile. So does a node that does not resolve, once the file has a
// loop device the area could be, or be stacked on.
func TestSwapLoopsBackingUnknownAreas(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	areas := []swap.SwapArea{
		{Filename: "/dev/sdz9 (deleted)", Type: "partition"},
		{Filename: "/swapfile", Type: "file"},
	}
	if got, err := swap.SwapLoopsBacking(areas, st.Dev, st.Ino); err != nil || len(got) != 0 {
		t.Errorf("areas that are not loop devices: %+v, %v; want none and no error", got, err)
	}
	gone := []swap.SwapArea{{Filename: "/dev/loop-never-there", Type: "partition"}}
	if _, err := swap.SwapLoopsBacking(gone, st.Dev, st.Ino); err == nil {
		t.Error("a loop device node that cannot be looked at: no error")
	}

	needLoop(t)
	path, dev, ino := backingFile(t, 1<<20)
	loop := attach(t, path, swap.LoopOptions{})
	unknown := areas[:1]
	got, err := within(t, "SwapLoopsBacking", func() ([]swap.SwapArea, error) { return swap.SwapLoopsBacking(unknown, dev, ino) })
	if err == nil || !strings.Contains(err.Error(), loop) {
		t.Errorf("an area that does not resolve, with %s on the file: %+v, %v; want an error naming %s", loop, got, err, loop)
	}
}

// TestSwapLoopsBackingStacked: a swap area on a loop device stacked on the file's own loop
// device makes the file active swap as much as swapping on its loop device does, and is
// found by the file's identity; before swapon, and after swapoff, nothing is.
func TestSwapLoopsBackingStacked(t *testing.T) {
	needLoop(t)
	inner := swapLoop(t) // mkswap'ed file under it: the outer device shows the same header
	l := loopNamed(t, inner)
	path, dev, ino := l.BackingFile, l.BackingDev, l.BackingIno
	outer := attach(t, inner, swap.LoopOptions{})
	find := func() []swap.SwapArea {
		t.Helper()
		areas, err := swap.ActiveSwaps()
		if err != nil {
			t.Fatal(err)
		}
		got, err := within(t, "SwapLoopsBacking", func() ([]swap.SwapArea, error) { return swap.SwapLoopsBacking(areas, dev, ino) })
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := find(); len(got) != 0 {
		t.Fatalf("before swapon: %+v, want none", got)
	}
	if err := swapon(t, outer, swap.SwaponOptions{}); err != nil {
		t.Fatalf("swapon %s (over %s over %s): %v", outer, inner, path, err)
	}
	if got := find(); len(got) != 1 || got[0].Filename != outer {
		t.Errorf("swap on %s over %s over %s: SwapLoopsBacking = %+v, want the area on %s", outer, inner, path, got, outer)
	}
	if err := swapoff(t, outer); err != nil {
		t.Fatal(err)
	}
	if got := find(); len(got) != 0 {
		t.Errorf("after swapoff: %+v, want none", got)
	}
}
