package meta

import (
	"bytes"
	"fmt"
	"sort"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// GetXattr returns the value of xattr name: ENODATA, ENOENT.
func (s *Store) GetXattr(ino uint64, name string) ([]byte, error) {
	var val []byte
	err := s.view(func(tx *bolt.Tx) error {
		if _, err := getInode(tx, ino); err != nil {
			return err
		}
		v := tx.Bucket(bucketXattrs).Get(xattrKey(ino, name))
		if v == nil {
			return syscall.ENODATA
		}
		var err error
		val, err = decodeBytes(v, fmt.Sprintf("xattr %d/%q", ino, name))
		return err
	})
	return val, err
}

// Per inode, the names of its xattrs (each with its NUL) fit in what listxattr(2) can
// return (XATTR_LIST_MAX), so cp -a, rsync -X and tar --xattrs can always copy them, and
// their values in xattrValuesMax bytes, so one file cannot grow meta.db without bound. A
// set past either is ENOSPC, as on ext4, whose xattrs must fit in one block.
const (
	xattrListMax   = 65536
	xattrValuesMax = 1 << 20
)

// SetXattr sets an xattr with XattrCreate/XattrReplace semantics: EEXIST, ENODATA, ERANGE
// (name empty or too long), E2BIG (value too large), ENOSPC (the inode's xattrs are full),
// EINVAL (unknown flags).
func (s *Store) SetXattr(ino uint64, name string, value []byte, flags uint32) error {
	switch {
	case flags&^(XattrCreate|XattrReplace) != 0:
		return syscall.EINVAL
	case name == "" || len(name) > XattrNameMax:
		return syscall.ERANGE
	case len(value) > XattrSizeMax:
		return syscall.E2BIG
	}
	return s.update(func(tx *bolt.Tx) error {
		r, err := getInode(tx, ino)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketXattrs)
		exists := b.Get(xattrKey(ino, name)) != nil
		if flags&XattrCreate != 0 && exists {
			return syscall.EEXIST
		}
		if flags&XattrReplace != 0 && !exists {
			return syscall.ENODATA
		}
		if names, values := xattrUse(tx, ino, name); names+len(name)+1 > xattrListMax || values+len(value) > xattrValuesMax {
			return syscall.ENOSPC
		}
		if err := b.Put(xattrKey(ino, name), encodeBytes(value)); err != nil {
			return fmt.Errorf("set xattr %d/%q: %w", ino, name, err)
		}
		r.Ctime = time.Now()
		return putInode(tx, r)
	})
}

// xattrUse is how many bytes the names (each with its NUL) and the values of ino's xattrs
// take, leaving out the xattr except.
func xattrUse(tx *bolt.Tx, ino uint64, except string) (names, values int) {
	forEachXattr(tx, ino, func(name, v []byte) {
		if string(name) != except {
			names += len(name) + 1
			values += len(v) - 1 // the record version byte
		}
	})
	return names, values
}

// forEachXattr calls fn with the name and stored value of each xattr of ino, in name order;
// both are bbolt's, valid only in the transaction.
func forEachXattr(tx *bolt.Tx, ino uint64, fn func(name, value []byte)) {
	prefix := inoKey(ino)
	c := tx.Bucket(bucketXattrs).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		fn(k[len(prefix):], v)
	}
}

// ListXattr returns the xattr names of ino, sorted.
func (s *Store) ListXattr(ino uint64) ([]string, error) {
	var names []string
	err := s.view(func(tx *bolt.Tx) error {
		if _, err := getInode(tx, ino); err != nil {
			return err
		}
		forEachXattr(tx, ino, func(name, _ []byte) { names = append(names, string(name)) })
		return nil
	})
	sort.Strings(names)
	return names, err
}

// RemoveXattr removes an xattr: ENODATA.
func (s *Store) RemoveXattr(ino uint64, name string) error {
	if len(name) > XattrNameMax {
		return syscall.ERANGE
	}
	return s.update(func(tx *bolt.Tx) error {
		r, err := getInode(tx, ino)
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketXattrs)
		if b.Get(xattrKey(ino, name)) == nil {
			return syscall.ENODATA
		}
		if err := b.Delete(xattrKey(ino, name)); err != nil {
			return fmt.Errorf("remove xattr %d/%q: %w", ino, name, err)
		}
		r.Ctime = time.Now()
		return putInode(tx, r)
	})
}
