package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// Benchmark 3: metadata. A worker process (this binary, "swapbench meta-worker") creates,
// stats, lists, renames and unlinks a tree of files; it is a child so that a request stuck
// in a FUSE daemon ends with the child at the timeout, not with the bench.

const (
	metaCase = "meta"
	// metaTop × metaSub leaf directories hold the files.
	metaTop = 10
	metaSub = 10
)

// metaPhases are the timed phases, in the order the worker runs them.
var metaPhases = []struct{ key, label string }{
	{"create", "create (open O_CREAT|O_EXCL + close)"},
	{"stat", "stat (lstat)"},
	{"ls", "ls -lR (entries listed)"},
	{"rename", "rename (same directory)"},
	{"unlink", "unlink"},
}

// metaReport is the worker's JSON: seconds per phase and what they covered.
type metaReport struct {
	Files   int                `json:"files"`
	Dirs    int                `json:"dirs"`
	Seconds map[string]float64 `json:"seconds"`
}

// opsPerSec turns the report into operations per second per phase; ls counts the entries
// it lists (files and directories).
func (r metaReport) opsPerSec() map[string]float64 {
	m := map[string]float64{}
	for _, p := range metaPhases {
		n := float64(r.Files)
		if p.key == "ls" {
			n += float64(r.Dirs)
		}
		if s, ok := r.Seconds[p.key]; ok && s > 0 {
			m[p.key] = n / s
		}
	}
	return m
}

func (b *bench) runMetaBench(ctx context.Context) {
	fss := b.filesystems()
	for round := 1; round <= b.cfg.rounds && ctx.Err() == nil; round++ {
		for _, f := range fss {
			if ctx.Err() != nil {
				return
			}
			b.metaRun(ctx, f, round)
		}
	}
}

func (b *bench) metaRun(ctx context.Context, f fsys, round int) {
	dir := filepath.Join(f.dir, fmt.Sprintf("meta-%d", round))
	self, err := os.Executable()
	var out string
	if err == nil {
		out, err = runCmd(ctx, b.sz.metaTimeout, nil, self, "meta-worker", "-dir", dir, "-files", strconv.Itoa(b.sz.metaFiles))
	}
	var rep metaReport
	if err == nil {
		err = json.Unmarshal(bytes.TrimSpace([]byte(out)), &rep)
	}
	if err != nil {
		b.res.fail(metaCase, f.name, fmt.Sprintf("round %d: %v", round, err))
		b.logf("meta round %d/%d %s: FAILED: %v", round, b.cfg.rounds, f.name, err)
		os.RemoveAll(dir)
		return
	}
	ops := rep.opsPerSec()
	b.res.add(metaCase, f.name, ops)
	b.logf("meta round %d/%d %s: create %.0f/s, stat %.0f/s, ls %.0f/s, rename %.0f/s, unlink %.0f/s",
		round, b.cfg.rounds, f.name, ops["create"], ops["stat"], ops["ls"], ops["rename"], ops["unlink"])
}

// metaWorker is "swapbench meta-worker -dir DIR -files N": it makes DIR, runs the phases
// on N files in metaTop×metaSub directories, removes DIR and prints a metaReport.
func metaWorker(args []string) int {
	fl := flag.NewFlagSet("meta-worker", flag.ContinueOnError)
	dir := fl.String("dir", "", "directory to make the tree in (must not exist)")
	files := fl.Int("files", 20000, "number of files")
	if err := fl.Parse(args); err != nil || *dir == "" || *files <= 0 {
		fmt.Fprintln(os.Stderr, "usage: swapbench meta-worker -dir DIR -files N")
		return 2
	}
	rep, err := metaTree(*dir, *files)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meta-worker: %v\n", err)
		return 1
	}
	out, _ := json.Marshal(rep)
	fmt.Println(string(out))
	return 0
}

func metaTree(root string, files int) (metaReport, error) {
	rep := metaReport{Files: files, Seconds: map[string]float64{}}
	var leaves []string
	if err := os.Mkdir(root, 0o755); err != nil {
		return rep, err
	}
	for i := range metaTop {
		for j := range metaSub {
			d := filepath.Join(root, fmt.Sprintf("d%02d", i), fmt.Sprintf("e%02d", j))
			if err := os.MkdirAll(d, 0o755); err != nil {
				return rep, err
			}
			leaves = append(leaves, d)
		}
	}
	rep.Dirs = 1 + metaTop + metaTop*metaSub
	paths := make([]string, files)
	for i := range paths {
		paths[i] = filepath.Join(leaves[i%len(leaves)], fmt.Sprintf("f%06d", i))
	}
	each := func(fn func(p string) error) func() error {
		return func() error {
			for _, p := range paths {
				if err := fn(p); err != nil {
					return err
				}
			}
			return nil
		}
	}
	phases := map[string]func() error{
		"create": each(func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}),
		"stat": each(func(p string) error { _, err := os.Lstat(p); return err }),
		"ls": func() error {
			cmd := exec.Command("ls", "-lR", root) // stdout: the null device
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("ls -lR: %w%s", err, tail(stderr.String(), 300))
			}
			return nil
		},
		"rename": each(func(p string) error { return os.Rename(p, p+".r") }),
		"unlink": each(func(p string) error { return os.Remove(p + ".r") }),
	}
	for _, ph := range metaPhases {
		start := time.Now()
		if err := phases[ph.key](); err != nil {
			return rep, fmt.Errorf("%s: %w", ph.key, err)
		}
		rep.Seconds[ph.key] = time.Since(start).Seconds()
	}
	return rep, errors.Join(os.RemoveAll(root))
}
