package swap

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/meta"
)

const (
	// BufferSize is one I/O buffer: the largest FUSE request (MaxWrite, max_pages).
	BufferSize = 1 << 20
	// DefaultBuffers is how many requests that need a buffer of the engine (Read, and reads
	// and writes not aligned in memory or on the volume's sectors) it serves at once; more
	// wait for one. Aligned ones use go-fuse's buffer and need none. The buffers are
	// allocated once and locked in memory with the rest of the daemon, so the number is a
	// trade of memory (1 MiB each) against parallelism a 2-queue loop device and a data
	// volume on one disk cannot use anyway.
	DefaultBuffers = 16
)

// Engine moves swap I/O between FUSE request buffers and the data volume through its own
// O_DIRECT descriptor, at the offsets a pinned Map gives. Nothing on its path allocates
// blocks, opens a metadata transaction or allocates heap: buffers are allocated once, aligned,
// and handed out from a channel.
type Engine struct {
	vol  *os.File // the data volume, O_DIRECT
	path string
	// sector is the alignment O_DIRECT needs on the data volume for offsets and lengths
	// (a power of two, at most a page): 512 on most disks, 4096 on 4Kn ones.
	sector int64
	bufs   chan *Buffer
	// rmw orders a read-modify-write of a partly covered sector against every other
	// write: aligned writes share it, a partial one takes it alone.
	rmw   sync.RWMutex
	stats counters
}

// Buffer is one aligned I/O buffer. A read returns one holding the data; the caller gives it
// back with Release once the data has been sent (fuse.ReadResult's Done does that).
type Buffer struct {
	mem  []byte // BufferSize bytes and a page of slack for the sectors around an unaligned request; page-aligned
	data []byte // the part holding the result of a read
	eng  *Engine
}

// Bytes returns the data of a read.
func (b *Buffer) Bytes() []byte { return b.data }

// Release gives the buffer back to the engine.
func (b *Buffer) Release() {
	b.data = nil
	b.eng.bufs <- b
}

// NewEngine opens the data volume at path with O_DIRECT and allocates n buffers.
func NewEngine(path string, n int) (*Engine, error) {
	if n <= 0 {
		n = DefaultBuffers
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		return nil, fmt.Errorf("open data volume %s for swap I/O with O_DIRECT (swapfiles need a data volume that supports direct I/O): %w", path, err)
	}
	sector, err := dioAlignment(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data volume %s: %w", path, err)
	}
	e := &Engine{vol: f, path: path, sector: sector, bufs: make(chan *Buffer, n)}
	for range n {
		e.bufs <- &Buffer{mem: meta.AlignedBuffer(BufferSize + PageSize), eng: e}
	}
	return e, nil
}

// dioAlignment is the offset and length alignment O_DIRECT needs on f, from statx
// STATX_DIOALIGN; the engine's buffers are page-aligned, so the memory alignment must be
// at most a page, and so must the offset alignment (the slack around an unaligned request
// is one page).
func dioAlignment(f *os.File) (int64, error) {
	var stx unix.Statx_t
	if err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &stx); err != nil {
		return 0, fmt.Errorf("statx: %w", err)
	}
	if stx.Mask&unix.STATX_DIOALIGN == 0 {
		// Not reported (a kernel before 6.1): a block device's logical sector size is
		// what its direct I/O needs; for a file, a page is always enough.
		if stx.Mode&unix.S_IFMT == unix.S_IFBLK {
			if ss, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET); err == nil && ss > 0 && ss <= PageSize && ss&(ss-1) == 0 {
				return int64(ss), nil
			}
		}
		return PageSize, nil
	}
	off, mem := int64(stx.Dio_offset_align), int64(stx.Dio_mem_align)
	switch {
	case off == 0:
		return 0, fmt.Errorf("its filesystem does not support direct I/O (statx reports no O_DIRECT alignment), which swapfiles need: %w", syscall.EINVAL)
	case off&(off-1) != 0 || off > PageSize || mem > PageSize:
		return 0, fmt.Errorf("direct I/O needs %d-byte offsets and %d-byte memory alignment; swap I/O supports up to %d: %w", off, mem, PageSize, syscall.EINVAL)
	}
	return off, nil
}

