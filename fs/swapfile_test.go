package fs_test

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/fs"
	"github.com/swapfs/swapfs/meta"
	"github.com/swapfs/swapfs/swap"
)

const swapTestSize = 8 << 20

func requireMkswap(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("mkswap"); err != nil {
		t.Skip("skipped: mkswap (util-linux) is not installed")
	}
}

func mkswap(t testing.TB, path string) {
	t.Helper()
	out, err := command(t, "mkswap", path).CombinedOutput()
	if err != nil {
		t.Fatalf("mkswap %s: %v\n%s", path, err, out)
	}
}

// pinnedStatus returns the status of the mount's swapfile ino, and whether it is pinned.
func (m *mount) pinnedStatus(ino uint64) (swap.FileStatus, bool) {
	for _, f := range m.Server.SwapStatus().Files {
		if f.Ino == ino {
			return f, f.Pinned
		}
	}
	return swap.FileStatus{}, false
}

func inoOf(t testing.TB, path string) uint64 {
	t.Helper()
	return lstat(t, path).Ino
}

// TestSwapRecipesPin: the usual recipes (fallocate or dd, then chmod 600 and mkswap) make a
// pinned swapfile: every block allocated and written, the flag in the store, one extent.
func TestSwapRecipesPin(t *testing.T) {
	requireMkswap(t)
	m := newMount(t)
	for _, recipe := range []string{"fallocate", "dd"} {
		t.Run(recipe, func(t *testing.T) {
			p := m.path("swap-" + recipe)
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
			must(t, "create", err)
			if recipe == "fallocate" {
				must(t, "fallocate", unix.Fallocate(int(f.Fd()), 0, 0, swapTestSize))
			} else {
				_, err = f.Write(make([]byte, swapTestSize))
				must(t, "write zeros", err)
			}
			must(t, "close", f.Close())
			ino := inoOf(t, p)
			if _, pinned := m.pinnedStatus(ino); pinned {
				t.Fatal("pinned before mkswap")
			}
			mkswap(t, p)
			st, pinned := m.pinnedStatus(ino)
			if !pinned {
				t.Fatalf("mkswap did not pin the file: %+v", m.Server.SwapStatus())
			}
			if st.Extents != 1 || st.FileBytes != swapTestSize || st.UsableBytes != swapTestSize || st.Path != "/swap-"+recipe {
				t.Errorf("status %+v: want one extent, %d bytes usable, path /swap-%s", st, swapTestSize, recipe)
			}
			if blocks := lstat(t, p).Blocks; blocks != swapTestSize/512 {
				t.Errorf("st_blocks %d, want %d: not every block is allocated", blocks, swapTestSize/512)
			}
			in, err := m.Store.GetInode(ino)
			must(t, "GetInode", err)
			if in.Flags&meta.FlagSwapfile == 0 {
				t.Error("the store does not flag the file as a swapfile")
			}
			maps, err := m.Store.Map(ino, 0, swapTestSize/meta.BlockSize)
			must(t, "Map", err)
			for _, mp := range maps {
				if mp.Hole || mp.Unwritten {
					t.Errorf("pinned file still has %+v", mp)
				}
			}
			// Reads go through the engine and see mkswap's header and the zeros.
			data := readFile(t, p)
			if !swap.IsSwapHeader(data) || !bytes.Equal(data[swap.PageSize:], make([]byte, swapTestSize-swap.PageSize)) {
				t.Error("reading the pinned file does not give the header and zeros")
			}
			if _, err := swap.ParseHeader(data, int64(len(data))); err != nil {
				t.Errorf("header read back: %v", err)
			}
		})
	}
}

