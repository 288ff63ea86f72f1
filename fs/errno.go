package fs

import (
	"errors"
	"syscall"
)

// toErrno turns a store error into the errno the kernel gets. The store returns POSIX
// outcomes as bare syscall.Errno values; a storage failure may wrap one (an EIO from pread),
// which errors.As finds. Anything else is a storage failure without an errno: EIO.
//
// go-fuse's fs.ToErrno is not used: it does not unwrap, and turns a wrapped ENOENT into ENOSYS.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) && e != 0 {
		return e
	}
	return syscall.EIO
}

// errno is toErrno for the operation op on n: an error that is not a bare Errno is a storage
// failure, which is logged with the operation and inode before the kernel gets its errno.
func (n *Node) errno(op string, err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if _, bare := err.(syscall.Errno); !bare {
		n.fs.log.Error("storage failure", "op", op, "ino", n.ino, "err", err)
	}
	return toErrno(err)
}
