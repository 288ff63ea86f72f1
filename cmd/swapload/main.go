// Command swapload is the memory-pressure workload of the integration tests and of
// "make bench": run inside a memory-limited cgroup, it forces its own pages out to swap and
// back, and checks that every page comes back with the bytes it was last given.
//
//	swapload [-size MIB] [-rounds N] [-pattern seq|random] [-seed S] [-timeout D]
//
// It maps -size MiB of anonymous memory, fills it with round 0's pattern, then -rounds times
// verifies every page and rewrites it with the next round's pattern, and finally verifies
// once more. Each 8-byte word holds a hash of (round, word index), so a page that comes back
// zeroed, stale (an older round's value) or misplaced (another page's value) is told apart.
//
// The last line on stdout is a JSON object with the results; a human summary and any
// mismatches go to stderr. Exit status: 0 when every word matched, 1 on a mismatch, 2 on a
// usage or setup error, 3 when -timeout expired.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/swap/swaptest"
)

const (
	exitOK       = 0
	exitMismatch = 1
	exitUsage    = 2
	exitTimeout  = 3

	mib = 1 << 20
	// roundShift puts the round above any word index, so that (round, index) -> key is
	// one-to-one for buffers below 8 TiB and a wrong word can be traced to its origin.
	roundShift = 40
	indexMask  = 1<<roundShift - 1
	// maxReported is how many mismatches are described one by one.
	maxReported = 8
	// hardExitGrace is how long after -timeout the process exits even if the workload is
	// stuck in a page fault and cannot notice the timeout itself.
	hardExitGrace = 10 * time.Second
)

var errTimeout = errors.New("timeout")

func main() {
	// run stops by itself at -timeout, but only between pages: a touch that never returns
	// (a swap device that stopped answering) needs this hard stop too.
	if d, ok := timeoutArg(os.Args[1:]); ok && d > 0 {
		time.AfterFunc(d+hardExitGrace, func() {
			fmt.Fprintf(os.Stderr, "swapload: still running %v after the %v timeout (stuck in a page fault?); exiting\n", hardExitGrace, d)
			os.Exit(exitTimeout)
		})
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// timeoutArg finds -timeout in args the way run's flag set will parse it.
func timeoutArg(args []string) (time.Duration, bool) {
	cfg, err := parseFlags(args, io.Discard)
	return cfg.timeout, err == nil
}

// config is what the flags ask for.
type config struct {
	sizeMiB   int
	rounds    int
	pattern   string // "seq" or "random"
	seed      uint64
	timeout   time.Duration
	threshold time.Duration
	thp       bool
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fl := flag.NewFlagSet("swapload", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.IntVar(&c.sizeMiB, "size", 512, "MiB of anonymous memory to allocate")
	fl.IntVar(&c.rounds, "rounds", 2, "verify-and-rewrite passes between the fill and the final verify")
	fl.StringVar(&c.pattern, "pattern", "seq", "page visiting order: seq, or random (a seeded permutation)")
	fl.Uint64Var(&c.seed, "seed", 1, "seed of the random page order")
	fl.DurationVar(&c.timeout, "timeout", 10*time.Minute, "exit with status 3 after this long (0: never)")
	fl.DurationVar(&c.threshold, "fault-threshold", 20*time.Microsecond, "a timed first touch counts as a major fault only when slower than this")
	fl.BoolVar(&c.thp, "thp", false, "allow transparent huge pages (default: 4 KiB pages, so a fault is one page)")
	if err := fl.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fl.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fl.Args())
	case c.sizeMiB <= 0:
		return c, fmt.Errorf("-size %d: want a positive number of MiB", c.sizeMiB)
	case c.rounds < 0 || c.rounds > 1<<20:
		return c, fmt.Errorf("-rounds %d: want 0..%d", c.rounds, 1<<20)
	case c.pattern != "seq" && c.pattern != "random":
		return c, fmt.Errorf("-pattern %q: want seq or random", c.pattern)
	}
	return c, nil
}

// report is the JSON line on stdout, which the tests and the bench decode; its fields are
// documented there.
type report = swaptest.Report

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "swapload: %v\n", err)
		}
		return exitUsage
	}
	buf, err := newBuffer(cfg.sizeMiB*mib, cfg.thp)
	if err != nil {
		fmt.Fprintf(stderr, "swapload: %v\n", err)
		return exitUsage
	}
	defer buf.unmap()

	var stop atomic.Bool
	if cfg.timeout > 0 {
		timer := time.AfterFunc(cfg.timeout, func() { stop.Store(true) })
		defer timer.Stop()
	}
	r := &runner{buf: buf, order: pageOrder(buf.pages, cfg.pattern, cfg.seed), threshold: cfg.threshold, stop: &stop, maxRound: uint64(cfg.rounds)}
	cg := ownMemCgroup()
	inBefore, outBefore, vmErr := readVmstat()
	start := time.Now()
	err = r.all(cfg.rounds, cg)
	wall := time.Since(start)
	inAfter, outAfter, vmErr2 := readVmstat()

	rep := r.report(cfg, wall, cg)
	if vmErr == nil && vmErr2 == nil {
		rep.PswpinPages, rep.PswpoutPages = inAfter-inBefore, outAfter-outBefore
		page := float64(unix.Getpagesize())
		rep.SwapinMiBs = float64(rep.PswpinPages) * page / mib / wall.Seconds()
		rep.SwapoutMiBs = float64(rep.PswpoutPages) * page / mib / wall.Seconds()
	} else {
		fmt.Fprintf(stderr, "swapload: no swap counters: %v\n", errors.Join(vmErr, vmErr2))
	}
	code := exitOK
	switch {
	case errors.Is(err, errTimeout):
		rep.Error = fmt.Sprintf("timeout after %v (%s)", cfg.timeout, r.where)
		code = exitTimeout
	case rep.Mismatches > 0:
		code = exitMismatch
	}
	summarize(stderr, rep)
	line, _ := json.Marshal(rep)
	fmt.Fprintf(stdout, "%s\n", line)
	return code
}

