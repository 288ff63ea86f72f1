package swap

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// swapon(2) flags, from include/uapi/linux/swap.h; x/sys/unix does not carry them.
const (
	swapFlagPrefer   = 0x8000  // SWAP_FLAG_PREFER: the priority bits are set
	swapFlagPrioMask = 0x7fff  // SWAP_FLAG_PRIO_MASK
	swapFlagDiscard  = 0x10000 // SWAP_FLAG_DISCARD: alone, means discard once at swapon and freed pages as they go
)

// SwaponOptions for Swapon.
type SwaponOptions struct {
	Priority    int // 0..32767, higher is used first; only with HasPriority
	HasPriority bool
	Discard     bool
}

// Swapon calls swapon(2) on dev. Without HasPriority the kernel picks a negative priority
// below every area that has one, as swapon(8) without -p does.
func Swapon(dev string, opts SwaponOptions) error {
	var flags uintptr
	if opts.HasPriority {
		// The kernel would silently keep the low 15 bits.
		if opts.Priority < 0 || opts.Priority > swapFlagPrioMask {
			return fmt.Errorf("swapon %s: priority %d is outside 0..%d: %w", dev, opts.Priority, swapFlagPrioMask, unix.EINVAL)
		}
		flags |= swapFlagPrefer | uintptr(opts.Priority)
	}
	if opts.Discard {
		flags |= swapFlagDiscard
	}
	if err := swapCall(unix.SYS_SWAPON, dev, flags); err != nil {
		return fmt.Errorf("swapon %s: %s%w", dev, swaponHint(err), err)
	}
	return nil
}

// Swapoff calls swapoff(2). It takes as long as reading back everything swapped out to dev,
// and fails with ENOMEM when that does not fit in memory.
func Swapoff(dev string) error {
	if err := swapCall(unix.SYS_SWAPOFF, dev, 0); err != nil {
		hint := ""
		if errors.Is(err, unix.EINVAL) {
			hint = "not an active swap area: "
		}
		return fmt.Errorf("swapoff %s: %s%w", dev, hint, err)
	}
	return nil
}

// swapCall makes the swapon or swapoff system call. Both return EINTR when a signal arrives
// (try_to_unuse in mm/swapfile.c gives up on signal_pending), and a Go process gets signals it
// never asked for, so EINTR is retried.
func swapCall(trap uintptr, path string, flags uintptr) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return err
	}
	for {
		_, _, errno := unix.Syscall(trap, uintptr(unsafe.Pointer(p)), flags, 0)
		if errno != unix.EINTR {
			if errno != 0 {
				return errno
			}
			return nil
		}
	}
}

func swaponHint(err error) string {
	switch {
	case errors.Is(err, unix.EINVAL):
		return "no valid swap header (run mkswap) or a bad flag: "
	case errors.Is(err, unix.EBUSY):
		return "already in use (active swap, or mounted): "
	}
	return ""
}
