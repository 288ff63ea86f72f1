package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/swap"
)

// Readers of /proc, as pure functions over the text (proc(5)) so they can be tested without
// the files, and thin wrappers that read the files.

// userHZ is the unit of utime and stime in /proc/PID/stat. It is USER_HZ, which the kernel
// fixes at 100 on every architecture Go supports on Linux (sysconf(_SC_CLK_TCK)).
const userHZ = 100

// parseVmstat reads /proc/vmstat's "name value" lines.
func parseVmstat(data string) (map[string]uint64, error) {
	m := map[string]uint64{}
	for _, line := range strings.Split(data, "\n") {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("/proc/vmstat %s: %w", name, err)
		}
		m[name] = v
	}
	if len(m) == 0 {
		return nil, errors.New("/proc/vmstat: no counters")
	}
	return m, nil
}

// parseMeminfo reads /proc/meminfo's "Name:   value kB" lines, in bytes.
func parseMeminfo(data string) (map[string]uint64, error) {
	m := map[string]uint64{}
	for _, line := range strings.Split(data, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("/proc/meminfo %s: %w", name, err)
		}
		if len(f) > 1 && f[1] == "kB" {
			v <<= 10
		}
		m[strings.TrimSpace(name)] = v
	}
	if len(m) == 0 {
		return nil, errors.New("/proc/meminfo: no fields")
	}
	return m, nil
}

// parseStatCPU returns utime+stime from /proc/PID/stat, in seconds. The command name (field
// 2) may hold spaces and parentheses, so fields are counted from the last ')'.
func parseStatCPU(data string) (float64, error) {
	i := strings.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')' after the command name")
	}
	// After ')': state(3) ppid(4) ... utime(14) stime(15); f[0] is field 3.
	f := strings.Fields(data[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("stat: utime/stime: %w", err)
	}
	return float64(ut+st) / userHZ, nil
}

// parseVmRSS returns VmRSS from /proc/PID/status, in bytes.
func parseVmRSS(data string) (int64, error) {
	for _, line := range strings.Split(data, "\n") {
		v, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: VmRSS %q: want \"N kB\"", strings.TrimSpace(v))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status: VmRSS: %w", err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("status: no VmRSS line (a kernel thread, or the process exited)")
}

func readVmstat() (map[string]uint64, error) {
	b, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		return nil, err
	}
	return parseVmstat(string(b))
}

func readMeminfo() (map[string]uint64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return nil, err
	}
	return parseMeminfo(string(b))
}

// readSwaps lists the active swap areas; nil when /proc/swaps cannot be read.
func readSwaps() []swap.SwapArea {
	areas, _ := swap.ActiveSwaps()
	return areas
}

// processCPU returns pid's user+system CPU time so far, in seconds.
func processCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(b))
}

// processRSS returns pid's resident set, in bytes.
func processRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(string(b))
}

// fileCached returns how many bytes of path are in the page cache (mincore(2) over a
// shared read-only mapping, as fincore(1) does).
func fileCached(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return 0, err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, fmt.Errorf("mmap %s: %w", path, err)
	}
	defer unix.Munmap(mem)
	page := unix.Getpagesize()
	vec := make([]byte, (len(mem)+page-1)/page)
	// x/sys/unix has no Mincore wrapper on Linux.
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return 0, fmt.Errorf("mincore %s: %w", path, errno)
	}
	var n int64
	for _, v := range vec {
		n += int64(v & 1)
	}
	return n * int64(page), nil
}

// filesCached sums fileCached over files.
func filesCached(files []string) (int64, error) {
	var sum int64
	for _, f := range files {
		n, err := fileCached(f)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

// dropFileCache writes back path's dirty pages and asks the kernel to drop its cached ones
// (posix_fadvise POSIX_FADV_DONTNEED): only this file's, never the machine's caches.
func dropFileCache(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
