// Package swap will hold what makes a file on swapfs usable as swap: recognising swapfiles
// (the "SWAPSPACE2" signature at page size - 10, or swapfs mkswapfile), pinning their block
// maps in memory as immutable sorted arrays, the O_DIRECT I/O engine that serves swap reads
// and writes without allocating blocks, opening bbolt transactions or allocating heap, and
// attaching loop devices and calling swapon(2).
//
// Nothing of that is built yet; this package exists so the layering cmd -> fs -> swap -> meta
// is in place from the start.
package swap
