package fs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/fs"
	"github.com/swapfs/swapfs/meta"
	"github.com/swapfs/swapfs/swap"
)

// testTimeout bounds one test's mount: a FUSE deadlock would otherwise hang the whole run.
const testTimeout = 2 * time.Minute

// mount is one swapfs mounted in-process for a test.
type mount struct {
	Dir      string // the mountpoint
	StoreDir string
	Store    *meta.Store
	Server   *fs.Server
}

// requireFUSE skips tests that cannot mount: they need root (direct mount(2)) and /dev/fuse.
func requireFUSE(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting swapfs needs root (direct mount(2), allow_other); run the fs tests as root")
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("skipped: /dev/fuse is not usable: %v", err)
	}
	f.Close()
}

// newMount makes a 256 MiB store in a temporary directory and mounts it. Cleanup unmounts
// (with retries), checks the store's invariants and closes it; a watchdog turns a hang into
// a failure with every goroutine's stack.
func newMount(t testing.TB, opts ...func(*fs.Options)) *mount {
	t.Helper()
	return newMountMkfs(t, meta.MkfsOptions{Size: 256 << 20}, opts...)
}

// newMountMkfs is newMount on a store made with mkfs options mo.
func newMountMkfs(t testing.TB, mo meta.MkfsOptions, opts ...func(*fs.Options)) *mount {
	t.Helper()
	requireFUSE(t)
	base := t.TempDir()
	// t.TempDir's directories are 0700; other users (asUser) must reach the mountpoint.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := &mount{Dir: filepath.Join(base, "mnt"), StoreDir: filepath.Join(base, "store")}
	if err := os.Mkdir(m.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := meta.Mkfs(m.StoreDir, mo); err != nil {
		t.Fatalf("Mkfs: %v", err)
	}
	store, err := meta.Open(m.StoreDir, meta.OpenOptions{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	m.Store = store
	t.Cleanup(func() {
		for _, p := range store.Check() {
			t.Errorf("store.Check: %v", p)
		}
		if err := store.Close(); err != nil {
			t.Errorf("store.Close: %v", err)
		}
	})
	m.mount(t, opts...)
	return m
}

// mount mounts m.Store on m.Dir; Cleanup unmounts it.
func (m *mount) mount(t testing.TB, opts ...func(*fs.Options)) {
	t.Helper()
	o := fs.Options{FsName: m.StoreDir}
	for _, f := range opts {
		f(&o)
	}
	srv, err := fs.Mount(m.Store, m.Dir, o)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	m.Server = srv
	name := t.Name()
	var st syscall.Stat_t
	if err := syscall.Stat(m.Dir, &st); err != nil {
		t.Fatalf("stat the new mount: %v", err)
	}
	// Not stat'ed again from the watchdog: with a request stuck, that would hang too.
	abort := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", unix.Minor(st.Dev))
	watchdog := time.AfterFunc(testTimeout, func() {
		// The panic runs no cleanup: fail the stuck requests and detach the mount first, so
		// that it is not left behind dead.
		os.WriteFile(abort, []byte("1"), 0)
		syscall.Unmount(m.Dir, syscall.MNT_DETACH)
		debug.SetTraceback("all")
		panic(fmt.Sprintf("%s: still running after %v: a FUSE request is probably stuck", name, testTimeout))
	})
	t.Cleanup(func() {
		watchdog.Stop()
		m.unmount(t)
	})
}

// unmount unmounts with retries (a just-closed file can keep the mount busy for a moment);
// as a last resort it detaches the mount, so one failed test does not leave it behind.
func (m *mount) unmount(t testing.TB) {
	t.Helper()
	if m.Server == nil {
		return
	}
	done := make(chan error, 1)
	go func() {
		var err error
		for try := 0; try < 20; try++ {
			if err = m.Server.Unmount(); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("unmount %s: %v", m.Dir, err)
			syscall.Unmount(m.Dir, syscall.MNT_DETACH)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("unmount %s: timed out; detaching", m.Dir)
		syscall.Unmount(m.Dir, syscall.MNT_DETACH)
	}
	m.Server = nil
}

// withUmask sets the process umask for the test (it is process-wide: tests using it must
// not run in parallel) and restores it in Cleanup.
func withUmask(t testing.TB, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

// path joins names under the mountpoint.
func (m *mount) path(names ...string) string {
	return filepath.Join(append([]string{m.Dir}, names...)...)
}

// wantErrno fails unless err carries errno want.
func wantErrno(t testing.TB, what string, err error, want syscall.Errno) {
	t.Helper()
	var got syscall.Errno
	if !errors.As(err, &got) || got != want {
		t.Errorf("%s: got error %v, want %v (%d)", what, err, want, int(want))
	}
}

func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	must(t, "write "+path, os.WriteFile(path, data, mode))
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, "read "+path, err)
	return b
}

func lstat(t testing.TB, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	must(t, "lstat "+path, unix.Lstat(path, &st))
	return st
}

func statfs(t testing.TB, path string) unix.Statfs_t {
	t.Helper()
	var st unix.Statfs_t
	must(t, "statfs "+path, unix.Statfs(path, &st))
	return st
}

// pattern is len bytes that differ from block to block, so misplaced data shows.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/7) ^ byte(i>>12) ^ seed
	}
	return b
}

func sameBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Errorf("%s: %d bytes, want %d; first difference at byte %d", what, len(got), len(want), i)
	}
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("%s: not true after %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// asUser runs fn on an OS thread whose credentials are uid and gid (and no supplementary
// groups), as an unprivileged process would have them. Linux credentials are per thread;
// the raw syscalls change this thread's only (syscall.Setresuid would change every thread,
// including go-fuse's). The thread stays locked and dies with the goroutine, so no other
// goroutine ever runs with these credentials.
func asUser(t testing.TB, uid, gid int, fn func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			errc <- fmt.Errorf("setgroups: %w", e)
			return
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
			errc <- fmt.Errorf("setresgid: %w", e)
			return
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
			errc <- fmt.Errorf("setresuid: %w", e)
			return
		}
		errc <- fn()
	}()
	select {
	case err := <-errc:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("operation as uid %d did not finish within a minute", uid)
		return nil
	}
}

