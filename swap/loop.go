package swap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// LoopOptions for AttachLoop.
type LoopOptions struct {
	BlockSize uint32 // logical block size, 4096 when 0
	ReadOnly  bool
}

const (
	loopControl = "/dev/loop-control"
	loopMajor   = 7 // LOOP_MAJOR

	// attachTimeout bounds the retries when other processes keep taking the free device
	// LOOP_CTL_GET_FREE hands out; losetup gives up after about the same time.
	attachTimeout = 10 * time.Second

	// detachTimeout bounds both the EBUSY retries of LOOP_CLR_FD and the wait for the
	// kernel to let go of the backing file. A prober (udev's blkid) holds a device for
	// milliseconds; a mount or swap holds it until it is undone, and no wait helps.
	detachTimeout = 5 * time.Second
)

// AttachLoop attaches a free loop device to the file at path with direct I/O and returns
// it ("/dev/loopN"). A loop device that would do buffered I/O is never left behind: it
// would put the swapfile's pages in the page cache, which is what swapping is trying to
// free, so when direct I/O does not take (see lo_can_use_dio in drivers/block/loop.c) the
// device is detached again and an error says so.
//
// The file is opened for the duration of the call only; the loop device holds its own
// reference to it until it is detached.
func AttachLoop(path string, opts LoopOptions) (string, error) {
	dev, err := attachLoop(path, opts)
	if err != nil {
		return "", fmt.Errorf("attach loop device to %s: %w", path, err)
	}
	return dev, nil
}

func attachLoop(path string, opts LoopOptions) (string, error) {
	bs := opts.BlockSize
	if bs == 0 {
		bs = PageSize
	}
	mode, loFlags := unix.O_RDWR, uint32(unix.LO_FLAGS_DIRECT_IO)
	if opts.ReadOnly {
		mode, loFlags = unix.O_RDONLY, loFlags|unix.LO_FLAGS_READ_ONLY
	}
	fd, err := unix.Open(path, mode|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("stat: %w", err)
	}
	// The kernel would say EINVAL (loop_validate_file); say what is wrong instead.
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFBLK {
		return "", fmt.Errorf("not a regular file or block device: %w", unix.EINVAL)
	}

	ctl, err := unix.Open(loopControl, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("open %s (is the loop module loaded?): %w", loopControl, err)
	}
	defer unix.Close(ctl)

	cfg := unix.LoopConfig{Fd: uint32(fd), Size: bs}
	cfg.Info.Flags = loFlags
	// Only what LOOP_GET_STATUS64 shows; sysfs backing_file has the full path.
	copy(cfg.Info.File_name[:unix.LO_NAME_SIZE-1], path)

	deadline := time.Now().Add(attachTimeout)
	busy := map[int]bool{}
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		n, err := freeLoop(ctl, busy)
		if err != nil {
			return "", err
		}
		dev := loopDevice(n)
		err = configureLoop(dev, n, mode, &cfg)
		if err == nil {
			return dev, nil
		}
		retry := errors.Is(err, unix.EBUSY) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENXIO)
		if !retry || time.Now().After(deadline) {
			return "", fmt.Errorf("%s: %w", dev, err)
		}
		busy[n] = true
		time.Sleep(delay)
	}
}

// freeLoop returns the number of an unbound loop device. LOOP_CTL_GET_FREE returns the
// lowest unbound device even when someone holds it open with O_EXCL, which makes
// LOOP_CONFIGURE fail with EBUSY for as long as they hold it; after such a failure a
// fresh device is asked for instead of the same one again.
func freeLoop(ctl int, busy map[int]bool) (int, error) {
	n, err := unix.IoctlRetInt(ctl, unix.LOOP_CTL_GET_FREE)
	if err != nil {
		return 0, fmt.Errorf("find a free loop device (LOOP_CTL_GET_FREE): %w", err)
	}
	if !busy[n] {
		return n, nil
	}
	// LOOP_CTL_ADD with a negative index picks an unused one (loop_add).
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(ctl), unix.LOOP_CTL_ADD, ^uintptr(0))
	if errno != 0 {
		return 0, fmt.Errorf("add a loop device (LOOP_CTL_ADD): %w", errno)
	}
	return int(r), nil
}

