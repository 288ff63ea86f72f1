package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Benchmark 4: daemon cost. The daemon's RSS and CPU come from the swap runs (swapbench.go);
// here, allocations per swap request in swapfs code, from its Go benchmarks and tests.

// goBench is one result line of "go test -bench" with ReportAllocs.
type goBench struct {
	name        string
	n           int
	nsPerOp     float64
	mbPerS      float64 // NaN without SetBytes
	bytesPerOp  float64
	allocsPerOp float64
}

// parseGoBench reads the result lines of go test -bench output, e.g.
//
//	BenchmarkEngine/write-4KiB-2   2000   5123 ns/op   799.5 MB/s   0 B/op   0 allocs/op
func parseGoBench(out string) []goBench {
	var res []goBench
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		g := goBench{name: f[0], n: n, nsPerOp: nan(), mbPerS: nan(), bytesPerOp: nan(), allocsPerOp: nan()}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			switch f[i+1] {
			case "ns/op":
				g.nsPerOp = v
			case "MB/s":
				g.mbPerS = v
			case "B/op":
				g.bytesPerOp = v
			case "allocs/op":
				g.allocsPerOp = v
			}
		}
		res = append(res, g)
	}
	return res
}

// costReport is what the Go side of benchmark 4 found.
type costReport struct {
	benches     []goBench
	benchErr    error
	allocsTest  string // "PASS" or "FAIL" with the test's output
	allocsTestV string
}

// runCostBench runs swap's BenchmarkEngine and fs's TestSwapPathAllocs in the repository.
func (b *bench) runCostBench(ctx context.Context) {
	b.logf("cost: go test -bench BenchmarkEngine ./swap/")
	out, err := b.goCmd(ctx, 10*time.Minute, "test", "-count=1", "-run", "^$", "-bench", ".", "-benchtime", "2000x", "./swap/")
	b.cost.benches = parseGoBench(out)
	if err == nil && len(b.cost.benches) == 0 {
		err = fmt.Errorf("go test -bench printed no results%s", tail(out, 400))
	}
	b.cost.benchErr = err
	b.logf("cost: go test -run TestSwapPathAllocs ./fs/")
	out, err = b.goCmd(ctx, 10*time.Minute, "test", "-count=1", "-run", "^TestSwapPathAllocs$", "-v", "./fs/")
	switch {
	case err != nil:
		b.cost.allocsTest = "FAIL"
		b.cost.allocsTestV = err.Error()
	case !strings.Contains(out, "--- PASS: TestSwapPathAllocs"):
		b.cost.allocsTest = "not run"
		b.cost.allocsTestV = strings.TrimSpace(out)
	default:
		b.cost.allocsTest = "PASS"
		b.cost.allocsTestV = "0 allocations per 4 KiB and 1 MiB read and write through the swap path (testing.AllocsPerRun)"
	}
}

// goCmd runs the go tool in the repository.
func (b *bench) goCmd(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := command(ctx, nil, b.goTool, args...)
	cmd.Dir = b.repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("go %s: %w%s", strings.Join(args, " "), err, tail(string(out), 1500))
	}
	return string(out), nil
}
