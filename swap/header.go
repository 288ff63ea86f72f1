package swap

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
)

// PageSize is the page size swap headers are read and written with. swapfs serves x86-64 and
// arm64 with 4 KiB pages; a header made for another page size has its signature elsewhere
// and is refused as having none.
const PageSize = 4096

// CheckPageSize says why swapfiles cannot be served on this machine, or nil: the kernel
// looks for the signature at its own page size, so on a kernel with 16 or 64 KiB pages mkswap
// puts it where swapfs never sees it, and the file would be swapped to unpinned.
func CheckPageSize() error {
	if p := os.Getpagesize(); p != PageSize {
		return fmt.Errorf("this kernel's pages are %d bytes; swapfs serves swapfiles only on kernels with %d-byte pages", p, PageSize)
	}
	return nil
}

// The layout of union swap_header in include/linux/swap.h: 1024 bytes of boot sector, the
// info block, and the signature in the last ten bytes of the first page.
const (
	infoOffset    = 1024
	signature     = "SWAPSPACE2"
	signatureOld  = "SWAP-SPACE"
	maxBadPages   = (PageSize - 10 - infoOffset - 4*3 - 16 - 16 - 117*4) / 4 // MAX_SWAP_BADPAGES: 637
	labelLen      = 16
	headerVersion = 1
)

// Header is what the first page of a swap area says about it.
type Header struct {
	// LastPage is the last usable page: the area is pages 1..LastPage (page 0 is the header),
	// whatever the file's size.
	LastPage uint32
	UUID     [16]byte
	Label    string
}

// UsableBytes is how much of the file the kernel will swap to: through LastPage, not the
// file's size.
func (h Header) UsableBytes() int64 { return (int64(h.LastPage) + 1) * PageSize }

// IsSwapHeader reports whether page holds the swap signature, as mkswap leaves it. It is the
// cheap test run on every write that touches a file's first page.
func IsSwapHeader(page []byte) bool {
	return len(page) >= PageSize && string(page[PageSize-len(signature):PageSize]) == signature
}

// ParseHeader checks page (the first page of a file of fileSize bytes) the way
// mm/swapfile.c's read_swap_header does, and stricter where swapfs must be: bad pages are
// refused, since a swapfile on swapfs has no bad blocks to skip. Every refusal wraps EINVAL
// and says what is wrong.
func ParseHeader(page []byte, fileSize int64) (Header, error) {
	if len(page) < PageSize {
		return Header{}, invalid("header is %d bytes, shorter than a %d-byte page", len(page), PageSize)
	}
	if fileSize < PageSize {
		return Header{}, invalid("the file is %d bytes, shorter than the %d-byte page that holds a swap header (cut short?)", fileSize, PageSize)
	}
	switch string(page[PageSize-len(signature) : PageSize]) {
	case signature:
	case signatureOld:
		return Header{}, invalid("old-style (version 0) swap area; run mkswap again")
	default:
		return Header{}, invalid("no swap signature %q at byte %d; run mkswap", signature, PageSize-len(signature))
	}
	le := binary.LittleEndian
	info := page[infoOffset:]
	version, lastPage, nrBad := le.Uint32(info), le.Uint32(info[4:]), le.Uint32(info[8:])
	switch {
	case version != headerVersion && swab32(version) == headerVersion:
		return Header{}, invalid("swap area has the other byte order (made on another architecture)")
	case version != headerVersion:
		return Header{}, invalid("swap header version %d, only version %d exists", version, headerVersion)
	case lastPage == 0:
		return Header{}, invalid("swap area is empty (last_page 0)")
	case nrBad > maxBadPages:
		return Header{}, invalid("swap header lists %d bad pages, more than a header can hold", nrBad)
	case nrBad != 0:
		return Header{}, invalid("swap header lists %d bad pages; a swapfile on swapfs has none: run mkswap without -c", nrBad)
	case int64(lastPage)+1 > fileSize/PageSize:
		return Header{}, invalid("swap header says %d pages but the file holds %d: the file was shrunk after mkswap",
			int64(lastPage)+1, fileSize/PageSize)
	}
	h := Header{LastPage: lastPage}
	copy(h.UUID[:], info[12:28])
	label := info[28 : 28+labelLen]
	if i := bytes.IndexByte(label, 0); i >= 0 {
		label = label[:i]
	}
	h.Label = string(label)
	return h, nil
}

// Encode returns the first page of a swap area with this header, as mkswap writes it.
func (h Header) Encode() ([]byte, error) {
	if len(h.Label) > labelLen {
		return nil, fmt.Errorf("swap label %q is longer than %d bytes", h.Label, labelLen)
	}
	if h.LastPage == 0 {
		return nil, fmt.Errorf("a swap area needs at least one page after the header")
	}
	page := make([]byte, PageSize)
	info := page[infoOffset:]
	le := binary.LittleEndian
	le.PutUint32(info, headerVersion)
	le.PutUint32(info[4:], h.LastPage)
	copy(info[12:28], h.UUID[:])
	copy(info[28:28+labelLen], h.Label)
	copy(page[PageSize-len(signature):], signature)
	return page, nil
}

func swab32(v uint32) uint32 {
	return v>>24 | v>>8&0xff00 | v<<8&0xff0000 | v<<24
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("invalid swap header: %s: %w", fmt.Sprintf(format, args...), syscall.EINVAL)
}

// WritesSignature tells, for data about to be written at file offset off, whether it puts the
// swap signature in place. known is false when data covers the signature's bytes only in
// part, so that the page as a whole has to be looked at.
func WritesSignature(data []byte, off int64) (writes, known bool) {
	lo := int64(PageSize - len(signature))
	if off >= PageSize || off+int64(len(data)) <= lo {
		return false, true
	}
	if off > lo || off+int64(len(data)) < PageSize {
		return false, false
	}
	return string(data[lo-off:PageSize-off]) == signature, true
}
