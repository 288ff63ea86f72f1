package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/swap"
)

// Timeouts for anything that could hang.
const (
	cmdTimeout     = 60 * time.Second // one external command
	mountTimeout   = 15 * time.Second // a mount to show in the mount table
	unmountTimeout = 20 * time.Second // a busy mount to come free
	exitTimeout    = 20 * time.Second // a daemon to exit after its unmount
)

// result is how an external command ended.
type result struct {
	out  string // stdout and stderr
	code int    // exit code; -1 if it did not run to an exit
	err  error  // set when the command could not start or timed out
}

// runCmd runs name with a timeout; env adds to the environment.
func runCmd(timeout time.Duration, env []string, name string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	// A daemon that inherited our pipes would keep Wait waiting; it must not.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	r := result{out: string(out), code: -1}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.err = fmt.Errorf("%s %s: timed out after %v", name, strings.Join(args, " "), timeout)
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		r.err = fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	default:
		r.code = 0
	}
	return r
}

// mustRun runs a command that has to succeed and returns its output.
func mustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	r := runCmd(cmdTimeout, nil, name, args...)
	if r.err != nil || r.code != 0 {
		t.Fatalf("%s %s: exit %d %v\n%s", name, strings.Join(args, " "), r.code, r.err, r.out)
	}
	return r.out
}

// swapfs runs the binary under test with logs kept in logDir.
func swapfs(logDir string, args ...string) result {
	return runCmd(cmdTimeout, []string{"SWAPFS_LOG_DIR=" + logDir}, swapfsBin, args...)
}

// mkfs makes a store with "swapfs mkfs ARGS STORE".
func mkfs(t testing.TB, store string, args ...string) {
	t.Helper()
	r := swapfs(t.TempDir(), append(append([]string{"mkfs"}, args...), store)...)
	if r.err != nil || r.code != 0 {
		t.Fatalf("swapfs mkfs %s %s: exit %d %v\n%s", strings.Join(args, " "), store, r.code, r.err, r.out)
	}
}

// requireClean runs "swapfs fsck" and fails t unless the store is clean.
func requireClean(t testing.TB, store string) {
	t.Helper()
	r := swapfs(t.TempDir(), "fsck", store)
	if r.err != nil || r.code != 0 {
		t.Errorf("swapfs fsck %s: exit %d %v; want a clean store\n%s", store, r.code, r.err, r.out)
	}
}

// mountConfig is what mountStore mounts.
type mountConfig struct {
	store   string
	dir     string
	options string
}

type mountOpt func(*mountConfig)

// withStore mounts an existing store (default: a new one in a temporary directory).
func withStore(store string) mountOpt { return func(c *mountConfig) { c.store = store } }

// withOptions passes -o options.
func withOptions(o string) mountOpt { return func(c *mountConfig) { c.options = o } }

// swapfsMount is a store mounted by "swapfs mount", as a user does it: the command returns
// once the mount is ready and a daemon serves it in the background.
type swapfsMount struct {
	t         testing.TB
	Store     string
	Dir       string
	logDir    string
	pid       int
	unmounted bool
}

var daemonPid = regexp.MustCompile(`daemon pid (\d+)`)

// mountStore mounts a store and arranges for it to be unmounted, its daemon to exit and the
// store to be fsck-clean when t ends.
func mountStore(t testing.TB, opts ...mountOpt) *swapfsMount {
	t.Helper()
	requireEnv(t)
	var c mountConfig
	for _, o := range opts {
		o(&c)
	}
	base := t.TempDir()
	if c.store == "" {
		c.store = filepath.Join(base, "store")
	}
	c.dir = filepath.Join(base, "mnt")
	if err := os.Mkdir(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := &swapfsMount{t: t, Store: c.store, Dir: c.dir, logDir: filepath.Join(base, "log")}
	args := []string{"mount"}
	if c.options != "" {
		args = append(args, "-o", c.options)
	}
	trackMount(c.dir)
	t.Cleanup(m.Unmount)
	r := swapfs(m.logDir, append(args, c.store, c.dir)...)
	if r.err != nil || r.code != 0 {
		m.dumpLog()
		t.Fatalf("swapfs mount %s %s: exit %d %v\n%s", c.store, c.dir, r.code, r.err, r.out)
	}
	match := daemonPid.FindStringSubmatch(r.out)
	if match == nil {
		t.Fatalf("swapfs mount did not say the daemon's pid:\n%s", r.out)
	}
	m.pid, _ = strconv.Atoi(match[1])
	trackPid(m.pid)
	if !waitMounted(c.dir, true, mountTimeout) {
		t.Fatalf("swapfs mount exited 0 but %s is not in the mount table after %v:\n%s", c.dir, mountTimeout, r.out)
	}
	return m
}

// Unmount unmounts with umount(8), waits for the daemon to exit and checks the store. It
// runs as a cleanup too; a second call does nothing.
func (m *swapfsMount) Unmount() {
	t := m.t
	t.Helper()
	if m.unmounted {
		return
	}
	m.unmounted = true
	if err := unmountDir(m.Dir); err != nil {
		t.Errorf("unmount %s: %v", m.Dir, err)
	}
	if m.pid != 0 && !waitExit(m.pid, exitTimeout) {
		t.Errorf("swapfs daemon %d still runs %v after its unmount; killing it", m.pid, exitTimeout)
		syscall.Kill(m.pid, syscall.SIGKILL)
		waitExit(m.pid, exitTimeout)
	}
	requireClean(t, m.Store)
	if t.Failed() {
		m.dumpLog()
	}
}

// dumpLog shows the daemon's log, to explain a failure.
func (m *swapfsMount) dumpLog() {
	entries, _ := os.ReadDir(m.logDir)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(m.logDir, e.Name()))
		m.t.Logf("daemon log %s:\n%s", e.Name(), tail(string(b), 60))
	}
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = append([]string{"..."}, all[len(all)-lines:]...)
	}
	return strings.Join(all, "\n")
}

