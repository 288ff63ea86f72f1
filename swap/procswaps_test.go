package swap_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/swap"
)

func TestActiveSwapsReadsProc(t *testing.T) {
	areas, err := swap.ActiveSwaps()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d active swap areas: %+v", len(areas), areas)
	for _, a := range areas {
		if a.Filename == "" || (a.Type != "partition" && a.Type != "file") || a.SizeKiB <= 0 || a.UsedKiB < 0 || a.UsedKiB > a.SizeKiB {
			t.Errorf("implausible area %+v", a)
		}
	}
}

// swapLoop returns a loop device over a 64 MiB file prepared by mkswap, detached and
// swapped off in cleanup whatever happens.
func swapLoop(t *testing.T) string {
	t.Helper()
	mkswap, err := exec.LookPath("mkswap")
	if err != nil {
		t.Skipf("needs mkswap (util-linux): %v", err)
	}
	path, _, _ := backingFile(t, 64<<20)
	ctx, cancel := context.WithTimeout(context.Background(), kernelTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, mkswap, path).CombinedOutput(); err != nil {
		t.Fatalf("mkswap: %v\n%s", err, out)
	}
	return attach(t, path, swap.LoopOptions{})
}

func swapon(t *testing.T, dev string, opts swap.SwaponOptions) error {
	t.Helper()
	_, err := within(t, "Swapon", func() (int, error) { return 0, swap.Swapon(dev, opts) })
	return err
}

func swapoff(t *testing.T, dev string) error {
	t.Helper()
	_, err := within(t, "Swapoff", func() (int, error) { return 0, swap.Swapoff(dev) })
	return err
}

func area(t *testing.T, dev string) (swap.SwapArea, bool) {
	t.Helper()
	areas, err := swap.ActiveSwaps()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range areas {
		if a.Filename == dev {
			return a, true
		}
	}
	return swap.SwapArea{}, false
}

func isActive(t *testing.T, dev string) bool {
	t.Helper()
	active, err := swap.IsActiveSwap(dev)
	if err != nil {
		t.Fatal(err)
	}
	return active
}

func TestSwaponSwapoff(t *testing.T) {
	needLoop(t)
	dev := swapLoop(t)
	if isActive(t, dev) {
		t.Fatalf("%s active before swapon", dev)
	}
	if err := swapon(t, dev, swap.SwaponOptions{Priority: 7, HasPriority: true}); err != nil {
		t.Fatal(err)
	}
	if !isActive(t, dev) {
		t.Fatalf("%s not active after swapon", dev)
	}
	a, ok := area(t, dev)
	// mkswap leaves page 0 for the header.
	want := swap.SwapArea{Filename: dev, Type: "partition", SizeKiB: 64<<10 - 4, UsedKiB: a.UsedKiB, Priority: 7}
	if !ok || a != want {
		t.Fatalf("/proc/swaps has %+v (found %v), want %+v", a, ok, want)
	}

	// The same device under another name.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dev, link); err != nil {
		t.Fatal(err)
	}
	if !isActive(t, link) {
		t.Errorf("IsActiveSwap(%s -> %s) = false", link, dev)
	}

	if err := swapon(t, dev, swap.SwaponOptions{}); !errors.Is(err, unix.EBUSY) {
		t.Errorf("second swapon: %v, want EBUSY", err)
	}
	if _, err := within(t, "DetachLoop", func() (int, error) { return 0, swap.DetachLoop(dev) }); !errors.Is(err, unix.EBUSY) {
		t.Errorf("DetachLoop of active swap: %v, want EBUSY", err)
	}
	if !isActive(t, dev) {
		t.Fatalf("%s no longer active after a refused detach", dev)
	}

	if err := swapoff(t, dev); err != nil {
		t.Fatal(err)
	}
	if isActive(t, dev) {
		t.Fatalf("%s still active after swapoff", dev)
	}
	if a, ok := area(t, dev); ok {
		t.Fatalf("/proc/swaps still has %+v", a)
	}
	if err := swapoff(t, dev); !errors.Is(err, unix.EINVAL) {
		t.Errorf("second swapoff: %v, want EINVAL", err)
	}

	t.Run("no priority, discard", func(t *testing.T) {
		if err := swapon(t, dev, swap.SwaponOptions{Discard: true}); err != nil {
			t.Fatal(err)
		}
		if a, ok := area(t, dev); !ok || a.Priority >= 0 {
			t.Errorf("/proc/swaps has %+v (found %v), want a kernel-chosen negative priority", a, ok)
		}
		if err := swapoff(t, dev); err != nil {
			t.Fatal(err)
		}
	})

	if _, err := within(t, "DetachLoop", func() (int, error) { return 0, swap.DetachLoop(dev) }); err != nil {
		t.Fatal(err)
	}
}

func TestSwaponErrors(t *testing.T) {
	needLoop(t)
	path, _, _ := backingFile(t, 1<<20)
	plain := attach(t, path, swap.LoopOptions{})
	tests := []struct {
		name, dev string
		opts      swap.SwaponOptions
		is        error
	}{
		{"no swap header", plain, swap.SwaponOptions{}, unix.EINVAL},
		{"priority too high", plain, swap.SwaponOptions{Priority: 32768, HasPriority: true}, unix.EINVAL},
		{"negative priority", plain, swap.SwaponOptions{Priority: -1, HasPriority: true}, unix.EINVAL},
		{"missing device", filepath.Join(t.TempDir(), "missing"), swap.SwaponOptions{}, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := swapon(t, tt.dev, tt.opts)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.dev) {
				t.Fatalf("Swapon(%s, %+v): %v, want %v naming the device", tt.dev, tt.opts, err, tt.is)
			}
			t.Log(err)
			if isActive(t, tt.dev) {
				t.Fatalf("%s active after a failed swapon", tt.dev)
			}
		})
	}
	if err := swapoff(t, plain); !errors.Is(err, unix.EINVAL) {
		t.Errorf("swapoff of a device that is not swap: %v, want EINVAL", err)
	}
}
