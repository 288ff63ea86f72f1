package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/swapfs/swapfs/swap"
)

// The systems under test and their set-up and teardown: the swapfs mount, the go-fuse
// loopback mount, plain directories on the workdir's ext4, and a swap area on each.

const (
	// swapPriority puts the bench's area above the kernel's defaults (negative) and the
	// integration tests' (10), so the workload's pages go to the area under test;
	// swapon(2): a higher priority is used first.
	swapPriority = 100
	// swapfsStoreSize is the swapfs data volume: the swapfile, fio's file and the metadata
	// tree, with room to spare. The data file is sparse.
	swapfsStoreSize = "3G"
	unmountTimeout  = 60 * time.Second
	swapoffTimeout  = 3 * time.Minute
	loopDetachWait  = 20 * time.Second
)

// swapfsMount is the bench's swapfs mount.
type swapfsMount struct {
	store, dir string
	pid        int // the daemon
}

// mountSwapfs makes a store in the workdir and mounts it; the teardown unmounts it.
func (b *bench) mountSwapfs(ctx context.Context) error {
	m := &swapfsMount{store: filepath.Join(b.work, "swapfs-store"), dir: filepath.Join(b.work, "swapfs-mnt")}
	if err := os.MkdirAll(m.dir, 0o755); err != nil {
		return err
	}
	if _, err := runCmd(ctx, 2*time.Minute, b.env, b.bins.swapfs, "mkfs", "--size", swapfsStoreSize, m.store); err != nil {
		return err
	}
	if _, err := runCmd(ctx, 2*time.Minute, b.env, b.bins.swapfs, "mount", m.store, m.dir); err != nil {
		return err
	}
	b.undo.push("swapfs mount "+m.dir, func(ctx context.Context) error { return b.unmountSwapfs(ctx, m) })
	st, err := b.swapfsStatus(ctx, m)
	if err != nil {
		return err
	}
	if st.Pid <= 0 {
		return fmt.Errorf("swapfs status %s: no daemon pid", m.dir)
	}
	m.pid = st.Pid
	b.swapfs = m
	return nil
}

// unmountSwapfs unmounts m and waits for its daemon to exit, which is when the store is
// closed.
func (b *bench) unmountSwapfs(ctx context.Context, m *swapfsMount) error {
	if err := unmount(ctx, m.dir); err != nil {
		b.dumpLog(filepath.Join(b.work, "log"))
		return err
	}
	if m.pid > 0 && !waitExit(m.pid, "swapfs", unmountTimeout) {
		return fmt.Errorf("the swapfs daemon (pid %d) still runs %v after the unmount of %s", m.pid, unmountTimeout, m.dir)
	}
	return nil
}

// swapfsIO counts the requests swapfs's direct-I/O path for active swapfiles served since
// the mount; the latencies are the daemon's histogram buckets (upper bounds).
type swapfsIO struct {
	Reads      uint64 `json:"reads"`
	Writes     uint64 `json:"writes"`
	ReadBytes  uint64 `json:"read_bytes"`
	WriteBytes uint64 `json:"write_bytes"`
	Errors     uint64 `json:"errors"`
	ReadLat    struct {
		P50 int64 `json:"p50_ns"`
		P99 int64 `json:"p99_ns"`
	} `json:"read_latency"`
	WriteLat struct {
		P50 int64 `json:"p50_ns"`
		P99 int64 `json:"p99_ns"`
	} `json:"write_latency"`
}

// swapfsStatus is the part of "swapfs status --json MOUNTPOINT" the bench reads.
type swapfsStatus struct {
	Pid  int `json:"pid"`
	Swap *struct {
		IO swapfsIO `json:"io"`
	} `json:"swap"`
}

func parseSwapfsStatus(data []byte) (swapfsStatus, error) {
	var st swapfsStatus
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("swapfs status --json: %w", err)
	}
	return st, nil
}

func (b *bench) swapfsStatus(ctx context.Context, m *swapfsMount) (swapfsStatus, error) {
	out, err := runCmd(ctx, 30*time.Second, b.env, b.bins.swapfs, "status", "--json", m.dir)
	if err != nil {
		return swapfsStatus{}, err
	}
	return parseSwapfsStatus([]byte(out))
}

// fuseDaemon is a FUSE daemon the bench runs in the foreground and mounts on dir.
type fuseDaemon struct {
	name, dir string
	cmd       *exec.Cmd
	exited    chan struct{}
}

