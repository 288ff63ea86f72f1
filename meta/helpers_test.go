package meta_test

import (
	"errors"
	"sync"
	"syscall"
	"testing"

	"github.com/swapfs/swapfs/meta"
)

// newStore makes and opens a store of size bytes; Cleanup checks it and closes it.
func newStore(t testing.TB, size int64) (*meta.Store, string) {
	t.Helper()
	dir := mkfsTemp(t, size)
	s, err := meta.Open(dir, meta.OpenOptions{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		mustCheck(t, s)
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, dir
}

// newStoreNoCleanup makes and opens a store for a test that closes it itself, to reopen it
// or to work on its files, and checks it itself. It returns the store's close function: it
// closes the store once, however often it is called, and Cleanup calls it too, so a test
// that stops early (t.Fatal) does not leave the store open. Tests close the store only
// through it: meta's Close is not idempotent.
func newStoreNoCleanup(t testing.TB, size int64) (*meta.Store, string, func() error) {
	t.Helper()
	dir := mkfsTemp(t, size)
	s, closeStore := reopen(t, dir)
	return s, dir, closeStore
}

// mkfsTemp makes a store of size bytes in a temporary directory and returns the directory.
func mkfsTemp(t testing.TB, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := meta.Mkfs(dir, meta.MkfsOptions{Size: size}); err != nil {
		t.Fatalf("Mkfs: %v", err)
	}
	return dir
}

// reopen opens the store in dir again; Cleanup closes it unless the test did, through
// the returned function.
func reopen(t testing.TB, dir string) (*meta.Store, func() error) {
	t.Helper()
	s, err := meta.Open(dir, meta.OpenOptions{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	closeStore := sync.OnceValue(s.Close)
	t.Cleanup(func() {
		if err := closeStore(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, closeStore
}

func mustCheck(t testing.TB, s *meta.Store) {
	t.Helper()
	for _, p := range s.Check() {
		t.Errorf("Check: %v", p)
	}
}

// must stops the test at a failed setup step.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// mustWrite writes all of p at off, as a setup step.
func mustWrite(t testing.TB, s *meta.Store, ino uint64, p []byte, off int64) meta.Inode {
	t.Helper()
	n, in, err := s.WriteAt(ino, p, off)
	if err != nil || n != len(p) {
		t.Fatalf("WriteAt inode %d, %d bytes at %d: wrote %d, %v", ino, len(p), off, n, err)
	}
	return in
}

func mustInode(t testing.TB, s *meta.Store, ino uint64) meta.Inode {
	t.Helper()
	in, err := s.GetInode(ino)
	if err != nil {
		t.Fatalf("GetInode %d: %v", ino, err)
	}
	return in
}

func mustStatfs(t testing.TB, s *meta.Store) meta.Statfs {
	t.Helper()
	st, err := s.Statfs()
	if err != nil {
		t.Fatalf("Statfs: %v", err)
	}
	return st
}

func wantErrno(t testing.TB, err error, want syscall.Errno) {
	t.Helper()
	var got syscall.Errno
	if !errors.As(err, &got) || got != want {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

func mustCreate(t testing.TB, s *meta.Store, parent uint64, name string, mode uint32) meta.Inode {
	t.Helper()
	in, err := s.Create(parent, name, meta.NewInode{Mode: mode})
	if err != nil {
		t.Fatalf("Create %q: %v", name, err)
	}
	return in
}

const (
	reg = syscall.S_IFREG | 0o644
	dir = syscall.S_IFDIR | 0o755
)