// Sector is the O_DIRECT alignment of the data volume the engine uses.
func (e *Engine) Sector() int64 { return e.sector }

// Close closes the engine's descriptor. No I/O may be in flight.
func (e *Engine) Close() error { return e.vol.Close() }

// Sync makes swap writes durable: the data volume only, no metadata (a swapfile's map does
// not change while it is pinned).
func (e *Engine) Sync() error {
	if err := unix.Fdatasync(int(e.vol.Fd())); err != nil {
		return fmt.Errorf("fdatasync data volume %s: %w", e.path, err)
	}
	return nil
}

// Read reads up to n bytes of the file at off into a buffer of the engine and returns it;
// fewer at the end of the file, none past it. n is at most BufferSize.
func (e *Engine) Read(m *Map, off int64, n int) (*Buffer, error) {
	start := time.Now()
	if off < 0 || n < 0 || n > BufferSize {
		return nil, syscall.EINVAL
	}
	n = int(max(0, min(int64(n), m.size-off)))
	b := <-e.bufs
	if n == 0 {
		b.data = b.mem[:0]
		return b, nil
	}
	// Read whole sectors around the range, then point data at the part asked for.
	lo := off &^ (e.sector - 1)
	hi := (off + int64(n) + e.sector - 1) &^ (e.sector - 1)
	if err := e.transfer(m, b.mem[:hi-lo], lo, false); err != nil {
		e.bufs <- b
		e.stats.errors.Add(1)
		return nil, err
	}
	b.data = b.mem[off-lo : off-lo+int64(n)]
	e.stats.reads.record(n, start)
	return b, nil
}

// ReadAt is Read into p; it returns io.EOF with fewer bytes at the end of the file. When p
// is page-aligned and the range whole sectors, the data goes straight into p.
func (e *Engine) ReadAt(m *Map, p []byte, off int64) (int, error) {
	if off >= 0 && off+int64(len(p)) <= m.size && e.direct(p, off) {
		start := time.Now()
		if err := e.transfer(m, p, off, false); err != nil {
			e.stats.errors.Add(1)
			return 0, err
		}
		e.stats.reads.record(len(p), start)
		return len(p), nil
	}
	done := 0
	for done < len(p) {
		b, err := e.Read(m, off+int64(done), min(len(p)-done, BufferSize))
		if err != nil {
			return done, err
		}
		k := copy(p[done:], b.data)
		b.Release()
		done += k
		if k == 0 {
			return done, io.EOF
		}
	}
	return done, nil
}

// WriteAt writes p at file offset off, which must lie within the pinned size: the file
// neither grows nor gets blocks here.
func (e *Engine) WriteAt(m *Map, p []byte, off int64) (int, error) {
	start := time.Now()
	if off < 0 || off+int64(len(p)) > m.size {
		return 0, fmt.Errorf("swap write of %d bytes at %d beyond the pinned size %d of inode %d: %w",
			len(p), off, m.size, m.ino, syscall.EFBIG)
	}
	done := 0
	for done < len(p) {
		k, err := e.writeChunk(m, p[done:min(len(p), done+BufferSize)], off+int64(done))
		done += k
		if err != nil {
			e.stats.errors.Add(1)
			return done, err
		}
	}
	e.stats.writes.record(len(p), start)
	return done, nil
}

// direct reports whether p can move between the volume and file offset off as it is:
// whole sectors, in page-aligned memory (go-fuse's request payloads are).
func (e *Engine) direct(p []byte, off int64) bool {
	return len(p) > 0 && off%e.sector == 0 && int64(len(p))%e.sector == 0 &&
		uintptr(unsafe.Pointer(&p[0]))%PageSize == 0
}

