package integration

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swapfs/swapfs/swap"
	"github.com/swapfs/swapfs/swap/swaptest"
)

// Memory pressure, confined: a memory-limited cgroup for the workload, a loop-device swap
// area for the reference runs, and the swapload binary that does the work.

const (
	// swapoffTimeout bounds one swapoff: it reads every page still on the device back in.
	swapoffTimeout = 3 * time.Minute
	// minTestSwapPriority beats the priorities swapon assigns by default (negative,
	// falling); testSwapPriority goes higher still when the machine has areas above it.
	minTestSwapPriority = 10
	// maxTestSwap keeps a test's swap area small on a shared machine.
	maxTestSwap = 1 << 30
)

// newMemCgroup makes a cgroup whose processes may use limitBytes of memory and any amount of
// swap; it is removed, and every process still in it killed, when the test ends. It skips t
// when this machine has no memory controller it can use.
//
// Cleanups run last-registered first: make the swap area a workload needs before its cgroup,
// so that the workload is dead by the time its swap is turned off.
func newMemCgroup(t testing.TB, limitBytes int64) *swaptest.Cgroup {
	t.Helper()
	requireMemCgroup(t)
	c, err := swaptest.NewCgroup("swapfs-test-", limitBytes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Remove(); err != nil {
			t.Error(err)
		}
	})
	if c.Note != "" {
		t.Logf("cgroup %s: %s", c.Path, c.Note)
	}
	return c
}

// requireMemCgroup skips t, saying why, unless it may make memory cgroups here.
func requireMemCgroup(t testing.TB) {
	t.Helper()
	requireRoot(t)
	if _, err := swaptest.MemoryController(); err != nil {
		t.Skip(err)
	}
}

// requireRoot skips t unless it runs as root, which cgroups, loop devices and swapon need.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("not running as root: making cgroups, loop devices and swap areas needs root")
	}
}

// swapload is the built workload binary, shared by the tests that run at the same time.
var swapload struct {
	sync.Mutex
	users int    // tests holding it
	dir   string // temporary directory of the binary, "" when not built
	err   error
}

// buildSwapload returns the path of a freshly built cmd/swapload. Tests that overlap share
// one build; the last of them to end removes it (TestMain, which could do this once, is not
// ours to change).
func buildSwapload(t testing.TB) string {
	t.Helper()
	swapload.Lock()
	defer swapload.Unlock()
	if swapload.users == 0 {
		swapload.dir, swapload.err = buildSwaploadIn()
	}
	swapload.users++
	t.Cleanup(releaseSwapload)
	if swapload.err != nil {
		t.Fatal(swapload.err)
	}
	return filepath.Join(swapload.dir, "swapload")
}

func buildSwaploadIn() (string, error) {
	dir, err := os.MkdirTemp("", "swapload-")
	if err != nil {
		return "", err
	}
	r := runCmd(5*time.Minute, nil, "go", "build", "-buildvcs=false", "-o", filepath.Join(dir, "swapload"), "github.com/swapfs/swapfs/cmd/swapload")
	if r.err != nil || r.code != 0 {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build ./cmd/swapload: exit %d %v\n%s", r.code, r.err, r.out)
	}
	return dir, nil
}

func releaseSwapload() {
	swapload.Lock()
	defer swapload.Unlock()
	swapload.users--
	if swapload.users == 0 {
		if swapload.dir != "" {
			os.RemoveAll(swapload.dir)
		}
		swapload.dir, swapload.err = "", nil
	}
}

