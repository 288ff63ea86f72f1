package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	swapfs "github.com/swapfs/swapfs/fs"
)

// The FUSE floor, a reference of benchmark 2: a daemon ("swapbench fuse-floor") that serves
// one file and answers every READ and WRITE at once, without any I/O. It mounts with
// swapfs's transfer settings (1 MiB requests, asynchronous direct I/O, no splice), opens as
// swapfs opens (FOPEN_DIRECT_IO for O_DIRECT) and, where THP allows, has its request
// buffers on huge pages as swapfs has. So what fio measures on it is what a swapfs request
// costs before the daemon touches the data volume: the kernel's copy of the payload between
// the caller's pages and the daemon's buffer, the wake-ups, go-fuse's dispatch and the
// reply. A daemon that does its own I/O pays that and then the I/O; at queue depth 1
// nothing overlaps the two.

const (
	floorName   = "fuse-floor"
	floorFSType = "fuse.swapbench-floor"
)

// onFloor says whether a job runs on the floor too: the O_DIRECT jobs it bounds. Buffered
// jobs would measure the kernel's page cache, and depth-16 4 KiB jobs add nothing the
// depth-1 ones do not show.
func (j fioJob) onFloor() bool {
	return j.direct && (j.perMiB() || j.iodepth <= 1)
}

// mountFloor starts the floor daemon on a directory of the workdir.
func (b *bench) mountFloor() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dir := filepath.Join(b.work, "floor-mnt")
	d, err := b.startFuseDaemon("FUSE floor", "floor.log", floorFSType, dir,
		self, floorName, "-size", strconv.FormatInt(b.sz.fioFile, 10), dir)
	if err != nil {
		return err
	}
	b.floor = d
	return nil
}

// floorWorker is "swapbench fuse-floor -size N MOUNTPOINT": it serves the floor until the
// mount is unmounted or it gets SIGTERM or SIGINT.
func floorWorker(args []string) int {
	fl := flag.NewFlagSet(floorName, flag.ContinueOnError)
	size := fl.Int64("size", 1<<30, "size of the one file, "+fioFileName)
	if err := fl.Parse(args); err != nil || fl.NArg() != 1 || *size < 0 {
		fmt.Fprintln(os.Stderr, "usage: swapbench fuse-floor -size BYTES MOUNTPOINT")
		return 2
	}
	root := &floorRoot{file: &floorNode{huge: swapfs.NewHugeBuffers(nil)}}
	root.file.size.Store(*size)
	// Attributes are cached as long as swapfs lets the kernel cache them, so fio's stats
	// reach the daemon as often.
	timeout := time.Second
	opts := &gofs.Options{MountOptions: fuse.MountOptions{
		AllowOther: true, Name: "swapbench-floor", FsName: "swapbench", DirectMount: true, DirectMountStrict: true,
	}, EntryTimeout: &timeout, AttrTimeout: &timeout}
	swapfs.SetTransferOptions(&opts.MountOptions)
	server, err := gofs.Mount(fl.Arg(0), root, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", floorName, err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		server.Unmount()
	}()
	server.Wait()
	return 0
}

type floorRoot struct {
	gofs.Inode
	file *floorNode
}

var _ = (gofs.NodeOnAdder)((*floorRoot)(nil))

func (r *floorRoot) OnAdd(ctx context.Context) {
	child := r.NewPersistentInode(ctx, r.file, gofs.StableAttr{Mode: syscall.S_IFREG})
	r.AddChild(fioFileName, child, false)
}

// floorNode is the floor's one file. Its size is all it keeps; its contents are whatever the
// reply buffer holds.
type floorNode struct {
	gofs.Inode
	size atomic.Int64
	huge *swapfs.HugeBuffers
}

var (
	_ = (gofs.NodeGetattrer)((*floorNode)(nil))
	_ = (gofs.NodeSetattrer)((*floorNode)(nil))
	_ = (gofs.NodeOpener)((*floorNode)(nil))
	_ = (gofs.NodeReader)((*floorNode)(nil))
	_ = (gofs.NodeWriter)((*floorNode)(nil))
	_ = (gofs.NodeFsyncer)((*floorNode)(nil))
	_ = (gofs.NodeAllocater)((*floorNode)(nil))
)

func (n *floorNode) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o644
	out.Nlink = 1
	out.Size = uint64(n.size.Load())
	out.Blocks = (out.Size + 511) / 512
	return 0
}

func (n *floorNode) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok {
		n.size.Store(int64(sz))
	}
	return n.Getattr(ctx, f, out)
}

func (n *floorNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return nil, swapfs.OpenFlags(flags), 0
}

func (n *floorNode) Read(ctx context.Context, f gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n.huge.Back(dest)
	size := n.size.Load()
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(dest[:min(int64(len(dest)), size-off)]), 0
}

func (n *floorNode) Write(ctx context.Context, f gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	n.huge.Back(data)
	n.grow(off + int64(len(data)))
	return uint32(len(data)), 0
}

func (n *floorNode) Fsync(ctx context.Context, f gofs.FileHandle, flags uint32) syscall.Errno {
	return 0
}

func (n *floorNode) Allocate(ctx context.Context, f gofs.FileHandle, off uint64, size uint64, mode uint32) syscall.Errno {
	if mode&unix.FALLOC_FL_KEEP_SIZE == 0 {
		n.grow(int64(off + size))
	}
	return 0
}

// grow makes the file at least end bytes long.
func (n *floorNode) grow(end int64) {
	for {
		size := n.size.Load()
		if end <= size || n.size.CompareAndSwap(size, end) {
			return
		}
	}
}
