package meta

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maxNlink bounds hard links, as ext4's EXT4_LINK_MAX.
const maxNlink = 65000

// nsOp is one namespace operation inside the group: it caches the inodes it touches so an
// inode reached twice (a rename within one directory) is changed once, consistently, and
// writes them back together at the end.
type nsOp struct {
	tx     *bolt.Tx
	now    time.Time
	inodes map[uint64]*inodeRec
	dirty  map[uint64]bool
}

func newOp(tx *bolt.Tx) *nsOp {
	return &nsOp{tx: tx, now: time.Now(), inodes: map[uint64]*inodeRec{}, dirty: map[uint64]bool{}}
}

func (o *nsOp) get(ino uint64) (*inodeRec, error) {
	if r, ok := o.inodes[ino]; ok {
		return r, nil
	}
	r, err := getInode(o.tx, ino)
	if err != nil {
		return nil, err
	}
	o.inodes[ino] = r
	return r, nil
}

// dir returns ino as a live directory: ENOENT if it is gone, ENOTDIR if it is not one.
func (o *nsOp) dir(ino uint64) (*inodeRec, error) {
	r, err := o.get(ino)
	if err != nil {
		return nil, err
	}
	if !r.IsDir() {
		return nil, syscall.ENOTDIR
	}
	if r.Nlink == 0 {
		return nil, syscall.ENOENT
	}
	return r, nil
}

func (o *nsOp) touch(r *inodeRec, mtime bool) {
	r.Ctime = o.now
	if mtime {
		r.Mtime = o.now
	}
	o.dirty[r.Ino] = true
}

func (o *nsOp) flush() error {
	for ino := range o.dirty {
		if err := putInode(o.tx, o.inodes[ino]); err != nil {
			return err
		}
	}
	return nil
}

func (o *nsOp) lookup(parent uint64, name string) (direntRec, bool, error) {
	v := o.tx.Bucket(bucketDirents).Get(direntKey(parent, name))
	if v == nil {
		return direntRec{}, false, nil
	}
	d, err := decodeDirent(v)
	if err != nil {
		return direntRec{}, false, fmt.Errorf("dirent %d/%q: %w", parent, name, err)
	}
	return d, true, nil
}

// addEntry names ino in dir with a fresh cookie.
func (o *nsOp) addEntry(dir *inodeRec, name string, child *inodeRec) error {
	cookie := dir.dirSeq
	dir.dirSeq++
	o.touch(dir, true)
	d := direntRec{ino: child.Ino, typ: typeOf(child.Mode), cookie: cookie}
	if err := o.tx.Bucket(bucketDirents).Put(direntKey(dir.Ino, name), encodeDirent(d)); err != nil {
		return fmt.Errorf("add dirent %d/%q: %w", dir.Ino, name, err)
	}
	if err := o.tx.Bucket(bucketDirpos).Put(pairKey(dir.Ino, cookie), encodeBytes([]byte(name))); err != nil {
		return fmt.Errorf("add dirpos %d/%d: %w", dir.Ino, cookie, err)
	}
	return nil
}

func (o *nsOp) removeEntry(dir *inodeRec, name string, d direntRec) error {
	o.touch(dir, true)
	if err := o.tx.Bucket(bucketDirents).Delete(direntKey(dir.Ino, name)); err != nil {
		return fmt.Errorf("remove dirent %d/%q: %w", dir.Ino, name, err)
	}
	if err := o.tx.Bucket(bucketDirpos).Delete(pairKey(dir.Ino, d.cookie)); err != nil {
		return fmt.Errorf("remove dirpos %d/%d: %w", dir.Ino, d.cookie, err)
	}
	return nil
}

// dropLink takes one link from r; a non-directory that loses its last link, or a removed
// directory, becomes an orphan that lives until Release.
func (o *nsOp) dropLink(r *inodeRec) error {
	if r.IsDir() {
		r.Nlink = 0
	} else {
		r.Nlink--
	}
	o.touch(r, false)
	if r.Nlink == 0 {
		if err := o.tx.Bucket(bucketOrphans).Put(inoKey(r.Ino), encodeEmpty()); err != nil {
			return fmt.Errorf("orphan inode %d: %w", r.Ino, err)
		}
	}
	return nil
}

