package meta_test

import (
	"bytes"
	"syscall"
	"testing"

	"github.com/swapfs/swapfs/meta"
)

// TestPinFillsEverything: a file with written data, a hole and an unwritten (fallocated)
// range comes out of Pin fully written: same contents, zeros where nothing was written, no
// hole or unwritten extent, the flag set and surviving a reopen.
func TestPinFillsEverything(t *testing.T) {
	s, dir, closeStore := newStoreNoCleanup(t, 32<<20)
	f := mustCreate(t, s, meta.RootIno, "swap", reg)
	const size = 40*meta.BlockSize + 123
	want := make([]byte, size)
	copy(want[meta.BlockSize:], "written")
	mustWrite(t, s, f.Ino, []byte("written"), meta.BlockSize)
	if _, err := s.Fallocate(f.Ino, 20*meta.BlockSize, 10*meta.BlockSize, 0); err != nil {
		t.Fatal(err)
	}
	must(t, func() error { _, err := s.SetAttr(f.Ino, meta.SetAttr{Size: ptr(uint64(size))}); return err }())

	maps, in, err := s.Pin(f.Ino)
	if err != nil {
		t.Fatalf("Pin: %v", err)
	}
	if in.Flags&meta.FlagSwapfile == 0 || in.Blocks != 41 {
		t.Errorf("after Pin: flags %#x blocks %d, want FlagSwapfile and 41 blocks", in.Flags, in.Blocks)
	}
	var covered uint64
	for _, m := range maps {
		if m.Hole || m.Unwritten {
			t.Errorf("Pin left %+v", m)
		}
		if m.Lblk != covered {
			t.Errorf("map not contiguous at %d: %+v", covered, m)
		}
		covered += m.Len
	}
	if covered != 41 {
		t.Errorf("map covers %d blocks, want 41", covered)
	}
	if got := readAll(t, s, f.Ino); !bytes.Equal(got, want) {
		t.Error("Pin changed the file's contents")
	}
	mustCheck(t, s)
	must(t, closeStore())

	s2, _ := reopen(t, dir)
	again, err := s2.Map(f.Ino, 0, 41)
	if err != nil || len(again) != len(maps) {
		t.Fatalf("map after reopen: %v %+v, want %+v", err, again, maps)
	}
	for i := range maps {
		if again[i] != maps[i] {
			t.Errorf("map after reopen differs at %d: %+v, want %+v", i, again[i], maps[i])
		}
	}
	files, err := s2.Swapfiles()
	if err != nil || len(files) != 1 || files[0] != f.Ino {
		t.Errorf("Swapfiles after reopen: %v %v, want [%d]", files, err, f.Ino)
	}
	if _, err := s2.Unpin(f.Ino); err != nil {
		t.Fatal(err)
	}
	if files, _ := s2.Swapfiles(); len(files) != 0 {
		t.Errorf("Swapfiles after Unpin: %v", files)
	}
	mustCheck(t, s2)
}

// TestPinENOSPC: a sparse file larger than the free space cannot be pinned, and stays as it
// was, with no blocks leaked.
func TestPinENOSPC(t *testing.T) {
	s, _ := newStore(t, 8<<20)
	f := mustCreate(t, s, meta.RootIno, "big", reg)
	mustWrite(t, s, f.Ino, []byte("x"), 0)
	must(t, func() error { _, err := s.SetAttr(f.Ino, meta.SetAttr{Size: ptr(uint64(64 << 20))}); return err }())
	before := mustStatfs(t, s)
	if _, _, err := s.Pin(f.Ino); err != syscall.ENOSPC {
		t.Fatalf("Pin of a file bigger than the volume: %v, want ENOSPC", err)
	}
	in := mustInode(t, s, f.Ino)
	if in.Flags&meta.FlagSwapfile != 0 || in.Blocks != 1 {
		t.Errorf("after a failed Pin: flags %#x blocks %d", in.Flags, in.Blocks)
	}
	if after := mustStatfs(t, s); after.BlocksFree != before.BlocksFree {
		t.Errorf("free blocks %d -> %d: a failed Pin leaked space", before.BlocksFree, after.BlocksFree)
	}
}

func TestPinRefusesNonFiles(t *testing.T) {
	s, _ := newStore(t, 8<<20)
	d := mustCreate(t, s, meta.RootIno, "d", syscall.S_IFDIR|0o755)
	empty := mustCreate(t, s, meta.RootIno, "empty", reg)
	for _, ino := range []uint64{d.Ino, empty.Ino} {
		if _, _, err := s.Pin(ino); err != syscall.EINVAL {
			t.Errorf("Pin inode %d: %v, want EINVAL", ino, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestCheckFindsUnpinnedSwapfile: the swapfile flag on a file with a hole is damage Check
// reports, since the I/O path would trust a map that is not there.
func TestCheckFindsUnpinnedSwapfile(t *testing.T) {
	s, _ := newStore(t, 8<<20)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	must(t, func() error {
		_, err := s.SetAttr(f.Ino, meta.SetAttr{Size: ptr(uint64(8 * meta.BlockSize))})
		return err
	}())
	if _, err := s.SetFlags(f.Ino, meta.FlagSwapfile); err != nil {
		t.Fatal(err)
	}
	if problems := s.Check(); len(problems) == 0 {
		t.Error("Check accepts a swapfile with a hole")
	}
	if _, err := s.SetFlags(f.Ino, 0); err != nil {
		t.Fatal(err)
	}
}
