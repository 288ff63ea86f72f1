// Package fs is the FUSE face of swapfs: a tree of go-fuse nodes over a *meta.Store, mounted
// by Mount. It owns the translation between FUSE requests and store calls and nothing else:
// every name, attribute, byte and xattr lives in the store, so a node is only an inode number.
//
// # Invariants
//
//   - A node's identity is the store's: StableAttr{Mode: type bits, Ino: Inode.Ino, Gen:
//     Inode.Gen}. go-fuse never picks an inode number (the root is meta.RootIno).
//   - fs caches nothing about an inode. Sizes, link counts and times are read from the store
//     on every Getattr and returned fresh by every change; the kernel's caches (1 s for
//     attributes and entries) are the only ones, and they stay coherent because every change
//     to the store passes through this mount. The one exception is a node's note that no
//     atime update is due yet (atimeState), which every change of the inode's times through
//     any node of the mount clears (Node.changed).
//   - Errors: the store answers POSIX outcomes with a bare syscall.Errno, which is passed to
//     the kernel unchanged; any other error is a storage failure, logged with the operation
//     and inode and answered EIO (toErrno).
//   - Permissions are the kernel's job: the mount uses default_permissions, so the kernel
//     checks mode bits, ownership for chmod/chown/utimes and the sticky bit before it asks us,
//     and (without FUSE_HANDLE_KILLPRIV) sends the SETATTR that clears suid/sgid after a write,
//     truncate or chown. A write through an O_DIRECT handle is the exception: the kernel only
//     flags it (FUSE_WRITE_KILL_SUIDGID), and killPrivFS clears the bits. The kernel also
//     applies the umask (FUSE_DONT_MASK is not negotiated).
//   - An inode unlinked while open stays in the store as an orphan; it is freed (store.Release)
//     when the kernel forgets its last node and no handle of ours is open on it. A file made
//     with O_TMPFILE (Tmpfile) is such an orphan from the start, until linkat(2) names it.
//   - atime is swapfs's to update (the kernel leaves it to FUSE daemons): reads, listings and
//     readlink update it as the mount's noatime, nodiratime, relatime (the default) or
//     strictatime say, never on a read-only mount or through an O_NOATIME descriptor. See
//     atime.go.
//   - Directory offsets are the store's cookies: position 0 is ".", 1 is "..", and an entry
//     with cookie c has d_off c+1, so a listing resumed at any d_off neither repeats nor skips
//     entries that stayed, whatever was created or removed meanwhile (meta reserves cookies
//     0..2 for this).
//
// # Not implemented
//
//   - POSIX ACLs: the mount does not negotiate FUSE_POSIX_ACL, so the kernel would neither
//     enforce an ACL nor keep the mode in step with it. An access ACL that only restates a
//     mode (what cp -a, tar and rsync write) becomes that mode, as on ext4; any other ACL is
//     EOPNOTSUPP, and reading an ACL is ENODATA.
//   - atime for reads the kernel serves from its page cache, which it does not tell us about:
//     a file read again, unchanged, after the 24 hours of relatime (or on every read under
//     strictatime) keeps its atime while its pages stay cached, and so does one read after a
//     change of ctime alone (chmod, link). A write or truncate moves mtime, which makes the
//     kernel drop the pages (FUSE_AUTO_INVAL_DATA), so the first read after one does update.
//     O_NOATIME set later with fcntl(F_SETFL) is not seen (go-fuse passes only open flags).
//   - statx-only fields (btime: the store keeps none); the kernel falls back to GETATTR.
//
// File locks (flock, POSIX, OFD) are kept by the kernel, which is exact for a local mount.
// A write that does not fit on a nearly full volume is shortened to what fits, as on ext4.
package fs
