package meta_test

import (
	"bytes"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/swapfs/swapfs/meta"
)

func readAll(t testing.TB, s *meta.Store, ino uint64) []byte {
	t.Helper()
	in, err := s.GetInode(ino)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, in.Size+10)
	n, err := s.ReadAt(ino, buf, 0)
	if err != nil {
		t.Fatalf("ReadAt: %v", err)
	}
	return buf[:n]
}

func TestWriteReadSparse(t *testing.T) {
	s, _ := newStore(t, 16<<20)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	want := make([]byte, 3*meta.BlockSize+100)
	copy(want[10:], "head")
	copy(want[2*meta.BlockSize+7:], "middle")
	for _, w := range []struct {
		off  int64
		data string
	}{{10, "head"}, {2*meta.BlockSize + 7, "middle"}} {
		if _, _, err := s.WriteAt(f.Ino, []byte(w.data), w.off); err != nil {
			t.Fatal(err)
		}
	}
	in := mustWrite(t, s, f.Ino, []byte{0}, int64(len(want))-1)
	if in.Size != uint64(len(want)) || in.Blocks != 3 {
		t.Errorf("size %d blocks %d, want %d and 3 (block 1 is a hole)", in.Size, in.Blocks, len(want))
	}
	if got := readAll(t, s, f.Ino); !bytes.Equal(got, want) {
		t.Error("content mismatch after sparse writes")
	}
	if pos, err := s.Seek(f.Ino, 0, meta.SeekHole); err != nil || pos != meta.BlockSize {
		t.Errorf("SEEK_HOLE = %d, %v", pos, err)
	}
	if pos, err := s.Seek(f.Ino, meta.BlockSize, meta.SeekData); err != nil || pos != 2*meta.BlockSize {
		t.Errorf("SEEK_DATA = %d, %v", pos, err)
	}
	_, err := s.Seek(f.Ino, int64(len(want)), meta.SeekData)
	wantErrno(t, err, syscall.ENXIO)
}

func TestTruncateZeroesTail(t *testing.T) {
	s, _ := newStore(t, 16<<20)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	mustWrite(t, s, f.Ino, bytes.Repeat([]byte{0xaa}, 3*meta.BlockSize), 0)
	size := uint64(100)
	in, err := s.SetAttr(f.Ino, meta.SetAttr{Size: &size})
	if err != nil || in.Blocks != 1 || in.Size != 100 {
		t.Fatalf("truncate: %+v %v", in, err)
	}
	size = 2 * meta.BlockSize
	if _, err := s.SetAttr(f.Ino, meta.SetAttr{Size: &size}); err != nil {
		t.Fatalf("grow: %v", err)
	}
	got := readAll(t, s, f.Ino)
	want := append(bytes.Repeat([]byte{0xaa}, 100), make([]byte, 2*meta.BlockSize-100)...)
	if !bytes.Equal(got, want) {
		t.Error("bytes past a truncation came back after growing the file")
	}
}

func TestFallocateModes(t *testing.T) {
	s, _ := newStore(t, 16<<20)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	in, err := s.Fallocate(f.Ino, 0, 4*meta.BlockSize, 0)
	if err != nil || in.Size != 4*meta.BlockSize || in.Blocks != 4 {
		t.Fatalf("fallocate: %+v %v", in, err)
	}
	if got := readAll(t, s, f.Ino); !bytes.Equal(got, make([]byte, 4*meta.BlockSize)) {
		t.Error("fallocated range does not read as zeros")
	}
	in, err = s.Fallocate(f.Ino, 0, 8*meta.BlockSize, meta.FallocKeepSize)
	if err != nil || in.Size != 4*meta.BlockSize || in.Blocks != 8 {
		t.Errorf("keep size: size %d blocks %d, %v", in.Size, in.Blocks, err)
	}
	mustWrite(t, s, f.Ino, bytes.Repeat([]byte{1}, 4*meta.BlockSize), 0)
	in, err = s.Fallocate(f.Ino, 100, 2*meta.BlockSize, meta.FallocPunchHole|meta.FallocKeepSize)
	if err != nil || in.Blocks != 7 {
		t.Fatalf("punch: blocks %d, %v (one whole block freed)", in.Blocks, err)
	}
	got := readAll(t, s, f.Ino)
	want := bytes.Repeat([]byte{1}, 4*meta.BlockSize)
	clear(want[100 : 100+2*meta.BlockSize])
	if !bytes.Equal(got, want) {
		t.Error("punch hole content mismatch")
	}
	in, err = s.Fallocate(f.Ino, 10, 5, meta.FallocZeroRange)
	clear(want[10:15])
	if err != nil || !bytes.Equal(readAll(t, s, f.Ino), want) {
		t.Errorf("zero range: %v", err)
	}
	_, err = s.Fallocate(f.Ino, 0, 1, meta.FallocPunchHole)
	wantErrno(t, err, syscall.EOPNOTSUPP)
	_, err = s.Fallocate(f.Ino, 0, 0, 0)
	wantErrno(t, err, syscall.EINVAL)
}

