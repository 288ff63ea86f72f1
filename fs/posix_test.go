package fs_test

import (
	"sort"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// posixSkips lists the go-fuse posixtest cases swapfs does not run, with the reason.
var posixSkips = map[string]string{
	"FcntlFlockLocksFile": "expects a process's second open of a file to conflict with its own F_SETLK " +
		"lock, which holds only for go-fuse's loopback (it maps POSIX locks to OFD locks); POSIX record " +
		"locks of one process never conflict, so ext4 fails this case too. swapfs leaves locks to the " +
		"kernel, which gives exactly ext4's semantics (TestLocks checks them)",
}

// posixMustRun lists cases that skip themselves when the filesystem lacks a feature, which
// swapfs has: a skip is a failure.
var posixMustRun = map[string]string{
	"Tmpfile":      "swapfs supports O_TMPFILE",
	"DirectIO":     "swapfs supports O_DIRECT",
	"FstatDeleted": "swapfs keeps an unlinked open file's attributes",
	"XAttr":        "swapfs supports xattrs",
	"XAttrLarge":   "swapfs supports values up to 64 KiB",
}

// TestPosix runs go-fuse's whole POSIX suite, each case on a fresh mount of a fresh store.
func TestPosix(t *testing.T) {
	requireFUSE(t)
	names := make([]string, 0, len(posixtest.All))
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if reason, ok := posixSkips[name]; ok {
				t.Skip(reason)
			}
			m := newMount(t)
			if why, ok := posixMustRun[name]; ok {
				t.Cleanup(func() {
					if t.Skipped() {
						t.Errorf("%s skipped itself, but %s", name, why)
					}
				})
			}
			posixtest.All[name](t, m.Dir)
		})
	}
}
