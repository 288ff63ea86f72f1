package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCLIErrors: mistakes get a message that names the problem and a non-zero exit, and
// change nothing.
func TestCLIErrors(t *testing.T) {
	requireEnv(t)
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	mkfs(t, store, "--size", "64M")
	notDir := filepath.Join(dir, "file")
	writeFile(t, notDir, []byte("x"))
	emptyMnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(emptyMnt, 0o755); err != nil {
		t.Fatal(err)
	}
	trackMount(emptyMnt)
	missing := filepath.Join(dir, "missing")
	before := hashTree(t, store)

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"mkfs over a store", []string{"mkfs", "--size", "64M", store}, 1, "already holds a swapfs store"},
		{"mkfs bad size", []string{"mkfs", "--size", "1.5G", missing}, 2, `size "1.5G"`},
		{"mkfs size and device", []string{"mkfs", "--size", "1G", "--device", "/dev/null", missing}, 2, "exclude each other"},
		{"mount without mountpoint", []string{"mount", store}, 2, "want STORE and MOUNTPOINT"},
		{"mount on a missing dir", []string{"mount", store, missing}, 32, "does not exist"},
		{"mount on a file", []string{"mount", store, notDir}, 32, "not a directory"},
		{"mount read-only creates nothing", []string{"mount", "-o", "ro", missing, emptyMnt}, 32, "read-only mount cannot create"},
		{"bad commit interval", []string{"mount", "-o", "commit=0", store, emptyMnt}, 32, "commit=0"},
		{"fsck of a missing store", []string{"fsck", missing}, 8, "cannot check"},
		{"mkswapfile past 2^32 pages", []string{"mkswapfile", "--size", "17T", missing}, 2, "at most 16 TiB"},
		{"fsck without a store", []string{"fsck"}, 16, "want one STORE"},
		{"unknown command", []string{"mkfss", "store"}, 2, `unknown command "mkfss"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := swapfs(t.TempDir(), tt.args...)
			if r.err != nil || r.code != tt.code || !strings.Contains(r.out, tt.want) {
				t.Errorf("swapfs %s: exit %d %v, want exit %d and %q:\n%s",
					strings.Join(tt.args, " "), r.code, r.err, tt.code, tt.want, r.out)
			}
			noCrash(t, r.out)
			if mounted(emptyMnt) {
				unmountDir(emptyMnt)
				t.Errorf("something was mounted on %s", emptyMnt)
			}
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("a failed command created %s", missing)
	}
	assertSameTree(t, store, before)
	requireClean(t, store)
}

// TestReadOnly: -o ro serves the files and refuses every change with EROFS.
func TestReadOnly(t *testing.T) {
	requireEnv(t)
	store := filepath.Join(t.TempDir(), "store")
	mkfs(t, store, "--size", "64M") // small: the test hashes the whole store
	m := mountStore(t, withStore(store))
	writeFile(t, filepath.Join(m.Dir, "f"), []byte("read me"))
	m.Unmount()
	before := hashTree(t, m.Store)

	ro := mountStore(t, withStore(m.Store), withOptions("ro"))
	if got, err := os.ReadFile(filepath.Join(ro.Dir, "f")); err != nil || string(got) != "read me" {
		t.Errorf("read on a read-only mount: %q, %v", got, err)
	}
	if entry, _ := mountEntry(ro.Dir); !slices.Contains(entry.AllOptions(), "ro") {
		t.Errorf("mount options %q, want ro", entry.AllOptions())
	}
	for what, err := range map[string]error{
		"create": os.WriteFile(filepath.Join(ro.Dir, "new"), nil, 0o644),
		"mkdir":  os.Mkdir(filepath.Join(ro.Dir, "d"), 0o755),
		"remove": os.Remove(filepath.Join(ro.Dir, "f")),
		"chmod":  os.Chmod(filepath.Join(ro.Dir, "f"), 0o600),
	} {
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s on a read-only mount: %v, want EROFS", what, err)
		}
	}
	// fsck refuses a mounted store, even a read-only mount of it.
	if r := swapfs(t.TempDir(), "fsck", ro.Store); r.code != 8 || !strings.Contains(r.out, "mounted") {
		t.Errorf("fsck beside a read-only mount: exit %d %v, want 8 and that it is mounted:\n%s", r.code, r.err, r.out)
	}
	ro.Unmount()
	assertSameTree(t, m.Store, before)
}

// TestMakeInstall runs "make install" into a DESTDIR and checks that the binary and the
// mount(8) helper names land where mount(8) looks, pointing at the installed binary.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	dest := t.TempDir()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	r := runCmd(5*time.Minute, nil, "make", "-C", root, "--no-print-directory", "install", "DESTDIR="+dest, "BIN="+filepath.Join(t.TempDir(), "swapfs"))
	if r.err != nil || r.code != 0 {
		t.Fatalf("make install: exit %d %v\n%s", r.code, r.err, r.out)
	}
	bin := filepath.Join(dest, "usr/local/bin/swapfs")
	if st, err := os.Stat(bin); err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("installed binary %s: %v %v", bin, st, err)
	}
	for _, helper := range []string{"mount.swapfs", "mount.fuse.swapfs"} {
		target, err := os.Readlink(filepath.Join(dest, "sbin", helper))
		if err != nil || target != "/usr/local/bin/swapfs" {
			t.Errorf("/sbin/%s -> %q, %v; want a link to /usr/local/bin/swapfs", helper, target, err)
		}
	}
	if out := runCmd(time.Minute, nil, bin, "--help"); !strings.Contains(out.out, "mkfs") {
		t.Errorf("installed binary --help does not list mkfs: %v\n%s", out.err, out.out)
	}
	r = runCmd(time.Minute, nil, "make", "-C", root, "--no-print-directory", "uninstall", "DESTDIR="+dest)
	if r.err != nil || r.code != 0 {
		t.Fatalf("make uninstall: exit %d %v\n%s", r.code, r.err, r.out)
	}
	for _, p := range []string{"usr/local/bin/swapfs", "sbin/mount.swapfs", "sbin/mount.fuse.swapfs"} {
		if _, err := os.Lstat(filepath.Join(dest, p)); !os.IsNotExist(err) {
			t.Errorf("after make uninstall, %s: %v", p, err)
		}
	}
}
