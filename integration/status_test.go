package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// statusReply is the part of "swapfs status --json MOUNTPOINT" these tests read.
type statusReply struct {
	Error      string `json:"error"`
	Pid        int    `json:"pid"`
	Store      string `json:"store"`
	Mountpoint string `json:"mountpoint"`
	Hardening  *struct {
		Mlocked          bool   `json:"mlocked"`
		MlockErr         string `json:"mlock_error"`
		OOMScoreAdj      int    `json:"oom_score_adj"`
		OOMErr           string `json:"oom_score_adj_error"`
		IOFlusher        bool   `json:"io_flusher"`
		IOFlusherErr     string `json:"io_flusher_error"`
		GC               string `json:"gc"`
		LockedBytes      int64  `json:"locked_bytes"`
		Threads          int    `json:"threads"`
		IOFlusherThreads int    `json:"io_flusher_threads"`
	} `json:"hardening"`
	Swap *struct {
		Files []struct {
			Path   string `json:"path"`
			Loop   string `json:"loop"`
			Active bool   `json:"active"`
		} `json:"files"`
	} `json:"swap"`
}

func statusOf(t testing.TB, m *swapfsMount) statusReply {
	t.Helper()
	r := swapfs(m.logDir, "status", "--json", m.Dir)
	if r.err != nil || r.code != 0 {
		m.dumpLog()
		t.Fatalf("swapfs status --json %s: exit %d %v\n%s", m.Dir, r.code, r.err, r.out)
	}
	var st statusReply
	if err := json.Unmarshal([]byte(r.out), &st); err != nil {
		t.Fatalf("swapfs status --json %s: %v\n%s", m.Dir, err, r.out)
	}
	if st.Hardening == nil || st.Swap == nil {
		t.Fatalf("swapfs status --json %s: no hardening or swap part:\n%s", m.Dir, r.out)
	}
	return st
}

// Capability numbers (linux/capability.h).
const (
	capIPCLock     = 14
	capSysResource = 24
)

// procStatusField returns a field of /proc/PID/status, or of another file of the same form.
func procStatusField(t testing.TB, path, name string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in %s", name, path)
	return ""
}

func procKiB(t testing.TB, path, name string) int64 {
	t.Helper()
	v := procStatusField(t, path, name)
	n, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil {
		t.Fatalf("%s in %s: %q", name, path, v)
	}
	return n
}

func pidHasCap(t testing.TB, pid, c int) bool {
	t.Helper()
	mask, err := strconv.ParseUint(procStatusField(t, fmt.Sprintf("/proc/%d/status", pid), "CapEff"), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return mask&(1<<c) != 0
}

// ioFlusherThreads counts the daemon's threads and those with PF_MEMALLOC_NOIO and
// PF_LOCAL_THROTTLE in their task flags (include/linux/sched.h), which PR_SET_IO_FLUSHER sets.
func ioFlusherThreads(t testing.TB, pid int) (total, flagged int) {
	t.Helper()
	const want = 0x00080000 | 0x00100000
	stats, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		flags, err := strconv.ParseUint(fields[6], 10, 64) // field 9, proc(5)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		total++
		if flags&want == want {
			flagged++
		}
	}
	return total, flagged
}

func daemonLog(t testing.TB, m *swapfsMount) string {
	t.Helper()
	entries, _ := os.ReadDir(m.logDir)
	var all strings.Builder
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(m.logDir, e.Name()))
		all.Write(b)
	}
	return all.String()
}