func (o *nsOp) isEmptyDir(ino uint64) bool {
	prefix := inoKey(ino)
	k, _ := o.tx.Bucket(bucketDirents).Cursor().Seek(prefix)
	return k == nil || !bytes.HasPrefix(k, prefix)
}

func checkName(name string) error {
	switch {
	case len(name) > NameMax:
		return syscall.ENAMETOOLONG
	case name == "" || strings.ContainsRune(name, '/') || strings.ContainsRune(name, 0):
		return syscall.EINVAL
	case name == "." || name == "..":
		return syscall.EEXIST
	}
	return nil
}

// GetInode returns a copy of inode ino; ENOENT if it does not exist.
func (s *Store) GetInode(ino uint64) (Inode, error) {
	var in Inode
	err := s.view(func(tx *bolt.Tx) error {
		r, err := getInode(tx, ino)
		if err == nil {
			in = r.Inode
		}
		return err
	})
	return in, err
}

// Lookup finds name in directory parent: ENOENT, ENOTDIR, ENAMETOOLONG.
func (s *Store) Lookup(parent uint64, name string) (Inode, error) {
	if len(name) > NameMax {
		return Inode{}, syscall.ENAMETOOLONG
	}
	var in Inode
	err := s.view(func(tx *bolt.Tx) error {
		o := newOp(tx)
		if _, err := o.dir(parent); err != nil {
			return err
		}
		d, ok, err := o.lookup(parent, name)
		if err != nil || !ok {
			return orErr(err, syscall.ENOENT)
		}
		r, err := getInode(tx, d.ino)
		if err != nil {
			return fmt.Errorf("dirent %d/%q points at inode %d: %w", parent, name, d.ino, err)
		}
		in = r.Inode
		return nil
	})
	return in, err
}

func orErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// Create makes a new inode of any type (regular, dir, symlink, fifo, socket, device) named
// name in parent: EEXIST, ENOENT (parent gone), ENOTDIR, ENAMETOOLONG, ENOSPC (inode limit),
// EMLINK. A setgid parent passes its gid on, and its setgid bit to new directories, as
// inode_init_owner does for native filesystems.
func (s *Store) Create(parent uint64, name string, n NewInode) (Inode, error) {
	if err := checkName(name); err != nil {
		return Inode{}, err
	}
	isLink := n.Mode&syscall.S_IFMT == syscall.S_IFLNK
	if isLink && (len(n.Target) > SymlinkMax) {
		return Inode{}, syscall.ENAMETOOLONG
	}
	if isLink && n.Target == "" {
		return Inode{}, syscall.ENOENT
	}
	var out Inode
	err := s.update(func(tx *bolt.Tx) error {
		o := newOp(tx)
		dir, err := o.dir(parent)
		if err != nil {
			return err
		}
		if _, ok, err := o.lookup(parent, name); err != nil || ok {
			return orErr(err, syscall.EEXIST)
		}
		isDir := n.Mode&syscall.S_IFMT == syscall.S_IFDIR
		if isDir && dir.Nlink >= maxNlink {
			return syscall.EMLINK
		}
		r, err := o.newInode(dir, n)
		if err != nil {
			return err
		}
		ino := r.Ino
		if isDir {
			r.Nlink, r.Parent, r.dirSeq = 2, parent, firstCookie
			dir.Nlink++
		}
		if isLink {
			r.Size = uint64(len(n.Target))
			if err := tx.Bucket(bucketSymlinks).Put(inoKey(ino), encodeBytes([]byte(n.Target))); err != nil {
				return fmt.Errorf("write symlink %d: %w", ino, err)
			}
		}
		o.inodes[ino] = r
		o.dirty[ino] = true
		if err := o.addEntry(dir, name, r); err != nil {
			return err
		}
		out = r.Inode
		return o.flush()
	})
	return out, err
}

// Tmpfile makes a nameless regular file, as open(2) with O_TMPFILE does: an orphan until
// Link names it or Release frees it. parent gives setgid inheritance: ENOENT, ENOTDIR, ENOSPC.
func (s *Store) Tmpfile(parent uint64, n NewInode) (Inode, error) {
	if n.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return Inode{}, syscall.EINVAL
	}
	var out Inode
	err := s.update(func(tx *bolt.Tx) error {
		o := newOp(tx)
		dir, err := o.dir(parent)
		if err != nil {
			return err
		}
		r, err := o.newInode(dir, n)
		if err != nil {
			return err
		}
		r.Nlink = 0
		if err := tx.Bucket(bucketOrphans).Put(inoKey(r.Ino), encodeEmpty()); err != nil {
			return fmt.Errorf("orphan inode %d: %w", r.Ino, err)
		}
		out = r.Inode
		return putInode(tx, r)
	})
	return out, err
}

