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
// own queue's flag, for a regular file that of the block device holding its filesystem.
// Filesystems that give their files an anonymous device number (btrfs, bcachefs, ZFS) are
// looked up by their mount's source device, which is where a native swapfile on them
// would swap. A filesystem with no block device at all (tmpfs, FUSE, NFS) counts as
// non-rotational, as the loop driver counts it (loop_update_rotational).
func Rotational(path string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false, fmt.Errorf("rotational: %w", err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		return devRotational(unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	major, minor := unix.Major(st.Dev), unix.Minor(st.Dev)
	if major != 0 {
		return devRotational(major, minor)
	}
	mounts, err := Mounts()
	if err != nil {
		return false, fmt.Errorf("rotational of %s: %w", path, err)
	}
	mnt, _ := MountOfDevice(mounts, major, minor)
	rdev, ok, err := blockNodeUnderDev(mnt.Source)
	if err != nil || !ok {
		return false, nil // no block device: the loop driver's answer too
	}
	return devRotational(unix.Major(rdev), unix.Minor(rdev))
}

// devRotational reads queue/rotational of block device major:minor; a partition has no
// queue of its own and answers with its disk's.
func devRotational(major, minor uint32) (bool, error) {
	dir, partition, err := BlockSysfs(unix.Mkdev(major, minor))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // no block device: the loop driver's answer too
	}
	if err != nil {
		return false, fmt.Errorf("rotational of %d:%d: %w", major, minor, err)
	}
	if partition {
		dir = filepath.Dir(dir)
	}
	v, err := readSysfs(filepath.Join(dir, "queue", "rotational"))
	if err != nil {
		return false, fmt.Errorf("rotational of %d:%d: %w", major, minor, err)
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
	attr := filepath.Join("/sys/block", strings.TrimPrefix(dev, "/dev/"), "queue/rotational")
	if err := os.WriteFile(attr, []byte(v), 0); err != nil {
		return fmt.Errorf("set rotational of %s: %w", dev, err)
	}
	return nil
}
