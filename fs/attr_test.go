package fs_test

import (
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestChmodChown(t *testing.T) {
	m := newMount(t)
	writeFile(t, m.path("f"), []byte("x"), 0o644)
	for _, mode := range []uint32{0, 0o7777, 0o4755, 0o1777, 0o600} {
		must(t, "chmod", unix.Chmod(m.path("f"), mode))
		if st := lstat(t, m.path("f")); st.Mode != syscall.S_IFREG|mode {
			t.Errorf("chmod %o: mode %o", mode, st.Mode)
		}
	}
	must(t, "chown", os.Chown(m.path("f"), 1000, 2000))
	if st := lstat(t, m.path("f")); st.Uid != 1000 || st.Gid != 2000 {
		t.Errorf("chown: %d:%d", st.Uid, st.Gid)
	}
	must(t, "chown uid only", os.Chown(m.path("f"), 1001, -1))
	if st := lstat(t, m.path("f")); st.Uid != 1001 || st.Gid != 2000 {
		t.Errorf("chown uid only: %d:%d", st.Uid, st.Gid)
	}
	must(t, "mkdir", os.Mkdir(m.path("d"), 0o700))
	must(t, "chmod dir", os.Chmod(m.path("d"), 0o2755|os.ModeSetgid))
	if st := lstat(t, m.path("d")); st.Mode != syscall.S_IFDIR|0o2755 {
		t.Errorf("chmod dir: %o", st.Mode)
	}
	// chmod through a descriptor, and of a file with mode 000 (root may still open it).
	must(t, "chmod 000", unix.Chmod(m.path("f"), 0))
	f, err := os.OpenFile(m.path("f"), os.O_RDWR, 0)
	must(t, "root opens a mode-000 file", err)
	must(t, "fchmod", f.Chmod(0o640))
	f.Close()
	if st := lstat(t, m.path("f")); st.Mode != syscall.S_IFREG|0o640 {
		t.Errorf("fchmod: %o", st.Mode)
	}
}

func TestTruncate(t *testing.T) {
	m := newMount(t)
	data := pattern(3*4096+100, 2)
	writeFile(t, m.path("f"), data, 0o644)
	must(t, "truncate down", os.Truncate(m.path("f"), 5000))
	if st := lstat(t, m.path("f")); st.Size != 5000 || st.Blocks != 2*8 {
		t.Errorf("truncate down: size %d blocks %d, want 5000 16", st.Size, st.Blocks)
	}
	sameBytes(t, "after truncate down", readFile(t, m.path("f")), data[:5000])

	must(t, "truncate up", os.Truncate(m.path("f"), 1<<20))
	st := lstat(t, m.path("f"))
	if st.Size != 1<<20 || st.Blocks != 2*8 {
		t.Errorf("truncate up: size %d blocks %d, want %d 16 (sparse)", st.Size, st.Blocks, 1<<20)
	}
	want := append(append([]byte(nil), data[:5000]...), make([]byte, 1<<20-5000)...)
	sameBytes(t, "after truncate up", readFile(t, m.path("f")), want)

	// Bytes cut off and then exposed again read as zeros, not as the old data.
	f, err := os.OpenFile(m.path("f"), os.O_RDWR, 0)
	must(t, "open", err)
	defer f.Close()
	must(t, "ftruncate 10", f.Truncate(10))
	must(t, "ftruncate 5000", f.Truncate(5000))
	got := make([]byte, 5000)
	_, err = f.ReadAt(got, 0)
	must(t, "read", err)
	want = append(append([]byte(nil), data[:10]...), make([]byte, 4990)...)
	sameBytes(t, "regrown", got, want)

	must(t, "mkdir", os.Mkdir(m.path("d"), 0o755))
	wantErrno(t, "truncate a directory", os.Truncate(m.path("d"), 0), syscall.EISDIR)
	wantErrno(t, "truncate negative", os.Truncate(m.path("f"), -1), syscall.EINVAL)
	wantErrno(t, "truncate past the largest file", os.Truncate(m.path("f"), 1<<62), syscall.EFBIG)
	_, err = f.WriteAt([]byte("x"), 1<<62)
	wantErrno(t, "write past the largest file", err, syscall.EFBIG)
}

func TestUtimens(t *testing.T) {
	m := newMount(t)
	writeFile(t, m.path("f"), []byte("x"), 0o644)
	atime := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	mtime := time.Date(1999, 12, 31, 23, 59, 59, 123456789, time.UTC)
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	must(t, "utimensat", unix.UtimesNanoAt(unix.AT_FDCWD, m.path("f"), ts, 0))
	st := lstat(t, m.path("f"))
	if got := time.Unix(st.Atim.Unix()); !got.Equal(atime) {
		t.Errorf("atime %v, want %v", got, atime)
	}
	if got := time.Unix(st.Mtim.Unix()); !got.Equal(mtime) {
		t.Errorf("mtime %v, want %v", got, mtime)
	}
	ctime := time.Unix(st.Ctim.Unix())

	// UTIME_OMIT leaves a time alone; UTIME_NOW sets it to now; ctime moves either way.
	time.Sleep(10 * time.Millisecond)
	start := time.Now().Add(-time.Second)
	omitNow := []unix.Timespec{{Sec: 0, Nsec: unix.UTIME_OMIT}, {Sec: 0, Nsec: unix.UTIME_NOW}}
	must(t, "utimensat OMIT/NOW", unix.UtimesNanoAt(unix.AT_FDCWD, m.path("f"), omitNow, 0))
	st = lstat(t, m.path("f"))
	if got := time.Unix(st.Atim.Unix()); !got.Equal(atime) {
		t.Errorf("UTIME_OMIT changed atime to %v", got)
	}
	if got := time.Unix(st.Mtim.Unix()); got.Before(start) {
		t.Errorf("UTIME_NOW: mtime %v, want about now", got)
	}
	if got := time.Unix(st.Ctim.Unix()); !got.After(ctime) {
		t.Errorf("ctime %v did not move past %v", got, ctime)
	}

	// Times before 1970 survive.
	old := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	oldTs := []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.UnixNano())}
	must(t, "utimensat 1960", unix.UtimesNanoAt(unix.AT_FDCWD, m.path("f"), oldTs, 0))
	if st := lstat(t, m.path("f")); st.Mtim.Sec != old.Unix() {
		t.Errorf("mtime %d, want %d", st.Mtim.Sec, old.Unix())
	}

	// Times past what an inode holds (years 1677 to 2262) are clamped to its ends, as ext4
	// clamps to its own range, never wrapped around to the other end.
	for _, c := range []struct {
		set       time.Time
		wantYear  int
		direction string
	}{
		{time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), 2262, "future"},
		{time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), 1677, "past"},
	} {
		ts := []unix.Timespec{{Sec: c.set.Unix()}, {Sec: c.set.Unix()}}
		must(t, "utimensat far "+c.direction, unix.UtimesNanoAt(unix.AT_FDCWD, m.path("f"), ts, 0))
		for _, fresh := range []bool{false, true} {
			if fresh {
				m.unmount(t)
				m.mount(t)
			}
			st := lstat(t, m.path("f"))
			if y := time.Unix(st.Mtim.Unix()).UTC().Year(); y != c.wantYear {
				t.Errorf("mtime set in %d shows year %d (remounted: %v), want %d", c.set.Year(), y, fresh, c.wantYear)
			}
		}
	}

	// A write moves mtime and ctime; so does creating a name in a directory.
	must(t, "mkdir", os.Mkdir(m.path("d"), 0o755))
	dirBefore := lstat(t, m.path("d"))
	time.Sleep(10 * time.Millisecond)
	writeFile(t, m.path("d", "g"), []byte("x"), 0o644)
	if st := lstat(t, m.path("d")); st.Mtim == dirBefore.Mtim || st.Ctim == dirBefore.Ctim {
		t.Errorf("creating a name did not change the directory's mtime/ctime")
	}
	before := lstat(t, m.path("d", "g"))
	time.Sleep(10 * time.Millisecond)
	f, err := os.OpenFile(m.path("d", "g"), os.O_WRONLY, 0)
	must(t, "open", err)
	_, err = f.WriteAt([]byte("y"), 0)
	must(t, "write", err)
	f.Close()
	if st := lstat(t, m.path("d", "g")); st.Mtim == before.Mtim || st.Ctim == before.Ctim {
		t.Errorf("a write did not change mtime/ctime")
	}
}

