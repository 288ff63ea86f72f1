package meta

import (
	"encoding/binary"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
)

// Check commits and then verifies every invariant of the store; it returns one error per
// problem found, nil when clean.
func (s *Store) Check() []error {
	if !s.readOnly {
		if err := s.Sync(); err != nil {
			return []error{err}
		}
	}
	var problems []error
	err := s.view(func(tx *bolt.Tx) error {
		problems = checkTx(tx, s.vol.blocks)
		return nil
	})
	if err != nil {
		problems = append(problems, err)
	}
	return problems
}

// Fsck opens the store in dir read-only and checks it. The error is for a store that cannot
// be checked at all (missing, locked by a mount, unreadable).
func Fsck(dir string) ([]error, error) {
	s, err := Open(dir, OpenOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Check(), nil
}

// checker gathers what one pass over the buckets learns, to compare it at the end.
type checker struct {
	tx       *bolt.Tx
	blocks   uint64
	problems []error
	inodes   map[uint64]*inodeRec
	links    map[uint64]uint32   // dirents naming each inode
	subdirs  map[uint64]uint32   // subdirectories of each directory
	parentOf map[uint64]uint64   // the directory holding each directory's one dirent
	subdirOf map[uint64][]uint64 // the directories each directory names, for the walk from the root
	used     []run               // physical runs of extents
	perFile  map[uint64]uint64   // blocks mapped per inode
}

func (c *checker) addf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Errorf(format, args...))
}

func checkTx(tx *bolt.Tx, volBlocks uint64) []error {
	c := &checker{tx: tx, blocks: volBlocks, inodes: map[uint64]*inodeRec{}, links: map[uint64]uint32{},
		subdirs: map[uint64]uint32{}, parentOf: map[uint64]uint64{}, subdirOf: map[uint64][]uint64{},
		perFile: map[uint64]uint64{}}
	if _, err := readSuper(tx); err != nil {
		c.addf("%v", err)
		return c.problems
	}
	c.checkInodes()
	c.checkDirents()
	c.checkExtents()
	c.checkSpace()
	c.checkOwned(bucketXattrs, "xattr", 8)
	c.checkOwned(bucketSymlinks, "symlink", 8)
	c.checkLinks()
	c.checkReachable()
	c.checkSwapfiles()
	return c.problems
}

func (c *checker) checkInodes() {
	sb := c.tx.Bucket(bucketSuper)
	next, err1 := decodeU64(sb.Get(keyNextIno), "next inode")
	count, err2 := decodeU64(sb.Get(keyInodes), "inode count")
	if err1 != nil || err2 != nil {
		c.addf("superblock counters: %v %v", err1, err2)
	}
	c.tx.Bucket(bucketInodes).ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			c.addf("inodes: key of %d bytes", len(k))
			return nil
		}
		ino := binary.BigEndian.Uint64(k)
		r, err := decodeInode(ino, v)
		if err != nil {
			c.addf("%v", err)
			return nil
		}
		if ino >= next {
			c.addf("inode %d is at or past the next inode number %d", ino, next)
		}
		if r.Size > MaxFileSize {
			c.addf("inode %d has size %d, past the largest file size %d", ino, r.Size, uint64(MaxFileSize))
		}
		c.inodes[ino] = r
		return nil
	})
	if uint64(len(c.inodes)) != count {
		c.addf("superblock counts %d inodes, the inode table holds %d", count, len(c.inodes))
	}
	if r := c.inodes[RootIno]; r == nil || !r.IsDir() {
		c.addf("root inode %d is missing or not a directory", RootIno)
	}
}

