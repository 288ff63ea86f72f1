package swap

import (
	"fmt"
	"sort"

	"github.com/swapfs/swapfs/meta"
)

// Extent is one run of a pinned file: Len blocks from logical block Lblk live at physical
// block Pblk of the data volume.
type Extent struct {
	Lblk, Pblk, Len uint64
}

// Map is the pinned block map of one swapfile. It is immutable: a changed file gets a new
// Map, so the I/O path reads it without locks.
type Map struct {
	ino     uint64
	size    int64 // file size when pinned; the I/O path never reads or writes past it
	header  Header
	extents []Extent // sorted by Lblk, contiguous from block 0, no holes
}

// NewMap builds the map of a file of size bytes from its extent map, which must cover every
// block of the file with written blocks: a hole or an unwritten extent would make the I/O
// path allocate or convert, which it must never do.
func NewMap(ino uint64, size int64, header Header, maps []meta.Mapping) (*Map, error) {
	blocks := uint64((size + meta.BlockSize - 1) / meta.BlockSize)
	m := &Map{ino: ino, size: size, header: header, extents: make([]Extent, 0, len(maps))}
	next := uint64(0)
	for _, mp := range maps {
		if mp.Lblk >= blocks {
			break
		}
		switch {
		case mp.Lblk != next:
			return nil, fmt.Errorf("pin inode %d: extent map skips blocks %d to %d", ino, next, mp.Lblk)
		case mp.Hole:
			return nil, fmt.Errorf("pin inode %d: blocks %d+%d are a hole", ino, mp.Lblk, mp.Len)
		case mp.Unwritten:
			return nil, fmt.Errorf("pin inode %d: blocks %d+%d are allocated but unwritten", ino, mp.Lblk, mp.Len)
		}
		n := min(mp.Len, blocks-mp.Lblk)
		if k := len(m.extents); k > 0 && m.extents[k-1].Pblk+m.extents[k-1].Len == mp.Pblk {
			m.extents[k-1].Len += n // meta may split a run the allocator made contiguous
		} else {
			m.extents = append(m.extents, Extent{Lblk: mp.Lblk, Pblk: mp.Pblk, Len: n})
		}
		next = mp.Lblk + n
	}
	if next < blocks {
		return nil, fmt.Errorf("pin inode %d: extent map ends at block %d of %d", ino, next, blocks)
	}
	return m, nil
}

// Ino is the pinned file's inode number.
func (m *Map) Ino() uint64 { return m.ino }

// Size is the file size the map covers.
func (m *Map) Size() int64 { return m.size }

// Header is the swap header the file had when it was pinned.
func (m *Map) Header() Header { return m.header }

// Extents returns a copy of the runs, for status and tests.
func (m *Map) Extents() []Extent { return append([]Extent(nil), m.extents...) }

// NumExtents is the number of runs.
func (m *Map) NumExtents() int { return len(m.extents) }

// Equal reports whether two maps put every block in the same place.
func (m *Map) Equal(o *Map) bool {
	if m.size != o.size || len(m.extents) != len(o.extents) {
		return false
	}
	for i := range m.extents {
		if m.extents[i] != o.extents[i] {
			return false
		}
	}
	return true
}

// find returns the index of the extent holding logical block lblk, which must be in the file.
func (m *Map) find(lblk uint64) int {
	return sort.Search(len(m.extents), func(i int) bool { return m.extents[i].Lblk+m.extents[i].Len > lblk })
}

// span returns where the file bytes [off, off+n) start on the volume and how many of them are
// contiguous there (at most n): I/O is split at extent boundaries.
func (m *Map) span(off int64, n int) (volOff int64, contiguous int) {
	lblk := uint64(off / meta.BlockSize)
	e := m.extents[m.find(lblk)]
	within := off - int64(e.Lblk)*meta.BlockSize
	left := int64(e.Len)*meta.BlockSize - within
	return int64(e.Pblk)*meta.BlockSize + within, int(min(int64(n), left))
}
