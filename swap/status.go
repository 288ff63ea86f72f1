package swap

import "time"

// FileStatus is what "swapfs status" shows of one swapfile.
type FileStatus struct {
	Ino         uint64 `json:"ino"`
	Path        string `json:"path"`         // inside the mount, "/"-rooted; "" when it has no name
	FileBytes   int64  `json:"file_bytes"`   // st_size
	UsableBytes int64  `json:"usable_bytes"` // what the header's last_page lets the kernel use
	Extents     int    `json:"extents"`      // runs in the pinned block map
	Pinned      bool   `json:"pinned"`
	// Loop is the loop device backed by the file ("" when none); while the file is active
	// swap, the swap area as /proc/swaps names it, which may be a device stacked on that
	// loop device (device-mapper, another loop device).
	Loop      string `json:"loop,omitempty"`
	Active    bool   `json:"active"`     // a swap area is on the file (see Loop)
	Priority  int    `json:"priority"`   // from /proc/swaps; meaningful when Active
	UsedBytes int64  `json:"used_bytes"` // from /proc/swaps; meaningful when Active
	// VolumeRotational: the data volume is on rotational storage (see Rotational), so the
	// loop device should say so too; LoopRotational is what it says (when Loop is set).
	VolumeRotational bool `json:"volume_rotational"`
	LoopRotational   bool `json:"loop_rotational"`
	// RotationalErr says why either flag could not be read; they are false then.
	RotationalErr string `json:"rotational_error,omitempty"`
}

// Latency summarises request latencies, from a fixed set of histogram buckets (so the
// numbers are bucket upper bounds, not exact).
type Latency struct {
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// IOStats counts the requests served by the direct-I/O path since the mount.
type IOStats struct {
	Reads        uint64  `json:"reads"`
	Writes       uint64  `json:"writes"`
	ReadBytes    uint64  `json:"read_bytes"`
	WriteBytes   uint64  `json:"write_bytes"`
	Errors       uint64  `json:"errors"`
	Refused      uint64  `json:"refused"` // writes, truncates, ... refused because the file was active
	ReadLatency  Latency `json:"read_latency"`
	WriteLatency Latency `json:"write_latency"`
}

// Status is the swap side of one mount.
type Status struct {
	Files []FileStatus `json:"files"`
	IO    IOStats      `json:"io"`
}
