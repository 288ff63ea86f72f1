package meta

import (
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestExchangeEMLINK: RENAME_EXCHANGE of a directory with a file in a parent that has the
// most links a directory may have is EMLINK, as a plain rename is, and changes nothing.
func TestExchangeEMLINK(t *testing.T) {
	s, _ := newInternalStore(t, 1<<20)
	defer s.Close()
	full, err := s.Create(RootIno, "full", NewInode{Mode: syscall.S_IFDIR | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	file, err := s.Create(full.Ino, "file", NewInode{Mode: syscall.S_IFREG | 0o644})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := s.Create(RootIno, "sub", NewInode{Mode: syscall.S_IFDIR | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	// As if full held maxNlink-2 subdirectories.
	err = s.update(func(tx *bolt.Tx) error {
		o := newOp(tx)
		d, err := o.dir(full.Ino)
		if err != nil {
			return err
		}
		d.Nlink = maxNlink
		o.dirty[d.Ino] = true
		return o.flush()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Rename(RootIno, "sub", full.Ino, "file", RenameExchange); err != syscall.EMLINK {
		t.Errorf("exchange of a directory into a full parent: %v, want EMLINK", err)
	}
	if err := s.Rename(full.Ino, "file", RootIno, "sub", RenameExchange); err != syscall.EMLINK {
		t.Errorf("exchange the other way round: %v, want EMLINK", err)
	}
	if got, err := s.Lookup(full.Ino, "file"); err != nil || got.Ino != file.Ino {
		t.Errorf("full/file after the refused exchanges: %+v, %v", got, err)
	}
	if got, err := s.Lookup(RootIno, "sub"); err != nil || got.Ino != sub.Ino {
		t.Errorf("sub after the refused exchanges: %+v, %v", got, err)
	}
}
