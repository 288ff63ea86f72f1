package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMixIsInvertible(t *testing.T) {
	for _, c := range []uint64{0xbf58476d1ce4e5b9, 0x94d049bb133111eb} {
		if got := c * inverse(c); got != 1 {
			t.Errorf("%#x * inverse = %#x, want 1", c, got)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	values := []uint64{0, 1, 1 << 63, ^uint64(0), 3<<roundShift | 12345}
	for range 10000 {
		values = append(values, rng.Uint64())
	}
	for _, v := range values {
		if got := unmix64(mix64(v)); got != v {
			t.Fatalf("unmix64(mix64(%#x)) = %#x", v, got)
		}
	}
}

// The pattern must differ between neighbouring words and between rounds, or a misplaced or
// stale page could verify.
func TestPatternDiffersByIndexAndRound(t *testing.T) {
	seen := map[uint64][2]uint64{}
	for round := range uint64(4) {
		for _, index := range []uint64{0, 1, 511, 512, 513, 1 << 20, indexMask} {
			v := patternWord(index, round)
			if prev, ok := seen[v]; ok {
				t.Fatalf("patternWord(%d, %d) = %#x, same as patternWord(%d, %d)", index, round, v, prev[0], prev[1])
			}
			seen[v] = [2]uint64{index, round}
		}
	}
}

func TestPageOrder(t *testing.T) {
	const n = 1000
	for _, pattern := range []string{"seq", "random"} {
		order := pageOrder(n, pattern, 7)
		seen := make([]bool, n)
		inPlace := 0
		for i, p := range order {
			if seen[p] {
				t.Fatalf("%s: page %d visited twice", pattern, p)
			}
			seen[p] = true
			if p == i {
				inPlace++
			}
		}
		if len(order) != n {
			t.Fatalf("%s: %d pages, want %d", pattern, len(order), n)
		}
		if pattern == "random" && inPlace > n/10 {
			t.Errorf("random order keeps %d of %d pages in place", inPlace, n)
		}
	}
	if a, b := pageOrder(n, "random", 7), pageOrder(n, "random", 7); a[0] != b[0] || a[n-1] != b[n-1] {
		t.Error("the same seed gave different orders")
	}
}

func TestVerifyDetects(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(b *buffer) // applied after filling every page with round 1
		count   int64
		explain string
	}{
		{"intact", func(*buffer) {}, 0, ""},
		{"flipped byte", func(b *buffer) { b.mem[3*4096+17] ^= 0x10 }, 1, "corrupt: differs in bits"},
		{"stale page", func(b *buffer) { b.fill(5, 0) }, 512, "stale: this word's value from round 0"},
		{"zeroed page", func(b *buffer) { clear(b.mem[2*4096 : 3*4096]) }, 512, "zero"},
		{"misplaced page", func(b *buffer) { copy(b.mem[1*4096:2*4096], b.mem[6*4096:7*4096]) }, 512,
			"misplaced: round 1's value of offset 0x6000 (page 6)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := newBuffer(8*4096, false)
			if err != nil {
				t.Fatal(err)
			}
			defer b.unmap()
			if b.pageWords != 512 {
				t.Skipf("page size %d: the offsets here assume 4096", b.pageWords*8)
			}
			for p := range b.pages {
				b.fill(p, 1)
			}
			tt.damage(b)
			var log mismatchLog
			for p := range b.pages {
				b.verify(p, 1, &log)
			}
			if log.count != tt.count {
				t.Fatalf("%d mismatches, want %d", log.count, tt.count)
			}
			if tt.count == 0 {
				return
			}
			if len(log.first) != maxReported && int64(len(log.first)) != tt.count {
				t.Errorf("kept %d mismatches, want %d", len(log.first), min(tt.count, maxReported))
			}
			got := log.first[0].describe(b.pageWords, uint64(len(b.words)), 2)
			if !strings.Contains(got, tt.explain) {
				t.Errorf("described as %q, want it to say %q", got, tt.explain)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i))
	}
	for _, tt := range []struct{ p, want int }{{50, 50}, {99, 99}, {100, 100}, {0, 1}} {
		if got := percentile(ds, tt.p); got != time.Duration(tt.want) {
			t.Errorf("p%d = %d, want %d", tt.p, got, tt.want)
		}
	}
	if got := percentile(ds[:1], 99); got != 1 {
		t.Errorf("p99 of one = %d, want 1", got)
	}
}

func TestParseFlagsRejects(t *testing.T) {
	for _, args := range [][]string{
		{"-size", "0"}, {"-rounds", "-1"}, {"-pattern", "zigzag"}, {"extra"}, {"-nosuchflag"},
	} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
}

// runSwapload runs the command in-process and decodes its JSON line.
func runSwapload(t *testing.T, args ...string) (int, report, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep report
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil && code != exitUsage {
		t.Fatalf("last stdout line is not the JSON report: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	return code, rep, stderr.String()
}

// Without a memory limit nothing is swapped; the run must still verify clean.
func TestRunSmall(t *testing.T) {
	for _, pattern := range []string{"seq", "random"} {
		t.Run(pattern, func(t *testing.T) {
			code, rep, stderr := runSwapload(t, "-size", "8", "-rounds", "2", "-pattern", pattern)
			if code != exitOK || rep.Mismatches != 0 || rep.Error != "" {
				t.Fatalf("exit %d, %d mismatches, error %q; want a clean run\n%s", code, rep.Mismatches, rep.Error, stderr)
			}
			pages := int64(8 << 20 / unix.Getpagesize())
			// Three verify passes (two rounds and the final one) time every page's first touch.
			if rep.TouchesTimed != 3*pages {
				t.Errorf("touches_timed %d, want %d", rep.TouchesTimed, 3*pages)
			}
			if rep.SizeMiB != 8 || rep.Pattern != pattern || rep.Rounds != 2 || rep.WallS <= 0 || rep.FaultThresholdUs != 20 {
				t.Errorf("report does not echo the run: %+v", rep)
			}
			if !strings.Contains(stderr, "slower than 20µs and count as faults") {
				t.Errorf("the summary does not say which touches count as faults:\n%s", stderr)
			}
		})
	}
}

func TestRunTimeout(t *testing.T) {
	code, rep, stderr := runSwapload(t, "-size", "64", "-rounds", "50", "-timeout", "1ns")
	if code != exitTimeout || !strings.Contains(rep.Error, "timeout") {
		t.Fatalf("exit %d, error %q; want exit %d and a timeout error\n%s", code, rep.Error, exitTimeout, stderr)
	}
}

func TestRunUsage(t *testing.T) {
	if code, _, _ := runSwapload(t, "-pattern", "zigzag"); code != exitUsage {
		t.Fatalf("exit %d, want %d", code, exitUsage)
	}
}

// A mismatch found in a pass must reach the report with its offset.
func TestReportListsMismatches(t *testing.T) {
	b, err := newBuffer(16*4096, false)
	if err != nil {
		t.Fatal(err)
	}
	defer b.unmap()
	var stop atomic.Bool
	r := &runner{buf: b, order: pageOrder(b.pages, "seq", 1), threshold: 20 * time.Microsecond, stop: &stop, maxRound: 1}
	if err := r.pass("fill", false, 0, true, 0); err != nil {
		t.Fatal(err)
	}
	b.mem[b.pageWords*8*9+8] ^= 1
	if err := r.pass("verify", true, 0, false, 0); err != nil {
		t.Fatal(err)
	}
	rep := r.report(config{sizeMiB: 0, pattern: "seq", threshold: 20 * time.Microsecond}, time.Second, nil)
	want := fmt.Sprintf("offset %#x (page 9, word 1)", b.pageWords*8*9+8)
	if rep.Mismatches != 1 || len(rep.FirstMismatches) != 1 || !strings.Contains(rep.FirstMismatches[0], want) {
		t.Fatalf("report: %d mismatches %q; want one at %s", rep.Mismatches, rep.FirstMismatches, want)
	}
	if rep.TouchesTimed != int64(b.pages) {
		t.Errorf("touches_timed %d, want %d (only verify passes are timed)", rep.TouchesTimed, b.pages)
	}
}
