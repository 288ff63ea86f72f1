package meta_test

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/swapfs/swapfs/meta"
	"pgregory.net/rapid"
)

// TestModel runs random operations against a store and an in-memory model of it, and
// compares the two after every step: contents, names, link counts, sizes, block counts,
// xattrs, symlink targets, free space, and the exact errno of every refusal.
func TestModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) { runModel(t, rt, 4<<20, 5, 1) })
	t.Log(Stats)
	clear(Stats)
}

// TestModelFullVolume is TestModel on a volume of 63 data blocks, with writes large enough
// to fill it: writes come back short and fallocate fails with ENOSPC, exactly where the
// model says the free blocks run out.
func TestModelFullVolume(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) { runModel(t, rt, 128<<10, 48, 4) })
	t.Log(Stats)
}

// node is one inode of the model.
type node struct {
	mode    uint32            // file type: S_IFREG, S_IFDIR or S_IFLNK
	links   int               // names; 0 for a file unlinked while open (an orphan)
	data    []byte            // regular files: the contents; len(data) is the size
	blocks  map[uint64]bool   // regular files: logical blocks that have space, written or not
	target  string            // symlinks
	entries map[string]uint64 // directories
	parent  uint64            // directories
	xattrs  map[string][]byte
}

func (n *node) isDir() bool { return n.mode == syscall.S_IFDIR }
func (n *node) isReg() bool { return n.mode == syscall.S_IFREG }

type modelTest struct {
	t         *rapid.T
	s         *meta.Store // nil while closed
	dir       string
	nodes     map[uint64]*node // every live inode, named or orphan
	volBlocks uint64           // data blocks of the volume
	maxBlock  int              // how far into a file writes and fallocates reach, in blocks
	steps     int
}

// checkEvery is how many steps pass between full consistency checks (Check) in a run.
const checkEvery = 25

var (
	modelNames  = []string{"a", "b", "c", "d"}
	xattrNames  = []string{"user.a", "user.b", "trusted.c"}
	linkTargets = []string{"a", "../b/c", "/abs/path", "x y"}
	renameFlags = []uint32{0, 0, meta.RenameNoreplace, meta.RenameExchange}
	fallocModes = []uint32{meta.FallocPunchHole | meta.FallocKeepSize, meta.FallocZeroRange, meta.FallocZeroRange | meta.FallocKeepSize, meta.FallocKeepSize, 0}
)

// runModel runs one sequence on a store of size bytes. Writes and fallocates reach up to
// maxBlock blocks into a file, and are drawn weight times as often as other actions.
func runModel(tt *testing.T, rt *rapid.T, size int64, maxBlock, weight int) {
	dir := tt.TempDir()
	if err := meta.Mkfs(dir, meta.MkfsOptions{Size: size}); err != nil {
		rt.Fatal(err)
	}
	s, err := meta.Open(dir, meta.OpenOptions{})
	if err != nil {
		rt.Fatal(err)
	}
	mt := &modelTest{t: rt, s: s, dir: dir, maxBlock: maxBlock,
		nodes: map[uint64]*node{meta.RootIno: {mode: syscall.S_IFDIR, links: 1, entries: map[string]uint64{},
			parent: meta.RootIno, xattrs: map[string][]byte{}}}}
	defer func() {
		if mt.s != nil {
			mt.s.Close()
		}
	}()
	st, err := s.Statfs()
	if err != nil {
		rt.Fatal(err)
	}
	mt.volBlocks = st.Blocks
	actions := map[string]func(*rapid.T){
		"createFile":    func(*rapid.T) { mt.create(syscall.S_IFREG) },
		"createDir":     func(*rapid.T) { mt.create(syscall.S_IFDIR) },
		"createSymlink": func(*rapid.T) { mt.create(syscall.S_IFLNK) },
		"remove":        func(*rapid.T) { mt.remove() },
		"link":          func(*rapid.T) { mt.link() },
		"rename":        func(*rapid.T) { mt.rename() },
		"write":         func(*rapid.T) { mt.write() },
		"truncate":      func(*rapid.T) { mt.truncate() },
		"fallocate":     func(*rapid.T) { mt.fallocate() },
		"setXattr":      func(*rapid.T) { mt.setXattr() },
		"removeXattr":   func(*rapid.T) { mt.removeXattr() },
		"getXattr":      func(*rapid.T) { mt.getXattr() },
		"release":       func(*rapid.T) { mt.releaseOrphan() },
		"reopen":        func(*rapid.T) { mt.reopen() },
		"":              func(*rapid.T) { mt.check() },
	}
	for i := 1; i < weight; i++ {
		actions[fmt.Sprint("write", i)] = actions["write"]
		actions[fmt.Sprint("fallocate", i)] = actions["fallocate"]
	}
	rt.Repeat(actions)
	for _, p := range mt.s.Check() {
		rt.Errorf("Check: %v", p)
	}
}