// Touch sets the access time alone, for relatime: reading a file changes no ctime.
func (s *Store) Touch(ino uint64, atime time.Time) (Inode, error) {
	var out Inode
	err := s.update(func(tx *bolt.Tx) error {
		r, err := getInode(tx, ino)
		if err != nil {
			return err
		}
		r.Atime = clampTime(atime)
		out = r.Inode
		return putInode(tx, r)
	})
	return out, err
}

// newInode builds a fresh inode record for n in dir, with one link. A setgid dir passes on
// its gid, and its setgid bit to a new directory, as inode_init_owner does.
func (o *nsOp) newInode(dir *inodeRec, n NewInode) (*inodeRec, error) {
	ino, err := takeInodeNumber(o.tx)
	if err != nil {
		return nil, err
	}
	r := &inodeRec{Inode: Inode{Ino: ino, Gen: 1, Mode: n.Mode, Uid: n.Uid, Gid: n.Gid, Nlink: 1,
		Rdev: n.Rdev, Atime: o.now, Mtime: o.now, Ctime: o.now, Btime: o.now}}
	if dir.Mode&syscall.S_ISGID != 0 {
		r.Gid = dir.Gid
		if r.IsDir() {
			r.Mode |= syscall.S_ISGID
		}
	}
	return r, nil
}

// takeInodeNumber hands out a never-used inode number, so generations stay at 1.
func takeInodeNumber(tx *bolt.Tx) (uint64, error) {
	sb := tx.Bucket(bucketSuper)
	used, err := decodeU64(sb.Get(keyInodes), "superblock inode count")
	if err != nil {
		return 0, err
	}
	limit, err := decodeU64(sb.Get(keyMaxInodes), "superblock inode limit")
	if err != nil {
		return 0, err
	}
	if used >= limit {
		return 0, syscall.ENOSPC
	}
	next, err := decodeU64(sb.Get(keyNextIno), "superblock next inode")
	if err != nil {
		return 0, err
	}
	if err := sb.Put(keyNextIno, encodeU64(next+1)); err != nil {
		return 0, err
	}
	return next, sb.Put(keyInodes, encodeU64(used+1))
}

// Link adds name in newParent for ino: EEXIST, EPERM (directory), EMLINK, ENOENT.
func (s *Store) Link(ino, newParent uint64, name string) (Inode, error) {
	if err := checkName(name); err != nil {
		return Inode{}, err
	}
	var out Inode
	err := s.update(func(tx *bolt.Tx) error {
		o := newOp(tx)
		dir, err := o.dir(newParent)
		if err != nil {
			return err
		}
		r, err := o.get(ino)
		if err != nil {
			return err
		}
		switch {
		case r.IsDir():
			return syscall.EPERM
		case r.Nlink >= maxNlink:
			return syscall.EMLINK
		}
		if _, ok, err := o.lookup(newParent, name); err != nil || ok {
			return orErr(err, syscall.EEXIST)
		}
		if r.Nlink == 0 {
			// An O_TMPFILE file getting its name. The kernel refuses (ENOENT) to link any
			// other nameless inode, as it lacks I_LINKABLE, so meta need not tell them apart.
			if err := tx.Bucket(bucketOrphans).Delete(inoKey(ino)); err != nil {
				return fmt.Errorf("adopt orphan %d: %w", ino, err)
			}
		}
		r.Nlink++
		o.touch(r, false)
		if err := o.addEntry(dir, name, r); err != nil {
			return err
		}
		out = r.Inode
		return o.flush()
	})
	return out, err
}

// Unlink removes a non-directory name: ENOENT, EISDIR. An inode that loses its last link
// becomes an orphan and keeps its data until Release.
func (s *Store) Unlink(parent uint64, name string) error {
	return s.remove(parent, name, false)
}

// Rmdir removes an empty directory: ENOENT, ENOTDIR, ENOTEMPTY.
func (s *Store) Rmdir(parent uint64, name string) error {
	return s.remove(parent, name, true)
}

