package main

import (
	"strings"
	"testing"
)

func TestParseSwapOption(t *testing.T) {
	for _, c := range []struct {
		in       string
		path     string
		priority int
		bad      bool
	}{
		{in: "swapfile", path: "swapfile", priority: -1},
		{in: "swap/file:10", path: "swap/file", priority: 10},
		{in: "/abs/../file:0", path: "file", priority: 0},
		{in: "odd:name", path: "odd:name", priority: -1},
		{in: "f:40000", bad: true},
		{in: "", bad: true},
		{in: "..", bad: true},
	} {
		got, err := parseSwapOption(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("swap=%s accepted as %+v", c.in, got)
			}
			continue
		}
		if err != nil || got.path != c.path || got.priority != c.priority {
			t.Errorf("swap=%s: %+v, %v; want path %q priority %d", c.in, got, err, c.path, c.priority)
		}
	}
	o, err := parseMountOptions("rw,swap=a:5,swap=b,noatime", false)
	if err != nil || len(o.swaps) != 2 {
		t.Fatalf("parseMountOptions: %+v %v", o, err)
	}
	if s := o.String(); !strings.Contains(s, "swap=a:5") || !strings.Contains(s, "swap=b") {
		t.Errorf("options do not survive the trip to the daemon: %q", s)
	}
}
