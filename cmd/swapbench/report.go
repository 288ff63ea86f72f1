package main

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"time"
)

// The report: tables per benchmark, the targets and an analysis derived from the numbers.

const subject = "swapfs"

var (
	swapSystemNames = []string{"native", "loop-ext4", "gofuse-loopback", "swapfs"}
	swapRefs        = []string{"native", "loop-ext4", "gofuse-loopback"}
	fsNames         = []string{"ext4", "gofuse-loopback", "swapfs"}
	fsRefs          = []string{"ext4", "gofuse-loopback"}
	// fioSystems are benchmark 2's columns: the floor runs some of its jobs, as a bound.
	fioSystems   = append(append([]string(nil), fsNames...), floorName)
	patternTitle = map[string]string{"seq": "sequential", "random": "random"}
)

const ratioIntro = "Cells: median (min–max) over the rounds. Ratio columns: median(swapfs) ÷ median(reference), " +
	"from the same run; the *better* column says which way is better for that row."

func row(label, cas, metric string, better direction) rowSpec {
	return rowSpec{label: label, cas: cas, metric: metric, better: better}
}

func swapRows(pattern string) []rowSpec {
	c := swapCase(pattern)
	abs := func(r rowSpec) rowSpec { r.noRatio = true; return r }
	return []rowSpec{
		row("wall time, s", c, "wall_s", lowerBetter),
		row("swap-in, MiB/s (/proc/vmstat)", c, "swapin_mib_s", higherBetter),
		row("swap-out, MiB/s (/proc/vmstat)", c, "swapout_mib_s", higherBetter),
		row("major-fault latency p50, µs", c, "fault_p50_us", lowerBetter),
		row("major-fault latency p99, µs", c, "fault_p99_us", lowerBetter),
		row("major faults (first touches over 20 µs)", c, "faults", lowerBetter),
		abs(row("host page cache growth, MiB (meminfo Cached)", c, "cache_growth_mib", lowerBetter)),
		abs(row("area's files in host page cache after the run, MiB", c, "backing_cached_mib", lowerBetter)),
		abs(row("swap area peak use, MiB", c, "area_peak_mib", lowerBetter)),
	}
}

func fioRows() []rowSpec {
	var rows []rowSpec
	for _, j := range fioJobs() {
		rows = append(rows, row(j.label, fioCase, j.key, higherBetter))
	}
	return rows
}

func fioLatencyRows() []rowSpec {
	var rows []rowSpec
	for _, j := range fioJobs() {
		if j.direct && !j.perMiB() {
			rows = append(rows, row(strings.Replace(j.label, ", IOPS", ", p99 µs", 1), fioCase, j.key+"_p99_us", lowerBetter))
		}
	}
	return rows
}

func metaRows() []rowSpec {
	var rows []rowSpec
	for _, p := range metaPhases {
		rows = append(rows, row(p.label+", ops/s", metaCase, p.key, higherBetter))
	}
	return rows
}

func costRows() []rowSpec {
	var rows []rowSpec
	for _, p := range swapPatterns {
		c := costCase(p)
		rows = append(rows,
			row(p+": daemon CPU, s (utime+stime)", c, "cpu_s", lowerBetter),
			row(p+": daemon CPU, % of one CPU over the run", c, "cpu_pct", lowerBetter),
			row(p+": daemon CPU per GiB swapped, s", c, "cpu_s_gib", lowerBetter),
			row(p+": daemon RSS, max MiB", c, "rss_mib", lowerBetter),
		)
	}
	return rows
}

func requestRows() []rowSpec {
	var rows []rowSpec
	for _, p := range swapPatterns {
		c := costCase(p)
		rows = append(rows,
			row(p+": read requests per run", c, "req_reads", lowerBetter),
			row(p+": mean read request, KiB", c, "req_read_kib", higherBetter),
			row(p+": write requests per run", c, "req_writes", lowerBetter),
			row(p+": mean write request, KiB", c, "req_write_kib", higherBetter),
			row(p+": daemon CPU per request, µs", c, "cpu_us_req", lowerBetter),
		)
	}
	return rows
}

