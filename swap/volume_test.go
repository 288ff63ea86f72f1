package swap_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/swap"
)

// TestVolumeRisk: a data volume in memory is flagged; one on this machine's disk filesystem
// (ext4 here) and a block device are not.
func TestVolumeRisk(t *testing.T) {
	var fs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &fs); err != nil || fs.Type != unix.TMPFS_MAGIC {
		t.Skipf("no tmpfs on /dev/shm to put a data volume in (%v)", err)
	}
	shm, err := os.CreateTemp("/dev/shm", "swapfs-volume-")
	if err != nil {
		t.Fatal(err)
	}
	shm.Close()
	t.Cleanup(func() { os.Remove(shm.Name()) })
	if risk, err := swap.VolumeRisk(shm.Name()); err != nil || !strings.Contains(risk, "tmpfs") {
		t.Errorf("a volume on tmpfs: %q, %v; want it flagged", risk, err)
	}

	disk := filepath.Join(t.TempDir(), "volume")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Statfs(disk, &fs); err != nil || fs.Type != unix.EXT4_SUPER_MAGIC {
		t.Logf("the temporary directory is not on ext4 (%v): no check of a volume on disk", err)
	} else if risk, err := swap.VolumeRisk(disk); err != nil || risk != "" {
		t.Errorf("a volume on ext4: %q, %v; want none", risk, err)
	}
	for _, dev := range []string{"/dev/loop0", "/dev/sda", "/dev/vda"} {
		if st, err := os.Stat(dev); err == nil && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0 {
			if risk, err := swap.VolumeRisk(dev); err != nil || risk != "" {
				t.Errorf("block device %s: %q, %v; want none", dev, risk, err)
			}
			break
		}
	}
	if _, err := swap.VolumeRisk(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing volume: no error")
	}
}
