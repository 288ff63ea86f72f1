package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecondMountRefused: one store, one mount. A second mount and an fsck of a mounted
// store are refused and say why.
func TestSecondMountRefused(t *testing.T) {
	m := mountStore(t)
	writeFile(t, filepath.Join(m.Dir, "f"), []byte("first mount"))

	out := refusedMount(t, m.Store)
	if !strings.Contains(out, "already mounted / in use by another swapfs") {
		t.Errorf("second mount: the message does not say the store is in use:\n%s", out)
	}
	r := swapfs(t.TempDir(), "fsck", m.Store)
	if r.code != 8 || !strings.Contains(r.out, "mounted") {
		t.Errorf("fsck of a mounted store: exit %d %v, want 8 and a message that it is mounted:\n%s", r.code, r.err, r.out)
	}
	if got, err := os.ReadFile(filepath.Join(m.Dir, "f")); err != nil || string(got) != "first mount" {
		t.Errorf("the first mount suffered: %q, %v", got, err)
	}
}

// TestMountHelper calls the binary as mount(8) calls helpers: as mount.swapfs with
// "SRC DIR -o OPTS", and through mount(8) itself with types swapfs and fuse.swapfs.
func TestMountHelper(t *testing.T) {
	requireEnv(t)
	t.Run("mount.swapfs argv", func(t *testing.T) {
		link := filepath.Join(t.TempDir(), "mount.swapfs")
		if err := os.Symlink(swapfsBin, link); err != nil {
			t.Fatal(err)
		}
		store, mnt, logDir := helperDirs(t)
		r := runCmd(cmdTimeout, []string{"SWAPFS_LOG_DIR=" + logDir}, link, store, mnt, "-o", "rw,noatime,nodev,_netdev,x-systemd.automount")
		afterHelperMount(t, r, store, mnt, "noatime")
	})
	t.Run("swapfs SRC DIR -o", func(t *testing.T) {
		// How mount.fuse(8) runs a FUSE filesystem's program.
		store, mnt, logDir := helperDirs(t)
		r := runCmd(cmdTimeout, []string{"SWAPFS_LOG_DIR=" + logDir}, swapfsBin, store, mnt, "-o", "rw,nosuid,defaults")
		afterHelperMount(t, r, store, mnt, "nosuid")
	})
	t.Run("fake mount", func(t *testing.T) {
		store, mnt, logDir := helperDirs(t)
		link := filepath.Join(t.TempDir(), "mount.fuse.swapfs")
		if err := os.Symlink(swapfsBin, link); err != nil {
			t.Fatal(err)
		}
		r := runCmd(cmdTimeout, []string{"SWAPFS_LOG_DIR=" + logDir}, link, store, mnt, "-f", "-o", "rw")
		if r.code != 0 || mounted(mnt) {
			t.Errorf("mount -f (fake): exit %d %v, mounted %v\n%s", r.code, r.err, mounted(mnt), r.out)
		}
		if _, err := os.Stat(store); err == nil {
			t.Errorf("a fake mount created the store")
		}
	})
	t.Run("unknown option", func(t *testing.T) {
		store, mnt, logDir := helperDirs(t)
		r := runCmd(cmdTimeout, []string{"SWAPFS_LOG_DIR=" + logDir}, swapfsBin, "mount", "-o", "rw,frobnicate", store, mnt)
		if r.code != 32 || mounted(mnt) || !strings.Contains(r.out, `unknown mount option "frobnicate"`) {
			t.Errorf("unknown option: exit %d, mounted %v, want a refusal naming the option:\n%s", r.code, mounted(mnt), r.out)
		}
	})
	for _, typ := range []string{"swapfs", "fuse.swapfs"} {
		t.Run("mount -t "+typ, func(t *testing.T) {
			installHelper(t, "/sbin/mount."+typ)
			store, mnt, logDir := helperDirs(t)
			r := runCmd(cmdTimeout, []string{"SWAPFS_LOG_DIR=" + logDir}, "mount", "-t", typ, "-o", "noatime", store, mnt)
			afterHelperMount(t, r, store, mnt, "noatime")
		})
	}
	t.Run("fstab line", func(t *testing.T) {
		installHelper(t, "/sbin/mount.fuse.swapfs")
		store, mnt, logDir := helperDirs(t)
		fstab := filepath.Join(t.TempDir(), "fstab")
		line := fmt.Sprintf("%s %s fuse.swapfs defaults,noatime,nofail,_netdev,comment=test 0 0\n", store, mnt)
		writeFile(t, fstab, []byte("# a test fstab\n"+line))
		// mount -T reads another fstab instead of /etc/fstab (mount(8), --fstab).
		r := runCmd(cmdTimeout, []string{"SWAPFS_LOG_DIR=" + logDir}, "mount", "-T", fstab, mnt)
		afterHelperMount(t, r, store, mnt, "noatime")
	})
}

