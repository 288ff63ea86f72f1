package swap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The kernel picks its swap-in readahead by whether a swap device is rotational: when any
// active area is, it reads the slots around a faulting one (swap_cluster_readahead), else
// it follows the faulting process's address space (swap_vma_readahead), and it lays slots
// out differently (SWP_SOLIDSTATE). A loop device takes the flag from the block device under
// its backing file, and assumes non-rotational when there is none, as for every file on
// FUSE. So a swapfile on swapfs would be treated as on an SSD even when its data volume
// sits on a disk: Rotational finds what the loop driver cannot see, and SetLoopRotational
// gives the loop device that flag before swapon(2) reads it.

// Rotational reports whether the storage under path is rotational: for a block device its
// own queue's flag, for a regular file that of the block device holding its filesystem. A
// filesystem without one (tmpfs, FUSE, an anonymous device) counts as non-rotational, as
// the loop driver counts it (loop_update_rotational).
func Rotational(path string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false, fmt.Errorf("rotational: %w", err)
	}
	dev := st.Dev
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		dev = st.Rdev
	}
	return devRotational(unix.Major(dev), unix.Minor(dev))
}

// devRotational reads queue/rotational of block device major:minor; a partition has no
// queue of its own and answers with its disk's.
func devRotational(major, minor uint32) (bool, error) {
	sys, err := filepath.EvalSymlinks(fmt.Sprintf("/sys/dev/block/%d:%d", major, minor))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // no block device: the loop driver's answer too
	}
	if err != nil {
		return false, fmt.Errorf("rotational of %d:%d: %w", major, minor, err)
	}
	for _, dir := range []string{sys, filepath.Dir(sys)} {
		v, err := readSysfs(filepath.Join(dir, "queue", "rotational"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("rotational of %d:%d: %w", major, minor, err)
		}
		return v == "1", nil
	}
	return false, fmt.Errorf("rotational of %d:%d: %s has no queue/rotational, nor has its parent", major, minor, sys)
}

// LoopRotational reports the rotational flag of a block device such as /dev/loopN.
func LoopRotational(dev string) (bool, error) {
	v, err := readSysfs(queueAttr(dev, "rotational"))
	if err != nil {
		return false, fmt.Errorf("rotational of %s: %w", dev, err)
	}
	return v == "1", nil
}

// SetLoopRotational sets the rotational flag of the loop device dev. swapon(2) reads it, so
// it must be set before; changing it under an active area changes nothing until the next
// swapon.
func SetLoopRotational(dev string, rotational bool) error {
	v := "0\n"
	if rotational {
		v = "1\n"
	}
	if err := os.WriteFile(queueAttr(dev, "rotational"), []byte(v), 0); err != nil {
		return fmt.Errorf("set rotational of %s: %w", dev, err)
	}
	return nil
}

func queueAttr(dev, name string) string {
	return filepath.Join("/sys/block", strings.TrimPrefix(dev, "/dev/"), "queue", name)
}
