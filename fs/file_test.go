package fs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/meta"
	"github.com/swapfs/swapfs/swap"
)

// TestMain also serves as a helper process for what must not run in the process that serves
// the mount (see helperMain).
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode, os.Args[len(os.Args)-1]))
	}
	detachDeadTestMounts()
	os.Exit(m.Run())
}

const helperEnv = "SWAPFS_FS_TEST_HELPER"

// helperMain runs in a child process. Touching mmap'ed pages of a FUSE file blocks the
// faulting thread in the kernel until the server answers. In the serving process that
// thread cannot be preempted: a garbage collector's stop-the-world then waits for it while
// the stopped server cannot answer it (seen here as a test hung for minutes), and with
// GOMAXPROCS=1 it may hold the only P the server needs (go-fuse's doc, "Deadlocks").
func helperMain(mode, path string) int {
	switch mode {
	case "mmap-swap-header":
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		mem, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ, unix.MAP_PRIVATE)
		if err != nil {
			fmt.Fprintln(os.Stderr, "private mmap:", err)
			return 1
		}
		if !swap.IsSwapHeader(mem) {
			fmt.Fprintln(os.Stderr, "the private mapping does not show the swap header")
			return 1
		}
		return 0
	case "mmap":
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		mem, err := unix.Mmap(int(f.Fd()), 0, 3*meta.BlockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mmap:", err)
			return 1
		}
		if string(mem[:5]) != "hello" {
			fmt.Fprintf(os.Stderr, "mapped bytes %q, want hello\n", mem[:5])
			return 1
		}
		copy(mem[meta.BlockSize+10:], "written through mmap")
		if err := unix.Msync(mem, unix.MS_SYNC); err != nil {
			fmt.Fprintln(os.Stderr, "msync:", err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// runHelper runs helperMain's mode on path in a child process and fails the test if it
// fails or takes over a minute.
func runHelper(t *testing.T, mode, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], path)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s helper: %v (%v)\n%s", mode, err, ctx.Err(), out)
	}
}

func TestReadWrite(t *testing.T) {
	m := newMount(t)
	data := pattern(5<<20+123, 7) // several 1 MiB requests and a ragged end
	writeFile(t, m.path("f"), data, 0o644)
	sameBytes(t, "read back", readFile(t, m.path("f")), data)
	st := lstat(t, m.path("f"))
	if st.Size != int64(len(data)) || st.Blocks != int64((len(data)+4095)/4096*8) || st.Blksize != 4096 {
		t.Errorf("size %d blocks %d blksize %d", st.Size, st.Blocks, st.Blksize)
	}

	f, err := os.OpenFile(m.path("f"), os.O_RDWR, 0)
	must(t, "open", err)
	defer f.Close()
	// Overwrite across a block boundary, then write past the end, leaving a hole.
	_, err = f.WriteAt([]byte("XYZ"), 4095)
	must(t, "pwrite", err)
	copy(data[4095:], "XYZ")
	end := int64(len(data)) + 10000
	_, err = f.WriteAt([]byte("tail"), end)
	must(t, "pwrite past end", err)
	data = append(data, make([]byte, 10000)...)
	data = append(data, "tail"...)
	var fst unix.Stat_t
	must(t, "fstat", unix.Fstat(int(f.Fd()), &fst))
	if fst.Size != int64(len(data)) {
		t.Errorf("fstat size %d, want %d", fst.Size, len(data))
	}
	got := make([]byte, len(data)+100)
	n, err := f.ReadAt(got, 0)
	if err != io.EOF {
		t.Errorf("read past end: %v, want EOF", err)
	}
	sameBytes(t, "after overwrites", got[:n], data)
}

func TestConcurrentWriters(t *testing.T) {
	m := newMount(t)
	const writers, chunk = 8, 256 << 10
	f, err := os.Create(m.path("f"))
	must(t, "create", err)
	defer f.Close()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.WriteAt(pattern(chunk, byte(w)), int64(w*chunk)); err != nil {
				t.Errorf("writer %d: %v", w, err)
			}
		}()
	}
	wg.Wait()
	got := readFile(t, m.path("f"))
	for w := 0; w < writers; w++ {
		sameBytes(t, fmt.Sprint("chunk ", w), got[w*chunk:(w+1)*chunk], pattern(chunk, byte(w)))
	}
}