// summarize writes the human-readable account of rep.
func summarize(w io.Writer, rep report) {
	fmt.Fprintf(w, "swapload: %d MiB, %s order, %d rounds: %d mismatched words in %.2fs\n",
		rep.SizeMiB, rep.Pattern, rep.Rounds, rep.Mismatches, rep.WallS)
	for _, m := range rep.FirstMismatches {
		fmt.Fprintf(w, "  mismatch: %s\n", m)
	}
	if rep.Mismatches > int64(len(rep.FirstMismatches)) {
		fmt.Fprintf(w, "  ... and %d more\n", rep.Mismatches-int64(len(rep.FirstMismatches)))
	}
	fmt.Fprintf(w, "swapload: system-wide swap-in %d pages (%.1f MiB/s), swap-out %d pages (%.1f MiB/s)\n",
		rep.PswpinPages, rep.SwapinMiBs, rep.PswpoutPages, rep.SwapoutMiBs)
	fmt.Fprintf(w, "swapload: major faults: %d of %d timed first touches were slower than %.0fµs and count as faults "+
		"(faster ones were resident or swap-cache hits); fault latency p50 %.0fµs, p99 %.0fµs, max %.0fµs\n",
		rep.Faults, rep.TouchesTimed, rep.FaultThresholdUs, rep.FaultP50us, rep.FaultP99us, rep.FaultMaxus)
	if rep.Cgroup != "" {
		fmt.Fprintf(w, "swapload: cgroup %s: swap up to %.1f MiB, memory peak %.1f MiB\n", rep.Cgroup, rep.CgroupSwapMaxMiB, rep.CgroupPeakMiB)
	}
	if rep.Error != "" {
		fmt.Fprintf(w, "swapload: FAIL: %s\n", rep.Error)
	}
}

// Pattern. A word's value is mix64(round<<roundShift | index): position- and round-derived,
// and invertible, so a wrong value names the (round, index) it belongs to.

func patternWord(index, round uint64) uint64 { return mix64(round<<roundShift | index) }

// mix64 is the splitmix64 finalizer: a bijection on uint64 whose outputs look random.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// The multiplicative inverses (mod 2^64) of mix64's constants.
var (
	inv1 = inverse(0xbf58476d1ce4e5b9)
	inv2 = inverse(0x94d049bb133111eb)
)

// unmix64 inverts mix64.
func unmix64(z uint64) uint64 {
	z = unxorshift(z, 31) * inv2
	z = unxorshift(z, 27) * inv1
	return unxorshift(z, 30)
}

// unxorshift inverts z ^ z>>s.
func unxorshift(z uint64, s uint) uint64 {
	x := z
	for i := s; i < 64; i += s {
		x = z ^ x>>s
	}
	return x
}

// inverse returns the inverse of an odd a mod 2^64 by Newton's iteration: each step doubles
// the number of correct low bits, and a itself is right to 3 bits.
func inverse(a uint64) uint64 {
	x := a
	for range 5 {
		x *= 2 - a*x
	}
	return x
}