// expect fails unless err is the outcome want: nil for 0, else exactly that errno, bare
// (meta returns POSIX outcomes unwrapped; anything else is a storage failure).
var Stats = map[string]int{}

func (mt *modelTest) expect(op string, err error, want syscall.Errno) {
	mt.t.Helper()
	Stats[strings.Fields(op)[0]+" "+want.Error()]++
	if want == 0 {
		if err != nil {
			mt.t.Fatalf("%s: %v, want success", op, err)
		}
		return
	}
	if got, ok := err.(syscall.Errno); !ok || got != want {
		mt.t.Fatalf("%s: %v (%T), want %v as a bare syscall.Errno", op, err, err, want)
	}
}

// pick draws one inode that satisfies keep, in inode order so that runs replay.
func (mt *modelTest) pick(label string, keep func(*node) bool) (uint64, bool) {
	var inos []uint64
	for ino, n := range mt.nodes {
		if keep(n) {
			inos = append(inos, ino)
		}
	}
	if len(inos) == 0 {
		return 0, false
	}
	slices.Sort(inos)
	return rapid.SampledFrom(inos).Draw(mt.t, label), true
}

func (mt *modelTest) dirIno(label string) uint64 {
	ino, _ := mt.pick(label, (*node).isDir)
	return ino
}

func (mt *modelTest) name(label string) string {
	return rapid.SampledFrom(modelNames).Draw(mt.t, label)
}

func (mt *modelTest) isDir(ino uint64) bool { return mt.nodes[ino].isDir() }

// within reports whether directory d is a or lies below it.
func (mt *modelTest) within(d, a uint64) bool {
	for {
		if d == a {
			return true
		}
		if d == meta.RootIno {
			return false
		}
		d = mt.nodes[d].parent
	}
}

func (mt *modelTest) freeBlocks() uint64 {
	used := uint64(0)
	for _, n := range mt.nodes {
		used += uint64(len(n.blocks))
	}
	return mt.volBlocks - used
}

// holes counts the blocks of [b0, b1) that have no space yet.
func holes(n *node, b0, b1 uint64) uint64 {
	var k uint64
	for b := b0; b < b1; b++ {
		if !n.blocks[b] {
			k++
		}
	}
	return k
}

func fill(n *node, b0, b1 uint64) {
	for b := b0; b < b1; b++ {
		n.blocks[b] = true
	}
}

func resize(n *node, size int) {
	if size <= len(n.data) {
		n.data = n.data[:size:size]
	} else {
		n.data = append(n.data, make([]byte, size-len(n.data))...)
	}
}

// release frees an inode with no name, as the kernel's forget does.
func (mt *modelTest) release(ino uint64) {
	mt.expect(fmt.Sprintf("release %d", ino), mt.s.Release(ino), 0)
	delete(mt.nodes, ino)
}

// dropLink takes a name from ino. A removed directory is released at once; a file that
// lost its last name stays open (an orphan) or is released.
func (mt *modelTest) dropLink(ino uint64) {
	n := mt.nodes[ino]
	n.links--
	if n.links > 0 {
		return
	}
	if !n.isReg() || !rapid.Bool().Draw(mt.t, "keepOpen") {
		mt.release(ino)
	}
}