func TestOpenFlags(t *testing.T) {
	m := newMount(t)
	writeFile(t, m.path("f"), []byte("old contents"), 0o644)

	f, err := os.OpenFile(m.path("f"), os.O_WRONLY|os.O_TRUNC, 0)
	must(t, "O_TRUNC", err)
	var st unix.Stat_t
	must(t, "fstat", unix.Fstat(int(f.Fd()), &st))
	f.Close()
	if st.Size != 0 || st.Blocks != 0 {
		t.Errorf("after O_TRUNC: size %d blocks %d, want 0 0", st.Size, st.Blocks)
	}

	wantErrno(t, "O_EXCL on existing", openErr(m.path("f"), os.O_CREATE|os.O_EXCL|os.O_RDWR), syscall.EEXIST)
	must(t, "O_EXCL on new", openErr(m.path("g"), os.O_CREATE|os.O_EXCL|os.O_RDWR))
	wantErrno(t, "O_DIRECTORY on a file", openErr(m.path("g"), syscall.O_DIRECTORY), syscall.ENOTDIR)
	wantErrno(t, "O_NOFOLLOW on a symlink", func() error {
		must(t, "symlink", os.Symlink("g", m.path("l")))
		return openErr(m.path("l"), syscall.O_NOFOLLOW)
	}(), syscall.ELOOP)

	// O_APPEND: every write lands at the end, whatever the offset, also after another
	// descriptor extended the file.
	a, err := os.OpenFile(m.path("app"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	must(t, "open O_APPEND", err)
	defer a.Close()
	b, err := os.OpenFile(m.path("app"), os.O_WRONLY, 0)
	must(t, "open plain", err)
	defer b.Close()
	_, err = a.WriteString("one,")
	must(t, "append 1", err)
	_, err = b.WriteAt([]byte("two,two,"), 4)
	must(t, "pwrite", err)
	_, err = a.WriteString("three")
	must(t, "append 2", err)
	if got := string(readFile(t, m.path("app"))); got != "one,two,two,three" {
		t.Errorf("appended file %q", got)
	}
}

func TestDirectIO(t *testing.T) {
	m := newMount(t)
	fd, err := unix.Open(m.path("f"), unix.O_CREAT|unix.O_RDWR|unix.O_DIRECT, 0o644)
	must(t, "open O_DIRECT", err)
	defer unix.Close(fd)
	buf := meta.AlignedBuffer(3 * meta.BlockSize)
	copy(buf, pattern(len(buf), 3))
	n, err := unix.Pwrite(fd, buf, meta.BlockSize)
	if err != nil || n != len(buf) {
		t.Fatalf("aligned pwrite: %d %v", n, err)
	}
	n, err = unix.Pwrite(fd, []byte("unaligned"), 5) // FUSE direct I/O needs no alignment
	if err != nil || n != 9 {
		t.Fatalf("unaligned pwrite: %d %v", n, err)
	}
	// A buffered reader sees what the direct writer wrote.
	want := make([]byte, 4*meta.BlockSize)
	copy(want[5:], "unaligned")
	copy(want[meta.BlockSize:], buf)
	sameBytes(t, "buffered read", readFile(t, m.path("f")), want)
	got := meta.AlignedBuffer(len(want))
	n, err = unix.Pread(fd, got, 0)
	if err != nil || n != len(want) {
		t.Fatalf("direct pread: %d %v", n, err)
	}
	sameBytes(t, "direct read", got, want)
}

// TestUnlinkedOpenFile: an unlinked file stays readable and writable through an open
// descriptor, and its space returns only after the last close.
func TestUnlinkedOpenFile(t *testing.T) {
	m := newMount(t)
	before := statfs(t, m.Dir)
	data := pattern(4<<20, 9)
	writeFile(t, m.path("f"), data, 0o644)
	f, err := os.OpenFile(m.path("f"), os.O_RDWR, 0)
	must(t, "open", err)
	must(t, "unlink", os.Remove(m.path("f")))
	wantErrno(t, "stat after unlink", unix.Lstat(m.path("f"), new(unix.Stat_t)), syscall.ENOENT)

	var st unix.Stat_t
	must(t, "fstat", unix.Fstat(int(f.Fd()), &st))
	if st.Nlink != 0 || st.Size != int64(len(data)) {
		t.Errorf("fstat of unlinked file: nlink %d size %d", st.Nlink, st.Size)
	}
	got := make([]byte, len(data))
	_, err = f.ReadAt(got, 0)
	must(t, "read unlinked", err)
	sameBytes(t, "unlinked contents", got, data)
	_, err = f.WriteAt([]byte("still writable"), 100)
	must(t, "write unlinked", err)
	// A commit is where the space of an orphan would be given back; the kernel sends no
	// FORGET for an open inode, so nothing else could free it.
	must(t, "fsync unlinked", f.Sync())
	_, err = f.ReadAt(got[:14], 100)
	must(t, "read again", err)
	if string(got[:14]) != "still writable" {
		t.Errorf("read back %q", got[:14])
	}
	if held := statfs(t, m.Dir); held.Bfree+uint64(len(data)/meta.BlockSize) > before.Bfree {
		t.Errorf("blocks freed while the file is open: bfree %d, before the file %d", held.Bfree, before.Bfree)
	}

	must(t, "close", f.Close())
	eventually(t, 5*time.Second, "space of the unlinked file is freed after close", func() bool {
		st := statfs(t, m.Dir)
		return st.Bfree == before.Bfree && st.Ffree == before.Ffree
	})
}

// TestReplacedOpenFile: a file replaced by rename stays readable through its descriptor.
func TestReplacedOpenFile(t *testing.T) {
	m := newMount(t)
	before := statfs(t, m.Dir)
	writeFile(t, m.path("old"), pattern(1<<20, 1), 0o644)
	writeFile(t, m.path("new"), []byte("new"), 0o644)
	f, err := os.Open(m.path("old"))
	must(t, "open", err)
	must(t, "rename over", os.Rename(m.path("new"), m.path("old")))
	got, err := io.ReadAll(f)
	must(t, "read replaced", err)
	sameBytes(t, "replaced contents", got, pattern(1<<20, 1))
	f.Close()
	eventually(t, 5*time.Second, "space of the replaced file is freed", func() bool {
		return statfs(t, m.Dir).Ffree == before.Ffree-1
	})
}

func TestFallocate(t *testing.T) {
	m := newMount(t)
	f, err := os.Create(m.path("f"))
	must(t, "create", err)
	defer f.Close()
	fd := int(f.Fd())
	stat := func() unix.Stat_t {
		var st unix.Stat_t
		must(t, "fstat", unix.Fstat(fd, &st))
		return st
	}
	const bs = meta.BlockSize

	must(t, "fallocate 0", unix.Fallocate(fd, 0, 0, 4*bs))
	if st := stat(); st.Size != 4*bs || st.Blocks != 4*8 {
		t.Errorf("mode 0: size %d blocks %d, want %d %d", st.Size, st.Blocks, 4*bs, 4*8)
	}
	must(t, "fallocate KEEP_SIZE", unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, 4*bs, 4*bs))
	if st := stat(); st.Size != 4*bs || st.Blocks != 8*8 {
		t.Errorf("KEEP_SIZE: size %d blocks %d, want %d %d", st.Size, st.Blocks, 4*bs, 8*8)
	}
	data := pattern(4*bs, 5)
	_, err = f.WriteAt(data, 0)
	must(t, "write", err)
	must(t, "punch", unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, bs, 2*bs))
	copy(data[bs:3*bs], make([]byte, 2*bs))
	if st := stat(); st.Size != 4*bs || st.Blocks != 6*8 {
		t.Errorf("punch: size %d blocks %d, want %d %d", st.Size, st.Blocks, 4*bs, 6*8)
	}
	sameBytes(t, "after punch", readFile(t, m.path("f")), data)
	must(t, "zero range", unix.Fallocate(fd, unix.FALLOC_FL_ZERO_RANGE, 3*bs+10, 100))
	copy(data[3*bs+10:], make([]byte, 100))
	sameBytes(t, "after zero range", readFile(t, m.path("f")), data)
	must(t, "zero range past end", unix.Fallocate(fd, unix.FALLOC_FL_ZERO_RANGE, 4*bs, bs))
	if st := stat(); st.Size != 5*bs {
		t.Errorf("zero range past end: size %d, want %d", st.Size, 5*bs)
	}
	wantErrno(t, "collapse range", unix.Fallocate(fd, unix.FALLOC_FL_COLLAPSE_RANGE, 0, bs), syscall.EOPNOTSUPP)
	wantErrno(t, "punch without KEEP_SIZE", unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE, 0, bs), syscall.EOPNOTSUPP)
	wantErrno(t, "too large", unix.Fallocate(fd, 0, 0, 1<<40), syscall.ENOSPC)
}

