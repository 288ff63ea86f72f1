package meta

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// putSpans stores extents as given, without merging: the state a test starts from.
func putSpans(t testing.TB, tx *bolt.Tx, ino uint64, spans ...span) {
	t.Helper()
	for _, s := range spans {
		v := encodeExtent(extentRec{pblk: s.pblk, len: uint32(s.len), unwritten: s.unwritten})
		if err := tx.Bucket(bucketExtents).Put(pairKey(ino, s.lblk), v); err != nil {
			t.Fatal(err)
		}
	}
}

func spansOf(t testing.TB, tx *bolt.Tx, ino uint64) []span {
	t.Helper()
	var out []span
	err := forEachExtent(tx, ino, func(lblk uint64, e extentRec) error {
		out = append(out, span{lblk: lblk, pblk: e.pblk, len: uint64(e.len), unwritten: e.unwritten})
		return nil
	})
	if err != nil {
		t.Fatalf("forEachExtent(%d): %v", ino, err)
	}
	return out
}

// sp and mp keep the tables short: lblk, pblk, len (sp) and lblk, len, pblk (mp, as Mapping).
func sp(lblk, pblk, n uint64) span  { return span{lblk: lblk, pblk: pblk, len: n} }
func spU(lblk, pblk, n uint64) span { return span{lblk: lblk, pblk: pblk, len: n, unwritten: true} }
func mp(lblk, n, pblk uint64) Mapping {
	return Mapping{Lblk: lblk, Len: n, Pblk: pblk}
}
func mpU(lblk, n, pblk uint64) Mapping {
	return Mapping{Lblk: lblk, Len: n, Pblk: pblk, Unwritten: true}
}
func hole(lblk, n uint64) Mapping { return Mapping{Lblk: lblk, Len: n, Hole: true} }

func sameMappings(a, b []Mapping) bool { return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b) }
func sameSpans(a, b []span) bool       { return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b) }

// neighbours puts extents of the inodes around ino 2, which no operation on 2 may see.
func neighbours(t testing.TB, tx *bolt.Tx) {
	t.Helper()
	putSpans(t, tx, 1, sp(0, 900, 10), sp(math.MaxUint64-10, 950, 10))
	putSpans(t, tx, 3, sp(0, 970, 10))
}

func checkNeighbours(t testing.TB, tx *bolt.Tx) {
	t.Helper()
	if got, want := spansOf(t, tx, 1), []span{sp(0, 900, 10), sp(math.MaxUint64-10, 950, 10)}; !sameSpans(got, want) {
		t.Errorf("inode 1 changed: %v", got)
	}
	if got, want := spansOf(t, tx, 3), []span{sp(0, 970, 10)}; !sameSpans(got, want) {
		t.Errorf("inode 3 changed: %v", got)
	}
}

func TestMapRange(t *testing.T) {
	cases := []struct {
		name    string
		extents []span
		lblk, n uint64
		want    []Mapping
	}{
		{"empty file", nil, 0, 10, []Mapping{hole(0, 10)}},
		{"nothing asked", []span{sp(0, 100, 5)}, 3, 0, nil},
		{"holes at both ends", []span{sp(5, 100, 5)}, 0, 20, []Mapping{hole(0, 5), mp(5, 5, 100), hole(10, 10)}},
		{"inside one extent", []span{sp(0, 100, 10)}, 3, 2, []Mapping{mp(3, 2, 103)}},
		{"from inside across a gap", []span{sp(0, 100, 4), spU(6, 200, 4)}, 2, 8,
			[]Mapping{mp(2, 2, 102), hole(4, 2), mpU(6, 4, 200)}},
		{"ends inside", []span{sp(0, 100, 4), sp(10, 200, 4)}, 5, 7, []Mapping{hole(5, 5), mp(10, 2, 200)}},
		{"touching extents stay apart", []span{sp(0, 100, 4), sp(4, 104, 4)}, 0, 8,
			[]Mapping{mp(0, 4, 100), mp(4, 4, 104)}},
		{"past the end", []span{sp(0, 100, 4)}, 4, 3, []Mapping{hole(4, 3)}},
		{"last block number", []span{sp(math.MaxUint64-5, 100, 5)}, math.MaxUint64 - 3, 3,
			[]Mapping{mp(math.MaxUint64-3, 3, 102)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx := spaceTx(t)
			neighbours(t, tx)
			putSpans(t, tx, 2, tc.extents...)
			got, err := mapRange(tx, 2, tc.lblk, tc.n)
			if err != nil {
				t.Fatalf("mapRange(%d, %d): %v", tc.lblk, tc.n, err)
			}
			if !sameMappings(got, tc.want) {
				t.Errorf("mapRange(%d, %d) =\n%v, want\n%v", tc.lblk, tc.n, got, tc.want)
			}
		})
	}
	tx := spaceTx(t)
	if _, err := mapRange(tx, 2, math.MaxUint64-3, 5); err != syscall.EFBIG {
		t.Errorf("mapRange past the last block: %v, want EFBIG", err)
	}
}

