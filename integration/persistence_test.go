package integration

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const mib = 1 << 20

// TestPersistence writes a tree with every kind of file and attribute, unmounts, mounts
// again and finds everything as it was, byte for byte and attribute for attribute.
func TestPersistence(t *testing.T) {
	m := mountStore(t)
	buildTree(t, m.Dir)
	before := snapshot(t, m.Dir)
	checkTreeShape(t, before)
	m.Unmount()

	m2 := mountStore(t, withStore(m.Store))
	after := snapshot(t, m2.Dir)
	comparePaths(t, before, after)
}

// buildTree fills root; see TestPersistence.
func buildTree(t *testing.T, root string) {
	t.Helper()
	p := func(rel string) string { return filepath.Join(root, rel) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"dir/nested/deeper", "modes/setgid", "modes/sticky", "modes/private", "owned"} {
		must(os.MkdirAll(p(d), 0o755))
	}
	must(os.WriteFile(p("small.txt"), []byte("hello, swapfs\n"), 0o644))
	must(os.WriteFile(p("empty"), nil, 0o644))
	must(os.WriteFile(p("big1"), randomBytes(t, 3*mib+123), 0o644))
	must(os.WriteFile(p("dir/big2"), randomBytes(t, mib+1), 0o600))
	must(os.WriteFile(p("dir/nested/deeper/file"), randomBytes(t, 10000), 0o640))
	must(os.Link(p("big1"), p("dir/hardlink-to-big1")))
	must(os.Link(p("small.txt"), p("owned/second-name")))

	// Sparse files: data only where written, holes elsewhere.
	writeAt(t, p("sparse-middle"), 0, randomBytes(t, 4096))
	writeAt(t, p("sparse-middle"), 10*mib, randomBytes(t, 4096))
	writeAt(t, p("sparse-head"), 10*mib, randomBytes(t, 4096))
	writeAt(t, p("sparse-tail"), 0, randomBytes(t, 4096))
	must(os.Truncate(p("sparse-tail"), 20*mib))

	must(os.Symlink("dir/big2", p("link-rel")))
	must(os.Symlink("/etc/hostname", p("link-abs")))
	must(os.Symlink("no/such/file", p("dir/link-dangling")))
	must(unix.Mkfifo(p("fifo"), 0o640))
	must(unix.Mknod(p("chardev"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))))

	// Owners first: chown clears the setuid and setgid bits, chmod sets them after.
	must(os.Chown(p("owned"), 4321, 8765))
	must(os.Chown(p("dir/big2"), 1234, 5678))
	must(os.Lchown(p("link-rel"), 1111, 2222))
	must(os.Chown(p("fifo"), 3333, 4444))
	must(os.WriteFile(p("modes/suid"), []byte("#!/bin/sh\n"), 0o755))
	// unix.Chmod: os.Chmod reads 0o4000 as a plain bit, not as os.ModeSetuid.
	must(unix.Chmod(p("modes/suid"), 0o4755))
	must(unix.Chmod(p("modes/setgid"), 0o2775))
	must(unix.Chmod(p("modes/sticky"), 0o1777))
	must(os.Chmod(p("modes/private"), 0o700))
	must(os.WriteFile(p("modes/readonly"), []byte("ro"), 0o444))

	must(unix.Setxattr(p("small.txt"), "user.comment", []byte("a text value"), 0))
	must(unix.Setxattr(p("big1"), "user.empty", nil, 0))
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	must(unix.Setxattr(p("dir"), "user.binary", allBytes, 0))
	must(unix.Setxattr(p("dir"), "user.large", bytes.Repeat([]byte("x"), 4000), 0))
	must(unix.Lsetxattr(p("link-rel"), "trusted.on-symlink", []byte("t"), 0))

	setTimes(t, root)
}

// setTimes gives every entry its own mtime, children before parents so that nothing
// changes a directory's times afterwards.
func setTimes(t *testing.T, root string) {
	t.Helper()
	var paths []string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil {
			paths = append(paths, path)
		}
		return err
	})
	sort.Slice(paths, func(i, j int) bool { return strings.Count(paths[i], "/") > strings.Count(paths[j], "/") })
	base := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for i, path := range paths {
		mt := base.Add(time.Duration(i)*time.Hour + time.Duration(i*1000+7)) // nanoseconds too
		at := mt.Add(time.Minute)
		ts := []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatalf("set times of %s: %v", path, err)
		}
	}
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func writeAt(t testing.TB, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatalf("write %s at %d: %v", path, off, err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close %s: %v", path, err)
	}
}

// entry is everything about one path that a remount must keep.
type entry struct {
	Mode      uint32
	Uid, Gid  uint32
	Nlink     uint64
	Size      int64
	Rdev      uint64
	Mtime     int64 // ns
	Ctime     int64 // ns
	SHA256    string
	Target    string
	Xattrs    map[string]string
	Data      [][2]int64 // [start, end) of each data run, from SEEK_DATA and SEEK_HOLE
	SameInode string     // the first path in walk order with the same inode, if not this one
	Ino       uint64     // stable: inode numbers come from the store
}

