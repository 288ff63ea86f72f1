package meta

import (
	"bytes"
	"testing"
	"time"
)

func FuzzDecodeInode(f *testing.F) {
	now := time.Unix(1700000000, 123)
	f.Add(encodeInode(&inodeRec{Inode: Inode{Mode: 0o100644, Nlink: 1, Size: 10, Atime: now, Mtime: now, Ctime: now}}))
	f.Add(encodeInode(&inodeRec{Inode: Inode{Mode: 0o40755, Nlink: 2, Parent: 1}, dirSeq: 9}))
	f.Add([]byte{})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeInode(7, v)
		if err != nil {
			return
		}
		again, err := decodeInode(7, encodeInode(r))
		if err != nil || *again != *r {
			t.Fatalf("round trip changed the inode: %+v -> %+v (%v)", r, again, err)
		}
	})
}

func FuzzDecodeDirent(f *testing.F) {
	f.Add(encodeDirent(direntRec{ino: 5, typ: 8, cookie: 3}))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		d, err := decodeDirent(v)
		if err != nil {
			return
		}
		if again, err := decodeDirent(encodeDirent(d)); err != nil || again != d {
			t.Fatalf("round trip: %+v -> %+v (%v)", d, again, err)
		}
	})
}

func FuzzDecodeBytes(f *testing.F) {
	f.Add(encodeBytes([]byte("name")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		b, err := decodeBytes(v, "fuzz")
		if err != nil {
			return
		}
		if !bytes.Equal(encodeBytes(b), v) {
			t.Fatalf("round trip of %x", v)
		}
	})
}

func FuzzParseLabel(f *testing.F) {
	f.Add(encodeLabel([]byte("0123456789abcdef"), 100))
	f.Add(volumeMagic)
	f.Fuzz(func(t *testing.T, label []byte) {
		uuid, blocks, err := parseLabel(label)
		if err != nil {
			return
		}
		u2, b2, err := parseLabel(encodeLabel(uuid, blocks))
		if err != nil || !bytes.Equal(u2, uuid) || b2 != blocks {
			t.Fatalf("round trip of label: %x %d -> %x %d (%v)", uuid, blocks, u2, b2, err)
		}
	})
}
