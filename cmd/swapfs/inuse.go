package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/swap"
)

// fsType is the type the kernel shows for a swapfs mount in the mount table.
const fsType = "fuse.swapfs"

// mountedOn returns where store is mounted; "" when it is not. A swapfs mount's source is its
// store's absolute path (fs.Options.FsName).
func mountedOn(store string) (string, error) {
	mounts, err := swap.Mounts()
	if err != nil {
		return "", err
	}
	for _, m := range mounts {
		if m.FSType == fsType && filepath.Clean(m.Source) == store {
			return m.Mountpoint, nil
		}
	}
	return "", nil
}

// errInUse says that another process holds the store's lock: a mount, or a running fsck.
var errInUse = errors.New("already mounted / in use by another swapfs")

// closingWait is how long a locked store that is mounted nowhere is waited for. Most likely
// the daemon of a mount just unmounted holds it: umount(2) returns before that daemon has
// committed its last changes and closed the store, so "umount X && mount X" (or fsck) would
// otherwise fail at random.
const closingWait = 10 * time.Second

// checkNotInUse fails with errInUse when another process holds the lock on STORE/meta.db that
// meta.Open takes (bbolt takes flock(2) on the database: exclusive to write, shared to
// read). It only probes: the lock is released at once. A missing meta.db is not in use.
func checkNotInUse(store string, exclusive bool) error {
	path := filepath.Join(store, "meta.db")
	f, err := os.Open(path)
	if err != nil {
		return nil // Open reports a missing or unreadable store better
	}
	defer f.Close()
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	where := ""
	for deadline := time.Now().Add(closingWait); ; time.Sleep(50 * time.Millisecond) {
		err = unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			unix.Flock(int(f.Fd()), unix.LOCK_UN)
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil
		}
		if mnt, _ := mountedOn(store); mnt != "" {
			where = " on " + mnt
			break
		}
		if time.Now().After(deadline) {
			break
		}
	}
	if pid := lockHolder(f); pid != "" {
		where += " (process " + pid + ")"
	}
	return fmt.Errorf("store %s is %w%s", store, errInUse, where)
}

// lockHolder finds the process holding a flock on f in /proc/locks (proc(5)), "" if unknown.
// Lines read "1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF": pid, then
// major:minor:inode.
func lockHolder(f *os.File) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return ""
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(locks), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 6 && fields[1] == "FLOCK" && fields[5] == want {
			return fields[4]
		}
	}
	return ""
}
