package meta_test

import (
	"fmt"
	"testing"

	"github.com/swapfs/swapfs/meta"
)

// Free space never holds touching runs, even when the merges of one group empty whole leaves
// of the free-space bucket (bbolt rebalances them only at commit, and its Cursor.Prev
// stops at an empty leaf).
func TestFreeRunsMergeAcrossEmptiedLeaves(t *testing.T) {
	s, _ := newStore(t, 256<<20)
	block := make([]byte, meta.BlockSize)
	inos := map[string]uint64{}
	create := func(name string, blocks int) {
		t.Helper()
		in := mustCreate(t, s, meta.RootIno, name, reg)
		for i := range blocks {
			mustWrite(t, s, in.Ino, block, int64(i)*meta.BlockSize)
		}
		inos[name] = in.Ino
	}
	remove := func(name string) {
		t.Helper()
		if err := s.Unlink(meta.RootIno, name); err != nil {
			t.Fatal(err)
		}
		// Nothing holds it open: the kernel's forget frees it.
		if err := s.Release(inos[name]); err != nil {
			t.Fatal(err)
		}
	}
	// 3000 one-block files side by side; every other one deleted: 1500 one-block free runs.
	const n = 3000
	for i := range n {
		create(fmt.Sprintf("f%04d", i), 1)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 2 {
		remove(fmt.Sprintf("f%04d", i))
	}
	mustCheck(t, s) // commits the group, so the next one starts from real pages
	// One group deletes the files between the runs, in order: each release merges the run
	// before it with the one after it and deletes that one's key, until whole leaves of the
	// free-space bucket are empty and the next release must look past them for its left
	// neighbour.
	for i := 1; i < n; i += 2 {
		remove(fmt.Sprintf("f%04d", i))
	}
	// newStore's cleanup commits the group and checks the store.
}

// The same for extents: writes that join a file's extents back into one delete the keys of
// the extents they absorb, and a read in the same group must still find the extent that
// holds its offset, past the leaves those deletions emptied, not take it for a hole.
func TestReadFindsExtentAcrossEmptiedLeaves(t *testing.T) {
	s, _ := newStore(t, 256<<20)
	const n = 3000
	in := mustCreate(t, s, meta.RootIno, "f", reg)
	if _, err := s.Fallocate(in.Ino, 0, n*meta.BlockSize, 0); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, n*meta.BlockSize)
	for i := range want {
		want[i] = byte(i/meta.BlockSize + 1)
	}
	write := func(blk int) {
		t.Helper()
		off := int64(blk) * meta.BlockSize
		mustWrite(t, s, in.Ino, want[off:off+meta.BlockSize], off)
	}
	// Every other block written: written and unwritten extents alternate, one key each.
	for blk := 0; blk < n; blk += 2 {
		write(blk)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// The gaps, in order, in one group: the extents join into one from block 0.
	for blk := 1; blk < n; blk += 2 {
		write(blk)
	}
	// Block by block: each read looks up the extent that starts at or before its offset.
	got := make([]byte, meta.BlockSize)
	for blk := range n {
		if _, err := s.ReadAt(in.Ino, got, int64(blk)*meta.BlockSize); err != nil {
			t.Fatal(err)
		}
		if g, w := got[0], want[blk*meta.BlockSize]; g != w {
			t.Fatalf("block %d reads %d before the commit, want %d", blk, g, w)
		}
	}
	// newStore's cleanup commits the group and checks the store.
}
