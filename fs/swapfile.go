package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/swapfs/swapfs/meta"
	"github.com/swapfs/swapfs/swap"
)

// swapFiles are the pinned swapfiles of a mount and the engine that serves their I/O.
//
// A file is pinned when a valid swap header lands in its first page (mkswap, swapfs
// mkswapfile) or when it is found flagged at mount; from then on its reads and writes go
// through the engine at the offsets of its pinned map, and every open of it bypasses the page
// cache. A pinned file is active while a loop device backed by it is in /proc/swaps: then
// only the loop device (kernel threads) may write it, and nothing may change its size, map
// or name, as the kernel enforces for a native swapfile (../shared/swap-semantics.md). When
// it is not active, an operation that would change its map unpins it first.
type swapFiles struct {
	store *meta.Store
	// dev is st_dev of the mount, which loop devices report as the backing file's device,
	// and mountpoint where it is mounted, which sysfs shows their backing files under.
	dev        uint64
	mountpoint string
	kthreads   swap.KernelThreads

	mu     sync.RWMutex
	files  map[uint64]*swapFile
	engine *swap.Engine // started with the first pin; it lives as long as the mount
	// reads holds one result wrapper per engine buffer, so a read allocates nothing.
	reads chan *swapRead
	// candidates are files whose header arrived while the file grew (a copy of a swap
	// image): their header is checked when the writer closes or syncs them.
	candidates map[uint64]bool
	// writers counts the handles open for writing on each inode. A pinned file gets at
	// most one: the loop device's, or its owner's. So it cannot be attached to two loop
	// devices (two swap areas on the same blocks), and a process cannot hold a writable
	// handle while the file becomes active swap.
	writers map[uint64]int
	// writerClosed is closed, and replaced, whenever a writable handle is released, to wake
	// an open waiting in awaitNoWriter.
	writerClosed chan struct{}

	// stripes serialise, per inode, everything that decides or changes whether a file is
	// pinned: pinning, and the check-then-change of a truncate, fallocate or write that
	// unpins. Never taken on the swap I/O path.
	stripes [64]sync.Mutex
}

// attached reports whether a pinned file is open for writing: attached to a loop device
// (or written by its owner), so the mount may be serving swap.
func (s *swapFiles) attached() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for ino := range s.files {
		if s.writers[ino] > 0 {
			return true
		}
	}
	return false
}

// addCandidate has ino's header checked, and the file pinned if it is a swapfile, when its
// writer closes or syncs it or it is opened next.
func (s *swapFiles) addCandidate(ino uint64) {
	s.mu.Lock()
	s.candidates[ino] = true
	s.mu.Unlock()
}

// lock takes ino's swap lock and returns it, for the caller to unlock.
func (s *swapFiles) lock(ino uint64) *sync.Mutex {
	m := &s.stripes[ino%uint64(len(s.stripes))]
	m.Lock()
	return m
}

// addWriter counts a handle opened for writing (delta 1) or closed (-1).
func (s *swapFiles) addWriter(ino uint64, delta int) {
	s.mu.Lock()
	if s.writers[ino] += delta; s.writers[ino] <= 0 {
		delete(s.writers, ino)
	}
	if delta < 0 {
		close(s.writerClosed)
		s.writerClosed = make(chan struct{})
	}
	s.mu.Unlock()
}

// releaseGrace is how long an open for writing of a pinned file waits for the file's writer
// to go away before it is refused. The kernel sends RELEASE in the background after the last
// close(2), so in "mkswap f && losetup --direct-io=on -f f" losetup's OPEN can reach us before
// mkswap's RELEASE has been served; refusing it then would fail a correct command at random.
// Normally the RELEASE follows within microseconds; the grace covers a full background queue.
const releaseGrace = 2 * time.Second

func (s *swapFiles) hasWriter(ino uint64) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.writers[ino] > 0
}

// awaitNoWriter reports whether ino has no handle open for writing, waiting up to grace for
// one being released. Callers do not hold ino's swap lock: holding it would stall every
// inode of its stripe for the wait.
func (s *swapFiles) awaitNoWriter(ino uint64, grace time.Duration) bool {
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	for {
		s.mu.RLock()
		writers, closed := s.writers[ino], s.writerClosed
		s.mu.RUnlock()
		if writers == 0 {
			return true
		}
		select {
		case <-closed:
		case <-deadline.C:
			return false
		}
	}
}

// swapFile is one pinned file. io is shared by every I/O on it and taken alone to unpin,
// so blocks never leave the file while the engine reads or writes them.
type swapFile struct {
	io sync.RWMutex
	m  *swap.Map // nil once unpinned
}