// tablesFor returns the tables of one benchmark.
func (b *bench) tablesFor(name string) []table {
	switch name {
	case "swap":
		var ts []table
		for _, p := range swapPatterns {
			ts = append(ts, comparison(b.res, fmt.Sprintf("1. Swap, %s access: %d MiB in a %d MiB cgroup, verify and rewrite twice",
				patternTitle[p], b.sz.workMiB, b.sz.cgLimit>>20), ratioIntro, swapRows(p), swapSystemNames, subject, swapRefs))
		}
		return ts
	case "fio":
		return []table{
			comparison(b.res, "2. File I/O (fio), throughput", ratioIntro+" "+floorIntro, fioRows(), fioSystems, subject, fsRefs),
			comparison(b.res, "2. File I/O (fio), completion latency of the O_DIRECT 4 KiB jobs", "", fioLatencyRows(), fioSystems, subject, fsRefs),
		}
	case "meta":
		return []table{comparison(b.res, fmt.Sprintf("3. Metadata: %d files in %d directories", b.sz.metaFiles, metaTop*metaSub),
			ratioIntro, metaRows(), fsNames, subject, fsRefs)}
	case "cost":
		return b.costTables()
	}
	return nil
}

func (b *bench) costTables() []table {
	var ts []table
	if b.cfg.only["swap"] {
		ts = append(ts, comparison(b.res, "4. Daemon cost during benchmark 1", ratioIntro+" A loop device or a native swapfile has no daemon.",
			costRows(), []string{"gofuse-loopback", "swapfs"}, subject, []string{"gofuse-loopback"}))
		rt := comparison(b.res, "4. Requests at swapfs's FUSE swap path during benchmark 1", "From `swapfs status --json` "+
			"(the daemon's counters for active swapfiles) before and after each run.", requestRows(), []string{"swapfs"}, subject, nil)
		if io := b.swapfsFinal; io != nil {
			rt.notes = append(rt.notes, fmt.Sprintf("The daemon's own service time over all swap runs (histogram bucket bounds, since the mount): "+
				"read p50 %s µs, p99 %s µs; write p50 %s µs, p99 %s µs; %d errors.",
				fmtNum(float64(io.ReadLat.P50)/1e3), fmtNum(float64(io.ReadLat.P99)/1e3),
				fmtNum(float64(io.WriteLat.P50)/1e3), fmtNum(float64(io.WriteLat.P99)/1e3), io.Errors))
		}
		ts = append(ts, rt)
	}
	gb := table{title: "4. Allocations per swap request (go test -bench . -benchtime 2000x ./swap/)",
		header: []string{"benchmark", "ns/op", "MB/s", "B/op", "allocs/op", "expected 0"}}
	for _, g := range b.cost.benches {
		ok := "yes"
		if g.allocsPerOp != 0 {
			ok = "**NO**"
		}
		gb.rows = append(gb.rows, []string{g.name, fmtNum(g.nsPerOp), fmtNum(g.mbPerS), fmtNum(g.bytesPerOp), fmtNum(g.allocsPerOp), ok})
	}
	if b.cost.benchErr != nil {
		gb.notes = append(gb.notes, "- FAILED: "+firstLine(b.cost.benchErr.Error()))
	}
	if b.cost.allocsTest != "" {
		gb.notes = append(gb.notes, fmt.Sprintf("- fs TestSwapPathAllocs: **%s**: %s", b.cost.allocsTest, firstLine(b.cost.allocsTestV)))
	}
	return append(ts, gb)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return strings.ReplaceAll(s, "\n", " ⏎ ")
}

// target is one of the goals.
type target struct {
	desc   string
	cas    string
	metric string
	ref    string  // "" for an absolute bound on swapfs's median
	atMost bool    // ≤ bound (else ≥)
	bound  float64 // on the ratio, or on the value
	also   string  // a metric shown beside the measured value (not judged)
}

func (b *bench) targets() []target {
	var ts []target
	if b.cfg.only["swap"] {
		for _, p := range swapPatterns {
			c := swapCase(p)
			ts = append(ts,
				vsRef(fmt.Sprintf("swap %s: wall time vs loop-ext4", p), c, "wall_s", "loop-ext4", true, 1.0),
				vsRef(fmt.Sprintf("swap %s: wall time vs gofuse-loopback", p), c, "wall_s", "gofuse-loopback", true, 1.0),
				vsRef(fmt.Sprintf("swap %s: wall time vs native", p), c, "wall_s", "native", true, 1.25),
				target{desc: fmt.Sprintf("swap %s: host page cache growth from the area's files, MiB", p), cas: c,
					metric: "backing_cached_mib", atMost: true, bound: 8, also: "cache_growth_mib"},
			)
		}
	}
	if b.cfg.only["fio"] {
		for _, j := range fioJobs() {
			switch {
			case j.direct && j.perMiB():
				ts = append(ts, vsRef("fio "+j.key+" vs ext4", fioCase, j.key, "ext4", false, 0.9))
			case j.direct:
				ts = append(ts, vsRef("fio "+j.key+" vs ext4", fioCase, j.key, "ext4", false, 0.8))
			}
		}
		for _, j := range fioJobs() {
			ts = append(ts, vsRef("fio "+j.key+" vs gofuse-loopback", fioCase, j.key, "gofuse-loopback", false, 1.0))
		}
	}
	if b.cfg.only["meta"] {
		for _, p := range metaPhases {
			ts = append(ts, vsRef("metadata "+p.key+" vs gofuse-loopback", metaCase, p.key, "gofuse-loopback", false, 1.0))
		}
	}
	return ts
}

