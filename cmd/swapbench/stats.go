package main

import (
	"math"
	"sort"
)

// results holds every value measured in one bench run: one value per round for each
// (case, metric, system), and the failed runs with their reasons. A case is one workload
// (e.g. "swap-seq", "fio", "meta"); a metric one number it reports.
type results struct {
	vals  map[resultKey][]float64
	fails map[failKey][]string
}

type resultKey struct{ cas, metric, system string }
type failKey struct{ cas, system string }

func newResults() *results {
	return &results{vals: map[resultKey][]float64{}, fails: map[failKey][]string{}}
}

// add records one run's metrics; a NaN (not measured) is left out.
func (r *results) add(cas, system string, metrics map[string]float64) {
	for m, v := range metrics {
		if math.IsNaN(v) {
			continue
		}
		k := resultKey{cas, m, system}
		r.vals[k] = append(r.vals[k], v)
	}
}

// fail records that one run of system in cas failed, and why.
func (r *results) fail(cas, system, why string) {
	k := failKey{cas, system}
	r.fails[k] = append(r.fails[k], why)
}

func (r *results) values(cas, metric, system string) []float64 {
	return r.vals[resultKey{cas, metric, system}]
}

func (r *results) failures(cas, system string) []string {
	return r.fails[failKey{cas, system}]
}

// summary is what a table cell shows of a metric's values: the median and the range.
type summary struct {
	n        int
	med      float64
	min, max float64
}

func summarize(xs []float64) summary {
	lo, hi := minMax(xs)
	return summary{n: len(xs), med: median(xs), min: lo, max: hi}
}

func (r *results) summary(cas, metric, system string) summary {
	return summarize(r.values(cas, metric, system))
}

// median of xs (the mean of the middle two for an even count); NaN when xs is empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return (s[mid-1] + s[mid]) / 2
}

// minMax returns the smallest and largest of xs; NaN, NaN when xs is empty.
func minMax(xs []float64) (lo, hi float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN()
	}
	lo, hi = xs[0], xs[0]
	for _, x := range xs[1:] {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return lo, hi
}

// ratio is subject/ref, the form every comparison in the report takes; NaN when either is
// unknown or ref is zero (a ratio against nothing says nothing).
func ratio(subject, ref float64) float64 {
	if math.IsNaN(subject) || math.IsNaN(ref) || ref == 0 {
		return math.NaN()
	}
	return subject / ref
}

func nan() float64 { return math.NaN() }