func TestSetRange(t *testing.T) {
	const lim = maxExtentLen
	cases := []struct {
		name    string
		extents []span
		lblk, n uint64
		to      *Mapping
		want    []span
		wantOld []Mapping
	}{
		{"hole in the middle", []span{sp(0, 100, 10)}, 3, 2, nil,
			[]span{sp(0, 100, 3), sp(5, 105, 5)}, []Mapping{mp(3, 2, 103)}},
		{"new blocks in the middle", []span{sp(0, 100, 10)}, 3, 2, &Mapping{Pblk: 500},
			[]span{sp(0, 100, 3), sp(3, 500, 2), sp(5, 105, 5)}, []Mapping{mp(3, 2, 103)}},
		{"trim both edges", []span{sp(0, 100, 10), sp(10, 200, 10)}, 5, 10, &Mapping{Pblk: 500},
			[]span{sp(0, 100, 5), sp(5, 500, 10), sp(15, 205, 5)}, []Mapping{mp(5, 5, 105), mp(10, 5, 200)}},
		{"across extents and gaps", []span{sp(0, 100, 2), sp(4, 200, 2), spU(8, 300, 2)}, 1, 8, nil,
			[]span{sp(0, 100, 1), spU(9, 301, 1)}, []Mapping{mp(1, 1, 101), mp(4, 2, 200), mpU(8, 1, 300)}},
		{"merge both sides", []span{sp(0, 100, 5), sp(10, 110, 5)}, 5, 5, &Mapping{Pblk: 105},
			[]span{sp(0, 100, 15)}, nil},
		{"merge left", []span{sp(0, 100, 5)}, 5, 3, &Mapping{Pblk: 105}, []span{sp(0, 100, 8)}, nil},
		{"merge right", []span{sp(10, 110, 5)}, 5, 5, &Mapping{Pblk: 105}, []span{sp(5, 105, 10)}, nil},
		{"merge with the trimmed rest", []span{sp(5, 300, 7)}, 3, 4, &Mapping{Pblk: 298},
			[]span{sp(3, 298, 9)}, []Mapping{mp(5, 2, 300)}},
		{"no merge with the trimmed rest", []span{sp(5, 300, 7)}, 3, 4, &Mapping{Pblk: 304},
			[]span{sp(3, 304, 4), sp(7, 302, 5)}, []Mapping{mp(5, 2, 300)}},
		{"no merge: not physically next", []span{sp(0, 100, 5)}, 5, 3, &Mapping{Pblk: 200},
			[]span{sp(0, 100, 5), sp(5, 200, 3)}, nil},
		{"no merge: logical gap", []span{sp(0, 100, 5)}, 6, 3, &Mapping{Pblk: 106},
			[]span{sp(0, 100, 5), sp(6, 106, 3)}, nil},
		{"no merge: other flag", []span{sp(0, 100, 5), sp(8, 108, 2)}, 5, 3, &Mapping{Pblk: 105, Unwritten: true},
			[]span{sp(0, 100, 5), spU(5, 105, 3), sp(8, 108, 2)}, nil},
		{"unwritten to written", []span{spU(0, 100, 10)}, 0, 10, &Mapping{Pblk: 100},
			[]span{sp(0, 100, 10)}, []Mapping{mpU(0, 10, 100)}},
		{"unwritten to written in the middle", []span{spU(0, 100, 10)}, 3, 2, &Mapping{Pblk: 103},
			[]span{spU(0, 100, 3), sp(3, 103, 2), spU(5, 105, 5)}, []Mapping{mpU(3, 2, 103)}},
		{"written back to unwritten merges", []span{spU(0, 100, 3), sp(3, 103, 2), spU(5, 105, 5)}, 3, 2,
			&Mapping{Pblk: 103, Unwritten: true}, []span{spU(0, 100, 10)}, []Mapping{mp(3, 2, 103)}},
		{"unwritten across written", []span{sp(0, 100, 4), sp(4, 104, 4)}, 2, 4, &Mapping{Pblk: 102, Unwritten: true},
			[]span{sp(0, 100, 2), spU(2, 102, 4), sp(6, 106, 2)}, []Mapping{mp(2, 2, 102), mp(4, 2, 104)}},
		{"same mapping again", []span{sp(0, 100, 10)}, 2, 3, &Mapping{Pblk: 102},
			[]span{sp(0, 100, 10)}, []Mapping{mp(2, 3, 102)}},
		{"Lblk and Len of to ignored", nil, 4, 2, &Mapping{Lblk: 99, Len: 99, Pblk: 50},
			[]span{sp(4, 50, 2)}, nil},
		{"hole in an empty file", nil, 0, 10, nil, nil, nil},
		{"hole at the start", []span{sp(0, 100, 10)}, 0, 4, nil, []span{sp(4, 104, 6)}, []Mapping{mp(0, 4, 100)}},
		{"hole at the end", []span{sp(0, 100, 10)}, 6, 10, nil, []span{sp(0, 100, 6)}, []Mapping{mp(6, 4, 106)}},
		{"hole given as a Mapping", []span{sp(0, 100, 10)}, 2, 2, &Mapping{Pblk: 7, Hole: true},
			[]span{sp(0, 100, 2), sp(4, 104, 6)}, []Mapping{mp(2, 2, 102)}},
		{"nothing", []span{sp(0, 100, 10)}, 2, 0, &Mapping{Pblk: 7}, []span{sp(0, 100, 10)}, nil},
		{"exactly the longest extent", nil, 0, lim, &Mapping{Pblk: 1000}, []span{sp(0, 1000, lim)}, nil},
		{"longer than one extent", nil, 0, lim + 6, &Mapping{Pblk: 1000},
			[]span{sp(0, 1000, lim), sp(lim, 1000+lim, 6)}, nil},
		{"merge up to the limit", []span{sp(0, 1000, lim-1)}, lim - 1, 2, &Mapping{Pblk: 1000 + lim - 1},
			[]span{sp(0, 1000, lim), sp(lim, 1000+lim, 1)}, nil},
		{"neighbour already full", []span{sp(0, 1000, lim)}, lim, 2, &Mapping{Pblk: 1000 + lim},
			[]span{sp(0, 1000, lim), sp(lim, 1000+lim, 2)}, nil},
		{"merge both sides past the limit", []span{sp(0, 1000, lim-1), sp(lim+1, 1000+lim+1, 5)}, lim - 1, 2,
			&Mapping{Pblk: 1000 + lim - 1}, []span{sp(0, 1000, lim), sp(lim, 1000+lim, 6)}, nil},
		{"hole in a long file", []span{sp(0, 1000, lim), sp(lim, 1000+lim, 10)}, 5, lim,
			nil, []span{sp(0, 1000, 5), sp(lim+5, 1000+lim+5, 5)}, []Mapping{mp(5, lim-5, 1005), mp(lim, 5, 1000+lim)}},
		{"at the last block number", []span{sp(math.MaxUint64-5, 100, 5)}, math.MaxUint64 - 3, 3, &Mapping{Pblk: 102},
			[]span{sp(math.MaxUint64-5, 100, 5)}, []Mapping{mp(math.MaxUint64-3, 3, 102)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx := spaceTx(t)
			neighbours(t, tx)
			putSpans(t, tx, 2, tc.extents...)
			old, err := setRange(tx, 2, tc.lblk, tc.n, tc.to)
			if err != nil {
				t.Fatalf("setRange(%d, %d, %+v): %v", tc.lblk, tc.n, tc.to, err)
			}
			if !sameMappings(old, tc.wantOld) {
				t.Errorf("setRange returned\n%v, want\n%v", old, tc.wantOld)
			}
			if got := spansOf(t, tx, 2); !sameSpans(got, tc.want) {
				t.Errorf("extents after:\n%v, want\n%v", got, tc.want)
			}
			checkNeighbours(t, tx)
		})
	}
}

