package fs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/swapfs/swapfs/meta"
)

// fileHandle is an open regular file (or fifo, socket, device: the kernel opens those
// itself and never asks us). Data goes through the node by inode number; the handle only
// counts as an opener, so that an unlinked file is not freed under it.
type fileHandle struct {
	node *Node
}

// openFlags chooses how the kernel caches an open file. The page cache is kept across opens
// (FOPEN_KEEP_CACHE): every change passes through this mount, so it cannot go stale, and
// the kernel still drops it when it sees size or mtime move (FUSE_AUTO_INVAL_DATA). O_DIRECT
// bypasses the cache, as libfuse's passthrough_hp does. FLUSH is not needed: close(2) has
// nothing to commit that write(2) has not handed to the store already.
func openFlags(flags uint32) uint32 {
	if flags&syscall.O_DIRECT != 0 {
		return fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NOFLUSH
	}
	return fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_NOFLUSH
}

// Open opens the file. The kernel has checked permissions, and without FUSE_ATOMIC_O_TRUNC
// it truncates with a separate SETATTR; O_TRUNC is still honoured here if a kernel sends it
// (also with O_RDONLY, as Linux does: the kernel has checked write permission for it).
func (n *Node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_TRUNC != 0 {
		zero := uint64(0)
		if _, err := n.fs.store.SetAttr(n.ino, meta.SetAttr{Size: &zero}); err != nil {
			return nil, 0, n.errno("open", err)
		}
	}
	n.fs.opened(n.ino)
	return &fileHandle{node: n}, openFlags(flags), 0
}

// Create creates a regular file and opens it. The kernel sends CREATE only for a name it
// found missing; if another process created the name meanwhile the store says EEXIST, which
// the kernel passes on (and drops its negative dentry), as for every FUSE filesystem.
func (n *Node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	child, errno := n.create(ctx, "create", name, meta.NewInode{Mode: syscall.S_IFREG | mode&07777}, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	ops := child.Operations().(*Node)
	n.fs.opened(ops.ino)
	return child, &fileHandle{node: ops}, openFlags(flags), 0
}

// Release closes a file handle.
func (n *Node) Release(ctx context.Context, f gofs.FileHandle) syscall.Errno {
	if h, ok := f.(*fileHandle); ok {
		h.node.fs.closed(h.node.ino)
	}
	return 0
}