func (mt *modelTest) create(mode uint32) {
	parent, name := mt.dirIno("parent"), mt.name("name")
	n := meta.NewInode{Mode: mode | 0o644}
	if mode == syscall.S_IFLNK {
		n.Target = rapid.SampledFrom(linkTargets).Draw(mt.t, "target")
	}
	in, err := mt.s.Create(parent, name, n)
	if _, exists := mt.nodes[parent].entries[name]; exists {
		mt.expect("create existing "+name, err, syscall.EEXIST)
		return
	}
	mt.expect("create "+name, err, 0)
	nd := &node{mode: mode, links: 1, target: n.Target, xattrs: map[string][]byte{}}
	switch mode {
	case syscall.S_IFDIR:
		nd.entries, nd.parent = map[string]uint64{}, parent
	case syscall.S_IFREG:
		nd.blocks = map[uint64]bool{}
	}
	if _, taken := mt.nodes[in.Ino]; taken {
		mt.t.Fatalf("create %q returned inode %d, which is live", name, in.Ino)
	}
	mt.nodes[in.Ino] = nd
	mt.nodes[parent].entries[name] = in.Ino
}

func (mt *modelTest) remove() {
	parent, name := mt.dirIno("parent"), mt.name("name")
	rmdir := rapid.Bool().Draw(mt.t, "rmdir")
	ino, exists := mt.nodes[parent].entries[name]
	var want syscall.Errno
	switch {
	case !exists:
		want = syscall.ENOENT
	case rmdir && !mt.isDir(ino):
		want = syscall.ENOTDIR
	case !rmdir && mt.isDir(ino):
		want = syscall.EISDIR
	case rmdir && len(mt.nodes[ino].entries) > 0:
		want = syscall.ENOTEMPTY
	}
	var err error
	if rmdir {
		err = mt.s.Rmdir(parent, name)
	} else {
		err = mt.s.Unlink(parent, name)
	}
	mt.expect(fmt.Sprintf("remove %d/%s (rmdir %v)", parent, name, rmdir), err, want)
	if want == 0 {
		delete(mt.nodes[parent].entries, name)
		mt.dropLink(ino)
	}
}

// link adds a name to a named inode; directories are refused (EPERM) before the name is
// looked at, as meta orders it (the kernel answers EEXIST itself before asking us).
func (mt *modelTest) link() {
	ino, _ := mt.pick("target", func(n *node) bool { return n.links > 0 })
	parent, name := mt.dirIno("parent"), mt.name("name")
	_, exists := mt.nodes[parent].entries[name]
	var want syscall.Errno
	switch {
	case mt.isDir(ino):
		want = syscall.EPERM
	case exists:
		want = syscall.EEXIST
	}
	in, err := mt.s.Link(ino, parent, name)
	mt.expect(fmt.Sprintf("link %d as %d/%s", ino, parent, name), err, want)
	if want != 0 {
		return
	}
	n := mt.nodes[ino]
	n.links++
	mt.nodes[parent].entries[name] = ino
	if in.Nlink != uint32(n.links) {
		mt.t.Fatalf("link %d: nlink %d, want %d", ino, in.Nlink, n.links)
	}
}

// renameOutcome is what rename(2) answers, in the order the checks are made: missing
// source, the flags' own rules, two names of one inode (success, nothing changes), a
// directory into its own subtree, then the rules for replacing a name.
func (mt *modelTest) renameOutcome(op uint64, on string, np uint64, nn string, flags uint32) syscall.Errno {
	src, ok := mt.nodes[op].entries[on]
	if !ok {
		return syscall.ENOENT
	}
	dst, dstOK := mt.nodes[np].entries[nn]
	switch {
	case flags&meta.RenameExchange != 0 && !dstOK:
		return syscall.ENOENT
	case flags&meta.RenameNoreplace != 0 && dstOK:
		return syscall.EEXIST
	case dstOK && dst == src:
		return 0
	case mt.isDir(src) && mt.within(np, src):
		return syscall.EINVAL
	case !dstOK:
		return 0
	case flags&meta.RenameExchange != 0:
		if mt.isDir(dst) && mt.within(op, dst) {
			return syscall.EINVAL
		}
		return 0
	case mt.isDir(src) && !mt.isDir(dst):
		return syscall.ENOTDIR
	case !mt.isDir(src) && mt.isDir(dst):
		// When dst is an ancestor of src, Linux answers ENOTEMPTY itself (the
		// lock_rename trap in do_renameat2) before the filesystem is asked.
		return syscall.EISDIR
	case mt.isDir(dst) && len(mt.nodes[dst].entries) > 0:
		return syscall.ENOTEMPTY
	}
	return 0
}

