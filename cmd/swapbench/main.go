// Command swapbench is "make bench": it measures swapfs against reference systems on the
// same disk, in the same run, and writes the tables to docs/benchmarks.md.
//
//	swapbench [-rounds N] [-only swap,fio,meta,cost] [-quick] [-out FILE] [-workdir DIR]
//
// Benchmarks: 1. swap under memory pressure (cmd/swapload in a memory cgroup) on a native
// ext4 swapfile, a loop device over an ext4 file, a loop device over a file in go-fuse's
// example/loopback, and swapfs; 2. fio on ext4, the go-fuse loopback and swapfs; 3. metadata
// operations on the same three; 4. the swapfs daemon's RSS and CPU during 1, and
// allocations per swap request from swapfs's Go benchmarks.
//
// The machine is shared and noisy, so the systems run interleaved (A B C A B C ...) and
// every result is a median with its range and a ratio against the references of the same
// run. Everything the bench sets up lives in a work directory and is torn down at the end,
// on an error and on SIGINT/SIGTERM (a second signal tears down at once and exits). It
// needs root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/swap"
)

// config is the command line.
type config struct {
	rounds  int
	only    map[string]bool
	quick   bool
	out     string
	workdir string
}

var benchNames = []string{"swap", "fio", "meta", "cost"}

func parseFlags(args []string) (config, error) {
	var c config
	fl := flag.NewFlagSet("swapbench", flag.ContinueOnError)
	fl.IntVar(&c.rounds, "rounds", 3, "rounds; each runs every system once per workload (at least 3 for a median and a range)")
	only := fl.String("only", strings.Join(benchNames, ","), "benchmarks to run, comma-separated: swap, fio, meta, cost")
	fl.BoolVar(&c.quick, "quick", false, "small sizes and short runs: a smoke test of the bench, not a measurement")
	fl.StringVar(&c.out, "out", "docs/benchmarks.md", "report file (relative to the repository root)")
	fl.StringVar(&c.workdir, "workdir", "", "work directory to create (must not exist); default /var/tmp/swapbench-XXXX when /var/tmp is on the repository's disk. Removed at the end")
	if err := fl.Parse(args); err != nil {
		return c, err
	}
	if fl.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fl.Args())
	}
	if c.rounds < 1 {
		return c, fmt.Errorf("-rounds %d: want at least 1", c.rounds)
	}
	c.only = map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		known := false
		for _, k := range benchNames {
			known = known || k == n
		}
		if !known {
			return c, fmt.Errorf("-only: unknown benchmark %q (want some of %s)", n, strings.Join(benchNames, ","))
		}
		c.only[n] = true
	}
	if len(c.only) == 0 {
		return c, errors.New("-only: no benchmark named")
	}
	return c, nil
}

// sizes are the workload sizes: the issue's, or small ones for -quick.
type sizes struct {
	swapArea    int64 // bytes of each swap area
	cgLimit     int64 // bytes of memory the workload's cgroup may use
	workMiB     int   // the workload's memory: 4× the limit
	swapTimeout time.Duration
	fioFile     int64 // the file the time-based jobs run on
	fioFresh    int64 // what the write-then-fsync job writes
	fioRuntime  time.Duration
	fioRamp     time.Duration
	metaFiles   int
	metaTimeout time.Duration
}

func sizesFor(quick bool) sizes {
	if quick {
		return sizes{swapArea: 256 << 20, cgLimit: 32 << 20, workMiB: 128, swapTimeout: 3 * time.Minute,
			fioFile: 64 << 20, fioFresh: 32 << 20, fioRuntime: time.Second,
			metaFiles: 2000, metaTimeout: 3 * time.Minute}
	}
	return sizes{swapArea: 768 << 20, cgLimit: 128 << 20, workMiB: 512, swapTimeout: 8 * time.Minute,
		fioFile: 1 << 30, fioFresh: 512 << 20, fioRuntime: 5 * time.Second, fioRamp: time.Second,
		metaFiles: 20000, metaTimeout: 10 * time.Minute}
}

// binaries the bench builds into the workdir.
type binaries struct{ swapfs, swapload, loopback string }

