package swaptest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Report is the JSON line cmd/swapload prints last on stdout. Swap counters are
// system-wide (/proc/vmstat): they include other processes' swapping. TouchesTimed counts
// every timed first touch of a page in a verify pass; only those slower than
// FaultThresholdUs are faults, and the Fault* latencies are over those alone (a faster touch
// found the page resident or in the swap cache). Cgroup fields are -1 when the cgroup
// cannot be read.
type Report struct {
	SizeMiB          int      `json:"size_mib"`
	Pattern          string   `json:"pattern"`
	Rounds           int      `json:"rounds"`
	Mismatches       int64    `json:"mismatches"`
	WallS            float64  `json:"wall_s"`
	PswpinPages      uint64   `json:"pswpin_pages"`
	PswpoutPages     uint64   `json:"pswpout_pages"`
	SwapinMiBs       float64  `json:"swapin_mib_s"`
	SwapoutMiBs      float64  `json:"swapout_mib_s"`
	FaultP50us       float64  `json:"fault_p50_us"`
	FaultP99us       float64  `json:"fault_p99_us"`
	FaultMaxus       float64  `json:"fault_max_us"`
	TouchesTimed     int64    `json:"touches_timed"`
	Faults           int      `json:"faults"`
	FaultThresholdUs float64  `json:"fault_threshold_us"`
	Cgroup           string   `json:"cgroup,omitempty"`
	CgroupSwapMaxMiB float64  `json:"cgroup_swap_max_mib"`
	CgroupPeakMiB    float64  `json:"cgroup_peak_mib"`
	FirstMismatches  []string `json:"first_mismatches,omitempty"`
	Error            string   `json:"error,omitempty"`
}

// ParseReport decodes the last line of swapload's stdout.
func ParseReport(stdout string) (Report, error) {
	var rep Report
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if !strings.HasPrefix(last, "{") {
		return rep, errors.New("no JSON report on the last line of swapload's stdout")
	}
	if err := json.Unmarshal([]byte(last), &rep); err != nil {
		return rep, fmt.Errorf("swapload's report: %w", err)
	}
	return rep, nil
}
