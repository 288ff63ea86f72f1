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
	if sf, m := n.fs.swap.pinned(n.ino); sf != nil {
		return n.swapReadAt(sf, m, dest, off)
	}
	n.fs.huge.Back(dest)
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
//
// A pinned swapfile is written by its loop device through the engine. Anyone else may write
// it only while it is not active swap, through the store as any file; a write past its
// pinned size unpins it first, and a write of its first page is checked as a new header.
func (n *Node) Write(ctx context.Context, f gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if sf, m := n.fs.swap.pinned(n.ino); sf != nil {
		if n.fromKernel(ctx) {
			return n.swapWriteAt(sf, m, data, off)
		}
		size := m.Size()
		sf.io.RUnlock()
		defer n.fs.swap.lock(n.ino).Unlock()
		if errno := n.prepareChange("write", off+int64(len(data)) > size); errno != 0 {
			return 0, errno
		}
	} else if touchesSignature(off, len(data)) {
		defer n.fs.swap.lock(n.ino).Unlock()
	}
	newHeader, errno := n.checkHeaderWrite(data, off)
	if errno != 0 {
		return 0, errno
	}
	// A header written over a file of its final size pins the file first, so that a crash
	// can never leave a valid header on a file the store does not flag: the flag is
	// committed before the header reaches the volume. (A flagged file whose header never
	// arrived is unflagged at the next mount.) A header that grows the file is written
	// first, since the map is made for the file's size.
	pinFirst := false
	if newHeader != nil {
		if in, err := n.fs.store.GetInode(n.ino); err == nil && off+int64(len(data)) <= int64(in.Size) {
			pinFirst = true
			if errno := n.pinWithHeader(*newHeader); errno != 0 {
				return 0, errno
			}
		}
	}
	n.fs.huge.Back(data)
	written, _, err := n.fs.store.WriteAt(n.ino, data, off)
	n.changed()
	if err != nil {
		return uint32(written), n.errno("write", err)
	}
	switch {
	case newHeader != nil && !pinFirst:
		if errno := n.pinWithHeader(*newHeader); errno != 0 {
			return 0, errno
		}
	case newHeader != nil:
	case touchesSignature(off, len(data)) && n.fs.swap.isPinned(n.ino):
		// The signature is gone (wipefs, dd over the header): no longer a swapfile.
		if errno := n.prepareChange("write", true); errno != 0 {
			return 0, errno
		}
	}
	return uint32(written), 0
}

// Flush is close(2)'s hook. Nothing is buffered here, so there is nothing to do; handles are
// opened with FOPEN_NOFLUSH, so the kernel does not even ask.
func (n *Node) Flush(ctx context.Context, f gofs.FileHandle) syscall.Errno {
	return 0
}

// Fsync commits the store: the data volume first, then every pending metadata change. The
// store has no cheaper per-file commit, so fdatasync costs the same.
//
// A pinned swapfile (fsync(2), or a FLUSH on its loop device) syncs the data volume only:
// its map does not change while it is pinned, so there is no metadata to commit, and a
// loop FLUSH must not wait for a metadata commit. (A change its owner made to its times
// is committed with the next group, within the commit interval.)
func (n *Node) Fsync(ctx context.Context, f gofs.FileHandle, flags uint32) syscall.Errno {
	if sf, _ := n.fs.swap.pinned(n.ino); sf != nil {
		defer sf.io.RUnlock()
		return n.errno("fsync swapfile", n.fs.swap.engine.Sync())
	}
	n.pinCandidate()
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
	// As generic_copy_file_checks refuses a native swapfile on either side.
	if n.swapBusy("copy_file_range from") {
		return 0, syscall.ETXTBSY
	}
	defer dst.fs.swap.lock(dst.ino).Unlock()
	if errno := dst.prepareChange("copy_file_range into", true); errno != 0 {
		return 0, errno
	}
	defer dst.changed()
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	n.fs.huge.Back(*bufp)
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
		nw, _, err := dst.fs.store.WriteAt(dst.ino, chunk[:nr], int64(offOut+done))
		done += uint64(nw)
		if err != nil {
			return copied(done, dst.errno("copy_file_range write", err))
		}
		if nw < nr {
			break // the volume is full: what fit is copied, as a short write(2)
		}
		if nr < len(chunk) {
			break // end of the source file
		}
	}
	if touchesSignature(int64(offOut), int(done)) {
		// A swap image copied in (cp uses copy_file_range): pinned, as one written in, once
		// the copy is complete.
		dst.fs.swap.addCandidate(dst.ino)
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
