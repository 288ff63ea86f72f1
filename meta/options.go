package meta

import (
	"log/slog"
	"time"
)

// MkfsOptions chooses the data volume of a new store.
type MkfsOptions struct {
	// Size of the data file "data" in the store directory, created sparse. Ignored with Device.
	Size int64
	// Device is a block device (or any existing file) to use as the data volume instead of
	// STORE/data. Its path and size are recorded and checked at every Open.
	Device string
	// Force lets mkfs take a device that already carries another store's data volume label;
	// without it such a device is refused, as mkfs.ext4 asks before overwriting a filesystem.
	Force bool
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
