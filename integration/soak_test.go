//go:build soak

package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Soak tests: the pressure and crash tests, repeated for a long time, to find what one run
// does not (a slow leak, a rare race, a crash window). "make soak" runs them: -tags soak and
// SWAPFS_SOAK=1. SWAPFS_SOAK_DURATION (a Go duration, default 30m) bounds each test.

// soakDuration is how long each soak test runs, or skips t when soaking was not asked for.
func soakDuration(t *testing.T) time.Duration {
	t.Helper()
	if os.Getenv("SWAPFS_SOAK") != "1" {
		t.Skip("soak tests run only with SWAPFS_SOAK=1 (make soak)")
	}
	d := 30 * time.Minute
	if v := os.Getenv("SWAPFS_SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			t.Fatalf("SWAPFS_SOAK_DURATION=%q: want a positive Go duration such as 2h", v)
		}
	}
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < d+5*time.Minute {
		t.Fatalf("go test -timeout leaves %v, less than SWAPFS_SOAK_DURATION=%v plus 5 minutes of cleanup", time.Until(deadline).Round(time.Second), d)
	}
	return d
}

// TestSoakSwapPressure alternates sequential and random pressure rounds through one
// active swapfile while file churn runs on the same mount, for the whole soak duration.
// After every round: no mismatch (runPressure), and the daemon's RSS and meta.db have not
// grown (the engine's counters are logged beside them). At the end: swapoff, the churn's files and the
// swapfile deleted, fsck clean, and every block free again.
func TestSoakSwapPressure(t *testing.T) {
	d := soakDuration(t)
	requireSwapTools(t)
	requireMemCgroup(t)
	m := mountStore(t)
	freeBefore := freeBlocks(t, m.Dir)
	f := filepath.Join(m.Dir, "swapfile")
	mkswapfile(t, m, f, "--size", pressureSwapSize)
	sw := swaponSwapfs(t, m, f, "-p", strconv.Itoa(testSwapPriority(t)))
	metaDB := filepath.Join(m.Store, "meta.db")

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var churned int
	var churnErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		churned, churnErr = churn(ctx, filepath.Join(m.Dir, "churn"))
	}()
	defer func() { stop(); wg.Wait() }()

	// The first round warms everything up; growth is measured from after it.
	var rssBase, dbBase int64
	end := time.Now().Add(d)
	rounds := 0
	for ; rounds == 0 || time.Now().Before(end); rounds++ {
		pattern := []string{"seq", "random"}[rounds%2]
		ok := t.Run(fmt.Sprintf("round-%03d-%s", rounds, pattern), func(t *testing.T) {
			runPressure(t, sw.dev, "soak "+pattern, "-pattern", pattern, "-seed", strconv.Itoa(rounds+1))
		})
		if !ok {
			t.Fatalf("round %d failed; stopping the soak", rounds)
		}
		st := swapStatus(t, m)
		rss, db := daemonRSS(t, m.pid), fileSize(t, metaDB)
		if rounds == 0 {
			rssBase, dbBase = rss, db
		}
		t.Logf("after round %d: daemon RSS %d KiB, meta.db %d bytes, engine %+v", rounds, rss>>10, db, st.Swap.IO)
		if rss > rssBase+32<<20 {
			t.Fatalf("daemon RSS grew from %d to %d KiB over %d rounds", rssBase>>10, rss>>10, rounds)
		}
		// The churn's own inodes and extents come and go; anything beyond that is a leak.
		if db > dbBase+2<<20 {
			t.Fatalf("meta.db grew from %d to %d bytes over %d rounds", dbBase, db, rounds)
		}
	}
	stop()
	wg.Wait()
	if churnErr != nil {
		t.Errorf("file churn on the mount during the soak: %v", churnErr)
	}
	if churned == 0 {
		t.Errorf("the file churn never completed a round in %v: the mount was starved", d)
	}
	t.Logf("%d pressure rounds, %d churn rounds in %v", rounds, churned, d)

	if r := swapfs(m.logDir, "swapoff", f); r.code != 0 || swapActive(sw.dev) {
		t.Fatalf("swapfs swapoff after the soak: exit %d %v\n%s", r.code, r.err, r.out)
	}
	if err := os.RemoveAll(filepath.Join(m.Dir, "churn")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f); err != nil {
		t.Fatal(err)
	}
	unix.Sync()
	if free := freeBlocks(t, m.Dir); free != freeBefore {
		t.Errorf("after deleting everything: %d free blocks, %d before the soak", free, freeBefore)
	}
	m.Unmount()
	requireClean(t, m.Store)
}

// TestSoakCrashLoop kills the daemon (SIGKILL) again and again at random moments while
// writers work, on one store: after each kill the store is fsck-clean, and every file
// fsynced before any kill so far reads back exactly.
func TestSoakCrashLoop(t *testing.T) {
	d := soakDuration(t)
	requireEnv(t)
	dir := t.TempDir()
	store, mnt := filepath.Join(dir, "store"), filepath.Join(dir, "mnt")
	mkfs(t, store, "--size", "2G")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	synced := map[string][]byte{}
	end := time.Now().Add(d)
	kills := 0
	for ; kills == 0 || time.Now().Before(end); kills++ {
		dm := startForeground(t, store, mnt)
		// Everything synced so far is there, byte for byte.
		for name, want := range synced {
			got, err := os.ReadFile(filepath.Join(mnt, name))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("after %d kills, fsynced %s reads %d bytes (%v); want %d", kills, name, len(got), err, len(want))
			}
		}
		// The last round's unsynced files, whatever survived of them, go; so does an old
		// third of the synced ones now and then: the store must not fill up.
		unsynced, _ := filepath.Glob(filepath.Join(mnt, "unsynced-*"))
		for _, p := range unsynced {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
		if len(synced) > 200 {
			for name := range synced {
				if rng.IntN(3) == 0 {
					if err := os.Remove(filepath.Join(mnt, name)); err != nil {
						t.Fatal(err)
					}
					delete(synced, name)
				}
			}
		}
		for i := range 10 {
			name := fmt.Sprintf("synced-%04d-%d", kills, i)
			data := randomBytes(t, rng.IntN(1<<20)+1)
			writeSynced(t, filepath.Join(mnt, name), data)
			synced[name] = data
		}
		killWhileWriting(t, dm, mnt, time.Duration(50+rng.IntN(1500))*time.Millisecond)
		r := swapfs(t.TempDir(), "fsck", store)
		if r.err != nil || r.code != 0 {
			t.Fatalf("after kill %d: swapfs fsck: exit %d %v\n%s\nthe store's metadata is kept in %s", kills, r.code, r.err, r.out, keepMeta(t, store))
		}
	}
	t.Logf("%d kills in %v; %d fsynced files kept", kills, d, len(synced))
}

// keepMeta copies a store's meta.db out of the test's temporary directories, which go when
// the test ends, and returns where it is.
func keepMeta(t *testing.T, store string) string {
	dir, err := os.MkdirTemp("", "swapfs-soak-failed-")
	if err != nil {
		return fmt.Sprintf("(nowhere: %v)", err)
	}
	b, err := os.ReadFile(filepath.Join(store, "meta.db"))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "meta.db"), b, 0o600)
	}
	if err != nil {
		return fmt.Sprintf("(nowhere: %v)", err)
	}
	return dir
}