// bench is one run of the bench: what it set up and what it measured.
type bench struct {
	cfg    config
	sz     sizes
	start  time.Time
	repo   string
	goTool string
	work   string
	bins   binaries
	env    []string // for every swapfs command: its socket and log directories in the workdir

	undo       undoStack
	activeSwap *undoItem // the one bench swap area that is on, if any

	swapfs *swapfsMount
	gofuse *gofuseMount
	floor  *fuseDaemon // benchmark 2's FUSE floor; nil when fio does not run
	// gofusePassthrough says whether go-fuse's loopback serves file data through FUSE
	// passthrough on this machine: "on", "off" or why it is unknown.
	gofusePassthrough string

	res         *results
	cost        costReport
	machine     machine
	swapfsFinal *swapfsIO                            // swapfs's swap-path counters after benchmark 1
	profile     struct{ what, flat, summary string } // perf's view of the swapfs daemon in an extra swap run

	mu         sync.Mutex
	notes      []string          // problems and observations for the report, once each
	rotational map[string]string // swap system -> the rotational flag its area had at swapon
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// note records something the report must mention (once).
func (b *bench) note(parts ...string) {
	n := strings.Join(parts, "")
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, x := range b.notes {
		if x == n {
			return
		}
	}
	b.notes = append(b.notes, n)
	b.logf("note: %s", n)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "meta-worker" {
		os.Exit(metaWorker(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == floorName {
		os.Exit(floorWorker(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cfg, err := parseFlags(args)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "swapbench: %v\n", err)
		}
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "swapbench: needs root (mounts, loop devices, swapon, cgroups); try 'sudo make bench'")
		return 2
	}
	b := &bench{cfg: cfg, sz: sizesFor(cfg.quick), start: time.Now(), res: newResults(), goTool: os.Getenv("GO")}
	if b.goTool == "" {
		b.goTool = "go"
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.handleSignals(cancel)
	code := b.mainRecovered(ctx)
	b.logf("teardown")
	tctx, tcancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer tcancel()
	if n := b.undo.all(tctx); n > 0 {
		fmt.Fprintf(os.Stderr, "swapbench: %d teardown step(s) failed (see above): check losetup -a, /proc/swaps, /proc/mounts\n", n)
		code = 1
	}
	if ctx.Err() != nil && code == 0 {
		code = 130
	}
	b.logf("done in %s", time.Since(b.start).Round(time.Second))
	return code
}

// mainRecovered is main, with a panic turned into a failure so that teardown still runs.
func (b *bench) mainRecovered(ctx context.Context) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "swapbench: panic: %v\n%s", r, debug.Stack())
			code = 1
		}
	}()
	return b.main(ctx)
}

// handleSignals cancels the run on the first SIGINT/SIGTERM/SIGHUP, so it stops and tears
// down; a second one tears down right away (what is still pending) and exits.
func (b *bench) handleSignals(cancel context.CancelFunc) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		b.logf("%v: stopping; tearing down what the bench set up (again to force)", s)
		cancel()
		s = <-sigs
		b.logf("%v again: tearing down now", s)
		ctx, c := context.WithTimeout(context.Background(), 10*time.Minute)
		defer c()
		b.undo.all(ctx)
		os.Exit(130)
	}()
}

// main sets up, runs the benchmarks asked for and writes the report; teardown is run's.
func (b *bench) main(ctx context.Context) int {
	if err := b.setup(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "swapbench: set-up: %v\n", err)
		return 1
	}
	b.machine = b.describeMachine(ctx)
	steps := []struct {
		name string
		run  func(context.Context)
	}{
		{"swap", b.runSwapBench},
		{"fio", b.runFioBench},
		{"meta", b.runMetaBench},
		{"cost", b.runCostBench},
	}
	for _, s := range steps {
		if !b.cfg.only[s.name] || ctx.Err() != nil {
			continue
		}
		t0 := time.Now()
		b.logf("=== benchmark %s", s.name)
		s.run(ctx)
		b.logf("=== benchmark %s took %s", s.name, time.Since(t0).Round(time.Second))
		if ctx.Err() != nil {
			break
		}
		for _, t := range b.tablesFor(s.name) {
			fmt.Println(t.markdown())
		}
	}
	if ctx.Err() != nil {
		b.logf("interrupted: no report written")
		return 130
	}
	doc := b.report()
	out := b.cfg.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(b.repo, out)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "swapbench: %v\n", err)
		return 1
	}
	if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "swapbench: %v\n", err)
		return 1
	}
	b.logf("wrote %s", out)
	if b.anyFailed() {
		fmt.Fprintln(os.Stderr, "swapbench: some runs FAILED (see the report)")
		return 1
	}
	return 0
}

func (b *bench) anyFailed() bool {
	return len(b.res.fails) > 0 || b.cost.benchErr != nil || b.cost.allocsTest == "FAIL"
}

// setup finds the repository, installs and builds what is missing, makes the workdir and
// mounts the filesystems the chosen benchmarks use.
func (b *bench) setup(ctx context.Context) error {
	var err error
	if b.repo, err = findRepo(); err != nil {
		return err
	}
	if err := b.ensureTools(ctx); err != nil {
		return err
	}
	if err := b.makeWorkdir(); err != nil {
		return err
	}
	if err := b.build(ctx); err != nil {
		return err
	}
	needFS := b.cfg.only["swap"] || b.cfg.only["fio"] || b.cfg.only["meta"]
	if !needFS {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(b.work, "ext4"), 0o755); err != nil {
		return err
	}
	if t := fsOf(b.work); !strings.HasPrefix(t, "ext4 ") {
		b.note("the workdir is not on ext4 (", t, "): the native and loop-ext4 references and the ext4 column are on that filesystem instead")
	}
	b.logf("mounting swapfs and go-fuse loopback in %s", b.work)
	if err := b.mountSwapfs(ctx); err != nil {
		return fmt.Errorf("swapfs: %w", err)
	}
	switch pt, err := b.probeGofusePassthrough(ctx); {
	case err != nil:
		b.gofusePassthrough = "unknown (probe failed: " + err.Error() + ")"
	case pt:
		b.gofusePassthrough = "on"
	default:
		b.gofusePassthrough = "off"
	}
	if err := b.mountGofuse(); err != nil {
		return fmt.Errorf("go-fuse loopback: %w", err)
	}
	if b.cfg.only["fio"] {
		if err := b.mountFloor(); err != nil {
			return fmt.Errorf("FUSE floor: %w", err)
		}
	}
	return nil
}

