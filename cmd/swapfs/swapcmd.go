package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/meta"
	"github.com/swapfs/swapfs/swap"
)

// priorityXattr keeps the priority given to mkswapfile, for swapon without -p.
const priorityXattr = "user.swapfs.priority"

// minSwapPages is the smallest swap area mkswap makes (the header and nine pages).
const minSwapPages = 10

// swapTarget is a file on a swapfs mount.
type swapTarget struct {
	path       string // absolute
	mountpoint string
	store      string // the mount's source: the store its daemon must say it serves
	dev        uint64 // st_dev of the mount
}

// onSwapfs finds the swapfs mount that holds path (which need not exist yet: its directory
// is looked at then).
func onSwapfs(path string) (swapTarget, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return swapTarget{}, err
	}
	var st unix.Stat_t
	probe := abs
	if err := unix.Stat(probe, &st); errors.Is(err, unix.ENOENT) {
		probe = filepath.Dir(abs)
		err = unix.Stat(probe, &st)
	}
	if err != nil {
		return swapTarget{}, fmt.Errorf("%s: %w", probe, err)
	}
	m, ok, err := swapfsMountOf(st.Dev)
	if err != nil {
		return swapTarget{}, err
	}
	if !ok {
		return swapTarget{}, fmt.Errorf("%s is not on a swapfs mount", abs)
	}
	return swapTarget{path: abs, mountpoint: m.Mountpoint, store: m.Source, dev: st.Dev}, nil
}

// swapfsMountOf returns the swapfs mount with device number dev, if there is one.
func swapfsMountOf(dev uint64) (swap.Mount, bool, error) {
	mounts, err := swap.Mounts()
	if err != nil {
		return swap.Mount{}, false, err
	}
	m, ok := swap.MountOfDevice(mounts, unix.Major(dev), unix.Minor(dev))
	return m, ok && m.FSType == fsType, nil
}

func inodeOf(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, fmt.Errorf("%s is not a regular file", path)
	}
	return st.Ino, nil
}

// pinThrough asks the daemon of t's mount to pin the file (a no-op for a pinned one) and
// returns what it says of it.
func pinThrough(t swapTarget) (swap.FileStatus, error) {
	ino, err := inodeOf(t.path)
	if err != nil {
		return swap.FileStatus{}, err
	}
	resp, err := callDaemon(t.mountpoint, controlRequest{Op: "pin", Ino: ino, Store: t.store})
	if err != nil {
		return swap.FileStatus{}, err
	}
	if resp.Error != "" {
		return swap.FileStatus{}, fmt.Errorf("%s is not usable as a swapfile: %s", t.path, resp.Error)
	}
	if resp.File == nil {
		return swap.FileStatus{}, fmt.Errorf("the swapfs daemon on %s sent no status for %s", t.mountpoint, t.path)
	}
	return *resp.File, nil
}

func mkswapfileMain(args []string) int {
	fset := newFlagSet("mkswapfile")
	sizeArg := fset.String("size", "", "size of the swapfile (K, M, G, T suffixes)")
	prio := fset.Int("priority", -1, "swap priority swapon uses for it (0..32767); the kernel's default when absent")
	label := fset.String("label", "", "swap area label (up to 16 bytes)")
	fset.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: swapfs mkswapfile --size SIZE [--priority N] [--label LABEL] PATH")
	}
	rest, err := parseInterleaved(fset, args)
	if err != nil || len(rest) != 1 || *sizeArg == "" {
		fset.Usage()
		return exitUsage
	}
	size, err := parseSize(*sizeArg)
	if err == nil && size/swap.PageSize < minSwapPages {
		err = fmt.Errorf("size %s is too small: a swap area needs at least %d pages", *sizeArg, minSwapPages)
	}
	if err == nil && size/swap.PageSize-1 > math.MaxUint32 {
		// The header counts pages in 32 bits (last_page).
		err = fmt.Errorf("size %s is too large: a swap area holds at most 16 TiB", *sizeArg)
	}
	if err == nil && *prio > 32767 {
		err = fmt.Errorf("priority %d is out of range 0..32767", *prio)
	}
	if err == nil && len(*label) > 16 {
		err = fmt.Errorf("label %q is longer than 16 bytes", *label)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "swapfs mkswapfile: %v\n", err)
		return exitUsage
	}
	size -= size % swap.PageSize
	st, err := makeSwapfile(rest[0], size, *prio, *label)
	if err != nil {
		fmt.Fprintf(os.Stderr, "swapfs mkswapfile: %v\n", err)
		return exitFailure
	}
	fmt.Printf("swapfs: made swapfile %s: %s, %d usable pages in %d extent(s); activate it with 'swapfs swapon %s'\n",
		st.Path, formatSize(uint64(size)), st.UsableBytes/swap.PageSize-1, st.Extents, rest[0])
	return exitOK
}