func TestSeekDataHole(t *testing.T) {
	m := newMount(t)
	f, err := os.Create(m.path("sparse"))
	must(t, "create", err)
	defer f.Close()
	fd := int(f.Fd())
	const bs = meta.BlockSize
	_, err = f.WriteAt(pattern(bs, 1), 0)
	must(t, "write 0", err)
	_, err = f.WriteAt(pattern(bs, 2), 256*bs)
	must(t, "write 256", err)
	must(t, "truncate", f.Truncate(300*bs))
	tests := []struct {
		off    int64
		whence int
		want   int64
		err    syscall.Errno
	}{
		{0, unix.SEEK_DATA, 0, 0},
		{0, unix.SEEK_HOLE, bs, 0},
		{bs, unix.SEEK_DATA, 256 * bs, 0},
		{100, unix.SEEK_HOLE, bs, 0},
		{256*bs + 5, unix.SEEK_DATA, 256*bs + 5, 0},
		{256 * bs, unix.SEEK_HOLE, 257 * bs, 0},
		{257 * bs, unix.SEEK_DATA, 0, syscall.ENXIO},
		{299 * bs, unix.SEEK_HOLE, 299 * bs, 0},
		{300 * bs, unix.SEEK_DATA, 0, syscall.ENXIO},
		{300 * bs, unix.SEEK_HOLE, 0, syscall.ENXIO},
		{5, unix.SEEK_SET, 5, 0},
		{-1, unix.SEEK_END, 300*bs - 1, 0},
	}
	for _, tt := range tests {
		got, err := unix.Seek(fd, tt.off, tt.whence)
		what := fmt.Sprintf("lseek(%d, %d)", tt.off, tt.whence)
		if tt.err != 0 {
			wantErrno(t, what, err, tt.err)
		} else if err != nil || got != tt.want {
			t.Errorf("%s = %d, %v; want %d", what, got, err, tt.want)
		}
	}
}

