package swap

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Filesystems a data volume file may live on that cannot take swap writes safely (statfs
// f_type values, include/uapi/linux/magic.h and the filesystems' own).
const (
	tmpfsMagic   = 0x01021994
	ramfsMagic   = 0x858458f6
	nfsMagic     = 0x6969
	smbMagic     = 0xfe534d42
	cifsMagic    = 0xff534d42
	cephMagic    = 0x00c36400
	fuseMagic    = 0x65735546
	overlayMagic = 0x794c7630
	btrfsMagic   = 0x9123683e
	zfsMagic     = 0x2fc12fc1

	fsNoCOWFlag = 0x00800000 // FS_NOCOW_FL, include/uapi/linux/fs.h; x/sys does not name it
)

// VolumeRisk says why swap writes to the data volume at path may fail or deadlock under
// memory pressure, or "" when its storage is fit. A swap write must not need memory or
// another daemon, and must not allocate: that is why the kernel refuses swapfiles on such
// filesystems itself (btrfs_swap_activate, and no swap_activate at all for most). A block
// device is fit; so is a file on ext4, XFS and the like, which swapfs only overwrites.
func VolumeRisk(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", fmt.Errorf("data volume %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		return "", nil
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return "", fmt.Errorf("data volume %s: %w", path, err)
	}
	switch uint32(fs.Type) {
	case tmpfsMagic, ramfsMagic:
		return "the data volume is in memory (tmpfs): swapping to it frees no memory", nil
	case nfsMagic, smbMagic, cifsMagic, cephMagic:
		return "the data volume is on a network filesystem: a swap write may need memory and the network", nil
	case fuseMagic:
		return "the data volume is on another FUSE filesystem: a swap write waits for that daemon", nil
	case overlayMagic:
		return "the data volume is on overlayfs: a write may copy the file up first", nil
	case zfsMagic:
		return "the data volume is on ZFS, which is copy-on-write: every swap write allocates", nil
	case btrfsMagic:
		if cow, err := copyOnWrite(path); err != nil || cow {
			return "the data volume is a copy-on-write file on btrfs: every swap write allocates " +
				"(make the store on an empty directory with 'chattr +C', or on a block device)", err
		}
	}
	return "", nil
}

// copyOnWrite reports whether a btrfs file lacks the NOCOW flag (chattr +C).
func copyOnWrite(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return true, err
	}
	defer f.Close()
	flags, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return true, fmt.Errorf("data volume %s: FS_IOC_GETFLAGS: %w", path, err)
	}
	return flags&fsNoCOWFlag == 0, nil
}