func (mt *modelTest) rename() {
	op, on := mt.dirIno("fromDir"), mt.name("from")
	np, nn := mt.dirIno("toDir"), mt.name("to")
	flags := rapid.SampledFrom(renameFlags).Draw(mt.t, "flags")
	want := mt.renameOutcome(op, on, np, nn, flags)
	err := mt.s.Rename(op, on, np, nn, flags)
	mt.expect(fmt.Sprintf("rename %d/%s -> %d/%s flags %d", op, on, np, nn, flags), err, want)
	if want != 0 {
		return
	}
	src := mt.nodes[op].entries[on]
	dst, dstOK := mt.nodes[np].entries[nn]
	switch {
	case dstOK && dst == src:
	case flags&meta.RenameExchange != 0:
		mt.nodes[op].entries[on], mt.nodes[np].entries[nn] = dst, src
		if mt.isDir(src) {
			mt.nodes[src].parent = np
		}
		if mt.isDir(dst) {
			mt.nodes[dst].parent = op
		}
	default:
		delete(mt.nodes[op].entries, on)
		mt.nodes[np].entries[nn] = src
		if mt.isDir(src) {
			mt.nodes[src].parent = np
		}
		if dstOK {
			mt.dropLink(dst)
		}
	}
}

// fileIno draws a regular file, named or orphan.
func (mt *modelTest) fileIno() (uint64, bool) { return mt.pick("file", (*node).isReg) }

func (mt *modelTest) write() {
	ino, ok := mt.fileIno()
	if !ok {
		return
	}
	n := mt.nodes[ino]
	off := rapid.IntRange(0, mt.maxBlock*meta.BlockSize).Draw(mt.t, "off")
	size := rapid.IntRange(1, (mt.maxBlock*3/4+1)*meta.BlockSize).Draw(mt.t, "len")
	seed := byte(rapid.IntRange(1, 255).Draw(mt.t, "seed"))
	data := make([]byte, size)
	for i := range data {
		data[i] = seed ^ byte(i) ^ byte(i>>8)
	}
	// The blocks that fit: the write stops before the first hole no free block is left
	// for; nothing fits (ENOSPC) if that is the first block it touches.
	want, free := size, mt.freeBlocks()
	b0, b1 := uint64(off)/meta.BlockSize, uint64(off+size+meta.BlockSize-1)/meta.BlockSize
	for b := b0; b < b1; b++ {
		if n.blocks[b] {
			continue
		}
		if free == 0 {
			want = min(int(b)*meta.BlockSize-off, size)
			break
		}
		free--
	}
	got, in, err := mt.s.WriteAt(ino, data, int64(off))
	op := fmt.Sprintf("write %d bytes at %d to %d with %d blocks free", size, off, ino, mt.freeBlocks())
	if want <= 0 {
		mt.expect(op, err, syscall.ENOSPC)
		return
	}
	mt.expect(op, err, 0)
	if want < size {
		Stats["shortwrite"]++
	}
	if got != want {
		mt.t.Fatalf("%s: wrote %d bytes, want %d", op, got, want)
	}
	if len(n.data) < off+want {
		resize(n, off+want)
	}
	copy(n.data[off:], data[:want])
	fill(n, b0, uint64(off+want+meta.BlockSize-1)/meta.BlockSize)
	if in.Size != uint64(len(n.data)) || in.Blocks != uint64(len(n.blocks)) {
		mt.t.Fatalf("%s: returned size %d blocks %d, want %d and %d", op, in.Size, in.Blocks, len(n.data), len(n.blocks))
	}
}

func (mt *modelTest) truncate() {
	ino, ok := mt.fileIno()
	if !ok {
		return
	}
	size := rapid.IntRange(0, (mt.maxBlock+1)*meta.BlockSize).Draw(mt.t, "size")
	sz := uint64(size)
	_, err := mt.s.SetAttr(ino, meta.SetAttr{Size: &sz})
	mt.expect(fmt.Sprintf("truncate %d to %d", ino, size), err, 0)
	n := mt.nodes[ino]
	resize(n, size)
	// Every block past the new last one is freed, whether or not it lay past the old size.
	keep := (sz + meta.BlockSize - 1) / meta.BlockSize
	for b := range n.blocks {
		if b >= keep {
			delete(n.blocks, b)
		}
	}
}

