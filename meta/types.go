package meta

import (
	"syscall"
	"time"
)

// BlockSize is the allocation unit of the data volume and the unit of extent maps.
const BlockSize = 4096

// RootIno is the inode number of the root directory; it is created by Mkfs.
const RootIno uint64 = 1

// Inode flags, persisted in Inode.Flags.
const (
	// FlagSwapfile marks a file whose blocks are all allocated, written and pinned; the swap
	// package owns what it means. meta only guarantees the flag survives remounts.
	FlagSwapfile uint32 = 1 << 0
)

// Inode is a copy of an inode record. Changing it changes nothing on disk: use the Store's
// methods.
type Inode struct {
	Ino    uint64
	Gen    uint64
	Mode   uint32 // file type (S_IFMT bits) and permission bits, as in stat(2)
	Uid    uint32
	Gid    uint32
	Nlink  uint32
	Rdev   uint32
	Flags  uint32
	Size   uint64
	Blocks uint64 // data blocks of BlockSize allocated to the file
	Atime  time.Time
	Mtime  time.Time
	Ctime  time.Time
	Btime  time.Time // creation (birth) time, for statx
	Parent uint64    // directories only: the directory that holds it (the root holds itself)
}

// IsDir reports whether the inode is a directory.
func (i *Inode) IsDir() bool { return i.Mode&syscall.S_IFMT == syscall.S_IFDIR }

// IsRegular reports whether the inode is a regular file.
func (i *Inode) IsRegular() bool { return i.Mode&syscall.S_IFMT == syscall.S_IFREG }

// DirEntry is one name in a directory listing.
type DirEntry struct {
	Name string
	Ino  uint64
	Mode uint32 // file type bits only (S_IFMT)
	// Cookie is the stable position of this entry in its directory: positions only grow, so
	// a listing resumed at Cookie+1 neither repeats nor skips entries that stayed in place,
	// whatever was created or removed meanwhile.
	Cookie uint64
}

// NewInode describes an inode to create.
type NewInode struct {
	Mode   uint32 // type and permission bits, umask already applied
	Uid    uint32
	Gid    uint32
	Rdev   uint32
	Target string // symlink target; symlinks only
}

// SetAttr lists attribute changes; nil fields stay as they are. Ctime is set to now by any
// change.
type SetAttr struct {
	Mode  *uint32 // permission bits and suid/sgid/sticky; the type bits are ignored
	Uid   *uint32
	Gid   *uint32
	Size  *uint64
	Atime *time.Time
	Mtime *time.Time
}

// Statfs is the free-space picture for statfs(2).
type Statfs struct {
	BlockSize   uint32
	Blocks      uint64 // data blocks on the volume
	BlocksFree  uint64
	Inodes      uint64 // the inode limit set at mkfs
	InodesFree  uint64
	NameMax     uint32
	VolumeBytes uint64
}

// Mapping is one run of a file's logical blocks, as ReadDir is one run of names.
type Mapping struct {
	Lblk      uint64 // first logical block of the run
	Len       uint64 // blocks in the run
	Pblk      uint64 // first physical block on the data volume; meaningless for a hole
	Hole      bool   // no blocks allocated: reads as zeros
	Unwritten bool   // allocated (fallocate) but never written: reads as zeros
}

// Rename flags, as renameat2(2).
const (
	RenameNoreplace uint32 = 1 << 0
	RenameExchange  uint32 = 1 << 1
	RenameWhiteout  uint32 = 1 << 2
)

// Fallocate modes, as fallocate(2).
const (
	FallocKeepSize  uint32 = 0x01
	FallocPunchHole uint32 = 0x02
	FallocZeroRange uint32 = 0x10
)

// Xattr flags, as setxattr(2).
const (
	XattrCreate  uint32 = 1
	XattrReplace uint32 = 2
)

// Limits, as on ext4.
const (
	NameMax      = 255
	XattrNameMax = 255
	XattrSizeMax = 65536
	SymlinkMax   = 4095
)