// buffer is the workload's memory: anonymous pages mapped outside the Go heap, so that the
// garbage collector never reads them and every touch is the workload's own.
type buffer struct {
	mem       []byte   // from mmap; valid until unmap
	words     []uint64 // mem seen as words
	pageWords int
	pages     int
}

func newBuffer(size int, thp bool) (*buffer, error) {
	page := unix.Getpagesize()
	if size <= 0 || size%page != 0 {
		return nil, fmt.Errorf("buffer size %d is not a positive multiple of the page size %d", size, page)
	}
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("mmap %d MiB anonymous: %w", size/mib, err)
	}
	if !thp {
		// A huge page would make one first touch fault in 512 pages and swap-out split or
		// move 2 MiB at a time; the latencies would not be those of a page.
		if err := unix.Madvise(mem, unix.MADV_NOHUGEPAGE); err != nil && !errors.Is(err, unix.EINVAL) {
			unix.Munmap(mem)
			return nil, fmt.Errorf("madvise MADV_NOHUGEPAGE: %w", err)
		}
	}
	return &buffer{
		mem:       mem,
		words:     unsafe.Slice((*uint64)(unsafe.Pointer(&mem[0])), size/8),
		pageWords: page / 8,
		pages:     size / page,
	}, nil
}

func (b *buffer) unmap() error {
	b.words = nil
	return unix.Munmap(b.mem)
}

// fill writes round's pattern into page p.
func (b *buffer) fill(p int, round uint64) {
	base := p * b.pageWords
	w := b.words[base : base+b.pageWords]
	key := round<<roundShift | uint64(base)
	for i := range w {
		w[i] = mix64(key + uint64(i))
	}
}

// verify compares page p with round's pattern and records each wrong word in log.
func (b *buffer) verify(p int, round uint64, log *mismatchLog) {
	base := p * b.pageWords
	w := b.words[base : base+b.pageWords]
	key := round<<roundShift | uint64(base)
	for i, got := range w {
		if want := mix64(key + uint64(i)); got != want {
			log.add(mismatch{index: uint64(base + i), round: round, want: want, got: got})
		}
	}
}

// mismatch is one wrong word.
type mismatch struct {
	index     uint64 // word index
	round     uint64 // the round it should hold
	want, got uint64
}

// mismatchLog counts wrong words and keeps the first few.
type mismatchLog struct {
	count int64
	first []mismatch
}

func (l *mismatchLog) add(m mismatch) {
	l.count++
	if len(l.first) < maxReported {
		l.first = append(l.first, m)
	}
}

// describe says where a wrong word is and what it holds instead; words is the buffer's
// length in words and maxRound the last round the run writes.
func (m mismatch) describe(pageWords int, words, maxRound uint64) string {
	return fmt.Sprintf("offset %#x (page %d, word %d): want round %d's %#016x, got %#016x: %s",
		m.index*8, m.index/uint64(pageWords), m.index%uint64(pageWords), m.round, m.want, m.got,
		explain(m, pageWords, words, maxRound))
}

func explain(m mismatch, pageWords int, words, maxRound uint64) string {
	if m.got == 0 {
		return "zero (a page that was lost, or read back from unwritten swap)"
	}
	key := unmix64(m.got)
	round, index := key>>roundShift, key&indexMask
	switch {
	case round <= maxRound && index == m.index:
		return fmt.Sprintf("stale: this word's value from round %d", round)
	case round <= maxRound && index < words:
		return fmt.Sprintf("misplaced: round %d's value of offset %#x (page %d)", round, index*8, index/uint64(pageWords))
	}
	return fmt.Sprintf("corrupt: differs in bits %#016x", m.got^m.want)
}

// runner makes the passes over a buffer and keeps what they measured.
type runner struct {
	buf       *buffer
	order     []int // pages in visiting order
	threshold time.Duration
	stop      *atomic.Bool // set when the timeout expires
	maxRound  uint64
	where     string // the pass under way, for a timeout message

	log     mismatchLog
	touches int64
	faults  []time.Duration // first touches slower than threshold
	cgSwap  int64           // most swap the cgroup held after a pass; -1 unknown
	sink    uint64
}