func TestENOSPCAndSpaceReturns(t *testing.T) {
	s, _ := newStore(t, 1<<20)
	st0 := mustStatfs(t, s)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	chunk := make([]byte, 100<<10+10) // not a divisor of the volume: the last write is short
	var off int64
	var err error
	n, shorts := len(chunk), 0
	for err == nil {
		n, _, err = s.WriteAt(f.Ino, chunk, off)
		if err == nil && n < len(chunk) {
			shorts++
		}
		off += int64(n)
	}
	wantErrno(t, err, syscall.ENOSPC)
	if shorts != 1 {
		t.Errorf("%d short writes before ENOSPC, want exactly 1", shorts)
	}
	if in := mustInode(t, s, f.Ino); in.Blocks != st0.BlocksFree || in.Size != uint64(off) {
		t.Errorf("full volume: file has %d blocks (volume had %d free), size %d, %d bytes written",
			in.Blocks, st0.BlocksFree, in.Size, off)
	}
	mustCheck(t, s)
	if err := s.Unlink(meta.RootIno, "f"); err != nil {
		t.Fatal(err)
	}
	must(t, s.Release(f.Ino))
	st1 := mustStatfs(t, s)
	if st1.BlocksFree != st0.BlocksFree {
		t.Errorf("free blocks %d after delete, %d before", st1.BlocksFree, st0.BlocksFree)
	}
	g := mustCreate(t, s, meta.RootIno, "g", reg)
	if _, _, err := s.WriteAt(g.Ino, make([]byte, 512<<10), 0); err != nil {
		t.Errorf("write after freeing space: %v", err)
	}
}

func TestContiguousAllocation(t *testing.T) {
	s, _ := newStore(t, 64<<20)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	for off := int64(0); off < 8<<20; off += 128 << 10 {
		if _, _, err := s.WriteAt(f.Ino, make([]byte, 128<<10), off); err != nil {
			t.Fatal(err)
		}
	}
	maps, err := s.Map(f.Ino, 0, (8<<20)/meta.BlockSize)
	must(t, err)
	if len(maps) != 1 {
		t.Errorf("a file written sequentially has %d extents, want 1", len(maps))
	}
}

func TestPersistence(t *testing.T) {
	s, dir, closeStore := newStoreNoCleanup(t, 16<<20)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	data := make([]byte, 100000)
	rand.New(rand.NewSource(1)).Read(data)
	mustWrite(t, s, f.Ino, data, 5)
	must(t, s.SetXattr(f.Ino, "user.x", []byte("y"), 0))
	must(t, closeStore())
	s, _ = reopen(t, dir)
	got := readAll(t, s, f.Ino)
	if !bytes.Equal(got[5:], data) || !bytes.Equal(got[:5], make([]byte, 5)) {
		t.Error("data changed across close/open")
	}
	if v, err := s.GetXattr(f.Ino, "user.x"); err != nil || string(v) != "y" {
		t.Errorf("xattr lost: %q, %v", v, err)
	}
	mustCheck(t, s)
}

// TestDirectAndBufferedPathsAgree mixes whole-block I/O (O_DIRECT on the volume, with and
// without page-aligned memory) and partial-block I/O (buffered) on the same blocks.
func TestDirectAndBufferedPathsAgree(t *testing.T) {
	s, _ := newStore(t, 16<<20)
	f := mustCreate(t, s, meta.RootIno, "f", reg)
	const n = 64 * meta.BlockSize
	want := make([]byte, n)
	rand.New(rand.NewSource(2)).Read(want)
	unaligned := make([]byte, n+1)[1:] // memory off any page boundary: bounced
	copy(unaligned, want)
	if _, _, err := s.WriteAt(f.Ino, unaligned, 0); err != nil {
		t.Fatal(err)
	}
	patch := []byte("partial block through the buffered descriptor")
	if _, _, err := s.WriteAt(f.Ino, patch, 5*meta.BlockSize+100); err != nil {
		t.Fatal(err)
	}
	copy(want[5*meta.BlockSize+100:], patch)
	got := make([]byte, n+1)[1:]
	if _, err := s.ReadAt(f.Ino, got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("whole-block read after a partial write: mismatch (%v)", err)
	}
	part := make([]byte, 300)
	if _, err := s.ReadAt(f.Ino, part, 5*meta.BlockSize); err != nil || !bytes.Equal(part, want[5*meta.BlockSize:5*meta.BlockSize+300]) {
		t.Fatalf("partial read after whole-block writes: mismatch (%v)", err)
	}
}

