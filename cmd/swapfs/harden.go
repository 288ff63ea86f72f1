package main

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/swap"
)

// The daemon may serve an active swapfile at any moment, and then the kernel's memory reclaim
// depends on it: a page of the daemon that is swapped out, or an allocation of the daemon
// that waits for reclaim to write swap, can wait on the daemon itself. The protections below
// are those a userspace block device server takes (see prctl(2), PR_SET_IO_FLUSHER: "for
// example, NBD, FUSE ... or iSCSI"). Each one that cannot be had is a warning, not a failure:
// the filesystem works without them, and a swapfile is only one of its uses.

// envIOFlusherReexec marks the daemon started again by itself after PR_SET_IO_FLUSHER, so that
// it verifies instead of starting a third time.
const envIOFlusherReexec = "SWAPFS_IO_FLUSHER_REEXEC"

// Task flags that PR_SET_IO_FLUSHER sets, as /proc/PID/task/TID/stat shows them (field 9);
// include/linux/sched.h, unchanged through 6.x, and kernel/sys.c PR_IO_FLUSHER.
const (
	pfMemallocNoIO  = 0x00080000
	pfLocalThrottle = 0x00100000
	pfIOFlusher     = pfMemallocNoIO | pfLocalThrottle
)

// The GC runs with GOGC=off and a memory limit (debug.SetMemoryLimit): the heap then fills
// up to the limit and stays there, neither growing past it (the GC works harder instead) nor
// shrinking (the scavenger only returns memory above 95% of the limit). That flat heap is
// what a swap server needs: a page it must allocate while it serves swap-out may wait for
// the very swap-out it serves. With GOGC=100 the scavenger would return everything above
// about twice the live heap; madvise(MADV_DONTNEED) fails with EINVAL on locked pages
// (mm/madvise.c), so the runtime falls back to mapping over them, which really frees them. A ballast (a big live
// object) was the old way to raise the GC's target; the memory limit states it directly.
//
// memoryLimit covers the runtime's own memory and a few dozen FUSE requests in flight, each
// of which holds a 1 MiB buffer. A storm of more (the kernel sends up to 128 background
// requests) makes the GC run more, up to the runtime's 50% CPU cap, and the heap then grows
// past the limit as it must: swap served slowly rather than memory locked for it forever.
const memoryLimit = 64 << 20

// pregrowTarget is what the runtime is grown to before serving: the heap the daemon would
// reach anyway, reached now while memory is easy to get, and below the point (95% of the
// limit) where the scavenger starts returning memory.
const pregrowTarget = memoryLimit * 3 / 4

// oomScoreAdjMin is what oom_score_adj is set to: the OOM killer never picks the daemon, as
// killing it would fail every swap-in of the swap it serves (proc(5)).
const oomScoreAdjMin = -1000

// ioFlusherState is what became of PR_SET_IO_FLUSHER, found out before anything else runs.
type ioFlusherState struct {
	set      bool
	refused  bool   // by the kernel, when asked
	err      string // why it is not set, for the log and for status
	reexeced bool   // this process is the daemon started again with the flag
}

// execFunc is syscall.Exec; tests replace it.
type execFunc func(argv0 string, argv []string, envv []string) error

// ensureIOFlusher makes every thread of the daemon an IO_FLUSHER: allocations then never wait
// for I/O reclaim (PF_MEMALLOC_NOIO) and writeback throttling only looks at the device the
// daemon writes to (PF_LOCAL_THROTTLE). The flag belongs to a thread and is inherited by the
// threads it clones and kept across execve, but the Go runtime already runs threads it will
// not clone from: so the flag is set on this thread and the process then executes itself
// again from it, and every thread of the new image descends from a flagged one.
//
// It must run before anything that must not happen twice (opening the store, mounting) and
// before the ready descriptor is taken over. On a successful exec it does not return.
func ensureIOFlusher(exec execFunc) ioFlusherState {
	if os.Getenv(envIOFlusherReexec) != "" {
		os.Unsetenv(envIOFlusherReexec) // not for anything the daemon starts
		return verifyIOFlusher(true)
	}
	if st := verifyIOFlusher(false); st.set {
		return st // inherited from whoever started us
	}
	runtime.LockOSThread()
	// Unlocked only on failure: after a successful exec nothing of this image is left.
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_IO_FLUSHER, 1, 0, 0, 0); err != nil {
		return ioFlusherState{refused: true, err: ioFlusherRefused(err)}
	}
	if err := keepReadyFD(); err != nil {
		unix.Prctl(unix.PR_SET_IO_FLUSHER, 0, 0, 0, 0)
		return ioFlusherState{err: fmt.Sprintf("set, but cannot start the daemon again with it: %v", err)}
	}
	env := append(os.Environ(), envIOFlusherReexec+"=1")
	err := exec("/proc/self/exe", os.Args, env)
	// Still here: the flag is on this one thread only, which the runtime may reuse for any
	// goroutine; take it off again rather than leave it on a random part of the daemon.
	unix.Prctl(unix.PR_SET_IO_FLUSHER, 0, 0, 0, 0)
	return ioFlusherState{err: fmt.Sprintf("set, but starting the daemon again with it (exec /proc/self/exe) failed: %v", err)}
}