// startFuseDaemon runs bin with args, logging to the workdir's log/LOGNAME, and waits until
// dir is mounted with type mountType; the teardown unmounts it.
func (b *bench) startFuseDaemon(name, logName, mountType, dir, bin string, args ...string) (*fuseDaemon, error) {
	d := &fuseDaemon{name: name, dir: dir, exited: make(chan struct{})}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(b.work, "log", logName))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// Not tied to ctx: the daemon must outlive a cancelled bench until its swap is off.
	d.cmd = exec.Command(bin, args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { d.cmd.Wait(); close(d.exited) }()
	b.undo.push(name+" mount "+dir, func(ctx context.Context) error { return d.stop(ctx) })
	deadline := time.Now().Add(30 * time.Second)
	for fsType(dir) != mountType {
		select {
		case <-d.exited:
			log, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("%s exited before mounting %s%s", name, dir, tail(string(log), 600))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not mount %s in 30s", name, dir)
		}
	}
	return d, nil
}

// stop unmounts the daemon's mount and waits for it to exit; it is killed if it does not.
func (d *fuseDaemon) stop(ctx context.Context) error {
	err := unmount(ctx, d.dir)
	select {
	case <-d.exited:
		return err
	case <-time.After(unmountTimeout):
	}
	d.cmd.Process.Kill()
	<-d.exited
	return errors.Join(err, fmt.Errorf("%s (pid %d) still ran %v after the unmount; killed", d.name, d.cmd.Process.Pid, unmountTimeout))
}

// pid is the daemon's process while it runs, 0 once it has exited: the swap benchmark
// reads the daemon's CPU time and RSS through it.
func (d *fuseDaemon) pid() int {
	select {
	case <-d.exited:
		return 0
	default:
		return d.cmd.Process.Pid
	}
}

// gofuseMount is go-fuse's example/loopback over a directory of the workdir.
type gofuseMount struct {
	*fuseDaemon
	backing string
}

// mountGofuse starts the loopback daemon in the foreground (it has no daemon mode) and
// waits for the mount. It mounts with mount(2) itself (-directmountstrict: no fusermount
// here) and -allow-other, as swapfs mounts.
func (b *bench) mountGofuse() error {
	backing, dir := filepath.Join(b.work, "gofuse-backing"), filepath.Join(b.work, "gofuse-mnt")
	if err := os.MkdirAll(backing, 0o755); err != nil {
		return err
	}
	d, err := b.startFuseDaemon("go-fuse loopback", "loopback.log", "fuse.loopback", dir,
		b.bins.loopback, "-directmountstrict", "-allow-other", "-q", dir, backing)
	if err != nil {
		return err
	}
	b.gofuse = &gofuseMount{fuseDaemon: d, backing: backing}
	return nil
}

// probeGofusePassthrough tells whether go-fuse's loopback serves file I/O through FUSE
// passthrough here: since v2.6 its files offer their fd to the kernel as a backing file
// (FOPEN_PASSTHROUGH, FUSE_DEV_IOC_BACKING_OPEN), which works as root on kernels with
// CONFIG_FUSE_PASSTHROUGH (6.9+); reads and writes of an open file then go from the kernel
// straight to the backing file without the daemon. A throwaway mount with -debug shows
// whether the kernel accepted a backing file.
func (b *bench) probeGofusePassthrough(ctx context.Context) (bool, error) {
	dir := filepath.Join(b.work, "gofuse-probe")
	back, mnt := filepath.Join(dir, "backing"), filepath.Join(dir, "mnt")
	for _, d := range []string{back, mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return false, err
		}
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(back, "f"), make([]byte, 4096), 0o644); err != nil {
		return false, err
	}
	var log strings.Builder
	cmd := exec.Command(b.bins.loopback, "-directmountstrict", "-debug", mnt, back)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return false, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		unmount(ctx, mnt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for fsType(mnt) != "fuse.loopback" {
		if time.Now().After(deadline) {
			return false, errors.New("the probe mount did not come up in 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil {
		return false, err
	}
	unmount(ctx, mnt)
	<-exited
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, "BACKING_OPEN") && strings.Contains(l, "(errno 0)") {
			return true, nil
		}
	}
	return false, nil
}

// unmount unmounts dir, a mount of ours, retrying while it is busy (a loop device or a
// process still letting go). As a last resort it detaches it lazily, so the bench never
// leaves it behind; the error says so.
func unmount(ctx context.Context, dir string) error {
	if fsType(dir) == "" {
		return nil
	}
	deadline := time.Now().Add(unmountTimeout)
	var last error
	for fsType(dir) != "" {
		if time.Now().After(deadline) {
			_, lerr := runCmd(context.WithoutCancel(ctx), 30*time.Second, nil, "umount", "-l", dir)
			return errors.Join(fmt.Errorf("umount %s: still busy after %v (%v); detached it lazily", dir, unmountTimeout, last), lerr)
		}
		_, last = runCmd(context.WithoutCancel(ctx), 30*time.Second, nil, "umount", dir)
		if last != nil {
			time.Sleep(500 * time.Millisecond)
		}
	}
	return nil
}

