package meta

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// maxExtentLen is the most blocks one extent record holds (its length is 32 bits).
const maxExtentLen = math.MaxUint32

// span is an extent in memory. Its length is 64 bits so that merged neighbours may exceed
// one record until putSpan cuts them into records.
type span struct {
	lblk, pblk, len uint64
	unwritten       bool
}

func (s span) end() uint64 { return s.lblk + s.len }

// joins reports whether t continues s both logically and physically, with the same flag.
func (s span) joins(t span) bool {
	return s.end() == t.lblk && s.pblk+s.len == t.pblk && s.unwritten == t.unwritten
}

// clip returns the part of s inside [lo, hi); they must overlap.
func (s span) clip(lo, hi uint64) span {
	a, b := max(s.lblk, lo), min(s.end(), hi)
	return span{lblk: a, pblk: s.pblk + (a - s.lblk), len: b - a, unwritten: s.unwritten}
}

func (s span) mapping() Mapping {
	return Mapping{Lblk: s.lblk, Len: s.len, Pblk: s.pblk, Unwritten: s.unwritten}
}

// mapRange returns mappings that cover exactly [lblk, lblk+n) of ino, in order; each gap
// between extents is one hole.
func mapRange(tx *bolt.Tx, ino, lblk, n uint64) ([]Mapping, error) {
	if n == 0 {
		return nil, nil
	}
	end, err := rangeEnd(lblk, n)
	if err != nil {
		return nil, err
	}
	spans, err := loadSpans(tx, ino, lblk, end)
	if err != nil {
		return nil, err
	}
	var out []Mapping
	pos := lblk
	for _, s := range spans {
		c := s.clip(lblk, end)
		if c.lblk > pos {
			out = append(out, Mapping{Lblk: pos, Len: c.lblk - pos, Hole: true})
		}
		out = append(out, c.mapping())
		pos = c.end()
	}
	if pos < end {
		out = append(out, Mapping{Lblk: pos, Len: end - pos, Hole: true})
	}
	return out, nil
}

// setRange makes [lblk, lblk+n) of ino a hole (to nil, or to.Hole) or map to physical blocks
// to.Pblk.. with to.Unwritten; to.Lblk and to.Len are ignored. Extents reaching outside the
// range keep their outer parts. It returns what the range mapped before (no holes), so the
// caller can free those blocks, or keep them when it only changed the unwritten flag.
func setRange(tx *bolt.Tx, ino, lblk, n uint64, to *Mapping) ([]Mapping, error) {
	if n == 0 {
		return nil, nil
	}
	end, err := rangeEnd(lblk, n)
	if err != nil {
		return nil, err
	}
	lo, hi := lblk, end
	var mid []span
	if to != nil && !to.Hole {
		if to.Pblk == 0 || to.Pblk+n < to.Pblk {
			return nil, fmt.Errorf("map %d/%d+%d to blocks %d+%d: not data blocks of a volume", ino, lblk, n, to.Pblk, n)
		}
		mid = []span{{lblk: lblk, pblk: to.Pblk, len: n, unwritten: to.Unwritten}}
		// Load the extents that end at lblk or start at end too: the new one may merge.
		lo, hi = lblk-min(lblk, 1), end+min(math.MaxUint64-end, 1)
	}
	spans, err := loadSpans(tx, ino, lo, hi)
	if err != nil {
		return nil, err
	}
	before, inside, after := cutAround(spans, lblk, end)
	pieces := coalesce(append(append(before, mid...), after...))
	b := tx.Bucket(bucketExtents)
	for _, s := range spans {
		if err := b.Delete(pairKey(ino, s.lblk)); err != nil {
			return nil, fmt.Errorf("extent %d/%d: %w", ino, s.lblk, err)
		}
	}
	for _, s := range pieces {
		if err := putSpan(b, ino, s); err != nil {
			return nil, err
		}
	}
	old := make([]Mapping, 0, len(inside))
	for _, s := range inside {
		old = append(old, s.mapping())
	}
	return old, nil
}

// cutAround splits spans into their parts before lo, inside [lo, hi) and from hi on.
func cutAround(spans []span, lo, hi uint64) (before, inside, after []span) {
	for _, s := range spans {
		if s.lblk < lo {
			before = append(before, s.clip(s.lblk, lo))
		}
		if s.lblk < hi && s.end() > lo {
			inside = append(inside, s.clip(lo, hi))
		}
		if s.end() > hi {
			after = append(after, s.clip(hi, s.end()))
		}
	}
	return before, inside, after
}

// coalesce merges each span into the one before it when it continues it.
func coalesce(spans []span) []span {
	var out []span
	for _, s := range spans {
		if k := len(out) - 1; k >= 0 && out[k].joins(s) {
			out[k].len += s.len
			continue
		}
		out = append(out, s)
	}
	return out
}

