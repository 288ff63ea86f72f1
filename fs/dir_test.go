package fs_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestNamespaceErrors(t *testing.T) {
	m := newMount(t)
	must(t, "mkdir d", os.Mkdir(m.path("d"), 0o755))
	writeFile(t, m.path("d", "f"), []byte("x"), 0o644)
	writeFile(t, m.path("f"), []byte("x"), 0o644)
	must(t, "mkdir empty", os.Mkdir(m.path("empty"), 0o755))
	long := strings.Repeat("n", 256)

	tests := []struct {
		what string
		err  error
		want syscall.Errno
	}{
		{"stat missing", unix.Lstat(m.path("missing"), new(unix.Stat_t)), syscall.ENOENT},
		{"unlink missing", unix.Unlink(m.path("missing")), syscall.ENOENT},
		{"rmdir missing", unix.Rmdir(m.path("missing")), syscall.ENOENT},
		{"rename missing", unix.Rename(m.path("missing"), m.path("x")), syscall.ENOENT},
		{"open missing", openErr(m.path("missing"), os.O_RDONLY), syscall.ENOENT},
		{"mkdir existing", unix.Mkdir(m.path("d"), 0o755), syscall.EEXIST},
		{"mkdir over file", unix.Mkdir(m.path("f"), 0o755), syscall.EEXIST},
		{"O_CREAT|O_EXCL existing", openErr(m.path("f"), os.O_CREATE|os.O_EXCL|os.O_WRONLY), syscall.EEXIST},
		{"link to existing name", unix.Link(m.path("f"), m.path("d", "f")), syscall.EEXIST},
		{"symlink over existing", unix.Symlink("t", m.path("f")), syscall.EEXIST},
		{"mknod over existing", unix.Mknod(m.path("f"), syscall.S_IFIFO|0o644, 0), syscall.EEXIST},
		{"rmdir non-empty", unix.Rmdir(m.path("d")), syscall.ENOTEMPTY},
		{"rename dir over non-empty dir", unix.Rename(m.path("empty"), m.path("d")), syscall.ENOTEMPTY},
		{"unlink dir", unix.Unlink(m.path("d")), syscall.EISDIR},
		{"open dir for writing", openErr(m.path("d"), os.O_WRONLY), syscall.EISDIR},
		{"rename file over dir", unix.Rename(m.path("f"), m.path("empty")), syscall.EISDIR},
		{"rmdir file", unix.Rmdir(m.path("f")), syscall.ENOTDIR},
		{"lookup through file", unix.Lstat(m.path("f", "x"), new(unix.Stat_t)), syscall.ENOTDIR},
		{"create under file", openErr(m.path("f", "x"), os.O_CREATE|os.O_WRONLY), syscall.ENOTDIR},
		{"rename dir over file", unix.Rename(m.path("empty"), m.path("f")), syscall.ENOTDIR},
		{"rename dir into itself", unix.Rename(m.path("d"), m.path("d", "sub")), syscall.EINVAL},
		{"link a directory", unix.Link(m.path("d"), m.path("dlink")), syscall.EPERM},
		{"create 256-byte name", openErr(m.path(long), os.O_CREATE|os.O_WRONLY), syscall.ENAMETOOLONG},
		{"mkdir 256-byte name", unix.Mkdir(m.path(long), 0o755), syscall.ENAMETOOLONG},
		{"stat 256-byte name", unix.Lstat(m.path(long), new(unix.Stat_t)), syscall.ENAMETOOLONG},
		{"rename to 256-byte name", unix.Rename(m.path("f"), m.path(long)), syscall.ENAMETOOLONG},
		{"symlink target of 4096 bytes", unix.Symlink(strings.Repeat("t", 4096), m.path("l")), syscall.ENAMETOOLONG},
		{"path over PATH_MAX", unix.Lstat(m.Dir+strings.Repeat("/d", 2100), new(unix.Stat_t)), syscall.ENAMETOOLONG},
	}
	for _, tt := range tests {
		wantErrno(t, tt.what, tt.err, tt.want)
	}
}

