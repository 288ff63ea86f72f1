package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swapfs/swapfs/swap"
	"github.com/swapfs/swapfs/swap/swaptest"
)

// Benchmark 1: swap throughput and latency. cmd/swapload fills 4× the cgroup's limit with a
// position-derived pattern, verifies and rewrites it twice and verifies it once more, in a
// memory cgroup, with the system under test as the only bench swap area.

var swapPatterns = []string{"seq", "random"}

// cgroupPrefix names the bench's cgroups, so a leftover says whose it is.
const cgroupPrefix = "swapbench-"

func swapCase(pattern string) string { return "swap-" + pattern }
func costCase(pattern string) string { return "cost-" + pattern }

// runSwapBench runs every swap system, interleaved, rounds times per access pattern.
func (b *bench) runSwapBench(ctx context.Context) {
	var systems []swapSystem
	for _, s := range b.swapSystems() {
		b.logf("swap: preparing %s (%d MiB swap area)", s.name, b.sz.swapArea>>20)
		if err := s.prepare(ctx); err != nil {
			for _, p := range swapPatterns {
				b.res.fail(swapCase(p), s.name, "set-up: "+err.Error())
			}
			b.logf("swap: %s: set-up failed: %v", s.name, err)
			continue
		}
		systems = append(systems, s)
	}
	for round := 1; round <= b.cfg.rounds && ctx.Err() == nil; round++ {
		for _, p := range swapPatterns {
			for _, s := range systems {
				if ctx.Err() != nil {
					return
				}
				b.swapRun(ctx, s, p, round)
			}
		}
	}
	if b.swapfs == nil || ctx.Err() != nil {
		return
	}
	if st, err := b.swapfsStatus(ctx, b.swapfs); err == nil && st.Swap != nil {
		io := st.Swap.IO
		b.swapfsFinal = &io
	}
	for _, s := range systems {
		if s.name == subject {
			b.profileSwapfs(ctx, s)
		}
	}
}

// swapRun is one run of the workload with s as the swap area.
func (b *bench) swapRun(ctx context.Context, s swapSystem, pattern string, round int) {
	cas := swapCase(pattern)
	what := fmt.Sprintf("swap %s round %d/%d %s", pattern, round, b.cfg.rounds, s.name)
	m, cost, err := b.swapRunOnce(ctx, s, pattern, round)
	if err != nil {
		b.res.fail(cas, s.name, fmt.Sprintf("round %d: %v", round, err))
		b.logf("%s: FAILED: %v", what, err)
		return
	}
	b.res.add(cas, s.name, m)
	if cost != nil {
		b.res.add(costCase(pattern), s.name, cost)
	}
	b.logf("%s: %.1fs, swap-in %.0f MiB/s, swap-out %.0f MiB/s, fault p50 %.0fµs p99 %.0fµs, page cache %+.1f MiB",
		what, m["wall_s"], m["swapin_mib_s"], m["swapout_mib_s"], m["fault_p50_us"], m["fault_p99_us"], m["cache_growth_mib"])
}