// TestFileSizeLimit: writes and fallocate that would end past MaxFileSize are EFBIG, also
// from offsets so large that offset+length wraps negative; a write that ends on the limit is
// fine.
func TestFileSizeLimit(t *testing.T) {
	s, _ := newStore(t, 8<<20)
	f := mustCreate(t, s, meta.RootIno, "f", syscall.S_IFREG|0o644)
	_, _, err := s.WriteAt(f.Ino, []byte("xy"), math.MaxInt64)
	wantErrno(t, err, syscall.EFBIG)
	_, _, err = s.WriteAt(f.Ino, []byte("xy"), meta.MaxFileSize-1)
	wantErrno(t, err, syscall.EFBIG)
	_, err = s.Fallocate(f.Ino, 1<<62, 1<<62, 0)
	wantErrno(t, err, syscall.EFBIG)
	_, err = s.Fallocate(f.Ino, math.MaxInt64, 1, 0)
	wantErrno(t, err, syscall.EFBIG)
	if in := mustWrite(t, s, f.Ino, []byte("x"), meta.MaxFileSize-1); in.Size != meta.MaxFileSize {
		t.Errorf("size %d after a write ending on the limit, want %d", in.Size, uint64(meta.MaxFileSize))
	}
}

// TestGrowShowsZerosPastOldEnd: the bytes past a file's end in its last block may be anything
// on the volume (a write past the end reaches the volume at once, while a crash can lose its
// new size), yet a file grown over them, by truncate, fallocate or a write further on, reads
// zeros there, as on ext4.
func TestGrowShowsZerosPastOldEnd(t *testing.T) {
	for _, c := range []struct {
		name string
		grow func(s *meta.Store, ino uint64) error
		end  int64 // of the range that must read as zeros
	}{
		{"truncate", func(s *meta.Store, ino uint64) error {
			size := uint64(3 * meta.BlockSize)
			_, err := s.SetAttr(ino, meta.SetAttr{Size: &size})
			return err
		}, meta.BlockSize},
		{"write in the same block", func(s *meta.Store, ino uint64) error {
			_, _, err := s.WriteAt(ino, []byte("x"), 300)
			return err
		}, 300},
		{"write further on", func(s *meta.Store, ino uint64) error {
			_, _, err := s.WriteAt(ino, []byte("x"), 2*meta.BlockSize)
			return err
		}, meta.BlockSize},
		{"fallocate", func(s *meta.Store, ino uint64) error {
			_, err := s.Fallocate(ino, 1000, 5000, 0)
			return err
		}, meta.BlockSize},
		{"fallocate over the end", func(s *meta.Store, ino uint64) error {
			_, err := s.Fallocate(ino, 0, 2*meta.BlockSize, 0)
			return err
		}, meta.BlockSize},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, dir := newStore(t, 8<<20)
			f := mustCreate(t, s, meta.RootIno, "f", syscall.S_IFREG|0o644)
			mustWrite(t, s, f.Ino, bytes.Repeat([]byte("a"), 100), 0)
			maps, err := s.Map(f.Ino, 0, 1)
			must(t, err)
			// What a crash leaves: bytes written past the end, whose size was not committed.
			vol, err := os.OpenFile(filepath.Join(dir, "data"), os.O_WRONLY, 0)
			must(t, err)
			_, err = vol.WriteAt(bytes.Repeat([]byte("SECRET"), 100), int64(maps[0].Pblk)*meta.BlockSize+100)
			must(t, err)
			must(t, vol.Close())

			must(t, c.grow(s, f.Ino))
			got := make([]byte, c.end-100)
			_, err = s.ReadAt(f.Ino, got, 100)
			must(t, err)
			if !bytes.Equal(got, make([]byte, len(got))) {
				t.Errorf("bytes 100..%d after the file grew over them: %q, want zeros", c.end, bytes.TrimRight(got, "\x00"))
			}
		})
	}
}