func openErr(path string, flag int) error {
	f, err := os.OpenFile(path, flag, 0o644)
	if err == nil {
		f.Close()
	}
	return err
}

func TestLongNames(t *testing.T) {
	m := newMount(t)
	name := strings.Repeat("x", 255)
	writeFile(t, m.path(name), []byte("255"), 0o644)
	if got := string(readFile(t, m.path(name))); got != "255" {
		t.Errorf("read %q", got)
	}
	target := strings.Repeat("t", 4095)
	must(t, "symlink", os.Symlink(target, m.path("l")))
	got, err := os.Readlink(m.path("l"))
	must(t, "readlink", err)
	if got != target {
		t.Errorf("readlink: %d bytes, want %d", len(got), len(target))
	}
	if st := lstat(t, m.path("l")); st.Size != 4095 || st.Mode != syscall.S_IFLNK|0o777 {
		t.Errorf("symlink: size %d mode %o, want 4095 %o", st.Size, st.Mode, syscall.S_IFLNK|0o777)
	}
	// A deep path: components up to PATH_MAX in total.
	p := m.Dir
	for len(p) < 3900 {
		p += "/" + strings.Repeat("d", 200)
		must(t, "mkdir deep", os.Mkdir(p, 0o755))
	}
	writeFile(t, p+"/f", []byte("deep"), 0o644)
	if got := string(readFile(t, p+"/f")); got != "deep" {
		t.Errorf("deep read %q", got)
	}
}

func TestRenameFlags(t *testing.T) {
	m := newMount(t)
	writeFile(t, m.path("a"), []byte("A"), 0o644)
	writeFile(t, m.path("b"), []byte("B"), 0o644)
	must(t, "mkdir", os.Mkdir(m.path("d"), 0o755))
	writeFile(t, m.path("d", "in"), []byte("in d"), 0o644)
	at := unix.AT_FDCWD

	wantErrno(t, "NOREPLACE onto existing", unix.Renameat2(at, m.path("a"), at, m.path("b"), unix.RENAME_NOREPLACE), syscall.EEXIST)
	wantErrno(t, "EXCHANGE with missing", unix.Renameat2(at, m.path("a"), at, m.path("nope"), unix.RENAME_EXCHANGE), syscall.ENOENT)
	wantErrno(t, "NOREPLACE|EXCHANGE", unix.Renameat2(at, m.path("a"), at, m.path("b"), unix.RENAME_NOREPLACE|unix.RENAME_EXCHANGE), syscall.EINVAL)
	wantErrno(t, "unknown flag", unix.Renameat2(at, m.path("a"), at, m.path("b"), 1<<6), syscall.EINVAL)
	wantErrno(t, "WHITEOUT (not supported)", unix.Renameat2(at, m.path("a"), at, m.path("w"), unix.RENAME_WHITEOUT), syscall.EINVAL)

	must(t, "NOREPLACE onto free name", unix.Renameat2(at, m.path("a"), at, m.path("c"), unix.RENAME_NOREPLACE))
	if got := string(readFile(t, m.path("c"))); got != "A" {
		t.Errorf("c: %q, want A", got)
	}
	wantErrno(t, "old name gone", unix.Lstat(m.path("a"), new(unix.Stat_t)), syscall.ENOENT)

	inoB, inoC := lstat(t, m.path("b")).Ino, lstat(t, m.path("c")).Ino
	must(t, "EXCHANGE files", unix.Renameat2(at, m.path("b"), at, m.path("c"), unix.RENAME_EXCHANGE))
	if b, c := string(readFile(t, m.path("b"))), string(readFile(t, m.path("c"))); b != "A" || c != "B" {
		t.Errorf("after exchange b=%q c=%q, want A, B", b, c)
	}
	if lstat(t, m.path("b")).Ino != inoC || lstat(t, m.path("c")).Ino != inoB {
		t.Errorf("exchange did not swap the inodes")
	}

	// Exchange a directory and a file across directories: link counts follow the directory.
	must(t, "mkdir e", os.Mkdir(m.path("e"), 0o755))
	must(t, "mkdir e/sub", os.Mkdir(m.path("e", "sub"), 0o755))
	rootLinks := lstat(t, m.Dir).Nlink
	must(t, "EXCHANGE dir and file", unix.Renameat2(at, m.path("e", "sub"), at, m.path("b"), unix.RENAME_EXCHANGE))
	if st := lstat(t, m.path("b")); st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		t.Errorf("b is %o after exchange, want a directory", st.Mode)
	}
	if got := string(readFile(t, m.path("e", "sub"))); got != "A" {
		t.Errorf("e/sub: %q, want A", got)
	}
	if got := lstat(t, m.Dir).Nlink; got != rootLinks+1 {
		t.Errorf("root nlink %d after gaining a subdirectory, want %d", got, rootLinks+1)
	}
	if got := lstat(t, m.path("e")).Nlink; got != 2 {
		t.Errorf("e nlink %d after losing its subdirectory, want 2", got)
	}
	if dots := readDirAll(t, m.path("b")); len(dots) < 2 || dots[1].Name != ".." || dots[1].Ino != meta1(t, m) {
		t.Errorf("b/.. is %+v, want the root", dots)
	}

	// Plain rename replaces, across directories.
	must(t, "rename over", os.Rename(m.path("c"), m.path("d", "in")))
	if got := string(readFile(t, m.path("d", "in"))); got != "B" {
		t.Errorf("d/in: %q, want B", got)
	}
}