func TestSetRangeRefuses(t *testing.T) {
	tx := spaceTx(t)
	putSpans(t, tx, 2, sp(0, 100, 10))
	before := dumpBuckets(tx)
	if _, err := setRange(tx, 2, math.MaxUint64-1, 2, nil); err != syscall.EFBIG {
		t.Errorf("range past the last block: %v, want EFBIG", err)
	}
	if _, err := setRange(tx, 2, 0, 2, &Mapping{Pblk: 0}); err == nil {
		t.Error("mapping onto the label block succeeded")
	}
	if _, err := setRange(tx, 2, 0, 2, &Mapping{Pblk: math.MaxUint64}); err == nil {
		t.Error("mapping past the last physical block succeeded")
	}
	if after := dumpBuckets(tx); after != before {
		t.Errorf("refused setRange changed the store:\n%s\nwas\n%s", after, before)
	}
}

func TestAllocGoal(t *testing.T) {
	tx := spaceTx(t)
	putSpans(t, tx, 2, sp(0, 100, 5), sp(10, 200, 5))
	putSpans(t, tx, 1, sp(0, 50, 5))
	putSpans(t, tx, 4, sp(3, 70, 1))
	cases := []struct{ ino, lblk, want uint64 }{
		{2, 0, 105},  // holds, first block
		{2, 3, 105},  // holds
		{2, 7, 105},  // precedes
		{2, 10, 205}, // holds, first block of the second
		{2, 100, 205},
		{3, 0, 0}, // no extents; inode 2's come before
		{4, 0, 0}, // its only extent comes later
		{4, 9, 71},
		{0, 5, 0}, // before every key
		{9, 5, 0}, // after every key
	}
	for _, tc := range cases {
		got, err := allocGoal(tx, tc.ino, tc.lblk)
		if err != nil || got != tc.want {
			t.Errorf("allocGoal(%d, %d) = %d, %v; want %d", tc.ino, tc.lblk, got, err, tc.want)
		}
	}
}