// makeSwapfile creates path with mode 0600, allocates size bytes in one request (the
// allocator gives it the longest runs free space has), writes every block with zeros and
// then the swap header, which makes the daemon pin it. Any failure removes the file, so
// nothing half-made or leaked remains; so does SIGINT or SIGTERM (Ctrl-C on a long write)
// before the file is complete. One that comes while the daemon pins it waits for the pin.
func makeSwapfile(path string, size int64, prio int, label string) (st swap.FileStatus, err error) {
	t, err := onSwapfs(path)
	if err != nil {
		return st, err
	}
	interrupt := catchSignals()
	defer signal.Stop(interrupt) // after the removal below: a second Ctrl-C must not cut it short
	f, err := os.OpenFile(t.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_DIRECT, 0o600)
	if err != nil {
		return st, err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			if rerr := os.Remove(t.path); rerr != nil {
				err = fmt.Errorf("%w (and removing the half-made %s failed: %v)", err, t.path, rerr)
			}
		}
	}()
	if err := f.Chmod(0o600); err != nil { // whatever the umask made of it
		return st, err
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err != nil {
		if err == unix.ENOSPC {
			return st, fmt.Errorf("not enough free space on %s for %s: %w", t.mountpoint, formatSize(uint64(size)), err)
		}
		return st, fmt.Errorf("allocate %s: %w", t.path, err)
	}
	if err := writeZeros(f, size, interrupt); err != nil {
		return st, err
	}
	var h swap.Header
	h.LastPage = uint32(size/swap.PageSize - 1)
	h.Label = label
	if _, err := rand.Read(h.UUID[:]); err != nil {
		return st, err
	}
	h.UUID[6] = h.UUID[6]&0x0f | 0x40 // version 4
	h.UUID[8] = h.UUID[8]&0x3f | 0x80 // RFC 4122 variant
	page, err := h.Encode()
	if err != nil {
		return st, err
	}
	buf := meta.AlignedBuffer(swap.PageSize)
	copy(buf, page)
	if _, err := f.WriteAt(buf, 0); err != nil {
		return st, fmt.Errorf("write the swap header: %w", err)
	}
	if err := f.Sync(); err != nil {
		return st, fmt.Errorf("fsync %s: %w", t.path, err)
	}
	if prio >= 0 {
		if err := unix.Fsetxattr(int(f.Fd()), priorityXattr, []byte(strconv.Itoa(prio)), 0); err != nil {
			return st, fmt.Errorf("record the priority: %w", err)
		}
	}
	if err := interrupted(interrupt); err != nil {
		return st, err
	}
	if err := f.Close(); err != nil {
		f = nil
		return st, err
	}
	f = nil
	st, err = pinThrough(t)
	if err == nil && !st.Pinned {
		err = fmt.Errorf("the daemon did not pin %s", t.path)
	}
	return st, err
}

// writeZeros writes every block of f, with a progress line on a terminal for sizes where the
// wait is noticeable; a signal on interrupt stops it.
func writeZeros(f *os.File, size int64, interrupt <-chan os.Signal) error {
	const chunk = 1 << 20
	buf := meta.AlignedBuffer(chunk)
	showProgress := size >= 256<<20 && isTerminal(os.Stderr)
	start, last := time.Now(), time.Now()
	for off := int64(0); off < size; {
		if err := interrupted(interrupt); err != nil {
			if showProgress {
				fmt.Fprintln(os.Stderr)
			}
			return fmt.Errorf("%w after writing %s of %s", err, formatMiB(off), formatMiB(size))
		}
		n := min(int64(chunk), size-off)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return fmt.Errorf("write %s at %d: %w", f.Name(), off, err)
		}
		off += n
		if showProgress && (time.Since(last) > 200*time.Millisecond || off == size) {
			last = time.Now()
			fmt.Fprintf(os.Stderr, "\rswapfs: writing %s: %3d%% (%s of %s, %.0f MiB/s)", filepath.Base(f.Name()),
				off*100/size, formatMiB(off), formatMiB(size), float64(off)/(1<<20)/time.Since(start).Seconds())
		}
	}
	if showProgress {
		fmt.Fprintln(os.Stderr)
	}
	return nil
}

