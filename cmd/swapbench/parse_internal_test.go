package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseVmstat(t *testing.T) {
	m, err := parseVmstat("nr_free_pages 123\npswpin 42\npswpout 4096\n\n")
	if err != nil {
		t.Fatal(err)
	}
	if m["pswpin"] != 42 || m["pswpout"] != 4096 || m["nr_free_pages"] != 123 {
		t.Errorf("parseVmstat = %v", m)
	}
	if _, err := parseVmstat("pswpin x\n"); err == nil {
		t.Error("a non-number was accepted")
	}
	if _, err := parseVmstat(""); err == nil {
		t.Error("an empty vmstat was accepted")
	}
}

func TestParseMeminfo(t *testing.T) {
	m, err := parseMeminfo("MemTotal:       24684544 kB\nCached:           513024 kB\nHugePages_Total:       0\n")
	if err != nil {
		t.Fatal(err)
	}
	if m["MemTotal"] != 24684544<<10 || m["Cached"] != 513024<<10 || m["HugePages_Total"] != 0 {
		t.Errorf("parseMeminfo = %v", m)
	}
	if _, err := parseMeminfo("Cached: lots kB\n"); err == nil {
		t.Error("a non-number was accepted")
	}
}

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses; fields count from the last ')'.
	stat := "1234 (swap fs (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 500 1000 200 18446744073709551615\n"
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if got != 3.0 { // (250 + 50) ticks at USER_HZ 100
		t.Errorf("parseStatCPU = %v, want 3", got)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a b 0"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q) accepted", bad)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	got, err := parseVmRSS("Name:\tswapfs\nVmPeak:\t  100 kB\nVmRSS:\t   53104 kB\nThreads: 9\n")
	if err != nil || got != 53104<<10 {
		t.Errorf("parseVmRSS = %v, %v; want %d", got, err, 53104<<10)
	}
	if _, err := parseVmRSS("Name:\tkthreadd\n"); err == nil {
		t.Error("no VmRSS line was accepted")
	}
	if _, err := parseVmRSS("VmRSS:\t12 MB\n"); err == nil {
		t.Error("a unit other than kB was accepted")
	}
}

// fioOutput is trimmed fio 3.33 --output-format=json, after a warning fio printed first.
const fioOutput = `fio: note: both iodepth >= 1 and synchronous I/O engine are selected, queue depth will be capped at 1
{
  "fio version" : "fio-3.33",
  "timestamp" : 1763915000,
  "jobs" : [
    {
      "jobname" : "randread_direct_4k_qd16",
      "groupid" : 0,
      "error" : 0,
      "read" : {
        "io_bytes" : 62980096,
        "bw_bytes" : 62917178,
        "iops" : 15360.639361,
        "clat_ns" : {
          "min" : 30000,
          "N" : 15376,
          "percentile" : {
            "50.000000" : 61696,
            "99.000000" : 181248,
            "99.900000" : 403456
          }
        }
      },
      "write" : {
        "io_bytes" : 0,
        "bw_bytes" : 0,
        "iops" : 0.000000,
        "clat_ns" : {"min": 0, "N": 0}
      }
    }
  ],
  "disk_util" : []
}
`

