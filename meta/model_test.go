package meta_test

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"syscall"
	"testing"

	"github.com/swapfs/swapfs/meta"
	"pgregory.net/rapid"
)

// model is the in-memory truth the store is checked against.
type model struct {
	files map[uint64][]byte            // regular file contents by inode
	dirs  map[uint64]map[string]uint64 // directory entries by inode
	links map[uint64]int
}

type modelTest struct {
	t     *rapid.T
	s     *meta.Store
	dir   string
	m     model
	names []string
}

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if err == nil {
		return 0
	}
	if errors.As(err, &e) {
		return e
	}
	return syscall.EIO
}

func (mt *modelTest) dirIno() uint64 {
	dirs := make([]uint64, 0, len(mt.m.dirs))
	for ino := range mt.m.dirs {
		dirs = append(dirs, ino)
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i] < dirs[j] })
	return rapid.SampledFrom(dirs).Draw(mt.t, "dir")
}

func (mt *modelTest) fileIno() (uint64, bool) {
	var inos []uint64
	for ino := range mt.m.files {
		if mt.m.links[ino] > 0 {
			inos = append(inos, ino)
		}
	}
	if len(inos) == 0 {
		return 0, false
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	return rapid.SampledFrom(inos).Draw(mt.t, "file"), true
}

func (mt *modelTest) create(isDir bool) {
	parent, name := mt.dirIno(), rapid.SampledFrom(mt.names).Draw(mt.t, "name")
	mode := uint32(reg)
	if isDir {
		mode = dir
	}
	in, err := mt.s.Create(parent, name, meta.NewInode{Mode: mode})
	_, exists := mt.m.dirs[parent][name]
	if exists {
		if errnoOf(err) != syscall.EEXIST {
			mt.t.Fatalf("create existing %q: %v", name, err)
		}
		return
	}
	if err != nil {
		mt.t.Fatalf("create %q: %v", name, err)
	}
	mt.m.dirs[parent][name] = in.Ino
	mt.m.links[in.Ino] = 1
	if isDir {
		mt.m.dirs[in.Ino] = map[string]uint64{}
	} else {
		mt.m.files[in.Ino] = nil
	}
}

func (mt *modelTest) remove() {
	parent, name := mt.dirIno(), rapid.SampledFrom(mt.names).Draw(mt.t, "name")
	ino, exists := mt.m.dirs[parent][name]
	_, isDir := mt.m.dirs[ino]
	var err error
	if isDir {
		err = mt.s.Rmdir(parent, name)
	} else {
		err = mt.s.Unlink(parent, name)
	}
	switch {
	case !exists:
		if errnoOf(err) != syscall.ENOENT {
			mt.t.Fatalf("remove missing: %v", err)
		}
	case isDir && len(mt.m.dirs[ino]) > 0:
		if errnoOf(err) != syscall.ENOTEMPTY {
			mt.t.Fatalf("rmdir non-empty: %v", err)
		}
	case err != nil:
		mt.t.Fatalf("remove %q: %v", name, err)
	default:
		delete(mt.m.dirs[parent], name)
		if mt.m.links[ino]--; mt.m.links[ino] == 0 {
			delete(mt.m.dirs, ino)
			delete(mt.m.files, ino)
			mt.s.Release(ino)
		}
	}
}

func (mt *modelTest) rename() {
	op, on := mt.dirIno(), rapid.SampledFrom(mt.names).Draw(mt.t, "from")
	np, nn := mt.dirIno(), rapid.SampledFrom(mt.names).Draw(mt.t, "to")
	err := mt.s.Rename(op, on, np, nn, 0)
	src, ok := mt.m.dirs[op][on]
	if !ok {
		if errnoOf(err) != syscall.ENOENT {
			mt.t.Fatalf("rename missing: %v", err)
		}
		return
	}
	if err != nil {
		// The model does not decide the subtler refusals; it checks they changed nothing.
		if _, still := mt.m.dirs[op][on]; !still || errnoOf(err) == syscall.EIO {
			mt.t.Fatalf("rename: %v", err)
		}
		return
	}
	dst, dstOK := mt.m.dirs[np][nn]
	if dstOK && dst == src {
		return
	}
	delete(mt.m.dirs[op], on)
	if dstOK {
		if mt.m.links[dst]--; mt.m.links[dst] == 0 {
			delete(mt.m.dirs, dst)
			delete(mt.m.files, dst)
			mt.s.Release(dst)
		}
	}
	mt.m.dirs[np][nn] = src
}

func (mt *modelTest) write() {
	ino, ok := mt.fileIno()
	if !ok {
		return
	}
	off := rapid.IntRange(0, 5*meta.BlockSize).Draw(mt.t, "off")
	n := rapid.IntRange(1, 3*meta.BlockSize).Draw(mt.t, "len")
	b := byte(rapid.IntRange(1, 255).Draw(mt.t, "byte"))
	data := bytes.Repeat([]byte{b}, n)
	if _, _, err := mt.s.WriteAt(ino, data, int64(off)); err != nil {
		mt.t.Fatalf("write: %v", err)
	}
	f := mt.m.files[ino]
	if len(f) < off+n {
		f = append(f, make([]byte, off+n-len(f))...)
	}
	copy(f[off:], data)
	mt.m.files[ino] = f
}

func (mt *modelTest) truncate() {
	ino, ok := mt.fileIno()
	if !ok {
		return
	}
	size := uint64(rapid.IntRange(0, 6*meta.BlockSize).Draw(mt.t, "size"))
	if _, err := mt.s.SetAttr(ino, meta.SetAttr{Size: &size}); err != nil {
		mt.t.Fatalf("truncate: %v", err)
	}
	f := mt.m.files[ino]
	if uint64(len(f)) > size {
		f = f[:size]
	} else {
		f = append(f, make([]byte, int(size)-len(f))...)
	}
	mt.m.files[ino] = f
}

func (mt *modelTest) punch() {
	ino, ok := mt.fileIno()
	if !ok {
		return
	}
	off := rapid.IntRange(0, 5*meta.BlockSize).Draw(mt.t, "off")
	n := rapid.IntRange(1, 3*meta.BlockSize).Draw(mt.t, "len")
	mode := rapid.SampledFrom([]uint32{meta.FallocPunchHole | meta.FallocKeepSize, meta.FallocZeroRange,
		meta.FallocKeepSize, 0}).Draw(mt.t, "mode")
	if _, err := mt.s.Fallocate(ino, int64(off), int64(n), mode); err != nil {
		mt.t.Fatalf("fallocate %#x: %v", mode, err)
	}
	f := mt.m.files[ino]
	if mode&meta.FallocKeepSize == 0 && len(f) < off+n {
		f = append(f, make([]byte, off+n-len(f))...)
	}
	if mode&(meta.FallocPunchHole|meta.FallocZeroRange) != 0 && off < len(f) {
		clear(f[off:min(len(f), off+n)])
	}
	mt.m.files[ino] = f
}

func (mt *modelTest) reopen() {
	if err := mt.s.Close(); err != nil {
		mt.t.Fatalf("close: %v", err)
	}
	s, err := meta.Open(mt.dir, meta.OpenOptions{})
	if err != nil {
		mt.t.Fatalf("open: %v", err)
	}
	mt.s = s
}

func (mt *modelTest) check() {
	for ino, want := range mt.m.files {
		buf := make([]byte, len(want)+100)
		n, err := mt.s.ReadAt(ino, buf, 0)
		if err != nil || !bytes.Equal(buf[:n], want) {
			mt.t.Fatalf("inode %d: read %d bytes (%v), want %d matching bytes", ino, n, err, len(want))
		}
	}
	for ino, entries := range mt.m.dirs {
		got := map[string]uint64{}
		mt.s.ReadDir(ino, 0, func(e meta.DirEntry) bool { got[e.Name] = e.Ino; return true })
		if fmt.Sprint(got) != fmt.Sprint(entries) {
			mt.t.Fatalf("directory %d lists %v, want %v", ino, got, entries)
		}
	}
}

func TestModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		dir := t.TempDir()
		if err := meta.Mkfs(dir, meta.MkfsOptions{Size: 4 << 20}); err != nil {
			rt.Fatal(err)
		}
		s, err := meta.Open(dir, meta.OpenOptions{})
		if err != nil {
			rt.Fatal(err)
		}
		mt := &modelTest{t: rt, s: s, dir: dir, names: []string{"a", "b", "c", "d"},
			m: model{files: map[uint64][]byte{}, dirs: map[uint64]map[string]uint64{meta.RootIno: {}},
				links: map[uint64]int{}}}
		defer func() { mt.s.Close() }()
		rt.Repeat(map[string]func(*rapid.T){
			"createFile": func(*rapid.T) { mt.create(false) },
			"createDir":  func(*rapid.T) { mt.create(true) },
			"remove":     func(*rapid.T) { mt.remove() },
			"rename":     func(*rapid.T) { mt.rename() },
			"write":      func(*rapid.T) { mt.write() },
			"truncate":   func(*rapid.T) { mt.truncate() },
			"fallocate":  func(*rapid.T) { mt.punch() },
			"reopen":     func(*rapid.T) { mt.reopen() },
			"":           func(*rapid.T) { mt.check() },
		})
		for _, p := range mt.s.Check() {
			rt.Errorf("Check: %v", p)
		}
	})
}