// TestStatus: "swapfs status" reports what the daemon really has, as /proc shows it from
// outside: memory locked, oom_score_adj and IO_FLUSHER, each with why it is missing.
func TestStatus(t *testing.T) {
	m := mountStore(t)
	st := statusOf(t, m)
	h := st.Hardening
	if st.Pid != m.pid || st.Mountpoint != m.Dir || st.Store != m.Store || st.Error != "" {
		t.Errorf("status names pid %d, %s on %s (%q); want pid %d, %s on %s", st.Pid, st.Store, st.Mountpoint,
			st.Error, m.pid, m.Store, m.Dir)
	}
	if len(st.Swap.Files) != 0 {
		t.Errorf("a new mount reports swapfiles: %+v", st.Swap.Files)
	}
	procDir := fmt.Sprintf("/proc/%d", m.pid)

	// mlockall: the daemon has locked, resident memory (the pre-grown heap at least).
	if pidHasCap(t, m.pid, capIPCLock) {
		if !h.Mlocked || h.MlockErr != "" {
			t.Errorf("the daemon has CAP_IPC_LOCK but reports mlocked %v (%q)", h.Mlocked, h.MlockErr)
		}
		if vmlck := procKiB(t, procDir+"/status", "VmLck"); vmlck == 0 {
			t.Errorf("VmLck of the daemon is 0")
		}
		if locked := procKiB(t, procDir+"/smaps_rollup", "Locked"); locked < 16<<10 {
			t.Errorf("the daemon has %d KiB resident and locked; want the heap reserve at least", locked)
		}
	}
	if h.LockedBytes == 0 && h.Mlocked {
		t.Errorf("status says mlocked but reports no locked memory")
	}

	// oom_score_adj: what the daemon reports is what the kernel has.
	b, err := os.ReadFile(procDir + "/oom_score_adj")
	if err != nil {
		t.Fatal(err)
	}
	adj, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if adj != h.OOMScoreAdj {
		t.Errorf("status says oom_score_adj %d, /proc says %d", h.OOMScoreAdj, adj)
	}
	hasResource := pidHasCap(t, m.pid, capSysResource)
	if hasResource && adj != -1000 {
		t.Errorf("the daemon has CAP_SYS_RESOURCE but oom_score_adj is %d (%q), want -1000", adj, h.OOMErr)
	}
	if !hasResource && (adj == -1000 || !strings.Contains(h.OOMErr, "CAP_SYS_RESOURCE")) {
		// Lowering oom_score_adj below 0 needs CAP_SYS_RESOURCE (fs/proc/base.c).
		t.Errorf("without CAP_SYS_RESOURCE: oom_score_adj %d, reason %q; want the missing capability named", adj, h.OOMErr)
	}

	// IO_FLUSHER, checked on every thread from outside.
	total, flagged := ioFlusherThreads(t, m.pid)
	if hasResource {
		if !h.IOFlusher || flagged != total {
			t.Errorf("with CAP_SYS_RESOURCE: io_flusher %v (%q), %d of %d threads flagged", h.IOFlusher, h.IOFlusherErr, flagged, total)
		}
	} else {
		if h.IOFlusher || h.IOFlusherErr != "EPERM: no CAP_SYS_RESOURCE" || flagged != 0 {
			t.Errorf("without CAP_SYS_RESOURCE: io_flusher %v (%q), %d of %d threads flagged; want not set, EPERM",
				h.IOFlusher, h.IOFlusherErr, flagged, total)
		}
		log := daemonLog(t, m)
		if n := strings.Count(log, "PR_SET_IO_FLUSHER refused (EPERM: no CAP_SYS_RESOURCE)"); n != 1 {
			t.Errorf("the daemon log warns %d times about PR_SET_IO_FLUSHER, want once:\n%s", n, log)
		}
	}
	if !strings.HasPrefix(h.GC, "GOGC=off") {
		t.Errorf("gc %q, want GOGC=off with a memory limit", h.GC)
	}

	// The human form, for every mount: ours is there, missing protections said loudly.
	r := swapfs(m.logDir, "status")
	head := fmt.Sprintf("%s: swapfs store %s, daemon pid %d", m.Dir, m.Store, m.pid)
	if r.err != nil || !strings.Contains(r.out, head) {
		t.Fatalf("swapfs status: exit %d %v; want a section starting %q:\n%s", r.code, r.err, head, r.out)
	}
	if r.code != 0 {
		// Other tests' mounts may come and go meanwhile; a failure must not be ours.
		for _, line := range strings.Split(r.out, "\n") {
			if strings.HasPrefix(line, "swapfs status:") && strings.Contains(line, m.Dir) {
				t.Errorf("swapfs status failed for our mount: %s", line)
			}
		}
	}
	section := r.out[strings.Index(r.out, head):]
	if i := strings.Index(section, "\n\n"); i > 0 {
		section = section[:i]
	}
	for _, want := range []string{"swapfiles: none", "swap I/O: 0 requests", "mlockall:", "oom_score_adj:", "IO_FLUSHER:", "GC:"} {
		if !strings.Contains(section, want) {
			t.Errorf("swapfs status lacks %q:\n%s", want, section)
		}
	}
	if !hasResource {
		for _, want := range []string{"IO_FLUSHER:    NOT SET (EPERM: no CAP_SYS_RESOURCE)", "oom_score_adj: NOT -1000", "WARNING:"} {
			if !strings.Contains(section, want) {
				t.Errorf("swapfs status does not flag a missing protection with %q:\n%s", want, section)
			}
		}
	}
}

// TestStatusNotSwapfs: a directory that is not a swapfs mount is refused clearly.
func TestStatusNotSwapfs(t *testing.T) {
	requireEnv(t)
	dir := t.TempDir()
	r := swapfs(dir, "status", dir)
	if r.err != nil || r.code == 0 || !strings.Contains(r.out, dir+" is not a swapfs mountpoint") {
		t.Errorf("swapfs status %s: exit %d %v; want a failure saying it is not a swapfs mountpoint:\n%s", dir, r.code, r.err, r.out)
	}
}

