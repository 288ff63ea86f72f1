package swap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// statBlock stats path and returns its device number when it is a block device node.
func statBlock(path string) (rdev uint64, isBlock bool, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, false, err
	}
	return st.Rdev, st.Mode&unix.S_IFMT == unix.S_IFBLK, nil
}

// blockNodeUnderDev returns the device number of path when it is a block device node under
// /dev. Nothing else is stat'ed: a path elsewhere may be on a filesystem whose daemon must
// not be called (a FUSE mount, this one included). err: a path under /dev that does not
// resolve.
func blockNodeUnderDev(path string) (rdev uint64, ok bool, err error) {
	if !strings.HasPrefix(path, "/dev/") {
		return 0, false, nil
	}
	return statBlock(path)
}

// BlockSysfs returns the sysfs directory of block device rdev, and whether it is a
// partition (whose disk is the parent directory). ErrNotExist: no such device here.
func BlockSysfs(rdev uint64) (dir string, partition bool, err error) {
	dir, err = filepath.EvalSymlinks(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(rdev), unix.Minor(rdev)))
	if err != nil {
		return "", false, err
	}
	_, err = os.Stat(filepath.Join(dir, "partition"))
	return dir, err == nil, nil
}

// IsLoopDevice reports whether path is a loop device node (a whole device or a partition).
func IsLoopDevice(path string) bool {
	rdev, isBlock, err := statBlock(path)
	return err == nil && isBlock && unix.Major(rdev) == loopMajor
}
