package swap

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const procSwapsHeader = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"

// formatProcSwaps writes areas as swap_show in mm/swapfile.c does, escaping as
// seq_file_path(m, file, " \t\n\\") does.
func formatProcSwaps(areas []SwapArea) string {
	var b strings.Builder
	b.WriteString(procSwapsHeader)
	for _, a := range areas {
		var name strings.Builder
		for i := 0; i < len(a.Filename); i++ {
			c := a.Filename[i]
			if strings.IndexByte(" \t\n\\", c) >= 0 {
				fmt.Fprintf(&name, "\\%03o", c)
			} else {
				name.WriteByte(c)
			}
		}
		pad := max(40-name.Len(), 1)
		typ := a.Type
		if typ == "file" {
			typ = "file\t"
		}
		tab := func(v int64) string {
			if v < 10000000 {
				return "\t"
			}
			return ""
		}
		fmt.Fprintf(&b, "%s%*s%s\t%d\t%s%d\t%s%d\n", name.String(), pad, " ", typ,
			a.SizeKiB, tab(a.SizeKiB), a.UsedKiB, tab(a.UsedKiB), a.Priority)
	}
	return b.String()
}

func TestParseProcSwaps(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []SwapArea
	}{{
		name: "header only",
		in:   procSwapsHeader,
	}, {
		name: "header without newline",
		in:   strings.TrimSuffix(procSwapsHeader, "\n"),
	}, {
		// Copied from a machine with a partition, a zram device and a swapfile whose name
		// has a space and a backslash and which was deleted while active.
		name: "real",
		in: procSwapsHeader +
			"/dev/nvme0n1p3                          partition\t16777212\t1048576\t-2\n" +
			"/dev/zram0                              partition\t8388604\t\t0\t\t100\n" +
			"/var/swap\\040dir/sw\\134ap\\040(deleted)  file\t\t65532\t\t12\t\t-3\n" +
			"/dev/loop3                              partition\t65532\t\t0\t\t7\n",
		want: []SwapArea{
			{Filename: "/dev/nvme0n1p3", Type: "partition", SizeKiB: 16777212, UsedKiB: 1048576, Priority: -2},
			{Filename: "/dev/zram0", Type: "partition", SizeKiB: 8388604, UsedKiB: 0, Priority: 100},
			{Filename: `/var/swap dir/sw\ap (deleted)`, Type: "file", SizeKiB: 65532, UsedKiB: 12, Priority: -3},
			{Filename: "/dev/loop3", Type: "partition", SizeKiB: 65532, UsedKiB: 0, Priority: 7},
		},
	}, {
		name: "tab and newline escaped, other white space raw",
		in:   procSwapsHeader + "/s/a\\011b\\012c\rd\u00a0e\ff file\t\t4\t\t0\t\t-2\n",
		want: []SwapArea{{Filename: "/s/a\tb\nc\rd\u00a0e\ff", Type: "file", SizeKiB: 4, Priority: -2}},
	}, {
		name: "long name, one space of padding",
		in:   procSwapsHeader + "/" + strings.Repeat("x", 60) + " partition\t1\t\t0\t\t0\n",
		want: []SwapArea{{Filename: "/" + strings.Repeat("x", 60), Type: "partition", SizeKiB: 1, Priority: 0}},
	}, {
		name: "blank lines",
		in:   procSwapsHeader + "\n/dev/sda2 partition\t4\t\t0\t\t-2\n\n",
		want: []SwapArea{{Filename: "/dev/sda2", Type: "partition", SizeKiB: 4, Priority: -2}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcSwaps(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("parseProcSwaps: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseProcSwapsErrors(t *testing.T) {
	tests := []struct{ name, in, msg string }{
		{"empty", "", "header"},
		{"no header", "/dev/sda2 partition\t4\t0\t-2\n", "not the header"},
		{"garbage", procSwapsHeader + "hello world\n", "want 5 fields"},
		{"too many fields", procSwapsHeader + "/a b partition 4 0 -2\n", "want 5 fields"},
		{"binary", procSwapsHeader + "\x00\xff\x01\x02\x03\n", "want 5 fields"},
		{"size not a number", procSwapsHeader + "/a partition 4k 0 -2\n", "bad size"},
		{"negative size", procSwapsHeader + "/a partition -4 0 -2\n", "bad size"},
		{"used overflows", procSwapsHeader + "/a partition 4 99999999999999999999 -2\n", "bad used"},
		{"priority", procSwapsHeader + "/a partition 4 0 high\n", "bad priority"},
		{"lone backslash", procSwapsHeader + "/a\\b partition 4 0 -2\n", "bad escape"},
		{"short escape at end", procSwapsHeader + "/a\\04 partition 4 0 -2\n", "bad escape"},
		{"escape not octal", procSwapsHeader + "/a\\089 partition 4 0 -2\n", "bad escape"},
		{"escape above a byte", procSwapsHeader + "/a\\400 partition 4 0 -2\n", "bad escape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcSwaps(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("parseProcSwaps = %+v, want an error", got)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestParseProcSwapsRoundTrip(t *testing.T) {
	areas := []SwapArea{
		{Filename: "/dev/loop12", Type: "partition", SizeKiB: 262140, UsedKiB: 4, Priority: 32767},
		{Filename: "/a b\tc\nd\\e", Type: "file", SizeKiB: 123456789, UsedKiB: 98765432, Priority: -1},
	}
	got, err := parseProcSwaps(strings.NewReader(formatProcSwaps(areas)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, areas) {
		t.Fatalf("got  %+v\nwant %+v", got, areas)
	}
}

// FuzzParseProcSwaps checks that no input panics, and that whatever parses comes back the
// same after being written out the way the kernel writes it.
func FuzzParseProcSwaps(f *testing.F) {
	f.Add(procSwapsHeader)
	f.Add(procSwapsHeader + "/dev/zram0                              partition\t8388604\t\t0\t\t100\n")
	f.Add(procSwapsHeader + "/var/swap\\040dir/s\\134w  file\t\t65532\t\t12\t\t-3\n")
	f.Add(procSwapsHeader + "/a\\011b\\012c\rd\u00a0e file\t4\t0\t-2\n\n")
	f.Add(procSwapsHeader + "/a\\4 partition 4 0 -2\n")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, in string) {
		areas, err := parseProcSwaps(strings.NewReader(in))
		if err != nil {
			return
		}
		again, err := parseProcSwaps(strings.NewReader(formatProcSwaps(areas)))
		if err != nil {
			t.Fatalf("reformatted %+v does not parse: %v", areas, err)
		}
		if !reflect.DeepEqual(again, areas) {
			t.Fatalf("round trip changed\n%+v\nto\n%+v", areas, again)
		}
	})
}