// TestStatusVolumeAtRisk: a store whose data volume is in memory (a file on tmpfs) mounts,
// and status says loudly that its swapfiles are at risk; the default store, on this
// machine's disk, is fit.
func TestStatusVolumeAtRisk(t *testing.T) {
	requireEnv(t)
	var fs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		t.Skipf("no tmpfs on /dev/shm to put a data volume in (%v)", err)
	}
	vol, err := os.CreateTemp("/dev/shm", "swapfs-test-volume-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(vol.Name()) })
	if err := vol.Truncate(16 << 20); err != nil {
		t.Fatal(err)
	}
	vol.Close()
	store := filepath.Join(t.TempDir(), "store")
	mkfs(t, store, "--device", vol.Name())
	m := mountStore(t, withStore(store))
	if out := swapfs(m.logDir, "status", m.Dir).out; !strings.Contains(out, "data volume:   AT RISK (the data volume is in memory (tmpfs)") {
		t.Errorf("status of a store on tmpfs does not say it is at risk:\n%s", out)
	}
	fit := mountStore(t)
	if out := swapfs(fit.logDir, "status", fit.Dir).out; !strings.Contains(out, "data volume:   fit for swap writes") {
		t.Errorf("status of a store on disk:\n%s", out)
	}
}

var controlSocketLine = regexp.MustCompile(`msg="control socket ready" socket=("(?:[^"\\]|\\.)*"|\S+)`)

// TestStatusDaemonNotAnswering: with its control socket gone, status fails and says which
// mount and what to check.
func TestStatusDaemonNotAnswering(t *testing.T) {
	m := mountStore(t)
	match := controlSocketLine.FindStringSubmatch(daemonLog(t, m))
	if match == nil {
		t.Fatalf("the daemon log does not name its control socket:\n%s", daemonLog(t, m))
	}
	sock := match[1]
	if strings.HasPrefix(sock, `"`) { // slog quotes a value with spaces or escapes
		var err error
		if sock, err = strconv.Unquote(sock); err != nil {
			t.Fatalf("socket path %s in the log: %v", match[1], err)
		}
	}
	aside := sock + ".aside"
	if err := os.Rename(sock, aside); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Rename(aside, sock) })

	r := swapfs(m.logDir, "status", m.Dir)
	if r.err != nil || r.code == 0 || !strings.Contains(r.out, "is swapfs mounted on "+m.Dir+"?") {
		t.Errorf("status of a mount whose daemon cannot be reached: exit %d %v; want a failure asking whether swapfs is mounted on %s:\n%s",
			r.code, r.err, m.Dir, r.out)
	}
	if err := os.Rename(aside, sock); err != nil {
		t.Fatal(err)
	}
	statusOf(t, m)
}

// TestSignalRefusedWhileSwapActive: item 10 of swap-semantics.md, the daemon's side. With a
// swapfile active, SIGTERM makes the daemon say why it stays and keep serving; after swapoff
// the same signal unmounts.
func TestSignalRefusedWhileSwapActive(t *testing.T) {
	requireEnv(t)
	for _, tool := range []string{"losetup", "mkswap", "swapon", "swapoff", "fallocate"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s (util-linux) is not installed", tool)
		}
	}
	m := mountStore(t)
	file := filepath.Join(m.Dir, "swapfile")
	mustRun(t, "fallocate", "-l", "16M", file)
	if err := os.Chmod(file, 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "mkswap", file)
	dev := swaponRecipe(t, file, 4096).dev

	if err := syscall.Kill(m.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(daemonLog(t, m), "refusing to unmount") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	log := daemonLog(t, m)
	if !strings.Contains(log, "refusing to unmount: swapfile(s) /swapfile") || !strings.Contains(log, "swapfs swapoff") {
		t.Errorf("the daemon log does not say it refused to unmount for the active swapfile:\n%s", log)
	}
	if !alive(m.pid) || !mounted(m.Dir) {
		t.Fatalf("SIGTERM with active swap: daemon alive %v, mounted %v; want both", alive(m.pid), mounted(m.Dir))
	}
	st := statusOf(t, m)
	if len(st.Swap.Files) != 1 || !st.Swap.Files[0].Active || st.Swap.Files[0].Loop != dev {
		t.Errorf("status after the refused SIGTERM: %+v, want %s active on %s", st.Swap.Files, file, dev)
	}

	releaseSwap(t, dev)
	if err := syscall.Kill(m.pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !waitExit(m.pid, exitTimeout) {
		t.Fatalf("the daemon still runs %v after SIGTERM with no swap active:\n%s", exitTimeout, daemonLog(t, m))
	}
	if mounted(m.Dir) {
		t.Errorf("%s is still mounted after the daemon exited", m.Dir)
	}
}