// fsType returns the filesystem type mounted on exactly dir, "" when none is.
func fsType(dir string) string {
	mounts, err := swap.Mounts()
	if err != nil {
		return ""
	}
	m, _ := swap.MountOn(mounts, dir)
	return m.FSType
}

// waitExit waits up to d for pid, a process whose command line holds name, to exit.
func waitExit(pid int, name string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmdline), name) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// swapSystem is one way to give the kernel swap: set up once, then turned on before each
// run and off after it, so only one bench area is active at a time.
type swapSystem struct {
	name    string
	prepare func(ctx context.Context) error
	// on activates the area and returns its name as /proc/swaps shows it; the teardown is
	// on the undo stack until off runs.
	on     func(ctx context.Context) (string, error)
	daemon func() int // the FUSE daemon serving the area, 0 when none
	// backing are the files on the host's ext4 that finally hold the area's pages (and,
	// for swapfs, its metadata): the bench drops their page cache before a run and
	// measures it after.
	backing []string
}

// swapSystems lists the references and swapfs, in the order each round runs them.
func (b *bench) swapSystems() []swapSystem {
	native := filepath.Join(b.work, "native.swap")
	loopImg := filepath.Join(b.work, "loop-ext4.img")
	none := func() int { return 0 }
	var systems []swapSystem
	systems = append(systems,
		swapSystem{
			name:    "native",
			prepare: func(ctx context.Context) error { return b.makeSwapFile(ctx, native) },
			on: func(ctx context.Context) (string, error) {
				b.activeSwap = b.undo.push("swap on "+native, func(ctx context.Context) error { return swapoffIfActive(ctx, native) })
				if _, err := runCmd(ctx, time.Minute, nil, "swapon", "-p", strconv.Itoa(swapPriority), native); err != nil {
					b.swapOff(ctx)
					return "", err
				}
				return native, nil
			},
			daemon:  none,
			backing: []string{native},
		},
		swapSystem{
			name:    "loop-ext4",
			prepare: func(ctx context.Context) error { return b.makeSwapFile(ctx, loopImg) },
			on:      func(ctx context.Context) (string, error) { return b.swaponLoop(ctx, loopImg) },
			daemon:  none,
			backing: []string{loopImg},
		})
	if b.gofuse != nil {
		f := filepath.Join(b.gofuse.dir, "swapfile")
		systems = append(systems, swapSystem{
			name:    "gofuse-loopback",
			prepare: func(ctx context.Context) error { return b.makeSwapFile(ctx, f) },
			on:      func(ctx context.Context) (string, error) { return b.swaponLoop(ctx, f) },
			daemon:  b.gofuse.pid,
			backing: []string{filepath.Join(b.gofuse.backing, "swapfile")},
		})
	}
	if b.swapfs != nil {
		f := filepath.Join(b.swapfs.dir, "swapfile")
		systems = append(systems, swapSystem{
			name: "swapfs",
			prepare: func(ctx context.Context) error {
				_, err := runCmd(ctx, 10*time.Minute, b.env, b.bins.swapfs, "mkswapfile", "--size", fmt.Sprintf("%dM", b.sz.swapArea>>20), f)
				return err
			},
			on:      func(ctx context.Context) (string, error) { return b.swaponSwapfs(ctx, f) },
			daemon:  func() int { return b.swapfs.pid },
			backing: []string{filepath.Join(b.swapfs.store, "data"), filepath.Join(b.swapfs.store, "meta.db")},
		})
	}
	return systems
}

// makeSwapFile writes a swap area into path as swapon(8) wants a swapfile: every block
// written (no holes, no unwritten extents), mode 0600, then mkswap.
func (b *bench) makeSwapFile(ctx context.Context, path string) error {
	if _, err := runCmd(ctx, 10*time.Minute, nil, "dd", "if=/dev/zero", "of="+path, "bs=1M",
		fmt.Sprintf("count=%d", b.sz.swapArea>>20), "conv=fsync", "status=none"); err != nil {
		return err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return err
	}
	_, err := runCmd(ctx, time.Minute, nil, "mkswap", path)
	return err
}