// TestSwapImageCopiedIn: a swap image copied into a file with copy_file_range (as cp does)
// makes it a swapfile once the copy is closed, as one written in with write(2) does.
func TestSwapImageCopiedIn(t *testing.T) {
	requireMkswap(t)
	m := newMount(t)
	src := m.path("image")
	writeFile(t, src, make([]byte, swapTestSize), 0o600)
	mkswap(t, src)
	in, err := os.Open(src)
	must(t, "open the image", err)
	defer in.Close()
	out, err := os.OpenFile(m.path("copy"), os.O_CREATE|os.O_WRONLY, 0o600)
	must(t, "create the copy", err)
	for done := int64(0); done < swapTestSize; {
		offIn, offOut := done, done
		n, err := unix.CopyFileRange(int(in.Fd()), &offIn, int(out.Fd()), &offOut, int(swapTestSize-done), 0)
		must(t, "copy_file_range", err)
		if n == 0 {
			t.Fatalf("copy_file_range stopped at %d of %d bytes", done, swapTestSize)
		}
		done += int64(n)
	}
	must(t, "close the copy", out.Close())
	ino := inoOf(t, m.path("copy"))
	eventually(t, 5*time.Second, "the copied swap image is pinned", func() bool {
		_, pinned := m.pinnedStatus(ino)
		return pinned
	})
}

// TestSwapOpenWhileReleaseInFlight: the kernel sends RELEASE in the background after close(2),
// so "mkswap f && losetup -f f" can open the freshly pinned file for writing before mkswap's
// handle is gone. The open waits for that release instead of failing at random; a writer that
// stays open is still refused, as a second loop device on the same file must be.
func TestSwapOpenWhileReleaseInFlight(t *testing.T) {
	requireMkswap(t)
	m := newMount(t)
	p := m.path("swap")
	writeFile(t, p, make([]byte, swapTestSize), 0o600)
	mkswap(t, p)
	if _, pinned := m.pinnedStatus(inoOf(t, p)); !pinned {
		t.Fatal("mkswap did not pin")
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	must(t, "open", err)
	fs.DelayRelease(t, 300*time.Millisecond)
	must(t, "close", f.Close())
	f, err = os.OpenFile(p, os.O_RDWR, 0)
	must(t, "open for writing while the last writer's RELEASE is on its way", err)
	defer f.Close()

	start := time.Now()
	wantErrno(t, "a second writer of a pinned file", openErr(p, os.O_WRONLY), syscall.ETXTBSY)
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("the refused open took %v", waited)
	}
	_, err = os.ReadFile(p)
	must(t, "a reader is still let in", err)
}

