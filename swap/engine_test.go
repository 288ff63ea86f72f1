package swap_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/swapfs/swapfs/meta"
	"github.com/swapfs/swapfs/swap"
)

// testVolume is a data volume file and a map of a file of fileBlocks blocks scattered over it
// in three extents, the middle one placed before the first, as a fragmented allocator would.
func testVolume(t testing.TB, fileSize int64) (*swap.Engine, *swap.Map, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, volumeSize(fileSize)); err != nil {
		t.Fatal(err)
	}
	e, m := engineOn(t, path, fileSize)
	return e, m, path
}

// volumeSize is how big a data volume engineOn needs for a file of fileSize bytes.
func volumeSize(fileSize int64) int64 {
	blocks := (fileSize + meta.BlockSize - 1) / meta.BlockSize
	return (3*blocks + 64) * meta.BlockSize
}

// engineOn starts an engine on the data volume path (volumeSize bytes at least) and maps a
// file of fileSize bytes over it.
func engineOn(t testing.TB, path string, fileSize int64) (*swap.Engine, *swap.Map) {
	t.Helper()
	blocks := uint64((fileSize + meta.BlockSize - 1) / meta.BlockSize)
	a, b := blocks/3, blocks/3+blocks/5
	maps := []meta.Mapping{
		{Lblk: 0, Len: a, Pblk: 2*blocks + 10},
		{Lblk: a, Len: b - a, Pblk: 5},
		{Lblk: b, Len: blocks - b, Pblk: blocks + 20},
	}
	m, err := swap.NewMap(7, fileSize, swap.Header{LastPage: uint32(blocks - 1)}, maps)
	if err != nil {
		t.Fatal(err)
	}
	e, err := swap.NewEngine(path, 4)
	if err != nil {
		if errors.Is(err, syscall.EINVAL) {
			t.Skipf("the temporary directory's filesystem refuses O_DIRECT: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, m
}

// volumeRead reads file bytes [off, off+n) from the volume file by walking the extents, the
// way the map says they are laid out.
func volumeRead(t testing.TB, path string, m *swap.Map, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := make([]byte, 0, n)
	for _, e := range m.Extents() {
		lo, hi := int64(e.Lblk)*meta.BlockSize, int64(e.Lblk+e.Len)*meta.BlockSize
		a, b := max(lo, off), min(hi, off+int64(n))
		if a >= b {
			continue
		}
		buf := make([]byte, b-a)
		if _, err := f.ReadAt(buf, int64(e.Pblk)*meta.BlockSize+a-lo); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf...)
	}
	return out
}

func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

// engineTestSize is not a block multiple: the last block is partly in the file.
const engineTestSize = 3<<20 + 5000

func TestEngineRoundTrip(t *testing.T) {
	e, m, path := testVolume(t, engineTestSize)
	roundTrip(t, e, m, path)
}

// TestEngineWriteMemoryAlignment: an aligned write goes to the volume straight from page-
// aligned memory and through a buffer from any other; both land the same bytes.
func TestEngineWriteMemoryAlignment(t *testing.T) {
	e, m, path := testVolume(t, engineTestSize)
	for _, c := range []struct {
		name  string
		shift int // bytes from a page boundary to the data
	}{{"page-aligned memory", 0}, {"memory off a page boundary", 8}, {"odd memory address", 1}} {
		t.Run(c.name, func(t *testing.T) {
			for i, size := range []int{4096, 1 << 20} {
				mem := meta.AlignedBuffer(size + c.shift)
				p := mem[c.shift : c.shift+size]
				copy(p, pattern(uint64(100+i+c.shift), size))
				off := int64(m.Extents()[1].Lblk)*meta.BlockSize - 8192
				if n, err := e.WriteAt(m, p, off); err != nil || n != size {
					t.Fatalf("WriteAt %d bytes: %d, %v", size, n, err)
				}
				if got := volumeRead(t, path, m, off, size); !bytes.Equal(got, p) {
					t.Fatalf("the volume does not hold the %d bytes written", size)
				}
			}
		})
	}
}

// TestEngineAlignedWriteNeedsNoBuffer: with every engine buffer taken, an aligned write
// from page-aligned memory still goes through (it is written from the caller's memory),
// and one from unaligned memory waits for a buffer.
func TestEngineAlignedWriteNeedsNoBuffer(t *testing.T) {
	_, m, path := testVolume(t, engineTestSize)
	e, err := swap.NewEngine(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	held, err := e.Read(m, 0, 4096)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			held.Release()
		}
	}()
	write := func(p []byte) chan error {
		done := make(chan error, 1)
		go func() { _, err := e.WriteAt(m, p, 1<<20); done <- err }()
		return done
	}
	select {
	case err := <-write(meta.AlignedBuffer(1 << 20)):
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an aligned write from page-aligned memory waited for an engine buffer")
	}
	unaligned := write(meta.AlignedBuffer(1<<20 + 8)[8:])
	select {
	case err := <-unaligned:
		t.Fatalf("a write from unaligned memory went through without a buffer (%v): it cannot be O_DIRECT from there", err)
	case <-time.After(200 * time.Millisecond):
	}
	held.Release()
	released = true
	select {
	case err := <-unaligned:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write from unaligned memory did not go through once a buffer was free")
	}
}

// TestEngineOn4KnDevice: on a data volume whose direct I/O needs 4096-byte alignment (a
// block device with 4 KiB logical sectors), requests aligned to 512 bytes only, as a loop
// device with 512-byte sectors sends them, are read-modify-written in whole 4 KiB sectors.
func TestEngineOn4KnDevice(t *testing.T) {
	needLoop(t)
	for _, bs := range []uint32{512, 4096} {
		t.Run(fmt.Sprintf("sector-%d", bs), func(t *testing.T) {
			backing, _, _ := backingFile(t, volumeSize(engineTestSize))
			dev := attach(t, backing, swap.LoopOptions{BlockSize: bs})
			e, m := engineOn(t, dev, engineTestSize)
			if e.Sector() != int64(bs) {
				t.Fatalf("engine on %s (%d-byte sectors) aligns to %d", dev, bs, e.Sector())
			}
			roundTrip(t, e, m, dev)
		})
	}
}

func roundTrip(t *testing.T, e *swap.Engine, m *swap.Map, path string) {
	const size = engineTestSize
	if m.NumExtents() != 3 {
		t.Fatalf("map has %d extents, want 3: %+v", m.NumExtents(), m.Extents())
	}
	whole := pattern(1, size)
	if n, err := e.WriteAt(m, whole, 0); err != nil || n != size {
		t.Fatalf("WriteAt whole file: %d, %v", n, err)
	}
	if got := volumeRead(t, path, m, 0, size); !bytes.Equal(got, whole) {
		t.Fatal("the volume does not hold what was written at the mapped places")
	}
	cases := []struct {
		name string
		off  int64
		n    int
	}{
		{"page", 4096, 4096},
		{"across the first extent boundary", int64(m.Extents()[1].Lblk)*meta.BlockSize - 8192, 3 * 4096},
		{"unaligned, across a boundary", int64(m.Extents()[2].Lblk)*meta.BlockSize - 1000, 2222},
		{"one sector", 512, 512},
		{"a full request", 1 << 20, 1 << 20},
		{"a full request, unaligned", 1<<20 + 3, 1 << 20},
		{"the file's tail", size - 777, 777},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := e.Read(m, c.off, c.n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), whole[c.off:c.off+int64(c.n)]) {
				t.Fatalf("Read(%d, %d) differs from what was written", c.off, c.n)
			}
			b.Release()
			p := pattern(uint64(10+i), c.n)
			if n, err := e.WriteAt(m, p, c.off); err != nil || n != c.n {
				t.Fatalf("WriteAt: %d, %v", n, err)
			}
			copy(whole[c.off:], p)
			if got := volumeRead(t, path, m, 0, size); !bytes.Equal(got, whole) {
				t.Fatal("after the write the volume differs from the expected file: a neighbour was clobbered or the write went astray")
			}
		})
	}
	// Reads stop at the pinned size.
	p := make([]byte, 4096)
	n, err := e.ReadAt(m, p, size-100)
	if n != 100 || err != io.EOF || !bytes.Equal(p[:100], whole[size-100:]) {
		t.Errorf("ReadAt across the end: %d, %v", n, err)
	}
	if b, err := e.Read(m, size+4096, 4096); err != nil || len(b.Bytes()) != 0 {
		t.Errorf("Read past the end: %v", err)
	} else {
		b.Release()
	}
	// Writes never grow the file.
	if _, err := e.WriteAt(m, p, size-100); !errors.Is(err, syscall.EFBIG) {
		t.Errorf("WriteAt past the pinned size: %v, want EFBIG", err)
	}
	st := e.Stats()
	if st.Writes == 0 || st.Reads == 0 || st.WriteBytes < size || st.ReadLatency.P50 <= 0 || st.WriteLatency.Max < st.WriteLatency.P50/2 {
		t.Errorf("stats do not count the I/O: %+v", st)
	}
}

