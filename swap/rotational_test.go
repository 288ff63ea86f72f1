package swap_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/swap"
)

func TestRotationalOfAFileIsItsDisks(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(f, &st); err != nil {
		t.Fatal(err)
	}
	got, err := swap.Rotational(f)
	if err != nil {
		t.Fatal(err)
	}
	sys, err := filepath.EvalSymlinks("/sys/dev/block/" + devString(st.Dev))
	if err != nil {
		if got {
			t.Errorf("Rotational(%s) = true for a filesystem without a block device", f)
		}
		t.Logf("%s is on a filesystem without a block device (%v): non-rotational, as loop says", dir, err)
		return
	}
	want := readFlag(t, filepath.Join(sys, "queue", "rotational"), filepath.Join(filepath.Dir(sys), "queue", "rotational"))
	if got != want {
		t.Errorf("Rotational(%s) = %v; its disk %s says %v", f, got, sys, want)
	}
}

func TestRotationalWithoutBlockDevice(t *testing.T) {
	// /proc has no block device under it: the loop driver's "non-rotational".
	got, err := swap.Rotational("/proc/self/stat")
	if err != nil || got {
		t.Errorf("Rotational(/proc/self/stat) = %v, %v; want false, nil", got, err)
	}
	if _, err := swap.Rotational("/nonexistent/file"); err == nil {
		t.Error("Rotational of a missing path: no error")
	}
}

func TestSetLoopRotational(t *testing.T) {
	needLoop(t)
	backing, _, _ := backingFile(t, 1<<20)
	dev := attach(t, backing, swap.LoopOptions{})
	for _, want := range []bool{true, false, true} {
		if err := swap.SetLoopRotational(dev, want); err != nil {
			t.Fatal(err)
		}
		if got, err := swap.Rotational(dev); err != nil || got != want {
			t.Errorf("after SetLoopRotational(%s, %v): Rotational = %v, %v", dev, want, got, err)
		}
	}
	if err := swap.SetLoopRotational("/dev/loop-nonexistent", true); err == nil {
		t.Error("SetLoopRotational of a missing device: no error")
	}
}

func devString(dev uint64) string { return fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev)) }

func readFlag(t *testing.T, paths ...string) bool {
	t.Helper()
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b)) == "1"
		}
	}
	t.Fatalf("none of %v is readable", paths)
	return false
}
