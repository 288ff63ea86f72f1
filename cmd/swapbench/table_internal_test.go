package main

import (
	"math"
	"strings"
	"testing"
)

func TestMarkdown(t *testing.T) {
	tb := table{
		title:  "T",
		intro:  "intro line",
		header: []string{"name", "value"},
		rows:   [][]string{{"a|b", "1"}, {"long name", "22"}},
		notes:  []string{"- a note"},
	}
	want := "### T\n\nintro line\n\n" +
		"| name      | value |\n" +
		"|-----------|------:|\n" +
		"| a\\|b      | 1     |\n" +
		"| long name | 22    |\n" +
		"\n- a note\n"
	if got := tb.markdown(); got != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", got, want)
	}
}

func TestMarkdownPadsByRunes(t *testing.T) {
	tb := table{header: []string{"x", "y"}, rows: [][]string{{"µs ÷", "1.00×"}}, left: 2}
	lines := strings.Split(strings.TrimSpace(tb.markdown()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %q", lines)
	}
	for _, l := range lines {
		if n := len([]rune(l)); n != len([]rune(lines[0])) {
			t.Errorf("line %q is %d runes, the header %d: columns do not line up", l, n, len([]rune(lines[0])))
		}
	}
	if !strings.HasPrefix(lines[1], "|------|") || strings.Contains(lines[1], ":") {
		t.Errorf("separator %q: want both columns left-aligned", lines[1])
	}
}

func TestFmtNum(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want string
	}{
		{0, "0"}, {1234.5, "1234"}, {123.4, "123"}, {12.34, "12.3"}, {1.234, "1.23"}, {0.1234, "0.123"},
		{-5.5, "-5.50"}, {math.NaN(), "—"}, {math.Inf(1), "—"},
	} {
		if got := fmtNum(c.v); got != c.want {
			t.Errorf("fmtNum(%v) = %q, want %q", c.v, got, c.want)
		}
	}
}

func TestSummaryCell(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want string
	}{
		{nil, "—"},
		{[]float64{4.2}, "4.20"},
		{[]float64{12, 10, 15}, "12.0 (10.0–15.0)"},
	} {
		if got := summarize(c.xs).cell(); got != c.want {
			t.Errorf("cell(%v) = %q, want %q", c.xs, got, c.want)
		}
	}
	if got := fmtRatio(0.934); got != "0.93×" {
		t.Errorf("fmtRatio = %q", got)
	}
	if got := fmtRatio(math.NaN()); got != "n/a" {
		t.Errorf("fmtRatio(NaN) = %q", got)
	}
}

func TestComparison(t *testing.T) {
	r := newResults()
	for _, v := range []float64{10, 12, 11} {
		r.add("c", "ref", map[string]float64{"wall": v, "cache": 0})
	}
	for _, v := range []float64{20, 24} {
		r.add("c", "sub", map[string]float64{"wall": v, "cache": 2})
	}
	r.fail("c", "sub", "round 3: mismatch")
	r.fail("c", "other", "set-up: no")
	rows := []rowSpec{
		row("wall, s", "c", "wall", lowerBetter),
		{label: "cache, MiB", cas: "c", metric: "cache", better: lowerBetter, noRatio: true},
	}
	tb := comparison(r, "title", "", rows, []string{"ref", "other", "sub"}, "sub", []string{"ref", "other"})
	wantHeader := []string{"metric", "better", "ref", "other", "sub", "sub ÷ ref", "sub ÷ other"}
	if strings.Join(tb.header, ",") != strings.Join(wantHeader, ",") {
		t.Errorf("header %q, want %q", tb.header, wantHeader)
	}
	wantRows := [][]string{
		{"wall, s", "lower", "11.0 (10.0–12.0)", "FAIL", "22.0 (20.0–24.0) [1 failed]", "2.00×", "n/a"},
		{"cache, MiB", "lower", "0 (0–0)", "FAIL", "2.00 (2.00–2.00) [1 failed]", "—", "—"},
	}
	for i, w := range wantRows {
		if strings.Join(tb.rows[i], ",") != strings.Join(w, ",") {
			t.Errorf("row %d = %q, want %q", i, tb.rows[i], w)
		}
	}
	notes := strings.Join(tb.notes, "\n")
	for _, w := range []string{"c on sub: round 3: mismatch", "c on other: set-up: no"} {
		if !strings.Contains(notes, w) {
			t.Errorf("notes %q do not mention %q", notes, w)
		}
	}
	if len(tb.notes) != 2 {
		t.Errorf("want each failure noted once, got %q", tb.notes)
	}
}