func (s *Store) remove(parent uint64, name string, wantDir bool) error {
	if len(name) > NameMax {
		return syscall.ENAMETOOLONG
	}
	return s.update(func(tx *bolt.Tx) error {
		o := newOp(tx)
		dir, err := o.dir(parent)
		if err != nil {
			return err
		}
		d, ok, err := o.lookup(parent, name)
		if err != nil || !ok {
			return orErr(err, syscall.ENOENT)
		}
		r, err := o.get(d.ino)
		if err != nil {
			return err
		}
		switch {
		case wantDir && !r.IsDir():
			return syscall.ENOTDIR
		case !wantDir && r.IsDir():
			return syscall.EISDIR
		case wantDir && !o.isEmptyDir(r.Ino):
			return syscall.ENOTEMPTY
		}
		if err := o.removeEntry(dir, name, d); err != nil {
			return err
		}
		if r.IsDir() {
			dir.Nlink--
		}
		if err := o.dropLink(r); err != nil {
			return err
		}
		return o.flush()
	})
}

// Rename moves oldName in oldParent to newName in newParent, with renameat2 flags
// (RenameNoreplace, RenameExchange): ENOENT, EEXIST, ENOTEMPTY, EISDIR, ENOTDIR, EINVAL
// (a directory into itself, or unsupported flags).
func (s *Store) Rename(oldParent uint64, oldName string, newParent uint64, newName string, flags uint32) error {
	if flags&^(RenameNoreplace|RenameExchange) != 0 || flags == RenameNoreplace|RenameExchange {
		return syscall.EINVAL
	}
	if err := checkName(newName); err != nil {
		return err
	}
	if len(oldName) > NameMax {
		return syscall.ENAMETOOLONG
	}
	return s.update(func(tx *bolt.Tx) error {
		o := newOp(tx)
		r := renameOp{nsOp: o, oldParent: oldParent, oldName: oldName, newParent: newParent, newName: newName}
		if err := r.run(flags); err != nil {
			return err
		}
		return o.flush()
	})
}

type renameOp struct {
	*nsOp
	oldParent, newParent uint64
	oldName, newName     string
	src, dst             direntRec
	srcNode, dstNode     *inodeRec
	oldDir, newDir       *inodeRec
}

func (r *renameOp) run(flags uint32) error {
	var err error
	if r.oldDir, err = r.dir(r.oldParent); err != nil {
		return err
	}
	if r.newDir, err = r.dir(r.newParent); err != nil {
		return err
	}
	src, ok, err := r.lookup(r.oldParent, r.oldName)
	if err != nil || !ok {
		return orErr(err, syscall.ENOENT)
	}
	dst, dstExists, err := r.lookup(r.newParent, r.newName)
	if err != nil {
		return err
	}
	r.src, r.dst = src, dst
	if r.srcNode, err = r.get(src.ino); err != nil {
		return err
	}
	switch {
	case flags&RenameExchange != 0 && !dstExists:
		return syscall.ENOENT
	case flags&RenameNoreplace != 0 && dstExists:
		return syscall.EEXIST
	case dstExists && dst.ino == src.ino:
		return nil // two names of one file: rename(2) does nothing and succeeds
	}
	if err := r.checkNotAncestor(r.srcNode, r.newParent); err != nil {
		return err
	}
	if !dstExists {
		return r.move()
	}
	if r.dstNode, err = r.get(dst.ino); err != nil {
		return err
	}
	if flags&RenameExchange != 0 {
		if err := r.checkNotAncestor(r.dstNode, r.oldParent); err != nil {
			return err
		}
		return r.exchange()
	}
	return r.replace()
}

// checkNotAncestor refuses to move a directory below itself (EINVAL, as rename(2)).
func (r *renameOp) checkNotAncestor(moved *inodeRec, into uint64) error {
	if !moved.IsDir() {
		return nil
	}
	for ino, steps := into, 0; ; steps++ {
		if ino == moved.Ino {
			return syscall.EINVAL
		}
		if ino == RootIno {
			return nil
		}
		if steps > 1<<20 {
			return fmt.Errorf("directory %d: parent chain does not reach the root", into)
		}
		d, err := r.get(ino)
		if err != nil {
			return fmt.Errorf("parent chain of directory %d: %w", into, err)
		}
		ino = d.Parent
	}
}