func (c *checker) checkDirents() {
	dirpos := c.tx.Bucket(bucketDirpos)
	c.tx.Bucket(bucketDirents).ForEach(func(k, v []byte) error {
		if len(k) <= 8 {
			c.addf("dirents: key of %d bytes", len(k))
			return nil
		}
		parent, name := binary.BigEndian.Uint64(k), string(k[8:])
		d, err := decodeDirent(v)
		if err != nil {
			c.addf("dirent %d/%q: %v", parent, name, err)
			return nil
		}
		dir, child := c.inodes[parent], c.inodes[d.ino]
		switch {
		case dir == nil || !dir.IsDir():
			c.addf("dirent %d/%q: parent is not a directory", parent, name)
		case child == nil:
			c.addf("dirent %d/%q points at missing inode %d", parent, name, d.ino)
		case typeOf(child.Mode) != d.typ:
			c.addf("dirent %d/%q: type %d, inode %d has type %d", parent, name, d.typ, d.ino, typeOf(child.Mode))
		}
		if dir != nil && d.cookie >= dir.dirSeq {
			c.addf("dirent %d/%q: cookie %d not below the directory's next cookie %d", parent, name, d.cookie, dir.dirSeq)
		}
		if p := dirpos.Get(pairKey(parent, d.cookie)); p == nil || string(p[min(1, len(p)):]) != name {
			c.addf("dirent %d/%q: position %d does not name it back", parent, name, d.cookie)
		}
		c.links[d.ino]++
		if child != nil && child.IsDir() {
			c.subdirs[parent]++
			c.parentOf[d.ino] = parent
			c.subdirOf[parent] = append(c.subdirOf[parent], d.ino)
		}
		return nil
	})
	n := 0
	dirpos.ForEach(func(k, v []byte) error { n++; return nil })
	if total := c.tx.Bucket(bucketDirents).Stats().KeyN; n != total {
		c.addf("dirpos holds %d positions for %d dirents", n, total)
	}
}

func (c *checker) checkExtents() {
	for ino, r := range c.inodes {
		var next uint64
		err := forEachExtent(c.tx, ino, func(lblk uint64, e extentRec) error {
			if lblk < next {
				c.addf("inode %d: extent at block %d overlaps the one before", ino, lblk)
			}
			next = lblk + uint64(e.len)
			if e.pblk == 0 || e.pblk+uint64(e.len) > c.blocks {
				c.addf("inode %d: extent %d+%d at block %d is outside the volume", ino, e.pblk, e.len, lblk)
			}
			c.used = append(c.used, run{pblk: e.pblk, len: uint64(e.len)})
			c.perFile[ino] += uint64(e.len)
			return nil
		})
		if err != nil {
			c.addf("inode %d: extents: %v", ino, err)
		}
		if c.perFile[ino] != r.Blocks {
			c.addf("inode %d records %d blocks, its extents map %d", ino, r.Blocks, c.perFile[ino])
		}
	}
	c.tx.Bucket(bucketExtents).ForEach(func(k, _ []byte) error {
		if ino, _, err := decodePairKey(k); err != nil || c.inodes[ino] == nil {
			c.addf("extent key %x belongs to no inode", k)
		}
		return nil
	})
}

// checkSpace proves that extents and free space tile the volume: no block twice, none lost.
func (c *checker) checkSpace() {
	c.problems = append(c.problems, checkFree(c.tx)...)
	all := append([]run(nil), c.used...)
	var free uint64
	forEachFree(c.tx, func(r run) error {
		if r.pblk == 0 || r.pblk+r.len > c.blocks || r.pblk+r.len < r.pblk {
			// The sum below cannot tell a run past the end from a block lost inside.
			// (checkExtents reports files' extents outside the volume.)
			c.addf("free blocks %d+%d lie outside the volume's data blocks 1..%d", r.pblk, r.len, c.blocks-1)
		}
		all = append(all, r)
		free += r.len
		return nil
	})
	sort.Slice(all, func(i, j int) bool { return all[i].pblk < all[j].pblk })
	var sum uint64
	next := uint64(1)
	for _, r := range all {
		if r.pblk < next {
			c.addf("blocks %d+%d are used twice (file or free space overlap)", r.pblk, r.len)
		}
		next = max(next, r.pblk+r.len)
		sum += r.len
	}
	if want := c.blocks - 1; sum != want {
		c.addf("extents and free space cover %d blocks, the volume has %d data blocks (%d lost)", sum, want, int64(want)-int64(sum))
	}
}