// newLoopSwap makes a swap area of sizeBytes (a multiple of 1 MiB) on a loop device over a
// file in backingDir, as a native-filesystem reference for swapfs, and turns it on. When t
// ends the area is turned off and the device detached. It returns the device.
func newLoopSwap(t testing.TB, backingDir string, sizeBytes int64) string {
	t.Helper()
	requireRoot(t)
	if sizeBytes <= 0 || sizeBytes > maxTestSwap || sizeBytes%(1<<20) != 0 {
		t.Fatalf("newLoopSwap: size %d: want a multiple of 1 MiB up to %d", sizeBytes, maxTestSwap)
	}
	for _, tool := range []string{"dd", "mkswap", "losetup", "swapon", "swapoff"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	f, err := os.CreateTemp(backingDir, "loopswap-*.img")
	if err != nil {
		t.Fatal(err)
	}
	backing := f.Name()
	f.Close()
	t.Cleanup(func() { os.Remove(backing) })
	// Written blocks, not a sparse or fallocated file: swap I/O through the loop should
	// measure the filesystem's data path, not its allocation of unwritten extents.
	mustRun(t, "dd", "if=/dev/zero", "of="+backing, "bs=1M", fmt.Sprintf("count=%d", sizeBytes>>20), "conv=fsync", "status=none")
	if err := os.Chmod(backing, 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "mkswap", backing)
	dev := strings.TrimSpace(mustRun(t, "losetup", "--direct-io=on", "--sector-size", "4096", "-f", "--show", backing))
	if !strings.HasPrefix(dev, "/dev/loop") {
		t.Fatalf("losetup --show printed %q, not a loop device", dev)
	}
	trackLoop(dev, backing)
	t.Cleanup(func() { removeLoopSwap(t, dev, backing) })
	mustRun(t, "swapon", "-p", strconv.Itoa(testSwapPriority(t)), dev)
	return dev
}

// removeLoopSwap turns dev off as swap and detaches it, retrying while it is busy.
func removeLoopSwap(t testing.TB, dev, backing string) {
	t.Helper()
	if _, on := swap.ActiveSwapNamed(dev); on {
		var last result
		for range 3 {
			if last = runCmd(swapoffTimeout, nil, "swapoff", dev); last.code == 0 {
				break
			}
			time.Sleep(time.Second)
		}
		if _, on := swap.ActiveSwapNamed(dev); on {
			t.Errorf("swapoff %s: exit %d %v\n%s", dev, last.code, last.err, last.out)
			// A device still in use as swap cannot be detached.
			return
		}
	}
	deadline := time.Now().Add(unmountTimeout)
	var last result
	for loopBacking(dev) == backing {
		// losetup -d fails with EBUSY for a moment after swapoff releases the device.
		last = runCmd(cmdTimeout, nil, "losetup", "-d", dev)
		if time.Now().After(deadline) {
			t.Errorf("losetup -d %s: still attached to %s after %v: exit %d %v\n%s", dev, backing, unmountTimeout, last.code, last.err, last.out)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testSwapPriority is a swap priority above every area already active, so that the kernel
// fills the test's area and no other (swapon(2): a higher priority is used first; equal
// priorities share pages round-robin, which would send the test's pages to an area that
// may be some other run's, dead or full).
func testSwapPriority(t testing.TB) int {
	t.Helper()
	prio := minTestSwapPriority
	areas, err := swap.ActiveSwaps()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range areas {
		prio = max(prio, a.Priority+1)
	}
	if prio > math.MaxInt16 {
		t.Fatalf("an active swap area has the highest priority (%d), so no test area can be preferred to it: %s", math.MaxInt16, strings.Join(swapAreas(), "; "))
	}
	if others := swapAreas(); len(others) > 0 {
		t.Logf("swap areas already on this machine (ours gets priority %d, above them): %s", prio, strings.Join(others, "; "))
	}
	return prio
}

// swapAreas lists the active swap areas, as "NAME (used KiB/size KiB, priority P)".
func swapAreas() []string {
	all, _ := swap.ActiveSwaps()
	var areas []string
	for _, a := range all {
		areas = append(areas, fmt.Sprintf("%s (%d/%d KiB used, priority %d)", a.Filename, a.UsedKiB, a.SizeKiB, a.Priority))
	}
	return areas
}