func TestCopyFileRange(t *testing.T) {
	m := newMount(t)
	data := pattern(3<<20+5, 4)
	writeFile(t, m.path("src"), data, 0o644)
	src, err := os.Open(m.path("src"))
	must(t, "open src", err)
	defer src.Close()
	dst, err := os.Create(m.path("dst"))
	must(t, "create dst", err)
	defer dst.Close()

	// The whole file, asking for more than there is: the copy stops at end of file.
	var total int
	offIn, offOut := int64(0), int64(0)
	for {
		n, err := unix.CopyFileRange(int(src.Fd()), &offIn, int(dst.Fd()), &offOut, 8<<20, 0)
		must(t, "copy_file_range", err)
		if n == 0 {
			break
		}
		total += n
	}
	if total != len(data) {
		t.Errorf("copied %d bytes, want %d", total, len(data))
	}
	sameBytes(t, "copy", readFile(t, m.path("dst")), data)

	// A piece into the middle of the destination.
	offIn, offOut = 1000, 5000
	n, err := unix.CopyFileRange(int(src.Fd()), &offIn, int(dst.Fd()), &offOut, 70000, 0)
	if err != nil || n != 70000 {
		t.Fatalf("copy piece: %d %v", n, err)
	}
	copy(data[5000:], pattern(3<<20+5, 4)[1000:71000])
	sameBytes(t, "piece", readFile(t, m.path("dst")), data)

	// Past the end of the source: nothing to copy.
	offIn, offOut = int64(len(data))+10, 0
	if n, err := unix.CopyFileRange(int(src.Fd()), &offIn, int(dst.Fd()), &offOut, 10, 0); n != 0 || err != nil {
		t.Errorf("copy past the end: %d %v", n, err)
	}
}

func TestFsync(t *testing.T) {
	m := newMount(t)
	f, err := os.Create(m.path("f"))
	must(t, "create", err)
	defer f.Close()
	_, err = f.WriteString("durable")
	must(t, "write", err)
	must(t, "fsync", unix.Fsync(int(f.Fd())))
	must(t, "fdatasync", unix.Fdatasync(int(f.Fd())))
	must(t, "syncfs", unix.Syncfs(int(f.Fd())))
	d, err := os.Open(m.Dir)
	must(t, "open dir", err)
	defer d.Close()
	must(t, "fsync dir", unix.Fsync(int(d.Fd())))
	must(t, "sync_file_range", unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE))
}