func (b *bench) swapRunOnce(ctx context.Context, s swapSystem, pattern string, round int) (metrics, cost map[string]float64, err error) {
	dev, err := s.on(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("swap on: %w", err)
	}
	defer func() {
		if oerr := b.swapOff(ctx); oerr != nil {
			err = errors.Join(err, oerr)
		}
	}()
	if err := b.checkSwapAreas(dev); err != nil {
		return nil, nil, err
	}
	b.recordRotational(s.name, dev)
	pid := s.daemon()
	// Start from none of the area's backing file in the page cache (the set-up wrote it
	// through the cache), so what is cached after the run is what the run put there.
	for _, f := range s.backing {
		if err := dropFileCache(f); err != nil {
			return nil, nil, fmt.Errorf("drop the page cache of %s: %w", f, err)
		}
	}
	before, err := b.snapshot(ctx, pid)
	if err != nil {
		return nil, nil, err
	}
	// The cgroup goes before the area (defers run last first): swapoff under a live cgroup
	// would have nowhere to put the pages.
	cg, err := swaptest.NewCgroup(cgroupPrefix, b.sz.cgLimit)
	if err != nil {
		return nil, nil, err
	}
	cgUndo := b.undo.push("cgroup "+cg.Path, func(context.Context) error { return cg.Remove() })
	defer func() {
		if cerr := b.undo.run(ctx, cgUndo); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	smp := startSampler(dev, pid)
	rep, runErr := b.runSwapload(ctx, cg, pattern, round)
	areaPeak, rssPeak := smp.stop()
	if runErr != nil {
		return nil, nil, runErr
	}
	after, err := b.snapshot(ctx, pid)
	if err != nil {
		return nil, nil, err
	}
	backingCached, err := filesCached(s.backing)
	if err != nil {
		return nil, nil, err
	}
	if areaPeak == 0 {
		return nil, nil, fmt.Errorf("%s never held any page (/proc/swaps); the workload's pages went elsewhere: %v", dev, readSwaps())
	}
	metrics = map[string]float64{
		"wall_s":             rep.WallS,
		"swapin_mib_s":       rep.SwapinMiBs,
		"swapout_mib_s":      rep.SwapoutMiBs,
		"fault_p50_us":       rep.FaultP50us,
		"fault_p99_us":       rep.FaultP99us,
		"faults":             float64(rep.Faults),
		"cache_growth_mib":   (float64(after.cached) - float64(before.cached)) / (1 << 20),
		"area_peak_mib":      float64(areaPeak) / (1 << 20),
		"backing_cached_mib": float64(backingCached) / (1 << 20),
	}
	if pid == 0 {
		return metrics, nil, nil
	}
	return metrics, b.daemonCost(before, after, rssPeak, rep), nil
}

// daemonCost is what the FUSE daemon spent during one run: CPU, the largest resident set
// seen, and for swapfs the size of the requests it served.
func (b *bench) daemonCost(before, after snapshot, rssPeak int64, rep swaptest.Report) map[string]float64 {
	moved := float64(after.pswpin+after.pswpout-before.pswpin-before.pswpout) * 4096 / (1 << 30)
	cpu := after.cpu - before.cpu
	cost := map[string]float64{
		"cpu_s":     cpu,
		"rss_mib":   float64(rssPeak) / (1 << 20),
		"cpu_pct":   100 * cpu / rep.WallS,
		"moved_gib": moved,
		"cpu_s_gib": ratio(cpu, moved),
	}
	if after.io != nil && before.io != nil {
		reads, writes := after.io.Reads-before.io.Reads, after.io.Writes-before.io.Writes
		cost["req_reads"] = float64(reads)
		cost["req_writes"] = float64(writes)
		cost["req_read_kib"] = ratio(float64(after.io.ReadBytes-before.io.ReadBytes)/1024, float64(reads))
		cost["req_write_kib"] = ratio(float64(after.io.WriteBytes-before.io.WriteBytes)/1024, float64(writes))
		cost["req_read_p50_us"] = float64(after.io.ReadLat.P50) / 1e3
		cost["req_read_p99_us"] = float64(after.io.ReadLat.P99) / 1e3
		cost["req_write_p50_us"] = float64(after.io.WriteLat.P50) / 1e3
		cost["req_write_p99_us"] = float64(after.io.WriteLat.P99) / 1e3
		cost["req_errors"] = float64(after.io.Errors - before.io.Errors)
		cost["cpu_us_req"] = ratio(cpu*1e6, float64(reads+writes))
	}
	return cost
}

// runSwapload runs the workload in cg and returns its report; a mismatch, a timeout or a
// failure to run is an error.
func (b *bench) runSwapload(parent context.Context, cg *swaptest.Cgroup, pattern string, round int) (swaptest.Report, error) {
	ctx, cancel := context.WithTimeout(parent, b.sz.swapTimeout+time.Minute)
	defer cancel()
	// swapload's own timeout comes first, so a slow run still reports what it measured.
	cmd := cg.Command(ctx, b.bins.swapload, "-size", strconv.Itoa(b.sz.workMiB), "-rounds", "2",
		"-pattern", pattern, "-seed", strconv.Itoa(round), "-timeout", b.sz.swapTimeout.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	switch {
	case parent.Err() != nil:
		return swaptest.Report{}, fmt.Errorf("interrupted: %w", parent.Err())
	case ctx.Err() != nil:
		return swaptest.Report{}, fmt.Errorf("swapload still ran after %v; killed%s", b.sz.swapTimeout+time.Minute, tail(stderr.String(), 400))
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return swaptest.Report{}, fmt.Errorf("swapload: %w", err)
	}
	rep, perr := swaptest.ParseReport(stdout.String())
	switch {
	case perr != nil && errors.As(err, &exit) && exit.ProcessState.String() == "signal: killed":
		// Killed without a word: in a cgroup under pressure, most likely its OOM killer, which
		// strikes when no swap is left to take the pages (another machine's workload filling
		// the bench's area, which has the highest priority, can cause that).
		why := "killed by SIGKILL (not by the bench)"
		if n, oerr := cg.OOMKills(); oerr == nil && n > 0 {
			why = fmt.Sprintf("killed by the OOM killer of its cgroup (%d kill(s)): no swap left to take its pages?", n)
		}
		return rep, fmt.Errorf("swapload %s; swap areas then: %s%s", why, describeSwaps(), tail(stderr.String(), 300))
	case perr != nil:
		return rep, fmt.Errorf("swapload exit %v: %w%s", err, perr, tail(stderr.String(), 400))
	case rep.Mismatches != 0:
		return rep, fmt.Errorf("MISMATCH: %d words came back wrong: %s", rep.Mismatches, strings.Join(rep.FirstMismatches, "; "))
	case err != nil || rep.Error != "":
		return rep, fmt.Errorf("swapload exit %v: %s%s", err, rep.Error, tail(stderr.String(), 400))
	}
	return rep, nil
}

// describeSwaps lists the active swap areas with their use, for an error message.
func describeSwaps() string {
	var l []string
	for _, a := range readSwaps() {
		l = append(l, fmt.Sprintf("%s %d/%d MiB used, priority %d", a.Filename, a.UsedKiB>>10, a.SizeKiB>>10, a.Priority))
	}
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, "; ")
}

// checkSwapAreas makes sure dev is on with the bench's priority, and notes other areas
// that could take some of the workload's pages (or send theirs to ours).
func (b *bench) checkSwapAreas(dev string) error {
	var others []string
	found := false
	for _, a := range readSwaps() {
		if a.Filename == dev {
			found = true
			if a.Priority != swapPriority {
				return fmt.Errorf("%s is swap with priority %d, not %d", dev, a.Priority, swapPriority)
			}
			continue
		}
		others = append(others, fmt.Sprintf("%s (priority %d, %d MiB used)", a.Filename, a.Priority, a.UsedKiB>>10))
	}
	if !found {
		return fmt.Errorf("%s is not in /proc/swaps after swapon", dev)
	}
	if len(others) > 0 {
		b.note("other swap areas were active during a swap run (not the bench's; their pages may share the bench's area, "+
			"which has the highest priority): ", strings.Join(others, ", "))
	}
	return nil
}

// snapshot is the machine state a run is measured between.
type snapshot struct {
	cached          uint64 // /proc/meminfo Cached, bytes
	pswpin, pswpout uint64 // /proc/vmstat, pages
	cpu             float64
	io              *swapfsIO
}

func (b *bench) snapshot(ctx context.Context, pid int) (snapshot, error) {
	var s snapshot
	mi, err := readMeminfo()
	if err != nil {
		return s, err
	}
	vm, err := readVmstat()
	if err != nil {
		return s, err
	}
	s.cached, s.pswpin, s.pswpout = mi["Cached"], vm["pswpin"], vm["pswpout"]
	if pid == 0 {
		return s, nil
	}
	if s.cpu, err = processCPU(pid); err != nil {
		return s, fmt.Errorf("daemon pid %d: %w", pid, err)
	}
	if b.swapfs != nil && pid == b.swapfs.pid {
		st, err := b.swapfsStatus(ctx, b.swapfs)
		if err != nil {
			return s, err
		}
		if st.Swap != nil {
			io := st.Swap.IO
			s.io = &io
		}
	}
	return s, nil
}

// sampler watches a swap area's use and a daemon's resident set every 100 ms.
type sampler struct {
	stopc, done       chan struct{}
	mu                sync.Mutex
	areaPeak, rssPeak int64
}

func startSampler(dev string, pid int) *sampler {
	s := &sampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			a, _ := swap.ActiveSwapNamed(dev)
			var rss int64
			if pid > 0 {
				rss, _ = processRSS(pid)
			}
			s.mu.Lock()
			s.areaPeak = max(s.areaPeak, a.UsedKiB<<10)
			s.rssPeak = max(s.rssPeak, rss)
			s.mu.Unlock()
			select {
			case <-s.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the peaks, in bytes.
func (s *sampler) stop() (areaPeak, rssPeak int64) {
	close(s.stopc)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.areaPeak, s.rssPeak
}

// recordRotational notes the rotational flag of the swap area dev (a loop device, or a
// swapfile on the host's disk) as swapon saw it.
func (b *bench) recordRotational(system, dev string) {
	rot, err := swap.Rotational(dev)
	v := "0"
	switch {
	case err != nil:
		v = "unknown (" + err.Error() + ")"
	case rot:
		v = "1"
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rotational == nil {
		b.rotational = map[string]string{}
	}
	b.rotational[system] = v
}