func TestTruncateExtents(t *testing.T) {
	cases := []struct {
		name        string
		from        uint64
		want        []span
		wantRemoved []Mapping
	}{
		{"straddling", 12, []span{sp(0, 100, 5), spU(10, 200, 2)}, []Mapping{mpU(12, 3, 202), mp(20, 5, 300)}},
		{"everything", 0, nil, []Mapping{mp(0, 5, 100), mpU(10, 5, 200), mp(20, 5, 300)}},
		{"at an extent", 10, []span{sp(0, 100, 5)}, []Mapping{mpU(10, 5, 200), mp(20, 5, 300)}},
		{"in a gap", 7, []span{sp(0, 100, 5)}, []Mapping{mpU(10, 5, 200), mp(20, 5, 300)}},
		{"past the end", 25, []span{sp(0, 100, 5), spU(10, 200, 5), sp(20, 300, 5)}, nil},
		{"last block number", math.MaxUint64, []span{sp(0, 100, 5), spU(10, 200, 5), sp(20, 300, 5)}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx := spaceTx(t)
			neighbours(t, tx)
			putSpans(t, tx, 2, sp(0, 100, 5), spU(10, 200, 5), sp(20, 300, 5))
			removed, err := truncateExtents(tx, 2, tc.from)
			if err != nil {
				t.Fatalf("truncateExtents(%d): %v", tc.from, err)
			}
			if !sameMappings(removed, tc.wantRemoved) {
				t.Errorf("removed %v, want %v", removed, tc.wantRemoved)
			}
			if got := spansOf(t, tx, 2); !sameSpans(got, tc.want) {
				t.Errorf("extents after: %v, want %v", got, tc.want)
			}
			checkNeighbours(t, tx)
		})
	}
}

func TestTruncateExtentsFarEnd(t *testing.T) {
	tx := spaceTx(t)
	putSpans(t, tx, 2, sp(math.MaxUint64-10, 100, 10))
	removed, err := truncateExtents(tx, 2, math.MaxUint64-4)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Mapping{mp(math.MaxUint64-4, 4, 106)}; !sameMappings(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
}

// TestExtentCorrupt: bad stored extents give errors, never panics, and change nothing.
func TestExtentCorrupt(t *testing.T) {
	cases := []struct {
		name string
		put  func(b *bolt.Bucket) error
	}{
		{"bad version", func(b *bolt.Bucket) error { return b.Put(pairKey(2, 5), []byte{9, 0, 0}) }},
		{"short", func(b *bolt.Bucket) error { return b.Put(pairKey(2, 5), []byte{recV1, 0, 0}) }},
		{"zero length", func(b *bolt.Bucket) error {
			return b.Put(pairKey(2, 5), encodeExtent(extentRec{pblk: 100}))
		}},
		{"unknown flag", func(b *bolt.Bucket) error {
			v := encodeExtent(extentRec{pblk: 100, len: 2})
			v[13] = 0x80
			return b.Put(pairKey(2, 5), v)
		}},
		{"empty", func(b *bolt.Bucket) error { return b.Put(pairKey(2, 5), nil) }},
		{"overlapping", func(b *bolt.Bucket) error {
			if err := b.Put(pairKey(2, 0), encodeExtent(extentRec{pblk: 100, len: 10})); err != nil {
				return err
			}
			return b.Put(pairKey(2, 5), encodeExtent(extentRec{pblk: 200, len: 10}))
		}},
		{"past the last logical block", func(b *bolt.Bucket) error {
			return b.Put(pairKey(2, math.MaxUint64-1), encodeExtent(extentRec{pblk: 100, len: 5}))
		}},
		{"past the last physical block", func(b *bolt.Bucket) error {
			return b.Put(pairKey(2, 5), encodeExtent(extentRec{pblk: math.MaxUint64 - 1, len: 5}))
		}},
		{"short key", func(b *bolt.Bucket) error { return b.Put(append(u64(2), 5), encodeExtent(extentRec{pblk: 1, len: 1})) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tx := spaceTx(t)
			if err := tc.put(tx.Bucket(bucketExtents)); err != nil {
				t.Fatal(err)
			}
			before := dumpBuckets(tx)
			if _, err := mapRange(tx, 2, 0, math.MaxUint64); err == nil {
				t.Error("mapRange succeeded")
			}
			if _, err := setRange(tx, 2, 0, math.MaxUint64-1, &Mapping{Pblk: 1}); err == nil {
				t.Error("setRange succeeded")
			}
			if _, err := truncateExtents(tx, 2, 0); err == nil {
				t.Error("truncateExtents succeeded")
			}
			if err := forEachExtent(tx, 2, func(uint64, extentRec) error { return nil }); err == nil && tc.name != "overlapping" {
				t.Error("forEachExtent succeeded")
			}
			if after := dumpBuckets(tx); after != before {
				t.Errorf("failed operations changed the store:\n%s\nwas\n%s", after, before)
			}
		})
	}
}

func TestForEachExtentStops(t *testing.T) {
	tx := spaceTx(t)
	putSpans(t, tx, 2, sp(0, 100, 1), sp(5, 200, 1), sp(9, 300, 1))
	stop := errors.New("stop")
	var seen []uint64
	err := forEachExtent(tx, 2, func(lblk uint64, _ extentRec) error {
		seen = append(seen, lblk)
		if lblk == 5 {
			return stop
		}
		return nil
	})
	if err != stop || !reflect.DeepEqual(seen, []uint64{0, 5}) {
		t.Errorf("forEachExtent = %v after %v, want stop after [0 5]", err, seen)
	}
}

// The model test: thousands of random operations of the kinds the store performs (write,
// fallocate, punch, truncate, copy-on-write remap, commit), checked after every step
// against a block-by-block model of the volume.

const (
	ownFree  uint64 = 0
	ownLabel uint64 = math.MaxUint64     // block 0
	ownHeld  uint64 = math.MaxUint64 - 1 // taken from free space, in no extent: held or pending
)

type mblock struct {
	pblk      uint64
	unwritten bool
}

type spaceModel struct {
	t       testing.TB
	db      *bolt.DB
	tx      *bolt.Tx
	rng     *rand.Rand
	step    int
	owner   []uint64                     // per physical block: an own* value or the inode
	files   map[uint64]map[uint64]mblock // ino -> lblk -> block
	held    []run                        // allocated by the test itself, in no extent
	pending []run                        // unmapped, returned to free space at the next "commit"
}

const (
	modelVolume = 400
	modelFiles  = 3
	modelSize   = 160 // logical blocks a file uses, roughly
)

func TestAllocExtentModel(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			m := newSpaceModel(t, seed)
			for m.step = 0; m.step < 5000; m.step++ {
				m.randomOp()
				m.verify()
			}
		})
	}
}

