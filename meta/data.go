package meta

import (
	"errors"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// MaxFileSize is the largest file size, as ext4's 16 TiB with 4 KiB blocks.
const MaxFileSize = 16<<40 - BlockSize

// zeroBlock is shared read-only zeros for filling holes in reads and edges of fresh blocks.
var zeroBlock = make([]byte, BlockSize)

// segment is the part of one mapping that one I/O touches.
type segment struct {
	m       Mapping
	fileOff int64 // byte offset in the file
	n       int   // bytes
}

// volOff is the segment's byte offset inside its mapping's first physical block.
func (g segment) within() int64 { return g.fileOff - int64(g.m.Lblk)*BlockSize }

// segments cuts the byte range [off, off+n) along maps, which must cover it.
func segments(maps []Mapping, off int64, n int) []segment {
	var out []segment
	end := off + int64(n)
	for _, m := range maps {
		s := max(off, int64(m.Lblk)*BlockSize)
		e := min(end, int64(m.Lblk+m.Len)*BlockSize)
		if s < e {
			out = append(out, segment{m: m, fileOff: s, n: int(e - s)})
		}
	}
	return out
}

func blockRange(off, n int64) (uint64, uint64) {
	b0 := uint64(off) / BlockSize
	b1 := uint64(off+n+BlockSize-1) / BlockSize
	return b0, b1 - b0
}

// ReadAt reads file data; it returns fewer bytes only at end of file. Holes and unwritten
// extents read as zeros.
func (s *Store) ReadAt(ino uint64, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, syscall.EINVAL
	}
	il := s.locks.lock(ino, false)
	defer s.locks.unlock(ino, il, false)
	var maps []Mapping
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		r, err := getInode(tx, ino)
		if err != nil {
			return err
		}
		if r.IsDir() {
			return syscall.EISDIR
		}
		if uint64(off) >= r.Size || len(p) == 0 {
			return nil
		}
		n = int(min(uint64(len(p)), r.Size-uint64(off)))
		b0, nb := blockRange(off, int64(n))
		maps, err = mapRange(tx, ino, b0, nb)
		return err
	})
	if err != nil || n == 0 {
		return 0, err
	}
	for _, g := range segments(maps, off, n) {
		dst := p[g.fileOff-off : g.fileOff-off+int64(g.n)]
		if g.m.Hole || g.m.Unwritten {
			clear(dst)
			continue
		}
		if err := s.vol.readAt(dst, g.m.Pblk, g.within()); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// WriteAt writes file data, allocating blocks as needed, and returns how many bytes it
// wrote and the inode after the write. Like ext4, a write to an almost full volume writes
// the blocks that fit and returns a short count; only a write of which no byte fits fails
// with ENOSPC. Other errors: EFBIG, EISDIR.
func (s *Store) WriteAt(ino uint64, p []byte, off int64) (int, Inode, error) {
	if off < 0 {
		return 0, Inode{}, syscall.EINVAL
	}
	if off > MaxFileSize-int64(len(p)) { // not off+len: that wraps for off near 2^63
		return 0, Inode{}, syscall.EFBIG
	}
	// Overwrites of written blocks change no mapping, so they share the inode lock and run
	// in parallel; a write that must allocate or convert blocks takes it alone. The check
	// runs under the shared lock: only exclusive holders change mappings.
	exclusive := false
	il := s.locks.lock(ino, false)
	if s.needsMapping(ino, off, len(p)) {
		s.locks.unlock(ino, il, false)
		exclusive = true
		il = s.locks.lock(ino, true)
	}
	defer s.locks.unlock(ino, il, exclusive)
	for retried := false; ; retried = true {
		// Blocks freed in this group become usable once it commits, as jbd2 forces a
		// commit before it reports ENOSPC: so a short write only after that commit.
		short := retried || !s.hasPendingFree()
		n, out, err := s.writeOnce(ino, p, off, short)
		if errors.Is(err, syscall.ENOSPC) && !short {
			if err := s.Sync(); err != nil {
				return 0, Inode{}, err
			}
			continue
		}
		return n, out, err
	}
}

// needsMapping reports whether a write to [off, off+n) meets a hole or an unwritten
// extent, or ends past the file's end. Such a write takes the inode alone: it records the
// new size before its bytes reach the volume, and a read in between (readers share the
// lock) would see the old bytes past the end; one that starts past the end also zeroes the
// gap (eofGap), where a write in parallel could land first. When in doubt it says yes: the
// exclusive path then finds out properly. Under the shared lock the size only grows, so a
// write found to end inside the file stays so.
func (s *Store) needsMapping(ino uint64, off int64, n int) bool {
	if n == 0 {
		return false
	}
	needs := true
	s.view(func(tx *bolt.Tx) error {
		size, ok := storedSize(tx, ino)
		if !ok || uint64(off)+uint64(n) > size {
			return nil
		}
		b0, nb := blockRange(off, int64(n))
		maps, err := mapRange(tx, ino, b0, nb)
		if err != nil {
			return err
		}
		needs = false
		for _, m := range maps {
			needs = needs || m.Hole || m.Unwritten
		}
		return nil
	})
	return needs
}

// edges says whether the first and the last block of a write held no data before it: only
// those can be partly covered, and then their other bytes must be zeroed.
type edges struct {
	first, last           uint64
	firstFresh, lastFresh bool
}

func (e *edges) mark(m Mapping) {
	e.firstFresh = e.firstFresh || m.Lblk <= e.first && e.first < m.Lblk+m.Len
	e.lastFresh = e.lastFresh || m.Lblk <= e.last && e.last < m.Lblk+m.Len
}

func (e *edges) fresh(lblk uint64) bool {
	return lblk == e.first && e.firstFresh || lblk == e.last && e.lastFresh
}

func (s *Store) hasPendingFree() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pendingFree) > 0
}