// interrupted says whether a signal came on ch.
func interrupted(ch <-chan os.Signal) error {
	select {
	case sig := <-ch:
		return fmt.Errorf("interrupted (%v)", sig)
	default:
		return nil
	}
}

func formatMiB(b int64) string { return fmt.Sprintf("%d MiB", b>>20) }

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func swaponMain(args []string) int {
	fset := newFlagSet("swapon")
	prio := fset.Int("p", -1, "swap priority (0..32767); default: the one given to mkswapfile, else the kernel's")
	discard := fset.Bool("discard", false, "discard freed swap pages (passed to swapon(2))")
	fset.Usage = func() { fmt.Fprintln(os.Stderr, "usage: swapfs swapon [-p PRIO] [--discard] PATH") }
	rest, err := parseInterleaved(fset, args)
	if err != nil || len(rest) != 1 {
		fset.Usage()
		return exitUsage
	}
	if *prio > 32767 {
		fmt.Fprintf(os.Stderr, "swapfs swapon: priority %d is out of range 0..32767\n", *prio)
		return exitUsage
	}
	dev, usedPrio, err := swaponFile(rest[0], *prio, *discard)
	if err != nil {
		fmt.Fprintf(os.Stderr, "swapfs swapon: %v\n", err)
		return exitFailure
	}
	fmt.Printf("%s\n", dev)
	if usedPrio >= 0 {
		fmt.Fprintf(os.Stderr, "swapfs: %s is active swap on %s, priority %d\n", rest[0], dev, usedPrio)
	} else {
		fmt.Fprintf(os.Stderr, "swapfs: %s is active swap on %s\n", rest[0], dev)
	}
	return exitOK
}

// swaponFile pins path (through its daemon), attaches a loop device with direct I/O to it and
// calls swapon(2) on the device. It returns the device.
func swaponFile(path string, prio int, discard bool) (string, int, error) {
	t, err := onSwapfs(path)
	if err != nil {
		return "", 0, err
	}
	st, err := pinThrough(t)
	if err != nil {
		return "", 0, err
	}
	if st.Loop != "" {
		if st.Active {
			return "", 0, fmt.Errorf("%s is already active swap on %s", t.path, st.Loop)
		}
		return "", 0, fmt.Errorf("%s is already attached to %s; detach it with 'losetup -d %s' or swapon that device", t.path, st.Loop, st.Loop)
	}
	if prio < 0 {
		if v, err := getxattr(t.path, priorityXattr); err == nil {
			if p, err := strconv.Atoi(v); err == nil && p >= 0 && p <= 32767 {
				prio = p
			}
		}
	}
	// SIGINT or SIGTERM between the attach and swapon would leave the loop device attached,
	// holding the file's one writer: caught, it detaches it again.
	interrupt := catchSignals()
	defer signal.Stop(interrupt)
	dev, err := swap.AttachLoop(t.path, swap.LoopOptions{BlockSize: swap.PageSize})
	if err != nil {
		return "", 0, err
	}
	undo := func(err error) (string, int, error) {
		if derr := swap.DetachLoop(dev); derr != nil {
			err = fmt.Errorf("%w; detaching %s again failed too: %v", err, dev, derr)
		}
		return "", 0, err
	}
	// What the loop driver would have said for a file directly on the data volume's disk,
	// and what picks the kernel's swap readahead; a failure costs speed, not correctness.
	if st.RotationalErr != "" {
		fmt.Fprintf(os.Stderr, "swapfs swapon: warning: %s; %s keeps the loop driver's rotational flag\n", st.RotationalErr, dev)
	} else if err := swap.SetLoopRotational(dev, st.VolumeRotational); err != nil {
		fmt.Fprintf(os.Stderr, "swapfs swapon: warning: %v; swap readahead will be that of a non-rotational device\n", err)
	}
	if err := interrupted(interrupt); err != nil {
		return undo(err)
	}
	opts := swap.SwaponOptions{Priority: prio, HasPriority: prio >= 0, Discard: discard}
	if err := swap.Swapon(dev, opts); err != nil {
		return undo(err)
	}
	return dev, prio, nil
}

