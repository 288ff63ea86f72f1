package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/swap"
	"github.com/swapfs/swapfs/swap/swaptest"
)

// machine is the description of where the bench ran, for the report's first table.
type machine struct {
	rows [][2]string
}

func (m *machine) add(k, v string) { m.rows = append(m.rows, [2]string{k, v}) }

func (b *bench) describeMachine(ctx context.Context) machine {
	var m machine
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.add("kernel", unix.ByteSliceToString(u.Release[:])+" ("+unix.ByteSliceToString(u.Machine[:])+")")
	}
	m.add("CPUs", fmt.Sprintf("%d × %s", runtime.NumCPU(), cpuModel()))
	if mi, err := readMeminfo(); err == nil {
		m.add("memory", fmt.Sprintf("%.1f GiB (MemTotal)", float64(mi["MemTotal"])/(1<<30)))
	}
	m.add("disk", diskOf(b.work))
	m.add("workdir filesystem", fsOf(b.work))
	switch v2, err := swaptest.MemoryController(); {
	case err != nil:
		m.add("memory cgroup", "none usable: "+err.Error())
	case v2:
		m.add("memory cgroup", "v2")
	default:
		m.add("memory cgroup", "v1")
	}
	m.add("date", b.start.Format(time.RFC3339))
	if v, err := b.goCmd(ctx, time.Minute, "list", "-m", "-f", "{{.Path}} {{.Version}}", "github.com/hanwen/go-fuse/v2"); err == nil {
		m.add("go-fuse", strings.TrimSpace(v))
	}
	if v, err := b.goCmd(ctx, time.Minute, "version"); err == nil {
		m.add("Go", strings.TrimSpace(v))
	}
	m.add("swapfs commit", gitDescribe(ctx, b.repo))
	if b.gofusePassthrough != "" {
		m.add("go-fuse loopback FUSE passthrough", b.gofusePassthrough)
	}
	if v, err := readFile("/proc/loadavg"); err == nil {
		m.add("load average at start", v)
	}
	return m
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// diskOf names the block device under dir: its model (sysfs, else lsblk's), size and
// whether the kernel thinks it rotates.
func diskOf(dir string) string {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return "?"
	}
	sys, partition, err := swap.BlockSysfs(st.Dev)
	if err != nil {
		return fmt.Sprintf("device %d:%d (not a block device)", unix.Major(st.Dev), unix.Minor(st.Dev))
	}
	if partition {
		sys = filepath.Dir(sys) // the disk is its parent
	}
	name := filepath.Base(sys)
	model, _ := readFile(filepath.Join(sys, "device", "model"))
	if model == "" {
		if out, err := runCmd(context.Background(), 10*time.Second, nil, "lsblk", "-dno", "MODEL", "/dev/"+name); err == nil {
			model = strings.TrimSpace(out)
		}
	}
	if model == "" {
		if strings.HasPrefix(name, "vd") {
			model = "virtio block device, no model string"
		} else {
			model = "no model string"
		}
	}
	var size int64
	if v, err := readFile(filepath.Join(sys, "size")); err == nil {
		fmt.Sscan(v, &size)
	}
	rota, _ := readFile(filepath.Join(sys, "queue", "rotational"))
	sched, _ := readFile(filepath.Join(sys, "queue", "scheduler"))
	return fmt.Sprintf("/dev/%s: %s, %.0f GiB, rotational=%s, scheduler %s", name, model, float64(size*512)/(1<<30), rota, sched)
}

// fsOf says which filesystem holds dir: type, source and mountpoint, from mountinfo.
func fsOf(dir string) string {
	mounts, err := swap.Mounts()
	if err != nil {
		return "?"
	}
	best, desc := "", "?"
	for _, m := range mounts {
		mp := m.Mountpoint
		if !(dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) || len(mp) < len(best) {
			continue
		}
		best = mp
		desc = fmt.Sprintf("%s on %s (mounted at %s, %s)", m.FSType, m.Source, mp, strings.Join(m.Options, ","))
	}
	return desc
}

// gitDescribe is the commit the bench measured, with "+ uncommitted changes" when the
// tree differs from it (other engineers edit it while the bench runs).
func gitDescribe(ctx context.Context, repo string) string {
	out, err := runCmd(ctx, 30*time.Second, nil, "git", "-C", repo, "log", "-1", "--format=%h %s")
	if err != nil {
		return "? (git: " + err.Error() + ")"
	}
	desc := strings.TrimSpace(out)
	if len(desc) > 90 {
		desc = desc[:90] + "…"
	}
	if st, err := runCmd(ctx, 30*time.Second, nil, "git", "-C", repo, "status", "--porcelain", "--untracked-files=no"); err == nil && strings.TrimSpace(st) != "" {
		n := len(strings.Split(strings.TrimSpace(st), "\n"))
		desc += fmt.Sprintf(" + uncommitted changes in %d file(s)", n)
	}
	return desc
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return strings.TrimSpace(string(b)), err
}
