package main

import (
	"math"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []float64
		want float64
	}{
		{"one", []float64{7}, 7},
		{"odd, unsorted", []float64{9, 1, 5}, 5},
		{"even: mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"repeated", []float64{2, 2, 2}, 2},
		{"negative", []float64{-3, -1, -2}, -2},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := append([]float64(nil), c.in...)
			if got := median(in); got != c.want {
				t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
			}
			for i := range in {
				if in[i] != c.in[i] {
					t.Fatalf("median reordered its input: %v, was %v", in, c.in)
				}
			}
		})
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil) = %v, want NaN", got)
	}
}

func TestMinMax(t *testing.T) {
	lo, hi := minMax([]float64{3, -1, 8, 2})
	if lo != -1 || hi != 8 {
		t.Errorf("minMax = %v, %v; want -1, 8", lo, hi)
	}
	lo, hi = minMax([]float64{5})
	if lo != 5 || hi != 5 {
		t.Errorf("minMax of one = %v, %v; want 5, 5", lo, hi)
	}
	if lo, hi := minMax(nil); !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("minMax(nil) = %v, %v; want NaN, NaN", lo, hi)
	}
}

func TestRatio(t *testing.T) {
	for _, c := range []struct {
		subject, ref float64
		want         float64 // NaN: unknown
	}{
		{10, 5, 2},
		{5, 10, 0.5},
		{0, 10, 0},
		{10, 0, math.NaN()},
		{math.NaN(), 3, math.NaN()},
		{3, math.NaN(), math.NaN()},
		{-4, 2, -2},
	} {
		got := ratio(c.subject, c.ref)
		if math.IsNaN(c.want) != math.IsNaN(got) || (!math.IsNaN(got) && got != c.want) {
			t.Errorf("ratio(%v, %v) = %v, want %v", c.subject, c.ref, got, c.want)
		}
	}
}

func TestResults(t *testing.T) {
	r := newResults()
	r.add("swap-seq", "native", map[string]float64{"wall_s": 10, "p99": math.NaN()})
	r.add("swap-seq", "native", map[string]float64{"wall_s": 14})
	r.add("swap-seq", "native", map[string]float64{"wall_s": 11})
	r.fail("swap-seq", "swapfs", "round 1: boom")
	s := r.summary("swap-seq", "wall_s", "native")
	if s.n != 3 || s.med != 11 || s.min != 10 || s.max != 14 {
		t.Errorf("summary = %+v, want n 3, median 11, range 10..14", s)
	}
	if v := r.values("swap-seq", "p99", "native"); len(v) != 0 {
		t.Errorf("a NaN was recorded: %v", v)
	}
	if f := r.failures("swap-seq", "swapfs"); len(f) != 1 || f[0] != "round 1: boom" {
		t.Errorf("failures = %q", f)
	}
	if s := r.summary("swap-seq", "wall_s", "swapfs"); s.n != 0 || !math.IsNaN(s.med) {
		t.Errorf("summary of nothing = %+v, want n 0, NaN median", s)
	}
}

func TestTargetEval(t *testing.T) {
	r := newResults()
	r.add("swap-seq", "swapfs", map[string]float64{"wall_s": 12, "cache_growth_mib": 3})
	r.add("swap-seq", "loop-ext4", map[string]float64{"wall_s": 10})
	r.add("swap-seq", "native", map[string]float64{"wall_s": 10})
	r.add("fio", "swapfs", map[string]float64{"iops": 90})
	r.add("fio", "ext4", map[string]float64{"iops": 100})
	for _, c := range []struct {
		tg           target
		v            float64
		met, defined bool
	}{
		{target{cas: "swap-seq", metric: "wall_s", ref: "loop-ext4", atMost: true, bound: 1}, 1.2, false, true},
		{target{cas: "swap-seq", metric: "wall_s", ref: "native", atMost: true, bound: 1.25}, 1.2, true, true},
		{target{cas: "swap-seq", metric: "cache_growth_mib", atMost: true, bound: 8}, 3, true, true},
		{target{cas: "fio", metric: "iops", ref: "ext4", bound: 0.8}, 0.9, true, true},
		{target{cas: "fio", metric: "iops", ref: "ext4", bound: 1}, 0.9, false, true},
		{target{cas: "fio", metric: "iops", ref: "gofuse-loopback", bound: 1}, math.NaN(), false, false},
	} {
		v, met, ok := c.tg.eval(r)
		if ok != c.defined || met != c.met || (ok && math.Abs(v-c.v) > 1e-9) {
			t.Errorf("%+v: eval = %v, met %v, ok %v; want %v, %v, %v", c.tg, v, met, ok, c.v, c.met, c.defined)
		}
	}
}

