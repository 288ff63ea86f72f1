package meta

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// prev returns the entry before k, where the cursor c stands (k is what Seek or Next
// returned there), or the last entry when k is nil (Seek found nothing).
//
// It works around bbolt's Cursor.Prev (v1.4.3): a Delete can leave a leaf without keys
// until the transaction commits and rebalances, and Prev stepping into such a leaf
// returns nil as if the bucket began there. First, Last and Next skip those leaves; Prev
// does not. Free-space and extent lookups run in the long group transaction, which
// deletes a lot, so a nil here is checked against the bucket's first key and Prev is
// repeated across empty leaves.
func prev(c *bolt.Cursor, k []byte) ([]byte, []byte) {
	if k == nil {
		return last(c)
	}
	pk, pv := c.Prev()
	if pk != nil {
		return pk, pv
	}
	first, _ := c.Bucket().Cursor().First()
	if first == nil || bytes.Compare(first, k) >= 0 {
		return nil, nil // k is the first key: nothing comes before it
	}
	// Each Prev from an empty leaf moves on to the leaf before it; a key is in one of them.
	for pk == nil {
		pk, pv = c.Prev()
	}
	return pk, pv
}

// last is c.Last, except for a bucket whose keys were all deleted in this transaction and
// that still spans two leaves or more: there bbolt's Last (v1.4.3) never returns (it steps
// back over the empty leaves to the first, which sends it forward to the last again).
func last(c *bolt.Cursor) ([]byte, []byte) {
	if k, _ := c.Bucket().Cursor().First(); k == nil {
		return nil, nil
	}
	return c.Last()
}
