package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/swapfs/swapfs/meta"
)

// Setattr applies chmod, chown, truncate and utimensat in one store change and returns the
// attributes after it.
//
// The kernel has done the permission checks (default_permissions: setattr_prepare) and
// computed the mode: a chmod by a non-member of the group arrives without S_ISGID, and a
// write, truncate or chown by a user without CAP_FSETID arrives as a SETATTR whose mode has
// suid/sgid cleared (we do not negotiate FUSE_HANDLE_KILLPRIV, so the kernel does this).
// UTIME_OMIT arrives as an absent time, UTIME_NOW as FATTR_[AM]TIME_NOW, which go-fuse's
// GetATime/GetMTime turn into the current time.
func (n *Node) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	defer n.changed()
	a := setAttrOf(in)
	if a.Size != nil {
		defer n.fs.swap.lock(n.ino).Unlock()
		if errno := n.prepareChange("truncate", true); errno != 0 {
			return errno
		}
	}
	var ino meta.Inode
	var err error
	if a == (meta.SetAttr{}) {
		// Nothing to change (a bare FATTR_CTIME, FATTR_FH or FATTR_LOCKOWNER): report.
		ino, err = n.fs.store.GetInode(n.ino)
	} else {
		ino, err = n.fs.store.SetAttr(n.ino, a)
	}
	if err != nil {
		return n.errno("setattr", err)
	}
	setAttr(&out.Attr, &ino)
	return 0
}

// setAttrOf lists the changes a SETATTR asks for.
func setAttrOf(in *fuse.SetAttrIn) meta.SetAttr {
	var a meta.SetAttr
	if m, ok := in.GetMode(); ok {
		a.Mode = &m
	}
	if uid, ok := in.GetUID(); ok {
		a.Uid = &uid
	}
	if gid, ok := in.GetGID(); ok {
		a.Gid = &gid
	}
	if size, ok := in.GetSize(); ok {
		a.Size = &size
	}
	if t, ok := in.GetATime(); ok {
		a.Atime = &t
	}
	if t, ok := in.GetMTime(); ok {
		a.Mtime = &t
	}
	return a
}

// Allocate implements fallocate(2): the mode goes to the store unchanged (its constants are
// the kernel's); modes it does not support are EOPNOTSUPP. The kernel updates its i_size
// and drops page cache over punched or zeroed ranges itself.
//
// On a pinned swapfile the loop driver's discards and write-zeroes arrive as PUNCH_HOLE or
// ZERO_RANGE: they become zeros written in place, so the file keeps every block.
//
// Anything else holds the file's swap lock from the pinned check to the change, as truncate
// does: a file pinned in between would otherwise lose blocks its pinned map still serves.
func (n *Node) Allocate(ctx context.Context, f gofs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	if sf, m := n.fs.swap.pinned(n.ino); sf != nil {
		if n.fromKernel(ctx) {
			return n.swapZero(sf, m, int64(off), int64(size), mode)
		}
		sf.io.RUnlock()
	}
	defer n.fs.swap.lock(n.ino).Unlock()
	if errno := n.prepareChange("fallocate", true); errno != 0 {
		return errno
	}
	defer n.changed()
	_, err := n.fs.store.Fallocate(n.ino, int64(off), int64(size), mode)
	return n.errno("fallocate", err)
}
