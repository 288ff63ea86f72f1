package fs

import (
	"context"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/swapfs/swapfs/meta"
)

// fileHandle is an open regular file (or fifo, socket, device: the kernel opens those
// itself and never asks us). Data goes through the node by inode number; the handle only
// counts as an opener, so that an unlinked file is not freed under it.
type fileHandle struct {
	node *Node
	// noatime: opened with O_NOATIME (the kernel has checked that the caller may), so
	// reads through this handle leave atime alone.
	noatime bool
	// writable: opened for writing; counted in swapFiles.writers.
	writable bool
}

func newFileHandle(n *Node, flags uint32) *fileHandle {
	n.fs.opened(n.ino)
	h := &fileHandle{node: n, noatime: flags&syscall.O_NOATIME != 0, writable: flags&syscall.O_ACCMODE != syscall.O_RDONLY}
	if h.writable {
		n.fs.swap.addWriter(n.ino, 1)
	}
	return h
}

// OpenFlags chooses how the kernel caches an open file. The page cache is kept across opens
// (FOPEN_KEEP_CACHE): every change passes through this mount, so it cannot go stale, and
// the kernel still drops it when it sees size or mtime move (FUSE_AUTO_INVAL_DATA). O_DIRECT
// bypasses the cache, as libfuse's passthrough_hp does. FLUSH is not needed: close(2) has
// nothing to commit that write(2) has not handed to the store already. (swapbench's FUSE
// floor opens its file with the same flags.)
func OpenFlags(flags uint32) uint32 {
	if flags&syscall.O_DIRECT != 0 {
		return fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NOFLUSH
	}
	return fuse.FOPEN_KEEP_CACHE | fuse.FOPEN_NOFLUSH
}

// Open opens the file. The kernel has checked permissions, and without FUSE_ATOMIC_O_TRUNC
// it truncates with a separate SETATTR; O_TRUNC is still honoured here if a kernel sends it
// (also with O_RDONLY, as Linux does: the kernel has checked write permission for it).
func (n *Node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	n.pinCandidate()
	writable := flags&syscall.O_ACCMODE != syscall.O_RDONLY
	if writable && n.fs.swap.hasWriter(n.ino) && n.fs.swap.isPinned(n.ino) && !n.fromKernel(ctx) {
		if n.swapBusy("open for writing") {
			return nil, 0, syscall.ETXTBSY // active swap: its loop device is the writer
		}
		// Before the swap lock, which a write of the last writer may need before the kernel
		// sends its RELEASE; checked again under it.
		n.fs.swap.awaitNoWriter(n.ino, releaseGrace)
	}
	defer n.fs.swap.lock(n.ino).Unlock()
	if n.fs.swap.isPinned(n.ino) && !n.fromKernel(ctx) {
		if writable && n.swapBusy("open for writing") {
			return nil, 0, syscall.ETXTBSY
		}
		if writable && n.fs.swap.hasWriter(n.ino) {
			// Most likely a second loop device: two swap areas on the same blocks. ETXTBSY,
			// not EBUSY: losetup retries EBUSY for seconds, taking it for a busy loop device.
			n.fs.log.Warn("refused a second open for writing of a swapfile (already attached to a loop device, or open for writing)", "ino", n.ino)
			return nil, 0, syscall.ETXTBSY
		}
		if flags&syscall.O_TRUNC != 0 {
			if errno := n.prepareChange("open O_TRUNC", true); errno != 0 {
				return nil, 0, errno
			}
		}
	}
	if flags&syscall.O_TRUNC != 0 {
		zero := uint64(0)
		_, err := n.fs.store.SetAttr(n.ino, meta.SetAttr{Size: &zero})
		n.changed()
		if err != nil {
			return nil, 0, n.errno("open", err)
		}
	}
	if n.fs.swap.isPinned(n.ino) {
		return newFileHandle(n, flags), swapOpenFlags, 0
	}
	return newFileHandle(n, flags), OpenFlags(flags), 0
}

// Create creates a regular file and opens it. The kernel sends CREATE only for a name it
// found missing; if another process created the name meanwhile the store says EEXIST, which
// the kernel passes on (and drops its negative dentry), as for every FUSE filesystem.
func (n *Node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	child, errno := n.create(ctx, "create", name, meta.NewInode{Mode: syscall.S_IFREG | mode&07777}, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return child, newFileHandle(child.Operations().(*Node), flags), OpenFlags(flags), 0
}

// Tmpfile makes a regular file that is in no directory and opens it, for open(2) with
// O_TMPFILE. It lives in the store as an orphan (Nlink 0): linkat(2) through /proc/self/fd
// names it (Link), and otherwise it is freed when the kernel forgets it after the last close
// (OnForget), as an unlinked open file is. O_TMPFILE|O_EXCL is the kernel's business: it
// refuses (ENOENT) to link such a file without asking us. This directory gives only the
// setgid inheritance; its entries and times do not change. The kernel has applied the umask
// and stripped S_ISGID where the caller may not have it, as for CREATE.
func (n *Node) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	ni := meta.NewInode{Mode: syscall.S_IFREG | mode&07777}
	ni.Uid, ni.Gid = caller(ctx)
	in, err := n.fs.store.Tmpfile(n.ino, ni)
	if err != nil {
		return nil, nil, 0, n.errno("tmpfile", err)
	}
	child := n.newChild(ctx, &in, out)
	return child, newFileHandle(child.Operations().(*Node), flags), OpenFlags(flags), 0
}

// releaseDelay holds back every RELEASE by this many nanoseconds. Only tests set it, to
// make the kernel's background RELEASE arrive late as it can under load.
var releaseDelay atomic.Int64

// Release closes a file handle.
func (n *Node) Release(ctx context.Context, f gofs.FileHandle) syscall.Errno {
	if d := releaseDelay.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	if h, ok := f.(*fileHandle); ok {
		if h.writable {
			n.fs.swap.addWriter(h.node.ino, -1)
		}
		h.node.fs.closed(h.node.ino)
	}
	n.pinCandidate()
	return 0
}
