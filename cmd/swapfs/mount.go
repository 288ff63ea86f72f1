package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/fs"
	"github.com/swapfs/swapfs/meta"
	"github.com/swapfs/swapfs/swap"
)

// mountRequest is one mount to make, however it was asked for.
type mountRequest struct {
	store      string // absolute
	mountpoint string // absolute
	opts       mountOptions
	foreground bool
	verbose    bool // print where the mount is once it is ready
}

// optionList collects -o flags; repeated ones add up, as in mount(8).
type optionList []string

func (l *optionList) String() string     { return strings.Join(*l, ",") }
func (l *optionList) Set(s string) error { *l = append(*l, s); return nil }

func mountMain(args []string) int {
	fset := newFlagSet("mount")
	foreground := fset.Bool("f", false, "stay in the foreground and log to stderr")
	debug := fset.Bool("debug", false, "same as -o debug")
	var o optionList
	fset.Var(&o, "o", "mount options, comma-separated")
	pos, err := parseInterleaved(fset, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 2 {
		fmt.Fprintf(os.Stderr, "swapfs mount: want STORE and MOUNTPOINT, got %d arguments\n%s", len(pos), usage)
		return exitUsage
	}
	req, err := newMountRequest(pos[0], pos[1], o.String(), false)
	if err != nil {
		fmt.Fprintf(os.Stderr, "swapfs mount: %v\n", err)
		return exitMountFail
	}
	req.opts.debug = req.opts.debug || *debug
	req.foreground = *foreground
	req.verbose = true
	return mountRun(req)
}

// helperMain takes mount(8)'s helper argv: SRC DIR [-sfnv] [-o OPTS] [-t TYPE] [-N NS]; see
// mount(8), "EXTERNAL HELPERS".
func helperMain(name string, args []string) int {
	fset := newFlagSet(name)
	sloppy := fset.Bool("s", false, "ignore unknown mount options")
	fake := fset.Bool("f", false, "do everything but mount (mount -f)")
	fset.Bool("n", false, "do not write /etc/mtab (swapfs never does)")
	verbose := fset.Bool("v", false, "say what is done")
	var o optionList
	fset.Var(&o, "o", "mount options, comma-separated")
	typ := fset.String("t", "", "filesystem type")
	ns := fset.String("N", "", "mount namespace")
	pos, err := parseInterleaved(fset, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 2 {
		fmt.Fprintf(os.Stderr, "%s: want SOURCE and DIRECTORY, got %d arguments\n%s", name, len(pos), usage)
		return exitUsage
	}
	if *typ != "" && *typ != "swapfs" && *typ != fsType {
		fmt.Fprintf(os.Stderr, "%s: filesystem type %q is not swapfs\n", name, *typ)
		return exitUsage
	}
	if *ns != "" {
		fmt.Fprintf(os.Stderr, "%s: mounting in another namespace (-N) is not supported\n", name)
		return exitUsage
	}
	req, err := newMountRequest(pos[0], pos[1], o.String(), *sloppy)
	if err != nil {
		// mount(8) reports what its helper returns: an option it cannot take is a failed
		// mount (32), as a kernel's EINVAL is, not a usage error.
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return exitMountFail
	}
	req.verbose = *verbose
	if *fake {
		if *verbose {
			fmt.Printf("%s: would mount %s on %s with -o %s\n", name, req.store, req.mountpoint, req.opts)
		}
		return exitOK
	}
	return mountRun(req)
}

func newMountRequest(store, mountpoint, opts string, sloppy bool) (mountRequest, error) {
	var req mountRequest
	var err error
	if req.store, err = absPath("STORE", store); err != nil {
		return req, err
	}
	if req.mountpoint, err = absPath("MOUNTPOINT", mountpoint); err != nil {
		return req, err
	}
	// As the kernel resolves it, and the mount table shows it: the control socket and the
	// log are named after it, and clients find them through the mount table.
	if resolved, err := filepath.EvalSymlinks(req.mountpoint); err == nil {
		req.mountpoint = resolved
	}
	req.opts, err = parseMountOptions(opts, sloppy)
	return req, err
}

func mountRun(req mountRequest) int {
	if req.foreground {
		// First of all: it may start this process again, which must find the ready pipe
		// and its environment as they came.
		fl := ensureIOFlusher(syscall.Exec)
		return serve(req, reporterFromEnv(), fl)
	}
	return startDaemon(req)
}

// setProcs raises GOMAXPROCS, unless the environment sets it. Nearly every request blocks
// its goroutine's thread in a pread or pwrite of the data volume, and a P stays with a
// thread in a system call until sysmon takes it back, which can take up to 10 ms once sysmon
// has backed off. With one P per CPU, a few requests in the disk then stall every other
// request, including the reads of /dev/fuse that take new ones: on 2 CPUs, fio at iodepth 16
// got 21k IOPS and a 19 ms p99 with 2 Ps, 46k and 2 ms with 8. Spare Ps cost a few KiB
// each; the kernel still schedules the threads on the CPUs there are. The count starts from
// the runtime's own default, which follows a cgroup's CPU limit, not from the machine's
// CPUs; setting it ends the runtime's later updates of that default.
func setProcs() (int, bool) {
	if os.Getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0), false
	}
	want := min(max(8, 4*runtime.GOMAXPROCS(0)), 64)
	if runtime.GOMAXPROCS(0) >= want {
		return runtime.GOMAXPROCS(0), false
	}
	runtime.GOMAXPROCS(want)
	return want, true
}

