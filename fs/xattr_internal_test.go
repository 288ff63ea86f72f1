package fs

import (
	"syscall"
	"testing"
)

func TestACLMode(t *testing.T) {
	entry := func(tag, perm uint16) []byte {
		return []byte{byte(tag), 0, byte(perm), 0, 0xff, 0xff, 0xff, 0xff}
	}
	cat := func(parts ...[]byte) []byte {
		b := []byte{2, 0, 0, 0}
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
		want uint32
		err  syscall.Errno
	}{
		{"minimal", cat(entry(1, 6), entry(4, 4), entry(0x20, 0)), 0o640, 0},
		{"any order", cat(entry(0x20, 1), entry(1, 7), entry(4, 5)), 0o751, 0},
		{"all bits", cat(entry(1, 7), entry(4, 7), entry(0x20, 7)), 0o777, 0},
		{"named user", cat(entry(1, 7), entry(2, 7), entry(4, 5), entry(0x10, 7), entry(0x20, 0)), 0, syscall.EOPNOTSUPP},
		{"mask", cat(entry(1, 7), entry(4, 5), entry(0x10, 5), entry(0x20, 0)), 0, syscall.EOPNOTSUPP},
		{"missing other", cat(entry(1, 7), entry(4, 5)), 0, syscall.EINVAL},
		{"duplicate", cat(entry(1, 7), entry(1, 7), entry(4, 5), entry(0x20, 0)), 0, syscall.EINVAL},
		{"bad perm", cat(entry(1, 8), entry(4, 5), entry(0x20, 0)), 0, syscall.EINVAL},
		{"bad version", append([]byte{1, 0, 0, 0}, cat(entry(1, 7), entry(4, 5), entry(0x20, 0))[4:]...), 0, syscall.EINVAL},
		{"ragged", cat(entry(1, 7), entry(4, 5), entry(0x20, 0))[:27], 0, syscall.EINVAL},
		{"empty", nil, 0, syscall.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := aclMode(tt.data)
			if got != tt.want || err != tt.err {
				t.Errorf("aclMode = %o, %v; want %o, %v", got, err, tt.want, tt.err)
			}
		})
	}
}
