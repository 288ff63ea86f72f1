package meta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// volumeMagic starts block 0 of every data volume; the store's UUID follows, so a store
// recognises its own volume and refuses any other.
var volumeMagic = []byte("SWAPFS-DATA-VOLUME\x00v1\x00")

// minVolumeBlocks is the smallest useful volume: the label and a few data blocks.
const minVolumeBlocks = 16

// volume is the data volume: the file or block device that holds file contents.
//
// Whole-block I/O goes through a second descriptor opened O_DIRECT, so file data is cached
// once, in the kernel's FUSE page cache, and not again in the page cache of the volume;
// partial blocks go through the buffered descriptor. Linux keeps the two coherent: direct
// I/O writes back and invalidates the cached pages of the range it touches.
type volume struct {
	f        *os.File
	direct   *os.File // nil where the volume's filesystem refuses O_DIRECT (tmpfs)
	isDevice bool
	path     string
	blocks   uint64
	bounce   sync.Pool // *[]byte of directChunk bytes, page-aligned, for unaligned caller memory
}

// directChunk is the largest direct I/O issued at once: one FUSE request.
const directChunk = 1 << 20

func volumeSize(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Mode()&os.ModeDevice == 0 {
		return st.Size(), nil
	}
	var n uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&n))); e != 0 {
		return 0, fmt.Errorf("BLKGETSIZE64: %w", e)
	}
	return int64(n), nil
}

func encodeLabel(uuid []byte, blocks uint64) []byte {
	b := make([]byte, BlockSize)
	n := copy(b, volumeMagic)
	n += copy(b[n:], uuid)
	binary.BigEndian.PutUint64(b[n:], blocks)
	return b
}

// writeLabel claims the volume for a new store.
func writeLabel(f *os.File, uuid []byte, blocks uint64) error {
	if _, err := f.WriteAt(encodeLabel(uuid, blocks), 0); err != nil {
		return fmt.Errorf("write volume label: %w", err)
	}
	return f.Sync()
}

// openVolume opens the data volume recorded in the superblock and proves it is this store's:
// same size, and a label carrying this store's UUID. It writes nothing.
func openVolume(path string, uuid []byte, blocks uint64, readOnly bool) (*volume, error) {
	flags := os.O_RDWR
	if readOnly {
		flags = os.O_RDONLY
	}
	f, err := openExclusive(path, flags)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("data volume %s is missing (was it moved or deleted?): %w", path, err)
		}
		return nil, fmt.Errorf("open data volume: %w", err)
	}
	v := &volume{f: f, path: path, blocks: blocks}
	if err := v.verify(uuid); err != nil {
		f.Close()
		return nil, err
	}
	if st, err := f.Stat(); err == nil {
		v.isDevice = st.Mode()&os.ModeDevice != 0
	}
	if d, err := os.OpenFile(path, flags|unix.O_DIRECT, 0); err == nil {
		v.direct = d
	}
	v.bounce.New = func() any {
		b := AlignedBuffer(directChunk)
		return &b
	}
	return v, nil
}

// AlignedBuffer returns n bytes starting on a page boundary, as O_DIRECT requires of memory
// (a page is a whole number of blocks, so block alignment follows).
func AlignedBuffer(n int) []byte {
	page := os.Getpagesize()
	b := make([]byte, n+page)
	off := -int(uintptr(unsafe.Pointer(&b[0]))) & (page - 1)
	return b[off : off+n : off+n]
}

func aligned(p []byte, within int64) bool {
	return len(p) > 0 && len(p)%BlockSize == 0 && within%BlockSize == 0 &&
		uintptr(unsafe.Pointer(&p[0]))&(BlockSize-1) == 0
}

// openExclusive opens a block device with O_EXCL, which claims it the way mount(2) does: a
// device that is mounted or held by another program is refused (EBUSY) instead of shared.
func openExclusive(path string, flags int) (*os.File, error) {
	if st, err := os.Stat(path); err == nil && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0 {
		flags |= unix.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0)
	if errors.Is(err, unix.EBUSY) {
		return nil, fmt.Errorf("device %s is in use (mounted, or held by another program): %w", path, err)
	}
	return f, err
}