func newSpaceModel(t *testing.T, seed uint64) *spaceModel {
	db := openSpaceDB(t)
	tx, err := db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	m := &spaceModel{t: t, db: db, tx: tx, rng: rand.New(rand.NewPCG(seed, seed)),
		owner: make([]uint64, modelVolume), files: map[uint64]map[uint64]mblock{}}
	t.Cleanup(func() { m.tx.Rollback() })
	m.owner[0] = ownLabel
	for ino := uint64(1); ino <= modelFiles; ino++ {
		m.files[ino] = map[uint64]mblock{}
	}
	if err := initFree(tx, 1, modelVolume-1); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *spaceModel) fatalf(format string, args ...any) {
	m.t.Helper()
	m.t.Fatalf("step %d: %s", m.step, fmt.Sprintf(format, args...))
}

func (m *spaceModel) randomOp() {
	ino := 1 + m.rng.Uint64N(modelFiles)
	lblk, n := m.rng.Uint64N(modelSize), 1+m.rng.Uint64N(24)
	switch p := m.rng.IntN(100); {
	case p < 25:
		m.write(ino, lblk, n, false)
	case p < 40:
		m.write(ino, lblk, n, true)
	case p < 50:
		m.unmap(ino, lblk, n, false)
	case p < 54:
		m.unmap(ino, lblk, 0, true)
	case p < 64:
		m.remap(ino, lblk, n)
	case p < 74 && m.heldBlocks() < modelVolume/8:
		m.take(1 + m.rng.Uint64N(30))
	case p < 84:
		m.give()
	case p < 86:
		m.badRelease()
	case p < 98:
		m.commitPending()
	default:
		m.commitTx()
	}
}

// write gives the holes of the range new blocks, as a write (unwritten false: unwritten
// extents are converted too) or fallocate (unwritten true) does.
func (m *spaceModel) write(ino, lblk, n uint64, unwritten bool) {
	maps := m.mapRange(ino, lblk, n)
	var need uint64
	for _, mp := range maps {
		if mp.Hole {
			need += mp.Len
		}
	}
	goal, err := allocGoal(m.tx, ino, lblk)
	if err != nil {
		m.fatalf("allocGoal: %v", err)
	}
	runs, ok := m.allocate(need, goal)
	if !ok {
		return
	}
	for _, mp := range maps {
		switch {
		case mp.Hole:
			m.fill(ino, mp, &runs, unwritten)
		case mp.Unwritten && !unwritten:
			m.set(ino, mp.Lblk, mp.Len, &Mapping{Pblk: mp.Pblk}, []Mapping{mp})
		}
	}
}

