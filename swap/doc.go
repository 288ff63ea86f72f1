// Package swap will hold what makes a file on swapfs usable as swap: recognising swapfiles
// (the "SWAPSPACE2" signature at page size - 10, or swapfs mkswapfile), pinning their block
// maps in memory as immutable sorted arrays, the O_DIRECT I/O engine that serves swap reads
// and writes without allocating blocks, opening bbolt transactions or allocating heap, and
// attaching loop devices and calling swapon(2).
//
// Built so far: the swap header (header.go), parsed and written as mm/swapfile.c and mkswap
// do, as a pure function over the first page. The rest is still to come.
package swap
