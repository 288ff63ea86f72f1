package meta

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// openSpaceDB opens an empty bbolt database holding every bucket of the format.
func openSpaceDB(t testing.TB) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "meta.db"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open db: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return setFreeCount(tx, 0)
	})
	if err != nil {
		t.Fatalf("create buckets: %v", err)
	}
	return db
}

// spaceTx returns a write transaction on a fresh database, rolled back at cleanup.
func spaceTx(t testing.TB) *bolt.Tx {
	t.Helper()
	tx, err := openSpaceDB(t).Begin(true)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	t.Cleanup(func() { tx.Rollback() })
	return tx
}

// setFree makes runs the free space, as release would have left it.
func setFree(t testing.TB, tx *bolt.Tx, runs ...run) {
	t.Helper()
	var sum uint64
	for _, r := range runs {
		if err := putFree(tx, r); err != nil {
			t.Fatal(err)
		}
		sum += r.len
	}
	if err := setFreeCount(tx, sum); err != nil {
		t.Fatal(err)
	}
}

func freeRuns(t testing.TB, tx *bolt.Tx) []run {
	t.Helper()
	var out []run
	if err := forEachFree(tx, func(r run) error { out = append(out, r); return nil }); err != nil {
		t.Fatalf("forEachFree: %v", err)
	}
	return out
}

func mustCheckFree(t testing.TB, tx *bolt.Tx) {
	t.Helper()
	for _, p := range checkFree(tx) {
		t.Errorf("checkFree: %v", p)
	}
}

func mustFreeCount(t testing.TB, tx *bolt.Tx) uint64 {
	t.Helper()
	n, err := freeCount(tx)
	if err != nil {
		t.Fatalf("freeCount: %v", err)
	}
	return n
}

// dumpBuckets renders every bucket, to show that a failed operation changed nothing.
func dumpBuckets(tx *bolt.Tx) string {
	var sb strings.Builder
	for _, name := range allBuckets {
		tx.Bucket(name).ForEach(func(k, v []byte) error {
			fmt.Fprintf(&sb, "%s %x %x\n", name, k, v)
			return nil
		})
	}
	return sb.String()
}

func sameRuns(a, b []run) bool { return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b) }

func TestAllocate(t *testing.T) {
	cases := []struct {
		name      string
		free      []run
		n, goal   uint64
		want      []run
		wantAfter []run
	}{
		{"goal run", []run{{10, 5}, {100, 20}}, 3, 100, []run{{100, 3}}, []run{{10, 5}, {103, 17}}},
		{"goal run whole", []run{{10, 5}, {100, 3}}, 3, 100, []run{{100, 3}}, []run{{10, 5}}},
		{"goal run too short, rest by best fit", []run{{50, 2}, {100, 4}, {200, 10}}, 5, 50,
			[]run{{50, 2}, {100, 3}}, []run{{103, 1}, {200, 10}}},
		{"goal inside a run is no goal", []run{{100, 20}}, 3, 105, []run{{100, 3}}, []run{{103, 17}}},
		{"goal on a used block", []run{{10, 5}, {30, 3}}, 3, 7, []run{{30, 3}}, []run{{10, 5}}},
		{"best fit exact", []run{{10, 5}, {20, 3}, {30, 10}}, 3, 0, []run{{20, 3}}, []run{{10, 5}, {30, 10}}},
		{"best fit larger", []run{{10, 5}, {20, 3}, {30, 10}}, 4, 0, []run{{10, 4}}, []run{{14, 1}, {20, 3}, {30, 10}}},
		{"best fit lowest of equals", []run{{10, 3}, {20, 3}}, 2, 0, []run{{10, 2}}, []run{{12, 1}, {20, 3}}},
		{"largest first", []run{{10, 8}, {30, 5}, {40, 2}, {50, 3}}, 10, 0,
			[]run{{10, 8}, {40, 2}}, []run{{30, 5}, {50, 3}}},
		{"largest first, last piece by best fit", []run{{10, 8}, {30, 5}, {40, 2}, {50, 3}}, 14, 0,
			[]run{{10, 8}, {30, 5}, {40, 1}}, []run{{41, 1}, {50, 3}}},
		{"everything", []run{{10, 8}, {30, 5}, {40, 2}}, 15, 0, []run{{10, 8}, {30, 5}, {40, 2}}, nil},
		{"goal then largest first", []run{{10, 2}, {30, 5}, {40, 3}}, 9, 10,
			[]run{{10, 2}, {30, 5}, {40, 2}}, []run{{42, 1}}},
		{"largest first skips the goal run", []run{{10, 6}, {30, 5}, {40, 4}}, 12, 10,
			[]run{{10, 6}, {30, 5}, {40, 1}}, []run{{41, 3}}},
		{"nothing asked", []run{{10, 2}}, 0, 10, nil, []run{{10, 2}}},
		{"huge run", []run{{1, math.MaxUint64 - 1}}, 1 << 40, 0, []run{{1, 1 << 40}}, []run{{1<<40 + 1, math.MaxUint64 - 1 - 1<<40}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx := spaceTx(t)
			setFree(t, tx, tc.free...)
			before := mustFreeCount(t, tx)
			got, err := allocate(tx, tc.n, tc.goal)
			if err != nil {
				t.Fatalf("allocate(%d, %d): %v", tc.n, tc.goal, err)
			}
			if !sameRuns(got, tc.want) {
				t.Errorf("allocate(%d, %d) = %v, want %v", tc.n, tc.goal, got, tc.want)
			}
			if after := freeRuns(t, tx); !sameRuns(after, tc.wantAfter) {
				t.Errorf("free space after: %v, want %v", after, tc.wantAfter)
			}
			if n := mustFreeCount(t, tx); n != before-tc.n {
				t.Errorf("free count %d, want %d", n, before-tc.n)
			}
			mustCheckFree(t, tx)
		})
	}
}

