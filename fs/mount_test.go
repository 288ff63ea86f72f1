package fs_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/fs"
	"github.com/swapfs/swapfs/meta"
)

func TestMountInProcMounts(t *testing.T) {
	m := newMount(t)
	pm := procMount(t, m.Dir)
	if pm.Source != m.StoreDir {
		t.Errorf("source %q, want the store path %q", pm.Source, m.StoreDir)
	}
	if pm.FSType != "fuse.swapfs" {
		t.Errorf("type %q, want fuse.swapfs", pm.FSType)
	}
	opts := pm.AllOptions()
	for _, want := range []string{"rw", "default_permissions", "allow_other", "user_id=0", "max_read=1048576"} {
		if !slices.Contains(opts, want) {
			t.Errorf("options %q lack %q", strings.Join(opts, ","), want)
		}
	}
	for _, unwanted := range []string{"nosuid", "nodev", "noexec"} {
		if slices.Contains(opts, unwanted) {
			t.Errorf("options %q contain %q; by default swapfs mounts like ext4", strings.Join(opts, ","), unwanted)
		}
	}
	st := lstat(t, m.Dir)
	if st.Ino != meta.RootIno || st.Mode != syscall.S_IFDIR|0o755 || st.Nlink != 2 {
		t.Errorf("root: ino %d mode %o nlink %d, want ino %d mode %o nlink 2", st.Ino, st.Mode, st.Nlink,
			meta.RootIno, syscall.S_IFDIR|0o755)
	}
}

func TestMountKernelOptions(t *testing.T) {
	tests := []struct {
		opts    []string
		want    []string // in the options, the mount's and the filesystem's
		notWant []string
	}{
		{[]string{"nosuid", "nodev", "noexec"}, []string{"nosuid", "nodev", "noexec"}, nil},
		{[]string{"nosuid", "suid", "nodev", "dev", "noexec", "exec"}, nil, []string{"nosuid", "nodev", "noexec"}},
		{[]string{"noatime", "nodiratime"}, []string{"noatime", "nodiratime"}, []string{"relatime"}},
		{[]string{"noatime", "relatime"}, []string{"relatime"}, []string{"noatime"}},
		{[]string{"strictatime"}, nil, []string{"relatime", "noatime"}},
		{[]string{"sync", "dirsync"}, []string{"sync", "dirsync"}, nil},
		{[]string{"sync", "async"}, nil, []string{"sync"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.opts, ","), func(t *testing.T) {
			m := newMount(t, func(o *fs.Options) { o.KernelOptions = tt.opts })
			opts := procMount(t, m.Dir).AllOptions()
			for _, w := range tt.want {
				if !slices.Contains(opts, w) {
					t.Errorf("options %q lack %q", strings.Join(opts, ","), w)
				}
			}
			for _, w := range tt.notWant {
				if slices.Contains(opts, w) {
					t.Errorf("options %q contain %q", strings.Join(opts, ","), w)
				}
			}
		})
	}
}

func TestMountRefusesUnknownOption(t *testing.T) {
	m := newMount(t)
	other := t.TempDir()
	srv, err := fs.Mount(m.Store, other, fs.Options{KernelOptions: []string{"max_read=4096"}})
	if err == nil {
		t.Cleanup(func() { srv.Unmount() })
	}
	if err == nil || !strings.Contains(err.Error(), "max_read=4096") {
		t.Fatalf("Mount with an unknown option: got %v, want an error naming it", err)
	}
}

func TestMountReadOnly(t *testing.T) {
	m := newMount(t)
	writeFile(t, m.path("f"), []byte("kept"), 0o644)
	m.unmount(t)
	m.mount(t, func(o *fs.Options) { o.ReadOnly = true })

	if got := string(readFile(t, m.path("f"))); got != "kept" {
		t.Errorf("read %q, want %q", got, "kept")
	}
	opts := procMount(t, m.Dir).AllOptions()
	if !slices.Contains(opts, "ro") {
		t.Errorf("options %q lack ro", strings.Join(opts, ","))
	}
	wantErrno(t, "create", os.WriteFile(m.path("g"), nil, 0o644), syscall.EROFS)
	wantErrno(t, "open for writing", func() error {
		f, err := os.OpenFile(m.path("f"), os.O_WRONLY, 0)
		if err == nil {
			f.Close()
		}
		return err
	}(), syscall.EROFS)
	wantErrno(t, "mkdir", os.Mkdir(m.path("d"), 0o755), syscall.EROFS)
	wantErrno(t, "unlink", os.Remove(m.path("f")), syscall.EROFS)
	wantErrno(t, "chmod", os.Chmod(m.path("f"), 0o600), syscall.EROFS)
	wantErrno(t, "setxattr", unix.Setxattr(m.path("f"), "user.a", []byte("v"), 0), syscall.EROFS)
}