func TestLocks(t *testing.T) {
	m := newMount(t)
	writeFile(t, m.path("f"), []byte("lock me"), 0o644)
	a, err := os.OpenFile(m.path("f"), os.O_RDWR, 0)
	must(t, "open a", err)
	defer a.Close()
	b, err := os.OpenFile(m.path("f"), os.O_RDWR, 0)
	must(t, "open b", err)
	defer b.Close()

	must(t, "flock a", unix.Flock(int(a.Fd()), unix.LOCK_EX|unix.LOCK_NB))
	wantErrno(t, "flock b", unix.Flock(int(b.Fd()), unix.LOCK_EX|unix.LOCK_NB), syscall.EWOULDBLOCK)
	must(t, "unlock a", unix.Flock(int(a.Fd()), unix.LOCK_UN))
	must(t, "flock b after unlock", unix.Flock(int(b.Fd()), unix.LOCK_EX|unix.LOCK_NB))
	must(t, "unlock b", unix.Flock(int(b.Fd()), unix.LOCK_UN))

	wr := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	must(t, "OFD lock a", unix.FcntlFlock(a.Fd(), unix.F_OFD_SETLK, &wr))
	rd := unix.Flock_t{Type: unix.F_RDLCK}
	wantErrno(t, "OFD lock b", unix.FcntlFlock(b.Fd(), unix.F_OFD_SETLK, &rd), syscall.EAGAIN)
	q := unix.Flock_t{Type: unix.F_RDLCK}
	must(t, "OFD getlk", unix.FcntlFlock(b.Fd(), unix.F_OFD_GETLK, &q))
	if q.Type != unix.F_WRLCK {
		t.Errorf("F_OFD_GETLK: type %d, want F_WRLCK", q.Type)
	}
}

func TestMmap(t *testing.T) {
	m := newMount(t)
	writeFile(t, m.path("f"), append([]byte("hello"), make([]byte, 3*meta.BlockSize-5)...), 0o644)
	runHelper(t, "mmap", m.path("f"))
	got := readFile(t, m.path("f"))
	if want := "written through mmap"; !bytes.Equal(got[meta.BlockSize+10:][:len(want)], []byte(want)) {
		t.Errorf("after msync: %q", got[meta.BlockSize+10:][:len(want)])
	}
}

// TestExec runs a program stored on the mount (through sh, so that the exec happens in a
// process that does not serve the mount).
func TestExec(t *testing.T) {
	m := newMount(t)
	prog, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skipf("skipped: no /bin/true to copy: %v", err)
	}
	writeFile(t, m.path("true"), prog, 0o755)
	must(t, "chmod", os.Chmod(m.path("true"), 0o755))
	script := "#!/bin/sh\necho from script\n"
	writeFile(t, m.path("script"), []byte(script), 0o755)
	must(t, "chmod", os.Chmod(m.path("script"), 0o755))
	if out, err := command(t, "/bin/sh", "-c", m.path("true")).CombinedOutput(); err != nil {
		t.Errorf("exec binary: %v %s", err, out)
	}
	out, err := command(t, "/bin/sh", "-c", m.path("script")).CombinedOutput()
	if err != nil || string(out) != "from script\n" {
		t.Errorf("exec script: %v %q", err, out)
	}
	// Writing to a running executable is ETXTBSY, as on ext4.
	sleep, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Skipf("skipped the ETXTBSY check: no /bin/sleep to copy: %v", err)
	}
	writeFile(t, m.path("sleep"), sleep, 0o755)
	must(t, "chmod", os.Chmod(m.path("sleep"), 0o755))
	cmd := exec.Command("/bin/sh", "-c", "exec "+m.path("sleep")+" 30")
	must(t, "start", cmd.Start())
	defer cmd.Wait()
	defer cmd.Process.Kill()
	eventually(t, 10*time.Second, "the program runs from the mount", func() bool {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid))
		return exe == m.path("sleep")
	})
	wantErrno(t, "open a running program for writing", openErr(m.path("sleep"), os.O_WRONLY), syscall.ETXTBSY)
}