func TestAllocateENOSPC(t *testing.T) {
	tx := spaceTx(t)
	setFree(t, tx, run{10, 5}, run{20, 3})
	before := dumpBuckets(tx)
	for _, goal := range []uint64{0, 10, 20} {
		_, err := allocate(tx, 9, goal)
		if err != syscall.ENOSPC {
			t.Errorf("allocate(9, %d) with 8 free: %v, want bare ENOSPC", goal, err)
		}
		if after := dumpBuckets(tx); after != before {
			t.Errorf("ENOSPC changed the store:\n%s\nwas\n%s", after, before)
		}
	}
	if _, err := allocate(tx, 8, 0); err != nil {
		t.Errorf("allocate(8) with 8 free: %v", err)
	}
	if _, err := allocate(tx, 1, 0); err != syscall.ENOSPC {
		t.Errorf("allocate(1) with none free: %v, want ENOSPC", err)
	}
	mustCheckFree(t, tx)
}

// TestAllocateCorrupt: when the counter or the index lies, allocate fails without
// changing anything and without handing out blocks it cannot vouch for.
func TestAllocateCorrupt(t *testing.T) {
	cases := []struct {
		name    string
		corrupt func(tx *bolt.Tx) error
		n       uint64
	}{
		{"count too high", func(tx *bolt.Tx) error { return setFreeCount(tx, 100) }, 9},
		{"stale index entry", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketFreelen).Put(pairKey(50, 60), encodeEmpty())
		}, 8},
		{"index length differs", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketFree).Put(u64(20), encodeU64(2))
		}, 3},
		{"bad free value", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketFree).Put(u64(10), []byte{recV1, 1})
		}, 5},
		{"bad index key", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketFreelen).Put([]byte{0xff}, encodeEmpty())
		}, 6},
		{"missing count", func(tx *bolt.Tx) error { return tx.Bucket(bucketSuper).Delete(keyFreeBlocks) }, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx := spaceTx(t)
			setFree(t, tx, run{10, 5}, run{20, 3})
			if err := tc.corrupt(tx); err != nil {
				t.Fatal(err)
			}
			before := dumpBuckets(tx)
			got, err := allocate(tx, tc.n, 0)
			if err == nil || errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("allocate(%d) = %v, %v; want a corruption error", tc.n, got, err)
			}
			if after := dumpBuckets(tx); after != before {
				t.Errorf("failed allocate changed the store:\n%s\nwas\n%s", after, before)
			}
		})
	}
}