func TestNewMapRefusesHolesAndUnwritten(t *testing.T) {
	h := swap.Header{LastPage: 9}
	for _, c := range []struct {
		name string
		maps []meta.Mapping
	}{
		{"hole", []meta.Mapping{{Lblk: 0, Len: 5, Pblk: 100}, {Lblk: 5, Len: 5, Hole: true}}},
		{"unwritten", []meta.Mapping{{Lblk: 0, Len: 10, Pblk: 100, Unwritten: true}}},
		{"short", []meta.Mapping{{Lblk: 0, Len: 5, Pblk: 100}}},
		{"gap", []meta.Mapping{{Lblk: 0, Len: 5, Pblk: 100}, {Lblk: 6, Len: 4, Pblk: 200}}},
	} {
		if _, err := swap.NewMap(1, 10*meta.BlockSize, h, c.maps); err == nil {
			t.Errorf("%s: NewMap accepted %+v", c.name, c.maps)
		}
	}
	m, err := swap.NewMap(1, 10*meta.BlockSize, h, []meta.Mapping{{Lblk: 0, Len: 4, Pblk: 100}, {Lblk: 4, Len: 6, Pblk: 104}})
	if err != nil || m.NumExtents() != 1 {
		t.Errorf("adjacent runs should merge into one extent: %v %+v", err, m)
	}
}