// vsRef is a target on swapfs's ratio to a reference.
func vsRef(desc, cas, metric, ref string, atMost bool, bound float64) target {
	return target{desc: desc, cas: cas, metric: metric, ref: ref, atMost: atMost, bound: bound}
}

// eval returns the measured ratio (or value) and whether the target is met; ok is false
// when there is nothing to judge.
func (t target) eval(r *results) (v float64, met, ok bool) {
	s := r.summary(t.cas, t.metric, subject).med
	v = s
	if t.ref != "" {
		v = ratio(s, r.summary(t.cas, t.metric, t.ref).med)
	}
	if math.IsNaN(v) {
		return v, false, false
	}
	if t.atMost {
		return v, v <= t.bound, true
	}
	return v, v >= t.bound, true
}

func (t target) goal() string {
	op := "≥"
	if t.atMost {
		op = "≤"
	}
	if t.ref == "" {
		return fmt.Sprintf("%s %s", op, fmtNum(t.bound))
	}
	return fmt.Sprintf("%s %.2f×", op, t.bound)
}

func (b *bench) targetTable() (table, []target) {
	t := table{title: "Targets (goals, not assertions)", header: []string{"target", "goal", "measured", "result"},
		intro: "Ratios are median(swapfs) ÷ median(reference) of this run. The page-cache target is judged on the pages of the " +
			"swap area's own files on the host (swapfs's store, mincore after each run, none cached before it); /proc/meminfo " +
			"Cached, shown beside it, counts the whole shared machine."}
	var missed []target
	for _, tg := range b.targets() {
		v, met, ok := tg.eval(b.res)
		// Three decimals: a 0.996× must not read as a missed 1.00×.
		m := fmt.Sprintf("%.3f×", v)
		if tg.ref == "" {
			m = fmtNum(v)
		}
		if tg.also != "" {
			m += fmt.Sprintf(" (meminfo Cached: %s)", fmtNum(b.res.summary(tg.cas, tg.also, subject).med))
		}
		res := "met"
		switch {
		case !ok:
			res, m = "no data", "—"
		case !met:
			res = "**MISSED**"
			missed = append(missed, tg)
		}
		t.rows = append(t.rows, []string{tg.desc, tg.goal(), m, res})
	}
	for _, g := range b.cost.benches {
		if g.allocsPerOp != 0 {
			t.rows = append(t.rows, []string{"allocs/op " + g.name, "= 0", fmtNum(g.allocsPerOp), "**MISSED**"})
		}
	}
	return t, missed
}

// report is the whole docs/benchmarks.md.
func (b *bench) report() string {
	var sb strings.Builder
	mode := ""
	if b.cfg.quick {
		mode = " -quick (small sizes: a smoke run of the bench, not a measurement)"
	}
	fmt.Fprintf(&sb, "# swapfs benchmarks\n\n")
	fmt.Fprintf(&sb, "Written by `make bench` (cmd/swapbench) on %s: %d rounds%s, benchmarks %s; the run took %s.\n\n",
		b.start.Format("2006-01-02 15:04 MST"), b.cfg.rounds, mode, b.onlyList(), time.Since(b.start).Round(time.Second))
	sb.WriteString("## Machine\n\n")
	mt := table{header: []string{"", ""}, left: 2}
	for _, r := range b.machine.rows {
		mt.rows = append(mt.rows, []string{r[0], r[1]})
	}
	sb.WriteString(mt.markdown() + "\n")
	sb.WriteString(howToRead(b.sz))
	if b.gofusePassthrough == "on" {
		sb.WriteString(passthroughNote)
	}
	if note := b.rotationalNote(); note != "" {
		sb.WriteString(note)
	}
	sb.WriteString("\n")
	tt, missed := b.targetTable()
	sb.WriteString("## Targets\n\n" + tt.markdown() + "\n")
	sb.WriteString("## Results\n\n")
	for _, n := range benchNames {
		if !b.cfg.only[n] {
			continue
		}
		for _, t := range b.tablesFor(n) {
			sb.WriteString(t.markdown() + "\n")
		}
	}
	sb.WriteString("## Analysis\n\n")
	for _, a := range b.analysis(missed) {
		sb.WriteString("- " + a + "\n")
	}
	if b.profile.flat != "" {
		fmt.Fprintf(&sb, "\n### CPU profile of the swapfs daemon\n\nFrom %s:\n\n```\n%s\n```\n", b.profile.what, b.profile.flat)
	}
	sb.WriteString("\n## Problems and notes from this run\n\n")
	if len(b.notes) == 0 && len(b.res.fails) == 0 {
		sb.WriteString("None.\n")
	}
	for _, n := range b.notes {
		sb.WriteString("- " + n + "\n")
	}
	if len(b.res.fails) > 0 {
		fmt.Fprintf(&sb, "- %d run(s) failed; each is listed under its table.\n", b.failCount())
	}
	return sb.String()
}