func newSwapFiles(store *meta.Store) *swapFiles {
	return &swapFiles{store: store, files: make(map[uint64]*swapFile), candidates: make(map[uint64]bool),
		writers: make(map[uint64]int), writerClosed: make(chan struct{})}
}

// pinned returns the file's entry when it is pinned, with its I/O lock held shared; the
// caller calls done. It returns nil when the file is not pinned.
func (s *swapFiles) pinned(ino uint64) (*swapFile, *swap.Map) {
	s.mu.RLock()
	sf := s.files[ino]
	s.mu.RUnlock()
	if sf == nil {
		return nil, nil
	}
	sf.io.RLock()
	if sf.m == nil {
		sf.io.RUnlock()
		return nil, nil
	}
	return sf, sf.m
}

func (s *swapFiles) isPinned(ino uint64) bool {
	sf, _ := s.pinned(ino)
	if sf == nil {
		return false
	}
	sf.io.RUnlock()
	return true
}

// startEngine opens the engine's O_DIRECT descriptor and buffers, once.
func (s *swapFiles) startEngineLocked() error {
	if s.engine != nil {
		return nil
	}
	e, err := swap.NewEngine(s.store.DataVolume(), swap.DefaultBuffers)
	if err != nil {
		return err
	}
	s.engine = e
	s.reads = make(chan *swapRead, maxBackground)
	for range maxBackground {
		s.reads <- &swapRead{pool: s.reads}
	}
	return nil
}

