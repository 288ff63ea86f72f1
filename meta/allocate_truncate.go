package meta

import (
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SetAttr changes attributes; a size change truncates (freeing blocks past the end) or
// extends (sparse): EFBIG, EISDIR. Ctime is set to now.
func (s *Store) SetAttr(ino uint64, a SetAttr) (Inode, error) {
	if a.Size != nil {
		if *a.Size > MaxFileSize {
			return Inode{}, syscall.EFBIG
		}
		il := s.locks.lock(ino, true)
		defer s.locks.unlock(ino, il, true)
		s.gate.RLock()
		defer s.gate.RUnlock()
	}
	var out Inode
	var zero *segment
	err := s.update(func(tx *bolt.Tx) error {
		o := newOp(tx)
		r, err := o.get(ino)
		if err != nil {
			return err
		}
		if a.Size != nil {
			if r.IsDir() {
				return syscall.EISDIR
			}
			if !r.IsRegular() {
				return syscall.EINVAL
			}
			if zero, err = s.truncate(tx, r, *a.Size); err != nil {
				return err
			}
			r.Mtime = o.now
		}
		applyAttr(r, a)
		o.touch(r, false)
		out = r.Inode
		return o.flush()
	})
	if err == nil && zero != nil {
		// The tail of the new last block must read as zeros if the file grows again.
		if err = s.vol.zero(zero.m.Pblk, zero.within(), zero.n); err != nil {
			s.fail(err)
			return Inode{}, err
		}
		s.markDataDirty()
	}
	return out, err
}

// ClearSetID clears S_ISUID, and S_ISGID when the group may execute (without that S_ISGID
// marks mandatory locking, not a set-group-ID program), as should_remove_suid does for a
// write by a user without CAP_FSETID. Read and change are one transaction, so a chmod in
// between is never undone. It reports whether a bit was cleared (ctime then moves).
func (s *Store) ClearSetID(ino uint64) (changed bool, err error) {
	err = s.update(func(tx *bolt.Tx) error {
		o := newOp(tx)
		r, err := o.get(ino)
		if err != nil {
			return err
		}
		kill := uint32(syscall.S_ISUID)
		if r.Mode&syscall.S_IXGRP != 0 {
			kill |= syscall.S_ISGID
		}
		if r.Mode&kill == 0 {
			return nil
		}
		r.Mode &^= kill
		changed = true
		o.touch(r, false)
		return o.flush()
	})
	return changed, err
}

func applyAttr(r *inodeRec, a SetAttr) {
	if a.Mode != nil {
		r.Mode = r.Mode&syscall.S_IFMT | *a.Mode&^syscall.S_IFMT
	}
	if a.Uid != nil {
		r.Uid = *a.Uid
	}
	if a.Gid != nil {
		r.Gid = *a.Gid
	}
	if a.Atime != nil {
		r.Atime = clampTime(*a.Atime)
	}
	if a.Mtime != nil {
		r.Mtime = clampTime(*a.Mtime)
	}
}

// truncate sets r's size, freeing whole blocks past it. It returns the part of the new last
// block past the end when that block holds data, for the caller to zero.
func (s *Store) truncate(tx *bolt.Tx, r *inodeRec, size uint64) (*segment, error) {
	keep := (size + BlockSize - 1) / BlockSize
	removed, err := truncateExtents(tx, r.Ino, keep)
	if err != nil {
		return nil, err
	}
	s.queueFree(removed)
	r.Blocks -= mappedBlocks(removed)
	// Shrinking leaves bytes past the new end in its last block; growing exposes those past
	// the old end. Either way they must read as zeros (eofGap).
	zero, err := eofGap(tx, r.Ino, int64(min(size, r.Size)), int64(max(size, r.Size)))
	if err != nil {
		return nil, err
	}
	r.Size = size
	return zero, nil
}

// eofGap is the part of [end, to) inside the written block that holds end, a file's end
// (nil when end is on a block boundary or its block is a hole or unwritten). Bytes there are
// past the end, and a file that grows over them must show zeros, as ext4 shows; but they
// need not be zero on the volume: a write past the end reaches the volume at once while its
// new size waits for the next commit, which a crash loses. So a file is never grown over them
// without zeroing them first.
func eofGap(tx *bolt.Tx, ino uint64, end, to int64) (*segment, error) {
	tail := end % BlockSize
	if tail == 0 || to <= end {
		return nil, nil
	}
	maps, err := mapRange(tx, ino, uint64(end)/BlockSize, 1)
	if err != nil {
		return nil, err
	}
	if m := maps[0]; !m.Hole && !m.Unwritten {
		return &segment{m: m, fileOff: end, n: int(min(to-end, BlockSize-tail))}, nil
	}
	return nil, nil
}

func mappedBlocks(ms []Mapping) uint64 {
	var n uint64
	for _, m := range ms {
		if !m.Hole {
			n += m.Len
		}
	}
	return n
}

// Fallocate implements fallocate(2) modes 0, FallocKeepSize, FallocPunchHole|FallocKeepSize
// and FallocZeroRange[|FallocKeepSize]; others are EOPNOTSUPP. Space is reserved as
// unwritten extents, which read as zeros without anyone writing them.
func (s *Store) Fallocate(ino uint64, off, length int64, mode uint32) (Inode, error) {
	if off < 0 || length <= 0 {
		return Inode{}, syscall.EINVAL
	}
	if off > MaxFileSize-length { // not off+length: that wraps
		return Inode{}, syscall.EFBIG
	}
	punch := mode&FallocPunchHole != 0
	switch mode {
	case 0, FallocKeepSize, FallocZeroRange, FallocZeroRange | FallocKeepSize:
	case FallocPunchHole | FallocKeepSize:
	default:
		return Inode{}, syscall.EOPNOTSUPP
	}
	il := s.locks.lock(ino, true)
	defer s.locks.unlock(ino, il, true)
	for retried := false; ; retried = true {
		out, err := s.fallocateOnce(ino, off, length, mode, punch)
		if err == syscall.ENOSPC && !retried && s.hasPendingFree() {
			if err := s.Sync(); err != nil {
				return Inode{}, err
			}
			continue
		}
		return out, err
	}
}

func (s *Store) fallocateOnce(ino uint64, off, length int64, mode uint32, punch bool) (Inode, error) {
	s.gate.RLock()
	defer s.gate.RUnlock()
	var out Inode
	var zeros []segment
	err := s.update(func(tx *bolt.Tx) error {
		r, err := getInode(tx, ino)
		if err != nil {
			return err
		}
		if r.IsDir() {
			return syscall.EISDIR
		}
		if !r.IsRegular() {
			return syscall.ENODEV
		}
		end := off + length
		if punch {
			end = min(end, int64(r.Size))
		}
		if off < end {
			if zeros, err = s.fallocRange(tx, r, off, end, mode); err != nil {
				return err
			}
		}
		now := time.Now()
		if mode&FallocKeepSize == 0 && uint64(off+length) > r.Size {
			gap, err := eofGap(tx, ino, int64(r.Size), off+length)
			if err != nil {
				return err
			}
			if gap != nil {
				zeros = append(zeros, *gap)
			}
			r.Size = uint64(off + length)
			r.Mtime = now
		}
		if mode&(FallocPunchHole|FallocZeroRange) != 0 {
			r.Mtime = now
		}
		r.Ctime = now
		out = r.Inode
		return putInode(tx, r)
	})
	if err != nil {
		return out, err
	}
	for _, g := range zeros {
		if err := s.vol.zero(g.m.Pblk, g.within(), g.n); err != nil {
			s.fail(err)
			return Inode{}, err
		}
	}
	if len(zeros) > 0 {
		s.markDataDirty()
	}
	return out, nil
}

// fallocRange changes the mapping of [off, end) for one fallocate mode. Whole blocks change
// their mapping; the partial blocks at the edges keep it, and the written ones among them
// are returned to be zeroed when the mode zeroes. ENOSPC changes nothing.
func (s *Store) fallocRange(tx *bolt.Tx, r *inodeRec, off, end int64, mode uint32) ([]segment, error) {
	inner0 := uint64(off+BlockSize-1) / BlockSize
	inner1 := uint64(end) / BlockSize
	var zeros []segment
	if mode&(FallocPunchHole|FallocZeroRange) != 0 {
		b0, nb := blockRange(off, end-off)
		maps, err := mapRange(tx, r.Ino, b0, nb)
		if err != nil {
			return nil, err
		}
		for _, g := range segments(maps, off, int(end-off)) {
			if !g.m.Hole && !g.m.Unwritten {
				zeros = append(zeros, edgeParts(g, inner0, inner1)...)
			}
		}
	}
	if inner0 >= inner1 && mode&FallocPunchHole != 0 {
		return zeros, nil
	}
	switch {
	case mode&FallocPunchHole != 0:
		removed, err := setRange(tx, r.Ino, inner0, inner1-inner0, nil)
		if err != nil {
			return nil, err
		}
		s.queueFree(removed)
		r.Blocks -= mappedBlocks(removed)
	case mode&FallocZeroRange != 0:
		if inner0 < inner1 {
			if err := s.reserve(tx, r, inner0, inner1-inner0, true); err != nil {
				return nil, err
			}
		}
	default:
		b0, nb := blockRange(off, end-off)
		if err := s.reserve(tx, r, b0, nb, false); err != nil {
			return nil, err
		}
	}
	return zeros, nil
}

// edgeParts returns the parts of a written segment that lie outside the whole blocks
// [inner0, inner1): the bytes of partial edge blocks to zero.
func edgeParts(g segment, inner0, inner1 uint64) []segment {
	var out []segment
	s, e := g.fileOff, g.fileOff+int64(g.n)
	lo, hi := int64(inner0)*BlockSize, int64(inner1)*BlockSize
	if inner0 >= inner1 {
		lo, hi = e, e
	}
	cut := func(a, b int64) {
		a, b = max(a, s), min(b, e)
		if a < b {
			out = append(out, segment{m: g.m, fileOff: a, n: int(b - a)})
		}
	}
	cut(s, lo)
	cut(max(hi, lo), e)
	return out
}

// reserve gives every hole in [lblk, lblk+n) unwritten blocks; with convert, written
// extents there become unwritten too (they then read as zeros).
func (s *Store) reserve(tx *bolt.Tx, r *inodeRec, lblk, n uint64, convert bool) error {
	maps, err := mapRange(tx, r.Ino, lblk, n)
	if err != nil {
		return err
	}
	runs, err := s.allocHoles(tx, r, maps, lblk)
	if err != nil {
		return err
	}
	for _, m := range maps {
		switch {
		case m.Hole:
			if _, err := fillHole(tx, r.Ino, m, &runs, true); err != nil {
				return err
			}
		case convert && !m.Unwritten:
			m.Unwritten = true
			if _, err := setRange(tx, r.Ino, m.Lblk, m.Len, &m); err != nil {
				return err
			}
		}
	}
	return nil
}
