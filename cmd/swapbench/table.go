package main

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// table is one Markdown (GitHub-flavoured) table with a heading and notes under it.
type table struct {
	title  string   // "### title" above the table; none when empty
	intro  string   // a line between the title and the table
	header []string // column names
	rows   [][]string
	notes  []string // lines after the table (failures, footnotes)
	left   int      // leading columns aligned left (names); the rest, numbers, align right
}

// markdown renders t. Columns are padded to a common width so the table also reads well as
// plain text on a terminal; GitHub ignores the padding.
func (t table) markdown() string {
	var sb strings.Builder
	if t.title != "" {
		fmt.Fprintf(&sb, "### %s\n\n", t.title)
	}
	if t.intro != "" {
		fmt.Fprintf(&sb, "%s\n\n", t.intro)
	}
	width := make([]int, len(t.header))
	for i, h := range t.header {
		width[i] = max(3, utf8.RuneCountInString(escapeCell(h)))
	}
	for _, row := range t.rows {
		for i := range min(len(row), len(width)) {
			width[i] = max(width[i], utf8.RuneCountInString(escapeCell(row[i])))
		}
	}
	line := func(cells []string) {
		sb.WriteString("|")
		for i := range width {
			c := ""
			if i < len(cells) {
				c = escapeCell(cells[i])
			}
			fmt.Fprintf(&sb, " %s%s |", c, strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)))
		}
		sb.WriteString("\n")
	}
	line(t.header)
	sb.WriteString("|")
	for i, w := range width {
		if i < max(t.left, 1) {
			fmt.Fprintf(&sb, "%s|", strings.Repeat("-", w+2))
		} else {
			fmt.Fprintf(&sb, "%s:|", strings.Repeat("-", w+1))
		}
	}
	sb.WriteString("\n")
	for _, row := range t.rows {
		line(row)
	}
	if len(t.notes) > 0 {
		sb.WriteString("\n")
		for _, n := range t.notes {
			fmt.Fprintf(&sb, "%s\n", n)
		}
	}
	return sb.String()
}

// escapeCell keeps a cell on one line and its pipes from ending it.
func escapeCell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// fmtNum prints v with about three significant digits, as benchmark numbers deserve.
func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "—"
	case a >= 100 || v == 0:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// cell shows a summary as "median (min–max)"; a single value alone; "—" for none.
func (s summary) cell() string {
	switch s.n {
	case 0:
		return "—"
	case 1:
		return fmtNum(s.med)
	}
	return fmt.Sprintf("%s (%s–%s)", fmtNum(s.med), fmtNum(s.min), fmtNum(s.max))
}

// fmtRatio shows a ratio as "0.93×", "n/a" when it is unknown.
func fmtRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", r)
}

// direction says which way a metric is better.
type direction int

const (
	lowerBetter direction = iota
	higherBetter
)

func (d direction) String() string {
	if d == higherBetter {
		return "higher"
	}
	return "lower"
}

// rowSpec is one metric of one case, shown as a row of a comparison table.
type rowSpec struct {
	label   string
	cas     string
	metric  string
	better  direction
	noRatio bool // a ratio of this metric means nothing (values near zero or of either sign)
}

// comparison builds the table every benchmark prints: a row per metric, a column per system
// (median and range over the rounds), then subject ÷ reference for each reference.
func comparison(r *results, title, intro string, rows []rowSpec, systems []string, subject string, refs []string) table {
	t := table{title: title, intro: intro, header: []string{"metric", "better"}, left: 2}
	t.header = append(t.header, systems...)
	for _, ref := range refs {
		t.header = append(t.header, fmt.Sprintf("%s ÷ %s", subject, ref))
	}
	failed := map[failKey]bool{}
	for _, rs := range rows {
		row := []string{rs.label, rs.better.String()}
		for _, sys := range systems {
			c := r.summary(rs.cas, rs.metric, sys).cell()
			if f := r.failures(rs.cas, sys); len(f) > 0 {
				failed[failKey{rs.cas, sys}] = true
				if c == "—" {
					c = "FAIL"
				} else {
					c += fmt.Sprintf(" [%d failed]", len(f))
				}
			}
			row = append(row, c)
		}
		subj := r.summary(rs.cas, rs.metric, subject).med
		for _, ref := range refs {
			if rs.noRatio {
				row = append(row, "—")
				continue
			}
			row = append(row, fmtRatio(ratio(subj, r.summary(rs.cas, rs.metric, ref).med)))
		}
		t.rows = append(t.rows, row)
	}
	seen := map[string]bool{}
	for _, rs := range rows {
		for _, sys := range systems {
			k := failKey{rs.cas, sys}
			if !failed[k] || seen[rs.cas+"\x00"+sys] {
				continue
			}
			seen[rs.cas+"\x00"+sys] = true
			for _, why := range r.failures(rs.cas, sys) {
				t.notes = append(t.notes, fmt.Sprintf("- FAILED run, %s on %s: %s", rs.cas, sys, why))
			}
		}
	}
	return t
}