func (v *volume) verify(uuid []byte) error {
	size, err := volumeSize(v.f)
	if err != nil {
		return fmt.Errorf("data volume %s: %w", v.path, err)
	}
	// By whole blocks: mkfs uses a device or file whose size is not a block multiple (a
	// partition with an odd sector count) down to its last whole block.
	if uint64(size)/BlockSize != v.blocks {
		return fmt.Errorf("data volume %s is %d bytes but this store's volume is %d bytes: "+
			"wrong device, or the volume was resized", v.path, size, int64(v.blocks)*BlockSize)
	}
	label := make([]byte, BlockSize)
	if _, err := v.f.ReadAt(label, 0); err != nil {
		return fmt.Errorf("read label of data volume %s: %w", v.path, err)
	}
	got, _, err := parseLabel(label)
	if err != nil {
		return fmt.Errorf("data volume %s %w: it is not this store's volume", v.path, err)
	}
	if !bytes.Equal(got, uuid) {
		return fmt.Errorf("data volume %s belongs to store %s, not to this store (%s)",
			v.path, formatUUID(got), formatUUID(uuid))
	}
	return nil
}

// parseLabel decodes block 0 of a data volume.
func parseLabel(b []byte) (uuid []byte, blocks uint64, err error) {
	if len(b) < len(volumeMagic)+16+8 || !bytes.Equal(b[:len(volumeMagic)], volumeMagic) {
		return nil, 0, errors.New("has no swapfs label")
	}
	n := len(volumeMagic)
	return append([]byte(nil), b[n:n+16]...), binary.BigEndian.Uint64(b[n+16:]), nil
}

func (v *volume) readAt(p []byte, pblk uint64, within int64) error {
	off := int64(pblk)*BlockSize + within
	var err error
	if v.direct != nil && len(p)%BlockSize == 0 && off%BlockSize == 0 {
		err = v.directIO(p, off, false)
	} else {
		_, err = v.f.ReadAt(p, off)
	}
	if err != nil {
		return fmt.Errorf("read data volume at block %d: %w", pblk, err)
	}
	return nil
}

func (v *volume) writeAt(p []byte, pblk uint64, within int64) error {
	off := int64(pblk)*BlockSize + within
	var err error
	if v.direct != nil && len(p)%BlockSize == 0 && off%BlockSize == 0 {
		err = v.directIO(p, off, true)
	} else {
		_, err = v.f.WriteAt(p, off)
	}
	if err != nil {
		return fmt.Errorf("write data volume at block %d: %w", pblk, err)
	}
	return nil
}

// directIO moves whole blocks through the O_DIRECT descriptor, bouncing through an aligned
// buffer when the caller's memory is not page-aligned.
func (v *volume) directIO(p []byte, off int64, write bool) error {
	if aligned(p, 0) {
		if write {
			_, err := v.direct.WriteAt(p, off)
			return err
		}
		_, err := v.direct.ReadAt(p, off)
		return err
	}
	bp := v.bounce.Get().(*[]byte)
	defer v.bounce.Put(bp)
	for len(p) > 0 {
		n := min(len(p), directChunk)
		buf := (*bp)[:n]
		var err error
		if write {
			copy(buf, p[:n])
			_, err = v.direct.WriteAt(buf, off)
		} else {
			if _, err = v.direct.ReadAt(buf, off); err == nil {
				copy(p[:n], buf)
			}
		}
		if err != nil {
			return err
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// provision makes the host give the runs real blocks before data is written to them. A
// data file is sparse, so without this the host filesystem could run out of space under a
// write that swapfs already accepted; with it, that becomes a clean ENOSPC up front. A
// block device has all its blocks already.
func (v *volume) provision(runs []run) error {
	if v.isDevice {
		return nil
	}
	for _, r := range runs {
		err := unix.Fallocate(int(v.f.Fd()), unix.FALLOC_FL_KEEP_SIZE, int64(r.pblk)*BlockSize, int64(r.len)*BlockSize)
		if err == unix.ENOSPC || err == unix.EDQUOT {
			return syscall.ENOSPC
		}
		if err != nil && err != unix.EOPNOTSUPP {
			return fmt.Errorf("reserve blocks %d+%d in data volume %s: %w", r.pblk, r.len, v.path, err)
		}
	}
	return nil
}

// zero writes n zero bytes at byte offset within of block pblk.
func (v *volume) zero(pblk uint64, within int64, n int) error {
	for n > 0 {
		c := min(n, len(zeroBlock))
		if err := v.writeAt(zeroBlock[:c], pblk, within); err != nil {
			return err
		}
		within += int64(c)
		n -= c
	}
	return nil
}

func (v *volume) sync() error {
	if err := unix.Fdatasync(int(v.f.Fd())); err != nil {
		return fmt.Errorf("fdatasync data volume %s: %w", v.path, err)
	}
	return nil
}

func (v *volume) close() error {
	if v.direct != nil {
		v.direct.Close()
	}
	return v.f.Close()
}

func formatUUID(u []byte) string {
	if len(u) != 16 {
		return fmt.Sprintf("%x", u)
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
