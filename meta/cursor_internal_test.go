package meta

import (
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// In a write transaction, deleting every key of some leaves leaves them empty until the
// commit; prev must step over them to the key before, where bbolt's own Prev stops short.
func TestPrevSkipsLeavesEmptiedInTheTransaction(t *testing.T) {
	const n = 5000
	b := bucketInWriteTx(t, n)
	// Keys 1..n-2 go, as release deletes the keys of runs it merges into key 0's run.
	for i := uint64(1); i < n-1; i++ {
		if err := b.Delete(u64(i)); err != nil {
			t.Fatal(err)
		}
	}
	c := b.Cursor()
	k, _ := c.Seek(u64(n - 1))
	if k == nil || binary.BigEndian.Uint64(k) != n-1 {
		t.Fatalf("Seek(%d) = %x", n-1, k)
	}
	rc := b.Cursor()
	rc.Seek(u64(n - 1))
	if pk, _ := rc.Prev(); pk == nil {
		t.Logf("bbolt's Prev returns nil over the emptied leaves (the bug prev works around)")
	}
	pk, pv := prev(c, k)
	if pk == nil || binary.BigEndian.Uint64(pk) != 0 || pv == nil {
		t.Fatalf("prev from key %d over emptied leaves = %x, want key 0", n-1, pk)
	}
	// The first key has nothing before it, emptied leaves or not.
	c2 := b.Cursor()
	k, _ = c2.First()
	if pk, _ := prev(c2, k); pk != nil {
		t.Errorf("prev of the first key = %x, want nil", pk)
	}
	// At the end (Seek found nothing) prev is the last key.
	c3 := b.Cursor()
	k, _ = c3.Seek(u64(n))
	if pk, _ := prev(c3, k); pk == nil || binary.BigEndian.Uint64(pk) != n-1 {
		t.Errorf("prev past the end = %x, want key %d", pk, n-1)
	}
}

// A bucket whose keys were all deleted in the transaction, over several leaves: bbolt's
// Last loops forever there; prev past the end must answer nil.
func TestPrevOfABucketEmptiedInTheTransaction(t *testing.T) {
	const n = 5000
	b := bucketInWriteTx(t, n)
	for i := range uint64(n) {
		if err := b.Delete(u64(i)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan []byte, 1)
	go func() {
		c := b.Cursor()
		k, _ := c.Seek(u64(7))
		pk, _ := prev(c, k)
		done <- pk
	}()
	select {
	case pk := <-done:
		if pk != nil {
			t.Errorf("prev in an emptied bucket = %x, want nil", pk)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("prev in a bucket emptied in the transaction did not return in 10 s")
	}
}

// bucketInWriteTx commits a bucket of n keys (0 .. n-1, over many leaves) and returns it in a
// new write transaction, which Cleanup rolls back.
func bucketInWriteTx(t *testing.T, n uint64) *bolt.Bucket {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "t.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	name := []byte("b")
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(name)
		if err != nil {
			return err
		}
		for i := range n {
			if err := b.Put(u64(i), encodeU64(i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	return tx.Bucket(name)
}
