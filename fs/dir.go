package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/swapfs/swapfs/meta"
)

// Lookup finds name in this directory.
func (n *Node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	in, err := n.fs.store.Lookup(n.ino, name)
	if err != nil {
		return nil, n.errno("lookup", err)
	}
	return n.newChild(ctx, &in, out), 0
}

// create makes a new inode named name, owned by the caller; the store applies setgid
// directory inheritance. The kernel has applied the umask to mode already.
func (n *Node) create(ctx context.Context, op, name string, ni meta.NewInode, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	defer n.changed()
	ni.Uid, ni.Gid = caller(ctx)
	in, err := n.fs.store.Create(n.ino, name, ni)
	if err != nil {
		return nil, n.errno(op, err)
	}
	return n.newChild(ctx, &in, out), 0
}

// Mkdir creates a directory. The kernel sends the permission bits only.
func (n *Node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return n.create(ctx, "mkdir", name, meta.NewInode{Mode: syscall.S_IFDIR | mode&07777}, out)
}

// Mknod creates a fifo, socket, device or regular file; mode carries the type, dev the
// device number for character and block devices.
func (n *Node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	switch mode & syscall.S_IFMT {
	case 0:
		mode |= syscall.S_IFREG // mknod(2): a zero type means a regular file
	case syscall.S_IFREG, syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
	default:
		return nil, syscall.EINVAL
	}
	ni := meta.NewInode{Mode: mode & (syscall.S_IFMT | 07777)}
	if t := mode & syscall.S_IFMT; t == syscall.S_IFCHR || t == syscall.S_IFBLK {
		ni.Rdev = dev
	}
	return n.create(ctx, "mknod", name, ni, out)
}

// Symlink creates a symbolic link to target. Symlink permissions are always 0777 on Linux.
func (n *Node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return n.create(ctx, "symlink", name, meta.NewInode{Mode: syscall.S_IFLNK | 0o777, Target: target}, out)
}

// Readlink returns the target of a symbolic link, which reads it: atime as for Read. (The
// kernel does not cache symlink targets: FUSE_CACHE_SYMLINKS is not negotiated.)
func (n *Node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	target, err := n.fs.store.Readlink(n.ino)
	if err != nil {
		return nil, n.errno("readlink", err)
	}
	n.accessed(n.fs.atime.files)
	return []byte(target), 0
}

// Link gives target another name in this directory. The node stays the same: go-fuse adds
// the new name to the existing one.
func (n *Node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	t, ok := target.(*Node)
	if !ok {
		return nil, syscall.EXDEV
	}
	defer n.changed()
	defer t.changed()
	in, err := n.fs.store.Link(t.ino, n.ino, name)
	if err != nil {
		return nil, n.errno("link", err)
	}
	setAttr(&out.Attr, &in)
	return t.EmbeddedInode(), 0
}

// Unlink removes a non-directory name. An inode that loses its last name stays in the store
// until the kernel forgets it (OnForget).
//
// An active swapfile cannot lose its name (EPERM, as may_delete refuses a native one).
func (n *Node) Unlink(ctx context.Context, name string) syscall.Errno {
	victim, errno := n.swapNamed("unlink", name)
	if errno != 0 {
		return errno
	}
	defer n.changed()
	defer n.childChanged(name)
	if errno := n.errno("unlink", n.fs.store.Unlink(n.ino, name)); errno != 0 {
		return errno
	}
	n.fs.swap.forgetIfGone(victim)
	return 0
}

// Rmdir removes an empty directory.
func (n *Node) Rmdir(ctx context.Context, name string) syscall.Errno {
	defer n.changed()
	defer n.childChanged(name)
	return n.errno("rmdir", n.fs.store.Rmdir(n.ino, name))
}

// Rename implements rename(2) and renameat2(2): the kernel's RENAME_NOREPLACE and
// RENAME_EXCHANGE have the values of meta's flags; the store refuses others with EINVAL.
func (n *Node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*Node)
	if !ok {
		return syscall.EXDEV
	}
	moved, errno := n.swapNamed("rename", name)
	if errno != 0 {
		return errno
	}
	replaced, errno := np.swapNamed("rename onto", newName)
	if errno != 0 {
		return errno
	}
	defer n.changed()
	defer np.changed()
	defer n.childChanged(name)
	defer np.childChanged(newName)
	if errno := n.errno("rename", n.fs.store.Rename(n.ino, name, np.ino, newName, flags)); errno != 0 {
		return errno
	}
	n.fs.swap.forgetIfGone(moved)
	n.fs.swap.forgetIfGone(replaced)
	return 0
}