func getxattr(path, name string) (string, error) {
	buf := make([]byte, 64)
	n, err := unix.Getxattr(path, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func swapoffMain(args []string) int {
	fset := newFlagSet("swapoff")
	fset.Usage = func() { fmt.Fprintln(os.Stderr, "usage: swapfs swapoff PATH") }
	rest, err := parseInterleaved(fset, args)
	if err != nil || len(rest) != 1 {
		fset.Usage()
		return exitUsage
	}
	devs, err := swapoffFile(rest[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "swapfs swapoff: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(os.Stderr, "swapfs: %s is no longer swap; detached %s\n", rest[0], strings.Join(devs, ", "))
	return exitOK
}

// swapoffFile calls swapoff(2) on every swap area on path (its loop devices, and devices
// stacked on them) and detaches the loop devices. A stacked device that is not a loop
// device (dm-crypt, md) is the administrator's to remove: until it is, it holds the loop
// device under it, which is left attached and named in the error.
func swapoffFile(path string) ([]string, error) {
	t, err := onSwapfs(path)
	if err != nil {
		return nil, err
	}
	ino, err := inodeOf(t.path)
	if err != nil {
		return nil, err
	}
	// The loop devices that are swap are found by device number, also when attached through
	// a bind mount; the idle ones under this mountpoint.
	areas, err := swap.ActiveSwaps()
	if err != nil {
		return nil, err
	}
	swaps, err := swap.SwapLoopsBacking(areas, t.dev, ino)
	if err != nil {
		return nil, err
	}
	loops, err := swap.LoopsBackingIn(t.mountpoint, t.dev, ino)
	if err != nil {
		return nil, err
	}
	var devs, stacked []string
	for _, a := range swaps {
		if err := swap.Swapoff(a.Filename); err != nil {
			return devs, fmt.Errorf("swapoff %s: %w", a.Filename, err)
		}
		if swap.IsLoopDevice(a.Filename) {
			devs = append(devs, a.Filename)
		} else {
			stacked = append(stacked, a.Filename)
		}
	}
	if len(stacked) > 0 {
		under := "this file's loop device"
		if len(loops) > 0 {
			var held []string
			for _, l := range loops {
				held = append(held, l.Device)
			}
			under = strings.Join(held, ", ")
		}
		return devs, fmt.Errorf("swap is off on %s, which is built on %s: remove it (cryptsetup close, "+
			"dmsetup remove, mdadm --stop), then run swapfs swapoff again to detach", strings.Join(stacked, ", "), under)
	}
	for _, l := range loops {
		if !slices.Contains(devs, l.Device) {
			devs = append(devs, l.Device)
		}
	}
	if len(devs) == 0 {
		return nil, fmt.Errorf("%s is not attached to any loop device (not active swap)", t.path)
	}
	for i, dev := range devs {
		if err := swap.DetachLoop(dev); err != nil {
			return devs[:i], err
		}
	}
	return devs, nil
}

// activateSwaps runs swapon for every swap= mount option once the mount is ready, so one
// fstab line brings up the filesystem and its swap. A failure is reported and logged; the
// mount stays, as swapon -a leaves other swap areas when one fails.
func activateSwaps(mountpoint string, swaps []swapOption, report func(string)) (failed int) {
	for _, s := range swaps {
		p := filepath.Join(mountpoint, s.path)
		dev, prio, err := swaponFile(p, s.priority, false)
		if err != nil {
			report(fmt.Sprintf("swap=%s: %v", s.path, err))
			failed++
			continue
		}
		if prio >= 0 {
			report(fmt.Sprintf("swap=%s: active on %s, priority %d", s.path, dev, prio))
		} else {
			report(fmt.Sprintf("swap=%s: active on %s", s.path, dev))
		}
	}
	return failed
}
