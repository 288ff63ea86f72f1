package swaptest_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swapfs/swapfs/swap/swaptest"
)

func TestParseReport(t *testing.T) {
	out := "some line\n" + `{"size_mib":512,"mismatches":0,"wall_s":12.5,"swapin_mib_s":80.5,"swapout_mib_s":90,"fault_p50_us":120,"fault_p99_us":900,"faults":1000,"first_mismatches":["page 3"]}` + "\n"
	rep, err := swaptest.ParseReport(out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.SizeMiB != 512 || rep.WallS != 12.5 || rep.SwapinMiBs != 80.5 || rep.FaultP99us != 900 || len(rep.FirstMismatches) != 1 {
		t.Errorf("report = %+v", rep)
	}
	for _, bad := range []string{"swapload: usage\n", "", "{not json\n"} {
		if _, err := swaptest.ParseReport(bad); err == nil {
			t.Errorf("ParseReport(%q) accepted it", bad)
		}
	}
}

// A cgroup confines a process from its first instruction, reports its use, and Remove
// kills what is left in it and removes it.
func TestCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not running as root: making cgroups needs root")
	}
	if _, err := swaptest.MemoryController(); err != nil {
		t.Skip(err)
	}
	c, err := swaptest.NewCgroup("swaptest-", 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Remove(); err != nil {
			t.Error(err)
		}
	})
	if c.Note != "" {
		t.Log(c.Note)
	}
	limitFile := "memory.limit_in_bytes"
	if c.V2 {
		limitFile = "memory.max"
	}
	if b, err := os.ReadFile(c.Path + "/" + limitFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(64<<20) {
		t.Errorf("%s/%s = %q, %v; want %d", c.Path, limitFile, b, err, 64<<20)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := c.Command(ctx, "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// The shell writes its own pid into the cgroup, then becomes sleep.
	var pids []int
	for deadline := time.Now().Add(10 * time.Second); len(pids) == 0; time.Sleep(10 * time.Millisecond) {
		if pids, err = c.Pids(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the command never showed up in the cgroup")
		}
	}
	if len(pids) != 1 || pids[0] != cmd.Process.Pid {
		t.Errorf("cgroup holds %v; want only the command, pid %d", pids, cmd.Process.Pid)
	}
	if peak, err := c.MaxUsage(); err != nil || peak <= 0 {
		t.Errorf("MaxUsage = %d, %v", peak, err)
	}
	if _, err := c.SwapUsage(); err != nil {
		t.Logf("SwapUsage: %v (swap accounting may be off)", err)
	}
	if n, err := c.OOMKills(); err != nil || n != 0 {
		t.Errorf("OOMKills = %d, %v; want 0", n, err)
	}
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Path); !os.IsNotExist(err) {
		t.Errorf("after Remove, %s: %v", c.Path, err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("the command ended well although Remove killed it")
		}
	case <-time.After(30 * time.Second):
		t.Error("the command still runs 30 s after Remove")
	}
}