// ioFlusherRefused explains a refused PR_SET_IO_FLUSHER.
func ioFlusherRefused(err error) string {
	switch {
	case errors.Is(err, unix.EPERM):
		return "EPERM: no CAP_SYS_RESOURCE"
	case errors.Is(err, unix.EINVAL):
		return "EINVAL: the kernel does not know PR_SET_IO_FLUSHER (Linux 5.6 or later has it)"
	}
	return err.Error()
}

// keepReadyFD keeps the pipe to the starting process open across the exec: exec.Cmd hands it
// over without close-on-exec, but nothing guarantees it stayed so.
func keepReadyFD() error {
	v := os.Getenv(envReadyFD)
	if v == "" {
		return nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil // reporterFromEnv ignores it too
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
		return fmt.Errorf("clear close-on-exec on the ready pipe (fd %d): %w", fd, err)
	}
	return nil
}

// verifyIOFlusher checks that every thread carries the flags. After the exec anything less is
// an error worth reporting: the kernel did not keep what it documents.
func verifyIOFlusher(reexeced bool) ioFlusherState {
	st := ioFlusherState{reexeced: reexeced}
	total, flagged, err := threadFlags(pfIOFlusher)
	switch {
	case err != nil:
		st.err = fmt.Sprintf("cannot verify: %v", err)
	case total > 0 && flagged == total:
		st.set = true
	case reexeced:
		st.err = fmt.Sprintf("set and started again, but only %d of %d threads carry it", flagged, total)
	default:
		st.err = "not set"
	}
	return st
}

// threadFlags counts this process's threads, and those whose task flags include all of want.
func threadFlags(want uint64) (total, flagged int, err error) {
	tasks, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil {
		return 0, 0, err
	}
	for _, path := range tasks {
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread exited
		}
		if err != nil {
			return 0, 0, err
		}
		flags, err := statFlags(string(b))
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", path, err)
		}
		total++
		if flags&want == want {
			flagged++
		}
	}
	return total, flagged, nil
}

// statFlags returns field 9, flags, of a /proc/PID/stat line (proc(5)). The command name,
// field 2, may hold spaces and parentheses; the fields after it start after the last ')'.
func statFlags(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no ')' after the command name")
	}
	fields := strings.Fields(stat[i+1:])
	// fields[0] is field 3 (state), so field 9 is fields[6].
	if len(fields) < 7 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 7", len(fields))
	}
	return strconv.ParseUint(fields[6], 10, 64)
}

// hardening records what protection the daemon got, for the log and "swapfs status".
type hardening struct {
	Mlocked      bool
	MlockErr     string
	OOMScoreAdj  int
	OOMErr       string
	IOFlusher    bool
	IOFlusherErr string
	GC           string
	// VolumeRisk says why swap writes to the data volume's storage are unsafe ("" when they
	// are not); VolumeErr why that could not be told.
	VolumeRisk, VolumeErr string
}

// checkVolume looks at the storage under the data volume, once the store is open, and says
// loudly when swap writes there could need memory or allocate.
func (h *hardening) checkVolume(path string, logger *slog.Logger) {
	risk, err := swap.VolumeRisk(path)
	switch {
	case err != nil:
		h.VolumeErr = err.Error()
		logger.Warn("cannot tell whether the data volume's storage can take swap writes", "err", err)
	case risk != "":
		h.VolumeRisk = risk
		logger.Warn("swapfiles on this mount are at risk under memory pressure: "+risk, "volume", path)
	}
}

// harden takes what protection it can before the daemon serves: it grows the heap and tunes
// the GC, locks memory and shields the daemon from the OOM killer, and logs each protection
// it could not have, once.
func harden(logger *slog.Logger, fl ioFlusherState) *hardening {
	h := &hardening{IOFlusher: fl.set, IOFlusherErr: fl.err}
	// The GC is set first, so that the scavenger leaves the reserve alone.
	gogc, limit := tuneGC()
	reserve := pregrowHeap(min(pregrowTarget, limit*3/4))
	if err := unix.Mlockall(mlockallFlags); err != nil {
		h.MlockErr = mlockRefused(err)
		logger.Warn("mlockall refused: the daemon's memory can be swapped out, and a swap-in "+
			"that needs the daemon would wait on itself", "err", h.MlockErr)
	} else {
		h.Mlocked = true
		if err := populateFileMappings(); err != nil {
			logger.Warn("mlockall: some of the program's code could not be loaded and locked now; "+
				"it will be locked when first run", "err", err)
		}
	}
	// Freed only now: the pages are locked, so the runtime keeps them for the heap.
	runtime.KeepAlive(reserve)
	runtime.GC()
	h.GC = describeGC(gogc, limit)
	h.OOMScoreAdj, h.OOMErr = setOOMScoreAdj(oomScoreAdjMin)
	if h.OOMErr != "" {
		logger.Warn("oom_score_adj not lowered: the OOM killer may pick the daemon, and every "+
			"swap-in from its swapfiles then fails", "want", oomScoreAdjMin, "have", h.OOMScoreAdj, "err", h.OOMErr)
	}
	logIOFlusher(logger, fl)
	logger.Info("daemon hardened", "mlocked", h.Mlocked, "oom_score_adj", h.OOMScoreAdj,
		"io_flusher", h.IOFlusher, "gc", h.GC)
	return h
}