// TestEngineZeroAllocs: the swap path allocates nothing once running.
func TestEngineZeroAllocs(t *testing.T) {
	e, m, _ := testVolume(t, 4<<20)
	page := make([]byte, 4096)
	big := make([]byte, 1<<20)
	for _, c := range []struct {
		name string
		fn   func()
	}{
		{"write 4k", func() { e.WriteAt(m, page, 8192) }},
		{"write 1M", func() { e.WriteAt(m, big, 1<<20) }},
		{"read 4k", func() { b, _ := e.Read(m, 8192, 4096); b.Release() }},
		{"read 1M", func() { b, _ := e.Read(m, 1<<20, 1<<20); b.Release() }},
	} {
		if a := testing.AllocsPerRun(50, c.fn); a != 0 {
			t.Errorf("%s: %v allocs per request, want 0", c.name, a)
		}
	}
}

func BenchmarkEngine(b *testing.B) {
	e, m, _ := testVolume(b, 64<<20)
	for _, size := range []int{4096, 64 << 10, 1 << 20} {
		p := make([]byte, size)
		slots := int64(m.Size()) / int64(size)
		b.Run("write-"+byteSize(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			i := int64(0)
			for b.Loop() {
				if _, err := e.WriteAt(m, p, (i%slots)*int64(size)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("read-"+byteSize(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			i := int64(0)
			for b.Loop() {
				buf, err := e.Read(m, (i%slots)*int64(size), size)
				if err != nil {
					b.Fatal(err)
				}
				buf.Release()
				i++
			}
		})
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20:
		return "1MiB"
	case n >= 1<<10:
		return string(rune('0'+n>>10/10%10)) + string(rune('0'+n>>10%10)) + "KiB"
	}
	return "B"
}