// configureLoop binds loop device n to the file in cfg and checks that direct I/O took.
func configureLoop(dev string, n int, mode int, cfg *unix.LoopConfig) error {
	lo, err := unix.Open(dev, mode|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer unix.Close(lo)
	// EBUSY: another process bound it between LOOP_CTL_GET_FREE and now.
	if err := unix.IoctlLoopConfigure(lo, cfg); err != nil {
		if errors.Is(err, unix.ENOTTY) {
			return fmt.Errorf("LOOP_CONFIGURE (needs Linux 5.8 or later): %w", err)
		}
		return fmt.Errorf("LOOP_CONFIGURE (block size %d): %w", cfg.Size, err)
	}
	dio, err := readSysfs(loopSysfs(n) + "dio")
	if err == nil && dio == "1" {
		return nil
	}
	// Ours to undo: we are its only opener, so the kernel clears it when lo is closed.
	if cerr := unix.IoctlSetInt(lo, unix.LOOP_CLR_FD, 0); cerr != nil {
		return fmt.Errorf("direct I/O did not take, and detaching again failed: %v", cerr)
	}
	if err != nil {
		// %v: a missing sysfs file here must not read as a device to retry with.
		return fmt.Errorf("cannot tell whether direct I/O took, detached again: %v", err)
	}
	return fmt.Errorf("direct I/O did not take (the backing filesystem lacks O_DIRECT, or its "+
		"direct-I/O alignment is above the %d-byte block size); detached again", cfg.Size)
}

// DetachLoop detaches dev (LOOP_CLR_FD) and waits until the kernel has let go of the backing
// file, so that the file can be changed or deleted once it returns.
//
// The kernel never refuses LOOP_CLR_FD on a device that is open elsewhere: it marks it
// autoclear and detaches it at the last close (loop_clr_fd). For active swap that means "at
// swapoff", which would leave a swap area on a file the caller believes free; DetachLoop
// refuses that with EBUSY instead. A device still bound after a few seconds (mounted, or
// held open) is reported as an error, though the kernel will detach it when it is closed.
func DetachLoop(dev string) error {
	if err := detachLoop(dev); err != nil {
		return fmt.Errorf("detach loop device %s: %w", dev, err)
	}
	return nil
}

func detachLoop(dev string) error {
	active, err := IsActiveSwap(dev)
	if err != nil {
		return err
	}
	if active {
		return fmt.Errorf("in use as swap; swapoff it first: %w", unix.EBUSY)
	}
	// O_RDONLY: a writable open would make udev re-probe the device when it is closed,
	// adding the very opener that defers the detach.
	lo, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(lo, &st); err != nil {
		unix.Close(lo)
		return fmt.Errorf("stat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		unix.Close(lo)
		return fmt.Errorf("not a block device: %w", unix.ENOTBLK)
	}
	deadline := time.Now().Add(detachTimeout)
	for {
		err = unix.IoctlSetInt(lo, unix.LOOP_CLR_FD, 0)
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	unix.Close(lo) // the detach happens at the last close, which may be this one
	switch {
	case errors.Is(err, unix.ENXIO):
		return fmt.Errorf("not attached: %w", err)
	case err != nil:
		return fmt.Errorf("LOOP_CLR_FD: %w", err)
	}
	bound := fmt.Sprintf("/sys/dev/block/%d:%d/loop", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	for {
		if _, err := os.Stat(bound); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still attached after %v: something holds it open (a mount?); "+
				"the kernel detaches it when the last holder closes it: %w", detachTimeout, unix.EBUSY)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// LoopInfo is a loop device and what backs it.
type LoopInfo struct {
	Device      string // /dev/loopN
	BackingDev  uint64 // st_dev of the backing file, encoded as stat(2) encodes it
	BackingIno  uint64 // st_ino of the backing file
	BackingFile string // its path as the kernel sees it, " (deleted)" appended once unlinked
	DirectIO    bool
	// Err says why the backing file could not be queried: its filesystem is gone (a
	// killed FUSE daemon leaves ENOTCONN) or failing. BackingDev and BackingIno are then
	// zero. Only Loops reports such devices; the LoopsBacking functions skip those over a
	// dead mount and fail on the others.
	Err error
}

// Loops lists every configured loop device, in device number order. A device whose
// backing file cannot be queried is listed with Err set: one dead filesystem behind one
// loop device must not hide the others.
//
// LOOP_GET_STATUS64 stats the backing file (loop_get_status calls vfs_getattr), so this
// calls into every filesystem that backs a loop device: for a file on FUSE it may send a
// GETATTR to that filesystem's daemon, and it blocks while that daemon does not answer.
func Loops() ([]LoopInfo, error) {
	return scanLoops(nil, func(*unix.LoopInfo64) bool { return true }, true)
}

// LoopsBacking returns the loop devices whose backing file is the inode (dev, ino), as
// stat(2) reports st_dev and st_ino. Devices over a dead mount are skipped (overDeadMount):
// the caller has just stat'ed (dev, ino), so its filesystem answers. The caveat of Loops
// applies; LoopsBackingIn avoids it.
func LoopsBacking(dev, ino uint64) ([]LoopInfo, error) {
	return scanLoops(nil, backedBy(dev, ino), false)
}

// LoopsBackingIn is LoopsBacking for a file under the directory dir (a mountpoint): only
// the loop devices whose backing file's path, as sysfs shows it, lies under dir are asked
// for their inode, so no other filesystem's daemon is called into.
func LoopsBackingIn(dir string, dev, ino uint64) ([]LoopInfo, error) {
	return scanLoops(backedUnder([]string{dir}), backedBy(dev, ino), false)
}

// SwapLoopsBacking returns the swap areas among areas (as ActiveSwaps lists them) that are
// loop devices backed by the inode (dev, ino), or are built on one: dm-crypt or another
// loop device stacked on the file's loop device makes the file as much swap as swapping on
// the loop device itself. A loop device is recognised by its device number, whatever its
// node is called, and its backing file by the inode, whatever path it was attached by:
// through a bind mount too, which a match on the mountpoint's path misses, letting changes
// through to an active swapfile. As in LoopsBackingIn, only loop devices whose backing file
// lies under a mount of the filesystem dev (in this mount namespace) are asked for its inode.
func SwapLoopsBacking(areas []SwapArea, dev, ino uint64) ([]SwapArea, error) {
	swapLoops := map[string][]SwapArea{} // by loop device, as LoopInfo names it
	var unresolved []string
	for _, a := range areas {
		if a.Type != "partition" {
			continue // a swapfile of a native filesystem: never a loop device
		}
		loops, ok, err := loopsBeneath(a.Filename)
		if err != nil {
			return nil, fmt.Errorf("swap area %s: %w", a.Filename, err)
		}
		if !ok {
			unresolved = append(unresolved, a.Filename)
		}
		for _, n := range loops {
			swapLoops[loopDevice(n)] = append(swapLoops[loopDevice(n)], a)
		}
	}
	if len(swapLoops) == 0 && len(unresolved) == 0 {
		return nil, nil // the common case: nothing to ask, not even the mount table
	}
	dirs, err := mountpointsOf(dev)
	if err != nil {
		return nil, err
	}
	under := backedUnder(dirs)
	keep := func(n int) bool {
		_, isSwap := swapLoops[loopDevice(n)]
		return isSwap && under(n)
	}
	if len(unresolved) > 0 {
		// Such an area may be this file's loop device under a name that is gone, or stacked
		// on it: while the file has any loop device, that cannot be told apart from an
		// unrelated area, and a failure to tell must not let a change through.
		keep = under
	}
	loops, err := scanLoops(keep, backedBy(dev, ino), false)
	if err != nil {
		return nil, err
	}
	if len(unresolved) > 0 && len(loops) > 0 {
		return nil, fmt.Errorf("cannot tell whether swap areas %s are on %s, which this file backs: their device nodes do not resolve here",
			strings.Join(unresolved, ", "), loops[0].Device)
	}
	var out []SwapArea
	for _, l := range loops {
		for _, a := range swapLoops[l.Device] {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// maxStackDepth bounds the walk down a stack of block devices. The kernel sets no depth
// (loop_validate_file only refuses cycles), but a real stack is a few devices deep; one
// deeper than this is reported rather than half followed.
const maxStackDepth = 16

// loopsBeneath returns the whole loop devices the block device node path is, or is built
// on: the devices in sysfs slaves/ of a device-mapper or md device, and the block device a
// loop device's backing file is, followed down. Partitions are left out: a loop partition
// holds no file at offset 0, where a swap header must be. ok is false when path does not
// resolve (a node removed since swapon, or not in this /dev) and does not name a loop
// device, which is an error: it could be one of ours.
func loopsBeneath(path string) (loops []int, ok bool, err error) {
	rdev, isBlock, err := statBlock(path)
	if err != nil {
		if strings.HasPrefix(path, "/dev/loop") {
			return nil, false, err
		}
		return nil, false, nil
	}
	if !isBlock {
		return nil, true, nil
	}
	seen := map[uint64]bool{}
	todo := []uint64{rdev}
	for depth := 0; len(todo) > 0; depth++ {
		if depth > maxStackDepth {
			return nil, false, fmt.Errorf("block devices stacked more than %d deep", maxStackDepth)
		}
		var next []uint64
		for _, rdev := range todo {
			if seen[rdev] {
				continue
			}
			seen[rdev] = true
			loop, below, err := stackedOn(rdev)
			if err != nil {
				return nil, false, err
			}
			if loop >= 0 {
				loops = append(loops, loop)
			}
			next = append(next, below...)
		}
		todo = next
	}
	return loops, true, nil
}

// stackedOn describes the whole block device rdev: loop is its loop device number (-1 for
// another device, or a partition), below the devices it is built on.
func stackedOn(rdev uint64) (loop int, below []uint64, err error) {
	sys, partition, err := BlockSysfs(rdev)
	if errors.Is(err, os.ErrNotExist) && unix.Major(rdev) != loopMajor {
		return -1, nil, nil // a node for a device this kernel does not have: nothing stacks on it
	}
	if err != nil {
		return -1, nil, err
	}
	if partition {
		return -1, nil, nil
	}
	if unix.Major(rdev) == loopMajor {
		n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(sys), "loop"))
		if err != nil {
			return -1, nil, fmt.Errorf("%s is not a loop device's directory", sys)
		}
		backing, ok, err := loopOverDevice(n)
		if err != nil || !ok {
			return n, nil, err
		}
		return n, []uint64{backing}, nil
	}
	slaves, err := os.ReadDir(filepath.Join(sys, "slaves"))
	if errors.Is(err, os.ErrNotExist) {
		return -1, nil, nil // a device without holders support stacks on nothing
	}
	if err != nil {
		return -1, nil, err
	}
	for _, sl := range slaves {
		d, err := readSysfs(filepath.Join(sys, "slaves", sl.Name(), "dev"))
		if err != nil {
			return -1, nil, err
		}
		var maj, min uint32
		if _, err := fmt.Sscanf(d, "%d:%d", &maj, &min); err != nil {
			return -1, nil, fmt.Errorf("%s/slaves/%s/dev: %q", sys, sl.Name(), d)
		}
		below = append(below, unix.Mkdev(maj, min))
	}
	return -1, below, nil
}

// loopOverDevice returns the block device loop device n is attached to, if it is attached to
// one. Only a backing path under /dev is stat'ed (blockNodeUnderDev). One there that no
// longer resolves (" (deleted)") may have been a block device, so it cannot be told.
func loopOverDevice(n int) (rdev uint64, ok bool, err error) {
	backing, err := readSysfs(loopSysfs(n) + "backing_file")
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil // not bound
	}
	if err != nil {
		return 0, false, err
	}
	rdev, ok, err = blockNodeUnderDev(backing)
	if err != nil {
		return 0, false, fmt.Errorf("%s: backing file %s: %w", loopDevice(n), backing, err)
	}
	return rdev, ok, nil
}

// mountpointsOf lists where the filesystem with device number dev is mounted, bind mounts
// included.
func mountpointsOf(dev uint64) ([]string, error) {
	mounts, err := Mounts()
	if err != nil {
		return nil, err
	}
	dirs := []string{}
	for _, m := range mounts {
		if m.Major == unix.Major(dev) && m.Minor == unix.Minor(dev) {
			dirs = append(dirs, m.Mountpoint)
		}
	}
	return dirs, nil
}

// backedUnder keeps the loop devices whose backing file's path, as sysfs shows it, lies
// under one of dirs; unbound ones and ones backed elsewhere are left out.
func backedUnder(dirs []string) func(n int) bool {
	return func(n int) bool {
		backing, err := readSysfs(loopSysfs(n) + "backing_file")
		if err != nil {
			return false
		}
		for _, d := range dirs {
			if strings.HasPrefix(backing, strings.TrimSuffix(d, "/")+"/") {
				return true
			}
		}
		return false
	}
}

// backedBy matches a loop device whose backing file is the inode (dev, ino).
func backedBy(dev, ino uint64) func(*unix.LoopInfo64) bool {
	return func(i *unix.LoopInfo64) bool { return i.Device == dev && i.Inode == ino }
}

// scanLoops describes, in device number order, the loop devices that keep (when not nil)
// lets through, are bound, and match; withFailed adds those whose backing file could not
// be queried, with their error.
func scanLoops(keep func(n int) bool, match func(*unix.LoopInfo64) bool, withFailed bool) ([]LoopInfo, error) {
	ents, err := os.ReadDir("/sys/block")
	if err != nil {
		return nil, fmt.Errorf("list loop devices: %w", err)
	}
	var nums []int
	for _, e := range ents {
		if n, ok := strings.CutPrefix(e.Name(), "loop"); ok {
			if i, err := strconv.Atoi(n); err == nil && i >= 0 && (keep == nil || keep(i)) {
				nums = append(nums, i)
			}
		}
	}
	sort.Ints(nums)
	var out []LoopInfo
	for _, n := range nums {
		info, ok, err := loopInfo(n, match)
		var unqueryable *backingError
		switch {
		case withFailed && errors.As(err, &unqueryable):
			out = append(out, info)
		case overDeadMount(err):
		case err != nil:
			return nil, fmt.Errorf("list loop devices: %w", err)
		case ok:
			out = append(out, info)
		}
	}
	return out, nil
}

// overDeadMount says the loop device's backing file is on a filesystem that is gone (a FUSE
// mount whose daemon died answers ENOTCONN): it cannot be the file a caller has just
// stat'ed. Any other failure to query a device is an error, so that a check of whether a
// file is in use fails closed.
func overDeadMount(err error) bool {
	var unqueryable *backingError
	return errors.As(err, &unqueryable) && errors.Is(err, unix.ENOTCONN)
}

// backingError is a loop device whose backing file could not be stat'ed.
type backingError struct {
	dev string
	err error
}

func (e *backingError) Error() string {
	return e.dev + ": LOOP_GET_STATUS64 (stat of the backing file): " + e.err.Error()
}

func (e *backingError) Unwrap() error { return e.err }

// loopInfo describes loop device n; ok is false when it is not bound (or stopped being
// bound while we looked) or does not match.
func loopInfo(n int, match func(*unix.LoopInfo64) bool) (info LoopInfo, ok bool, err error) {
	sys := loopSysfs(n)
	// The loop/ attributes exist only while the device is bound (loop_sysfs_init).
	if _, err := os.Stat(sys); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return info, false, nil
		}
		return info, false, err
	}
	dev := loopDevice(n)
	// Never O_EXCL: swap holds its device exclusively, and so does a mount.
	lo, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if _, serr := os.Stat(sys); errors.Is(serr, os.ErrNotExist) {
			return info, false, nil // detached or removed meanwhile
		}
		return info, false, fmt.Errorf("open %s: %w", dev, err)
	}
	st, err := unix.IoctlLoopGetStatus64(lo)
	unix.Close(lo)
	if errors.Is(err, unix.ENXIO) {
		return info, false, nil
	}
	if err != nil {
		// The device stays bound whatever happens to its backing file's filesystem, so
		// this is a property of that device, not a failure to list.
		backing, _ := readSysfs(sys + "backing_file")
		dio, _ := readSysfs(sys + "dio")
		failure := &backingError{dev: dev, err: err}
		return LoopInfo{Device: dev, BackingFile: backing, DirectIO: dio == "1", Err: failure}, false, failure
	}
	if !match(st) {
		return info, false, nil
	}
	backing, err := readSysfs(sys + "backing_file")
	if errors.Is(err, os.ErrNotExist) {
		return info, false, nil
	}
	if err != nil {
		return info, false, err
	}
	dio, err := readSysfs(sys + "dio")
	if errors.Is(err, os.ErrNotExist) {
		return info, false, nil
	}
	if err != nil {
		return info, false, err
	}
	return LoopInfo{
		Device:      dev,
		BackingDev:  st.Device,
		BackingIno:  st.Inode,
		BackingFile: backing,
		DirectIO:    dio == "1",
	}, true, nil
}

// loopSysfs is the directory of loop device n's loop attributes, with a trailing slash.
func loopDevice(n int) string { return "/dev/loop" + strconv.Itoa(n) }

func loopSysfs(n int) string { return "/sys/block/loop" + strconv.Itoa(n) + "/loop/" }

// readSysfs returns a sysfs attribute without its trailing newline.
func readSysfs(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}
