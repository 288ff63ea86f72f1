// Package swap holds what makes a file on swapfs usable as swap, below the FUSE layer:
//
//   - header.go: the swap header, parsed and written as mm/swapfile.c and mkswap do, as a
//     pure function over the first page (fuzzed).
//   - pin.go: a swapfile's pinned block map, an immutable sorted array of extents covering
//     every block of the file with written blocks. It is replaced whole, never edited.
//   - engine.go: the direct-I/O engine. Reads and writes of pinned files go from the request
//     buffer to the data volume through its own O_DIRECT descriptor, split at extent
//     boundaries, through buffers allocated and aligned once. Nothing on that path
//     allocates blocks, opens a metadata transaction or allocates heap (tests assert
//     0 allocs/op), and nothing changes a file's size or times.
//   - kthread.go: telling the loop driver's requests (kernel threads) from processes'.
//   - loop.go, swapon.go, procswaps.go: loop devices attached with LOOP_CONFIGURE and direct
//     I/O, swapon(2)/swapoff(2), and /proc/swaps, which says which swapfiles are active.
//   - mountinfo.go: the one reader of the mount table (/proc/self/mountinfo) for all of
//     swapfs, a pure parser (fuzzed) under Mounts.
//
// Invariant: while a file is pinned its blocks belong to it and do not move; whoever unpins
// it (fs) first waits for the engine's I/O on it to end.
package swap
