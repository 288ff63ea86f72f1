package integration

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/swap"
	"github.com/swapfs/swapfs/swap/swaptest"
)

// swapWatch samples a swap area's use in /proc/swaps until stopped.
type swapWatch struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	maxUsed int64
}

func watchSwap(dev string) *swapWatch {
	w := &swapWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if a, _ := swap.ActiveSwapNamed(dev); a.UsedKiB > 0 {
				w.mu.Lock()
				w.maxUsed = max(w.maxUsed, a.UsedKiB<<10)
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// Stop ends the sampling and returns the most the area held, in bytes.
func (w *swapWatch) Stop() int64 {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxUsed
}

// TestPressureReferenceLoopExt4 runs the memory-pressure workload against swap on a loop
// device over a file on ext4: the native reference that swapfs's swap is measured against,
// and a check of the harness itself (cgroup, swap area, workload, cleanup).
func TestPressureReferenceLoopExt4(t *testing.T) {
	const swapSize = 768 << 20
	requireRoot(t)
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.EXT4_SUPER_MAGIC {
		t.Skipf("%s is not on ext4 (statfs type %#x): this reference is loop-on-ext4", dir, st.Type)
	}
	dev := newLoopSwap(t, dir, swapSize)
	if rep, _ := runPressure(t, dev, "reference loop-on-ext4"); rep.WallS > 120 {
		t.Logf("note: the reference run took %.0fs, more than the 2 minutes it is meant to", rep.WallS)
	}
}

// Pressure parameters: a 512 MiB working set in a 128 MiB cgroup, verified and rewritten
// twice.
const (
	pressureLimit   = 128 << 20
	pressureWorkMiB = 512
	// what cannot stay resident under the limit, and so must go through swap
	pressureMinSwapMiB = pressureWorkMiB - pressureLimit>>20
)

// runPressure runs swapload in a memory-limited cgroup with dev as the swap area it should
// use, and fails t on a mismatch, on a run that did not swap enough, or when dev never held
// any of the pages. Call it after making dev, so that the cgroup (made here) is removed
// first: swapoff under a live 128 MiB cgroup would have nowhere to put the pages.
func runPressure(t testing.TB, dev, what string, swaploadArgs ...string) (swaptest.Report, int64) {
	t.Helper()
	bin := buildSwapload(t)
	cg := newMemCgroup(t, pressureLimit)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// swapload's own timeout comes first, so that a slow run still reports what it measured.
	args := append([]string{"-size", strconv.Itoa(pressureWorkMiB), "-rounds", "2", "-timeout", "4m30s"}, swaploadArgs...)
	cmd := cg.Command(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	watch := watchSwap(dev)
	err := cmd.Run()
	maxUsed := watch.Stop()
	if ctx.Err() != nil {
		t.Fatalf("swapload still ran after 5 minutes; killed\nstderr:\n%s", stderr.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("swapload: %v", err)
	}
	t.Logf("swapload stderr:\n%s", strings.TrimSpace(stderr.String()))
	rep, perr := swaptest.ParseReport(stdout.String())
	if perr != nil {
		t.Fatalf("swapload exit %v: %v\nstdout:\n%s", err, perr, stdout.String())
	}
	if err != nil || rep.Mismatches != 0 || rep.Error != "" {
		t.Fatalf("swapload exit %v, %d mismatches %q, error %q; want exit 0 and none", err, rep.Mismatches, rep.FirstMismatches, rep.Error)
	}
	peak, perr := cg.MaxUsage()
	cgSwap, serr := cg.SwapUsage()
	t.Logf("%s: %d MiB in a %d MiB cgroup: %.1fs; swap-out %.0f MiB (%.0f MiB/s), swap-in %.0f MiB (%.0f MiB/s); "+
		"%d faults of %d touches, p50 %.0fµs p99 %.0fµs max %.0fµs; %s used at most %d MiB; cgroup peak %d MiB (%v), swap now %d MiB (%v)",
		what, pressureWorkMiB, pressureLimit>>20, rep.WallS, pagesMiB(rep.PswpoutPages), rep.SwapoutMiBs, pagesMiB(rep.PswpinPages), rep.SwapinMiBs,
		rep.Faults, rep.TouchesTimed, rep.FaultP50us, rep.FaultP99us, rep.FaultMaxus, dev, maxUsed>>20, peak>>20, perr, cgSwap>>20, serr)

	// The counters are system-wide, so other swapping can only raise them: a floor on them
	// is safe. Our device's own use shows that the pages went where we sent them.
	if got := pagesMiB(rep.PswpoutPages); got < pressureMinSwapMiB {
		t.Errorf("pswpout grew by %.0f MiB; a %d MiB workload under a %d MiB limit must swap out at least %d MiB",
			got, pressureWorkMiB, pressureLimit>>20, pressureMinSwapMiB)
	}
	if maxUsed == 0 {
		t.Errorf("%s never showed any use in /proc/swaps: the workload's pages went elsewhere (%s)", dev, strings.Join(swapAreas(), "; "))
	}
	return rep, maxUsed
}

func pagesMiB(pages uint64) float64 {
	return float64(pages) * float64(unix.Getpagesize()) / (1 << 20)
}
