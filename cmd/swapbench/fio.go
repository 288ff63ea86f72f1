package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Benchmark 2: file I/O with fio on a file in each filesystem.

const fioCase = "fio"

// fioFileName is the file the time-based jobs run on, in each filesystem's directory.
const fioFileName = "fio.dat"

// fioJob is one fio workload, given on fio's command line.
type fioJob struct {
	key     string // metric name in the results
	label   string
	rw      string // fio rw=
	bs      string
	direct  bool
	iodepth int  // > 1 means libaio
	fsync   bool // end_fsync=1: the time includes writing it all back
	// fresh jobs write their own new file, removed before each run, and run to a size
	// instead of for a time (a write-then-fsync of a whole file).
	fresh bool
}

// fioJobs are the jobs the issue lists, O_DIRECT ones first so the buffered ones' page
// cache does not help them (O_DIRECT reads ignore it anyway), and the 1 MiB ones also at
// queue depth 16: streaming readers and writers (databases, backup tools, the loop driver)
// keep several requests in flight, and then a FUSE daemon overlaps the kernel's copy of
// one request with the disk I/O of another, which at depth 1 it cannot.
func fioJobs() []fioJob {
	return []fioJob{
		{key: "seqread_direct_1m", label: "O_DIRECT 1 MiB seq read, MiB/s", rw: "read", bs: "1m", direct: true, iodepth: 1},
		{key: "seqwrite_direct_1m", label: "O_DIRECT 1 MiB seq write, MiB/s", rw: "write", bs: "1m", direct: true, iodepth: 1},
		{key: "seqread_direct_1m_qd16", label: "O_DIRECT 1 MiB seq read qd16 (libaio), MiB/s", rw: "read", bs: "1m", direct: true, iodepth: 16},
		{key: "seqwrite_direct_1m_qd16", label: "O_DIRECT 1 MiB seq write qd16 (libaio), MiB/s", rw: "write", bs: "1m", direct: true, iodepth: 16},
		{key: "randread_direct_4k_qd1", label: "O_DIRECT 4 KiB rand read qd1, IOPS", rw: "randread", bs: "4k", direct: true, iodepth: 1},
		{key: "randread_direct_4k_qd16", label: "O_DIRECT 4 KiB rand read qd16 (libaio), IOPS", rw: "randread", bs: "4k", direct: true, iodepth: 16},
		{key: "randwrite_direct_4k_qd1", label: "O_DIRECT 4 KiB rand write qd1, IOPS", rw: "randwrite", bs: "4k", direct: true, iodepth: 1},
		{key: "randwrite_direct_4k_qd16", label: "O_DIRECT 4 KiB rand write qd16 (libaio), IOPS", rw: "randwrite", bs: "4k", direct: true, iodepth: 16},
		{key: "seqwrite_buffered_1m_fsync", label: "buffered 1 MiB seq write + fsync, MiB/s", rw: "write", bs: "1m", fsync: true, fresh: true},
		{key: "randwrite_buffered_4k", label: "buffered 4 KiB rand write (+ fsync at end), IOPS", rw: "randwrite", bs: "4k", fsync: true},
	}
}

// perMiB says whether the job is measured in MiB/s (1 MiB blocks) rather than IOPS.
func (j fioJob) perMiB() bool { return j.bs == "1m" }

func (j fioJob) isRead() bool { return strings.Contains(j.rw, "read") }

