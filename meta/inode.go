package meta

import (
	"encoding/binary"
	"fmt"
	"math"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// inodeRec is an inode as stored: the public Inode plus what only meta needs.
type inodeRec struct {
	Inode
	// dirSeq is the next readdir cookie a directory hands out; cookies only grow, which is
	// what makes readdir offsets stable under concurrent change.
	dirSeq uint64
}

// firstCookie leaves 0 (start of stream) and 1, 2 ("." and "..") to the FUSE layer.
const firstCookie = 3

const inodeRecLen = 4*6 + 8*9

// inodeRecLenNoBtime is the record before it carried a birth time; such records still
// decode, with a zero Btime.
const inodeRecLenNoBtime = inodeRecLen - 8

func encodeInode(r *inodeRec) []byte {
	v := make([]byte, 1+inodeRecLen)
	v[0] = recV1
	b := v[1:]
	be := binary.BigEndian
	be.PutUint32(b[0:], r.Mode)
	be.PutUint32(b[4:], r.Uid)
	be.PutUint32(b[8:], r.Gid)
	be.PutUint32(b[12:], r.Nlink)
	be.PutUint32(b[16:], r.Rdev)
	be.PutUint32(b[20:], r.Flags)
	be.PutUint64(b[inodeSizeOffset:], r.Size)
	be.PutUint64(b[32:], r.Blocks)
	be.PutUint64(b[40:], r.Gen)
	be.PutUint64(b[48:], r.Parent)
	be.PutUint64(b[56:], r.dirSeq)
	be.PutUint64(b[64:], uint64(clampTime(r.Atime).UnixNano()))
	be.PutUint64(b[72:], uint64(clampTime(r.Mtime).UnixNano()))
	be.PutUint64(b[80:], uint64(clampTime(r.Ctime).UnixNano()))
	be.PutUint64(b[88:], uint64(clampTime(r.Btime).UnixNano()))
	return v
}

// Inode times are stored as nanoseconds since the epoch in 64 bits, which hold the years
// 1677 to 2262 (time.Time.UnixNano is undefined outside them).
var minTime, maxTime = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

// clampTime returns t, or the nearest time an inode can hold: a time set outside the range
// is stored as its end, as ext4 clamps to its own range (timestamp_truncate), never wrapped
// to the far side.
func clampTime(t time.Time) time.Time {
	if t.Before(minTime) {
		return minTime
	}
	if t.After(maxTime) {
		return maxTime
	}
	return t
}

func decodeInode(ino uint64, v []byte) (*inodeRec, error) {
	b, err := checkVersion(v, "", inodeRecLenNoBtime)
	if err != nil {
		// Named only on failure: formatting the name costs the read path an allocation.
		_, err = checkVersion(v, fmt.Sprintf("inode %d", ino), inodeRecLenNoBtime)
		return nil, err
	}
	be := binary.BigEndian
	r := &inodeRec{Inode: Inode{
		Ino:    ino,
		Mode:   be.Uint32(b[0:]),
		Uid:    be.Uint32(b[4:]),
		Gid:    be.Uint32(b[8:]),
		Nlink:  be.Uint32(b[12:]),
		Rdev:   be.Uint32(b[16:]),
		Flags:  be.Uint32(b[20:]),
		Size:   be.Uint64(b[inodeSizeOffset:]),
		Blocks: be.Uint64(b[32:]),
		Gen:    be.Uint64(b[40:]),
		Parent: be.Uint64(b[48:]),
		Atime:  time.Unix(0, int64(be.Uint64(b[64:]))),
		Mtime:  time.Unix(0, int64(be.Uint64(b[72:]))),
		Ctime:  time.Unix(0, int64(be.Uint64(b[80:]))),
	}, dirSeq: be.Uint64(b[56:])}
	r.Btime = time.Unix(0, 0)
	if len(b) >= inodeRecLen {
		r.Btime = time.Unix(0, int64(be.Uint64(b[88:])))
	}
	switch r.Mode & syscall.S_IFMT {
	case syscall.S_IFREG, syscall.S_IFDIR, syscall.S_IFLNK, syscall.S_IFIFO, syscall.S_IFSOCK,
		syscall.S_IFCHR, syscall.S_IFBLK:
	default:
		return nil, fmt.Errorf("inode %d: unknown file type %#o", ino, r.Mode&syscall.S_IFMT)
	}
	return r, nil
}

func getInode(tx *bolt.Tx, ino uint64) (*inodeRec, error) {
	v := tx.Bucket(bucketInodes).Get(inoKey(ino))
	if v == nil {
		return nil, syscall.ENOENT
	}
	return decodeInode(ino, v)
}

// inodeSizeOffset is where Size lies in an inode record's body, for storedSize.
const inodeSizeOffset = 24

// storedSize reads an inode's size alone, for the write path, where decoding the whole
// record allocates; ok is false when there is no such inode or it does not decode.
func storedSize(tx *bolt.Tx, ino uint64) (size uint64, ok bool) {
	v := tx.Bucket(bucketInodes).Get(inoKey(ino))
	if len(v) < 1+inodeRecLenNoBtime || v[0] != recV1 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v[1+inodeSizeOffset:]), true
}

func putInode(tx *bolt.Tx, r *inodeRec) error {
	if err := tx.Bucket(bucketInodes).Put(inoKey(r.Ino), encodeInode(r)); err != nil {
		return fmt.Errorf("write inode %d: %w", r.Ino, err)
	}
	return nil
}

// direntRec is the value of a dirents entry.
type direntRec struct {
	ino    uint64
	typ    byte // file type, S_IFMT >> 12
	cookie uint64
}

func encodeDirent(d direntRec) []byte {
	v := make([]byte, 1+8+1+8)
	v[0] = recV1
	binary.BigEndian.PutUint64(v[1:], d.ino)
	v[9] = d.typ
	binary.BigEndian.PutUint64(v[10:], d.cookie)
	return v
}

func decodeDirent(v []byte) (direntRec, error) {
	b, err := checkVersion(v, "dirent", 17)
	if err != nil {
		return direntRec{}, err
	}
	d := direntRec{ino: binary.BigEndian.Uint64(b), typ: b[8], cookie: binary.BigEndian.Uint64(b[9:])}
	if d.ino == 0 {
		return direntRec{}, fmt.Errorf("dirent: inode 0")
	}
	return d, nil
}

func typeOf(mode uint32) byte { return byte((mode & syscall.S_IFMT) >> 12) }

// encodeBytes and decodeBytes frame variable-length values (names, targets, xattr values).
func encodeBytes(p []byte) []byte {
	v := make([]byte, 1+len(p))
	v[0] = recV1
	copy(v[1:], p)
	return v
}

func decodeBytes(v []byte, what string) ([]byte, error) {
	b, err := checkVersion(v, what, 0)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), b...), nil
}