func TestUmask(t *testing.T) {
	m := newMount(t)
	withUmask(t, 0o027)
	writeFile(t, m.path("f"), nil, 0o666)
	must(t, "mkdir", os.Mkdir(m.path("d"), 0o777))
	must(t, "mknod", unix.Mknod(m.path("p"), syscall.S_IFIFO|0o666, 0))
	for name, want := range map[string]uint32{
		"f": syscall.S_IFREG | 0o640, "d": syscall.S_IFDIR | 0o750, "p": syscall.S_IFIFO | 0o640,
	} {
		if st := lstat(t, m.path(name)); st.Mode != want {
			t.Errorf("%s: mode %o, want %o (umask 027)", name, st.Mode, want)
		}
	}
}

// TestStatxBirthTime checks the attributes only statx(2) carries: the birth time, which
// stays put while the file changes, and device numbers split into major and minor.
func TestStatxBirthTime(t *testing.T) {
	m := newMount(t)
	before := time.Now().Add(-time.Second)
	p := m.path("f")
	writeFile(t, p, []byte("x"), 0o644)
	var first unix.Statx_t
	must(t, "statx", unix.Statx(unix.AT_FDCWD, p, 0, unix.STATX_BTIME|unix.STATX_BASIC_STATS, &first))
	if first.Mask&unix.STATX_BTIME == 0 {
		t.Fatalf("statx mask %#x has no STATX_BTIME", first.Mask)
	}
	btime := time.Unix(first.Btime.Sec, int64(first.Btime.Nsec))
	if btime.Before(before) || btime.After(time.Now().Add(time.Second)) {
		t.Errorf("btime %v is not the creation time (about %v)", btime, before)
	}
	time.Sleep(20 * time.Millisecond)
	writeFile(t, p, []byte("changed"), 0o644)
	var second unix.Statx_t
	must(t, "statx", unix.Statx(unix.AT_FDCWD, p, unix.AT_STATX_FORCE_SYNC, unix.STATX_BTIME|unix.STATX_BASIC_STATS, &second))
	if second.Btime != first.Btime {
		t.Errorf("btime moved on a write: %v -> %v", first.Btime, second.Btime)
	}
	if second.Mtime == first.Mtime || second.Size != 7 {
		t.Errorf("statx after a write: mtime %v size %d", second.Mtime, second.Size)
	}
	dev := m.path("null")
	must(t, "mknod", unix.Mknod(dev, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	var d unix.Statx_t
	must(t, "statx", unix.Statx(unix.AT_FDCWD, dev, 0, unix.STATX_BASIC_STATS, &d))
	if d.Rdev_major != 1 || d.Rdev_minor != 3 {
		t.Errorf("statx rdev %d:%d, want 1:3", d.Rdev_major, d.Rdev_minor)
	}
}
