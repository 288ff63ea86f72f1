package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/swapfs/swapfs/swap"
)

// statusMain is "swapfs status [--json] [MOUNTPOINT]": what each daemon says of its swapfiles,
// its swap I/O and its protections. With --json it prints the replies as they came: one
// object for a MOUNTPOINT, a list of them for every mount.
func statusMain(args []string) int {
	fset := newFlagSet("status")
	asJSON := fset.Bool("json", false, "print the daemons' replies as JSON")
	pos, err := parseInterleaved(fset, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) > 1 {
		fmt.Fprintf(os.Stderr, "swapfs status: want at most one MOUNTPOINT, got %d arguments\n%s", len(pos), usage)
		return exitUsage
	}
	var mounts []string
	if len(pos) == 1 {
		mnt, err := findSwapfsMount(pos[0])
		if err != nil {
			fmt.Fprintf(os.Stderr, "swapfs status: %v\n", err)
			return exitFailure
		}
		mounts = []string{mnt}
	} else if mounts, err = swapfsMountpoints(); err != nil {
		fmt.Fprintf(os.Stderr, "swapfs status: %v\n", err)
		return exitFailure
	}
	var replies []controlResponse
	failed := 0
	for _, mnt := range mounts {
		resp, err := callDaemon(mnt, controlRequest{Op: "status"})
		if err == nil && resp.Error != "" {
			err = fmt.Errorf("the swapfs daemon of %s refused the status request: %s", mnt, resp.Error)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "swapfs status: %v\n", err)
			failed++
			continue
		}
		replies = append(replies, resp)
	}
	if err := printStatus(os.Stdout, replies, *asJSON, len(pos) == 1); err != nil {
		fmt.Fprintf(os.Stderr, "swapfs status: %v\n", err)
		return exitFailure
	}
	if failed > 0 {
		return exitFailure
	}
	return exitOK
}

func printStatus(w io.Writer, replies []controlResponse, asJSON, one bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if one {
			if len(replies) == 0 {
				return nil
			}
			return enc.Encode(replies[0])
		}
		if replies == nil {
			replies = []controlResponse{}
		}
		return enc.Encode(replies)
	}
	if len(replies) == 0 && !one {
		_, err := fmt.Fprintln(w, "no swapfs mounts")
		return err
	}
	for i, r := range replies {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := renderStatus(w, r); err != nil {
			return err
		}
	}
	return nil
}

// swapfsMountpoints lists the mountpoints of the swapfs mounts, once each.
func swapfsMountpoints() ([]string, error) {
	mounts, err := swap.Mounts()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range mounts {
		if m.FSType == fsType && !slices.Contains(out, m.Mountpoint) {
			out = append(out, m.Mountpoint)
		}
	}
	return out, nil
}

// findSwapfsMount returns the swapfs mountpoint that arg names. The path is compared as
// given before symlinks are resolved: resolving stats the mount's root, which waits on its
// daemon, and a stuck daemon is what status must still report.
func findSwapfsMount(arg string) (string, error) {
	abs, err := absPath("MOUNTPOINT", arg)
	if err != nil {
		return "", err
	}
	mounts, err := swapfsMountpoints()
	if err != nil {
		return "", err
	}
	for _, m := range mounts {
		if m == abs {
			return m, nil
		}
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s does not exist", abs)
	}
	for _, m := range mounts {
		if err == nil && m == resolved {
			return m, nil
		}
	}
	return "", fmt.Errorf("%s is not a swapfs mountpoint (/proc/self/mountinfo has no %s mount on it); "+
		"'swapfs status' without arguments lists the swapfs mounts", abs, fsType)
}

// renderStatus writes one daemon's reply for people: what is missing is said loudly.
func renderStatus(w io.Writer, r controlResponse) error {
	fmt.Fprintf(w, "%s: swapfs store %s, daemon pid %d, up %v\n", r.Mountpoint, r.Store, r.Pid, r.Uptime)
	if r.Swap != nil {
		renderSwapfiles(w, r.Mountpoint, r.Swap.Files)
		renderIO(w, r.Swap.IO)
	}
	if r.Hardening == nil {
		_, err := fmt.Fprintln(w, "  protections: NOT REPORTED by this daemon")
		return err
	}
	missing := renderHardening(w, *r.Hardening)
	if missing > 0 {
		fmt.Fprintf(w, "  WARNING: %d protection(s) missing: swap served by this daemon may deadlock or fail "+
			"under memory pressure\n", missing)
	}
	return nil
}