// meta1 is the root's inode number as stat shows it.
func meta1(t testing.TB, m *mount) uint64 { return lstat(t, m.Dir).Ino }

func TestHardLinks(t *testing.T) {
	m := newMount(t)
	writeFile(t, m.path("f"), []byte("data"), 0o644)
	must(t, "mkdir", os.Mkdir(m.path("d"), 0o755))
	must(t, "link", os.Link(m.path("f"), m.path("d", "g")))
	must(t, "link 2", os.Link(m.path("f"), m.path("h")))
	a, b := lstat(t, m.path("f")), lstat(t, m.path("d", "g"))
	if a.Ino != b.Ino || a.Nlink != 3 || b.Nlink != 3 {
		t.Errorf("links: ino %d/%d nlink %d/%d, want one inode with 3 links", a.Ino, b.Ino, a.Nlink, b.Nlink)
	}
	must(t, "unlink f", os.Remove(m.path("f")))
	if st := lstat(t, m.path("h")); st.Nlink != 2 {
		t.Errorf("nlink %d after one unlink, want 2", st.Nlink)
	}
	if got := string(readFile(t, m.path("d", "g"))); got != "data" {
		t.Errorf("d/g: %q", got)
	}
	// Rename onto another name of the same inode does nothing and succeeds.
	must(t, "rename to own link", os.Rename(m.path("h"), m.path("d", "g")))
	if st := lstat(t, m.path("h")); st.Nlink != 2 {
		t.Errorf("nlink %d after renaming onto its own link, want 2", st.Nlink)
	}

	// A directory has 2 + one link per subdirectory.
	if st := lstat(t, m.path("d")); st.Nlink != 2 {
		t.Errorf("d nlink %d, want 2", st.Nlink)
	}
	for i := 0; i < 3; i++ {
		must(t, "mkdir sub", os.Mkdir(m.path("d", fmt.Sprint("s", i)), 0o755))
	}
	if st := lstat(t, m.path("d")); st.Nlink != 5 {
		t.Errorf("d nlink %d with 3 subdirectories, want 5", st.Nlink)
	}
	must(t, "rmdir", os.Remove(m.path("d", "s0")))
	must(t, "move subdir out", os.Rename(m.path("d", "s1"), m.path("s1")))
	if st := lstat(t, m.path("d")); st.Nlink != 3 {
		t.Errorf("d nlink %d after rmdir and move, want 3", st.Nlink)
	}
	if st := lstat(t, m.Dir); st.Nlink != 4 { // ., d, s1 and the root's own ".."
		t.Errorf("root nlink %d, want 4", st.Nlink)
	}
}

