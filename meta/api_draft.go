package meta

// This file lists the Store's exported API with placeholder bodies while the implementation
// lands; each method moves to its real file as it is written.

import (
	"log/slog"
	"syscall"
	"time"
)

// MkfsOptions chooses the data volume of a new store.
type MkfsOptions struct {
	// Size of the data file "data" in the store directory, created sparse. Ignored with Device.
	Size int64
	// Device is a block device (or any existing file) to use as the data volume instead of
	// STORE/data. Its path and size are recorded and checked at every Open.
	Device string
	// Inodes caps the number of inodes; 0 picks one per 16 KiB of volume, as mke2fs does.
	Inodes uint64
}

// OpenOptions tunes an opened store.
type OpenOptions struct {
	// CommitInterval bounds how long a metadata change may wait before it is committed
	// (and fsynced). 0 means DefaultCommitInterval.
	CommitInterval time.Duration
	// ReadOnly opens without writing anything (fsck, inspection).
	ReadOnly bool
	Logger   *slog.Logger
}

// DefaultCommitInterval is the group-commit interval, shorter than ext4's 5 s because a FUSE
// daemon can be killed without the kernel's help.
const DefaultCommitInterval = time.Second

// Mkfs creates a new store in dir (created if missing). It refuses a directory that already
// holds a meta.db.
func Mkfs(dir string, opts MkfsOptions) error { return syscall.ENOSYS }

// Open opens the store in dir: it checks the format version, the superblock and the data
// volume's identity, takes an exclusive lock (a second Open fails), and reclaims orphans.
func Open(dir string, opts OpenOptions) (*Store, error) { return nil, syscall.ENOSYS }

// Close commits everything pending and closes the database and the data volume.
func (s *Store) Close() error { return syscall.ENOSYS }

// Sync commits every pending change durably: data volume first, then metadata.
func (s *Store) Sync() error { return syscall.ENOSYS }

// UUID is the store's identity, as a string.
func (s *Store) UUID() string { return "" }

// Statfs reports space and inode use, counting blocks freed but not yet committed as free.
func (s *Store) Statfs() (Statfs, error) { return Statfs{}, syscall.ENOSYS }

// GetInode returns a copy of inode ino; ENOENT if it does not exist.
func (s *Store) GetInode(ino uint64) (Inode, error) { return Inode{}, syscall.ENOSYS }

// Lookup finds name in directory parent: ENOENT, ENOTDIR.
func (s *Store) Lookup(parent uint64, name string) (Inode, error) {
	return Inode{}, syscall.ENOSYS
}

// Create makes a new inode of any type (regular, dir, symlink, fifo, socket, device) named
// name in parent: EEXIST, ENOENT (parent gone), ENOTDIR, ENAMETOOLONG, ENOSPC (inode limit),
// EMLINK. A setgid parent passes its gid on, and its setgid bit to new directories.
func (s *Store) Create(parent uint64, name string, n NewInode) (Inode, error) {
	return Inode{}, syscall.ENOSYS
}

// Link adds name in newParent for ino: EEXIST, EPERM (directory), EMLINK.
func (s *Store) Link(ino, newParent uint64, name string) (Inode, error) {
	return Inode{}, syscall.ENOSYS
}

// Unlink removes a non-directory name: ENOENT, EISDIR. An inode that loses its last link
// becomes an orphan and keeps its data until Release.
func (s *Store) Unlink(parent uint64, name string) error { return syscall.ENOSYS }

// Rmdir removes an empty directory: ENOENT, ENOTDIR, ENOTEMPTY, EBUSY (root).
func (s *Store) Rmdir(parent uint64, name string) error { return syscall.ENOSYS }

// Rename moves oldName in oldParent to newName in newParent, with renameat2 flags
// (RenameNoreplace, RenameExchange): ENOENT, EEXIST, ENOTEMPTY, EISDIR, ENOTDIR, EINVAL
// (a directory into itself, or unknown flags).
func (s *Store) Rename(oldParent uint64, oldName string, newParent uint64, newName string, flags uint32) error {
	return syscall.ENOSYS
}

// Release tells the store that no one holds ino open any more (the kernel forgot it); an
// orphan is then freed.
func (s *Store) Release(ino uint64) error { return syscall.ENOSYS }

// Readlink returns a symlink's target: EINVAL if ino is not a symlink.
func (s *Store) Readlink(ino uint64) (string, error) { return "", syscall.ENOSYS }

// SetAttr changes attributes; a size change truncates or extends (sparse): EFBIG.
func (s *Store) SetAttr(ino uint64, a SetAttr) (Inode, error) { return Inode{}, syscall.ENOSYS }

// ReadDir calls fn for every entry of directory ino whose cookie is >= from, in cookie order,
// until fn returns false. "." and ".." are not stored and not listed.
func (s *Store) ReadDir(ino uint64, from uint64, fn func(DirEntry) bool) error {
	return syscall.ENOSYS
}

// ReadAt reads file data; it returns fewer bytes only at end of file.
func (s *Store) ReadAt(ino uint64, p []byte, off int64) (int, error) { return 0, syscall.ENOSYS }

// WriteAt writes file data, allocating blocks as needed, and returns the inode after the
// write: ENOSPC, EFBIG.
func (s *Store) WriteAt(ino uint64, p []byte, off int64) (Inode, error) {
	return Inode{}, syscall.ENOSYS
}

// Fallocate implements fallocate(2) modes 0, FallocKeepSize, FallocPunchHole|FallocKeepSize
// and FallocZeroRange[|FallocKeepSize]; others are EOPNOTSUPP.
func (s *Store) Fallocate(ino uint64, off, length int64, mode uint32) (Inode, error) {
	return Inode{}, syscall.ENOSYS
}

// Seek implements lseek's SEEK_DATA and SEEK_HOLE: ENXIO past the end.
func (s *Store) Seek(ino uint64, off int64, whence int) (int64, error) { return 0, syscall.ENOSYS }

// Map returns the mappings covering blocks [lblk, lblk+n) of ino, holes included, in order.
func (s *Store) Map(ino uint64, lblk, n uint64) ([]Mapping, error) { return nil, syscall.ENOSYS }

// GetXattr returns the value of xattr name: ENODATA.
func (s *Store) GetXattr(ino uint64, name string) ([]byte, error) { return nil, syscall.ENOSYS }

// SetXattr sets an xattr with XattrCreate/XattrReplace semantics: EEXIST, ENODATA, ERANGE
// (name too long), E2BIG (value too large).
func (s *Store) SetXattr(ino uint64, name string, value []byte, flags uint32) error {
	return syscall.ENOSYS
}

// ListXattr returns the xattr names of ino, sorted.
func (s *Store) ListXattr(ino uint64) ([]string, error) { return nil, syscall.ENOSYS }

// RemoveXattr removes an xattr: ENODATA.
func (s *Store) RemoveXattr(ino uint64, name string) error { return syscall.ENOSYS }

// SetFlags replaces the inode's persistent flags (FlagSwapfile).
func (s *Store) SetFlags(ino uint64, flags uint32) (Inode, error) { return Inode{}, syscall.ENOSYS }

// Check commits and then verifies every invariant of the store; it returns one error per
// problem found, nil when clean.
func (s *Store) Check() []error { return nil }

// Fsck opens the store in dir read-only and checks it.
func Fsck(dir string) ([]error, error) { return nil, syscall.ENOSYS }
