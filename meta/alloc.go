package meta

import (
	"encoding/binary"
	"fmt"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// run is a range of physical blocks of the data volume: a free run, or blocks taken from one.
type run struct{ pblk, len uint64 }

func (r run) end() uint64 { return r.pblk + r.len }

// take is one step of an allocation plan: the first n blocks of the free run from.
type take struct {
	from run
	n    uint64
}

// allocate takes n blocks from free space, preferring few long runs, because a swapfile
// needs its blocks contiguous: (1) the free run that starts at goal (goal != 0), so a file
// grows in place; (2) the smallest run that holds all that is still needed (best fit);
// (3) failing that, whole runs largest first until one run can hold the rest. Step (3)
// takes as few runs as largest-first would, but its last piece comes from the smallest run
// that fits, sparing the big ones.
//
// The runs come in the order to map them; a run taken only in part comes last, so its
// free remainder starts right after the file's new last block, where the next allocation
// for that file will look (allocGoal). With fewer than n blocks free, allocate returns
// ENOSPC and takes nothing.
func allocate(tx *bolt.Tx, n, goal uint64) ([]run, error) {
	if n == 0 {
		return nil, nil
	}
	have, err := freeCount(tx)
	if err != nil {
		return nil, err
	}
	if have < n {
		return nil, syscall.ENOSPC
	}
	// Plan before changing anything, so that a failure leaves free space as it was.
	plan, err := planAlloc(tx, n, goal)
	if err != nil {
		return nil, err
	}
	for _, t := range plan {
		if err := checkPlanned(tx, t.from); err != nil {
			return nil, err
		}
	}
	runs := make([]run, 0, len(plan))
	for _, t := range plan {
		if err := delFree(tx, t.from); err != nil {
			return nil, err
		}
		if t.n < t.from.len {
			if err := putFree(tx, run{t.from.pblk + t.n, t.from.len - t.n}); err != nil {
				return nil, err
			}
		}
		runs = append(runs, run{t.from.pblk, t.n})
	}
	return runs, setFreeCount(tx, have-n)
}

// planAlloc chooses the runs allocate takes, without changing anything.
func planAlloc(tx *bolt.Tx, n, goal uint64) ([]take, error) {
	var plan []take
	skip := map[uint64]bool{} // runs already in the plan, by pblk
	if goal != 0 {
		l, ok, err := getFree(tx, goal)
		if err != nil {
			return nil, err
		}
		if ok {
			plan = append(plan, take{run{goal, l}, min(l, n)})
			skip[goal] = true
			n -= min(l, n)
		}
	}
	back := tx.Bucket(bucketFreelen).Cursor()
	k, _ := last(back)
	for n > 0 {
		r, ok, err := bestFit(tx, n, skip)
		if err != nil {
			return nil, err
		}
		if ok {
			return append(plan, take{r, n}), nil
		}
		// No run holds the rest: take the largest whole. The backward walk never meets a
		// run taken whole before, as those were larger; only the goal run needs skipping.
		var big run
		for ; k != nil && big.len == 0; k, _ = prev(back, k) {
			if big, err = freelenRun(k); err != nil {
				return nil, err
			}
			if skip[big.pblk] {
				big = run{}
			}
		}
		if big.len == 0 {
			return nil, fmt.Errorf("free space index holds %d blocks fewer than the free block count", n)
		}
		plan = append(plan, take{big, min(big.len, n)})
		skip[big.pblk] = true
		n -= min(big.len, n)
	}
	return plan, nil
}

// bestFit finds the smallest free run of at least n blocks not in skip, the lowest among
// equals.
func bestFit(tx *bolt.Tx, n uint64, skip map[uint64]bool) (run, bool, error) {
	c := tx.Bucket(bucketFreelen).Cursor()
	for k, _ := c.Seek(pairKey(n, 0)); k != nil; k, _ = c.Next() {
		r, err := freelenRun(k)
		if err != nil {
			return run{}, false, err
		}
		if !skip[r.pblk] {
			return r, true, nil
		}
	}
	return run{}, false, nil
}

// checkPlanned makes sure free and its length index agree about a run about to be taken:
// taking a run one of them lacks would hand out blocks that may belong to a file.
func checkPlanned(tx *bolt.Tx, r run) error {
	l, ok, err := getFree(tx, r.pblk)
	if err != nil {
		return err
	}
	if !ok || l != r.len || tx.Bucket(bucketFreelen).Get(pairKey(r.len, r.pblk)) == nil {
		return fmt.Errorf("free run %d+%d: free and its length index disagree", r.pblk, r.len)
	}
	return nil
}

// release returns r to free space, merged with the free runs it touches on either side. A
// run that overlaps free space means two owners for the same blocks: release then changes
// nothing and returns an error.
func release(tx *bolt.Tx, r run) error {
	if r.len == 0 {
		return nil
	}
	if r.pblk == 0 || r.end() < r.pblk {
		return fmt.Errorf("release blocks %d+%d: not data blocks of a volume", r.pblk, r.len)
	}
	left, right, err := freeNeighbours(tx, r)
	if err != nil {
		return fmt.Errorf("release blocks %d+%d: %w", r.pblk, r.len, err)
	}
	have, err := freeCount(tx)
	if err != nil {
		return err
	}
	merged := r
	for _, nb := range []run{left, right} {
		if nb.len == 0 {
			continue
		}
		if err := delFree(tx, nb); err != nil {
			return err
		}
		merged = run{min(merged.pblk, nb.pblk), merged.len + nb.len}
	}
	if err := putFree(tx, merged); err != nil {
		return err
	}
	return setFreeCount(tx, have+r.len)
}

// freeNeighbours returns the free runs that end where r starts and start where r ends (len
// 0 when there is none), or an error if free space overlaps r.
func freeNeighbours(tx *bolt.Tx, r run) (left, right run, err error) {
	c := tx.Bucket(bucketFree).Cursor()
	k, v := c.Seek(u64(r.pblk))
	if k != nil {
		nx, err := freeRun(k, v)
		if err != nil {
			return run{}, run{}, err
		}
		if nx.pblk < r.end() {
			return run{}, run{}, fmt.Errorf("overlaps free run %d+%d", nx.pblk, nx.len)
		}
		if nx.pblk == r.end() {
			right = nx
		}
	}
	k, v = prev(c, k)
	if k == nil {
		return run{}, right, nil
	}
	pv, err := freeRun(k, v)
	if err != nil {
		return run{}, run{}, err
	}
	if pv.end() > r.pblk {
		return run{}, run{}, fmt.Errorf("overlaps free run %d+%d", pv.pblk, pv.len)
	}
	if pv.end() == r.pblk {
		left = pv
	}
	return left, right, nil
}

// initFree makes [first, first+n) the only free run, for mkfs. Free space must be empty.
func initFree(tx *bolt.Tx, first, n uint64) error {
	if first == 0 || first+n < first {
		return fmt.Errorf("init free space %d+%d: not data blocks of a volume", first, n)
	}
	for _, b := range [][]byte{bucketFree, bucketFreelen} {
		if k, _ := tx.Bucket(b).Cursor().First(); k != nil {
			return fmt.Errorf("init free space: bucket %s is not empty", b)
		}
	}
	if n > 0 {
		if err := putFree(tx, run{first, n}); err != nil {
			return err
		}
	}
	return setFreeCount(tx, n)
}

// freeCount reads the number of free blocks from the superblock.
func freeCount(tx *bolt.Tx) (uint64, error) {
	return decodeU64(tx.Bucket(bucketSuper).Get(keyFreeBlocks), "superblock free block count")
}

func setFreeCount(tx *bolt.Tx, n uint64) error {
	if err := tx.Bucket(bucketSuper).Put(keyFreeBlocks, encodeU64(n)); err != nil {
		return fmt.Errorf("set free block count: %w", err)
	}
	return nil
}

// forEachFree calls fn for each free run in pblk order. fn must not change free space: the
// walk holds a cursor on it.
func forEachFree(tx *bolt.Tx, fn func(r run) error) error {
	c := tx.Bucket(bucketFree).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		r, err := freeRun(k, v)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// checkFree verifies free space on its own: free and freelen mirror each other exactly, runs
// neither overlap nor touch (touching runs are merged by release), and the free block count
// is their sum. Whether free space overlaps extents is Check's business.
func checkFree(tx *bolt.Tx) []error {
	var problems []error
	addf := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	fl := tx.Bucket(bucketFreelen)
	var sum, end, runs uint64
	tx.Bucket(bucketFree).ForEach(func(k, v []byte) error {
		r, err := freeRun(k, v)
		if err != nil {
			addf("%v", err)
			return nil
		}
		switch {
		case r.pblk < end:
			addf("free run %d+%d overlaps the run before it", r.pblk, r.len)
		case r.pblk == end:
			addf("free run %d+%d touches the run before it: they should be one", r.pblk, r.len)
		}
		if v := fl.Get(pairKey(r.len, r.pblk)); v == nil {
			addf("free run %d+%d is missing from the length index", r.pblk, r.len)
		} else if _, err := checkVersion(v, "free length index entry", 0); err != nil {
			addf("free run %d+%d: %v", r.pblk, r.len, err)
		}
		sum, end, runs = sum+r.len, max(end, r.end()), runs+1
		return nil
	})
	problems = append(problems, checkFreelen(tx, runs)...)
	if n, err := freeCount(tx); err != nil {
		addf("%v", err)
	} else if n != sum {
		addf("superblock counts %d free blocks, free space holds %d", n, sum)
	}
	return problems
}

// checkFreelen verifies that every entry of the length index names a free run of that
// length, and that there are as many entries as runs.
func checkFreelen(tx *bolt.Tx, runs uint64) []error {
	var problems []error
	var entries uint64
	tx.Bucket(bucketFreelen).ForEach(func(k, _ []byte) error {
		entries++
		r, err := freelenRun(k)
		if err != nil {
			problems = append(problems, err)
			return nil
		}
		if l, ok, err := getFree(tx, r.pblk); err != nil || !ok || l != r.len {
			problems = append(problems, fmt.Errorf("length index entry %d+%d has no such free run (%d, %v)", r.pblk, r.len, l, err))
		}
		return nil
	})
	if entries != runs {
		problems = append(problems, fmt.Errorf("length index holds %d entries for %d free runs", entries, runs))
	}
	return problems
}

// freeRun decodes an entry of free.
func freeRun(k, v []byte) (run, error) {
	if len(k) != 8 {
		return run{}, fmt.Errorf("free run key %x: %d bytes, want 8", k, len(k))
	}
	r := run{pblk: binary.BigEndian.Uint64(k)}
	l, err := decodeU64(v, "free run length")
	if err != nil {
		return run{}, fmt.Errorf("free run %d: %w", r.pblk, err)
	}
	r.len = l
	return r, validRun(r, "free run")
}

// freelenRun decodes a key of freelen.
func freelenRun(k []byte) (run, error) {
	l, pblk, err := decodePairKey(k)
	if err != nil {
		return run{}, fmt.Errorf("free length index key %x: %w", k, err)
	}
	return run{pblk, l}, validRun(run{pblk, l}, "free length index entry")
}

// validRun rejects runs that would break the arithmetic: empty, on the label block, or
// past the last block number.
func validRun(r run, what string) error {
	if r.len == 0 || r.pblk == 0 || r.end() < r.pblk {
		return fmt.Errorf("%s %d+%d: not a run of data blocks", what, r.pblk, r.len)
	}
	return nil
}

// getFree returns the length of the free run that starts at pblk, if there is one.
func getFree(tx *bolt.Tx, pblk uint64) (uint64, bool, error) {
	v := tx.Bucket(bucketFree).Get(u64(pblk))
	if v == nil {
		return 0, false, nil
	}
	r, err := freeRun(u64(pblk), v)
	return r.len, err == nil, err
}

// putFree records r in free and in the length index; the free block count is the caller's.
func putFree(tx *bolt.Tx, r run) error {
	err := tx.Bucket(bucketFree).Put(u64(r.pblk), encodeU64(r.len))
	if err == nil {
		err = tx.Bucket(bucketFreelen).Put(pairKey(r.len, r.pblk), encodeEmpty())
	}
	if err != nil {
		return fmt.Errorf("add free run %d+%d: %w", r.pblk, r.len, err)
	}
	return nil
}

// delFree removes r from free and from the length index; the free block count is the
// caller's.
func delFree(tx *bolt.Tx, r run) error {
	err := tx.Bucket(bucketFree).Delete(u64(r.pblk))
	if err == nil {
		err = tx.Bucket(bucketFreelen).Delete(pairKey(r.len, r.pblk))
	}
	if err != nil {
		return fmt.Errorf("remove free run %d+%d: %w", r.pblk, r.len, err)
	}
	return nil
}
