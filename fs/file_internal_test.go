package fs

import (
	"context"
	"log/slog"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/swapfs/swapfs/meta"
	"github.com/swapfs/swapfs/swap"
)

// newTestNode makes a node for a fresh regular file in a new store, without mounting: the
// read and write paths can be measured without FUSE (and without root).
func newTestNode(tb testing.TB) *Node {
	tb.Helper()
	dir := tb.TempDir()
	if err := meta.Mkfs(dir, meta.MkfsOptions{Size: 64 << 20}); err != nil {
		tb.Fatal(err)
	}
	store, err := meta.Open(dir, meta.OpenOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		for _, p := range store.Check() {
			tb.Errorf("store.Check: %v", p)
		}
		store.Close()
	})
	in, err := store.Create(meta.RootIno, "f", meta.NewInode{Mode: syscall.S_IFREG | 0o644})
	if err != nil {
		tb.Fatal(err)
	}
	fsys := &filesystem{store: store, log: slog.New(slog.DiscardHandler), open: map[uint64]int{}, swap: newSwapFiles(store)}
	return &Node{fs: fsys, ino: in.Ino}
}

// BenchmarkReadWrite measures a 128 KiB write and read through the node, as one FUSE
// request each; allocations reported include the store's.
func BenchmarkReadWrite(b *testing.B) {
	n := newTestNode(b)
	ctx := context.Background()
	buf := make([]byte, 128<<10)
	if _, errno := n.Write(ctx, nil, buf, 0); errno != 0 {
		b.Fatal(errno)
	}
	b.Run("write", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			if _, errno := n.Write(ctx, nil, buf, 0); errno != 0 {
				b.Fatal(errno)
			}
		}
	})
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			if _, errno := n.Read(ctx, nil, buf, 0); errno != 0 {
				b.Fatal(errno)
			}
		}
	})
}

func TestReadWriteNode(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	if w, errno := n.Write(ctx, nil, []byte("hello"), 3); errno != 0 || w != 5 {
		t.Fatalf("Write: %d %v", w, errno)
	}
	buf := make([]byte, 100)
	res, errno := n.Read(ctx, nil, buf, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	got, _ := res.Bytes(nil)
	if string(got) != "\x00\x00\x00hello" {
		t.Errorf("Read: %q", got)
	}
}

// TestHotPathAllocs: Read and Write add no allocation to the store's, except the
// fuse.ReadResult that go-fuse's API requires.
func TestHotPathAllocs(t *testing.T) {
	n := newTestNode(t)
	ctx := context.Background()
	buf := make([]byte, 64<<10)
	if _, errno := n.Write(ctx, nil, buf, 0); errno != 0 {
		t.Fatal(errno)
	}
	store := n.fs.store
	storeWrite := testing.AllocsPerRun(200, func() { store.WriteAt(n.ino, buf, 0) })
	nodeWrite := testing.AllocsPerRun(200, func() { n.Write(ctx, nil, buf, 0) })
	storeRead := testing.AllocsPerRun(200, func() { store.ReadAt(n.ino, buf, 0) })
	nodeRead := testing.AllocsPerRun(200, func() { n.Read(ctx, nil, buf, 0) })
	if nodeWrite > storeWrite {
		t.Errorf("Write: %v allocs, the store's WriteAt alone %v", nodeWrite, storeWrite)
	}
	if nodeRead > storeRead+1 {
		t.Errorf("Read: %v allocs, the store's ReadAt alone %v (+1 for the ReadResult)", nodeRead, storeRead)
	}
	t.Logf("allocs per request: write %v (store %v), read %v (store %v)", nodeWrite, storeWrite, nodeRead, storeRead)
}

// TestSwapPathAllocs: a pinned swapfile's reads and its loop device's writes allocate nothing
// in swapfs, the fuse.ReadResult included (it comes from a preallocated set).
func TestSwapPathAllocs(t *testing.T) {
	n := newTestNode(t)
	user := context.Background()
	const size = 4 << 20
	if _, errno := n.Write(user, nil, make([]byte, size), 0); errno != 0 {
		t.Fatal(errno)
	}
	header, err := swap.Header{LastPage: size/swap.PageSize - 1}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, errno := n.Write(user, nil, header, 0); errno != 0 {
		t.Fatalf("write the header: %v", errno)
	}
	if !n.fs.swap.isPinned(n.ino) {
		t.Fatal("the header did not pin the file")
	}
	// kthreadd (pid 2) stands in for a loop worker: both are kernel threads.
	loop := &fuse.Context{Caller: fuse.Caller{Pid: 2}}
	page := make([]byte, 4096)
	big := make([]byte, 1<<20)
	buf := make([]byte, 1<<20)
	before, _ := n.fs.store.GetInode(n.ino)
	for _, c := range []struct {
		name string
		fn   func()
	}{
		{"write 4k", func() { n.Write(loop, nil, page, 8192) }},
		{"write 1M", func() { n.Write(loop, nil, big, 1<<20) }},
		{"read 4k", func() { r, _ := n.Read(loop, nil, buf[:4096], 8192); r.Done() }},
		{"read 1M", func() { r, _ := n.Read(loop, nil, buf, 1<<20); r.Done() }},
	} {
		if a := testing.AllocsPerRun(50, c.fn); a != 0 {
			t.Errorf("%s: %v allocs per request, want 0", c.name, a)
		}
	}
	after, _ := n.fs.store.GetInode(n.ino)
	if !after.Mtime.Equal(before.Mtime) || after.Size != before.Size || after.Blocks != before.Blocks {
		t.Errorf("swap writes changed the inode: %+v -> %+v", before, after)
	}
	if st := n.fs.swap.engine.Stats(); st.Writes < 100 || st.Reads < 100 {
		t.Errorf("the writes did not go through the engine: %+v", st)
	}
}