// args is fio's command line for the job on dir.
func (j fioJob) args(dir string, sz sizes) []string {
	file := filepath.Join(dir, fioFileName)
	size := sz.fioFile
	if j.fresh {
		file, size = filepath.Join(dir, "fio-fresh.dat"), sz.fioFresh
	}
	engine := "psync"
	if j.iodepth > 1 {
		engine = "libaio"
	}
	a := []string{
		"--name=" + j.key, "--filename=" + file, "--size=" + strconv.FormatInt(size, 10),
		"--rw=" + j.rw, "--bs=" + j.bs, "--ioengine=" + engine, "--iodepth=" + strconv.Itoa(max(j.iodepth, 1)),
		"--direct=" + boolArg(j.direct), "--end_fsync=" + boolArg(j.fsync),
		"--randrepeat=0", "--norandommap", "--group_reporting", "--output-format=json",
	}
	if !j.fresh {
		a = append(a, "--time_based", "--runtime="+strconv.Itoa(int(sz.fioRuntime/time.Second)))
		if sz.fioRamp > 0 {
			a = append(a, "--ramp_time="+strconv.Itoa(int(sz.fioRamp/time.Second)))
		}
	}
	return a
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// fioDir is one direction (read or write) of a fio job's result.
type fioDir struct {
	BWBytes float64 `json:"bw_bytes"`
	IOPS    float64 `json:"iops"`
	IOBytes float64 `json:"io_bytes"`
	ClatNs  struct {
		Percentile map[string]float64 `json:"percentile"`
	} `json:"clat_ns"`
}

// fioResult is what one fio run reports (with group_reporting, one job).
type fioResult struct {
	Jobname string `json:"jobname"`
	Error   int    `json:"error"`
	Read    fioDir `json:"read"`
	Write   fioDir `json:"write"`
}

// parseFio reads fio --output-format=json. fio may print warnings before the JSON on
// stdout, so the document starts at the first '{'.
func parseFio(out []byte) (fioResult, error) {
	i := strings.IndexByte(string(out), '{')
	if i < 0 {
		return fioResult{}, errors.New("fio: no JSON in the output")
	}
	var doc struct {
		Jobs []fioResult `json:"jobs"`
	}
	if err := json.Unmarshal(out[i:], &doc); err != nil {
		return fioResult{}, fmt.Errorf("fio JSON: %w", err)
	}
	if len(doc.Jobs) != 1 {
		return fioResult{}, fmt.Errorf("fio JSON: %d jobs, want 1 (group_reporting)", len(doc.Jobs))
	}
	j := doc.Jobs[0]
	if j.Error != 0 {
		return j, fmt.Errorf("fio job %s: error %d", j.Jobname, j.Error)
	}
	return j, nil
}

// value is the job's figure of merit: MiB/s or IOPS of its direction.
func (j fioJob) value(r fioResult) float64 {
	d := r.Write
	if j.isRead() {
		d = r.Read
	}
	if j.perMiB() {
		return d.BWBytes / (1 << 20)
	}
	return d.IOPS
}

// p99us is the job's 99th percentile completion latency, in µs; NaN when fio gave none.
func (j fioJob) p99us(r fioResult) float64 {
	d := r.Write
	if j.isRead() {
		d = r.Read
	}
	if v, ok := d.ClatNs.Percentile["99.000000"]; ok {
		return v / 1e3
	}
	return nan()
}

// runFioBench lays out fio's file on each filesystem, then runs each job on each
// filesystem in turn, rounds times.
func (b *bench) runFioBench(ctx context.Context) {
	var fss []fsys
	all := b.filesystems()
	if b.floor != nil {
		all = append(all, fsys{floorName, b.floor.dir})
	}
	for _, f := range all {
		b.logf("fio: laying out %d MiB on %s", b.sz.fioFile>>20, f.name)
		if err := b.fioLayout(ctx, f.dir); err != nil {
			b.res.fail(fioCase, f.name, "layout: "+err.Error())
			b.logf("fio: %s: %v", f.name, err)
			continue
		}
		fss = append(fss, f)
	}
	for round := 1; round <= b.cfg.rounds && ctx.Err() == nil; round++ {
		for _, j := range fioJobs() {
			for _, f := range fss {
				if ctx.Err() != nil {
					return
				}
				if f.name == floorName && !j.onFloor() {
					continue
				}
				b.fioRun(ctx, j, f, round)
			}
		}
	}
}

func (b *bench) fioRun(ctx context.Context, j fioJob, f fsys, round int) {
	if j.fresh {
		os.Remove(filepath.Join(f.dir, "fio-fresh.dat"))
	}
	timeout := b.sz.fioRuntime + b.sz.fioRamp + 5*time.Minute
	out, err := runCmd(ctx, timeout, nil, "fio", j.args(f.dir, b.sz)...)
	var r fioResult
	if err == nil {
		r, err = parseFio([]byte(out))
	}
	if err != nil {
		b.res.fail(fioCase, f.name, fmt.Sprintf("%s round %d: %v", j.key, round, err))
		b.logf("fio %s round %d/%d %s: FAILED: %v", j.key, round, b.cfg.rounds, f.name, err)
		return
	}
	v := j.value(r)
	b.res.add(fioCase, f.name, map[string]float64{j.key: v, j.key + "_p99_us": j.p99us(r)})
	unit := "IOPS"
	if j.perMiB() {
		unit = "MiB/s"
	}
	b.logf("fio %s round %d/%d %s: %.0f %s", j.key, round, b.cfg.rounds, f.name, v, unit)
}

// fioLayout writes fio.dat in dir in full, so the read jobs read written blocks.
func (b *bench) fioLayout(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	_, err := runCmd(ctx, 10*time.Minute, nil, "fio", "--name=layout", "--filename="+filepath.Join(dir, fioFileName),
		"--size="+strconv.FormatInt(b.sz.fioFile, 10), "--rw=write", "--bs=1m", "--direct=1", "--ioengine=psync",
		"--end_fsync=1", "--output-format=json")
	return err
}

// fsys is a directory on one of the filesystems of benchmarks 2 and 3.
type fsys struct{ name, dir string }

func (b *bench) filesystems() []fsys {
	out := []fsys{{"ext4", filepath.Join(b.work, "ext4")}}
	if b.gofuse != nil {
		out = append(out, fsys{"gofuse-loopback", filepath.Join(b.gofuse.dir, "bench")})
	}
	if b.swapfs != nil {
		out = append(out, fsys{"swapfs", filepath.Join(b.swapfs.dir, "bench")})
	}
	return out
}