func TestParseFio(t *testing.T) {
	r, err := parseFio([]byte(fioOutput))
	if err != nil {
		t.Fatal(err)
	}
	read := fioJob{key: "randread_direct_4k_qd16", rw: "randread", bs: "4k", direct: true, iodepth: 16}
	if got := read.value(r); got != 15360.639361 {
		t.Errorf("IOPS = %v", got)
	}
	if got := read.p99us(r); got != 181.248 {
		t.Errorf("p99 = %v µs, want 181.248", got)
	}
	seq := fioJob{key: "seqread", rw: "read", bs: "1m"}
	if got := seq.value(r); math.Abs(got-62917178.0/(1<<20)) > 1e-9 {
		t.Errorf("MiB/s = %v", got)
	}
	write := fioJob{key: "w", rw: "randwrite", bs: "4k"}
	if got := write.p99us(r); !math.IsNaN(got) {
		t.Errorf("p99 without percentiles = %v, want NaN", got)
	}

	bad := strings.Replace(fioOutput, `"error" : 0`, `"error" : 5`, 1)
	if _, err := parseFio([]byte(bad)); err == nil || !strings.Contains(err.Error(), "error 5") {
		t.Errorf("a job error was not reported: %v", err)
	}
	if _, err := parseFio([]byte("fio: engine libaio not loadable\n")); err == nil {
		t.Error("output without JSON was accepted")
	}
	two := strings.Replace(fioOutput, `"jobs" : [`, `"jobs" : [{"jobname": "x"},`, 1)
	if _, err := parseFio([]byte(two)); err == nil {
		t.Error("two jobs were accepted without group_reporting")
	}
}