// mlockallFlags lock every page the daemon uses, now and later, as soon as it is faulted in
// (mlock(2), MCL_ONFAULT). Without MCL_ONFAULT the kernel would also fault in and lock what
// the daemon never touches: each thread's 8 MiB stack (the Go runtime runs on pthreads here,
// since go-fuse pulls in cgo), the runtime's 32 MiB DRBG buffer, the whole of meta.db once
// bbolt maps it — hundreds of MiB held on a machine short enough of memory to swap. A page
// never touched cannot be swapped out, so nothing is lost for the deadlock this prevents: a
// page of the daemon swapped out and needed to serve swap-in. The heap reserve is touched
// before, and the program's code is faulted in right after (populateFileMappings), as code
// first run under memory pressure would otherwise be read in then.
const mlockallFlags = unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT

// populateFileMappings faults in and locks the file mappings there are now — the executable
// and the C libraries cgo loads; meta.db is not mapped yet.
func populateFileMappings() error {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return err
	}
	var errs []error
	for _, line := range strings.Split(string(maps), "\n") {
		// "start-end perms offset dev inode path" (proc(5)); a path is a file mapping.
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasPrefix(f[5], "/") || f[1] == "---p" || f[1] == "---s" {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil || end <= start {
			continue
		}
		// A raw mlock: the range is an address from the kernel, not Go memory.
		if _, _, e := unix.Syscall(unix.SYS_MLOCK, uintptr(start), uintptr(end-start), 0); e != 0 {
			errs = append(errs, fmt.Errorf("mlock %s (%s): %w", f[0], f[5], e))
		}
	}
	return errors.Join(errs...)
}

// logIOFlusher says, once, what became of PR_SET_IO_FLUSHER.
func logIOFlusher(logger *slog.Logger, fl ioFlusherState) {
	if fl.set {
		logger.Info("PR_SET_IO_FLUSHER set on every thread", "started_again", fl.reexeced)
		return
	}
	what := "not in effect"
	if fl.refused {
		what = "refused"
	}
	logger.Warn(fmt.Sprintf("PR_SET_IO_FLUSHER %s (%s); swap writeback through this daemon may "+
		"deadlock under extreme memory pressure. Give the daemon CAP_SYS_RESOURCE to have it", what, fl.err))
}

// pregrowHeap allocates what the runtime lacks to hold target bytes and touches each page,
// so the runtime maps it now and the pages are resident. The caller frees it once mlockall
// has locked them; it stays in the heap, free for reuse.
func pregrowHeap(target int64) []byte {
	n := target - int64(runtimeTotal())
	if n <= 0 {
		return nil
	}
	b := make([]byte, n)
	for i := 0; i < len(b); i += os.Getpagesize() {
		b[i] = 1
	}
	return b
}

// runtimeTotal is all the memory the Go runtime has mapped and not returned.
func runtimeTotal() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}

// tuneGC turns GOGC off and sets the memory limit, each unless the administrator chose it
// (GOGC, GOMEMLIMIT in the daemon's environment), and returns what is in effect.
func tuneGC() (gogc int, limit int64) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(-1)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	gogc = debug.SetGCPercent(-1) // reads it, and puts it back
	debug.SetGCPercent(gogc)
	return gogc, debug.SetMemoryLimit(-1)
}

func describeGC(gogc int, limit int64) string {
	g := "GOGC=off"
	if gogc >= 0 {
		g = fmt.Sprintf("GOGC=%d (from the environment; the heap is not kept flat)", gogc)
	}
	return fmt.Sprintf("%s, memory limit %s, heap pre-grown to %s", g, humanBytes(limit), humanBytes(runtimeTotal()))
}

// mlockRefused explains a refused mlockall.
func mlockRefused(err error) string {
	switch {
	case errors.Is(err, unix.EPERM):
		return "EPERM: no CAP_IPC_LOCK"
	case errors.Is(err, unix.ENOMEM):
		return "ENOMEM: RLIMIT_MEMLOCK is too small and there is no CAP_IPC_LOCK (LimitMEMLOCK=infinity in a systemd unit)"
	}
	return err.Error()
}