func renderSwapfiles(w io.Writer, mountpoint string, files []swap.FileStatus) {
	if len(files) == 0 {
		fmt.Fprintln(w, "  swapfiles: none")
		return
	}
	fmt.Fprintln(w, "  swapfiles:")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "    PATH\tSIZE\tUSABLE\tEXTENTS\tPINNED\tLOOP\tACTIVE\tPRIORITY\tUSED")
	for _, f := range files {
		path := fmt.Sprintf("(inode %d, no name)", f.Ino)
		if f.Path != "" {
			path = filepath.Join(mountpoint, f.Path)
		}
		loop, prio, used := orDash(f.Loop), "-", "-"
		if f.Active {
			prio, used = fmt.Sprint(f.Priority), humanBytes(f.UsedBytes)
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", path, humanBytes(f.FileBytes),
			humanBytes(f.UsableBytes), f.Extents, yesNo(f.Pinned), loop, yesNo(f.Active), prio, used)
	}
	tw.Flush()
	for _, f := range files {
		if f.RotationalErr != "" {
			fmt.Fprintf(w, "  note: the rotational flags of %s cannot be read: %s\n", orDash(f.Loop), f.RotationalErr)
			continue
		}
		if f.Loop != "" && f.LoopRotational != f.VolumeRotational {
			fmt.Fprintf(w, "  note: %s says rotational=%d but the data volume's storage is rotational=%d, so the kernel's swap readahead is not what a native swapfile there gets; "+
				"swapfs swapon sets it, or before swapon: echo %d > /sys/block/%s/queue/rotational\n",
				f.Loop, b2i(f.LoopRotational), b2i(f.VolumeRotational), b2i(f.VolumeRotational), strings.TrimPrefix(f.Loop, "/dev/"))
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func renderIO(w io.Writer, io swap.IOStats) {
	fmt.Fprintf(w, "  swap I/O: %d requests (%d reads, %s; %d writes, %s), %d errors, %d refused\n",
		io.Reads+io.Writes, io.Reads, humanBytes(io.ReadBytes), io.Writes, humanBytes(io.WriteBytes),
		io.Errors, io.Refused)
	fmt.Fprintf(w, "    read latency:  %s\n", latency(io.ReadLatency, io.Reads))
	fmt.Fprintf(w, "    write latency: %s\n", latency(io.WriteLatency, io.Writes))
}

func latency(l swap.Latency, n uint64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %v  p99 %v  max %v", roundLatency(l.P50), roundLatency(l.P99), roundLatency(l.Max))
}

// roundLatency keeps three digits or so: the values are histogram bucket bounds anyway.
func roundLatency(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// renderHardening writes the protections and returns how many are missing.
func renderHardening(w io.Writer, h hardeningReport) (missing int) {
	fmt.Fprintln(w, "  protections:")
	line := func(name, state string, ok bool) {
		if !ok {
			missing++
		}
		fmt.Fprintf(w, "    %-14s %s\n", name+":", state)
	}
	switch {
	case !h.Mlocked:
		line("mlockall", "NOT LOCKED ("+orDash(h.MlockErr)+")", false)
	case h.LockedBytes == 0 && h.LiveErr == "":
		line("mlockall", "NOT LOCKED NOW (no locked pages; was it undone?)", false)
	default:
		line("mlockall", fmt.Sprintf("yes (%s resident and locked; VmLck %s)", humanBytes(h.LockedBytes),
			humanBytes(h.VmLckBytes)), true)
	}
	switch {
	case h.OOMScoreAdj == oomScoreAdjMin:
		line("oom_score_adj", fmt.Sprint(h.OOMScoreAdj), true)
	case h.OOMErr != "":
		line("oom_score_adj", fmt.Sprintf("NOT %d: %d (%s)", oomScoreAdjMin, h.OOMScoreAdj, h.OOMErr), false)
	default:
		line("oom_score_adj", fmt.Sprintf("NOT %d: %d (changed since start)", oomScoreAdjMin, h.OOMScoreAdj), false)
	}
	switch {
	case !h.IOFlusher:
		line("IO_FLUSHER", "NOT SET ("+orDash(h.IOFlusherErr)+")", false)
	case h.Threads > 0 && h.IOFlusherThreads < h.Threads:
		line("IO_FLUSHER", fmt.Sprintf("PARTIAL: %d of %d threads", h.IOFlusherThreads, h.Threads), false)
	default:
		line("IO_FLUSHER", fmt.Sprintf("yes (%d threads)", h.IOFlusherThreads), true)
	}
	switch {
	case h.VolumeRisk != "":
		line("data volume", "AT RISK ("+h.VolumeRisk+")", false)
	case h.VolumeErr != "":
		line("data volume", "UNKNOWN ("+h.VolumeErr+")", false)
	default:
		line("data volume", "fit for swap writes", true)
	}
	fmt.Fprintf(w, "    %-14s RSS %s, Go heap %s of %s held by the runtime, %d threads\n", "memory:",
		humanBytes(h.RSSBytes), humanBytes(h.HeapBytes), humanBytes(h.RuntimeBytes), h.Threads)
	fmt.Fprintf(w, "    %-14s %s\n", "GC:", h.GC)
	if h.LiveErr != "" {
		fmt.Fprintf(w, "    %-14s %s\n", "unreadable:", h.LiveErr)
	}
	return missing
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// humanBytes rounds to one decimal in binary units, as free -h does.
func humanBytes[T ~int64 | ~uint64](v T) string {
	b := float64(v)
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", int64(v))
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}
