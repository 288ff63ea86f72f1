package meta

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// lseek(2) whence values this store answers; the kernel handles the others.
const (
	SeekData = 3
	SeekHole = 4
)

// Seek implements lseek's SEEK_DATA and SEEK_HOLE: ENXIO at or past the end. Unwritten
// extents count as holes, as on ext4: they read as zeros.
func (s *Store) Seek(ino uint64, off int64, whence int) (int64, error) {
	if whence != SeekData && whence != SeekHole {
		return 0, syscall.EINVAL
	}
	if off < 0 {
		return 0, syscall.ENXIO
	}
	var pos int64
	err := s.view(func(tx *bolt.Tx) error {
		r, err := getInode(tx, ino)
		if err != nil {
			return err
		}
		size := int64(r.Size)
		if off >= size {
			return syscall.ENXIO
		}
		b0 := uint64(off) / BlockSize
		nb := uint64(size+BlockSize-1)/BlockSize - b0
		maps, err := mapRange(tx, ino, b0, nb)
		if err != nil {
			return err
		}
		pos = seekIn(maps, off, size, whence == SeekData)
		if pos < 0 {
			return syscall.ENXIO
		}
		return nil
	})
	return pos, err
}

// seekIn finds the first offset >= off in maps that is data (or a hole); -1 when there is
// no data. There is always a hole at the end of the file.
func seekIn(maps []Mapping, off, size int64, data bool) int64 {
	for _, m := range maps {
		isData := !m.Hole && !m.Unwritten
		if isData == data {
			return max(off, int64(m.Lblk)*BlockSize)
		}
	}
	if data {
		return -1
	}
	return size
}

// Map returns the mappings covering blocks [lblk, lblk+n) of ino, holes included, in order.
func (s *Store) Map(ino uint64, lblk, n uint64) ([]Mapping, error) {
	var maps []Mapping
	err := s.view(func(tx *bolt.Tx) error {
		if _, err := getInode(tx, ino); err != nil {
			return err
		}
		var err error
		maps, err = mapRange(tx, ino, lblk, n)
		return err
	})
	return maps, err
}