// oomScoreAdjPath is per process; tests point it elsewhere only through a child process.
const oomScoreAdjPath = "/proc/self/oom_score_adj"

// setOOMScoreAdj writes v to oom_score_adj and returns the value in effect afterwards, with
// why it is not v. Lowering it below the lowest value the process ever had needs
// CAP_SYS_RESOURCE (fs/proc/base.c, __set_oom_adj).
func setOOMScoreAdj(v int) (int, string) {
	werr := os.WriteFile(oomScoreAdjPath, []byte(strconv.Itoa(v)), 0)
	now, rerr := readOOMScoreAdj()
	switch {
	case rerr != nil:
		return now, rerr.Error()
	case werr == nil && now == v:
		return now, ""
	case errors.Is(werr, syscall.EACCES):
		return now, "EACCES: lowering oom_score_adj needs CAP_SYS_RESOURCE"
	case werr != nil:
		return now, werr.Error()
	}
	return now, fmt.Sprintf("wrote %d but it reads %d", v, now)
}

func readOOMScoreAdj() (int, error) {
	b, err := os.ReadFile(oomScoreAdjPath)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", oomScoreAdjPath, err)
	}
	return v, nil
}

// hardeningReport is the hardening as "swapfs status" shows it: what was set at start, and
// the memory and threads now.
type hardeningReport struct {
	Mlocked      bool   `json:"mlocked"`
	MlockErr     string `json:"mlock_error,omitempty"`
	OOMScoreAdj  int    `json:"oom_score_adj"` // read now: an admin may have changed it (choom)
	OOMErr       string `json:"oom_score_adj_error,omitempty"`
	IOFlusher    bool   `json:"io_flusher"`
	IOFlusherErr string `json:"io_flusher_error,omitempty"`
	GC           string `json:"gc"`
	VolumeRisk   string `json:"volume_risk,omitempty"`
	VolumeErr    string `json:"volume_error,omitempty"`

	RSSBytes int64 `json:"rss_bytes"`
	// LockedBytes is what is resident and locked (smaps_rollup "Locked"); VmLckBytes is the
	// size of the locked mappings, which counts pages never faulted in (MCL_ONFAULT) and the
	// runtime's reserved address space.
	LockedBytes      int64  `json:"locked_bytes"`
	VmLckBytes       int64  `json:"vmlck_bytes"`
	HeapBytes        uint64 `json:"heap_bytes"` // live and not yet collected objects
	RuntimeBytes     uint64 `json:"runtime_bytes"`
	Threads          int    `json:"threads"`
	IOFlusherThreads int    `json:"io_flusher_threads"`
	LiveErr          string `json:"live_error,omitempty"`
}

// report reads the live values; a value it cannot read is named in LiveErr.
func (h *hardening) report() hardeningReport {
	r := hardeningReport{Mlocked: h.Mlocked, MlockErr: h.MlockErr, OOMScoreAdj: h.OOMScoreAdj,
		OOMErr: h.OOMErr, IOFlusher: h.IOFlusher, IOFlusherErr: h.IOFlusherErr, GC: h.GC,
		VolumeRisk: h.VolumeRisk, VolumeErr: h.VolumeErr}
	var errs []string
	if v, err := readOOMScoreAdj(); err == nil {
		r.OOMScoreAdj = v
	} else {
		errs = append(errs, err.Error())
	}
	if st, err := procStatus("/proc/self/status"); err == nil {
		r.RSSBytes, r.VmLckBytes = st["VmRSS"], st["VmLck"]
	} else {
		errs = append(errs, err.Error())
	}
	if st, err := procStatus("/proc/self/smaps_rollup"); err == nil {
		r.LockedBytes = st["Locked"]
	} else {
		errs = append(errs, err.Error())
	}
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}}
	metrics.Read(samples)
	if samples[0].Value.Kind() == metrics.KindUint64 {
		r.HeapBytes = samples[0].Value.Uint64()
	}
	if samples[1].Value.Kind() == metrics.KindUint64 {
		r.RuntimeBytes = samples[1].Value.Uint64()
	}
	if total, flagged, err := threadFlags(pfIOFlusher); err == nil {
		r.Threads, r.IOFlusherThreads = total, flagged
	} else {
		errs = append(errs, err.Error())
	}
	r.LiveErr = strings.Join(errs, "; ")
	return r
}

// procStatus reads the "kB" lines of /proc/PID/status (VmRSS, VmLck, ...) or of
// /proc/PID/smaps_rollup (Locked, ...) in bytes.
func procStatus(path string) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(rest)
		if !ok || len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		if v, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
			out[name] = v << 10
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return out, nil
}
