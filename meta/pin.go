package meta

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// pinZeroChunk is how many zero bytes Pin writes at once.
const pinZeroChunk = 1 << 20

// Pin readies a regular file to be served as swap without metadata changes: every block up
// to its size becomes allocated and written (holes get blocks, preferring one contiguous run
// next to the file's others; holes and unwritten extents are filled with zeros), the inode
// gets FlagSwapfile, and all of it is committed before Pin returns, zeros first, so the map
// the caller pins in memory is the one a crash leaves on disk. It returns the file's whole
// map. ENOSPC leaves the file as it was.
func (s *Store) Pin(ino uint64) ([]Mapping, Inode, error) {
	il := s.locks.lock(ino, true)
	defer s.locks.unlock(ino, il, true)
	var maps []Mapping
	var out Inode
	var err error
	for retried := false; ; retried = true {
		maps, out, err = s.pinOnce(ino)
		if err == syscall.ENOSPC && !retried && s.hasPendingFree() {
			if err := s.Sync(); err != nil {
				return nil, Inode{}, err
			}
			continue
		}
		break
	}
	if err != nil {
		return nil, Inode{}, err
	}
	if err := s.Sync(); err != nil {
		return nil, Inode{}, err
	}
	return maps, out, nil
}

func (s *Store) pinOnce(ino uint64) ([]Mapping, Inode, error) {
	s.gate.RLock()
	defer s.gate.RUnlock()
	var maps, zeros []Mapping
	var out Inode
	err := s.update(func(tx *bolt.Tx) error {
		r, err := getInode(tx, ino)
		if err != nil {
			return err
		}
		if !r.IsRegular() {
			return syscall.EINVAL
		}
		nb := (r.Size + BlockSize - 1) / BlockSize
		if nb == 0 {
			return syscall.EINVAL
		}
		if err := s.reserve(tx, r, 0, nb, false); err != nil {
			return err
		}
		if maps, err = mapRange(tx, ino, 0, nb); err != nil {
			return err
		}
		for i, m := range maps {
			if m.Unwritten {
				zeros = append(zeros, m)
				m.Unwritten = false
				if _, err := setRange(tx, ino, m.Lblk, m.Len, &m); err != nil {
					return err
				}
				maps[i] = m
			}
		}
		if len(zeros) > 0 {
			// Written after the metadata that claims it in this transaction, but before
			// the commit: the commit waits for the gate this holds.
			if maps, err = mapRange(tx, ino, 0, nb); err != nil {
				return err
			}
		}
		r.Flags |= FlagSwapfile
		r.Ctime = time.Now()
		out = r.Inode
		return putInode(tx, r)
	})
	if err != nil {
		return nil, Inode{}, err
	}
	for _, m := range zeros {
		if err := s.writeZeros(m.Pblk, m.Len); err != nil {
			s.fail(err)
			return nil, Inode{}, err
		}
	}
	if len(zeros) > 0 {
		s.markDataDirty()
	}
	return maps, out, nil
}

// writeZeros fills n blocks from pblk with zeros, a megabyte at a time through the O_DIRECT
// descriptor.
func (s *Store) writeZeros(pblk, n uint64) error {
	bp := s.vol.bounce.Get().(*[]byte)
	defer s.vol.bounce.Put(bp)
	buf := (*bp)[:pinZeroChunk]
	clear(buf)
	for n > 0 {
		k := min(n, pinZeroChunk/BlockSize)
		if err := s.vol.writeAt(buf[:k*BlockSize], pblk, 0); err != nil {
			return err
		}
		pblk, n = pblk+k, n-k
	}
	return nil
}

// Unpin clears FlagSwapfile: the file is an ordinary file again.
func (s *Store) Unpin(ino uint64) (Inode, error) {
	var out Inode
	err := s.update(func(tx *bolt.Tx) error {
		r, err := getInode(tx, ino)
		if err != nil {
			return err
		}
		r.Flags &^= FlagSwapfile
		r.Ctime = time.Now()
		out = r.Inode
		return putInode(tx, r)
	})
	return out, err
}

// DataVolume is the path of the data volume; block b of it is at byte b*BlockSize.
func (s *Store) DataVolume() string { return s.vol.path }

// Swapfiles lists the inodes flagged FlagSwapfile, for pinning them again at mount.
func (s *Store) Swapfiles() ([]uint64, error) {
	var out []uint64
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketInodes).ForEach(func(k, v []byte) error {
			if len(k) != 8 {
				return fmt.Errorf("inode key %x is not 8 bytes", k)
			}
			r, err := decodeInode(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return err
			}
			if r.Flags&FlagSwapfile != 0 && r.Nlink > 0 {
				out = append(out, r.Ino)
			}
			return nil
		})
	})
	return out, err
}

// PathOf returns a path of ino from the root ("/a/b"), for reports; "" when it has no name.
// It scans the directory entries, so it is for status, not for any I/O path.
func (s *Store) PathOf(ino uint64) (string, error) {
	var path string
	err := s.view(func(tx *bolt.Tx) error {
		parent, name, ok, err := nameOf(tx, ino)
		if err != nil || !ok {
			return err
		}
		path = "/" + name
		for depth := 0; parent != RootIno; depth++ {
			if depth > 4096 {
				return fmt.Errorf("path of inode %d: directory loop", ino)
			}
			var dir string
			if parent, dir, ok, err = nameOf(tx, parent); err != nil || !ok {
				path = ""
				return err
			}
			path = "/" + dir + path
		}
		return nil
	})
	return path, err
}

// nameOf finds a directory entry naming ino: its directory and name.
func nameOf(tx *bolt.Tx, ino uint64) (parent uint64, name string, ok bool, err error) {
	c := tx.Bucket(bucketDirents).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		d, err := decodeDirent(v)
		if err != nil {
			return 0, "", false, err
		}
		if d.ino == ino && len(k) > 8 {
			return binary.BigEndian.Uint64(k), string(k[8:]), true, nil
		}
	}
	return 0, "", false, nil
}
