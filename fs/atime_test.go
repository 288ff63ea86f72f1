package fs_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/fs"
)

// times is a file's atime, mtime and ctime as stat(2) shows them.
type times struct{ a, m, c time.Time }

func (x times) String() string {
	const f = "15:04:05.000000000"
	return fmt.Sprintf("{atime %s mtime %s ctime %s}", x.a.Format(f), x.m.Format(f), x.c.Format(f))
}

func timesOf(t testing.TB, path string) times {
	t.Helper()
	st := lstat(t, path)
	return times{time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix()), time.Unix(st.Ctim.Unix())}
}

// directRead reads path with O_DIRECT (plus extra flags), so the read reaches swapfs
// whatever the page cache holds.
func directRead(t testing.TB, path string, extra int) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECT|extra, 0)
	must(t, "open "+path, err)
	defer unix.Close(fd)
	if _, err := unix.Pread(fd, make([]byte, 64), 0); err != nil {
		t.Fatalf("pread %s: %v", path, err)
	}
}

// TestRelatime: by default a read updates atime when the file changed since it was last
// read (ext4's relatime), and leaves ctime alone; later reads change nothing.
func TestRelatime(t *testing.T) {
	m := newMount(t)
	f := m.path("f")
	writeFile(t, f, []byte("some data"), 0o644)
	t0 := timesOf(t, f)

	// A buffered read right after the write: the write dropped the cached pages.
	if got := string(readFile(t, f)); got != "some data" {
		t.Fatalf("read %q", got)
	}
	t1 := timesOf(t, f)
	if !t1.a.After(t0.a) || !t1.a.After(t1.m) || !t1.m.Equal(t0.m) || !t1.c.Equal(t0.c) {
		t.Fatalf("read after write: %v -> %v; want atime past mtime, mtime and ctime unchanged", t0, t1)
	}
	directRead(t, f, 0)
	readFile(t, f)
	if t2 := timesOf(t, f); t2 != t1 {
		t.Errorf("reads after the first: %v -> %v, want no change", t1, t2)
	}

	// A change of ctime alone (chmod) makes the next read update atime again.
	must(t, "chmod", os.Chmod(f, 0o600))
	t3 := timesOf(t, f)
	directRead(t, f, 0)
	if t4 := timesOf(t, f); !t4.a.After(t3.c) || !t4.c.Equal(t3.c) {
		t.Errorf("read after chmod: %v -> %v, want atime past ctime", t3, t4)
	}

	// So does a write through another descriptor, and an unlink of another name.
	wf, err := os.OpenFile(f, os.O_WRONLY, 0)
	must(t, "open for write", err)
	_, err = wf.WriteAt([]byte("more"), 9)
	must(t, "write", err)
	must(t, "close", wf.Close())
	directRead(t, f, 0)
	t5 := timesOf(t, f)
	if !t5.a.After(t5.m) {
		t.Errorf("read after a write: %v, want atime past mtime", t5)
	}
	must(t, "link", os.Link(f, m.path("g")))
	directRead(t, f, 0)
	must(t, "unlink", os.Remove(m.path("g")))
	t6 := timesOf(t, f)
	directRead(t, f, 0)
	if t7 := timesOf(t, f); !t7.a.After(t6.c) {
		t.Errorf("read after unlink of another name: %v -> %v, want atime past ctime", t6, t7)
	}

	// Being renamed changes ctime too.
	must(t, "rename", os.Rename(f, m.path("f2")))
	f = m.path("f2")
	t8 := timesOf(t, f)
	directRead(t, f, 0)
	if t9 := timesOf(t, f); !t9.a.After(t8.c) {
		t.Errorf("read after rename: %v -> %v, want atime past ctime", t8, t9)
	}

	// O_NOATIME reads never update.
	must(t, "chmod", os.Chmod(f, 0o644))
	t10 := timesOf(t, f)
	directRead(t, f, unix.O_NOATIME)
	if t11 := timesOf(t, f); t11 != t10 {
		t.Errorf("O_NOATIME read: %v -> %v, want no change", t10, t11)
	}

	// Directories (listing) and symlinks (reading the link) follow the same rule.
	d := m.path("d")
	must(t, "mkdir", os.Mkdir(d, 0o755))
	writeFile(t, m.path("d", "x"), nil, 0o644)
	d0 := timesOf(t, d)
	readDirAll(t, d)
	d1 := timesOf(t, d)
	readDirAll(t, d)
	if d2 := timesOf(t, d); !d1.a.After(d0.m) || d2 != d1 {
		t.Errorf("directory listed twice: %v -> %v -> %v, want atime past mtime once", d0, d1, d2)
	}
	must(t, "symlink", os.Symlink("target", m.path("l")))
	l0 := timesOf(t, m.path("l"))
	_, err = os.Readlink(m.path("l"))
	must(t, "readlink", err)
	l1 := timesOf(t, m.path("l"))
	_, err = os.Readlink(m.path("l"))
	must(t, "readlink", err)
	if l2 := timesOf(t, m.path("l")); !l1.a.After(l0.m) || l2 != l1 {
		t.Errorf("symlink read twice: %v -> %v -> %v, want atime past mtime once", l0, l1, l2)
	}
}

// TestNoatime: with noatime, reads never change atime, whatever changed before them;
// nodiratime spares directories only.
func TestNoatime(t *testing.T) {
	for _, tt := range []struct {
		opt                string
		fileMoves, dirMove bool
	}{
		{"noatime", false, false},
		{"nodiratime", true, false},
		{"strictatime", true, true},
	} {
		t.Run(tt.opt, func(t *testing.T) {
			m := newMount(t, func(o *fs.Options) { o.KernelOptions = []string{tt.opt} })
			f := m.path("f")
			writeFile(t, f, []byte("data"), 0o644)
			writeFile(t, m.path("other"), nil, 0o644) // the root changed since its creation
			f0, r0 := timesOf(t, f), timesOf(t, m.Dir)
			readFile(t, f)
			directRead(t, f, 0)
			readDirAll(t, m.Dir)
			f1, r1 := timesOf(t, f), timesOf(t, m.Dir)
			if moved := f1.a != f0.a; moved != tt.fileMoves || f1.m != f0.m || f1.c != f0.c {
				t.Errorf("file: %v -> %v, want atime moved %v, nothing else", f0, f1, tt.fileMoves)
			}
			if moved := r1.a != r0.a; moved != tt.dirMove || r1.m != r0.m || r1.c != r0.c {
				t.Errorf("directory: %v -> %v, want atime moved %v, nothing else", r0, r1, tt.dirMove)
			}
			if tt.opt == "strictatime" {
				directRead(t, f, 0) // read already since the last change: moves only under strictatime
				if f2 := timesOf(t, f); !f2.a.After(f1.a) {
					t.Errorf("strictatime: second read left atime at %v", f2.a)
				}
			}
		})
	}
}

// TestReadOnlyAtime: a read-only mount changes nothing when it reads.
func TestReadOnlyAtime(t *testing.T) {
	m := newMount(t)
	f := m.path("f")
	writeFile(t, f, []byte("data"), 0o644)
	f0 := timesOf(t, f)
	m.unmount(t)
	m.mount(t, func(o *fs.Options) { o.ReadOnly = true })
	readFile(t, f)
	directRead(t, f, 0)
	readDirAll(t, m.Dir)
	if f1 := timesOf(t, f); f1 != f0 {
		t.Errorf("read on a read-only mount: %v -> %v", f0, f1)
	}
}
