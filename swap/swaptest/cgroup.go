// Package swaptest puts swap under pressure for the integration tests, the bench
// (cmd/swapbench) and the workload (cmd/swapload): a memory-limited cgroup, cgroup v1 or v2,
// which is the only place they make memory pressure, and the report the workload prints.
package swaptest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	cgroupV1Root = "/sys/fs/cgroup/memory"
	cgroupV2Root = "/sys/fs/cgroup"
	// DrainTimeout bounds the wait for killed processes to leave a cgroup: a task faulting
	// in from a slow swap device dies only when its I/O completes.
	DrainTimeout = 60 * time.Second
)

// Cgroup is a memory cgroup with a limit on memory and none on swap.
type Cgroup struct {
	Path string // its directory in the cgroup filesystem
	V2   bool
	// Note says what could not be set up as wanted but does not stop the cgroup from
	// serving (v1 memory.swappiness refused in a child cgroup), "" when all is set.
	Note string
}

// MemoryController says whether cgroups are v2 here, or, as an error, why no memory cgroup
// can be made: v1 where its memory hierarchy is mounted, v2 where the root delegates memory
// to its children. It never enables a controller: that would change the whole machine.
func MemoryController() (v2 bool, err error) {
	if b, rerr := os.ReadFile(filepath.Join(cgroupV2Root, "cgroup.controllers")); rerr == nil {
		if !slices.Contains(strings.Fields(string(b)), "memory") {
			return true, errors.New("cgroup v2 without the memory controller: cannot confine memory pressure")
		}
		sub, _ := os.ReadFile(filepath.Join(cgroupV2Root, "cgroup.subtree_control"))
		if !slices.Contains(strings.Fields(string(sub)), "memory") {
			return true, errors.New("cgroup v2: memory is not in the root's cgroup.subtree_control, so a child cgroup would have no memory limit")
		}
		return true, nil
	}
	if _, serr := os.Stat(filepath.Join(cgroupV1Root, "memory.limit_in_bytes")); serr != nil {
		return false, fmt.Errorf("no cgroup memory controller (no %s/cgroup.controllers, no v1 hierarchy at %s): %w", cgroupV2Root, cgroupV1Root, serr)
	}
	return false, nil
}

// NewCgroup makes a cgroup named prefix and a random suffix (so a leftover says whose it
// is), whose processes may use limit bytes of memory and any amount of swap.
func NewCgroup(prefix string, limit int64) (*Cgroup, error) {
	v2, err := MemoryController()
	if err != nil {
		return nil, err
	}
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, err
	}
	root := cgroupV1Root
	if v2 {
		root = cgroupV2Root
	}
	c := &Cgroup{V2: v2, Path: filepath.Join(root, prefix+hex.EncodeToString(suffix[:]))}
	if err := os.Mkdir(c.Path, 0o755); err != nil {
		return nil, fmt.Errorf("make cgroup: %w", err)
	}
	lim := strconv.FormatInt(limit, 10)
	if v2 {
		err = c.write("memory.max", lim)
		// Absent when the kernel does not account swap; swap is unlimited then anyway.
		if werr := c.write("memory.swap.max", "max"); werr != nil && !errors.Is(werr, os.ErrNotExist) {
			err = errors.Join(err, werr)
		}
	} else {
		// memory.memsw.limit_in_bytes (memory + swap) stays unlimited, as a new cgroup has it.
		err = c.write("memory.limit_in_bytes", lim)
		// Prefer swapping anonymous pages to dropping page cache; some kernels refuse this
		// in a child cgroup, and the default still swaps.
		if werr := c.write("memory.swappiness", "100"); werr != nil {
			c.Note = fmt.Sprintf("memory.swappiness stays at the default: %v", werr)
		}
	}
	if err != nil {
		err = fmt.Errorf("cgroup %s: %w", c.Path, err)
		if rerr := c.Remove(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, err
	}
	return c, nil
}

// Command returns a command that runs name inside the cgroup from its first instruction: a
// shell moves itself in and then execs name, so nothing runs outside the limit and no pid
// is written after a fork. It runs in its own process group.
func (c *Cgroup) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append([]string{"-c", `echo $$ > "$0" && exec "$@"`, filepath.Join(c.Path, "cgroup.procs"), name}, args...)
	cmd := exec.CommandContext(ctx, "/bin/sh", argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Something the workload started could hold the pipes open; do not wait for it forever.
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// Pids lists the processes in the cgroup.
func (c *Cgroup) Pids() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(c.Path, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s/cgroup.procs: %q: %w", c.Path, f, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// Remove kills what is left in the cgroup (only that) and removes it; it is done when the
// cgroup is gone already.
func (c *Cgroup) Remove() error {
	deadline := time.Now().Add(DrainTimeout)
	for {
		pids, err := c.Pids()
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err == nil && len(pids) == 0 {
			// rmdir fails with EBUSY until the last exit has been accounted; retry.
			if err = os.Remove(c.Path); err == nil || errors.Is(err, os.ErrNotExist) {
				return nil
			}
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s: still there %v after killing its processes %v: %v", c.Path, DrainTimeout, pids, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// MaxUsage returns the most memory the cgroup's processes have used, in bytes.
func (c *Cgroup) MaxUsage() (int64, error) {
	if c.V2 {
		return c.readInt("memory.peak")
	}
	return c.readInt("memory.max_usage_in_bytes")
}

// SwapUsage returns the swap the cgroup's processes hold now, in bytes.
func (c *Cgroup) SwapUsage() (int64, error) {
	if c.V2 {
		return c.readInt("memory.swap.current")
	}
	stat, err := c.Stat()
	if err != nil {
		return 0, err
	}
	v, ok := stat["swap"]
	if !ok {
		return 0, fmt.Errorf("%s/memory.stat has no swap line: swap accounting is off", c.Path)
	}
	return v, nil
}

// OOMKills returns how many processes the OOM killer killed in the cgroup (v2
// memory.events, v1 memory.oom_control: both have an "oom_kill N" line).
func (c *Cgroup) OOMKills() (int64, error) {
	name := "memory.oom_control"
	if c.V2 {
		name = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(c.Path, name))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s/%s has no oom_kill line", c.Path, name)
}

// Stat returns memory.stat as a map.
func (c *Cgroup) Stat() (map[string]int64, error) {
	f, err := os.Open(filepath.Join(c.Path, "memory.stat"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	stat := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if v, err := strconv.ParseInt(value, 10, 64); ok && err == nil {
			stat[name] = v
		}
	}
	return stat, sc.Err()
}

func (c *Cgroup) readInt(file string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(c.Path, file))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

func (c *Cgroup) write(file, value string) error {
	return os.WriteFile(filepath.Join(c.Path, file), []byte(value), 0)
}
