package fs

import (
	"context"
	"errors"
	"io"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Read reads into the buffer go-fuse provides; a short read means end of file. It updates
// atime as the mount's atime mode asks, unless the file was opened with O_NOATIME. Reads the
// kernel serves from its page cache never come here, which matters little under relatime:
// a write or truncate drops the cached pages (FUSE_AUTO_INVAL_DATA sees mtime move).
func (n *Node) Read(ctx context.Context, f gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	nr, err := n.fs.store.ReadAt(n.ino, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, n.errno("read", err)
	}
	if h, ok := f.(*fileHandle); !ok || !h.noatime {
		n.accessed(n.fs.atime.files)
	}
	return fuse.ReadResultData(dest[:nr]), 0
}

// Write writes data at off. For O_APPEND the kernel has already set off to its i_size,
// which is exact because every write passes through it. The kernel clears suid/sgid itself
// (a SETATTR before the write) when a user without CAP_FSETID writes.
func (n *Node) Write(ctx context.Context, f gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	defer n.changed()
	written, _, err := n.fs.store.WriteAt(n.ino, data, off)
	return uint32(written), n.errno("write", err)
}

// Flush is close(2)'s hook. Nothing is buffered here, so there is nothing to do; handles are
// opened with FOPEN_NOFLUSH, so the kernel does not even ask.
func (n *Node) Flush(ctx context.Context, f gofs.FileHandle) syscall.Errno {
	return 0
}

// Fsync commits the store: the data volume first, then every pending metadata change. The
// store has no cheaper per-file commit, so fdatasync costs the same.
func (n *Node) Fsync(ctx context.Context, f gofs.FileHandle, flags uint32) syscall.Errno {
	return n.errno("fsync", n.fs.store.Sync())
}

// Lseek answers SEEK_DATA and SEEK_HOLE from the extent map. The kernel does SEEK_SET,
// SEEK_CUR and SEEK_END itself and never sends them.
func (n *Node) Lseek(ctx context.Context, f gofs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	if whence != unix.SEEK_DATA && whence != unix.SEEK_HOLE {
		return 0, syscall.EINVAL
	}
	pos, err := n.fs.store.Seek(n.ino, int64(off), int(whence))
	if err != nil {
		return 0, n.errno("lseek", err)
	}
	return uint64(pos), 0
}

const (
	// copyChunk is what CopyFileRange moves per read/write: one FUSE request's worth.
	copyChunk = 1 << 20
	// maxCopy bounds one COPY_FILE_RANGE, whose reply counts bytes in 32 bits; a short
	// copy is allowed and callers loop.
	maxCopy = 1 << 30
)

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyChunk); return &b }}

// CopyFileRange copies through the store in 1 MiB chunks, stopping at the source's end of
// file, and returns the bytes copied. A failure after some bytes were copied ends the copy
// short, as write(2) does. The kernel has checked the ranges (same file, overlap, limits)
// and drops the destination's page cache for the range afterwards.
func (n *Node) CopyFileRange(ctx context.Context, fhIn gofs.FileHandle, offIn uint64, out *gofs.Inode,
	fhOut gofs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	dst, ok := out.Operations().(*Node)
	if !ok {
		return 0, syscall.EXDEV
	}
	defer dst.changed()
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	length = min(length, maxCopy)
	var done uint64
	for done < length {
		chunk := (*bufp)[:min(length-done, copyChunk)]
		nr, err := n.fs.store.ReadAt(n.ino, chunk, int64(offIn+done))
		if err != nil && !errors.Is(err, io.EOF) {
			return copied(done, n.errno("copy_file_range read", err))
		}
		if nr == 0 {
			break
		}
		if _, _, err := dst.fs.store.WriteAt(dst.ino, chunk[:nr], int64(offOut+done)); err != nil {
			return copied(done, dst.errno("copy_file_range write", err))
		}
		done += uint64(nr)
		if nr < len(chunk) {
			break // end of the source file
		}
	}
	return uint32(done), 0
}

// copied reports a partial copy as success, and a copy that moved nothing as its error.
func copied(done uint64, errno syscall.Errno) (uint32, syscall.Errno) {
	if done > 0 {
		return uint32(done), 0
	}
	return 0, errno
}