func TestMknod(t *testing.T) {
	m := newMount(t)
	withUmask(t, 0)
	tests := []struct {
		name string
		mode uint32
		dev  int
	}{
		{"fifo", syscall.S_IFIFO | 0o640, 0},
		{"socket", syscall.S_IFSOCK | 0o600, 0},
		{"null", syscall.S_IFCHR | 0o666, int(unix.Mkdev(1, 3))},
		{"block", syscall.S_IFBLK | 0o660, int(unix.Mkdev(7, 200))},
		{"regular", syscall.S_IFREG | 0o604, 0},
	}
	for _, tt := range tests {
		must(t, "mknod "+tt.name, unix.Mknod(m.path(tt.name), tt.mode, tt.dev))
		st := lstat(t, m.path(tt.name))
		if st.Mode != tt.mode || st.Rdev != uint64(tt.dev) {
			t.Errorf("%s: mode %o rdev %#x, want %o %#x", tt.name, st.Mode, st.Rdev, tt.mode, tt.dev)
		}
	}
	// The device node works: writes to /dev/null's numbers vanish, reads see EOF.
	writeFile(t, m.path("null"), []byte("gone"), 0)
	if b := readFile(t, m.path("null")); len(b) != 0 {
		t.Errorf("read %d bytes from a null device", len(b))
	}
	// The fifo works: a writer and a reader meet in the kernel.
	var writeErr error
	written := make(chan struct{})
	go func() {
		defer close(written)
		writeErr = os.WriteFile(m.path("fifo"), []byte("through the pipe"), 0)
	}()
	t.Cleanup(func() {
		// The writer's open waits for a reader: if the test failed before reading, a
		// non-blocking reader lets it go, so that it does not hold the mount.
		if fd, err := unix.Open(m.path("fifo"), unix.O_RDONLY|unix.O_NONBLOCK, 0); err == nil {
			defer unix.Close(fd)
		}
		select {
		case <-written:
		case <-time.After(10 * time.Second):
			t.Errorf("the fifo's writer is still blocked 10s after the test")
		}
	})
	if got := string(readFile(t, m.path("fifo"))); got != "through the pipe" {
		t.Errorf("fifo read %q", got)
	}
	select {
	case <-written:
		must(t, "fifo write", writeErr)
	case <-time.After(10 * time.Second):
		t.Fatalf("the fifo's writer did not finish 10s after its reader")
	}
}

func TestSymlink(t *testing.T) {
	m := newMount(t)
	writeFile(t, m.path("target"), []byte("via link"), 0o644)
	must(t, "symlink", os.Symlink("target", m.path("rel")))
	must(t, "symlink abs", os.Symlink(m.path("target"), m.path("abs")))
	must(t, "dangling", os.Symlink("nowhere", m.path("dangling")))
	for _, l := range []string{"rel", "abs"} {
		if got := string(readFile(t, m.path(l))); got != "via link" {
			t.Errorf("read through %s: %q", l, got)
		}
	}
	if got, err := os.Readlink(m.path("rel")); err != nil || got != "target" {
		t.Errorf("readlink: %q %v", got, err)
	}
	wantErrno(t, "follow dangling", openErr(m.path("dangling"), os.O_RDONLY), syscall.ENOENT)
	wantErrno(t, "readlink of a file", func() error { _, err := os.Readlink(m.path("target")); return err }(), syscall.EINVAL)
	must(t, "loop a", os.Symlink("b", m.path("a")))
	must(t, "loop b", os.Symlink("a", m.path("b")))
	wantErrno(t, "symlink loop", openErr(m.path("a"), os.O_RDONLY), syscall.ELOOP)
	// lchown works on the link itself.
	must(t, "lchown", os.Lchown(m.path("rel"), 1000, 1000))
	if st := lstat(t, m.path("rel")); st.Uid != 1000 || st.Gid != 1000 {
		t.Errorf("lchown: %d:%d", st.Uid, st.Gid)
	}
	if st := lstat(t, m.path("target")); st.Uid != 0 {
		t.Errorf("lchown changed the target: uid %d", st.Uid)
	}
}

