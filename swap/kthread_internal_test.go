package swap

import (
	"os"
	"testing"
)

func TestStatFlags(t *testing.T) {
	for _, c := range []struct {
		line string
		want uint64
		ok   bool
	}{
		{"37 (kworker/u8:2-flush-254:0) I 2 0 0 0 -1 69238880 0 0", 69238880, true},
		{"123 (a) b) (c) S 1 123 123 0 -1 4194560 5 0", 4194560, true},
		{"1 (init) S 0 1", 0, false},
		{"garbage", 0, false},
		{"", 0, false},
	} {
		got, ok := statFlags([]byte(c.line))
		if got != c.want || ok != c.ok {
			t.Errorf("statFlags(%q) = %d, %v; want %d, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

func TestKernelThreads(t *testing.T) {
	var k KernelThreads
	if k.Is(uint32(os.Getpid())) {
		t.Error("the test process counts as a kernel thread")
	}
	if !k.Is(2) { // kthreadd
		t.Error("kthreadd (pid 2) does not count as a kernel thread")
	}
	if k.Is(0) {
		t.Error("pid 0 (writeback on nobody's behalf, or a caller in another pid namespace) counts as the loop driver")
	}
	if raceEnabled {
		return // the race detector's instrumentation allocates
	}
	if a := testing.AllocsPerRun(100, func() { k.Is(2) }); a != 0 {
		t.Errorf("a known kernel thread costs %v allocs", a)
	}
	if a := testing.AllocsPerRun(100, func() { isKthread(uint32(os.Getpid())) }); a != 0 {
		t.Errorf("reading /proc/PID/stat costs %v allocs", a)
	}
}