// dirent is one entry of a raw getdents64 listing.
type dirent struct {
	Ino  uint64
	Off  int64
	Type uint8
	Name string
}

// parseDirents decodes struct linux_dirent64 records.
func parseDirents(b []byte) []dirent {
	var out []dirent
	for len(b) >= 19 {
		reclen := int(b[16]) | int(b[17])<<8
		name := b[19:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		out = append(out, dirent{
			Ino:  uint64FromLE(b[0:8]),
			Off:  int64(uint64FromLE(b[8:16])),
			Type: b[18],
			Name: string(name),
		})
		b = b[reclen:]
	}
	return out
}

func uint64FromLE(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// getdents reads one batch of entries from fd with a buffer of size bytes; none at the end.
func getdents(t testing.TB, fd int, size int) []dirent {
	t.Helper()
	buf := make([]byte, size)
	n, err := unix.Getdents(fd, buf)
	must(t, "getdents", err)
	return parseDirents(buf[:n])
}

// readDirAll lists a directory with getdents64, "." and ".." included.
func readDirAll(t testing.TB, dir string) []dirent {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, "open "+dir, err)
	defer unix.Close(fd)
	var all []dirent
	for {
		batch := getdents(t, fd, 4096)
		if len(batch) == 0 {
			return all
		}
		all = append(all, batch...)
	}
}

// procMount returns the mount on mountpoint dir, from /proc/self/mountinfo.
func procMount(t testing.TB, dir string) swap.Mount {
	t.Helper()
	mounts, err := swap.Mounts()
	must(t, "read the mount table", err)
	m, ok := swap.MountOn(mounts, dir)
	if !ok {
		t.Fatalf("%s is not in /proc/self/mountinfo", dir)
	}
	return m
}

// command is exec.Command bounded by a minute: a command stuck on the mount ends, and the
// test with it, instead of the whole run.
func command(t testing.TB, name string, args ...string) *exec.Cmd {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return exec.CommandContext(ctx, name, args...)
}

// detachDeadTestMounts detaches the mounts a crashed run of these tests left in the
// temporary directory: a test process killed while it served a mount (go test's -timeout
// after a hang) runs no cleanup, and the kernel keeps the mount, answering ENOTCONN. Only
// dead ones: a live one is another run's.
func detachDeadTestMounts() {
	mounts, err := swap.Mounts()
	if err != nil {
		return
	}
	for _, m := range mounts {
		if m.FSType != "fuse.swapfs" || !strings.HasPrefix(m.Mountpoint, filepath.Join(os.TempDir(), "Test")) {
			continue
		}
		statErr := make(chan error, 1)
		go func() { // a live mount whose server is stuck would not answer: not waited for
			var st syscall.Stat_t
			statErr <- syscall.Stat(m.Mountpoint, &st)
		}()
		select {
		case err := <-statErr:
			if errors.Is(err, syscall.ENOTCONN) {
				fmt.Fprintf(os.Stderr, "detaching %s, left dead by a crashed run\n", m.Mountpoint)
				syscall.Unmount(m.Mountpoint, syscall.MNT_DETACH)
			}
		case <-time.After(2 * time.Second):
		}
	}
}