func (b *bench) onlyList() string {
	var l []string
	for _, n := range benchNames {
		if b.cfg.only[n] {
			l = append(l, n)
		}
	}
	return strings.Join(l, ", ")
}

func (b *bench) failCount() int {
	n := 0
	for _, f := range b.res.fails {
		n += len(f)
	}
	return n
}

func howToRead(sz sizes) string {
	return fmt.Sprintf(`## How to read

- The machine is shared and noisy. Every system runs in every round, interleaved
  (round 1: A B C D, round 2: A B C D, …), so slow phases of the machine hit all of them; a
  cell is the median over the rounds with the min–max range. Read the **ratios**, which
  compare systems measured minutes apart in the same run; the absolute numbers are of this
  machine at this time only.
- Ratio = median(swapfs) ÷ median(reference). Whether above or below 1 is good depends on
  the row: the *better* column says whether lower or higher values win.
- Swap references, all on the workdir's disk, each swapped on alone at priority %d:
  **native** (a swapfile on ext4: the limit), **loop-ext4** (a loop device with direct I/O on
  an ext4 file: the same loop path without FUSE), **gofuse-loopback** (go-fuse's
  example/loopback, a swapfile in it behind a direct-I/O loop device: what a user gets from
  go-fuse's own example filesystem), **swapfs** (swapfs mkswapfile + swapfs swapon). Swap areas are %d MiB.
- Swap workload: cmd/swapload in a memory cgroup limited to %d MiB fills %d MiB with a
  position-derived pattern, verifies and rewrites it twice and verifies again; any
  mismatch fails the run. Swap-in/out rates are /proc/vmstat pswpin/pswpout over the wall
  time (system-wide counters). A major fault is a first touch slower than 20 µs.
  Page cache growth is /proc/meminfo Cached after minus before (excludes the swap cache).
- fio runs on a file in each filesystem: ext4 (a directory in the workdir), the go-fuse
  loopback (over another directory of the same ext4), swapfs (its data file on the same
  ext4). Time-based jobs run %s each on a %d MiB file; the buffered sequential write
  writes %d MiB to a new file and fsyncs it.
- **fuse-floor** (benchmark 2 only) is a bound, not a filesystem: a daemon of swapbench,
  built on go-fuse with swapfs's transfer settings (1 MiB requests, asynchronous direct I/O,
  no splice), its open flags (FOPEN_DIRECT_IO for O_DIRECT) and, where THP allows, its
  request buffers on huge pages, that answers every READ and WRITE at once without any I/O. It measures what a request costs before a daemon
  does anything with it: the kernel's copy of the payload, the wake-ups and the round trip.
- Metadata: a worker process creates, stats, lists (ls -lR), renames and unlinks the
  files; stat and ls run right after create, with the kernel's caches warm as each
  filesystem leaves them.
`, swapPriority, sz.swapArea>>20, sz.cgLimit>>20, sz.workMiB, sz.fioRuntime, sz.fioFile>>20, sz.fioFresh>>20)
}

