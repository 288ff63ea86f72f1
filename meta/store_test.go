package meta_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/meta"
)

func hashFiles(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err == nil {
			out[e.Name()] = sha256.Sum256(b)
		}
	}
	return out
}

func TestOpenRefusesBadStores(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		message string
	}{
		{"random bytes", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "meta.db"), bytes.Repeat([]byte("garbage!"), 4096), 0o600))
		}, "meta.db"},
		{"empty meta.db", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "meta.db"), nil, 0o600))
		}, "empty"},
		{"foreign bbolt", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "meta.db")
			must(t, os.Remove(p))
			db, err := bolt.Open(p, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			must(t, db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("widgets")); return err }))
			must(t, db.Close())
		}, "not a swapfs store"},
		{"future format", func(t *testing.T, dir string) {
			db, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			v := []byte{1, 0, 0, 0, 0}
			binary.BigEndian.PutUint32(v[1:], 99)
			must(t, db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("super")).Put([]byte("format"), v) }))
			must(t, db.Close())
		}, "format version 99"},
		{"missing volume", func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "data")))
		}, "missing"},
		{"resized volume", func(t *testing.T, dir string) {
			must(t, os.Truncate(filepath.Join(dir, "data"), 32<<20))
		}, "resized"},
		{"other store's volume", func(t *testing.T, dir string) {
			other := t.TempDir()
			must(t, meta.Mkfs(other, meta.MkfsOptions{Size: 16 << 20}))
			b, err := os.ReadFile(filepath.Join(other, "data"))
			must(t, err)
			must(t, os.WriteFile(filepath.Join(dir, "data"), b, 0o600))
		}, "belongs to store"},
		{"unlabelled volume", func(t *testing.T, dir string) {
			f, err := os.OpenFile(filepath.Join(dir, "data"), os.O_WRONLY, 0)
			must(t, err)
			_, err = f.WriteAt(make([]byte, 4096), 0)
			must(t, err)
			must(t, f.Close())
		}, "no swapfs label"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := meta.Mkfs(dir, meta.MkfsOptions{Size: 16 << 20}); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, dir)
			before := hashFiles(t, dir)
			s, err := meta.Open(dir, meta.OpenOptions{})
			if err == nil {
				s.Close()
				t.Fatal("Open accepted a damaged store")
			}
			if !strings.Contains(err.Error(), tc.message) {
				t.Errorf("error %q does not say %q", err, tc.message)
			}
			if after := hashFiles(t, dir); len(after) != len(before) {
				t.Errorf("files changed: %d before, %d after", len(before), len(after))
			} else {
				for name, h := range before {
					if after[name] != h {
						t.Errorf("%s was modified by a refused Open", name)
					}
				}
			}
		})
	}
}

func TestSecondOpenRefused(t *testing.T) {
	_, dir := newStore(t, 16<<20)
	_, err := meta.Open(dir, meta.OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second Open: %v, want an 'in use' error", err)
	}
}

func TestMkfsRefusesExistingStore(t *testing.T) {
	_, dir := newStore(t, 16<<20)
	if err := meta.Mkfs(dir, meta.MkfsOptions{Size: 16 << 20}); err == nil {
		t.Fatal("Mkfs overwrote a store")
	}
}

func TestFsckClean(t *testing.T) {
	s, dir, closeStore := newStoreNoCleanup(t, 16<<20)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	mustWrite(t, s, f.Ino, make([]byte, 10000), 0)
	must(t, closeStore())
	problems, err := meta.Fsck(dir)
	if err != nil || len(problems) != 0 {
		t.Fatalf("Fsck: %v %v", problems, err)
	}
}

func TestFsckFindsDamage(t *testing.T) {
	s, dir, closeStore := newStoreNoCleanup(t, 16<<20)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	mustWrite(t, s, f.Ino, make([]byte, 10000), 0)
	must(t, closeStore())
	db, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Lose the extents: their blocks are now neither used nor free.
	must(t, db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket([]byte("extents")); err != nil {
			return err
		}
		_, err := tx.CreateBucket([]byte("extents"))
		return err
	}))
	must(t, db.Close())
	problems, err := meta.Fsck(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) < 2 {
		t.Fatalf("Fsck found %v; want the lost blocks and the wrong block count", problems)
	}
}

func TestMkfsRefusesAnotherStoresDevice(t *testing.T) {
	dev := filepath.Join(t.TempDir(), "dev")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, os.Truncate(dev, 16<<20))
	if err := meta.Mkfs(t.TempDir(), meta.MkfsOptions{Device: dev}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(dev)
	must(t, err)
	err = meta.Mkfs(t.TempDir(), meta.MkfsOptions{Device: dev})
	if err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("mkfs on a device of another store: %v, want a refusal that names --force", err)
	}
	if after, err := os.ReadFile(dev); err != nil || !bytes.Equal(before, after) {
		t.Errorf("a refused mkfs changed the device (%v)", err)
	}
	if err := meta.Mkfs(t.TempDir(), meta.MkfsOptions{Device: dev, Force: true}); err != nil {
		t.Errorf("mkfs --force: %v", err)
	}
}