func (r *renameOp) replace() error {
	switch {
	case r.srcNode.IsDir() && !r.dstNode.IsDir():
		return syscall.ENOTDIR
	case !r.srcNode.IsDir() && r.dstNode.IsDir():
		return syscall.EISDIR
	case r.dstNode.IsDir() && !r.isEmptyDir(r.dstNode.Ino):
		return syscall.ENOTEMPTY
	}
	if err := r.removeEntry(r.newDir, r.newName, r.dst); err != nil {
		return err
	}
	if r.dstNode.IsDir() {
		r.newDir.Nlink--
	}
	if err := r.dropLink(r.dstNode); err != nil {
		return err
	}
	return r.move()
}

func (r *renameOp) move() error {
	if r.srcNode.IsDir() && r.oldParent != r.newParent && r.newDir.Nlink >= maxNlink {
		return syscall.EMLINK
	}
	if err := r.removeEntry(r.oldDir, r.oldName, r.src); err != nil {
		return err
	}
	if err := r.addEntry(r.newDir, r.newName, r.srcNode); err != nil {
		return err
	}
	r.reparent(r.srcNode, r.oldDir, r.newDir)
	r.touch(r.srcNode, false)
	return nil
}

// exchange swaps the two names in place, keeping each name's readdir position. A directory
// that trades places with a non-directory across parents adds a link to its new parent,
// which is checked first, as move checks it: nothing may change before an error.
func (r *renameOp) exchange() error {
	if r.oldParent != r.newParent && r.srcNode.IsDir() != r.dstNode.IsDir() {
		gains := r.newDir // the parent the directory moves to
		if r.dstNode.IsDir() {
			gains = r.oldDir
		}
		if gains.Nlink >= maxNlink {
			return syscall.EMLINK
		}
	}
	put := func(dir uint64, name string, node *inodeRec, cookie uint64) error {
		d := direntRec{ino: node.Ino, typ: typeOf(node.Mode), cookie: cookie}
		return r.tx.Bucket(bucketDirents).Put(direntKey(dir, name), encodeDirent(d))
	}
	if err := put(r.oldParent, r.oldName, r.dstNode, r.src.cookie); err != nil {
		return fmt.Errorf("exchange: %w", err)
	}
	if err := put(r.newParent, r.newName, r.srcNode, r.dst.cookie); err != nil {
		return fmt.Errorf("exchange: %w", err)
	}
	r.reparent(r.srcNode, r.oldDir, r.newDir)
	r.reparent(r.dstNode, r.newDir, r.oldDir)
	for _, n := range []*inodeRec{r.srcNode, r.dstNode} {
		r.touch(n, false)
	}
	r.touch(r.oldDir, true)
	r.touch(r.newDir, true)
	return nil
}

// reparent moves a directory's ".." link from one parent to another.
func (r *renameOp) reparent(node, from, to *inodeRec) {
	if !node.IsDir() || from.Ino == to.Ino {
		return
	}
	node.Parent = to.Ino
	from.Nlink--
	to.Nlink++
	r.touch(from, true)
	r.touch(to, true)
}

// Release tells the store that no one holds ino open any more (the kernel forgot it); an
// orphan is then freed.
func (s *Store) Release(ino uint64) error {
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketOrphans).Get(inoKey(ino)) == nil {
			return nil
		}
		return s.freeInode(tx, ino)
	})
}

// freeInode deletes an orphan and everything it owns; its blocks wait in pendingFree.
func (s *Store) freeInode(tx *bolt.Tx, ino uint64) error {
	removed, err := truncateExtents(tx, ino, 0)
	if err != nil {
		return err
	}
	s.queueFree(removed)
	var names []string // deleted after the walk: a cursor must not see its bucket change
	forEachXattr(tx, ino, func(name, _ []byte) { names = append(names, string(name)) })
	for _, name := range names {
		if err := tx.Bucket(bucketXattrs).Delete(xattrKey(ino, name)); err != nil {
			return err
		}
	}
	prefix := inoKey(ino)
	for _, b := range [][]byte{bucketSymlinks, bucketOrphans, bucketInodes} {
		if err := tx.Bucket(b).Delete(prefix); err != nil {
			return fmt.Errorf("free inode %d: %w", ino, err)
		}
	}
	sb := tx.Bucket(bucketSuper)
	used, err := decodeU64(sb.Get(keyInodes), "superblock inode count")
	if err != nil {
		return err
	}
	return sb.Put(keyInodes, encodeU64(used-1))
}

