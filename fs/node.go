package fs

import (
	"context"
	"log/slog"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/meta"
)

// filesystem is what every node of one mount shares.
type filesystem struct {
	store *meta.Store
	log   *slog.Logger
	atime atimePolicy
	swap  *swapFiles
	huge  *HugeBuffers // nil: buffers stay as the heap backs them
	// mounted: served by go-fuse, so nodes can notify the kernel (tests use nodes without).
	mounted bool

	// mu guards open and orders OnForget's release of an orphan against new opens.
	mu sync.Mutex
	// open counts the file and directory handles open on each inode. go-fuse can briefly
	// hold two nodes for one inode (a forgotten one whose OnForget has not run yet, and a
	// fresh one from a new LOOKUP), so "this node was forgotten" alone does not prove that
	// nobody uses the inode; an open handle does prove that someone does.
	open map[uint64]int
}

func (fsys *filesystem) opened(ino uint64) {
	fsys.mu.Lock()
	fsys.open[ino]++
	fsys.mu.Unlock()
}

func (fsys *filesystem) closed(ino uint64) {
	fsys.mu.Lock()
	if fsys.open[ino]--; fsys.open[ino] <= 0 {
		delete(fsys.open, ino)
	}
	fsys.mu.Unlock()
}

// Node is one inode of the mounted tree. It holds no state of its own besides the inode
// number and what lets a read skip the store when no atime update is due: everything else
// is read from the store when asked for.
type Node struct {
	gofs.Inode
	fs    *filesystem
	ino   uint64
	atime atimeState
}

// newChild makes the node for in, fills out with its attributes, and hands it to go-fuse,
// which returns the node it already has for the same inode, if any.
func (n *Node) newChild(ctx context.Context, in *meta.Inode, out *fuse.EntryOut) *gofs.Inode {
	setAttr(&out.Attr, in)
	child := &Node{fs: n.fs, ino: in.Ino}
	return n.NewInode(ctx, child, stableAttr(in))
}

func stableAttr(in *meta.Inode) gofs.StableAttr {
	return gofs.StableAttr{Mode: in.Mode & syscall.S_IFMT, Ino: in.Ino, Gen: in.Gen}
}

// setAttr fills a FUSE attribute block from an inode, as stat(2) shows it.
func setAttr(out *fuse.Attr, in *meta.Inode) {
	out.Ino = in.Ino
	out.Size = in.Size
	out.Blocks = in.Blocks * (meta.BlockSize / 512) // st_blocks counts 512-byte units
	out.Atime, out.Atimensec = fuseTime(in.Atime)
	out.Mtime, out.Mtimensec = fuseTime(in.Mtime)
	out.Ctime, out.Ctimensec = fuseTime(in.Ctime)
	out.Mode = in.Mode
	out.Nlink = in.Nlink
	out.Uid = in.Uid
	out.Gid = in.Gid
	out.Rdev = in.Rdev
	out.Blksize = meta.BlockSize
}

// fuseTime splits t as struct fuse_attr wants it. The kernel reads the seconds as signed
// (time64_t), so times before 1970 survive the uint64.
func fuseTime(t time.Time) (uint64, uint32) {
	return uint64(t.Unix()), uint32(t.Nanosecond())
}

// caller is the uid and gid a new inode gets: the fsuid/fsgid of the process that asked.
func caller(ctx context.Context) (uid, gid uint32) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return 0, 0
}

// Getattr reads the inode's attributes from the store. The file handle is ignored: all
// handles of an inode see the same attributes.
func (n *Node) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	in, err := n.fs.store.GetInode(n.ino)
	if err != nil {
		return n.errno("getattr", err)
	}
	setAttr(&out.Attr, &in)
	return 0
}

// Statx is Getattr with the birth time, which stat(2) has no field for.
func (n *Node) Statx(ctx context.Context, f gofs.FileHandle, flags, mask uint32, out *fuse.StatxOut) syscall.Errno {
	in, err := n.fs.store.GetInode(n.ino)
	if err != nil {
		return n.errno("statx", err)
	}
	setStatx(&out.Statx, &in)
	out.AttrValid = uint64(attrTimeout / time.Second)
	return 0
}

func setStatx(out *fuse.Statx, in *meta.Inode) {
	sx := func(t time.Time) fuse.SxTime {
		sec, nsec := fuseTime(t)
		return fuse.SxTime{Sec: sec, Nsec: nsec}
	}
	out.Mask = unix.STATX_BASIC_STATS | unix.STATX_BTIME
	out.Blksize = meta.BlockSize
	out.Nlink = in.Nlink
	out.Uid, out.Gid = in.Uid, in.Gid
	out.Mode = uint16(in.Mode)
	out.Ino = in.Ino
	out.Size = in.Size
	out.Blocks = in.Blocks * (meta.BlockSize / 512)
	out.Atime, out.Btime, out.Ctime, out.Mtime = sx(in.Atime), sx(in.Btime), sx(in.Ctime), sx(in.Mtime)
	out.RdevMajor, out.RdevMinor = unix.Major(uint64(in.Rdev)), unix.Minor(uint64(in.Rdev))
}

// Statfs reports the store's real space and inode counts. Every block is available to
// every user: the store keeps no reserve for root.
func (n *Node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	st, err := n.fs.store.Statfs()
	if err != nil {
		return n.errno("statfs", err)
	}
	out.Blocks = st.Blocks
	out.Bfree = st.BlocksFree
	out.Bavail = st.BlocksFree
	out.Files = st.Inodes
	out.Ffree = st.InodesFree
	out.Bsize = st.BlockSize
	out.Frsize = st.BlockSize
	out.NameLen = st.NameMax
	return 0
}

// OnForget runs when the kernel has dropped its last reference to this node. An inode that
// has no name left (unlinked, or replaced by a rename, while open) is then freed, unless a
// handle of ours is still open on it through another node.
func (n *Node) OnForget() {
	n.fs.mu.Lock()
	defer n.fs.mu.Unlock()
	if n.fs.open[n.ino] > 0 {
		return
	}
	in, err := n.fs.store.GetInode(n.ino)
	if err != nil {
		if err != syscall.ENOENT { // ENOENT: freed already
			n.errno("forget", err)
		}
		return
	}
	if in.Nlink > 0 {
		return // still named: nothing to reclaim
	}
	if err := n.fs.store.Release(n.ino); err != nil {
		n.errno("release", err)
	}
}