// rotationalNote says, per swap system, the rotational flag swapon(2) saw on its area,
// which picks the kernel's swap-in readahead.
func (b *bench) rotationalNote() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.rotational) == 0 {
		return ""
	}
	var l []string
	for _, sys := range swapSystemNames {
		if v, ok := b.rotational[sys]; ok {
			l = append(l, fmt.Sprintf("%s %s", sys, v))
		}
	}
	return fmt.Sprintf(`- **Swap readahead follows the rotational flag.** When any active swap area is rotational
  the kernel reads the swap slots around a faulting one (swap_cluster_readahead), otherwise
  it reads ahead along the faulting process's address space (swap_vma_readahead), which
  gives up on random access. A loop device takes the flag from the disk under its backing
  file, and has none to look at through FUSE, so it says non-rotational; swapfs swapon
  gives its loop device the flag of the data volume's disk, a plain losetup on go-fuse's
  loopback leaves it at 0. As swapon saw them in this run (1 = rotational): %s.
`, strings.Join(l, ", "))
}

const passthroughNote = `- **gofuse-loopback uses FUSE passthrough here.** go-fuse's loopback offers each open file's
  descriptor to the kernel as a passthrough backing file (FOPEN_PASSTHROUGH, since go-fuse
  v2.6), which the kernel accepts for a root daemon when built with CONFIG_FUSE_PASSTHROUGH
  (6.9+); a probe mount at the start of this run saw it accepted. Reads and writes of an open
  file (the swapfile behind its loop device, fio's file) then go from the kernel to the ext4
  file without reaching the daemon; only opens, metadata and directory operations do. So for
  data I/O this reference is close to ext4 itself, a stronger one than a FUSE filesystem that
  serves reads and writes in its daemon (as swapfs does); the daemon-cost table shows it.
`

// analysis writes what the numbers show: a summary of the targets, then for each miss
// where the time went, from the daemon's CPU and the requests seen at the FUSE layer.
func (b *bench) analysis(missed []target) []string {
	var out []string
	all := b.targets()
	out = append(out, fmt.Sprintf("%d of %d targets met.", len(all)-len(missed)-b.noData(all), len(all)))
	if len(missed) > 0 {
		var l []string
		for _, t := range missed {
			v, _, _ := t.eval(b.res)
			if t.ref == "" {
				l = append(l, fmt.Sprintf("%s (%s)", t.desc, fmtNum(v)))
			} else {
				l = append(l, fmt.Sprintf("%s (%s)", t.desc, fmtRatio(v)))
			}
		}
		out = append(out, "Missed: "+strings.Join(l, "; ")+".")
	}
	if b.cfg.only["swap"] {
		for _, p := range swapPatterns {
			out = append(out, b.swapAnalysis(p)...)
		}
	}
	if b.cfg.only["fio"] {
		out = append(out, b.fioAnalysis()...)
	}
	if b.profile.summary != "" {
		out = append(out, "Where the daemon's CPU goes ("+b.profile.what+"): "+b.profile.summary+
			" In the loop-ext4 reference the same disk submissions are made by the kernel's loop workers, which no daemon row counts.")
	}
	if noisy := b.noisyRows(); len(noisy) > 0 {
		out = append(out, "Noisy rows (range wider than half the median; treat their ratios with care): "+strings.Join(noisy, "; ")+".")
	}
	return out
}

func (b *bench) noData(ts []target) int {
	n := 0
	for _, t := range ts {
		if _, _, ok := t.eval(b.res); !ok {
			n++
		}
	}
	return n
}

