// Package integration tests the swapfs binary the way an administrator uses it: it builds
// cmd/swapfs, makes stores, mounts them for real with "swapfs mount" (or mount(8)), works on
// the mounts with ordinary system calls, unmounts with umount(8) and runs "swapfs fsck".
//
// The tests need root and /dev/fuse; without them they skip and say why. They only touch
// mounts, loop devices and processes they created themselves, clean them up even when they
// fail, and TestMain fails the run if any of them is left over.
package integration
