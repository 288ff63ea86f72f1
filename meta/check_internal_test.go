package meta

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestFsckFindsDetachedCycle edits meta.db so that two directories name each other and
// nothing names either: link counts, parents, dirents and positions all stay consistent,
// so only the walk from the root can tell that the pair is cut off from the tree.
func TestFsckFindsDetachedCycle(t *testing.T) {
	s, dir := newInternalStore(t, 16<<20)
	a, err := s.Create(RootIno, "a", NewInode{Mode: syscall.S_IFDIR | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create(a.Ino, "b", NewInode{Mode: syscall.S_IFDIR | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(b.Ino, "f", NewInode{Mode: syscall.S_IFREG | 0o644}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if problems, err := Fsck(dir); err != nil || len(problems) != 0 {
		t.Fatalf("Fsck before the damage: %v, %v", problems, err)
	}

	// Move a's name from the root into b, as a rename without the ancestor check would:
	// a holds b, b holds a.
	db, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		o := newOp(tx)
		root, err := o.dir(RootIno)
		if err != nil {
			return err
		}
		bDir, err := o.dir(b.Ino)
		if err != nil {
			return err
		}
		aDir, err := o.dir(a.Ino)
		if err != nil {
			return err
		}
		d, ok, err := o.lookup(RootIno, "a")
		if err != nil || !ok {
			return orErr(err, syscall.ENOENT)
		}
		if err := o.removeEntry(root, "a", d); err != nil {
			return err
		}
		if err := o.addEntry(bDir, "a", aDir); err != nil {
			return err
		}
		root.Nlink--
		bDir.Nlink++
		aDir.Parent = b.Ino
		o.touch(aDir, false)
		return o.flush()
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("edit meta.db: %v", err)
	}

	problems, err := Fsck(dir)
	if err != nil {
		t.Fatal(err)
	}
	lost := map[uint64]bool{}
	for _, p := range problems {
		var ino uint64
		if !strings.Contains(p.Error(), "not reachable from the root") {
			t.Errorf("Fsck: %v; want only the cycle reported (the edit broke something else)", p)
		} else if _, err := fmt.Sscanf(p.Error(), "directory %d", &ino); err == nil {
			lost[ino] = true
		}
	}
	if !lost[a.Ino] || !lost[b.Ino] || len(lost) != 2 {
		t.Errorf("Fsck reported %v; want directories %d and %d unreachable", problems, a.Ino, b.Ino)
	}
}

// editStore opens dir's meta.db behind the store's back and changes it in one transaction.
func editStore(t *testing.T, dir string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// TestFsckFindsSpaceOutsideVolume: a free run that ends past the volume's last block, with a
// block lost inside to keep the sum right, is found; the sum alone cannot find it.
func TestFsckFindsSpaceOutsideVolume(t *testing.T) {
	dir := t.TempDir()
	if err := Mkfs(dir, MkfsOptions{Size: 1 << 20}); err != nil { // blocks 1..255 free
		t.Fatal(err)
	}
	editStore(t, dir, func(tx *bolt.Tx) error {
		if err := delFree(tx, run{1, 255}); err != nil {
			return err
		}
		return putFree(tx, run{2, 255})
	})
	problems, err := Fsck(dir)
	if err != nil || !strings.Contains(fmt.Sprint(problems), "outside the volume") {
		t.Errorf("Fsck of a free run past the volume's end: %q, %v", problems, err)
	}
}

// TestFsckFindsNameForRoot: a directory entry naming the root (a cycle through "/"), with
// the link count raised to match, is found.
func TestFsckFindsNameForRoot(t *testing.T) {
	s, dir := newInternalStore(t, 1<<20)
	a, err := s.Create(RootIno, "a", NewInode{Mode: syscall.S_IFDIR | 0o755})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	editStore(t, dir, func(tx *bolt.Tx) error {
		o := newOp(tx)
		aDir, err := o.dir(a.Ino)
		if err != nil {
			return err
		}
		root, err := o.get(RootIno)
		if err != nil {
			return err
		}
		if err := o.addEntry(aDir, "loop", root); err != nil {
			return err
		}
		aDir.Nlink++
		o.dirty[aDir.Ino] = true
		return o.flush()
	})
	problems, err := Fsck(dir)
	if err != nil || !strings.Contains(fmt.Sprint(problems), "root directory has 1 names") {
		t.Errorf("Fsck of a name for the root: %q, %v", problems, err)
	}
}

// newInternalStore makes a store in a new directory and opens it; the test closes it.
func newInternalStore(t *testing.T, size int64) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	if err := Mkfs(dir, MkfsOptions{Size: size}); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}