// putSpan writes s as extent records of at most maxExtentLen blocks each.
func putSpan(b *bolt.Bucket, ino uint64, s span) error {
	for s.len > 0 {
		l := min(s.len, maxExtentLen)
		v := encodeExtent(extentRec{pblk: s.pblk, len: uint32(l), unwritten: s.unwritten})
		if err := b.Put(pairKey(ino, s.lblk), v); err != nil {
			return fmt.Errorf("extent %d/%d: %w", ino, s.lblk, err)
		}
		s = span{lblk: s.lblk + l, pblk: s.pblk + l, len: s.len - l, unwritten: s.unwritten}
	}
	return nil
}

// allocGoal returns the physical block right after the extent of ino that holds or
// precedes lblk, or 0 if there is none: allocating there keeps a growing file contiguous.
func allocGoal(tx *bolt.Tx, ino, lblk uint64) (uint64, error) {
	c := tx.Bucket(bucketExtents).Cursor()
	key := pairKey(ino, lblk)
	k, v := c.Seek(key)
	if !bytes.Equal(k, key) {
		k, v = prev(c, k)
	}
	s, ok, err := decodeSpan(ino, k, v)
	if err != nil || !ok {
		return 0, err
	}
	return s.pblk + s.len, nil
}

// forEachExtent calls fn for each extent of ino in lblk order. fn must not change extents:
// the walk holds a cursor on them.
func forEachExtent(tx *bolt.Tx, ino uint64, fn func(lblk uint64, e extentRec) error) error {
	c := tx.Bucket(bucketExtents).Cursor()
	for k, v := c.Seek(pairKey(ino, 0)); ; k, v = c.Next() {
		s, ok, err := decodeSpan(ino, k, v)
		if err != nil || !ok {
			return err
		}
		e := extentRec{pblk: s.pblk, len: uint32(s.len), unwritten: s.unwritten}
		if err := fn(s.lblk, e); err != nil {
			return err
		}
	}
}

// truncateExtents removes every mapping of ino from logical block from on, cutting an
// extent that straddles from, and returns what was removed.
func truncateExtents(tx *bolt.Tx, ino, from uint64) ([]Mapping, error) {
	// No extent holds block MaxUint64 (decodeSpan refuses one that would), so this range
	// reaches past every extent.
	return setRange(tx, ino, from, math.MaxUint64-from, nil)
}

// loadSpans returns the extents of ino that overlap [lo, hi), in order. It refuses
// overlapping extents, so callers may rely on the order.
func loadSpans(tx *bolt.Tx, ino, lo, hi uint64) ([]span, error) {
	c := tx.Bucket(bucketExtents).Cursor()
	start := pairKey(ino, lo)
	var out []span
	k, v := c.Seek(start)
	if !bytes.Equal(k, start) {
		// An extent holding lo starts before it, so it is the key before start.
		pk, pv := prev(c, k)
		s, ok, err := decodeSpan(ino, pk, pv)
		if err != nil {
			return nil, err
		}
		if ok && s.end() > lo {
			out = append(out, s)
		}
		k, v = c.Seek(start)
	}
	for ; k != nil; k, v = c.Next() {
		s, ok, err := decodeSpan(ino, k, v)
		if err != nil {
			return nil, err
		}
		if !ok || s.lblk >= hi {
			break
		}
		if n := len(out); n > 0 && s.lblk < out[n-1].end() {
			return nil, fmt.Errorf("extent %d/%d: overlaps the extent at %d", ino, s.lblk, out[n-1].lblk)
		}
		out = append(out, s)
	}
	return out, nil
}

// decodeSpan decodes an extents entry; ok is false when k is not an extent of ino (or nil).
func decodeSpan(ino uint64, k, v []byte) (s span, ok bool, err error) {
	if len(k) < 8 || binary.BigEndian.Uint64(k) != ino {
		return span{}, false, nil
	}
	_, lblk, err := decodePairKey(k)
	if err != nil {
		return span{}, false, fmt.Errorf("extent key %x of inode %d: %w", k, ino, err)
	}
	e, err := decodeExtent(v)
	if err != nil {
		return span{}, false, fmt.Errorf("extent %d/%d: %w", ino, lblk, err)
	}
	s = span{lblk: lblk, pblk: e.pblk, len: uint64(e.len), unwritten: e.unwritten}
	// Refused so that no sum of a block number and a length can wrap.
	if s.end() < s.lblk || s.pblk+s.len < s.pblk {
		return span{}, false, fmt.Errorf("extent %d/%d: %d blocks at %d run past the last block number", ino, lblk, s.len, s.pblk)
	}
	return s, true, nil
}

// rangeEnd returns lblk+n, or EFBIG if that is past the last block number.
func rangeEnd(lblk, n uint64) (uint64, error) {
	if lblk+n < lblk {
		return 0, syscall.EFBIG
	}
	return lblk + n, nil
}
