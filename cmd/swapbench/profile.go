package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// When swapfs misses a swap target, one extra swapfs run (not counted in the tables) is made
// with perf sampling the daemon's CPU, so the analysis can say where its CPU time goes.

// worstSwapPattern returns the access pattern where swapfs's wall time is furthest above
// loop-ext4's, "" when it is not above it in either.
func (b *bench) worstSwapPattern() string {
	worst, at := "", 1.0
	for _, p := range swapPatterns {
		c := swapCase(p)
		if r := ratio(b.res.summary(c, "wall_s", subject).med, b.res.summary(c, "wall_s", "loop-ext4").med); r > at {
			worst, at = p, r
		}
	}
	return worst
}

// profileSwapfs runs the workload once more on swapfs under "perf record -p DAEMON" and
// keeps perf's flat profile (by binary and symbol) for the report.
func (b *bench) profileSwapfs(ctx context.Context, s swapSystem) {
	pattern := b.worstSwapPattern()
	if pattern == "" || b.swapfs == nil {
		return
	}
	if _, err := exec.LookPath("perf"); err != nil {
		b.note("swapfs missed a swap target, but perf is not installed: no CPU profile of the daemon")
		return
	}
	data := filepath.Join(b.work, "perf.data")
	b.logf("swap: one extra %s run on swapfs under perf record (not counted), for the analysis", pattern)
	pctx, cancel := context.WithTimeout(ctx, b.sz.swapTimeout+5*time.Minute)
	defer cancel()
	perf := command(pctx, nil, "perf", "record", "-F", "999", "-p", fmt.Sprint(b.swapfs.pid), "-o", data)
	var perfOut strings.Builder
	perf.Stdout, perf.Stderr = &perfOut, &perfOut
	if err := perf.Start(); err != nil {
		b.note("perf record: ", err.Error())
		return
	}
	time.Sleep(time.Second) // let perf attach before the load starts
	_, _, runErr := b.swapRunOnce(ctx, s, pattern, 99)
	perf.Process.Signal(syscall.SIGINT)
	perfErr := perf.Wait()
	if runErr != nil {
		b.note("the profiled extra swapfs run failed: ", runErr.Error())
	}
	// perf record ends by the SIGINT it was sent, and may exit by it too: what counts is
	// whether it wrote its data.
	if st, err := os.Stat(data); err != nil || st.Size() == 0 || !strings.Contains(perfOut.String(), "Captured and wrote") {
		b.note("perf record did not write a profile: ", fmt.Sprint(perfErr), tail(perfOut.String(), 300))
		return
	}
	report := func(sort string) (string, error) {
		return runCmd(ctx, 5*time.Minute, nil, "perf", "report", "-i", data, "--stdio", "--sort", sort, "--percent-limit", "1", "-q")
	}
	byDSO, err1 := report("dso")
	flat, err2 := report("dso,symbol")
	if err := errors.Join(err1, err2); err != nil {
		b.note("perf report: ", err.Error())
		return
	}
	b.profile.what = fmt.Sprintf("one extra swapfs run, %s access, under `perf record -F 999 -p DAEMON` (on-CPU samples, self time, "+
		"entries of at least 1%%)", pattern)
	b.profile.flat = "by binary:\n" + trimProfile(byDSO, 6) + "\n\nby symbol:\n" + trimProfile(flat, 25)
	b.profile.summary = profileSummary(byDSO, flat)
}

// trimProfile keeps the first n non-empty lines of a perf report.
func trimProfile(s string, n int) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		// perf 6.1 pads each line with empty columns shown as "-".
		f := strings.Fields(l)
		for len(f) > 0 && f[len(f)-1] == "-" {
			f = f[:len(f)-1]
		}
		if len(f) > 0 {
			f[0] = fmt.Sprintf("%7s", f[0])
		}
		out = append(out, strings.Join(f, "  "))
		if len(out) == n {
			break
		}
	}
	return strings.Join(out, "\n")
}

// profileEntry is one line of perf's flat profile.
type profileEntry struct {
	pct    float64
	dso    string
	symbol string
}

// parseProfile reads the "  12.30%  [kernel.kallsyms]  [k] iowrite16" lines of perf report.
func parseProfile(s string) []profileEntry {
	var out []profileEntry
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || !strings.HasSuffix(f[0], "%") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		e := profileEntry{pct: pct, dso: f[1]}
		if len(f) >= 4 && strings.HasPrefix(f[2], "[") {
			e.symbol = f[3]
		}
		out = append(out, e)
	}
	return out
}

// symbolMeaning says in words what a hot symbol in the daemon's profile stands for.
func symbolMeaning(sym string) string {
	switch {
	case strings.HasPrefix(sym, "finish_task_switch"), strings.HasPrefix(sym, "__schedule"), sym == "schedule":
		return "context switches (the daemon's threads sleeping and waking per request)"
	case strings.HasPrefix(sym, "iowrite16"), strings.HasPrefix(sym, "vp_notify"), strings.HasPrefix(sym, "virtqueue_notify"):
		return "virtio queue notifications (a VM exit for each I/O the daemon submits to the disk)"
	case strings.Contains(sym, "memcpy"), strings.Contains(sym, "copy_user"), strings.Contains(sym, "memmove"):
		return "copying data"
	case strings.HasPrefix(sym, "_raw_spin_unlock_irq"):
		return "interrupts re-enabled after a lock (samples taken while interrupts were off land here)"
	case strings.HasPrefix(sym, "runtime."):
		return "the Go runtime"
	case strings.HasPrefix(sym, "gup_"), strings.Contains(sym, "get_user_pages"):
		return "pinning user pages for direct I/O"
	}
	return ""
}

// profileSummary is one sentence on where the daemon's CPU went, from the profile.
func profileSummary(byDSO, flat string) string {
	var kernel float64
	for _, e := range parseProfile(byDSO) {
		if e.dso == "[kernel.kallsyms]" {
			kernel += e.pct
		}
	}
	var top []string
	for _, e := range parseProfile(flat) {
		if len(top) == 4 {
			break
		}
		if m := symbolMeaning(e.symbol); m != "" {
			top = append(top, fmt.Sprintf("%s %.0f%%: %s", e.symbol, e.pct, m))
		} else {
			top = append(top, fmt.Sprintf("%s %.0f%%", e.symbol, e.pct))
		}
	}
	if len(top) == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f%% of the swapfs daemon's CPU samples are in the kernel; the largest entries: %s.", kernel, strings.Join(top, "; "))
}
