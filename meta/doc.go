// Package meta is the swapfs store: the bbolt metadata database (meta.db) and the data
// volume it describes. It knows nothing of FUSE; package fs turns its results into replies.
//
// # Invariants (verified by Check, and by swapfs fsck)
//
//   - Extents and free space tile the data volume's blocks 1..N-1 exactly: no block is in two
//     extents, or in an extent and free space, and none is in neither. Block 0 is the label.
//   - Every dirent names a live inode of the type it records; a directory has exactly one
//     name (the root none) and nlink = 2 + its subdirectories; any other inode's nlink is the
//     number of names it has. An inode with no name is an orphan, listed in "orphans".
//   - An inode's Blocks is the number of blocks its extents map.
//   - dirpos mirrors dirents: every name has one position (cookie), below its directory's
//     next cookie; cookies are never reused within a directory.
//
// # Durability
//
// Changes gather in one open bbolt write transaction (the group) that is committed every
// CommitInterval (1 s by default), on Sync (fsync, fsyncdir), before ENOSPC is reported, and
// on Close. Before each commit the data volume is fdatasync'ed, and data writes in flight are
// waited for, so committed metadata never points at blocks whose data is not on disk.
// Blocks freed by a group return to free space in the same commit that records the free, so
// a block is never reused while a crash could still bring back the file that held it.
//
// What a crash (power loss, kill -9 of the daemon) can lose: the changes of the last group,
// at most CommitInterval old. Nothing that was fsynced: an fsync commits the whole group.
// bbolt commits atomically, so after a crash the store is exactly as the last commit left it,
// and Check finds it clean. Data overwritten in place (no allocation) reaches the volume at
// once, as in ext4's data=ordered mode. That includes bytes written past a file's end into
// its last block, whose new size a crash may lose; they are never seen, because a file is
// never grown over the bytes past its end without zeroing them (eofGap).
//
// # Failures
//
// POSIX outcomes are bare syscall.Errno values, checked before an operation changes
// anything, because one group cannot roll back one operation. Any other failure (a bbolt
// error, an I/O error on the volume) drops the uncommitted group; the store then serves the
// last committed state read-only (EROFS for changes) until it is opened again, as ext4 does
// with errors=remount-ro. A data file is sparse, so blocks are provisioned on the host
// (fallocate) as they are allocated: a full host filesystem is a clean ENOSPC, not a failure.
// A damaged meta.db is refused at Open (every page is read first) and by Fsck; bbolt panics
// on damaged pages during operation become errors.
package meta