// findRepo walks up from the working directory to the swapfs module's go.mod.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/swapfs/swapfs\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%s is not inside the swapfs repository (no go.mod of github.com/swapfs/swapfs above it)", dir)
		}
	}
}

// ensureTools checks for the commands the bench runs and installs fio (Debian's) when the
// fio benchmark needs it.
func (b *bench) ensureTools(ctx context.Context) error {
	var missing []string
	for _, t := range []string{"dd", "mkswap", "swapon", "swapoff", "losetup", "umount", "ls", "git", b.goTool} {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing commands: %s", strings.Join(missing, ", "))
	}
	if !b.cfg.only["fio"] {
		return nil
	}
	if _, err := exec.LookPath("fio"); err == nil {
		return nil
	}
	b.logf("installing fio: apt-get install -y fio")
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	if _, err := runCmd(ctx, 10*time.Minute, env, "apt-get", "install", "-y", "fio"); err != nil {
		b.logf("apt-get install failed (%v); apt-get update, then again", err)
		if _, err := runCmd(ctx, 10*time.Minute, env, "apt-get", "update"); err != nil {
			return err
		}
		if _, err := runCmd(ctx, 10*time.Minute, env, "apt-get", "install", "-y", "fio"); err != nil {
			return err
		}
	}
	if _, err := exec.LookPath("fio"); err != nil {
		return errors.New("apt-get installed fio, but it is not on PATH")
	}
	return nil
}

// makeWorkdir makes the work directory on the repository's disk, and registers its removal
// as the last teardown step.
func (b *bench) makeWorkdir() error {
	if b.cfg.workdir != "" {
		if err := os.Mkdir(b.cfg.workdir, 0o755); err != nil {
			return fmt.Errorf("-workdir: %w (give a directory that does not exist yet: the bench removes it at the end)", err)
		}
		b.work, _ = filepath.Abs(b.cfg.workdir)
	} else {
		parent := "/var/tmp"
		if !sameDevice(parent, b.repo) {
			parent = b.repo
		}
		d, err := os.MkdirTemp(parent, "swapbench-")
		if err != nil {
			return err
		}
		b.work = d
	}
	b.undo.push("workdir "+b.work, func(context.Context) error { return removeWorkdir(b.work) })
	for _, d := range []string{"bin", "log", "run"} {
		if err := os.MkdirAll(filepath.Join(b.work, d), 0o755); err != nil {
			return err
		}
	}
	b.env = []string{"SWAPFS_RUN_DIR=" + filepath.Join(b.work, "run"), "SWAPFS_LOG_DIR=" + filepath.Join(b.work, "log")}
	b.logf("workdir %s", b.work)
	return nil
}

func sameDevice(a, b string) bool {
	var sa, sb unix.Stat_t
	return unix.Stat(a, &sa) == nil && unix.Stat(b, &sb) == nil && sa.Dev == sb.Dev
}

// removeWorkdir removes dir unless something is still mounted below it: removing through
// a mount would delete a filesystem's files, and a hung one would hang the bench.
func removeWorkdir(dir string) error {
	mounts, err := swap.Mounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if strings.HasPrefix(m.Mountpoint, dir+"/") {
			return fmt.Errorf("%s is still mounted; leaving %s in place", m.Mountpoint, dir)
		}
	}
	return os.RemoveAll(dir)
}

// build compiles swapfs, swapload and go-fuse's loopback (the version go.mod requires) into
// the workdir.
func (b *bench) build(ctx context.Context) error {
	bin := filepath.Join(b.work, "bin")
	b.bins = binaries{swapfs: filepath.Join(bin, "swapfs"), swapload: filepath.Join(bin, "swapload"), loopback: filepath.Join(bin, "loopback")}
	for _, t := range []struct{ out, pkg string }{
		{b.bins.swapfs, "./cmd/swapfs"},
		{b.bins.swapload, "./cmd/swapload"},
		{b.bins.loopback, "github.com/hanwen/go-fuse/v2/example/loopback"},
	} {
		b.logf("go build %s", t.pkg)
		if _, err := b.goCmd(ctx, 10*time.Minute, "build", "-buildvcs=false", "-o", t.out, t.pkg); err != nil {
			return err
		}
	}
	return nil
}

// dumpLog prints the swapfs daemon's log files in dir to stderr, for a failed teardown.
func (b *bench) dumpLog(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if data, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
			fmt.Fprintf(os.Stderr, "--- %s%s\n", e.Name(), tail(string(data), 2000))
		}
	}
}
