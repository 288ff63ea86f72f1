package meta

import (
	"encoding/binary"
	"fmt"
)

// The whole on-disk format, format version 1. Integers are fixed-width big-endian so that
// cursor order is numeric order. Byte 0 of every value is the record version (recV1).
//
//	bucket    key                          value (after the version byte)
//	super     "format"                     format(4)
//	          "uuid"                       uuid(16)
//	          "blocksize"                  blocksize(4)
//	          "volume"                     blocks(8) | path (empty: STORE/data)
//	          "nextino"                    next inode number(8)
//	          "maxinodes"                  inode limit(8)
//	          "inodes"                     inodes in use(8)
//	          "freeblocks"                 blocks in free(8), kept by allocate and release
//	inodes    ino(8)                       inode record (encodeInode)
//	dirents   parent(8) | name             ino(8) | type(1) | cookie(8)
//	dirpos    parent(8) | cookie(8)        name
//	extents   ino(8) | lblk(8)             pblk(8) | len(4) | flags(1)
//	free      pblk(8)                      len(8)
//	freelen   len(8) | pblk(8)             (empty): the by-length index of free, for best fit
//	xattrs    ino(8) | name                value
//	symlinks  ino(8)                       target
//	orphans   ino(8)                       (empty): unlinked inodes still open
//
// Physical block 0 of the data volume holds the volume label (volumeLabel), so a store can
// tell its own data volume from any other; data blocks are 1 .. blocks-1.
var (
	bucketSuper    = []byte("super")
	bucketInodes   = []byte("inodes")
	bucketDirents  = []byte("dirents")
	bucketDirpos   = []byte("dirpos")
	bucketExtents  = []byte("extents")
	bucketFree     = []byte("free")
	bucketFreelen  = []byte("freelen")
	bucketXattrs   = []byte("xattrs")
	bucketSymlinks = []byte("symlinks")
	bucketOrphans  = []byte("orphans")

	allBuckets = [][]byte{bucketSuper, bucketInodes, bucketDirents, bucketDirpos, bucketExtents,
		bucketFree, bucketFreelen, bucketXattrs, bucketSymlinks, bucketOrphans}

	keyFormat     = []byte("format")
	keyUUID       = []byte("uuid")
	keyBlockSize  = []byte("blocksize")
	keyVolume     = []byte("volume")
	keyNextIno    = []byte("nextino")
	keyMaxInodes  = []byte("maxinodes")
	keyInodes     = []byte("inodes")
	keyFreeBlocks = []byte("freeblocks")
)

// FormatVersion is the on-disk format this code reads and writes.
const FormatVersion = 1

// recV1 is byte 0 of every value written by this format.
const recV1 byte = 1

// extent flags
const extentUnwritten byte = 1 << 0

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func inoKey(ino uint64) []byte { return u64(ino) }

func direntKey(parent uint64, name string) []byte {
	k := make([]byte, 8+len(name))
	binary.BigEndian.PutUint64(k, parent)
	copy(k[8:], name)
	return k
}

func pairKey(a, b uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, a)
	binary.BigEndian.PutUint64(k[8:], b)
	return k
}

func xattrKey(ino uint64, name string) []byte { return direntKey(ino, name) }

// decodePairKey splits a 16-byte key made by pairKey.
func decodePairKey(k []byte) (uint64, uint64, error) {
	if len(k) != 16 {
		return 0, 0, fmt.Errorf("key of %d bytes, want 16", len(k))
	}
	return binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(k[8:]), nil
}

// checkVersion returns the record body after the version byte.
func checkVersion(v []byte, what string, minBody int) ([]byte, error) {
	if len(v) < 1 {
		return nil, fmt.Errorf("%s: empty record", what)
	}
	if v[0] != recV1 {
		return nil, fmt.Errorf("%s: record version %d, this swapfs reads version %d", what, v[0], recV1)
	}
	if len(v)-1 < minBody {
		return nil, fmt.Errorf("%s: record of %d bytes, want at least %d", what, len(v)-1, minBody)
	}
	return v[1:], nil
}

// extentRec is the value of an extents entry.
type extentRec struct {
	pblk      uint64
	len       uint32
	unwritten bool
}

func encodeExtent(e extentRec) []byte {
	v := make([]byte, 1+8+4+1)
	v[0] = recV1
	binary.BigEndian.PutUint64(v[1:], e.pblk)
	binary.BigEndian.PutUint32(v[9:], e.len)
	if e.unwritten {
		v[13] = extentUnwritten
	}
	return v
}

func decodeExtent(v []byte) (extentRec, error) {
	b, err := checkVersion(v, "extent", 13)
	if err != nil {
		return extentRec{}, err
	}
	e := extentRec{pblk: binary.BigEndian.Uint64(b), len: binary.BigEndian.Uint32(b[8:])}
	if b[12]&^extentUnwritten != 0 {
		return extentRec{}, fmt.Errorf("extent: unknown flags %#x", b[12])
	}
	e.unwritten = b[12]&extentUnwritten != 0
	if e.len == 0 {
		return extentRec{}, fmt.Errorf("extent: zero length")
	}
	return e, nil
}

func encodeU64(x uint64) []byte {
	v := make([]byte, 9)
	v[0] = recV1
	binary.BigEndian.PutUint64(v[1:], x)
	return v
}

func decodeU64(v []byte, what string) (uint64, error) {
	b, err := checkVersion(v, what, 8)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

// encodeEmpty is the value of index entries (freelen, orphans): just the version.
func encodeEmpty() []byte { return []byte{recV1} }