// fill maps the hole mp onto the front of runs.
func (m *spaceModel) fill(ino uint64, mp Mapping, runs *[]run, unwritten bool) {
	for lblk, left := mp.Lblk, mp.Len; left > 0; {
		r := &(*runs)[0]
		n := min(left, r.len)
		m.set(ino, lblk, n, &Mapping{Pblk: r.pblk, Unwritten: unwritten}, nil)
		r.pblk += n
		if r.len -= n; r.len == 0 {
			*runs = (*runs)[1:]
		}
		lblk, left = lblk+n, left-n
	}
}

// set calls setRange, checks what it says was there, and updates the model. Blocks that
// were mapped and are not mapped again wait for the next commit, as in the store.
func (m *spaceModel) set(ino, lblk, n uint64, to *Mapping, wantOld []Mapping) {
	old, err := setRange(m.tx, ino, lblk, n, to)
	if err != nil {
		m.fatalf("setRange(%d, %d, %d, %+v): %v", ino, lblk, n, to, err)
	}
	if wantOld != nil && !sameMappings(old, wantOld) {
		m.fatalf("setRange(%d, %d, %d) replaced %v, want %v", ino, lblk, n, old, wantOld)
	}
	m.checkOld(ino, lblk, n, old)
	for i := range n {
		delete(m.files[ino], lblk+i)
	}
	for _, o := range old {
		for i := range o.Len {
			m.owner[o.Pblk+i] = ownHeld
		}
	}
	if to != nil {
		for i := range n {
			m.files[ino][lblk+i] = mblock{to.Pblk + i, to.Unwritten}
			m.owner[to.Pblk+i] = ino
		}
	}
	for _, o := range old {
		if to == nil || o.Pblk < to.Pblk || o.Pblk >= to.Pblk+n {
			m.pending = append(m.pending, run{o.Pblk, o.Len})
		}
	}
}

// checkOld checks that old is exactly what the model maps in [lblk, lblk+n), in order.
func (m *spaceModel) checkOld(ino, lblk, n uint64, old []Mapping) {
	var blocks uint64
	next := lblk
	for _, o := range old {
		if o.Hole || o.Len == 0 || o.Lblk < next || o.Lblk+o.Len > lblk+n {
			m.fatalf("setRange(%d, %d, %d) returned a bad mapping %+v in %v", ino, lblk, n, o, old)
		}
		for i := range o.Len {
			if b, ok := m.files[ino][o.Lblk+i]; !ok || b != (mblock{o.Pblk + i, o.Unwritten}) {
				m.fatalf("setRange(%d, %d, %d) says block %d was %+v, model has %+v", ino, lblk, n, o.Lblk+i, o, b)
			}
		}
		blocks, next = blocks+o.Len, o.Lblk+o.Len
	}
	var want uint64
	for l := range m.files[ino] {
		if l >= lblk && l-lblk < n {
			want++
		}
	}
	if blocks != want {
		m.fatalf("setRange(%d, %d, %d) returned %d blocks, model maps %d", ino, lblk, n, blocks, want)
	}
}

// unmap punches a hole, or truncates from lblk.
func (m *spaceModel) unmap(ino, lblk, n uint64, truncate bool) {
	if !truncate {
		m.set(ino, lblk, n, nil, nil)
		return
	}
	old, err := truncateExtents(m.tx, ino, lblk)
	if err != nil {
		m.fatalf("truncateExtents(%d, %d): %v", ino, lblk, err)
	}
	m.checkOld(ino, lblk, math.MaxUint64-lblk, old)
	for l := range m.files[ino] {
		if l >= lblk {
			delete(m.files[ino], l)
		}
	}
	for _, o := range old {
		for i := range o.Len {
			m.owner[o.Pblk+i] = ownHeld
		}
		m.pending = append(m.pending, run{o.Pblk, o.Len})
	}
}

// remap moves a range to new blocks, holes included, as copy-on-write would.
func (m *spaceModel) remap(ino, lblk, n uint64) {
	goal := uint64(0)
	if m.rng.IntN(2) == 0 {
		goal = 1 + m.rng.Uint64N(modelVolume-1)
	}
	runs, ok := m.allocate(n, goal)
	if !ok {
		return
	}
	m.fill(ino, Mapping{Lblk: lblk, Len: n}, &runs, m.rng.IntN(3) == 0)
}

// allocate calls allocate and checks it against the model and the allocation policy.
func (m *spaceModel) allocate(n, goal uint64) ([]run, bool) {
	free := m.freeRuns()
	var before string
	if m.freeCount() < n {
		before = dumpBuckets(m.tx)
	}
	runs, err := allocate(m.tx, n, goal)
	if m.freeCount() < n {
		if err != syscall.ENOSPC {
			m.fatalf("allocate(%d) with %d free: %v, want ENOSPC", n, m.freeCount(), err)
		}
		if after := dumpBuckets(m.tx); after != before {
			m.fatalf("ENOSPC changed the store")
		}
		return nil, false
	}
	if err != nil {
		m.fatalf("allocate(%d, %d): %v", n, goal, err)
	}
	var sum uint64
	for _, r := range runs {
		for i := range r.len {
			if m.owner[r.pblk+i] != ownFree {
				m.fatalf("allocate(%d, %d) = %v hands out block %d, owned by %d", n, goal, runs, r.pblk+i, m.owner[r.pblk+i])
			}
			m.owner[r.pblk+i] = ownHeld
		}
		sum += r.len
	}
	if sum != n {
		m.fatalf("allocate(%d, %d) = %v: %d blocks", n, goal, runs, sum)
	}
	m.checkPolicy(free, runs, n, goal)
	return runs, true
}