func TestStreamAnalysis(t *testing.T) {
	b := &bench{res: newResults()}
	if got := b.streamAnalysis(); got != nil {
		t.Errorf("without results: %q, want nothing", got)
	}
	for sys, v := range map[string][4]float64{"ext4": {1000, 4000, 1000, 3000}, subject: {950, 2600, 1500, 4500}} {
		b.res.add(fioCase, sys, map[string]float64{"seqread_direct_1m": v[0], "seqwrite_direct_1m": v[1],
			"seqread_direct_1m_qd16": v[2], "seqwrite_direct_1m_qd16": v[3]})
	}
	got := strings.Join(b.streamAnalysis(), "")
	for _, want := range []string{"read 0.95× at depth 1, 1.50× at depth 16", "write 0.65× at depth 1, 1.50× at depth 16", "serial"} {
		if !strings.Contains(got, want) {
			t.Errorf("analysis %q lacks %q", got, want)
		}
	}
}

// TestFloorAnalysis: with ext4 at 4000 MiB/s (250 µs per MiB) and the floor at 5000 MiB/s
// (200 µs), 0.9× leaves 27.8 µs per MiB and the floor takes 7.2 times that; a daemon doing
// ext4's write on top reaches 250/450 = 0.56×. Each verdict appears only where it is true.
func TestFloorAnalysis(t *testing.T) {
	b := &bench{res: newResults()}
	if got := b.floorAnalysis(); got != nil {
		t.Errorf("without results: %q, want nothing", got)
	}
	for sys, v := range map[string][2]float64{"ext4": {4000, 4000}, subject: {2000, 3900}, floorName: {5000, 8000}} {
		b.res.add(fioCase, sys, map[string]float64{"seqwrite_direct_1m": v[0], "seqwrite_direct_1m_qd16": v[1]})
	}
	got := strings.Join(b.floorAnalysis(), "\n")
	for _, want := range []string{"200 µs per MiB on the floor", "ext4 takes 250 µs per MiB", "leaves 27.8 µs per MiB",
		"takes 7.20× of that", "would reach 0.56× ext4", "swapfs took 500 µs per MiB (0.50× ext4), 300 µs per MiB above the floor",
		"at most 77.8 µs per MiB (0.31× of ext4's)", "no daemon that serves the data itself", "is not the limit: it carries write 2.00×"} {
		if !strings.Contains(got, want) {
			t.Errorf("analysis %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "O_DIRECT read") {
		t.Errorf("analysis %q speaks of reads, which were not measured", got)
	}

	for _, c := range []struct {
		name                string
		ext4, swapfs, floor float64 // MiB/s
		want, not           []string
	}{
		// A disk slow enough for the floor to fit the budget: numbers, no verdict.
		{"slow disk", 200, 190, 5000, nil, []string{"no daemon", "meets 0.9×", "floor alone is below"}},
		// Above 0.9× although the floor exceeds the budget (e=250, f=200, s=270: own 70 µs,
		// 180 less than ext4's 250).
		{"made up by its own I/O", 4000, 1e6 / 270, 5000, []string{"meets 0.9× because its own write and bookkeeping took 180 µs per MiB less"},
			[]string{"no daemon"}},
		// A floor slower than 0.9× ext4 by itself (f=300 ≥ e/0.9=278).
		{"floor below 0.9×", 4000, 2000, 1e6 / 300, []string{"The floor alone is below 0.9× ext4", "whatever it does"},
			[]string{"at most -", "meets 0.9×"}},
		// swapfs faster than the floor (noise): no negative time of its own.
		{"noise", 4000, 6000, 5000, []string{"faster than the floor itself"}, []string{"above the floor", "no daemon", "meets 0.9×"}},
	} {
		b := &bench{res: newResults()}
		for sys, v := range map[string]float64{"ext4": c.ext4, subject: c.swapfs, floorName: c.floor} {
			b.res.add(fioCase, sys, map[string]float64{"seqwrite_direct_1m": v, "seqwrite_direct_1m_qd16": v})
		}
		got := strings.Join(b.floorAnalysis(), "\n")
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", c.name, got, w)
			}
		}
		for _, n := range c.not {
			if strings.Contains(got, n) {
				t.Errorf("%s: %q has %q", c.name, got, n)
			}
		}
	}
}
