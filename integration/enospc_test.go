package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestENOSPC fills a small store: the write that does not fit fails with ENOSPC and nothing
// else, statfs shows the volume full, no block leaks (fsck), and deleting the file gives
// all the space back.
func TestENOSPC(t *testing.T) {
	requireEnv(t)
	store := filepath.Join(t.TempDir(), "store")
	mkfs(t, store, "--size", "64M")
	m := mountStore(t, withStore(store))
	start := statfs(t, m.Dir)
	if start.Bfree == 0 || start.Bfree > start.Blocks {
		t.Fatalf("statfs of a new store: %+v", start)
	}
	startFree := start.Bfree * uint64(start.Bsize)

	path := filepath.Join(m.Dir, "filler")
	written, err := fill(path)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the store: %v after %d bytes, want ENOSPC", err, written)
	}
	if slack := int64(startFree) - written; slack < 0 || slack > 64<<10 {
		t.Errorf("wrote %d bytes before ENOSPC, but statfs said %d were free", written, startFree)
	}
	full := statfs(t, m.Dir)
	if full.Bfree*uint64(full.Bsize) > 64<<10 {
		t.Errorf("statfs of the full store shows %d free blocks of %d bytes, want ~0", full.Bfree, full.Bsize)
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() != written {
		t.Errorf("filler: size %v, %v; want the %d bytes written", st.Size(), err, written)
	}

	// A full store must be consistent on disk too.
	m.Unmount()
	m = mountStore(t, withStore(store))
	path = filepath.Join(m.Dir, "filler")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	// Freed blocks return as the unlink commits and the kernel forgets the inode.
	deadline := time.Now().Add(10 * time.Second)
	for {
		back := statfs(t, m.Dir)
		if back.Bfree+4 >= start.Bfree {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after deleting the file statfs shows %d free blocks, want about %d as at the start", back.Bfree, start.Bfree)
		}
		time.Sleep(100 * time.Millisecond)
	}
	again := randomBytes(t, 8*mib)
	if err := os.WriteFile(filepath.Join(m.Dir, "again"), again, 0o644); err != nil {
		t.Fatalf("writing after the space came back: %v", err)
	}
}

// fill writes to path until a write fails with ENOSPC, in 1 MiB chunks and then, to use the
// last blocks too, in 4 KiB ones. It returns the bytes written and the last error.
func fill(path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var written int64
	for _, size := range []int{mib, 4096} {
		chunk := make([]byte, size)
		for i := range chunk {
			chunk[i] = byte(i*7 + 1)
		}
		for {
			n, err := f.Write(chunk)
			written += int64(n)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				return written, err
			}
			if written > 1<<30 {
				return written, errors.New("wrote 1 GiB to a 64 MiB store without ENOSPC")
			}
		}
	}
	if err := f.Sync(); err != nil {
		return written, fmt.Errorf("fsync after ENOSPC: %w", err)
	}
	return written, syscall.ENOSPC
}

func statfs(t testing.TB, dir string) unix.Statfs_t {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	return st
}