// writeOnce maps the range (allocating holes, converting unwritten extents), records the
// new size, then writes the bytes, all under the gate so no commit sees the mapping before
// the data.
func (s *Store) writeOnce(ino uint64, p []byte, off int64, short bool) (int, Inode, error) {
	s.gate.RLock()
	defer s.gate.RUnlock()
	var out Inode
	var segs []segment
	var fresh edges
	var gap *segment
	err := s.update(func(tx *bolt.Tx) error {
		r, err := getInode(tx, ino)
		if err != nil {
			return err
		}
		if !r.IsRegular() {
			return syscall.EISDIR
		}
		if len(p) == 0 {
			out = r.Inode
			return nil
		}
		// Before mapForWrite: a block it allocates is zero-filled (fresh) anyway.
		if gap, err = eofGap(tx, ino, int64(r.Size), off); err != nil {
			return err
		}
		b0, nb := blockRange(off, int64(len(p)))
		fresh = edges{first: b0, last: b0 + nb - 1}
		maps, err := s.mapForWrite(tx, r, b0, nb, &fresh)
		if err == syscall.ENOSPC && short {
			// allocate took nothing; retry with the prefix that fits.
			var fit int
			if fit, err = fitting(tx, ino, p, off); err != nil {
				return err
			}
			p = p[:fit]
			b0, nb = blockRange(off, int64(len(p)))
			fresh = edges{first: b0, last: b0 + nb - 1}
			maps, err = s.mapForWrite(tx, r, b0, nb, &fresh)
		}
		if err != nil {
			return err
		}
		segs = segments(maps, off, len(p))
		r.Size = max(r.Size, uint64(off)+uint64(len(p)))
		now := time.Now()
		r.Mtime, r.Ctime = now, now
		out = r.Inode
		return putInode(tx, r)
	})
	if err != nil || len(p) == 0 {
		return 0, out, err
	}
	if gap != nil {
		if err := s.vol.zero(gap.m.Pblk, gap.within(), gap.n); err != nil {
			s.fail(err)
			return 0, Inode{}, err
		}
	}
	if err := s.writeSegments(segs, p, off, &fresh); err != nil {
		s.fail(err)
		return 0, Inode{}, err
	}
	return len(p), out, nil
}

// fitting is how many leading bytes of a write at off can get blocks from the free space
// left; ENOSPC when not even the first needed block can.
func fitting(tx *bolt.Tx, ino uint64, p []byte, off int64) (int, error) {
	free, err := freeCount(tx)
	if err != nil {
		return 0, err
	}
	b0, nb := blockRange(off, int64(len(p)))
	maps, err := mapRange(tx, ino, b0, nb)
	if err != nil {
		return 0, err
	}
	for _, m := range maps {
		if !m.Hole {
			continue
		}
		if m.Len > free {
			fit := int64(m.Lblk+free)*BlockSize - off
			if fit <= 0 {
				return 0, syscall.ENOSPC
			}
			return int(min(fit, int64(len(p)))), nil
		}
		free -= m.Len
	}
	return len(p), nil
}