// swaponLoop attaches a loop device with direct I/O and 4 KiB sectors (what swapfs's own
// loop devices use) to backing and swaps on it.
func (b *bench) swaponLoop(ctx context.Context, backing string) (string, error) {
	out, err := runCmd(ctx, time.Minute, nil, "losetup", "--direct-io=on", "--sector-size", "4096", "-f", "--show", backing)
	dev := strings.TrimSpace(out)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(dev, "/dev/loop") {
		return "", fmt.Errorf("losetup --show printed %q, not a loop device", dev)
	}
	b.activeSwap = b.undo.push("swap on "+dev, func(ctx context.Context) error { return detachLoopSwap(ctx, dev, backing) })
	if dio, _ := os.ReadFile(fmt.Sprintf("/sys/block/%s/loop/dio", filepath.Base(dev))); strings.TrimSpace(string(dio)) != "1" {
		b.note(fmt.Sprintf("%s on %s: the loop device runs without direct I/O (losetup --direct-io=on was not honoured; loop/dio=%q)", dev, backing, strings.TrimSpace(string(dio))))
	}
	if _, err := runCmd(ctx, time.Minute, nil, "swapon", "-p", strconv.Itoa(swapPriority), dev); err != nil {
		b.swapOff(ctx)
		return "", err
	}
	return dev, nil
}

// swaponSwapfs is "swapfs swapon -p 100 FILE", which prints the loop device it made.
func (b *bench) swaponSwapfs(ctx context.Context, file string) (string, error) {
	var dev string
	b.activeSwap = b.undo.push("swapfs swap on "+file, func(ctx context.Context) error {
		_, err := runCmd(ctx, swapoffTimeout, b.env, b.bins.swapfs, "swapoff", file)
		if err != nil && dev != "" {
			// Whatever the command managed, make sure the device is off and gone.
			if ferr := detachLoopSwap(ctx, dev, file); ferr == nil {
				return nil
			}
		}
		if err != nil && strings.Contains(err.Error(), "not attached to any loop device") {
			return nil
		}
		return err
	})
	out, err := runCmd(ctx, 2*time.Minute, b.env, b.bins.swapfs, "swapon", "-p", strconv.Itoa(swapPriority), file)
	if err != nil {
		b.swapOff(ctx)
		return "", err
	}
	dev = strings.TrimSpace(out)
	if !strings.HasPrefix(dev, "/dev/loop") {
		b.swapOff(ctx)
		return "", fmt.Errorf("swapfs swapon printed %q, not a loop device", dev)
	}
	return dev, nil
}

// swapOff turns off the active bench swap area (and detaches its loop device).
func (b *bench) swapOff(ctx context.Context) error {
	it := b.activeSwap
	b.activeSwap = nil
	if it == nil {
		return nil
	}
	return b.undo.run(context.WithoutCancel(ctx), it)
}

// swapoffIfActive turns off swap area name if /proc/swaps lists it, retrying a few times
// (a swapoff that finds no memory for the pages coming back fails and can be retried).
func swapoffIfActive(ctx context.Context, name string) error {
	var err error
	for try := 0; try < 3; try++ {
		if _, on := swap.ActiveSwapNamed(name); !on {
			return nil
		}
		if _, err = runCmd(ctx, swapoffTimeout, nil, "swapoff", name); err == nil {
			return nil
		}
		time.Sleep(time.Second)
	}
	if _, on := swap.ActiveSwapNamed(name); !on {
		return nil
	}
	return err
}

// detachLoopSwap turns dev off as swap and detaches it, if it is still the loop device of
// backing: a device someone else attached since is left alone.
func detachLoopSwap(ctx context.Context, dev, backing string) error {
	if err := swapoffIfActive(ctx, dev); err != nil {
		return err // a device still in use as swap cannot be detached
	}
	deadline := time.Now().Add(loopDetachWait)
	var last error
	for loopBacking(dev) == backing {
		// losetup -d fails with EBUSY for a moment after swapoff releases the device.
		// On a device still open elsewhere LOOP_CLR_FD only marks it for autoclear and
		// succeeds: keep waiting for the backing file to go either way.
		_, last = runCmd(ctx, 30*time.Second, nil, "losetup", "-d", dev)
		if time.Now().After(deadline) {
			return fmt.Errorf("losetup -d %s: still attached to %s after %v (%v)", dev, backing, loopDetachWait, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// loopBacking returns the file behind loop device dev, "" when it has none.
func loopBacking(dev string) string {
	b, err := os.ReadFile(fmt.Sprintf("/sys/block/%s/loop/backing_file", filepath.Base(dev)))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
}