// snapshot records every entry under root, root included (as ".").
func snapshot(t *testing.T, root string) map[string]entry {
	t.Helper()
	snap := map[string]entry{}
	firstPath := map[uint64]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		e, err := describe(path)
		if err != nil {
			return err
		}
		if first, ok := firstPath[e.Ino]; ok {
			e.SameInode = first
		} else {
			firstPath[e.Ino] = rel
		}
		snap[rel] = e
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return snap
}

func describe(path string) (entry, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return entry{}, err
	}
	e := entry{Mode: st.Mode, Uid: st.Uid, Gid: st.Gid, Nlink: st.Nlink, Size: st.Size,
		Rdev: st.Rdev, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Ino: st.Ino}
	var err error
	if e.Xattrs, err = xattrs(path); err != nil {
		return entry{}, err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		e.Target, err = os.Readlink(path)
	case unix.S_IFREG:
		e.SHA256, e.Data, err = readFile(path, st.Size)
	}
	return e, err
}

func readFile(path string, size int64) (string, [][2]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	data, err := dataRuns(f, size)
	if err != nil {
		return "", nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	if int64(len(b)) != size {
		return "", nil, errors.New(path + ": read a different length than stat says")
	}
	return sha256Hex(b), data, nil
}

// dataRuns lists the data runs of f with lseek(2) SEEK_DATA and SEEK_HOLE.
func dataRuns(f *os.File, size int64) ([][2]int64, error) {
	var runs [][2]int64
	for off := int64(0); off < size; {
		start, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			break
		}
		if err != nil {
			return nil, err
		}
		end, err := unix.Seek(int(f.Fd()), start, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		runs = append(runs, [2]int64{start, end})
		off = end
	}
	return runs, nil
}

func xattrs(path string) (map[string]string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(path, buf)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		vn, err := unix.Lgetxattr(path, name, v)
		if err != nil {
			return nil, err
		}
		out[name] = string(v[:vn])
	}
	return out, nil
}

// checkTreeShape checks that the tree is what buildTree meant, before a remount is compared
// with it: a check of the comparison itself.
func checkTreeShape(t *testing.T, s map[string]entry) {
	t.Helper()
	want := map[string]func(e entry) bool{
		"dir/hardlink-to-big1": func(e entry) bool { return e.SameInode == "big1" && e.Nlink == 2 },
		"sparse-middle": func(e entry) bool {
			return reflect.DeepEqual(e.Data, [][2]int64{{0, 4096}, {10 * mib, 10*mib + 4096}})
		},
		"sparse-head":  func(e entry) bool { return reflect.DeepEqual(e.Data, [][2]int64{{10 * mib, 10*mib + 4096}}) },
		"sparse-tail":  func(e entry) bool { return e.Size == 20*mib && reflect.DeepEqual(e.Data, [][2]int64{{0, 4096}}) },
		"fifo":         func(e entry) bool { return e.Mode == unix.S_IFIFO|0o640 && e.Uid == 3333 },
		"chardev":      func(e entry) bool { return e.Mode == unix.S_IFCHR|0o600 && e.Rdev == unix.Mkdev(1, 3) },
		"modes/suid":   func(e entry) bool { return e.Mode == unix.S_IFREG|0o4755 },
		"modes/sticky": func(e entry) bool { return e.Mode == unix.S_IFDIR|0o1777 },
		"link-rel": func(e entry) bool {
			return e.Target == "dir/big2" && e.Uid == 1111 && e.Xattrs["trusted.on-symlink"] == "t"
		},
		"dir":               func(e entry) bool { return len(e.Xattrs["user.binary"]) == 256 && len(e.Xattrs["user.large"]) == 4000 },
		"big1":              func(e entry) bool { _, ok := e.Xattrs["user.empty"]; return ok && e.Size == 3*mib+123 },
		"owned/second-name": func(e entry) bool { return e.SameInode == "" && e.Nlink == 2 },
		"small.txt":         func(e entry) bool { return e.SameInode == "owned/second-name" },
	}
	for path, ok := range want {
		e, found := s[path]
		if !found {
			t.Errorf("%s is missing from the tree just written", path)
		} else if !ok(e) {
			t.Errorf("%s is not as written: %+v", path, e)
		}
	}
}

func comparePaths(t *testing.T, before, after map[string]entry) {
	t.Helper()
	var paths []string
	for p := range before {
		paths = append(paths, p)
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	for _, p := range paths {
		b, inBefore := before[p]
		a, inAfter := after[p]
		switch {
		case !inAfter:
			t.Errorf("%s: gone after remount", p)
		case !inBefore:
			t.Errorf("%s: appeared after remount", p)
		default:
			if !reflect.DeepEqual(a, b) {
				t.Errorf("%s changed across remount:\nbefore %+v\nafter  %+v", p, b, a)
			}
		}
	}
}