// unmountDir unmounts dir with umount(8), retrying while it is busy; after unmountTimeout it
// detaches it lazily so that nothing stays mounted, and reports the failure.
func unmountDir(dir string) error {
	deadline := time.Now().Add(unmountTimeout)
	var last result
	for time.Now().Before(deadline) {
		if !mounted(dir) {
			return nil
		}
		last = runCmd(cmdTimeout, nil, "umount", dir)
		if last.code == 0 {
			continue
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !mounted(dir) {
		return nil
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("umount failed for %v (%s %v), and lazy unmount failed too: %w", unmountTimeout, last.out, last.err, err)
	}
	return fmt.Errorf("umount failed for %v (%s %v); detached lazily", unmountTimeout, strings.TrimSpace(last.out), last.err)
}

// mounted reports whether dir is a mount point.
func mounted(dir string) bool {
	_, ok := mountEntry(dir)
	return ok
}

// mountEntry returns the mount on dir, the one on top if there are several.
func mountEntry(dir string) (swap.Mount, bool) {
	mounts, err := swap.Mounts()
	if err != nil {
		return swap.Mount{}, false
	}
	return swap.MountOn(mounts, dir)
}

func waitMounted(dir string, want bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if mounted(dir) == want {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitExit waits for a process that is not our child to go away.
func waitExit(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// daemon is "swapfs mount -f" running as our child.
type daemon struct {
	Store, Dir string
	cmd        *exec.Cmd
	out        *syncBuffer
	done       chan struct{}
	err        error // from Wait, valid once done is closed
}

// startForeground starts "swapfs mount -f ARGS STORE DIR" and waits for the mount. When t
// ends, a daemon still running is unmounted (or killed, if that fails) and reaped; the test
// checks the store itself.
func startForeground(t testing.TB, store, dir string, args ...string) *daemon {
	t.Helper()
	requireEnv(t)
	d := &daemon{Store: store, Dir: dir, out: &syncBuffer{}, done: make(chan struct{})}
	argv := append(append([]string{"mount", "-f"}, args...), store, dir)
	d.cmd = exec.Command(swapfsBin, argv...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	trackMount(dir)
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	trackPid(d.cmd.Process.Pid)
	go func() {
		d.err = d.cmd.Wait()
		untrackPid(d.cmd.Process.Pid)
		close(d.done)
	}()
	t.Cleanup(func() {
		if d.exited(0) {
			if mounted(dir) { // the daemon died under its mount: do not leave it dead
				unix.Unmount(dir, unix.MNT_DETACH)
			}
			return
		}
		if err := unmountDir(dir); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
		if !d.exited(exitTimeout) {
			t.Errorf("swapfs -f (pid %d) still runs %v after its unmount; killing it", d.cmd.Process.Pid, exitTimeout)
			d.cmd.Process.Kill()
			if !d.exited(exitTimeout) {
				t.Errorf("swapfs -f (pid %d) outlived SIGKILL by %v", d.cmd.Process.Pid, exitTimeout)
			}
		}
	})
	deadline := time.Now().Add(mountTimeout)
	for !mounted(dir) {
		if d.exited(0) {
			t.Fatalf("swapfs mount -f exited before mounting (%v):\n%s", d.err, d.out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not mounted %v after starting swapfs mount -f:\n%s", dir, mountTimeout, d.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

// exited waits up to timeout for the daemon to exit; with 0 it only looks.
func (d *daemon) exited(timeout time.Duration) bool {
	if timeout == 0 {
		select {
		case <-d.done:
			return true
		default: // a ready timer would otherwise win half the time against a closed d.done
			return false
		}
	}
	select {
	case <-d.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// startCommand starts cmd with its output in a syncBuffer, which the test may read while cmd
// runs, and returns the channel its exit comes on.
func startCommand(t testing.TB, cmd *exec.Cmd) (*syncBuffer, <-chan error) {
	t.Helper()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return out, exited
}

// syncBuffer collects a child's output while tests read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// hashTree maps every regular file under dir (relative path) to its SHA-256.
func hashTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		sums[rel] = hashFile(t, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

func hashFile(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := bufio.NewReaderSize(f, 1<<20).WriteTo(h); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
