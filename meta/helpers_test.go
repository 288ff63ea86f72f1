package meta_test

import (
	"errors"
	"syscall"
	"testing"

	"github.com/swapfs/swapfs/meta"
)

// newStore makes and opens a store of size bytes; Cleanup checks it and closes it.
func newStore(t testing.TB, size int64) (*meta.Store, string) {
	t.Helper()
	dir := t.TempDir()
	if err := meta.Mkfs(dir, meta.MkfsOptions{Size: size}); err != nil {
		t.Fatalf("Mkfs: %v", err)
	}
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

func mustCheck(t testing.TB, s *meta.Store) {
	t.Helper()
	for _, p := range s.Check() {
		t.Errorf("Check: %v", p)
	}
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
