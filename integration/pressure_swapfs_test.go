package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Item 11 of ../shared/swap-semantics.md: swap on swapfs under real memory pressure, in a
// cgroup: no mismatch, the pages really went through the swapfile, and the daemon's memory
// and meta.db stay flat.

const pressureSwapSize = "768M"

// daemonRSS is the resident set of pid, in bytes, from /proc/PID/status.
func daemonRSS(t testing.TB, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the daemon's status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// churn creates, writes, reads back and deletes files in dir until ctx ends, and returns how
// many rounds it did and the first error. It is other file work on the same mount while swap
// runs through it.
func churn(ctx context.Context, dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	data := make([]byte, 256<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	rounds := 0
	for ctx.Err() == nil {
		for i := range 16 {
			p := filepath.Join(dir, fmt.Sprintf("f%d", i))
			if err := os.WriteFile(p, data[:(i+1)*(16<<10)], 0o644); err != nil {
				return rounds, err
			}
			got, err := os.ReadFile(p)
			if err != nil {
				return rounds, err
			}
			if string(got) != string(data[:(i+1)*(16<<10)]) {
				return rounds, fmt.Errorf("%s read back wrong", p)
			}
		}
		for i := range 16 {
			if err := os.Remove(filepath.Join(dir, fmt.Sprintf("f%d", i))); err != nil {
				return rounds, err
			}
		}
		rounds++
	}
	return rounds, nil
}

func TestPressureSwapfs(t *testing.T) {
	for _, c := range []struct {
		name   string
		recipe bool // losetup + swapon(8) instead of swapfs swapon
		churn  bool
	}{
		{name: "swapfs-swapon"},
		{name: "plain-recipe", recipe: true},
		{name: "with-file-churn", churn: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			requireSwapTools(t)
			requireMemCgroup(t)
			m := mountStore(t)
			f := filepath.Join(m.Dir, "swapfile")
			mkswapfile(t, m, f, "--size", pressureSwapSize)
			var sw swapDevice
			if c.recipe {
				sw = swaponRecipe(t, f, 4096)
				// swapon(8) picks a negative priority; make ours win over any other area.
				mustRun(t, "swapoff", sw.dev)
				mustRun(t, "swapon", "-p", strconv.Itoa(testSwapPriority(t)), sw.dev)
			} else {
				sw = swaponSwapfs(t, m, f, "-p", strconv.Itoa(testSwapPriority(t)))
			}
			metaDB := filepath.Join(m.Store, "meta.db")
			rssBefore, dbBefore := daemonRSS(t, m.pid), fileSize(t, metaDB)

			var churned int
			var churnErr error
			var wg sync.WaitGroup
			ctx, stop := context.WithCancel(context.Background())
			stopChurn := sync.OnceFunc(func() { stop(); wg.Wait() })
			t.Cleanup(stopChurn) // also when runPressure fails: before the mount goes
			if c.churn {
				wg.Add(1)
				go func() {
					defer wg.Done()
					churned, churnErr = churn(ctx, filepath.Join(m.Dir, "churn"))
				}()
			}
			runPressure(t, sw.dev, "swapfs "+c.name)
			stopChurn()

			rssAfter, dbAfter := daemonRSS(t, m.pid), fileSize(t, metaDB)
			t.Logf("daemon RSS %d -> %d KiB; meta.db %d -> %d bytes; churn rounds %d", rssBefore>>10, rssAfter>>10, dbBefore, dbAfter, churned)
			if churnErr != nil {
				t.Errorf("file work on the mount during swap: %v", churnErr)
			}
			if c.churn && churned == 0 {
				t.Error("the file churn never completed a round while swap ran: the mount was starved")
			}
			if rssAfter > rssBefore+32<<20 {
				t.Errorf("daemon RSS grew from %d to %d KiB during swap", rssBefore>>10, rssAfter>>10)
			}
			maxDB := dbBefore
			if c.churn {
				maxDB += 1 << 20 // the churn's own inodes and extents come and go
			}
			if dbAfter > maxDB {
				t.Errorf("meta.db grew from %d to %d bytes during swap", dbBefore, dbAfter)
			}
			st := swapStatus(t, m)
			if st.Swap.IO.Writes == 0 || st.Swap.IO.Reads == 0 {
				t.Errorf("swap I/O did not go through swapfs's engine: %+v", st.Swap.IO)
			}
			t.Logf("engine: %+v", st.Swap.IO)
		})
	}
}
