package fs

import (
	"context"
	"log/slog"
	"syscall"
	"testing"

	"github.com/swapfs/swapfs/meta"
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
	fsys := &filesystem{store: store, log: slog.New(slog.DiscardHandler), open: map[uint64]int{}}
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