// serve mounts and serves until the filesystem is unmounted: by umount(8), or by SIGTERM or
// SIGINT. It reports progress to rep, which the starting process (or the terminal) reads.
func serve(req mountRequest, rep *reporter, fl ioFlusherState) int {
	started := time.Now()
	// Caught from the start, and never let go: a SIGTERM must not kill the daemon while it
	// makes a store, mounts, or closes the store after the unmount (umount(2) returns before
	// that close has committed the last changes). One that comes before the mount is up is
	// acted on once it is.
	signals := catchSignals()
	logger := newLogger(req.opts.debug)
	logger.Info("swapfs starting", "store", req.store, "mountpoint", req.mountpoint,
		"options", req.opts.String(), "pid", os.Getpid(), "log", logDestination())
	// Every mount, before it serves: any file of it may become active swap later.
	hard := harden(logger, fl)
	if err := swap.CheckPageSize(); err != nil {
		logger.Warn("no swapfiles on this mount: " + err.Error())
	}
	if procs, set := setProcs(); set {
		logger.Info("GOMAXPROCS raised for blocking I/O", "gomaxprocs", procs, "cpus", runtime.NumCPU())
	}
	if path := os.Getenv(envCPUProfile); path != "" {
		stopProfile := startCPUProfile(path, logger)
		defer stopProfile()
	}
	store, err := openStore(req, logger, rep)
	if err != nil {
		logger.Error("mount failed", "err", err)
		rep.fail(err)
		return exitMountFail
	}
	hard.checkVolume(store.DataVolume(), logger)
	server, err := fs.Mount(store, req.mountpoint, fs.Options{Debug: req.opts.debug, Logger: logger,
		FsName: req.store, ReadOnly: req.opts.readOnly, KernelOptions: req.opts.kernel})
	if err != nil {
		err = fmt.Errorf("mount %s on %s: %w", req.store, req.mountpoint, err)
		logger.Error("mount failed", "err", err)
		if cerr := store.Close(); cerr != nil {
			logger.Error("close store", "err", cerr)
		}
		rep.fail(err)
		return exitMountFail
	}
	logger.Info("mounted", "store", req.store, "mountpoint", req.mountpoint, "uuid", store.UUID())
	// The socket is up before the parent hears "ready": swapon right after mount needs it.
	sock := controlSocketPath(req.mountpoint)
	ctl, err := startControl(sock, controlResponse{Pid: os.Getpid(), Store: req.store, Mountpoint: req.mountpoint},
		started, server, hard, logger)
	if err != nil {
		logger.Error("no control socket: 'swapfs status' and 'swapfs swapon' cannot reach this daemon", "err", err)
	} else {
		logger.Info("control socket ready", "socket", sock)
	}
	// The handler goes in before the parent hears "ready": from then on a SIGTERM must
	// unmount, not kill the daemon under a live mount.
	stop := unmountOnSignal(signals, req.mountpoint, server.ActiveSwapfiles, logger)
	if len(req.opts.swaps) > 0 {
		// Before "ready", so that mount(8) returns with the swap on, and says what failed.
		activateSwaps(req.mountpoint, req.opts.swaps, func(msg string) {
			logger.Info(msg)
			rep.info("swapfs: " + msg)
		})
	}
	rep.ready(req)
	server.Wait()
	stop()
	if ctl != nil {
		ctl.Close()
	}
	logger.Info("unmounted; closing the store", "mountpoint", req.mountpoint)
	if err := store.Close(); err != nil {
		logger.Error("closing the store failed; run 'swapfs fsck' on it", "store", req.store, "err", err)
		return exitFailure
	}
	logger.Info("store closed cleanly", "store", req.store)
	return exitOK
}