func (mt *modelTest) fallocate() {
	ino, ok := mt.fileIno()
	if !ok {
		return
	}
	n := mt.nodes[ino]
	off := rapid.IntRange(0, mt.maxBlock*meta.BlockSize).Draw(mt.t, "off")
	length := rapid.IntRange(1, (mt.maxBlock*3/4+1)*meta.BlockSize).Draw(mt.t, "len")
	mode := rapid.SampledFrom(fallocModes).Draw(mt.t, "mode")
	end := off + length
	op := fmt.Sprintf("fallocate %d [%d, %d) mode %#x with %d blocks free", ino, off, end, mode, mt.freeBlocks())
	// b0, b1: the blocks that get space; whole blocks only when zeroing.
	b0, b1 := uint64(off)/meta.BlockSize, uint64(end+meta.BlockSize-1)/meta.BlockSize
	if mode&meta.FallocZeroRange != 0 {
		b0, b1 = uint64(off+meta.BlockSize-1)/meta.BlockSize, uint64(end)/meta.BlockSize
	}
	if mode&meta.FallocPunchHole != 0 {
		b0, b1 = 0, 0
	}
	var want syscall.Errno
	if b0 < b1 && holes(n, b0, b1) > mt.freeBlocks() {
		want = syscall.ENOSPC
	}
	in, err := mt.s.Fallocate(ino, int64(off), int64(length), mode)
	mt.expect(op, err, want)
	if want != 0 {
		return
	}
	switch {
	case mode&meta.FallocPunchHole != 0:
		// Punching stops at the end of the file: blocks reserved past it stay.
		pe := min(end, len(n.data))
		if off < pe {
			clear(n.data[off:pe])
			for b := uint64(off+meta.BlockSize-1) / meta.BlockSize; b < uint64(pe)/meta.BlockSize; b++ {
				delete(n.blocks, b)
			}
		}
	case mode&meta.FallocZeroRange != 0:
		clear(n.data[min(off, len(n.data)):min(end, len(n.data))])
		fill(n, b0, b1)
	default:
		fill(n, b0, b1)
	}
	if mode&meta.FallocKeepSize == 0 && end > len(n.data) {
		resize(n, end)
	}
	if in.Size != uint64(len(n.data)) || in.Blocks != uint64(len(n.blocks)) {
		mt.t.Fatalf("%s: returned size %d blocks %d, want %d and %d", op, in.Size, in.Blocks, len(n.data), len(n.blocks))
	}
}

func (mt *modelTest) anyIno() uint64 {
	ino, _ := mt.pick("inode", func(*node) bool { return true })
	return ino
}

func (mt *modelTest) setXattr() {
	ino, name := mt.anyIno(), rapid.SampledFrom(xattrNames).Draw(mt.t, "xattr")
	value := rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(mt.t, "value")
	flags := rapid.SampledFrom([]uint32{0, meta.XattrCreate, meta.XattrReplace}).Draw(mt.t, "flags")
	xs := mt.nodes[ino].xattrs
	_, exists := xs[name]
	var want syscall.Errno
	switch {
	case flags == meta.XattrCreate && exists:
		want = syscall.EEXIST
	case flags == meta.XattrReplace && !exists:
		want = syscall.ENODATA
	}
	mt.expect(fmt.Sprintf("setxattr %d %s flags %d", ino, name, flags), mt.s.SetXattr(ino, name, value, flags), want)
	if want == 0 {
		xs[name] = bytes.Clone(value)
	}
}

func (mt *modelTest) removeXattr() {
	ino, name := mt.anyIno(), rapid.SampledFrom(xattrNames).Draw(mt.t, "xattr")
	xs := mt.nodes[ino].xattrs
	var want syscall.Errno
	if _, exists := xs[name]; !exists {
		want = syscall.ENODATA
	}
	mt.expect(fmt.Sprintf("removexattr %d %s", ino, name), mt.s.RemoveXattr(ino, name), want)
	delete(xs, name)
}

func (mt *modelTest) getXattr() {
	ino, name := mt.anyIno(), rapid.SampledFrom(xattrNames).Draw(mt.t, "xattr")
	v, err := mt.s.GetXattr(ino, name)
	want, exists := mt.nodes[ino].xattrs[name]
	if !exists {
		mt.expect(fmt.Sprintf("getxattr %d %s", ino, name), err, syscall.ENODATA)
		return
	}
	if err != nil || !bytes.Equal(v, want) {
		mt.t.Fatalf("getxattr %d %s: %q, %v; want %q", ino, name, v, err, want)
	}
}