func TestReaddirDots(t *testing.T) {
	m := newMount(t)
	must(t, "mkdir", os.MkdirAll(m.path("a", "b"), 0o755))
	writeFile(t, m.path("a", "f"), nil, 0o644)
	for _, tt := range []struct{ dir, parent string }{{"", ""}, {"a", ""}, {"a/b", "a"}} {
		ents := readDirAll(t, m.path(tt.dir))
		self, parent := lstat(t, m.path(tt.dir)).Ino, lstat(t, m.path(tt.parent)).Ino
		if len(ents) < 2 || ents[0].Name != "." || ents[1].Name != ".." {
			t.Fatalf("%s: listing starts %+v, want . and ..", tt.dir, ents)
		}
		if ents[0].Ino != self || ents[1].Ino != parent || ents[0].Type != unix.DT_DIR || ents[1].Type != unix.DT_DIR {
			t.Errorf("%s: . = %+v, .. = %+v; want inodes %d, %d", tt.dir, ents[0], ents[1], self, parent)
		}
	}
	ents := readDirAll(t, m.path("a"))
	types := map[string]uint8{}
	for _, e := range ents[2:] {
		types[e.Name] = e.Type
		if want := lstat(t, m.path("a", e.Name)).Ino; e.Ino != want {
			t.Errorf("%s: d_ino %d, want %d", e.Name, e.Ino, want)
		}
	}
	if len(types) != 2 || types["b"] != unix.DT_DIR || types["f"] != unix.DT_REG {
		t.Errorf("a lists %v", types)
	}
}