// checkPolicy checks allocate's choice: the goal run first, as few runs as free space
// allows, and only the last run taken in part.
func (m *spaceModel) checkPolicy(free, runs []run, n, goal uint64) {
	count, left := 0, n
	var rest []uint64
	for _, r := range free {
		if goal != 0 && r.pblk == goal && left > 0 {
			left -= min(r.len, left)
			count++
			if runs[0].pblk != goal {
				m.fatalf("allocate(%d, %d) = %v ignores the free run at the goal", n, goal, runs)
			}
			continue
		}
		rest = append(rest, r.len)
	}
	slices.SortFunc(rest, func(a, b uint64) int { return cmp.Compare(b, a) })
	for _, l := range rest {
		if left == 0 {
			break
		}
		count++
		left -= min(l, left)
	}
	if len(runs) != count {
		m.fatalf("allocate(%d, %d) = %v from %v: %d runs, want %d", n, goal, runs, free, len(runs), count)
	}
	for _, r := range runs[:max(len(runs), 1)-1] {
		if !slices.Contains(free, r) {
			m.fatalf("allocate(%d, %d) = %v: %v is not a whole free run, yet not last", n, goal, runs, r)
		}
	}
}

// take allocates blocks the test holds itself, with a goal now and then.
func (m *spaceModel) take(n uint64) {
	goal := uint64(0)
	switch m.rng.IntN(3) {
	case 0:
		goal = 1 + m.rng.Uint64N(modelVolume-1)
	case 1:
		if len(m.held) > 0 {
			goal = m.held[m.rng.IntN(len(m.held))].end()
		}
	}
	runs, _ := m.allocate(n, goal)
	m.held = append(m.held, runs...)
}

// give releases a held run, or a piece of one.
func (m *spaceModel) give() {
	if len(m.held) == 0 {
		return
	}
	i := m.rng.IntN(len(m.held))
	h := m.held[i]
	a, b := uint64(0), h.len
	if m.rng.IntN(3) == 0 {
		a = m.rng.Uint64N(h.len)
		b = a + 1 + m.rng.Uint64N(h.len-a)
	}
	m.held = slices.Delete(m.held, i, i+1)
	for _, r := range []run{{h.pblk, a}, {h.pblk + b, h.len - b}} {
		if r.len > 0 {
			m.held = append(m.held, r)
		}
	}
	m.release(run{h.pblk + a, b - a})
}

func (m *spaceModel) heldBlocks() uint64 {
	var n uint64
	for _, h := range m.held {
		n += h.len
	}
	return n
}

func (m *spaceModel) release(r run) {
	if err := release(m.tx, r); err != nil {
		m.fatalf("release(%v): %v", r, err)
	}
	for i := range r.len {
		m.owner[r.pblk+i] = ownFree
	}
}

// badRelease releases blocks that are partly free already: it must fail and change nothing.
func (m *spaceModel) badRelease() {
	free := m.freeRuns()
	if len(free) == 0 {
		return
	}
	f := free[m.rng.IntN(len(free))]
	p := f.pblk + m.rng.Uint64N(f.len)
	lo := p - min(p-1, m.rng.Uint64N(4))
	r := run{lo, p - lo + 1 + m.rng.Uint64N(4)}
	before := dumpBuckets(m.tx)
	if err := release(m.tx, r); err == nil {
		m.fatalf("release(%v) over free run %v succeeded", r, f)
	}
	if dumpBuckets(m.tx) != before {
		m.fatalf("failed release(%v) changed the store", r)
	}
}

// commitPending returns the blocks unmapped since the last commit, in random order.
func (m *spaceModel) commitPending() {
	m.rng.Shuffle(len(m.pending), func(i, j int) { m.pending[i], m.pending[j] = m.pending[j], m.pending[i] })
	for _, r := range m.pending {
		m.release(r)
	}
	m.pending = nil
}

func (m *spaceModel) commitTx() {
	if err := m.tx.Commit(); err != nil {
		m.fatalf("commit: %v", err)
	}
	tx, err := m.db.Begin(true)
	if err != nil {
		m.fatalf("begin: %v", err)
	}
	m.tx = tx
}