func (mt *modelTest) releaseOrphan() {
	if ino, ok := mt.pick("orphan", func(n *node) bool { return n.links == 0 }); ok {
		mt.release(ino)
	}
}

// reopen closes and opens the store: open reclaims the orphans, as no one can hold them.
func (mt *modelTest) reopen() {
	s := mt.s
	mt.s = nil
	if err := s.Close(); err != nil {
		mt.t.Fatalf("close: %v", err)
	}
	s, err := meta.Open(mt.dir, meta.OpenOptions{})
	if err != nil {
		mt.t.Fatalf("open: %v", err)
	}
	mt.s = s
	for ino, n := range mt.nodes {
		if n.links == 0 {
			delete(mt.nodes, ino)
		}
	}
}

// check compares the whole store with the model, and every checkEvery steps runs Check,
// which commits the group first.
func (mt *modelTest) check() {
	if mt.steps++; mt.steps%checkEvery == 0 {
		Stats["Check"]++
		for _, p := range mt.s.Check() {
			mt.t.Fatalf("Check after %d steps: %v", mt.steps, p)
		}
	}
	for _, ino := range slices.Sorted(maps.Keys(mt.nodes)) {
		mt.checkNode(ino, mt.nodes[ino])
	}
	st, err := mt.s.Statfs()
	if err != nil || st.BlocksFree != mt.freeBlocks() {
		mt.t.Fatalf("statfs: %d blocks free (%v), want %d", st.BlocksFree, err, mt.freeBlocks())
	}
}

func (mt *modelTest) checkNode(ino uint64, n *node) {
	in, err := mt.s.GetInode(ino)
	if err != nil {
		mt.t.Fatalf("inode %d: %v", ino, err)
	}
	nlink, size := uint32(n.links), uint64(len(n.data))
	switch {
	case n.isDir():
		nlink, size = 2, in.Size
		for _, child := range n.entries {
			if mt.isDir(child) {
				nlink++
			}
		}
		if in.Parent != n.parent {
			mt.t.Fatalf("directory %d: parent %d, want %d", ino, in.Parent, n.parent)
		}
	case n.mode == syscall.S_IFLNK:
		size = uint64(len(n.target))
	}
	if in.Mode&syscall.S_IFMT != n.mode || in.Nlink != nlink || in.Size != size || in.Blocks != uint64(len(n.blocks)) {
		mt.t.Fatalf("inode %d: mode %o nlink %d size %d blocks %d; want type %o, %d, %d, %d",
			ino, in.Mode, in.Nlink, in.Size, in.Blocks, n.mode, nlink, size, len(n.blocks))
	}
	switch {
	case n.isReg():
		buf := make([]byte, len(n.data)+100)
		got, err := mt.s.ReadAt(ino, buf, 0)
		if err != nil || !bytes.Equal(buf[:got], n.data) {
			mt.t.Fatalf("inode %d: read %d bytes (%v), want %d matching bytes", ino, got, err, len(n.data))
		}
	case n.isDir():
		got := map[string]uint64{}
		err := mt.s.ReadDir(ino, 0, func(e meta.DirEntry) bool { got[e.Name] = e.Ino; return true })
		if err != nil || !maps.Equal(got, n.entries) {
			mt.t.Fatalf("directory %d lists %v (%v), want %v", ino, got, err, n.entries)
		}
	default:
		if target, err := mt.s.Readlink(ino); err != nil || target != n.target {
			mt.t.Fatalf("symlink %d: %q (%v), want %q", ino, target, err, n.target)
		}
	}
	names, err := mt.s.ListXattr(ino)
	if want := slices.Sorted(maps.Keys(n.xattrs)); err != nil || !slices.Equal(names, want) {
		mt.t.Fatalf("inode %d: xattrs %v (%v), want %v", ino, names, err, want)
	}
	for name, want := range n.xattrs {
		if v, err := mt.s.GetXattr(ino, name); err != nil || !bytes.Equal(v, want) {
			mt.t.Fatalf("inode %d: xattr %s = %q (%v), want %q", ino, name, v, err, want)
		}
	}
}