// TestSwapPinnedIO: a pinned file that is not active swap is still an ordinary file to its
// owner: writes land and read back through the engine, O_DIRECT included; a write past its
// end, a truncate or a fallocate unpins it; rewriting the header pins it again.
func TestSwapPinnedIO(t *testing.T) {
	requireMkswap(t)
	m := newMount(t)
	p := m.path("swap")
	writeFile(t, p, make([]byte, swapTestSize), 0o600)
	mkswap(t, p)
	ino := inoOf(t, p)
	if _, pinned := m.pinnedStatus(ino); !pinned {
		t.Fatal("mkswap did not pin")
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	must(t, "open", err)
	defer f.Close()
	data := pattern(3*meta.BlockSize+100, 9)
	_, err = f.WriteAt(data, 5*meta.BlockSize+7)
	must(t, "write inside the pinned file", err)
	got := make([]byte, len(data))
	_, err = f.ReadAt(got, 5*meta.BlockSize+7)
	must(t, "read back", err)
	sameBytes(t, "pinned file read back", got, data)
	if _, pinned := m.pinnedStatus(ino); !pinned {
		t.Error("an in-place write unpinned the file")
	}
	before, err := m.Store.Map(ino, 0, swapTestSize/meta.BlockSize)
	must(t, "Map", err)

	_, err = f.WriteAt([]byte("more"), swapTestSize)
	must(t, "write past the end", err)
	if _, pinned := m.pinnedStatus(ino); pinned {
		t.Error("a write past the end left the file pinned")
	}
	must(t, "truncate", f.Truncate(swapTestSize))
	// mkswap again: the header is valid, the file is pinned again with the same blocks.
	// (mkswap needs the only writable handle of a file it pins; close ours meanwhile.)
	must(t, "close", f.Close())
	mkswap(t, p)
	f, err = os.OpenFile(p, os.O_RDWR, 0)
	must(t, "open", err)
	defer f.Close()
	if _, pinned := m.pinnedStatus(ino); !pinned {
		t.Fatal("a new header did not pin the file again")
	}
	after, err := m.Store.Map(ino, 0, swapTestSize/meta.BlockSize)
	must(t, "Map", err)
	if len(after) != len(before) || after[0] != before[0] {
		t.Errorf("the block map moved: %+v -> %+v", before, after)
	}
	// Wiping the signature makes it an ordinary file.
	_, err = f.WriteAt(make([]byte, 10), swap.PageSize-10)
	must(t, "wipe the signature", err)
	if _, pinned := m.pinnedStatus(ino); pinned {
		t.Error("the file stays pinned without a signature")
	}
	in, err := m.Store.GetInode(ino)
	must(t, "GetInode", err)
	if in.Flags&meta.FlagSwapfile != 0 {
		t.Error("the store still flags the wiped file")
	}
}

// brokenHeader is a page with the signature and version 2.
func brokenHeader(t testing.TB, lastPage uint32) []byte {
	t.Helper()
	page, err := swap.Header{LastPage: lastPage}.Encode()
	must(t, "Encode", err)
	page[1024] = 2
	return page
}

// TestSwapBadHeaderRefused: a header that swapon would refuse is refused when it is written
// over an existing file (EINVAL), and nothing changes or gets pinned.
func TestSwapBadHeaderRefused(t *testing.T) {
	m := newMount(t)
	p := m.path("f")
	old := pattern(swapTestSize, 3)
	writeFile(t, p, old, 0o600)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	must(t, "open", err)
	defer f.Close()
	_, err = f.WriteAt(brokenHeader(t, swapTestSize/swap.PageSize-1), 0)
	wantErrno(t, "write a version-2 header", err, syscall.EINVAL)
	tooLong, err := swap.Header{LastPage: swapTestSize / swap.PageSize}.Encode()
	must(t, "Encode", err)
	_, err = f.WriteAt(tooLong, 0)
	wantErrno(t, "write a header longer than the file", err, syscall.EINVAL)
	sameBytes(t, "file after refused headers", readFile(t, p), old)
	if st := m.Server.SwapStatus(); len(st.Files) != 0 {
		t.Errorf("a refused header pinned something: %+v", st)
	}
}

// TestSwapCopiedImagePinsOnClose: a swap image copied in (the header arrives while the file
// is still growing) is not refused and is pinned when the writer closes it; a broken one is
// left an ordinary file.
func TestSwapCopiedImagePinsOnClose(t *testing.T) {
	m := newMount(t)
	good, err := swap.Header{LastPage: swapTestSize/swap.PageSize - 1, Label: "copied"}.Encode()
	must(t, "Encode", err)
	for _, c := range []struct {
		name   string
		header []byte
		pinned bool
	}{{"valid", good, true}, {"broken", brokenHeader(t, swapTestSize/swap.PageSize-1), false}} {
		t.Run(c.name, func(t *testing.T) {
			p := m.path("image-" + c.name)
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o600)
			must(t, "create", err)
			image := append(append([]byte(nil), c.header...), make([]byte, swapTestSize-swap.PageSize)...)
			for off := 0; off < len(image); off += 128 << 10 {
				_, err := f.Write(image[off : off+128<<10])
				must(t, "copy", err)
			}
			ino := inoOf(t, p)
			if _, pinned := m.pinnedStatus(ino); pinned {
				t.Error("pinned while still being written")
			}
			must(t, "close", f.Close())
			eventually(t, 5e9, "pin state after close", func() bool {
				_, pinned := m.pinnedStatus(ino)
				return pinned == c.pinned
			})
			sameBytes(t, "copied image", readFile(t, p), image)
		})
	}
}