func (b *bench) swapAnalysis(p string) []string {
	c, cc := swapCase(p), costCase(p)
	med := func(cas, m, sys string) float64 { return b.res.summary(cas, m, sys).med }
	wall := med(c, "wall_s", subject)
	if math.IsNaN(wall) {
		return []string{fmt.Sprintf("Swap %s: no successful swapfs run to analyse.", p)}
	}
	var s []string
	s = append(s, fmt.Sprintf("Swap %s: swapfs took %ss against native %ss, loop-ext4 %ss and gofuse-loopback %ss (%s, %s, %s).",
		p, fmtNum(wall), fmtNum(med(c, "wall_s", "native")), fmtNum(med(c, "wall_s", "loop-ext4")), fmtNum(med(c, "wall_s", "gofuse-loopback")),
		fmtRatio(ratio(wall, med(c, "wall_s", "native"))), fmtRatio(ratio(wall, med(c, "wall_s", "loop-ext4"))), fmtRatio(ratio(wall, med(c, "wall_s", "gofuse-loopback")))))
	gofNote := ""
	if b.gofusePassthrough == "on" {
		gofNote = ": with passthrough the swap I/O never reaches it"
	}
	rk, wk := med(cc, "req_read_kib", subject), med(cc, "req_write_kib", subject)
	nr, nw := med(cc, "req_reads", subject), med(cc, "req_writes", subject)
	perReq := med(cc, "cpu_us_req", subject)
	s = append(s, fmt.Sprintf("Swap %s, swapfs's daemon: %s%% of one CPU over the run, %ss of CPU per GiB swapped "+
		"(gofuse-loopback's daemon: %s%%, %ss per GiB%s); it served %s reads of %s KiB and %s writes of %s KiB on average per run, "+
		"%s µs of daemon CPU per request.",
		p, fmtNum(med(cc, "cpu_pct", subject)), fmtNum(med(cc, "cpu_s_gib", subject)),
		fmtNum(med(cc, "cpu_pct", "gofuse-loopback")), fmtNum(med(cc, "cpu_s_gib", "gofuse-loopback")), gofNote,
		fmtNum(nr), fmtNum(rk), fmtNum(nw), fmtNum(wk), fmtNum(perReq)))
	if capMiBs := ratio(rk/1024, perReq/1e6); !math.IsNaN(capMiBs) && rk < 64 {
		got := med(c, "swapin_mib_s", subject)
		s = append(s, fmt.Sprintf("Swap %s, the daemon's CPU as a limit: at %s µs of CPU per request and %s KiB per read, one fully "+
			"busy CPU serves at most about %s MiB/s of swap-in; the run got %s MiB/s (%s%% of that) with the daemon at %s%% of a CPU, "+
			"on a machine with %d CPUs shared with the workload and the kernel.", p, fmtNum(perReq), fmtNum(rk), fmtNum(capMiBs),
			fmtNum(got), fmtNum(100*got/capMiBs), fmtNum(med(cc, "cpu_pct", subject)), runtime.NumCPU()))
	}
	if io := b.swapfsFinal; io != nil && io.ReadLat.P50 > 0 {
		hi := float64(io.ReadLat.P50) / 1e3
		fl, nl := med(c, "fault_p50_us", subject), med(c, "fault_p50_us", "native")
		s = append(s, fmt.Sprintf("Swap %s, one fault: p50 %s µs on swapfs against %s µs native (%s µs more). The daemon's own read "+
			"of the data volume took %s–%s µs at p50 over all swap runs (power-of-two histogram buckets; mostly the random runs' "+
			"4 KiB reads); the rest of a fault on swapfs is the FUSE round trip and the daemon's handling around its I/O, which "+
			"the profile below breaks down.",
			p, fmtNum(fl), fmtNum(nl), fmtNum(fl-nl), fmtNum(hi/2), fmtNum(hi)))
	}
	if !math.IsNaN(rk) && rk < 16 {
		s = append(s, fmt.Sprintf("Swap %s: reads reach the daemon at %s KiB a request, page by page (swap readahead's pages are "+
			"not merged into larger FUSE requests), so each page pays a full FUSE round trip.", p, fmtNum(rk)))
	}
	bc := func(sys string) string { return fmtNum(med(c, "backing_cached_mib", sys)) }
	why := ""
	for _, sys := range swapSystemNames {
		if med(c, "backing_cached_mib", sys) > 8 {
			why += fmt.Sprintf(" On %s the pages written to swap stay in the host's page cache too: its I/O to the backing file is buffered.", sys)
		}
	}
	s = append(s, fmt.Sprintf("Swap %s, page cache: after a run the area's files on the host's ext4 had %s MiB in the page cache on "+
		"gofuse-loopback, %s MiB on swapfs, %s MiB native, %s MiB loop-ext4.%s /proc/meminfo Cached moved by %s, %s, %s and %s MiB "+
		"(same order); it counts the whole machine, so other work on it moves it too.", p, bc("gofuse-loopback"), bc(subject),
		bc("native"), bc("loop-ext4"), why, fmtNum(med(c, "cache_growth_mib", "gofuse-loopback")), fmtNum(med(c, "cache_growth_mib", subject)),
		fmtNum(med(c, "cache_growth_mib", "native")), fmtNum(med(c, "cache_growth_mib", "loop-ext4"))))
	return s
}

