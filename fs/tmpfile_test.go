package fs_test

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/meta"
)

// linkFd names the file open on fd at path, as linkat(2) with AT_SYMLINK_FOLLOW through
// /proc/self/fd does (the way to link an O_TMPFILE file without CAP_DAC_READ_SEARCH).
func linkFd(fd int, path string) error {
	return unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
}

// TestTmpfileLink: an O_TMPFILE file is in no directory until linkat names it, and then is
// an ordinary file with what was written to it, in the directory's setgid group.
func TestTmpfileLink(t *testing.T) {
	m := newMount(t)
	withUmask(t, 0o022)
	dir := m.path("d")
	must(t, "mkdir", os.Mkdir(dir, 0o755))
	must(t, "chown", os.Chown(dir, 0, 4321))
	must(t, "chmod", unix.Chmod(dir, 0o2775))
	before := statfs(t, m.Dir)

	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR, 0o666)
	must(t, "open O_TMPFILE", err)
	defer unix.Close(fd)
	data := pattern(1<<20+123, 4)
	if n, err := unix.Pwrite(fd, data, 0); err != nil || n != len(data) {
		t.Fatalf("pwrite: %d %v", n, err)
	}
	var st unix.Stat_t
	must(t, "fstat", unix.Fstat(fd, &st))
	if st.Nlink != 0 || st.Size != int64(len(data)) || st.Mode != syscall.S_IFREG|0o644 || st.Gid != 4321 {
		t.Errorf("fstat of the tmpfile: nlink %d size %d mode %o gid %d, want 0 %d %o 4321",
			st.Nlink, st.Size, st.Mode, st.Gid, len(data), syscall.S_IFREG|0o644)
	}
	if ents := readDirAll(t, dir); len(ents) != 2 {
		t.Errorf("directory lists %v before the link, want only . and ..", ents)
	}
	if held := statfs(t, m.Dir); held.Ffree != before.Ffree-1 || held.Bfree >= before.Bfree {
		t.Errorf("tmpfile takes no space: ffree %d -> %d, bfree %d -> %d", before.Ffree, held.Ffree, before.Bfree, held.Bfree)
	}

	named := m.path("d", "named")
	must(t, "linkat", linkFd(fd, named))
	got := lstat(t, named)
	if got.Ino != st.Ino || got.Nlink != 1 || got.Size != int64(len(data)) {
		t.Errorf("linked file: ino %d nlink %d size %d, want ino %d nlink 1 size %d", got.Ino, got.Nlink, got.Size, st.Ino, len(data))
	}
	sameBytes(t, "linked file", readFile(t, named), data)
	wantErrno(t, "link again through the descriptor", linkFd(fd, named), syscall.EEXIST)
	must(t, "second name", linkFd(fd, m.path("d", "second")))
	if got := lstat(t, named); got.Nlink != 2 {
		t.Errorf("nlink %d after a second link, want 2", got.Nlink)
	}

	// Writes through the descriptor show through the name, which outlives the descriptor.
	if _, err := unix.Pwrite(fd, []byte("tail"), int64(len(data))); err != nil {
		t.Fatalf("pwrite after link: %v", err)
	}
	must(t, "close", unix.Close(fd))
	// The kernel's FORGET of the linked inode must not free it, as it would an unlinked one.
	m.Server.Evict(t, "d/named", "d/second")
	must(t, "drop a name", os.Remove(m.path("d", "second")))
	sameBytes(t, "after close", readFile(t, named), append(data, "tail"...))
	if in, err := m.Store.Lookup(lstat(t, dir).Ino, "named"); err != nil || in.Nlink != 1 {
		t.Errorf("store: %+v %v", in, err)
	}
}

// TestTmpfileFreedOnClose: an O_TMPFILE file that is never linked gives its space and inode
// back after the last close; with O_EXCL it cannot be linked at all (the kernel's ENOENT).
func TestTmpfileFreedOnClose(t *testing.T) {
	m := newMount(t)
	for _, excl := range []bool{false, true} {
		t.Run(fmt.Sprintf("excl=%v", excl), func(t *testing.T) {
			before := statfs(t, m.Dir)
			flags := unix.O_TMPFILE | unix.O_RDWR
			if excl {
				flags |= unix.O_EXCL
			}
			fd, err := unix.Open(m.Dir, flags, 0o600)
			must(t, "open O_TMPFILE", err)
			data := pattern(4<<20, 7)
			if n, err := unix.Pwrite(fd, data, 0); err != nil || n != len(data) {
				unix.Close(fd)
				t.Fatalf("pwrite: %d %v", n, err)
			}
			held := statfs(t, m.Dir)
			if held.Bfree+uint64(len(data)/meta.BlockSize) > before.Bfree || held.Ffree != before.Ffree-1 {
				t.Errorf("while open: bfree %d ffree %d, before %d %d", held.Bfree, held.Ffree, before.Bfree, before.Ffree)
			}
			if excl {
				wantErrno(t, "linkat of an O_EXCL tmpfile", linkFd(fd, m.path("x")), syscall.ENOENT)
				wantErrno(t, "stat of the refused name", unix.Lstat(m.path("x"), new(unix.Stat_t)), syscall.ENOENT)
			}
			must(t, "close", unix.Close(fd))
			eventually(t, 5*time.Second, "space of the closed tmpfile is freed", func() bool {
				st := statfs(t, m.Dir)
				return st.Bfree == before.Bfree && st.Ffree == before.Ffree
			})
			if ents := readDirAll(t, m.Dir); len(ents) != 2 {
				t.Errorf("root lists %v, want only . and ..", ents)
			}
		})
	}
}

// TestTmpfilePermissions: O_TMPFILE needs write permission on the directory, as creating a
// name there does (the kernel checks).
func TestTmpfilePermissions(t *testing.T) {
	m := newMount(t)
	err := asUser(t, 1000, 1000, func() error {
		fd, err := unix.Open(m.Dir, unix.O_TMPFILE|unix.O_RDWR, 0o600)
		if err == nil {
			unix.Close(fd)
		}
		return err
	})
	wantErrno(t, "O_TMPFILE in a directory the user cannot write", err, syscall.EACCES)
	must(t, "chmod", os.Chmod(m.Dir, 0o777))
	err = asUser(t, 1000, 1000, func() error {
		fd, err := unix.Open(m.Dir, unix.O_TMPFILE|unix.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		if st.Uid != 1000 || st.Gid != 1000 {
			return fmt.Errorf("tmpfile owned by %d:%d, want 1000:1000", st.Uid, st.Gid)
		}
		return linkFd(fd, m.path("mine"))
	})
	must(t, "O_TMPFILE as a user", err)
	if st := lstat(t, m.path("mine")); st.Uid != 1000 {
		t.Errorf("linked tmpfile owned by %d, want 1000", st.Uid)
	}
}