// OpendirHandle opens the directory for reading with a handle that lists it by cookie.
func (n *Node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	d := &dirHandle{node: n}
	if errno := d.rewind(); errno != 0 {
		return nil, 0, errno
	}
	n.fs.opened(n.ino)
	return d, 0, 0
}

// readdirBatch is how many entries a dirHandle takes from the store at once.
const readdirBatch = 128

// dirHandle is an open directory. Its position is the d_off of the last entry it returned:
// 0 before ".", 1 before "..", and otherwise the smallest cookie still to list. go-fuse
// serialises calls on one handle (fileEntry.mu), so it needs no lock.
type dirHandle struct {
	node *Node
	pos  uint64
	// end is the directory's next cookie when it was opened or rewound: the listing stops
	// there. A rename gives the name a new cookie at the end, so a listing without this end
	// would meet every entry it renames again, and one that renames each entry it reads
	// (xfstests generic/736) would never end. POSIX leaves it open whether names made after
	// opendir or rewinddir are listed.
	end  uint64
	buf  []meta.DirEntry // entries read ahead from the store, from buf[next] on
	next int
	ent  fuse.DirEntry // the entry last returned; go-fuse copies it before the next call
}

// Readdirent returns the next entry, or nil at the end. "." and ".." come first, as on
// ext4, so that telldir/seekdir and posixtest's DirSeek see them like any other entry.
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	switch d.pos {
	case 0:
		d.ent = fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR, Ino: d.node.ino, Off: 1}
	case 1:
		d.ent = fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR, Ino: d.parent(), Off: 2}
	default:
		if d.next == len(d.buf) {
			if errno := d.fill(); errno != 0 {
				return nil, errno
			}
			if len(d.buf) == 0 {
				return nil, 0
			}
		}
		e := &d.buf[d.next]
		d.next++
		d.ent = fuse.DirEntry{Name: e.Name, Mode: e.Mode, Ino: e.Ino, Off: e.Cookie + 1}
	}
	d.pos = d.ent.Off
	return &d.ent, 0
}

// fill reads the next batch of entries, from cookie d.pos on. It is the directory's read,
// which updates its atime as the mount's directory atime mode asks: every listing gets here
// at least once, at its end.
func (d *dirHandle) fill() syscall.Errno {
	d.buf, d.next = d.buf[:0], 0
	err := d.node.fs.store.ReadDir(d.node.ino, d.pos, func(e meta.DirEntry) bool {
		if e.Cookie >= d.end {
			return false
		}
		d.buf = append(d.buf, e)
		return len(d.buf) < readdirBatch
	})
	if err != nil {
		return d.node.errno("readdir", err)
	}
	d.node.accessed(d.node.fs.atime.dirs)
	return 0
}

// parent is the inode ".." names: the directory that holds this one (the root holds itself).
func (d *dirHandle) parent() uint64 {
	in, err := d.node.fs.store.GetInode(d.node.ino)
	if err != nil || in.Parent == 0 {
		return d.node.ino
	}
	return in.Parent
}

// Seekdir moves to a d_off this handle returned earlier (or 0, the start). Entries read
// ahead are dropped: they belong to the old position.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.pos, d.buf, d.next = off, d.buf[:0], 0
	if off == 0 {
		return d.rewind()
	}
	return 0
}

// rewind starts a new listing (opendir, rewinddir): it lists what is there now.
func (d *dirHandle) rewind() syscall.Errno {
	end, err := d.node.fs.store.NextCookie(d.node.ino)
	if err != nil {
		return d.node.errno("opendir", err)
	}
	d.pos, d.end = 0, end
	return 0
}

// Lookup answers READDIRPLUS for the name Readdirent returned last. It looks the name up
// afresh rather than trusting the read-ahead entry, which may have been renamed over since.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	return d.node.Lookup(ctx, name, out)
}

// Fsyncdir commits the store: every metadata change, this directory's included.
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return d.node.errno("fsyncdir", d.node.fs.store.Sync())
}

// Releasedir closes the handle.
func (d *dirHandle) Releasedir(ctx context.Context, releaseFlags uint32) {
	d.node.fs.closed(d.node.ino)
}