func TestRelease(t *testing.T) {
	cases := []struct {
		name    string
		free    []run
		r       run
		want    []run
		wantErr bool
	}{
		{"into empty", nil, run{1, 1}, []run{{1, 1}}, false},
		{"no neighbours", []run{{10, 5}, {30, 5}}, run{20, 5}, []run{{10, 5}, {20, 5}, {30, 5}}, false},
		{"merge left", []run{{10, 5}}, run{15, 3}, []run{{10, 8}}, false},
		{"merge right", []run{{20, 5}}, run{15, 5}, []run{{15, 10}}, false},
		{"merge both", []run{{10, 5}, {20, 5}}, run{15, 5}, []run{{10, 15}}, false},
		{"merge both among others", []run{{1, 2}, {10, 5}, {20, 5}, {40, 1}}, run{15, 5},
			[]run{{1, 2}, {10, 15}, {40, 1}}, false},
		{"gap of one on each side", []run{{10, 5}, {21, 5}}, run{16, 4}, []run{{10, 5}, {16, 4}, {21, 5}}, false},
		{"nothing", []run{{10, 5}}, run{15, 0}, []run{{10, 5}}, false},
		{"inside", []run{{10, 10}}, run{12, 2}, nil, true},
		{"inside, later run follows", []run{{10, 10}, {30, 5}}, run{15, 3}, nil, true},
		{"straddles start", []run{{10, 10}}, run{5, 6}, nil, true},
		{"straddles end", []run{{10, 10}}, run{19, 3}, nil, true},
		{"same", []run{{10, 10}}, run{10, 10}, nil, true},
		{"same start, longer", []run{{10, 10}}, run{10, 20}, nil, true},
		{"covers", []run{{10, 5}}, run{5, 20}, nil, true},
		{"covers two", []run{{10, 5}, {20, 5}}, run{9, 20}, nil, true},
		{"label block", nil, run{0, 3}, nil, true},
		{"past the last block", nil, run{math.MaxUint64 - 1, 5}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx := spaceTx(t)
			setFree(t, tx, tc.free...)
			before := dumpBuckets(tx)
			count := mustFreeCount(t, tx)
			err := release(tx, tc.r)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("release(%v) into %v succeeded", tc.r, tc.free)
				}
				if after := dumpBuckets(tx); after != before {
					t.Errorf("failed release changed the store:\n%s\nwas\n%s", after, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("release(%v): %v", tc.r, err)
			}
			if got := freeRuns(t, tx); !sameRuns(got, tc.want) {
				t.Errorf("free space %v, want %v", got, tc.want)
			}
			if n := mustFreeCount(t, tx); n != count+tc.r.len {
				t.Errorf("free count %d, want %d", n, count+tc.r.len)
			}
			mustCheckFree(t, tx)
		})
	}
}

func TestInitFree(t *testing.T) {
	tx := spaceTx(t)
	if err := initFree(tx, 0, 10); err == nil {
		t.Error("initFree over the label block succeeded")
	}
	if err := initFree(tx, 1, 99); err != nil {
		t.Fatalf("initFree: %v", err)
	}
	if got := freeRuns(t, tx); !sameRuns(got, []run{{1, 99}}) {
		t.Errorf("free space %v, want [{1 99}]", got)
	}
	if n, err := freeCount(tx); n != 99 || err != nil {
		t.Errorf("freeCount = %d, %v; want 99", n, err)
	}
	if err := initFree(tx, 200, 5); err == nil {
		t.Error("initFree over existing free space succeeded")
	}
	mustCheckFree(t, tx)

	empty := spaceTx(t)
	if err := initFree(empty, 1, 0); err != nil {
		t.Fatalf("initFree of no blocks: %v", err)
	}
	if n := mustFreeCount(t, empty); n != 0 || len(freeRuns(t, empty)) != 0 {
		t.Errorf("initFree of no blocks left %d free", n)
	}
	mustCheckFree(t, empty)
}

func TestCheckFree(t *testing.T) {
	cases := []struct {
		name    string
		corrupt func(tx *bolt.Tx) error
	}{
		{"clean", nil},
		{"index entry missing", func(tx *bolt.Tx) error { return tx.Bucket(bucketFreelen).Delete(pairKey(5, 10)) }},
		{"stale index entry", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketFreelen).Put(pairKey(7, 40), encodeEmpty())
		}},
		{"index length wrong", func(tx *bolt.Tx) error {
			if err := tx.Bucket(bucketFreelen).Delete(pairKey(5, 10)); err != nil {
				return err
			}
			return tx.Bucket(bucketFreelen).Put(pairKey(4, 10), encodeEmpty())
		}},
		{"touching runs", func(tx *bolt.Tx) error { return putFree(tx, run{15, 5}) }},
		{"overlapping runs", func(tx *bolt.Tx) error { return putFree(tx, run{12, 2}) }},
		{"count wrong", func(tx *bolt.Tx) error { return setFreeCount(tx, 11) }},
		{"count missing", func(tx *bolt.Tx) error { return tx.Bucket(bucketSuper).Delete(keyFreeBlocks) }},
		{"bad value", func(tx *bolt.Tx) error { return tx.Bucket(bucketFree).Put(u64(50), []byte{9}) }},
		{"bad key", func(tx *bolt.Tx) error { return tx.Bucket(bucketFree).Put([]byte{1, 2}, encodeU64(1)) }},
		{"zero length", func(tx *bolt.Tx) error { return putFree(tx, run{60, 0}) }},
		{"label block", func(tx *bolt.Tx) error { return putFree(tx, run{0, 1}) }},
		{"bad index value", func(tx *bolt.Tx) error {
			return tx.Bucket(bucketFreelen).Put(pairKey(5, 10), []byte{7})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx := spaceTx(t)
			setFree(t, tx, run{10, 5}, run{20, 5})
			if tc.corrupt == nil {
				mustCheckFree(t, tx)
				return
			}
			if err := tc.corrupt(tx); err != nil {
				t.Fatal(err)
			}
			if len(checkFree(tx)) == 0 {
				t.Error("checkFree found nothing wrong")
			}
		})
	}
}