// mapRange calls mapRange and checks it against the model.
func (m *spaceModel) mapRange(ino, lblk, n uint64) []Mapping {
	maps, err := mapRange(m.tx, ino, lblk, n)
	if err != nil {
		m.fatalf("mapRange(%d, %d, %d): %v", ino, lblk, n, err)
	}
	pos, prevHole := lblk, false
	for _, mp := range maps {
		if mp.Lblk != pos || mp.Len == 0 || mp.Hole && prevHole {
			m.fatalf("mapRange(%d, %d, %d) = %v: bad mapping %+v", ino, lblk, n, maps, mp)
		}
		for i := range mp.Len {
			b, ok := m.files[ino][pos+i]
			if ok == mp.Hole || ok && b != (mblock{mp.Pblk + i, mp.Unwritten}) {
				m.fatalf("mapRange(%d, %d, %d): block %d is %+v, model has %+v (%v)", ino, lblk, n, pos+i, mp, b, ok)
			}
		}
		pos, prevHole = pos+mp.Len, mp.Hole
	}
	if pos != lblk+n {
		m.fatalf("mapRange(%d, %d, %d) = %v ends at %d", ino, lblk, n, maps, pos)
	}
	return maps
}

func (m *spaceModel) freeCount() uint64 {
	var n uint64
	for _, o := range m.owner {
		if o == ownFree {
			n++
		}
	}
	return n
}

// freeRuns returns the model's free space as maximal runs.
func (m *spaceModel) freeRuns() []run {
	var out []run
	for p := uint64(0); p < modelVolume; p++ {
		if m.owner[p] != ownFree {
			continue
		}
		if k := len(out) - 1; k >= 0 && out[k].end() == p {
			out[k].len++
		} else {
			out = append(out, run{p, 1})
		}
	}
	return out
}

// verify checks the store against the model: free space is sound and exactly the model's,
// extents map exactly the model's blocks, and no block is both free and mapped, or mapped
// twice.
func (m *spaceModel) verify() {
	m.t.Helper()
	for _, p := range checkFree(m.tx) {
		m.fatalf("checkFree: %v", p)
	}
	if n, err := freeCount(m.tx); err != nil || n != m.freeCount() {
		m.fatalf("freeCount = %d, %v; model has %d", n, err, m.freeCount())
	}
	claim := make([]uint64, modelVolume) // 0: nobody, else ownFree+1 or the inode+1
	stake := func(p, who uint64) {
		if p == 0 || p >= modelVolume || claim[p] != 0 {
			m.fatalf("block %d claimed by %d and %d (0 is free space)", p, int64(claim[p])-1, who)
		}
		claim[p] = who + 1
	}
	forEachFree(m.tx, func(r run) error {
		for i := range r.len {
			stake(r.pblk+i, ownFree)
		}
		return nil
	})
	for ino := uint64(1); ino <= modelFiles; ino++ {
		m.verifyFile(ino, stake)
	}
	for p := uint64(1); p < modelVolume; p++ {
		want := m.owner[p] + 1
		if m.owner[p] == ownHeld {
			want = 0
		}
		if claim[p] != want {
			m.fatalf("block %d: store has owner %d, model %d", p, int64(claim[p])-1, int64(want)-1)
		}
	}
	ino := 1 + m.rng.Uint64N(modelFiles)
	lblk := m.rng.Uint64N(modelSize + 30)
	m.mapRange(ino, lblk, 1+m.rng.Uint64N(modelSize+30-lblk))
}

// verifyFile checks that ino's extents are in order, disjoint, and map exactly the model's
// blocks.
func (m *spaceModel) verifyFile(ino uint64, stake func(p, who uint64)) {
	var next, blocks uint64
	var prev span
	err := forEachExtent(m.tx, ino, func(lblk uint64, e extentRec) error {
		if lblk < next {
			m.fatalf("inode %d: extent at %d overlaps the one before", ino, lblk)
		}
		// setRange merges whatever it can, so no two extents could be one (none is long
		// enough here to hit the length limit).
		s := span{lblk: lblk, pblk: e.pblk, len: uint64(e.len), unwritten: e.unwritten}
		if prev.len > 0 && prev.joins(s) {
			m.fatalf("inode %d: extents %+v and %+v should be one", ino, prev, s)
		}
		prev = s
		for i := range uint64(e.len) {
			stake(e.pblk+i, ino)
			if b, ok := m.files[ino][lblk+i]; !ok || b != (mblock{e.pblk + i, e.unwritten}) {
				m.fatalf("inode %d block %d: extent %+v at %d, model has %+v (%v)", ino, lblk+i, e, lblk, b, ok)
			}
		}
		next, blocks = lblk+uint64(e.len), blocks+uint64(e.len)
		return nil
	})
	if err != nil {
		m.fatalf("forEachExtent(%d): %v", ino, err)
	}
	if blocks != uint64(len(m.files[ino])) {
		m.fatalf("inode %d: extents map %d blocks, model %d", ino, blocks, len(m.files[ino]))
	}
}