// TestReaddirStableOffsets reads a directory in small getdents batches while other names
// come and go, and seeks back to offsets it was given: every name present throughout must
// be listed exactly once, and a seek must resume exactly where the offset said.
func TestReaddirStableOffsets(t *testing.T) {
	m := newMount(t)
	dir := m.path("d")
	must(t, "mkdir", os.Mkdir(dir, 0o755))
	const keep, churn = 300, 300
	for i := 0; i < keep; i++ {
		writeFile(t, fmt.Sprintf("%s/keep-%03d", dir, i), nil, 0o644)
		if i < churn {
			writeFile(t, fmt.Sprintf("%s/churn-%03d", dir, i), nil, 0o644)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // removes the churn names and creates new ones, as fast as it can
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			os.Remove(fmt.Sprintf("%s/churn-%03d", dir, i%churn))
			os.WriteFile(fmt.Sprintf("%s/new-%05d", dir, i), nil, 0o644)
			if i%2 == 0 {
				os.Remove(fmt.Sprintf("%s/new-%05d", dir, i))
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	for round := 0; round < 3; round++ {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		must(t, "open", err)
		seen := map[string]int{}
		var all []dirent
		for {
			batch := getdents(t, fd, 256) // a few entries per call: many READDIR requests
			if len(batch) == 0 {
				break
			}
			for _, e := range batch {
				seen[e.Name]++
			}
			all = append(all, batch...)
		}
		for name, n := range seen {
			if n > 1 {
				t.Errorf("round %d: %q listed %d times", round, name, n)
			}
		}
		for i := 0; i < keep; i++ {
			if name := fmt.Sprintf("keep-%03d", i); seen[name] != 1 {
				t.Errorf("round %d: %q listed %d times, want once", round, name, seen[name])
			}
		}
		// Seek back to offsets of kept names: the next entry is the kept name after it,
		// or a name created since, never one listed before it.
		for i := len(all) - 2; i >= 0; i -= 37 {
			if !strings.HasPrefix(all[i+1].Name, "keep-") {
				continue
			}
			_, err := unix.Seek(fd, all[i].Off, 0)
			must(t, "seekdir", err)
			next := getdents(t, fd, 256)
			if len(next) == 0 || next[0].Off > all[i+1].Off {
				t.Errorf("round %d: after seeking to %d got %+v, want %+v or a newer name before it", round, all[i].Off, next, all[i+1])
			} else if next[0].Off < all[i+1].Off && strings.HasPrefix(next[0].Name, "keep-") {
				t.Errorf("round %d: after seeking to %d got %q, listed before", round, all[i].Off, next[0].Name)
			}
		}
		unix.Close(fd)
	}
}

func TestReaddirMany(t *testing.T) {
	m := newMount(t)
	const n = 1000
	for i := 0; i < n; i++ {
		writeFile(t, m.path(fmt.Sprintf("file-with-a-longish-name-%04d", i)), nil, 0o644)
	}
	names, err := os.ReadDir(m.Dir)
	must(t, "readdir", err)
	if len(names) != n {
		t.Errorf("%d entries, want %d", len(names), n)
	}
	for _, e := range names {
		if !e.Type().IsRegular() {
			t.Errorf("%s: type %v", e.Name(), e.Type())
		}
	}
	// Emptying a directory while listing it, as rm -r does: read some, remove them, go on.
	d, err := os.Open(m.Dir)
	must(t, "open", err)
	defer d.Close()
	removed := 0
	for {
		batch, err := d.Readdirnames(100)
		if len(batch) == 0 {
			break
		}
		must(t, "readdirnames", err)
		for _, name := range batch {
			must(t, "remove", os.Remove(m.path(name)))
			removed++
		}
	}
	if removed != n {
		t.Errorf("removed %d names while listing, want %d", removed, n)
	}
	left, err := os.ReadDir(m.Dir)
	must(t, "readdir after", err)
	if len(left) != 0 {
		t.Errorf("%d entries left", len(left))
	}
}

// TestReaddirRenamingEachEntry: a listing that renames every entry it reads (xfstests
// generic/736) ends, listing each name it started with once: a renamed name goes to the end
// of the directory, past where the listing stops. So does rewinddir, which then lists the
// new names.
func TestReaddirRenamingEachEntry(t *testing.T) {
	m := newMount(t)
	d := m.path("d")
	must(t, "mkdir", os.Mkdir(d, 0o755))
	const n = 1000
	for i := 0; i < n; i++ {
		writeFile(t, fmt.Sprintf("%s/f%d", d, i), nil, 0o644)
	}
	fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, "open", err)
	defer unix.Close(fd)
	seen := map[string]bool{}
	for renamed := 0; ; {
		ents := getdents(t, fd, 4096)
		if len(ents) == 0 {
			break
		}
		for _, e := range ents {
			if e.Name == "." || e.Name == ".." {
				continue
			}
			if seen[e.Name] || !strings.HasPrefix(e.Name, "f") {
				t.Fatalf("the listing met %q again after %d renames", e.Name, renamed)
			}
			seen[e.Name] = true
			must(t, "rename", unix.Rename(d+"/"+e.Name, fmt.Sprintf("%s/r%d", d, renamed)))
			renamed++
		}
	}
	if len(seen) != n {
		t.Errorf("the listing showed %d of the %d names it started with", len(seen), n)
	}
	_, err = unix.Seek(fd, 0, 0) // rewinddir
	must(t, "rewind", err)
	var again int
	for ents := getdents(t, fd, 32768); len(ents) > 0; ents = getdents(t, fd, 32768) {
		for _, e := range ents {
			if strings.HasPrefix(e.Name, "r") {
				again++
			}
		}
	}
	if again != n {
		t.Errorf("after rewinddir: %d renamed names listed, want %d", again, n)
	}
}