// openStore checks everything that can be checked before mounting and opens the store,
// creating it first when STORE is missing or empty.
func openStore(req mountRequest, logger *slog.Logger, rep *reporter) (*meta.Store, error) {
	st, err := os.Stat(req.mountpoint)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("mountpoint %s does not exist (create it with 'mkdir -p %s')", req.mountpoint, req.mountpoint)
	}
	if err != nil {
		return nil, fmt.Errorf("mountpoint %s: %w", req.mountpoint, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("mountpoint %s is not a directory", req.mountpoint)
	}
	if mnt, err := mountedOn(req.store); err == nil && mnt != "" {
		return nil, fmt.Errorf("store %s is %w on %s; unmount it first ('umount %s')", req.store, errInUse, mnt, mnt)
	}
	state, err := inspectStore(req.store)
	if err != nil {
		return nil, err
	}
	switch state {
	case storeForeign:
		return nil, fmt.Errorf("%s is not a swapfs store (it has no meta.db) and is not empty; "+
			"give an empty or missing directory to create a store there, or make one with 'swapfs mkfs'", req.store)
	case storeNew:
		if req.opts.readOnly {
			return nil, fmt.Errorf("no swapfs store at %s, and a read-only mount cannot create one", req.store)
		}
		size, err := defaultSize(req.store)
		if err != nil {
			return nil, err
		}
		msg, err := makeStore(req.store, meta.MkfsOptions{Size: size})
		if err != nil {
			return nil, err
		}
		logger.Info(strings.TrimPrefix(msg, "swapfs: "))
		rep.info(msg)
	}
	if err := checkNotInUse(req.store, !req.opts.readOnly); err != nil {
		return nil, err
	}
	store, err := meta.Open(req.store, meta.OpenOptions{CommitInterval: req.opts.commit,
		ReadOnly: req.opts.readOnly, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("cannot open store %s: %w", req.store, err)
	}
	return store, nil
}

// catchSignals makes SIGTERM and SIGINT arrive on the channel it returns instead of ending
// the process, until signal.Stop of the channel (the daemon never stops it).
func catchSignals() chan os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	return ch
}

// unmountOnSignal unmounts on SIGTERM or SIGINT arriving on ch; server.Wait then returns.
// A busy mount stays mounted and served: the daemon must not leave a dead mount behind. Nor
// is an unmount even tried while a swapfile is active: the kernel refuses it anyway (the
// loop device holds the file), and the reason to give is swapoff, not fuser. After stop,
// signals still arrive on ch, unheeded, until the process exits.
func unmountOnSignal(ch chan os.Signal, mountpoint string, activeSwap func() []string, logger *slog.Logger) (stop func()) {
	// The daemon has no terminal (setsid); in the foreground a hangup is not a reason to
	// leave the mount dead.
	signal.Ignore(syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case sig := <-ch:
				if active := activeSwap(); len(active) > 0 {
					logger.Warn(fmt.Sprintf("refusing to unmount: swapfile(s) %s active as swap; run "+
						"'swapfs swapoff FILE' for each first; still serving", strings.Join(active, ", ")),
						"signal", sig.String(), "mountpoint", mountpoint)
					continue
				}
				logger.Info("signal received; unmounting", "signal", sig.String(), "mountpoint", mountpoint)
				if err := unmountRetry(mountpoint); err != nil {
					logger.Warn("cannot unmount; still serving", "mountpoint", mountpoint, "err", err)
				}
			}
		}
	}()
	return func() { close(done) }
}

// unmountRetry unmounts, retrying for a second while the mount is busy: the kernel may still
// be releasing files that were just closed.
func unmountRetry(mountpoint string) error {
	var err error
	delay := 10 * time.Millisecond
	for try := 0; try < 8; try++ {
		err = unix.Unmount(mountpoint, 0)
		if err == nil || errors.Is(err, unix.EINVAL) { // EINVAL: no longer a mount point
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(delay)
		delay *= 2
	}
	if errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("%s is busy (files open or a process inside it; see 'fuser -vm %s'): %w", mountpoint, mountpoint, err)
	}
	return err
}

// envCPUProfile names a file for a CPU profile of the daemon from mount to unmount, for
// finding where the time goes (make bench uses it).
const envCPUProfile = "SWAPFS_CPUPROFILE"

func startCPUProfile(path string, logger *slog.Logger) (stop func()) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		logger.Warn("no CPU profile", "path", path, "err", err)
		if f != nil {
			f.Close()
		}
		return func() {}
	}
	logger.Info("writing a CPU profile until unmount", "path", path)
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