// queueFree parks freed physical runs until the group commits. Called with s.mu held.
func (s *Store) queueFree(ms []Mapping) {
	for _, m := range ms {
		if !m.Hole {
			s.pendingFree = append(s.pendingFree, run{pblk: m.Pblk, len: m.Len})
		}
	}
}

// Readlink returns a symlink's target: EINVAL if ino is not a symlink.
func (s *Store) Readlink(ino uint64) (string, error) {
	var target string
	err := s.view(func(tx *bolt.Tx) error {
		r, err := getInode(tx, ino)
		if err != nil {
			return err
		}
		if r.Mode&syscall.S_IFMT != syscall.S_IFLNK {
			return syscall.EINVAL
		}
		b, err := decodeBytes(tx.Bucket(bucketSymlinks).Get(inoKey(ino)), fmt.Sprintf("symlink %d", ino))
		target = string(b)
		return err
	})
	return target, err
}

// ReadDir calls fn for every entry of directory ino whose cookie is >= from, in cookie order,
// until fn returns false. "." and ".." are not stored and not listed. fn runs with the
// store locked: it must not call back into the store.
func (s *Store) ReadDir(ino uint64, from uint64, fn func(DirEntry) bool) error {
	return s.view(func(tx *bolt.Tx) error {
		if _, err := newOp(tx).dir(ino); err != nil {
			return err
		}
		c := tx.Bucket(bucketDirpos).Cursor()
		prefix := inoKey(ino)
		for k, v := c.Seek(pairKey(ino, from)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			name, err := decodeBytes(v, "dirpos")
			if err != nil {
				return fmt.Errorf("directory %d: %w", ino, err)
			}
			d, ok, err := newOp(tx).lookup(ino, string(name))
			if err != nil || !ok {
				return orErr(err, fmt.Errorf("directory %d: dirpos names %q, which has no dirent", ino, name))
			}
			e := DirEntry{Name: string(name), Ino: d.ino, Mode: uint32(d.typ) << 12, Cookie: binary.BigEndian.Uint64(k[8:])}
			if !fn(e) {
				return nil
			}
		}
		return nil
	})
}

// NextCookie is the cookie the next entry made in directory ino gets. Every entry made or
// renamed into it from now on has a cookie at or above it, so a listing that stops there
// ends even while entries keep moving to its end.
func (s *Store) NextCookie(ino uint64) (uint64, error) {
	var next uint64
	err := s.view(func(tx *bolt.Tx) error {
		dir, err := newOp(tx).dir(ino)
		if err != nil {
			return err
		}
		next = dir.dirSeq
		return nil
	})
	return next, err
}

// SetFlags replaces the inode's persistent flags (FlagSwapfile).
func (s *Store) SetFlags(ino uint64, flags uint32) (Inode, error) {
	var out Inode
	err := s.update(func(tx *bolt.Tx) error {
		o := newOp(tx)
		r, err := o.get(ino)
		if err != nil {
			return err
		}
		r.Flags = flags
		o.touch(r, false)
		out = r.Inode
		return o.flush()
	})
	return out, err
}

// Statfs reports space and inode use, counting blocks freed but not yet committed as free.
func (s *Store) Statfs() (Statfs, error) {
	st := Statfs{BlockSize: BlockSize, NameMax: NameMax, Blocks: s.vol.blocks - 1,
		VolumeBytes: s.vol.blocks * BlockSize}
	err := s.view(func(tx *bolt.Tx) error {
		free, err := freeCount(tx)
		if err != nil {
			return err
		}
		for _, r := range s.pendingFree {
			free += r.len
		}
		sb := tx.Bucket(bucketSuper)
		used, err := decodeU64(sb.Get(keyInodes), "superblock inode count")
		if err != nil {
			return err
		}
		limit, err := decodeU64(sb.Get(keyMaxInodes), "superblock inode limit")
		if err != nil {
			return err
		}
		st.BlocksFree, st.Inodes, st.InodesFree = free, limit, limit-min(used, limit)
		return nil
	})
	return st, err
}