// TestSwapRemountKeepsMap: across unmount and mount, a swapfile stays pinned with the same
// block map.
func TestSwapRemountKeepsMap(t *testing.T) {
	requireMkswap(t)
	m := newMount(t)
	// Interleave the swapfile's blocks with another file's, so it has many extents.
	p := m.path("swap")
	sf, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o600)
	must(t, "create", err)
	other, err := os.Create(m.path("other"))
	must(t, "create", err)
	for off := int64(0); off < swapTestSize; off += 1 << 20 {
		_, err := sf.WriteAt(make([]byte, 1<<20), off)
		must(t, "write", err)
		_, err = other.WriteAt(make([]byte, 4096), off)
		must(t, "write", err)
	}
	must(t, "close", sf.Close())
	must(t, "close", other.Close())
	mkswap(t, p)
	ino := inoOf(t, p)
	before, ok := m.pinnedStatus(ino)
	if !ok || before.Extents < 2 {
		t.Fatalf("pinned %v with %d extents; want a pinned file of several extents", ok, before.Extents)
	}
	mapBefore, err := m.Store.Map(ino, 0, swapTestSize/meta.BlockSize)
	must(t, "Map", err)
	m.unmount(t)
	m.mount(t)
	after, ok := m.pinnedStatus(ino)
	if !ok {
		t.Fatal("not pinned after remount")
	}
	mapAfter, err := m.Store.Map(ino, 0, swapTestSize/meta.BlockSize)
	must(t, "Map", err)
	if before.Extents != after.Extents || len(mapBefore) != len(mapAfter) {
		t.Errorf("map changed across remount: %+v -> %+v", mapBefore, mapAfter)
	}
	for i := range mapBefore {
		if mapBefore[i] != mapAfter[i] {
			t.Errorf("extent %d moved: %+v -> %+v", i, mapBefore[i], mapAfter[i])
		}
	}
}

// TestSwapSharedMmapRefused: a pinned file's handles bypass the page cache, so a shared
// writable mapping is refused by the kernel; a private one still works.
func TestSwapSharedMmapRefused(t *testing.T) {
	requireMkswap(t)
	m := newMount(t)
	p := m.path("swap")
	writeFile(t, p, make([]byte, swapTestSize), 0o600)
	mkswap(t, p)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	must(t, "open", err)
	defer f.Close()
	if b, err := unix.Mmap(int(f.Fd()), 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
		unix.Munmap(b)
		t.Error("shared writable mmap of a swapfile succeeded")
	}
	runHelper(t, "mmap-swap-header", p) // a private mapping is allowed and shows the header
}

// TestSwapConcurrentReads: many parallel direct reads of a pinned file each get their own
// data (a reply must never carry a buffer another request has reused), and reads at and past
// the end of file leave nothing behind that later reads wait for.
func TestSwapConcurrentReads(t *testing.T) {
	requireMkswap(t)
	m := newMount(t)
	p := m.path("swap")
	const chunk = 64 << 10
	content := make([]byte, swapTestSize)
	for i := 0; i < len(content); i += 8 {
		binary.LittleEndian.PutUint64(content[i:], uint64(i))
	}
	writeFile(t, p, content, 0o600)
	mkswap(t, p) // rewrites the first page
	if _, ok := m.pinnedStatus(inoOf(t, p)); !ok {
		t.Fatal("not pinned")
	}
	f, err := os.Open(p)
	must(t, "open", err)
	defer f.Close()
	for range 40 { // more than any fixed set of buffers or reply wrappers
		n, err := f.ReadAt(make([]byte, 4096), swapTestSize)
		if n != 0 || err != io.EOF {
			t.Fatalf("read at EOF: %d, %v", n, err)
		}
	}
	var wg sync.WaitGroup
	var bad atomic.Int64
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECT, 0)
			if err != nil {
				t.Error(err)
				return
			}
			defer unix.Close(fd)
			buf, err := unix.Mmap(-1, 0, chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			if err != nil {
				t.Error(err)
				return
			}
			defer unix.Munmap(buf)
			for i := range 200 {
				off := int64((g*7919+i*104729)%(swapTestSize/chunk-1)+1) * chunk
				if _, err := unix.Pread(fd, buf, off); err != nil {
					t.Error(err)
					return
				}
				if want := uint64(off); binary.LittleEndian.Uint64(buf) != want || binary.LittleEndian.Uint64(buf[chunk-8:]) != want+chunk-8 {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Errorf("%d of %d parallel reads returned another range's data", n, 32*200)
	}
}
