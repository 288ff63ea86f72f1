package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCrash kills the daemon with SIGKILL while files are being written. Every file that was
// fsynced (with its directory) before the kill is there afterwards with its exact contents,
// and the store is consistent.
func TestCrash(t *testing.T) {
	requireEnv(t)
	dir := t.TempDir()
	store, mnt := filepath.Join(dir, "store"), filepath.Join(dir, "mnt")
	mkfs(t, store, "--size", "1G")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	d := startForeground(t, store, mnt)

	synced := map[string][]byte{}
	for i := range 20 {
		name := fmt.Sprintf("synced-%02d", i)
		data := randomBytes(t, 4096*(i+1)+i)
		writeSynced(t, filepath.Join(mnt, name), data)
		synced[name] = data
	}

	killWhileWriting(t, d, mnt, 500*time.Millisecond)
	requireClean(t, store)

	m := mountStore(t, withStore(store))
	for name, want := range synced {
		got, err := os.ReadFile(filepath.Join(m.Dir, name))
		if err != nil {
			t.Errorf("fsynced file %s after the crash: %v", name, err)
		} else if !bytes.Equal(got, want) {
			t.Errorf("fsynced file %s after the crash: %d bytes, want %d; equal: false", name, len(got), len(want))
		}
	}
	// What was not fsynced may be lost or short, but whatever survived reads without error.
	hashTree(t, m.Dir)
}

// killWhileWriting kills the daemon serving mnt with SIGKILL after it has served writers
// that never fsync (files unsynced-N) for a while, then detaches the dead mount.
func killWhileWriting(t *testing.T, d *daemon, mnt string, after time.Duration) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	stopWriters := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWriters() // also when this fails: no writer outlives it
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scribble(filepath.Join(mnt, fmt.Sprintf("unsynced-%d", w)), stop)
		}()
	}
	time.Sleep(after)
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !d.exited(exitTimeout) {
		t.Fatalf("swapfs daemon did not die of SIGKILL")
	}
	stopWriters() // writers fail with ENOTCONN once the daemon is gone
	// The kernel keeps a mount whose daemon died; it answers ENOTCONN until detached.
	if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
		t.Fatalf("detach the dead mount %s: %v", mnt, err)
	}
}

// writeSynced writes a file and makes it durable as an application must: fsync the file,
// then its directory.
func writeSynced(t *testing.T, path string, data []byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", path, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		t.Fatalf("fsync directory %s: %v", filepath.Dir(path), err)
	}
}

// scribble appends to path, and makes and removes small files beside it, until stop is
// closed or the mount fails.
func scribble(path string, stop <-chan struct{}) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		if _, err := f.Write(chunk); err != nil {
			return
		}
		side := fmt.Sprintf("%s.%d", path, i%8)
		if os.WriteFile(side, chunk[:1000], 0o644) != nil {
			return
		}
		if i%3 == 0 && os.Remove(side) != nil {
			return
		}
	}
}