func TestStatfs(t *testing.T) {
	m := newMount(t)
	before := statfs(t, m.Dir)
	// 256 MiB of 4 KiB blocks, less block 0 (the volume label).
	if before.Bsize != meta.BlockSize || before.Frsize != meta.BlockSize || before.Blocks != 256<<20/meta.BlockSize-1 {
		t.Errorf("bsize %d frsize %d blocks %d, want %d %d %d", before.Bsize, before.Frsize, before.Blocks,
			meta.BlockSize, meta.BlockSize, 256<<20/meta.BlockSize-1)
	}
	if before.Namelen != 255 {
		t.Errorf("namelen %d, want 255", before.Namelen)
	}
	if before.Files == 0 || before.Ffree == 0 || before.Ffree >= before.Files {
		t.Errorf("files %d ffree %d: want a limit with the root in use", before.Files, before.Ffree)
	}
	if before.Bfree == 0 || before.Bavail != before.Bfree || before.Bfree > before.Blocks {
		t.Errorf("bfree %d bavail %d blocks %d", before.Bfree, before.Bavail, before.Blocks)
	}
	if before.Type != 0x65735546 { // FUSE_SUPER_MAGIC
		t.Errorf("f_type %#x, want FUSE_SUPER_MAGIC", before.Type)
	}

	const size = 8 << 20
	writeFile(t, m.path("big"), pattern(size, 1), 0o644)
	after := statfs(t, m.Dir)
	if used := before.Bfree - after.Bfree; used < size/meta.BlockSize {
		t.Errorf("writing %d bytes used %d blocks, want at least %d", size, used, size/meta.BlockSize)
	}
	if after.Ffree != before.Ffree-1 {
		t.Errorf("ffree %d after creating a file, want %d", after.Ffree, before.Ffree-1)
	}
	must(t, "remove", os.Remove(m.path("big")))
	eventually(t, 5*time.Second, "blocks and inode come back after unlink", func() bool {
		st := statfs(t, m.Dir)
		return st.Bfree == before.Bfree && st.Ffree == before.Ffree
	})
}

// TestENOSPC: a full volume or inode table is ENOSPC, and deleting makes room again.
func TestENOSPC(t *testing.T) {
	m := newMountMkfs(t, meta.MkfsOptions{Size: 8 << 20, Inodes: 16})
	f, err := os.Create(m.path("fill"))
	must(t, "create", err)
	chunk := pattern(1<<20, 3)
	var written int64
	for i := 0; i < 16; i++ {
		n, err := f.WriteAt(chunk, written)
		written += int64(n)
		if err != nil {
			wantErrno(t, "write to a full volume", err, syscall.ENOSPC)
			break
		}
	}
	f.Close()
	if written < 6<<20 || written >= 8<<20 {
		t.Errorf("wrote %d bytes to an 8 MiB volume before ENOSPC", written)
	}
	if st := statfs(t, m.Dir); st.Bfree > 1 {
		t.Errorf("bfree %d on a full volume", st.Bfree)
	}
	must(t, "remove", os.Remove(m.path("fill")))
	eventually(t, 5*time.Second, "space returns", func() bool { return statfs(t, m.Dir).Bfree > 1500 })
	writeFile(t, m.path("again"), chunk, 0o644)

	var created int
	for i := 0; i < 32; i++ {
		if err := os.WriteFile(m.path(fmt.Sprint("i", i)), nil, 0o644); err != nil {
			wantErrno(t, "create past the inode limit", err, syscall.ENOSPC)
			break
		}
		created++
	}
	if st := statfs(t, m.Dir); created == 32 || st.Ffree != 0 || st.Files != 16 {
		t.Errorf("created %d files; files %d ffree %d, want the limit of 16 reached", created, st.Files, st.Ffree)
	}
}

// TestCopyFileRangeENOSPC: copy_file_range onto a volume that fills up copies what fits and
// says so: the counts it returns add up to exactly the bytes the destination holds, then
// ENOSPC, as with write(2).
func TestCopyFileRangeENOSPC(t *testing.T) {
	m := newMountMkfs(t, meta.MkfsOptions{Size: 8 << 20})
	src := pattern(5<<20, 7)
	writeFile(t, m.path("src"), src, 0o644)
	in, err := os.Open(m.path("src"))
	must(t, "open src", err)
	defer in.Close()
	out, err := os.Create(m.path("dst"))
	must(t, "create dst", err)
	defer out.Close()
	var total int64
	for {
		offIn, offOut := total, total
		n, err := unix.CopyFileRange(int(in.Fd()), &offIn, int(out.Fd()), &offOut, len(src)-int(total), 0)
		if err != nil {
			wantErrno(t, "copy_file_range onto a full volume", err, syscall.ENOSPC)
			break
		}
		if n == 0 {
			t.Fatalf("copy_file_range copied all %d bytes to a volume without room for them", total)
		}
		total += int64(n)
	}
	if total == 0 || total >= int64(len(src)) {
		t.Fatalf("copied %d of %d bytes to a volume of 8 MiB holding 5 MiB", total, len(src))
	}
	got := readFile(t, m.path("dst"))
	if int64(len(got)) != total {
		t.Fatalf("copy_file_range reported %d bytes; the destination holds %d", total, len(got))
	}
	sameBytes(t, "what was copied", got, src[:total])
}
