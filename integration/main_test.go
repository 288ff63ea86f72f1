package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/swap"
)

var (
	// swapfsBin is the binary under test, built once by TestMain.
	swapfsBin string
	// skipReason is why this machine cannot run the tests; "" when it can.
	skipReason string
)

// created records what the tests made outside their temporary directories, so that TestMain
// can prove none of it is left over. Tests register before they create.
var created struct {
	sync.Mutex
	mounts []string          // mountpoints
	loops  map[string]string // loop device -> backing file
	pids   []int             // swapfs daemons
}

func trackMount(dir string) {
	created.Lock()
	defer created.Unlock()
	created.mounts = append(created.mounts, dir)
}

func trackLoop(dev, backing string) {
	created.Lock()
	defer created.Unlock()
	if created.loops == nil {
		created.loops = map[string]string{}
	}
	created.loops[dev] = backing
}

func trackPid(pid int) {
	created.Lock()
	defer created.Unlock()
	created.pids = append(created.pids, pid)
}

// untrackPid forgets a daemon that has been reaped: its pid may be reused by anything.
func untrackPid(pid int) {
	created.Lock()
	defer created.Unlock()
	created.pids = slices.DeleteFunc(created.pids, func(p int) bool { return p == pid })
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	skipReason = environmentProblem()
	if skipReason != "" {
		fmt.Printf("integration: every test skips: %s\n", skipReason)
		return m.Run()
	}
	binDir, err := os.MkdirTemp("", "swapfs-integration-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		return 1
	}
	defer os.RemoveAll(binDir)
	swapfsBin = filepath.Join(binDir, "swapfs")
	// Control sockets of the tests' daemons go here, so that one left by a killed daemon
	// goes away with the run instead of staying in /run/swapfs.
	os.Setenv("SWAPFS_RUN_DIR", filepath.Join(binDir, "run"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-buildvcs=false", "-o", swapfsBin, "github.com/swapfs/swapfs/cmd/swapfs")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: go build ./cmd/swapfs: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if left := leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "integration: FAIL: the tests left these behind (now cleaned up as far as possible):\n")
		for _, l := range left {
			fmt.Fprintf(os.Stderr, "  %s\n", l)
		}
		code = 1
	}
	return code
}

// environmentProblem says why real mounts are impossible here, or "".
func environmentProblem() string {
	if os.Geteuid() != 0 {
		return "not running as root: swapfs mounts with mount(2) directly (no fusermount), which needs root"
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Sprintf("cannot open /dev/fuse (%v): load the fuse module or run where FUSE is available", err)
	}
	f.Close()
	return ""
}

// requireEnv skips t when the machine cannot mount.
func requireEnv(t testing.TB) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// leftovers lists (and removes) mounts, loop devices, swap areas and daemons that the tests
// created and did not clean up.
func leftovers() []string {
	created.Lock()
	defer created.Unlock()
	var left []string
	for _, dir := range created.mounts {
		if mounted(dir) {
			left = append(left, "mount on "+dir)
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	}
	for dev, backing := range created.loops {
		if loopBacking(dev) == backing {
			left = append(left, fmt.Sprintf("loop device %s on %s", dev, backing))
			runQuiet("losetup", "-d", dev)
		}
	}
	areas, _ := swap.ActiveSwaps()
	for _, a := range areas {
		if ours(a.Filename) {
			left = append(left, "swap area "+a.Filename)
			runQuiet("swapoff", a.Filename)
		}
	}
	for _, pid := range created.pids {
		// The comm check: a daemon that exited unseen may have left its pid to another
		// program.
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); alive(pid) && strings.TrimSpace(string(comm)) == "swapfs" {
			left = append(left, fmt.Sprintf("swapfs daemon, pid %d", pid))
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return left
}

// ours reports whether a swap area is a loop device or file the tests made. Called with
// created locked.
func ours(path string) bool {
	if backing, ok := created.loops[path]; ok {
		// Still backed by what we attached: the device number alone may have been reused
		// by another program since we detached it.
		return loopBacking(path) == backing
	}
	for _, dir := range created.mounts {
		if strings.HasPrefix(path, dir+"/") {
			return true
		}
	}
	return false
}

// runQuiet runs a cleanup command, with a timeout, ignoring its outcome.
func runQuiet(name string, args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exec.CommandContext(ctx, name, args...).Run()
}

// loopBacking returns the file behind loop device dev, "" if it has none.
func loopBacking(dev string) string {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "loop", "backing_file"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