// helperDirs gives a test a store path (not yet made), a mountpoint and a log directory.
func helperDirs(t *testing.T) (store, mnt, logDir string) {
	dir := t.TempDir()
	store, mnt, logDir = filepath.Join(dir, "store"), filepath.Join(dir, "mnt"), filepath.Join(dir, "log")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	trackMount(mnt)
	// A helper mount the test expects to fail or to be fake, and that is made anyway, is
	// undone here; the ones made on purpose are unmounted by afterHelperMount before this.
	t.Cleanup(func() {
		if mounted(mnt) {
			if err := unmountDir(mnt); err != nil {
				t.Errorf("unmount %s: %v", mnt, err)
			}
			waitNoDaemon(t, store)
		}
	})
	return store, mnt, logDir
}

// afterHelperMount checks a mount made by a helper invocation, uses it, and unmounts it
// with umount(8) when t ends.
func afterHelperMount(t *testing.T, r result, store, mnt, wantOption string) {
	t.Helper()
	t.Cleanup(func() {
		if err := unmountDir(mnt); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
		waitNoDaemon(t, store)
		requireClean(t, store)
	})
	if r.err != nil || r.code != 0 {
		t.Fatalf("mount: exit %d %v\n%s", r.code, r.err, r.out)
	}
	if !waitMounted(mnt, true, mountTimeout) {
		t.Fatalf("mount exited 0 but %s is not mounted:\n%s", mnt, r.out)
	}
	entry, _ := mountEntry(mnt)
	if entry.Source != store || entry.FSType != "fuse.swapfs" {
		t.Errorf("the mount table shows %+v, want source %s and type fuse.swapfs", entry, store)
	}
	if opts := entry.AllOptions(); !slices.Contains(opts, wantOption) {
		t.Errorf("mount options %q lack %q", opts, wantOption)
	}
	writeFile(t, filepath.Join(mnt, "hello"), []byte("hello"))
	if got, err := os.ReadFile(filepath.Join(mnt, "hello")); err != nil || string(got) != "hello" {
		t.Errorf("read back: %q, %v", got, err)
	}
}

// waitNoDaemon waits until no process holds the store's lock: its daemon has exited.
func waitNoDaemon(t *testing.T, store string) {
	t.Helper()
	deadline := time.Now().Add(exitTimeout)
	for {
		r := swapfs(t.TempDir(), "fsck", store)
		if r.code != 8 || !strings.Contains(r.out, "in use") {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the daemon of %s still holds it %v after its unmount", store, exitTimeout)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// installHelper puts a symlink to the binary at path for mount(8), which looks for helpers
// in /sbin only, and removes it when t ends. It skips rather than replace a helper that is
// already installed.
func installHelper(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath("mount"); err != nil {
		t.Skip("mount(8) is not installed")
	}
	if _, err := os.Lstat(path); err == nil {
		t.Skipf("%s exists already (swapfs installed?); not replacing it for a test", path)
	}
	if err := os.Symlink(swapfsBin, path); err != nil {
		t.Skipf("cannot install %s temporarily: %v", path, err)
	}
	t.Cleanup(func() {
		if err := os.Remove(path); err != nil {
			t.Errorf("remove the temporary %s: %v", path, err)
		}
	})
}

// TestSigterm: SIGTERM to a foreground daemon unmounts and exits 0; while the mount is
// busy the daemon keeps serving.
func TestSigterm(t *testing.T) {
	requireEnv(t)
	dir := t.TempDir()
	store, mnt := filepath.Join(dir, "store"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	d := startForeground(t, store, mnt)
	writeFile(t, filepath.Join(mnt, "kept"), []byte("kept across SIGTERM"))

	busy, err := os.Open(filepath.Join(mnt, "kept"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if d.exited(3 * time.Second) {
		t.Fatalf("the daemon exited on SIGTERM while a file was open (%v):\n%s", d.err, d.out)
	}
	if !mounted(mnt) {
		t.Fatalf("busy mount vanished after SIGTERM")
	}
	buf := make([]byte, 100)
	if n, err := busy.Read(buf); err != nil || string(buf[:n]) != "kept across SIGTERM" {
		t.Errorf("reading the open file after a refused SIGTERM: %q, %v", buf[:n], err)
	}
	busy.Close()

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !d.exited(exitTimeout) {
		t.Fatalf("the daemon did not exit %v after SIGTERM:\n%s", exitTimeout, d.out)
	}
	var exit *exec.ExitError
	if d.err != nil {
		if errors.As(d.err, &exit) {
			t.Errorf("daemon exit status %d after SIGTERM, want 0:\n%s", exit.ExitCode(), d.out)
		} else {
			t.Errorf("daemon: %v", d.err)
		}
	}
	if mounted(mnt) {
		t.Errorf("%s is still mounted after the daemon exited", mnt)
	}
	if !strings.Contains(d.out.String(), "still serving") {
		t.Errorf("the daemon's log does not say it kept serving the busy mount:\n%s", d.out)
	}
	requireClean(t, store)

	m := mountStore(t, withStore(store))
	if got, err := os.ReadFile(filepath.Join(m.Dir, "kept")); err != nil || string(got) != "kept across SIGTERM" {
		t.Errorf("after SIGTERM and remount: %q, %v", got, err)
	}
}
