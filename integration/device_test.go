package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// attachLoop attaches a new sparse file of size bytes to a free loop device and detaches it
// when t ends.
func attachLoop(t *testing.T, size int64) (dev, file string) {
	t.Helper()
	requireEnv(t)
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("losetup (util-linux) is not installed")
	}
	file = filepath.Join(t.TempDir(), "volume.img")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dev = strings.TrimSpace(mustRun(t, "losetup", "-f", "--show", file))
	trackLoop(dev, file)
	t.Cleanup(func() {
		if r := runCmd(cmdTimeout, nil, "losetup", "-d", dev); r.code != 0 {
			t.Errorf("losetup -d %s: exit %d %v\n%s", dev, r.code, r.err, r.out)
		}
	})
	return dev, file
}

// TestBlockDevice uses a loop device as the data volume: data written survives a remount.
func TestBlockDevice(t *testing.T) {
	dev, _ := attachLoop(t, 256*mib)
	store := filepath.Join(t.TempDir(), "store")
	mkfs(t, store, "--device", dev)
	if _, err := os.Stat(filepath.Join(store, "data")); err == nil {
		t.Errorf("mkfs --device made a data file in the store too")
	}

	m := mountStore(t, withStore(store))
	big := randomBytes(t, 20*mib+4321)
	if err := os.WriteFile(filepath.Join(m.Dir, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.Dir, "small"), []byte("on a block device\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(m.Dir, "big")); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("read back big: %d bytes, %v; contents equal: %v", len(got), err, bytes.Equal(got, big))
	}
	m.Unmount()

	m2 := mountStore(t, withStore(store))
	if got, err := os.ReadFile(filepath.Join(m2.Dir, "big")); err != nil || !bytes.Equal(got, big) {
		t.Errorf("after remount, big: %d bytes, %v; contents equal: %v", len(got), err, bytes.Equal(got, big))
	}
	if got, err := os.ReadFile(filepath.Join(m2.Dir, "small")); err != nil || string(got) != "on a block device\n" {
		t.Errorf("after remount, small = %q, %v", got, err)
	}
}

// TestWrongDevice points a store's recorded device path at other devices: one of another
// size, and one that holds another store. Both are refused with a clear message, and nothing
// on them or in the store changes. The store records a symlink (as one would use
// /dev/disk/by-id), so the test can repoint it without racing other users for loop numbers.
func TestWrongDevice(t *testing.T) {
	ownDev, _ := attachLoop(t, 256*mib)
	smallDev, smallFile := attachLoop(t, 128*mib)
	otherDev, otherFile := attachLoop(t, 256*mib)
	otherStore := filepath.Join(t.TempDir(), "other")
	mkfs(t, otherStore, "--device", otherDev)

	dir := t.TempDir()
	link := filepath.Join(dir, "volume")
	store := filepath.Join(dir, "store")
	repoint := func(dev string) {
		t.Helper()
		os.Remove(link)
		if err := os.Symlink(dev, link); err != nil {
			t.Fatal(err)
		}
	}
	repoint(ownDev)
	mkfs(t, store, "--device", link)

	tests := []struct {
		name, dev, file string
		want            []string // each must appear in the error
	}{
		{"smaller device", smallDev, smallFile, []string{"data volume", "bytes"}},
		{"device of another store", otherDev, otherFile, []string{"data volume", "belongs to store"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repoint(tt.dev)
			beforeDev := hashFile(t, tt.file)
			beforeStore := hashTree(t, store)
			out := refusedMount(t, store)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("swapfs mount output does not say %q:\n%s", w, out)
				}
			}
			if hashFile(t, tt.file) != beforeDev {
				t.Errorf("the refused device %s was written to", tt.dev)
			}
			assertSameTree(t, store, beforeStore)
		})
	}
	repoint(ownDev)
	m := mountStore(t, withStore(store))
	if err := os.WriteFile(filepath.Join(m.Dir, "f"), []byte("right device"), 0o644); err != nil {
		t.Error(err)
	}
	m.Unmount()
	requireClean(t, otherStore)
}

// refusedMount runs "swapfs mount STORE MNT", which must fail cleanly: non-zero exit, a
// message, no panic, nothing mounted. It returns the output.
func refusedMount(t *testing.T, store string, args ...string) string {
	t.Helper()
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	trackMount(mnt)
	r := swapfs(t.TempDir(), append(append([]string{"mount"}, args...), store, mnt)...)
	if mounted(mnt) {
		unmountDir(mnt)
		t.Fatalf("swapfs mount succeeded, want a refusal:\n%s", r.out)
	}
	if r.err != nil || r.code == 0 {
		t.Fatalf("swapfs mount: exit %d %v, want a failure:\n%s", r.code, r.err, r.out)
	}
	noCrash(t, r.out)
	return r.out
}

// noCrash fails t if out shows a Go panic or a goroutine dump instead of a message.
func noCrash(t *testing.T, out string) {
	t.Helper()
	if strings.TrimSpace(out) == "" {
		t.Errorf("failed without saying why")
	}
	for _, bad := range []string{"panic:", "goroutine ", "SIGSEGV", "runtime error"} {
		if strings.Contains(out, bad) {
			t.Errorf("output shows a crash (%q), want a clear message:\n%s", bad, out)
		}
	}
}

// assertSameTree fails t if any file under dir differs from the hashes taken before.
func assertSameTree(t *testing.T, dir string, before map[string]string) {
	t.Helper()
	after := hashTree(t, dir)
	for name, sum := range before {
		if after[name] != sum {
			t.Errorf("%s changed (or vanished) although the mount was refused", filepath.Join(dir, name))
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			t.Errorf("%s appeared although the mount was refused", filepath.Join(dir, name))
		}
	}
}