// checkOwned verifies that every key of b begins with a live inode number.
func (c *checker) checkOwned(b []byte, what string, minKey int) {
	c.tx.Bucket(b).ForEach(func(k, _ []byte) error {
		if len(k) < minKey || c.inodes[binary.BigEndian.Uint64(k)] == nil {
			c.addf("%s %x belongs to no inode", what, k)
		}
		return nil
	})
}

func (c *checker) checkLinks() {
	orphans := c.tx.Bucket(bucketOrphans)
	for ino, r := range c.inodes {
		orphan := orphans.Get(inoKey(ino)) != nil
		want := c.links[ino]
		if r.IsDir() && (want > 0 || ino == RootIno) {
			want = 2 + c.subdirs[ino]
			if p := c.parentOf[ino]; ino != RootIno && r.Parent != p {
				c.addf("directory %d records parent %d, but is named in %d", ino, r.Parent, p)
			}
			if c.links[ino] > 1 {
				c.addf("directory %d has %d names", ino, c.links[ino])
			}
			if ino == RootIno && (c.links[ino] > 0 || r.Parent != RootIno) {
				// A name for the root in some directory is a cycle through "/".
				c.addf("the root directory has %d names and records parent %d; it has none, and is its own parent", c.links[ino], r.Parent)
			}
		}
		switch {
		case r.Nlink != want:
			c.addf("inode %d has link count %d, %d expected", ino, r.Nlink, want)
		case r.Nlink == 0 && !orphan:
			c.addf("inode %d has no name and is not an orphan (lost)", ino)
		case r.Nlink != 0 && orphan:
			c.addf("inode %d is an orphan but still has %d links", ino, r.Nlink)
		}
		if r.Mode&0o170000 == 0o120000 && c.tx.Bucket(bucketSymlinks).Get(inoKey(ino)) == nil {
			c.addf("symlink %d has no target", ino)
		}
	}
	orphans.ForEach(func(k, _ []byte) error {
		if len(k) != 8 || c.inodes[binary.BigEndian.Uint64(k)] == nil {
			c.addf("orphan %x is not an inode", k)
		}
		return nil
	})
}

// checkReachable walks the directory tree from the root. A directory that has a name but
// that the walk never reaches hangs in a cycle of its own (a named in b, b named in a),
// cut off from the namespace with everything below it; link counts, parents and dirents
// can all be consistent there, so only the walk finds it. An orphan directory (removed,
// still open) has no name and is not looked for.
func (c *checker) checkReachable() {
	seen := map[uint64]bool{RootIno: true}
	for queue := []uint64{RootIno}; len(queue) > 0; queue = queue[1:] {
		for _, sub := range c.subdirOf[queue[0]] {
			if !seen[sub] {
				seen[sub] = true
				queue = append(queue, sub)
			}
		}
	}
	var lost []uint64
	for ino := range c.parentOf {
		if !seen[ino] {
			lost = append(lost, ino)
		}
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i] < lost[j] })
	for _, ino := range lost {
		c.addf("directory %d (named in directory %d) is not reachable from the root: a directory cycle cut off from the tree", ino, c.parentOf[ino])
	}
}

// checkSwapfiles: a file flagged as a swapfile is served from a block map pinned in memory,
// which holds only written blocks; a hole or an unwritten extent there means the flag was
// set without Pin, and swap I/O would go to blocks the file does not own.
func (c *checker) checkSwapfiles() {
	for ino, r := range c.inodes {
		if r.Flags&FlagSwapfile == 0 {
			continue
		}
		if !r.IsRegular() {
			c.addf("inode %d is flagged as a swapfile but is not a regular file", ino)
			continue
		}
		nb := (r.Size + BlockSize - 1) / BlockSize
		maps, err := mapRange(c.tx, ino, 0, nb)
		if err != nil {
			c.addf("swapfile %d: %v", ino, err)
			continue
		}
		for _, m := range maps {
			if m.Hole || m.Unwritten {
				c.addf("swapfile %d: blocks %d+%d are not allocated and written", ino, m.Lblk, m.Len)
			}
		}
	}
}
