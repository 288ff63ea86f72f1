package fs

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
)

func TestToErrno(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want syscall.Errno
	}{
		{"nil", nil, 0},
		{"bare ENOENT", syscall.ENOENT, syscall.ENOENT},
		{"bare EEXIST", syscall.EEXIST, syscall.EEXIST},
		{"bare ENOTEMPTY", syscall.ENOTEMPTY, syscall.ENOTEMPTY},
		{"bare ENOSPC", syscall.ENOSPC, syscall.ENOSPC},
		{"bare EROFS", syscall.EROFS, syscall.EROFS},
		{"wrapped ENOENT stays ENOENT", fmt.Errorf("dirent 1/%q: %w", "x", syscall.ENOENT), syscall.ENOENT},
		{"wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", syscall.EIO)), syscall.EIO},
		{"joined", errors.Join(errors.New("x"), syscall.ENOSPC), syscall.ENOSPC},
		{"plain error", errors.New("bbolt: page 12 corrupt"), syscall.EIO},
		{"io.EOF", io.EOF, syscall.EIO},
		{"wrapped plain error", fmt.Errorf("commit: %w", errors.New("disk gone")), syscall.EIO},
		{"zero Errno is not success", fmt.Errorf("odd: %w", syscall.Errno(0)), syscall.EIO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := toErrno(tt.err); got != tt.want {
				t.Errorf("toErrno(%v) = %v (%d), want %v (%d)", tt.err, got, int(got), tt.want, int(tt.want))
			}
		})
	}
}
