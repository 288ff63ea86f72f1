// Command swapfs makes, mounts and checks swapfs stores.
//
//	swapfs mkfs [--size SIZE | --device DEV] STORE
//	swapfs mount [-f] [-o OPTS] STORE MOUNTPOINT
//	swapfs fsck STORE
//	swapfs mkswapfile --size SIZE [--priority N] [--label LABEL] PATH
//	swapfs swapon [-p PRIO] [--discard] PATH
//	swapfs swapoff PATH
//	swapfs status [--json] [MOUNTPOINT]
//
// It is also a mount(8) helper: called as mount.swapfs or mount.fuse.swapfs (mount(8) looks
// for /sbin/mount.TYPE), or as "swapfs STORE DIR -o OPTS" (how mount.fuse(8) calls a FUSE
// filesystem's binary), it takes mount(8)'s argv: SRC DIR [-sfnv] [-o OPTS] [-t TYPE].
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Exit codes. mount follows mount(8) ("mount failure" is 32), fsck follows fsck(8).
const (
	exitOK         = 0
	exitFailure    = 1
	exitUsage      = 2
	exitMountFail  = 32
	exitFsckErrors = 1
	exitFsckFailed = 8
	exitFsckUsage  = 16
)

const usage = `usage:
  swapfs mkfs [--size SIZE | --device DEV [--force]] [--inodes N] STORE
  swapfs mount [-f] [-o OPTS] STORE MOUNTPOINT
  swapfs fsck STORE
  swapfs mkswapfile --size SIZE [--priority N] [--label LABEL] PATH
  swapfs swapon [-p PRIO] [--discard] PATH   attach a loop device with direct I/O and swapon it
  swapfs swapoff PATH
  swapfs status [--json] [MOUNTPOINT]   swapfiles, swap I/O and daemon protections of the mounts
  swapfs help

  mount.swapfs STORE MOUNTPOINT [-sfnv] [-o OPTS]     (as called by mount(8))

SIZE takes K, M, G, T suffixes (powers of 1024). STORE is a directory: it holds meta.db and,
unless --device is given, the data file "data". Mounting a missing or empty STORE creates a
store. Unmount with "umount MOUNTPOINT" (or SIGTERM to the daemon).

Mount options (-o, comma-separated):
  debug              log every FUSE request
  commit=SECONDS     longest time a metadata change waits before it is committed
  ro, rw             read-only or read-write mount
  noatime, nodiratime, relatime, strictatime, nosuid, suid, nodev, dev, noexec, exec,
  sync, async, dirsync
                     passed to the kernel
  defaults, auto, noauto, user, nouser, users, owner, group, _netdev, nofail,
  x-*, comment=*     fstab options for mount(8); accepted and ignored
  swap=PATH[:PRIO]   once mounted, swapon PATH (relative to the mountpoint), as
                     "swapfs swapon" does; repeatable
`

// errUsage marks an error in how the command was called; it prints the usage.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args))
}

func run(args []string) int {
	name := filepath.Base(args[0])
	if strings.HasPrefix(name, "mount.") {
		return helperMain(name, args[1:])
	}
	if len(args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		return exitUsage
	}
	switch args[1] {
	case "mkfs":
		return mkfsMain(args[2:])
	case "mount":
		return mountMain(args[2:])
	case "fsck":
		return fsckMain(args[2:])
	case "status":
		return statusMain(args[2:])
	case "mkswapfile":
		return mkswapfileMain(args[2:])
	case "swapon":
		return swaponMain(args[2:])
	case "swapoff":
		return swapoffMain(args[2:])
	case "help", "-h", "-help", "--help":
		fmt.Print(usage)
		return exitOK
	}
	if len(args) >= 3 && looksLikePath(args[1]) {
		// "swapfs STORE DIR -o opts", as mount.fuse(8) calls a FUSE filesystem.
		return helperMain(name, args[1:])
	}
	fmt.Fprintf(os.Stderr, "swapfs: unknown command %q\n%s", args[1], usage)
	return exitUsage
}

// looksLikePath tells the mount helper form "swapfs STORE DIR" from a mistyped command:
// "swapfs mkfss /srv/store" must not mount a new store named mkfss on /srv/store.
func looksLikePath(arg string) bool {
	if strings.HasPrefix(arg, "-") {
		return false
	}
	if strings.Contains(arg, "/") {
		return true
	}
	_, err := os.Stat(arg)
	return err == nil
}

// parseInterleaved parses flags that may come before, between or after the positional
// arguments, as mount(8) and most users write them. The flag package alone stops at the first
// positional argument.
func parseInterleaved(fset *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fset.Parse(args); err != nil {
			return nil, err
		}
		args = fset.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// newFlagSet returns a flag set that reports errors to run instead of exiting.
func newFlagSet(name string) *flag.FlagSet {
	fset := flag.NewFlagSet(name, flag.ContinueOnError)
	fset.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	return fset
}

// absPath makes path absolute so that it still means the same after the daemon leaves the
// working directory.
func absPath(what, path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%s is empty", what)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", what, path, err)
	}
	return abs, nil
}