func TestTmpfileAndLink(t *testing.T) {
	s, _ := newStore(t, 16<<20)
	f, err := s.Tmpfile(meta.RootIno, meta.NewInode{Mode: reg})
	if err != nil || f.Nlink != 0 {
		t.Fatalf("Tmpfile: %+v %v", f, err)
	}
	if _, _, err := s.WriteAt(f.Ino, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, s)
	in, err := s.Link(f.Ino, meta.RootIno, "named")
	if err != nil || in.Nlink != 1 {
		t.Fatalf("Link of a tmpfile: %+v %v", in, err)
	}
	must(t, s.Release(f.Ino))
	if _, err := s.Lookup(meta.RootIno, "named"); err != nil {
		t.Errorf("a linked tmpfile was freed on release: %v", err)
	}
	g, err := s.Tmpfile(meta.RootIno, meta.NewInode{Mode: reg})
	must(t, err)
	must(t, s.Release(g.Ino))
	_, err = s.GetInode(g.Ino)
	wantErrno(t, err, syscall.ENOENT)
}

// TestDamagedPagesRefused overwrites pages inside meta.db: open and fsck must say the
// store is damaged, not panic, and change nothing.
func TestDamagedPagesRefused(t *testing.T) {
	s, dir, closeStore := newStoreNoCleanup(t, 64<<20)
	for i := 0; i < 2000; i++ {
		mustCreate(t, s, meta.RootIno, fmt.Sprintf("file-with-a-longish-name-%05d", i), reg)
	}
	must(t, closeStore())
	p := filepath.Join(dir, "meta.db")
	st, err := os.Stat(p)
	must(t, err)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	must(t, err)
	garbage := bytes.Repeat([]byte{0xa5, 0x17, 0x42}, 4096)
	for off := int64(4 * 4096); off < st.Size(); off += 16 * 4096 {
		if _, err := f.WriteAt(garbage[:4096], off); err != nil {
			t.Fatal(err)
		}
	}
	must(t, f.Close())
	before := hashFiles(t, dir)
	if s, err := meta.Open(dir, meta.OpenOptions{}); err == nil {
		s.Close()
		t.Fatal("Open accepted a meta.db with damaged pages")
	} else if !strings.Contains(err.Error(), "damaged") {
		t.Errorf("Open: %v; want it to say the store is damaged", err)
	}
	if _, err := meta.Fsck(dir); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("Fsck: %v; want it to say the store is damaged", err)
	}
	for name, h := range hashFiles(t, dir) {
		if before[name] != h {
			t.Errorf("%s was modified", name)
		}
	}
}

// TestHostFullIsENOSPC puts the data file on a small tmpfs: when the host runs out of space
// first, a write gets a clean ENOSPC and the store stays writable.
func TestHostFullIsENOSPC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	host := t.TempDir()
	if err := unix.Mount("swapfs-test", host, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(host, unix.MNT_DETACH) })
	dir := filepath.Join(host, "store")
	if err := meta.Mkfs(dir, meta.MkfsOptions{Size: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	s, err := meta.Open(dir, meta.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	_, _, err = s.WriteAt(f.Ino, make([]byte, 16<<20), 0)
	wantErrno(t, err, syscall.ENOSPC)
	g := mustCreate(t, s, meta.RootIno, "g", reg)
	if _, _, err := s.WriteAt(g.Ino, []byte("small"), 0); err != nil {
		t.Errorf("the store is not writable after a host ENOSPC: %v", err)
	}
	mustCheck(t, s)
}

// TestOddSizedVolume: a data volume whose size is not a whole number of blocks (a partition
// with an odd sector count) is used down to its last whole block, and the store opens again;
// a volume that lost a block is still refused as resized.
func TestOddSizedVolume(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(t.TempDir(), "volume")
	must(t, os.WriteFile(dev, nil, 0o600))
	must(t, os.Truncate(dev, 8<<20+1000))
	must(t, meta.Mkfs(dir, meta.MkfsOptions{Device: dev}))
	s, closeStore := reopen(t, dir)
	even, _ := newStore(t, 8<<20)
	if got, want := mustStatfs(t, s).Blocks, mustStatfs(t, even).Blocks; got != want {
		t.Errorf("%d blocks on a volume of 8 MiB and 1000 bytes, want %d as on one of 8 MiB", got, want)
	}
	mustCheck(t, s)
	must(t, closeStore())
	_, closeStore = reopen(t, dir)
	must(t, closeStore())
	must(t, os.Truncate(dev, 8<<20-1))
	if _, err := meta.Open(dir, meta.OpenOptions{}); err == nil || !strings.Contains(err.Error(), "resized") {
		t.Errorf("open with a volume a block short: %v, want a refusal that says it was resized", err)
	}
}