// mapForWrite makes every block of [b0, b0+nb) written: holes get new blocks, unwritten
// extents are converted. Edge blocks that did so are marked in fresh. ENOSPC changes nothing.
func (s *Store) mapForWrite(tx *bolt.Tx, r *inodeRec, b0, nb uint64, fresh *edges) ([]Mapping, error) {
	maps, err := mapRange(tx, r.Ino, b0, nb)
	if err != nil {
		return nil, err
	}
	runs, err := s.allocHoles(tx, r, maps, b0)
	if err != nil {
		return nil, err
	}
	var out []Mapping
	for _, m := range maps {
		if !m.Hole && !m.Unwritten {
			out = append(out, m)
			continue
		}
		fresh.mark(m)
		if m.Unwritten {
			m.Unwritten = false
			if _, err := setRange(tx, r.Ino, m.Lblk, m.Len, &m); err != nil {
				return nil, err
			}
			out = append(out, m)
			continue
		}
		filled, err := fillHole(tx, r.Ino, m, &runs, false)
		if err != nil {
			return nil, err
		}
		out = append(out, filled...)
	}
	return out, nil
}

// allocHoles takes blocks for every hole in maps, provisioned on the host, and counts them
// in r.Blocks. On any error nothing is taken.
func (s *Store) allocHoles(tx *bolt.Tx, r *inodeRec, maps []Mapping, lblk uint64) ([]run, error) {
	var need uint64
	for _, m := range maps {
		if m.Hole {
			need += m.Len
		}
	}
	if need == 0 {
		return nil, nil
	}
	goal, err := allocGoal(tx, r.Ino, lblk)
	if err != nil {
		return nil, err
	}
	runs, err := allocate(tx, need, goal)
	if err != nil {
		return nil, err
	}
	if err := s.vol.provision(runs); err != nil {
		// Never committed as used, so they may go straight back.
		for _, rn := range runs {
			if rerr := release(tx, rn); rerr != nil {
				return nil, rerr
			}
		}
		return nil, err
	}
	r.Blocks += need
	return runs, nil
}

// fillHole maps the hole m onto the front of runs, consuming them, and returns the new
// mappings.
func fillHole(tx *bolt.Tx, ino uint64, m Mapping, runs *[]run, unwritten bool) ([]Mapping, error) {
	var out []Mapping
	for lblk, left := m.Lblk, m.Len; left > 0; {
		r := &(*runs)[0]
		take := min(left, r.len)
		nm := Mapping{Lblk: lblk, Len: take, Pblk: r.pblk, Unwritten: unwritten}
		if _, err := setRange(tx, ino, lblk, take, &nm); err != nil {
			return nil, err
		}
		out = append(out, nm)
		r.pblk += take
		if r.len -= take; r.len == 0 {
			*runs = (*runs)[1:]
		}
		lblk += take
		left -= take
	}
	return out, nil
}

// writeSegments puts p on the volume. A fresh block the write covers only in part is written
// whole, zeros around the data, so its stale contents never become readable.
func (s *Store) writeSegments(segs []segment, p []byte, off int64, fresh *edges) error {
	end := off + int64(len(p))
	var edge []byte
	for _, g := range segs {
		src := p[g.fileOff-off : g.fileOff-off+int64(g.n)]
		first, last := uint64(g.fileOff)/BlockSize, uint64(g.fileOff+int64(g.n)-1)/BlockSize
		for _, lblk := range []uint64{first, last} {
			bs, be := int64(lblk)*BlockSize, int64(lblk+1)*BlockSize
			if !fresh.fresh(lblk) || (off <= bs && end >= be) {
				continue
			}
			if edge == nil {
				edge = make([]byte, BlockSize)
			}
			clear(edge)
			lo, hi := max(off, bs), min(end, be)
			copy(edge[lo-bs:hi-bs], p[lo-off:hi-off])
			if err := s.vol.writeAt(edge, g.m.Pblk+(lblk-g.m.Lblk), 0); err != nil {
				return err
			}
			// Written whole now; the plain write below covers its part again, harmlessly.
			if lblk == fresh.first {
				fresh.firstFresh = false
			}
			if lblk == fresh.last {
				fresh.lastFresh = false
			}
		}
		if err := s.vol.writeAt(src, g.m.Pblk, g.within()); err != nil {
			return err
		}
	}
	s.markDataDirty()
	return nil
}

func (s *Store) markDataDirty() {
	s.mu.Lock()
	s.dataDirty = true
	s.mu.Unlock()
}

// fail makes the store read-only after a data volume failure: metadata already points at
// blocks whose data may not have been written, so the group must not be committed.
func (s *Store) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLocked(err)
}