// writeChunk writes at most BufferSize bytes: straight from p when it is aligned, else
// through a buffer, whose slack holds the sectors around an unaligned chunk.
func (e *Engine) writeChunk(m *Map, p []byte, off int64) (int, error) {
	lo := off &^ (e.sector - 1)
	hi := (off + int64(len(p)) + e.sector - 1) &^ (e.sector - 1)
	whole := lo == off && hi == off+int64(len(p))
	var buf []byte // nil: p goes as it is
	if !e.direct(p, off) {
		b := <-e.bufs
		defer func() { e.bufs <- b }()
		buf = b.mem[:hi-lo]
	}
	if whole {
		e.rmw.RLock()
		defer e.rmw.RUnlock()
		src := p
		if buf != nil {
			src = buf
			copy(src, p)
		}
		return len(p), e.transfer(m, src, lo, true)
	}
	e.rmw.Lock()
	defer e.rmw.Unlock()
	// The file's last block is allocated whole, so the sectors around the end exist even
	// when the file size is not a sector multiple.
	if err := e.transfer(m, buf, lo, false); err != nil {
		return 0, err
	}
	copy(buf[off-lo:], p)
	return len(p), e.transfer(m, buf, lo, true)
}

// transfer moves buf, whose length and file offset off are sector multiples, between memory
// and the volume, split at extent boundaries.
func (e *Engine) transfer(m *Map, buf []byte, off int64, write bool) error {
	fd := int(e.vol.Fd())
	for len(buf) > 0 {
		volOff, n := m.span(off, len(buf))
		var err error
		var k int
		if write {
			k, err = unix.Pwrite(fd, buf[:n], volOff)
		} else {
			k, err = unix.Pread(fd, buf[:n], volOff)
		}
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("swap %s of inode %d at file offset %d (volume offset %d): %w", op(write), m.ino, off, volOff, err)
		}
		if k == 0 {
			return fmt.Errorf("swap %s of inode %d at file offset %d: data volume ends at %d: %w", op(write), m.ino, off, volOff, io.ErrUnexpectedEOF)
		}
		buf, off = buf[k:], off+int64(k)
	}
	return nil
}

func op(write bool) string {
	if write {
		return "write"
	}
	return "read"
}

// ErrBusy is what writes to an active swapfile from anyone but its loop device get.
var ErrBusy = errors.New("swapfile is active")

// latencyBuckets are powers of two of nanoseconds: bucket i counts requests that took less
// than 2^i ns, up to about 68 s.
const latencyBuckets = 37

type histogram struct {
	count, bytes atomic.Uint64
	max          atomic.Int64
	buckets      [latencyBuckets]atomic.Uint64
}

func (h *histogram) record(n int, start time.Time) {
	d := int64(time.Since(start))
	h.count.Add(1)
	h.bytes.Add(uint64(n))
	i := min(bits.Len64(uint64(max(d, 0))), latencyBuckets-1)
	h.buckets[i].Add(1)
	for {
		old := h.max.Load()
		if d <= old || h.max.CompareAndSwap(old, d) {
			break
		}
	}
}

func (h *histogram) latency() Latency {
	var counts [latencyBuckets]uint64
	var total uint64
	for i := range counts {
		counts[i] = h.buckets[i].Load()
		total += counts[i]
	}
	quantile := func(q float64) time.Duration {
		if total == 0 {
			return 0
		}
		want := uint64(q*float64(total-1)) + 1
		var seen uint64
		for i, c := range counts {
			if seen += c; seen >= want {
				return time.Duration(uint64(1) << i)
			}
		}
		return time.Duration(uint64(1) << (latencyBuckets - 1))
	}
	return Latency{P50: quantile(0.5), P99: quantile(0.99), Max: time.Duration(h.max.Load())}
}

type counters struct {
	reads, writes   histogram
	errors, refused atomic.Uint64
}

// Refused counts one operation refused because its swapfile was active.
func (e *Engine) Refused() { e.stats.refused.Add(1) }

// Stats returns the counters since the engine started.
func (e *Engine) Stats() IOStats {
	s := &e.stats
	return IOStats{
		Reads: s.reads.count.Load(), Writes: s.writes.count.Load(),
		ReadBytes: s.reads.bytes.Load(), WriteBytes: s.writes.bytes.Load(),
		Errors: s.errors.Load(), Refused: s.refused.Load(),
		ReadLatency: s.reads.latency(), WriteLatency: s.writes.latency(),
	}
}