func TestFioJobArgs(t *testing.T) {
	sz := sizesFor(false)
	for _, j := range fioJobs() {
		a := strings.Join(j.args("/d", sz), " ")
		for _, want := range []string{"--output-format=json", "--group_reporting", "--rw=" + j.rw, "--bs=" + j.bs} {
			if !strings.Contains(a, want) {
				t.Errorf("%s: %q lacks %s", j.key, a, want)
			}
		}
		if j.iodepth > 1 != strings.Contains(a, "--ioengine=libaio") {
			t.Errorf("%s: iodepth %d but %q", j.key, j.iodepth, a)
		}
		if j.direct != strings.Contains(a, "--direct=1") {
			t.Errorf("%s: direct %v but %q", j.key, j.direct, a)
		}
		if j.fresh == strings.Contains(a, "--time_based") || j.fresh != strings.Contains(a, "fio-fresh.dat") {
			t.Errorf("%s: fresh %v but %q", j.key, j.fresh, a)
		}
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/swapfs/swapfs/swap
cpu: AMD EPYC
BenchmarkEngine/write-04KiB-2         	    2000	     70584 ns/op	  58.03 MB/s	       0 B/op	       0 allocs/op
BenchmarkEngine/read-1MiB-2           	    2000	   1147719 ns/op	 913.61 MB/s	      16 B/op	       1 allocs/op
BenchmarkOther-2   100   5 ns/op
PASS
ok  	github.com/swapfs/swapfs/swap	4.1s
`
	got := parseGoBench(out)
	if len(got) != 3 {
		t.Fatalf("parseGoBench: %d results, want 3: %+v", len(got), got)
	}
	if g := got[0]; g.name != "BenchmarkEngine/write-04KiB-2" || g.n != 2000 || g.nsPerOp != 70584 || g.mbPerS != 58.03 || g.bytesPerOp != 0 || g.allocsPerOp != 0 {
		t.Errorf("first = %+v", g)
	}
	if g := got[1]; g.allocsPerOp != 1 || g.bytesPerOp != 16 {
		t.Errorf("second = %+v", g)
	}
	if g := got[2]; g.nsPerOp != 5 || !math.IsNaN(g.allocsPerOp) || !math.IsNaN(g.mbPerS) {
		t.Errorf("without ReportAllocs = %+v, want NaN allocs", g)
	}
}

func TestParseSwapfsStatus(t *testing.T) {
	st, err := parseSwapfsStatus([]byte(`{"pid": 4321, "store": "/s", "swap": {"files": [], "io": {"reads": 10, "writes": 2,
		"read_bytes": 40960, "write_bytes": 8192, "errors": 0, "read_latency": {"p50_ns": 131072, "p99_ns": 1048576}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if st.Pid != 4321 || st.Swap == nil || st.Swap.IO.Reads != 10 || st.Swap.IO.ReadBytes != 40960 || st.Swap.IO.ReadLat.P99 != 1048576 {
		t.Errorf("status = %+v", st)
	}
	if st, err := parseSwapfsStatus([]byte(`{"pid": 1}`)); err != nil || st.Swap != nil {
		t.Errorf("status without swap = %+v, %v", st, err)
	}
}

func TestMetaOpsPerSec(t *testing.T) {
	r := metaReport{Files: 1000, Dirs: 111, Seconds: map[string]float64{"create": 2, "stat": 0.5, "ls": 1.111, "rename": 4, "unlink": 0}}
	got := r.opsPerSec()
	if got["create"] != 500 || got["stat"] != 2000 || got["rename"] != 250 || math.Abs(got["ls"]-1000) > 1e-9 {
		t.Errorf("opsPerSec = %v", got)
	}
	if _, ok := got["unlink"]; ok {
		t.Error("a phase of 0 s got a rate")
	}
}

// TestMetaTree runs the metadata worker's phases on a small tree in a temporary directory.
func TestMetaTree(t *testing.T) {
	root := filepath.Join(t.TempDir(), "tree")
	rep, err := metaTree(root, 250)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Files != 250 || rep.Dirs != 1+metaTop+metaTop*metaSub {
		t.Errorf("report = %+v", rep)
	}
	for _, p := range metaPhases {
		if rep.Seconds[p.key] <= 0 {
			t.Errorf("phase %s not timed: %v", p.key, rep.Seconds)
		}
	}
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Errorf("the tree was left behind: %v", err)
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags([]string{"-quick", "-only", "swap, cost", "-rounds", "5"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.quick || c.rounds != 5 || !c.only["swap"] || !c.only["cost"] || c.only["fio"] || c.out != "docs/benchmarks.md" {
		t.Errorf("config = %+v", c)
	}
	for _, bad := range [][]string{{"-only", "disk"}, {"-rounds", "0"}, {"-only", ","}, {"extra"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestProfileSummary(t *testing.T) {
	byDSO := "    85.90%  [kernel.kallsyms]\n    13.62%  swapfs\n"
	flat := "    40.33%  [kernel.kallsyms]  [k] finish_task_switch.isra.0      -      -\n" +
		"    12.30%  [kernel.kallsyms]  [k] iowrite16      -      -\n" +
		"     3.00%  swapfs  [.] github.com/swapfs/swapfs/swap.(*Engine).Read\n"
	got := profileSummary(byDSO, flat)
	for _, want := range []string{"86% of the swapfs daemon's CPU", "finish_task_switch.isra.0 40%: context switches",
		"iowrite16 12%: virtio", "github.com/swapfs/swapfs/swap.(*Engine).Read 3%"} {
		if !strings.Contains(got, want) {
			t.Errorf("profileSummary = %q, lacks %q", got, want)
		}
	}
	if got := trimProfile(flat, 2); got != " 40.33%  [kernel.kallsyms]  [k]  finish_task_switch.isra.0\n 12.30%  [kernel.kallsyms]  [k]  iowrite16" {
		t.Errorf("trimProfile = %q", got)
	}
	if profileSummary("", "") != "" {
		t.Error("an empty profile gave a summary")
	}
}

func TestFileCache(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := filesCached([]string{p})
	if err != nil || n < 0 || n > 1<<20 {
		t.Fatalf("filesCached after a write = %d, %v; want 0..1 MiB", n, err)
	}
	if err := dropFileCache(p); err != nil {
		t.Fatal(err)
	}
	after, err := fileCached(p)
	if err != nil {
		t.Fatal(err)
	}
	// tmpfs pages are the file itself and cannot be dropped; elsewhere they go.
	if fsOf(p) != "" && !strings.HasPrefix(fsOf(p), "tmpfs ") && after > 64<<10 {
		t.Errorf("after dropFileCache %d bytes are still cached (was %d)", after, n)
	}
	if n, err := fileCached(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("a missing file gave %d bytes and no error", n)
	}
}
