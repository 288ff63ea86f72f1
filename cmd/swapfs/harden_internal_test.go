package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Capability numbers (capability.h).
const (
	capIPCLock     = 14
	capSysResource = 24
)

// hasCap reports whether this process has capability c in its effective set.
func hasCap(t testing.TB, c uint) bool {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return mask&(1<<c) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

func TestStatFlags(t *testing.T) {
	tests := []struct {
		stat    string
		want    uint64
		wantErr bool
	}{
		{stat: "1234 (swapfs) S 1 1234 1234 0 -1 4194560 200 0 0 0", want: 4194560},
		// A command name may hold spaces and parentheses (prctl PR_SET_NAME).
		{stat: "77 (a) b (c) R 1 77 77 0 -1 1573120 0 0", want: 1573120},
		{stat: "77 (x) R 1 2", wantErr: true},
		{stat: "no parenthesis at all", wantErr: true},
		{stat: "5 (x) S 1 5 5 0 -1 notanumber 0", wantErr: true},
	}
	for _, tt := range tests {
		got, err := statFlags(tt.stat)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("statFlags(%q) = %#x, %v; want %#x, error %v", tt.stat, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestThreadFlagsCountsThreads(t *testing.T) {
	total, flagged, err := threadFlags(pfIOFlusher)
	if err != nil {
		t.Fatal(err)
	}
	if total < 1 || flagged > total {
		t.Errorf("threadFlags = %d threads, %d flagged", total, flagged)
	}
	// No task has every bit set: the check must compare all of want, not any of it.
	if _, flagged, _ := threadFlags(^uint64(0)); flagged != 0 {
		t.Errorf("%d threads carry every flag bit", flagged)
	}
}

// threadIOFlusher reports whether the calling thread carries the IO_FLUSHER task flags.
func threadIOFlusher(t testing.TB) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		t.Fatal(err)
	}
	flags, err := statFlags(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return flags&pfIOFlusher == pfIOFlusher
}

// TestEnsureIOFlusher runs the path that asks for PR_SET_IO_FLUSHER, with exec replaced: on
// a machine without CAP_SYS_RESOURCE the kernel refuses it; with it, the flag is on the
// calling thread when exec is called, and taken off again when exec fails.
func TestEnsureIOFlusher(t *testing.T) {
	var calls []string
	var flaggedAtExec bool
	fakeExec := func(argv0 string, argv, envv []string) error {
		calls = append(calls, argv0)
		flaggedAtExec = threadIOFlusher(t)
		if !strings.Contains(strings.Join(envv, "\n"), envIOFlusherReexec+"=1") {
			t.Errorf("exec without the %s marker: the daemon would start itself forever", envIOFlusherReexec)
		}
		if strings.Join(argv, " ") != strings.Join(os.Args, " ") {
			t.Errorf("exec argv %q, want the same as now, %q", argv, os.Args)
		}
		return errors.New("exec refused by the test")
	}
	runtime.LockOSThread() // so that the flag checks below look at the thread prctl ran on
	defer runtime.UnlockOSThread()
	st := ensureIOFlusher(fakeExec)

	if !hasCap(t, capSysResource) {
		if st.set || !st.refused || st.err != "EPERM: no CAP_SYS_RESOURCE" {
			t.Errorf("without CAP_SYS_RESOURCE: state %+v, want refused with \"EPERM: no CAP_SYS_RESOURCE\"", st)
		}
		if len(calls) != 0 {
			t.Errorf("exec was called %d times after a refused prctl", len(calls))
		}
		return
	}
	// With the capability: the success path up to the exec.
	if len(calls) != 1 || calls[0] != "/proc/self/exe" {
		t.Fatalf("exec calls %q, want one of /proc/self/exe", calls)
	}
	if !flaggedAtExec {
		t.Errorf("the thread calling exec does not carry PF_MEMALLOC_NOIO|PF_LOCAL_THROTTLE")
	}
	if threadIOFlusher(t) {
		t.Errorf("after a failed exec the thread still carries the IO_FLUSHER flags")
	}
	if st.set || !strings.Contains(st.err, "exec refused by the test") {
		t.Errorf("state after a failed exec: %+v", st)
	}
}

// TestEnsureIOFlusherAfterReexec is the started-again daemon: it only verifies, and never
// execs again.
func TestEnsureIOFlusherAfterReexec(t *testing.T) {
	t.Setenv(envIOFlusherReexec, "1")
	st := ensureIOFlusher(func(string, []string, []string) error {
		t.Fatal("exec called by a process that was started again already")
		return nil
	})
	if _, still := os.LookupEnv(envIOFlusherReexec); still {
		t.Errorf("%s is still set: whatever the daemon starts would inherit it", envIOFlusherReexec)
	}
	if !st.reexeced {
		t.Errorf("state %+v does not say the process was started again", st)
	}
	// This test process was not started with the flag, so verifying must find it missing.
	if st.set || !strings.Contains(st.err, "threads carry it") {
		t.Errorf("verifying a process without the flag: %+v", st)
	}
}

func TestLogIOFlusher(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	logIOFlusher(logger, ioFlusherState{refused: true, err: ioFlusherRefused(unix.EPERM)})
	out := buf.String()
	if n := strings.Count(out, "\n"); n != 1 {
		t.Errorf("%d log lines, want one:\n%s", n, out)
	}
	for _, want := range []string{"level=WARN", "PR_SET_IO_FLUSHER refused (EPERM: no CAP_SYS_RESOURCE)",
		"may deadlock under extreme memory pressure", "CAP_SYS_RESOURCE to have it"} {
		if !strings.Contains(out, want) {
			t.Errorf("the warning lacks %q:\n%s", want, out)
		}
	}
}

// TestKeepReadyFD: the ready pipe survives the exec, or the starting process never hears.
func TestKeepReadyFD(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	fd := w.Fd()
	if flags, _ := unix.FcntlInt(fd, unix.F_GETFD, 0); flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("a new pipe is not close-on-exec; the test proves nothing")
	}
	t.Setenv(envReadyFD, strconv.Itoa(int(fd)))
	if err := keepReadyFD(); err != nil {
		t.Fatal(err)
	}
	if flags, _ := unix.FcntlInt(fd, unix.F_GETFD, 0); flags&unix.FD_CLOEXEC != 0 {
		t.Errorf("fd %d is still close-on-exec", fd)
	}
}

// The tests below change the process (mlockall, oom_score_adj, the GC): they run in a child,
// this test binary started again with envHardenHelper.
const envHardenHelper = "SWAPFS_TEST_HARDEN_HELPER"

// TestMain runs the child's body when the test binary is started as the child.
func TestMain(m *testing.M) {
	if spec := os.Getenv(envHardenHelper); spec != "" {
		hardenHelper(spec)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// hardenHelper is the child: it does what spec asks and prints the outcome as JSON.
func hardenHelper(spec string) {
	mode, arg, _ := strings.Cut(spec, ":")
	var out any
	switch mode {
	case "oom":
		v, _ := strconv.Atoi(arg)
		now, why := setOOMScoreAdj(v)
		out = map[string]any{"value": now, "err": why}
	case "harden":
		// The daemon's path: on a machine with CAP_SYS_RESOURCE this starts the test binary
		// again, with the same arguments, and continues here in the new image.
		fl := ensureIOFlusher(syscall.Exec)
		h := harden(slog.New(slog.NewTextHandler(os.Stderr, nil)), fl)
		out = h.report()
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

// runHelper runs the child in mode and decodes what it prints into v; it returns the
// child's stderr.
func runHelper(t *testing.T, mode string, v any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), envHardenHelper+"="+mode, "GOGC=", "GOMEMLIMIT=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper %s: %v\nstdout:\n%s\nstderr:\n%s", mode, err, &stdout, &stderr)
	}
	// The JSON line; the test framework prints around it.
	var line string
	for _, l := range strings.Split(stdout.String(), "\n") {
		if strings.HasPrefix(l, "{") {
			line = l
			break
		}
	}
	if err := json.Unmarshal([]byte(line), v); err != nil {
		t.Fatalf("helper %s: %v\nstdout:\n%s\nstderr:\n%s", mode, err, &stdout, &stderr)
	}
	return stderr.String()
}

func TestSetOOMScoreAdj(t *testing.T) {
	before, err := readOOMScoreAdj()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Value int    `json:"value"`
		Err   string `json:"err"`
	}
	runHelper(t, fmt.Sprintf("oom:%d", oomScoreAdjMin), &got)
	if hasCap(t, capSysResource) {
		if got.Value != oomScoreAdjMin || got.Err != "" {
			t.Errorf("with CAP_SYS_RESOURCE: oom_score_adj %d (%q), want %d", got.Value, got.Err, oomScoreAdjMin)
		}
	} else if got.Value != before || !strings.Contains(got.Err, "EACCES") || !strings.Contains(got.Err, "CAP_SYS_RESOURCE") {
		t.Errorf("without CAP_SYS_RESOURCE: oom_score_adj %d (%q), want %d unchanged and EACCES explained",
			got.Value, got.Err, before)
	}
	// Raising it needs no privilege: this shows the write itself works everywhere.
	want := max(before, 0) + 100
	runHelper(t, fmt.Sprintf("oom:%d", want), &got)
	if got.Value != want || got.Err != "" {
		t.Errorf("raising oom_score_adj to %d: got %d (%q)", want, got.Value, got.Err)
	}
	if now, _ := readOOMScoreAdj(); now != before {
		t.Errorf("the test process's own oom_score_adj changed from %d to %d", before, now)
	}
}

// TestHarden runs the whole of the daemon's hardening in a child and checks what it reports.
func TestHarden(t *testing.T) {
	var r hardeningReport
	log := runHelper(t, "harden", &r)

	if hasCap(t, capIPCLock) {
		if !r.Mlocked || r.MlockErr != "" || r.LockedBytes < 16<<20 {
			t.Errorf("with CAP_IPC_LOCK: mlocked %v (%q), %d bytes locked; want locked, with the heap reserve",
				r.Mlocked, r.MlockErr, r.LockedBytes)
		}
	}
	if !strings.HasPrefix(r.GC, "GOGC=off, memory limit 64.0 MiB") {
		t.Errorf("GC %q, want GOGC=off with the 64 MiB limit", r.GC)
	}
	if r.RSSBytes == 0 || r.Threads == 0 || r.RuntimeBytes < pregrowTarget*9/10 {
		t.Errorf("live values missing or the heap not pre-grown: %+v", r)
	}
	if hasCap(t, capSysResource) {
		if !r.IOFlusher || r.IOFlusherThreads != r.Threads || r.OOMScoreAdj != oomScoreAdjMin {
			t.Errorf("with CAP_SYS_RESOURCE: %+v; want IO_FLUSHER on every thread and oom_score_adj %d", r, oomScoreAdjMin)
		}
		return
	}
	if r.IOFlusher || r.IOFlusherErr != "EPERM: no CAP_SYS_RESOURCE" || r.IOFlusherThreads != 0 {
		t.Errorf("without CAP_SYS_RESOURCE: io_flusher %v (%q) on %d threads; want refused with EPERM",
			r.IOFlusher, r.IOFlusherErr, r.IOFlusherThreads)
	}
	if n := strings.Count(log, "PR_SET_IO_FLUSHER"); n != 1 {
		t.Errorf("PR_SET_IO_FLUSHER is mentioned %d times in the log, want one warning:\n%s", n, log)
	}
	if !strings.Contains(log, "level=WARN msg=\"PR_SET_IO_FLUSHER refused (EPERM: no CAP_SYS_RESOURCE); swap writeback") {
		t.Errorf("no clear warning about PR_SET_IO_FLUSHER in the log:\n%s", log)
	}
	if r.OOMScoreAdj == oomScoreAdjMin || !strings.Contains(r.OOMErr, "CAP_SYS_RESOURCE") {
		t.Errorf("without CAP_SYS_RESOURCE: oom_score_adj %d (%q)", r.OOMScoreAdj, r.OOMErr)
	}
}

func TestSetProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	os.Unsetenv("GOMAXPROCS")
	runtime.GOMAXPROCS(1)
	procs, set := setProcs()
	if !set || procs < 8 || runtime.GOMAXPROCS(0) != procs {
		t.Errorf("setProcs() = %d, %v with GOMAXPROCS %d; want at least 8 Ps, set", procs, set, runtime.GOMAXPROCS(0))
	}
	// An administrator's GOMAXPROCS stands.
	t.Setenv("GOMAXPROCS", "3")
	runtime.GOMAXPROCS(3)
	if procs, set := setProcs(); set || procs != 3 {
		t.Errorf("with GOMAXPROCS=3 in the environment: setProcs() = %d, %v; want 3, untouched", procs, set)
	}
}