// pageOrder returns the pages 0..n-1 in the order the passes visit them.
func pageOrder(n int, pattern string, seed uint64) []int {
	if pattern == "random" {
		return rand.New(rand.NewPCG(seed, seed^0x5357_4150_4c4f_4144)).Perm(n)
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	return order
}

// all runs the fill, rounds verify-and-rewrite passes and the final verify.
func (r *runner) all(rounds int, cg *swaptest.Cgroup) error {
	r.cgSwap = -1
	steps := []func() error{func() error { return r.pass("fill", false, 0, true, 0) }}
	for i := range rounds {
		round := uint64(i)
		steps = append(steps, func() error {
			return r.pass(fmt.Sprintf("round %d", round+1), true, round, true, round+1)
		})
	}
	steps = append(steps, func() error { return r.pass("final verify", true, uint64(rounds), false, 0) })
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
		if cg == nil {
			continue
		}
		if s, err := cg.SwapUsage(); err == nil && s > r.cgSwap {
			r.cgSwap = s
		}
	}
	return nil
}

// pass visits every page: it verifies the page holds vround's pattern (timing the first
// touch) and then, when write is set, rewrites it with wround's.
func (r *runner) pass(name string, verify bool, vround uint64, write bool, wround uint64) error {
	r.where = name
	b := r.buf
	for n, p := range r.order {
		if r.stop.Load() {
			r.where = fmt.Sprintf("%s, %d of %d pages done", name, n, len(r.order))
			return errTimeout
		}
		if verify {
			start := time.Now()
			touch := b.words[p*b.pageWords]
			d := time.Since(start)
			r.touches++
			if d > r.threshold {
				r.faults = append(r.faults, d)
			}
			// Keep the load: the compiler may drop a load whose value is never used.
			r.sink ^= touch
			b.verify(p, vround, &r.log)
		}
		if write {
			b.fill(p, wround)
		}
	}
	return nil
}

// report gathers what r measured.
func (r *runner) report(cfg config, wall time.Duration, cg *swaptest.Cgroup) report {
	rep := report{
		SizeMiB:          cfg.sizeMiB,
		Pattern:          cfg.pattern,
		Rounds:           cfg.rounds,
		Mismatches:       r.log.count,
		WallS:            wall.Seconds(),
		TouchesTimed:     r.touches,
		Faults:           len(r.faults),
		FaultThresholdUs: us(cfg.threshold),
		CgroupSwapMaxMiB: -1,
		CgroupPeakMiB:    -1,
	}
	if cg != nil {
		rep.Cgroup = cg.Path
	}
	if len(r.faults) > 0 {
		sort.Slice(r.faults, func(i, j int) bool { return r.faults[i] < r.faults[j] })
		rep.FaultP50us = us(percentile(r.faults, 50))
		rep.FaultP99us = us(percentile(r.faults, 99))
		rep.FaultMaxus = us(r.faults[len(r.faults)-1])
	}
	if r.cgSwap >= 0 {
		rep.CgroupSwapMaxMiB = float64(r.cgSwap) / mib
	}
	if cg != nil {
		if peak, err := cg.MaxUsage(); err == nil {
			rep.CgroupPeakMiB = float64(peak) / mib
		}
	}
	words := uint64(len(r.buf.words))
	for _, m := range r.log.first {
		rep.FirstMismatches = append(rep.FirstMismatches, m.describe(r.buf.pageWords, words, r.maxRound))
	}
	return rep
}

// percentile returns the nearest-rank p-th percentile of sorted ds.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (len(sorted)*p + 99) / 100
	return sorted[max(rank, 1)-1]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// readVmstat returns the system's count of pages swapped in and out since boot (proc(5)).
func readVmstat() (in, out uint64, err error) {
	f, err := os.Open("/proc/vmstat")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), " ")
		var dst *uint64
		switch name {
		case "pswpin":
			dst = &in
		case "pswpout":
			dst = &out
		default:
			continue
		}
		if *dst, err = strconv.ParseUint(value, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/vmstat %s: %w", name, err)
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("/proc/vmstat: %w", err)
	}
	if found != 2 {
		return 0, 0, errors.New("/proc/vmstat has no pswpin/pswpout")
	}
	return in, out, nil
}

// ownMemCgroup returns this process's memory cgroup, nil if there is none to read: the v1
// memory hierarchy when mounted, else the v2 one when it is the only one.
func ownMemCgroup() *swaptest.Cgroup {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	var v2 string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return &swaptest.Cgroup{Path: filepath.Join("/sys/fs/cgroup/memory", parts[2])}
			}
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = filepath.Join("/sys/fs/cgroup", parts[2])
		}
	}
	// In a hybrid layout v2 sits in /sys/fs/cgroup/unified without the memory controller.
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); v2 != "" && err == nil {
		return &swaptest.Cgroup{Path: v2, V2: true}
	}
	return nil
}