func (b *bench) fioAnalysis() []string {
	var slow []string
	for _, j := range fioJobs() {
		s := b.res.summary(fioCase, j.key, subject).med
		e := ratio(s, b.res.summary(fioCase, j.key, "ext4").med)
		g := ratio(s, b.res.summary(fioCase, j.key, "gofuse-loopback").med)
		if (!math.IsNaN(e) && e < 0.8) || (!math.IsNaN(g) && g < 1) {
			slow = append(slow, fmt.Sprintf("%s (%s ext4, %s gofuse-loopback)", j.key, fmtRatio(e), fmtRatio(g)))
		}
	}
	var out []string
	// How much a deeper queue helps: a filesystem that serves requests one at a time gains
	// nothing from 16 in flight.
	var scale []string
	for _, rw := range []string{"randread", "randwrite"} {
		var per []string
		for _, fs := range fsNames {
			q1 := b.res.summary(fioCase, rw+"_direct_4k_qd1", fs).med
			q16 := b.res.summary(fioCase, rw+"_direct_4k_qd16", fs).med
			per = append(per, fmt.Sprintf("%s %s", fs, fmtRatio(ratio(q16, q1))))
		}
		scale = append(scale, fmt.Sprintf("%s %s", rw, strings.Join(per, ", ")))
	}
	out = append(out, "File I/O, queue depth: IOPS at iodepth 16 ÷ iodepth 1 (4 KiB O_DIRECT): "+strings.Join(scale, "; ")+
		". A ratio near 1 means requests are served about one at a time, whatever the queue; the p99 completion latency "+
		"at depth 16 (latency table) grows accordingly.")
	out = append(out, b.streamAnalysis()...)
	out = append(out, b.floorAnalysis()...)
	if len(slow) == 0 {
		return append(out, "File I/O: swapfs is at least 0.8× ext4 and 1.0× gofuse-loopback on every fio job.")
	}
	return append(out, "File I/O below 0.8× ext4 or 1.0× gofuse-loopback: "+strings.Join(slow, "; ")+". "+
		"Regular files take swapfs's general FUSE path (not the pinned swap path, whose counters above do not cover fio), "+
		"so every request is a FUSE round trip through the daemon; the completion-latency table shows what that costs per request."+
		b.passthroughClause())
}

// streamAnalysis compares 1 MiB O_DIRECT streams at depth 1 and 16, and says why a FUSE
// daemon can lose at depth 1 what it keeps at depth 16.
func (b *bench) streamAnalysis() []string {
	vsExt4 := func(key string) float64 {
		return ratio(b.res.summary(fioCase, key, subject).med, b.res.summary(fioCase, key, "ext4").med)
	}
	var per []string
	depth1Short, depth16Fine := false, true
	for _, rw := range []string{"seqread", "seqwrite"} {
		q1, q16 := vsExt4(rw+"_direct_1m"), vsExt4(rw+"_direct_1m_qd16")
		if math.IsNaN(q1) || math.IsNaN(q16) {
			return nil
		}
		per = append(per, fmt.Sprintf("%s %s at depth 1, %s at depth 16", strings.TrimPrefix(rw, "seq"), fmtRatio(q1), fmtRatio(q16)))
		depth1Short = depth1Short || q1 < 0.9
		depth16Fine = depth16Fine && q16 >= 0.9
	}
	s := "1 MiB O_DIRECT streams, swapfs ÷ ext4: " + strings.Join(per, "; ") + "."
	if depth1Short && depth16Fine {
		s += " At depth 1 each request's trip is serial: the kernel copies the 1 MiB payload between the caller's pages and " +
			"the daemon's buffer (pinning the buffer a page at a time) before or after the daemon's own O_DIRECT I/O, and the " +
			"caller waits for both, where ext4 has only the I/O. With requests in flight (the mount asks for asynchronous " +
			"direct I/O) the daemon overlaps one request's copy with another's disk I/O."
	}
	return []string{s}
}

const floorIntro = "The fuse-floor column is not a filesystem but a bound: a FUSE daemon that answers every " +
	"request without I/O (see How to read); it runs the O_DIRECT jobs at 1 MiB and the 4 KiB ones at depth 1."

// floorAnalysis says what the FUSE floor leaves of the 0.9× target for 1 MiB O_DIRECT
// streams at depth 1, where a request's delivery and the daemon's I/O cannot overlap:
// whatever the daemon does, it adds its own time to the floor's.
func (b *bench) floorAnalysis() []string {
	var out []string
	for _, rw := range []string{"read", "write"} {
		if line := b.floorLine(rw); line != "" {
			out = append(out, line)
		}
	}
	var deep []string
	for _, rw := range []string{"read", "write"} {
		key := "seq" + rw + "_direct_1m_qd16"
		if r := ratio(b.res.summary(fioCase, key, floorName).med, b.res.summary(fioCase, key, "ext4").med); r >= 1 {
			deep = append(deep, fmt.Sprintf("%s %s", rw, fmtRatio(r)))
		}
	}
	if len(deep) > 0 {
		out = append(out, "At depth 16 the FUSE floor is not the limit: it carries "+strings.Join(deep, " and ")+
			" ext4's 1 MiB streams.")
	}
	return out
}

