package swap_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swapfs/swapfs/swap"
)

func validPage(t testing.TB, lastPage uint32) []byte {
	t.Helper()
	p, err := swap.Header{LastPage: lastPage, UUID: [16]byte{1, 2, 3}, Label: "test"}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseHeader(t *testing.T) {
	const fileSize = 256 * swap.PageSize
	put := func(off int, v uint32) func([]byte) {
		return func(p []byte) { binary.LittleEndian.PutUint32(p[off:], v) }
	}
	cases := []struct {
		name   string
		edit   func([]byte)
		size   int64
		reason string // "" for a valid header
	}{
		{"valid", nil, fileSize, ""},
		{"file grown after mkswap", nil, 2 * fileSize, ""},
		{"size not a page multiple", nil, fileSize + 100, ""},
		{"no signature", func(p []byte) { copy(p[swap.PageSize-10:], "XXXXXXXXXX") }, fileSize, "no swap signature"},
		{"old signature", func(p []byte) { copy(p[swap.PageSize-10:], "SWAP-SPACE") }, fileSize, "old-style"},
		{"version 2", put(1024, 2), fileSize, "version 2"},
		{"other byte order", put(1024, 1<<24), fileSize, "byte order"},
		{"last_page 0", put(1028, 0), fileSize, "empty"},
		{"beyond the file", put(1028, 256), fileSize, "shrunk"},
		{"bad pages", put(1032, 1), fileSize, "bad pages"},
		{"too many bad pages", put(1032, 1000), fileSize, "more than a header"},
		{"file shorter than the header page", nil, 2000, "shorter than the 4096-byte page"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := validPage(t, 255)
			if tc.edit != nil {
				tc.edit(p)
			}
			h, err := swap.ParseHeader(p, tc.size)
			if tc.reason == "" {
				if err != nil || h.LastPage != 255 || h.Label != "test" || h.UsableBytes() != fileSize {
					t.Fatalf("ParseHeader = %+v, %v", h, err)
				}
				return
			}
			if !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("ParseHeader error %v; want EINVAL saying %q", err, tc.reason)
			}
		})
	}
	if _, err := swap.ParseHeader(validPage(t, 255)[:1000], fileSize); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("truncated header: %v, want EINVAL", err)
	}
}

// TestParsesMkswapOutput reads what util-linux's mkswap really writes.
func TestParsesMkswapOutput(t *testing.T) {
	mkswap, err := exec.LookPath("mkswap")
	if err != nil {
		t.Skip("mkswap (util-linux) is not installed")
	}
	f := filepath.Join(t.TempDir(), "swapfile")
	if err := os.WriteFile(f, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, mkswap, "-L", "mylabel", "-U", "01234567-89ab-cdef-0123-456789abcdef", f).CombinedOutput()
	if err != nil {
		t.Fatalf("mkswap: %v\n%s", err, out)
	}
	page := make([]byte, swap.PageSize)
	fd, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if _, err := fd.ReadAt(page, 0); err != nil {
		t.Fatal(err)
	}
	if !swap.IsSwapHeader(page) {
		t.Fatal("IsSwapHeader does not recognise mkswap's header")
	}
	h, err := swap.ParseHeader(page, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	wantUUID := []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	if h.LastPage != 255 || h.Label != "mylabel" || !bytes.Equal(h.UUID[:], wantUUID) {
		t.Errorf("parsed %+v", h)
	}
	mine, _ := h.Encode()
	if !bytes.Equal(mine[1024:], page[1024:]) {
		t.Error("Encode differs from mkswap's header after the boot block")
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(validPage(f, 255), int64(1<<20))
	f.Add(make([]byte, swap.PageSize), int64(0))
	f.Fuzz(func(t *testing.T, page []byte, size int64) {
		h, err := swap.ParseHeader(page, size)
		if err != nil {
			if !errors.Is(err, syscall.EINVAL) {
				t.Fatalf("refusal without EINVAL: %v", err)
			}
			return
		}
		if h.UsableBytes() > size {
			t.Fatalf("accepted a header of %d bytes in a file of %d", h.UsableBytes(), size)
		}
		again, err := h.Encode()
		if err != nil {
			t.Fatalf("Encode of a parsed header: %v", err)
		}
		if h2, err := swap.ParseHeader(again, size); err != nil || h2 != h {
			t.Fatalf("round trip: %+v -> %+v (%v)", h, h2, err)
		}
	})
}

func TestWritesSignature(t *testing.T) {
	page := make([]byte, swap.PageSize)
	copy(page[swap.PageSize-10:], "SWAPSPACE2")
	for _, c := range []struct {
		name          string
		data          []byte
		off           int64
		writes, known bool
	}{
		{"whole page", page, 0, true, true},
		{"mkswap's part", page[1024:], 1024, true, true},
		{"zeros over it", make([]byte, swap.PageSize), 0, false, true},
		{"before it", page[:100], 0, false, true},
		{"after the page", page, swap.PageSize, false, true},
		{"half of it", page[swap.PageSize-5:], swap.PageSize - 5, false, false},
		{"the signature alone", []byte("SWAPSPACE2"), swap.PageSize - 10, true, true},
	} {
		w, k := swap.WritesSignature(c.data, c.off)
		if w != c.writes || k != c.known {
			t.Errorf("%s: WritesSignature = %v, %v; want %v, %v", c.name, w, k, c.writes, c.known)
		}
	}
}

// TestCheckPageSize: swapfiles are served exactly where the kernel's page is the header's.
func TestCheckPageSize(t *testing.T) {
	if err := swap.CheckPageSize(); (err == nil) != (os.Getpagesize() == swap.PageSize) {
		t.Errorf("page size %d: CheckPageSize says %v", os.Getpagesize(), err)
	}
}