// pin makes ino a swapfile with header h: Pin allocates and writes every block and commits,
// then the map goes into memory. The caller holds ino's swap lock, so nothing changes the
// file's size or map between the two; the mount-wide lock is held only to install the map,
// not across Pin's zero-fill and commit, which would stall every other file's I/O.
func (s *swapFiles) pin(ino uint64, h swap.Header) (*swap.Map, error) {
	if err := swap.CheckPageSize(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	err := s.startEngineLocked()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	maps, in, err := s.store.Pin(ino)
	if err != nil {
		return nil, err
	}
	m, err := swap.NewMap(ino, int64(in.Size), h, maps)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.files[ino]; old != nil {
		old.io.Lock()
		old.m = m
		old.io.Unlock()
	} else {
		s.files[ino] = &swapFile{m: m}
	}
	delete(s.candidates, ino)
	return m, nil
}

// unpin drops ino's pinned map, waiting for I/O in flight on it, and clears its flag in
// the store (unless it is gone: an unlinked swapfile is just freed).
func (s *swapFiles) unpin(ino uint64, clearFlag bool) error {
	s.mu.Lock()
	sf := s.files[ino]
	delete(s.files, ino)
	s.mu.Unlock()
	if sf == nil {
		return nil
	}
	sf.io.Lock()
	sf.m = nil
	sf.io.Unlock()
	if !clearFlag {
		return nil
	}
	_, err := s.store.Unpin(ino)
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return err
}

// readHeader reads the first page of ino as it would be after writing p at off, and the
// file size then.
func (s *swapFiles) headerAfter(ino uint64, p []byte, off int64) ([]byte, int64, error) {
	in, err := s.store.GetInode(ino)
	if err != nil {
		return nil, 0, err
	}
	page := make([]byte, swap.PageSize)
	if _, err := s.store.ReadAt(ino, page, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, err
	}
	if off < swap.PageSize {
		copy(page[off:], p)
	}
	return page, max(int64(in.Size), off+int64(len(p))), nil
}

// touchesSignature reports whether a write of n bytes at off covers the signature's bytes.
func touchesSignature(off int64, n int) bool {
	return off < swap.PageSize && off+int64(n) > swap.PageSize-10
}

// active reports whether ino is in use as swap: a loop device backed by it is in
// /proc/swaps, found by device numbers however the file was attached (SwapLoopsBacking).
// Only loop devices that are swap are asked about their backing file (LOOP_GET_STATUS64
// stats the file, which may be a GETATTR this daemon has to answer), so while no loop device
// is swap, the common case, none is. With wantLoop it also finds an attached loop device
// that is not swap, for status; that one is looked for under this mountpoint only.
func (s *swapFiles) active(ino uint64, wantLoop bool) (loop string, active bool, prio int, used int64, err error) {
	areas, err := swap.ActiveSwaps()
	if err != nil {
		return "", false, 0, 0, err
	}
	swaps, err := swap.SwapLoopsBacking(areas, s.dev, ino)
	if err != nil {
		return "", false, 0, 0, err
	}
	if len(swaps) > 0 {
		return swaps[0].Filename, true, swaps[0].Priority, swaps[0].UsedKiB << 10, nil
	}
	if !wantLoop {
		return "", false, 0, 0, nil
	}
	loops, err := swap.LoopsBackingIn(s.mountpoint, s.dev, ino)
	if err != nil || len(loops) == 0 {
		return "", false, 0, 0, err
	}
	return loops[0].Device, false, 0, 0, nil
}

// busy reports whether a change to ino from a process must be refused because ino is an
// active swapfile. A failure to tell is logged and counts as busy: refusing a write is
// recoverable, corrupting swap is not.
func (n *Node) swapBusy(op string) bool {
	s := n.fs.swap
	if !s.isPinned(n.ino) {
		return false
	}
	loop, active, _, _, err := s.active(n.ino, false)
	if err != nil {
		n.fs.log.Error("cannot tell whether a swapfile is active; refusing the change", "op", op, "ino", n.ino, "err", err)
		return true
	}
	if active {
		n.fs.log.Info("refused on an active swapfile", "op", op, "ino", n.ino, "loop", loop)
		if s.engine != nil {
			s.engine.Refused()
		}
	}
	return active
}

// fromKernel reports whether the request came from a kernel thread: on a swapfile, the loop
// driver.
func (n *Node) fromKernel(ctx context.Context) bool {
	c, ok := fuse.FromContext(ctx)
	return ok && n.fs.swap.kthreads.Is(c.Pid)
}

// prepareChange is called, with the file's swap lock held until the change is made, before
// an operation that changes the data or map of the file: it
// refuses it with ETXTBSY while the file is active swap, and otherwise unpins the file
// first when the change could move its blocks or size.
func (n *Node) prepareChange(op string, unpin bool) syscall.Errno {
	if !n.fs.swap.isPinned(n.ino) {
		return 0
	}
	if n.swapBusy(op) {
		return syscall.ETXTBSY
	}
	if unpin {
		if err := n.fs.swap.unpin(n.ino, true); err != nil {
			return n.errno(op, err)
		}
		// Its header may well still be valid (a swapfile grown before a new swapon): it is
		// pinned again, with its new size, at the next open or close.
		n.fs.swap.addCandidate(n.ino)
		n.fs.log.Info("swapfile unpinned: it is an ordinary file again", "op", op, "ino", n.ino)
	}
	return 0
}

// swapRead is the reply to a read of a pinned file. The data is already in the request's
// own output buffer (dest), which go-fuse keeps until the reply is written; the wrapper
// comes from a fixed set, so a read allocates nothing. go-fuse may call Done before it
// writes the reply (it does when it does not splice), so nothing Done releases may still
// be in use: the engine buffer goes back before the handler returns, and the wrapper holds
// only the slice, which Bytes has handed over by then.
type swapRead struct {
	data []byte
	pool chan *swapRead
}

func (r *swapRead) Bytes(_ []byte) ([]byte, fuse.Status) { return r.data, fuse.OK }
func (r *swapRead) Size() int                            { return len(r.data) }
func (r *swapRead) Done() {
	r.data = nil
	select {
	case r.pool <- r:
	default:
	}
}

// swapReadAt serves a read of a pinned file into dest, go-fuse's buffer for this request.
func (n *Node) swapReadAt(sf *swapFile, m *swap.Map, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	defer sf.io.RUnlock()
	s := n.fs.swap
	k, err := s.engine.ReadAt(m, dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, n.errno("swap read", err)
	}
	// A reply go-fuse does not send (an interrupted request) never gets Done: then the set
	// runs dry and a read falls back to an ordinary result rather than wait.
	select {
	case r := <-s.reads:
		r.data = dest[:k]
		return r, 0
	default:
		return fuse.ReadResultData(dest[:k]), 0
	}
}

// swapWriteAt serves a write of a pinned file by the loop device: no allocation, no
// metadata, no mtime.
func (n *Node) swapWriteAt(sf *swapFile, m *swap.Map, data []byte, off int64) (uint32, syscall.Errno) {
	defer sf.io.RUnlock()
	k, err := n.fs.swap.engine.WriteAt(m, data, off)
	if err != nil {
		return uint32(k), n.errno("swap write", err)
	}
	return uint32(k), 0
}

// checkHeaderWrite runs before a write that covers the swap signature's bytes of a file
// that is not pinned. A write that makes a valid header pins the file after it is written;
// one that makes a broken header is refused with EINVAL, as swapon(8) would refuse it later,
// unless the file is growing (a copy of a swap image arrives header first): then the header
// is looked at again when the writer closes or syncs the file.
func (n *Node) checkHeaderWrite(data []byte, off int64) (pinAfter *swap.Header, errno syscall.Errno) {
	if writes, known := swap.WritesSignature(data, off); known && !writes {
		return nil, 0
	}
	if swap.CheckPageSize() != nil {
		return nil, 0 // no swapfiles here (the mount said so): a header is just bytes
	}
	page, size, err := n.fs.swap.headerAfter(n.ino, data, off)
	if err != nil {
		return nil, n.errno("write", err)
	}
	if !swap.IsSwapHeader(page) {
		return nil, 0
	}
	h, err := swap.ParseHeader(page, size)
	if err == nil {
		return &h, 0
	}
	in, gerr := n.fs.store.GetInode(n.ino)
	if gerr == nil && off+int64(len(data)) > int64(in.Size) {
		n.fs.swap.addCandidate(n.ino)
		return nil, 0
	}
	n.fs.log.Warn("refused a swap header", "ino", n.ino, "err", err)
	return nil, syscall.EINVAL
}

// pinAfterWrite pins the file whose header a write has just made valid.
func (n *Node) pinWithHeader(h swap.Header) syscall.Errno {
	m, err := n.fs.swap.pin(n.ino, h)
	if err != nil {
		n.fs.log.Error("cannot pin swapfile", "ino", n.ino, "err", err)
		return n.errno("pin swapfile", err)
	}
	n.fs.log.Info("swapfile pinned", "ino", n.ino, "bytes", m.Size(), "usable", h.UsableBytes(),
		"extents", m.NumExtents(), "label", h.Label)
	// Pages cached before the file was pinned would hide what swap writes through the engine
	// from handles opened before; drop them. Not from this request: the kernel may hold
	// the inode's lock until the reply.
	if n.fs.mounted {
		go n.NotifyContent(0, 0)
	}
	return 0
}

// pinCandidate checks the header of a file whose header arrived while it grew, once the
// writer closes or syncs it.
func (n *Node) pinCandidate() {
	s := n.fs.swap
	s.mu.RLock()
	cand := s.candidates[n.ino]
	s.mu.RUnlock()
	if !cand {
		return
	}
	defer s.lock(n.ino).Unlock()
	s.mu.Lock()
	delete(s.candidates, n.ino)
	s.mu.Unlock()
	page, size, err := s.headerAfter(n.ino, nil, 0)
	if err != nil || !swap.IsSwapHeader(page) {
		return
	}
	h, err := swap.ParseHeader(page, size)
	if err != nil {
		n.fs.log.Warn("file with a swap signature is not a usable swapfile", "ino", n.ino, "err", err)
		return
	}
	n.pinWithHeader(h)
}

// repinAll pins again, at mount, every file the store has flagged as a swapfile. A file
// whose header no longer parses (the store was edited offline) is unflagged, with a warning.
func (s *swapFiles) repinAll(log interface {
	Info(string, ...any)
	Warn(string, ...any)
}) error {
	inos, err := s.store.Swapfiles()
	if err != nil {
		return err
	}
	for _, ino := range inos {
		page, size, err := s.headerAfter(ino, nil, 0)
		if err != nil {
			log.Warn("cannot read a flagged swapfile's header; it stays unpinned", "ino", ino, "err", err)
			continue
		}
		h, err := swap.ParseHeader(page, size)
		if err != nil {
			log.Warn("flagged swapfile has no valid header; it is an ordinary file now", "ino", ino, "err", err)
			if _, err := s.store.Unpin(ino); err != nil {
				return err
			}
			continue
		}
		m, err := s.pin(ino, h)
		if err != nil {
			log.Warn("cannot pin a flagged swapfile again; it stays unpinned", "ino", ino, "err", err)
			continue
		}
		log.Info("swapfile pinned", "ino", ino, "bytes", m.Size(), "extents", m.NumExtents())
	}
	return nil
}

// status describes one pinned file.
func (s *swapFiles) status(ino uint64) swap.FileStatus {
	st := swap.FileStatus{Ino: ino}
	sf, m := s.pinned(ino)
	if sf != nil {
		st.Pinned = true
		st.FileBytes = m.Size()
		st.UsableBytes = m.Header().UsableBytes()
		st.Extents = m.NumExtents()
		sf.io.RUnlock()
	}
	st.Path, _ = s.store.PathOf(ino)
	st.Loop, st.Active, st.Priority, st.UsedBytes, _ = s.active(ino, true)
	var errs []error
	var err error
	if st.VolumeRotational, err = swap.Rotational(s.store.DataVolume()); err != nil {
		errs = append(errs, err)
	}
	if st.Loop != "" {
		if st.LoopRotational, err = swap.Rotational(st.Loop); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		st.RotationalErr = err.Error()
	}
	return st
}

func (s *swapFiles) inos() []uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]uint64, 0, len(s.files))
	for ino := range s.files {
		out = append(out, ino)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// SwapStatus reports every swapfile of the mount and the direct-I/O counters.
func (srv *Server) SwapStatus() swap.Status {
	s := srv.fsys.swap
	var st swap.Status
	for _, ino := range s.inos() {
		st.Files = append(st.Files, s.status(ino))
	}
	s.mu.RLock()
	if s.engine != nil {
		st.IO = s.engine.Stats()
	}
	s.mu.RUnlock()
	return st
}

// PinSwapfile makes the regular file ino a swapfile now, if its first page holds a valid swap
// header: what a write of the header does by itself, for a file whose header arrived in a
// way that did not pin it (a copy that grew the file, say).
func (srv *Server) PinSwapfile(ino uint64) (swap.FileStatus, error) {
	s := srv.fsys.swap
	defer s.lock(ino).Unlock()
	if !s.isPinned(ino) {
		page, size, err := s.headerAfter(ino, nil, 0)
		if err != nil {
			return swap.FileStatus{}, err
		}
		h, err := swap.ParseHeader(page, size)
		if err != nil {
			return swap.FileStatus{}, err
		}
		if _, err := s.pin(ino, h); err != nil {
			return swap.FileStatus{}, err
		}
	}
	return s.status(ino), nil
}

// ActiveSwapfiles names the swapfiles that are in use as swap now: while there are any, the
// daemon must not exit.
func (srv *Server) ActiveSwapfiles() []string {
	s := srv.fsys.swap
	var out []string
	for _, ino := range s.inos() {
		if loop, active, _, _, err := s.active(ino, false); active || err != nil {
			path, _ := s.store.PathOf(ino)
			out = append(out, fmt.Sprintf("%s (inode %d) on %s", path, ino, loop))
		}
	}
	return out
}

// swapOpenFlags: every open of a pinned file bypasses the page cache, so swap writes through
// the engine are what every reader sees, and writes of the loop device may run in parallel.
// Shared writable mappings of such a handle are refused by the kernel (ENODEV), since swapfs
// does not negotiate FUSE_DIRECT_IO_ALLOW_MMAP.
const swapOpenFlags = fuse.FOPEN_DIRECT_IO | fuse.FOPEN_PARALLEL_DIRECT_WRITES | fuse.FOPEN_NOFLUSH

var _ gofs.FileHandle = (*fileHandle)(nil)

// swapNamed looks up name in directory n: EPERM when it is an active swapfile, which must
// keep its name; otherwise the inode it names, if it is a pinned swapfile, else 0.
func (n *Node) swapNamed(op, name string) (uint64, syscall.Errno) {
	in, err := n.fs.store.Lookup(n.ino, name)
	if err != nil || !n.fs.swap.isPinned(in.Ino) {
		return 0, 0 // the operation itself reports a missing name
	}
	child := &Node{fs: n.fs, ino: in.Ino}
	if child.swapBusy(op) {
		return 0, syscall.EPERM
	}
	return in.Ino, 0
}

// forgetIfGone drops the pinned map of a swapfile that has lost its last name; its blocks
// are freed when its last handle closes, and never again served from the map.
func (s *swapFiles) forgetIfGone(ino uint64) {
	if ino == 0 {
		return
	}
	if in, err := s.store.GetInode(ino); err == nil && in.Nlink > 0 {
		return
	}
	s.unpin(ino, false)
}

// zeros is what discards and write-zeroes of a swapfile write.
var zeros = make([]byte, swap.BufferSize)

// swapZero serves the loop driver's fallocate on a pinned file: PUNCH_HOLE (discard) and
// ZERO_RANGE write zeros in place; a plain allocation within the file has nothing to do.
func (n *Node) swapZero(sf *swapFile, m *swap.Map, off, length int64, mode uint32) syscall.Errno {
	defer sf.io.RUnlock()
	if mode&(meta.FallocPunchHole|meta.FallocZeroRange) == 0 {
		if off+length > m.Size() {
			return syscall.EFBIG // the loop device never grows its file
		}
		return 0
	}
	end := min(off+length, m.Size())
	for off < end {
		k := min(end-off, int64(len(zeros)))
		if _, err := n.fs.swap.engine.WriteAt(m, zeros[:k], off); err != nil {
			return n.errno("swap discard", err)
		}
		off += k
	}
	return 0
}