// floorLine compares, for 1 MiB O_DIRECT reads or writes (rw) at depth 1, what a request
// costs on the FUSE floor with what 0.9× ext4 allows; "" without the three medians.
func (b *bench) floorLine(rw string) string {
	key := "seq" + rw + "_direct_1m"
	usPerMiB := func(sys string) float64 { return 1e6 / b.res.summary(fioCase, key, sys).med }
	e, f, s := usPerMiB("ext4"), usPerMiB(floorName), usPerMiB(subject)
	for _, v := range []float64{e, f, s} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return ""
		}
	}
	budget := e / 9 // what 0.9× ext4 leaves for everything FUSE adds to ext4's own time
	line := fmt.Sprintf("1 MiB O_DIRECT %s at depth 1, against the FUSE floor: a request costs %s µs per MiB on the floor, "+
		"where the daemon does no I/O at all, and ext4 takes %s µs per MiB for its whole %s. 0.9× ext4 leaves %s µs per MiB "+
		"for all that FUSE adds; the floor alone takes %s of that. A daemon whose own %s of the volume took as long as "+
		"ext4's would reach %s ext4. swapfs took %s µs per MiB (%s ext4)",
		rw, fmtNum(f), fmtNum(e), rw, fmtNum(budget), fmtRatio(f/budget), rw, fmtRatio(e/(f+e)), fmtNum(s), fmtRatio(e/s))
	own := s - f // swapfs's own I/O and bookkeeping; below zero only in noise
	if own > 0 {
		line += fmt.Sprintf(", %s µs per MiB above the floor for its own I/O and bookkeeping, against ext4's %s", fmtNum(own), fmtNum(e))
	}
	line += "."
	const transport = "on this transport (go-fuse over /dev/fuse)"
	switch {
	case f >= e/0.9:
		line += " The floor alone is below 0.9× ext4: " + transport + " no daemon reaches 0.9× at depth 1 on this disk, " +
			"whatever it does."
	case f <= budget:
	case own <= 0:
		line += " swapfs measured faster than the floor itself: the runs varied more than the difference."
	case e/s >= 0.9:
		line += fmt.Sprintf(" It meets 0.9× because its own %s and bookkeeping took %s µs per MiB less than ext4's whole %s.",
			rw, fmtNum(e-own), rw)
	default:
		line += fmt.Sprintf(" For 0.9×, a daemon's own %s would have to take at most %s µs per MiB (%s of ext4's): %s no "+
			"daemon that serves the data itself reaches 0.9× at depth 1 on this disk unless its I/O beats ext4's by that much. "+
			"FUSE passthrough, which skips the daemon, needs a backing file that holds the FUSE file byte for byte, not "+
			"extents in a shared volume.", rw, fmtNum(e/0.9-f), fmtRatio((e/0.9-f)/e), transport)
	}
	return line
}

// passthroughClause adds, when go-fuse's loopback used FUSE passthrough, what that means for
// comparisons with it.
func (b *bench) passthroughClause() string {
	if b.gofusePassthrough != "on" {
		return ""
	}
	return " gofuse-loopback's reads and writes bypass its daemon (FUSE passthrough, see How to read), so on data I/O it is " +
		"measuring the kernel's path to ext4, not a FUSE daemon's."
}

// noisyRows lists rows where some system's range exceeds half its median.
func (b *bench) noisyRows() []string {
	var out []string
	check := func(rows []rowSpec, systems []string) {
		for _, r := range rows {
			for _, sys := range systems {
				s := b.res.summary(r.cas, r.metric, sys)
				if s.n >= 2 && s.med != 0 && (s.max-s.min) > math.Abs(s.med)/2 && !strings.Contains(r.metric, "cache") && !strings.HasPrefix(r.metric, "area") {
					out = append(out, fmt.Sprintf("%s / %s on %s", r.cas, r.metric, sys))
				}
			}
		}
	}
	if b.cfg.only["swap"] {
		for _, p := range swapPatterns {
			check(swapRows(p)[:3], swapSystemNames)
		}
	}
	if b.cfg.only["fio"] {
		check(fioRows(), fsNames)
	}
	if b.cfg.only["meta"] {
		check(metaRows(), fsNames)
	}
	return out
}
