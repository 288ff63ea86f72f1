package main

import (
	"fmt"
	"os"

	"github.com/swapfs/swapfs/meta"
)

// fsckMain checks a store that is not mounted. Exit codes as fsck(8): 0 clean, 1 problems
// found (listed), 8 the check could not run, 16 usage.
func fsckMain(args []string) int {
	fset := newFlagSet("fsck")
	// fsck(8) passes these to checkers; the check only reads, so they change nothing.
	for _, name := range []string{"n", "a", "p", "y"} {
		fset.Bool(name, false, "accepted for fsck(8); swapfs fsck never changes the store")
	}
	pos, err := parseInterleaved(fset, args)
	if err != nil {
		return exitFsckUsage
	}
	if len(pos) != 1 {
		fmt.Fprintf(os.Stderr, "swapfs fsck: want one STORE directory, got %d arguments\n%s", len(pos), usage)
		return exitFsckUsage
	}
	store, err := absPath("STORE", pos[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "swapfs fsck: %v\n", err)
		return exitFsckUsage
	}
	if mnt, err := mountedOn(store); err == nil && mnt != "" {
		fmt.Fprintf(os.Stderr, "swapfs fsck: store %s is mounted on %s; unmount it first ('umount %s')\n", store, mnt, mnt)
		return exitFsckFailed
	}
	if err := checkNotInUse(store, false); err != nil {
		fmt.Fprintf(os.Stderr, "swapfs fsck: %v; unmount it first\n", err)
		return exitFsckFailed
	}
	problems, err := meta.Fsck(store)
	if err != nil {
		fmt.Fprintf(os.Stderr, "swapfs fsck: cannot check %s: %v\n", store, err)
		return exitFsckFailed
	}
	if len(problems) == 0 {
		fmt.Printf("swapfs fsck: %s: clean\n", store)
		return exitOK
	}
	for _, p := range problems {
		fmt.Printf("%s: %v\n", store, p)
	}
	fmt.Printf("swapfs fsck: %s: %d problems found\n", store, len(problems))
	return exitFsckErrors
}
