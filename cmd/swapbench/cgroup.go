package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The memory cgroup the swap workload runs in: the only place the bench makes memory
// pressure. v1 where its memory hierarchy is mounted (this machine), v2 where memory is
// delegated from the root; as integration/cgroup_test.go does it.

const (
	cgroupV1Root = "/sys/fs/cgroup/memory"
	cgroupV2Root = "/sys/fs/cgroup"
	// cgroupDrainTimeout bounds the wait for killed processes to leave the cgroup: a task
	// faulting in from a slow swap device dies only when its I/O completes.
	cgroupDrainTimeout = 60 * time.Second
	// cgroupPrefix names the bench's cgroups, so a leftover is recognisable.
	cgroupPrefix = "swapbench-"
)

type memCgroup struct {
	path string
	v2   bool
}

// memoryController says whether to use cgroup v2, or why no memory cgroup can be made.
func memoryController() (v2 bool, err error) {
	if b, rerr := os.ReadFile(filepath.Join(cgroupV2Root, "cgroup.controllers")); rerr == nil {
		if !strings.Contains(" "+string(b)+" ", " memory ") {
			return true, errors.New("cgroup v2 without the memory controller: cannot confine memory pressure")
		}
		// Enabling it at the root would change the whole machine's hierarchy; we do not.
		sub, _ := os.ReadFile(filepath.Join(cgroupV2Root, "cgroup.subtree_control"))
		if !strings.Contains(" "+strings.TrimSpace(string(sub))+" ", " memory ") {
			return true, errors.New("cgroup v2: memory is not in the root's cgroup.subtree_control, so a child cgroup would have no memory limit")
		}
		return true, nil
	}
	if _, serr := os.Stat(filepath.Join(cgroupV1Root, "memory.limit_in_bytes")); serr != nil {
		return false, fmt.Errorf("no cgroup memory controller (no v2 root, no v1 hierarchy at %s): %w", cgroupV1Root, serr)
	}
	return false, nil
}

// newMemCgroup makes a cgroup whose processes may use limit bytes of memory and any amount
// of swap.
func newMemCgroup(limit int64) (*memCgroup, error) {
	v2, err := memoryController()
	if err != nil {
		return nil, err
	}
	var suffix [4]byte
	rand.Read(suffix[:])
	c := &memCgroup{v2: v2, path: filepath.Join(cgroupV1Root, cgroupPrefix+hex.EncodeToString(suffix[:]))}
	if v2 {
		c.path = filepath.Join(cgroupV2Root, cgroupPrefix+hex.EncodeToString(suffix[:]))
	}
	if err := os.Mkdir(c.path, 0o755); err != nil {
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
		// Prefer swapping anonymous pages to dropping page cache; a refusal leaves the default,
		// which still swaps.
		c.write("memory.swappiness", "100")
	}
	if err != nil {
		c.remove()
		return nil, fmt.Errorf("cgroup %s: %w", c.path, err)
	}
	return c, nil
}

func (c *memCgroup) write(file, value string) error {
	return os.WriteFile(filepath.Join(c.path, file), []byte(value), 0)
}

// command runs name inside the cgroup from its first instruction: a shell moves itself in,
// then execs name, so nothing runs outside the limit and no pid is written after a fork.
func (c *memCgroup) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append([]string{"-c", `echo $$ > "$0" && exec "$@"`, filepath.Join(c.path, "cgroup.procs"), name}, args...)
	return command(ctx, nil, "/bin/sh", argv...)
}

func (c *memCgroup) pids() ([]int, error) {
	b, err := os.ReadFile(filepath.Join(c.path, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// peak returns the most memory the cgroup's processes used, in bytes.
func (c *memCgroup) peak() (int64, error) {
	name := "memory.max_usage_in_bytes"
	if c.v2 {
		name = "memory.peak"
	}
	b, err := os.ReadFile(filepath.Join(c.path, name))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// oomKills returns how many processes the OOM killer killed in the cgroup (v2
// memory.events, v1 memory.oom_control, both "oom_kill N").
func (c *memCgroup) oomKills() (int64, error) {
	name := "memory.oom_control"
	if c.v2 {
		name = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(c.path, name))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s/%s has no oom_kill line", c.path, name)
}

// remove kills what is left in the cgroup (only that) and removes it.
func (c *memCgroup) remove() error {
	deadline := time.Now().Add(cgroupDrainTimeout)
	for {
		pids, err := c.pids()
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err == nil && len(pids) == 0 {
			// rmdir fails with EBUSY until the last exit has been accounted; retry.
			if err = os.Remove(c.path); err == nil || errors.Is(err, os.ErrNotExist) {
				return nil
			}
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s: still there %v after killing %v: %v", c.path, cgroupDrainTimeout, pids, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
