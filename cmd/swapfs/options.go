package main

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/swapfs/swapfs/fs"
)

// mountOptions is what a -o string asks for.
type mountOptions struct {
	debug    bool
	readOnly bool
	commit   time.Duration // 0: meta's default
	kernel   []string      // passed to the kernel through fs.Options.KernelOptions
	ignored  []string      // fstab options, or unknown ones under mount -s
	swaps    []swapOption  // swap=RELPATH[:PRIO]: activated once the mount is ready
}

// swapOption is one swap= mount option.
type swapOption struct {
	path     string // relative to the mountpoint
	priority int    // -1: the file's own (mkswapfile --priority) or the kernel's
}

func (s swapOption) String() string {
	v := s.path
	if s.priority >= 0 {
		v = fmt.Sprintf("%s:%d", s.path, s.priority)
	}
	if strings.Contains(v, ",") {
		v = `"` + v + `"` // as libmount quotes it, so that the daemon reads it back whole
	}
	return "swap=" + v
}

// parseSwapOption reads RELPATH[:PRIO] (quoted by the option string when the path holds a
// comma); a colon is read as the priority separator only when what follows is a number.
func parseSwapOption(v string) (swapOption, error) {
	o := swapOption{path: v, priority: -1}
	if i := strings.LastIndexByte(v, ':'); i >= 0 {
		if p, err := strconv.Atoi(v[i+1:]); err == nil {
			if p < 0 || p > 32767 {
				return swapOption{}, fmt.Errorf("mount option swap=%s: priority %d is out of range 0..32767", v, p)
			}
			o.path, o.priority = v[:i], p
		}
	}
	o.path = strings.TrimPrefix(path.Clean("/"+o.path), "/")
	if o.path == "" || o.path == "." {
		return swapOption{}, fmt.Errorf("mount option swap=%s: want swap=PATH[:PRIORITY], PATH relative to the mountpoint", v)
	}
	return o, nil
}

// fstabOptions only mean something to mount(8), systemd or the fstab reader; they reach a
// helper anyway and must be accepted.
var fstabOptions = map[string]bool{
	"defaults": true, "auto": true, "noauto": true, "user": true, "nouser": true,
	"users": true, "nousers": true, "owner": true, "noowner": true, "group": true,
	"nogroup": true, "_netdev": true, "nofail": true, "loud": true, "silent": true,
	// What every swapfs mount has anyway; people write them on fuse.* lines by habit.
	"allow_other": true, "default_permissions": true,
	// Gone from the kernel (mandatory locks, 5.15) or meaningless for FUSE (i_version).
	"mand": true, "nomand": true, "iversion": true, "noiversion": true,
}

// fstabValueOptions take a value that, too, only mount(8) reads.
var fstabValueOptions = map[string]bool{
	"comment": true, "user": true, "helper": true, "uhelper": true,
}

// parseMountOptions parses a comma-separated -o string. With sloppy (mount -s) unknown
// options are ignored instead of refused.
func parseMountOptions(s string, sloppy bool) (mountOptions, error) {
	var o mountOptions
	for _, opt := range splitOptions(s) {
		if opt == "" {
			continue
		}
		name, value, hasValue := strings.Cut(opt, "=")
		value = unquote(value)
		switch {
		case opt == "debug":
			o.debug = true
		case opt == "ro":
			o.readOnly = true
		case opt == "rw":
			o.readOnly = false
		case name == "commit" && hasValue:
			d, err := parseCommit(value)
			if err != nil {
				return mountOptions{}, err
			}
			o.commit = d
		case name == "swap" && hasValue:
			so, err := parseSwapOption(value)
			if err != nil {
				return mountOptions{}, err
			}
			o.swaps = append(o.swaps, so)
		case fs.IsKernelOption(opt): // understood by the kernel itself; passed on
			o.kernel = append(o.kernel, opt)
		case fstabOptions[opt], fstabValueOptions[name] && hasValue,
			strings.HasPrefix(strings.ToLower(opt), "x-"): // x-systemd.*, X-mount.mkdir
			o.ignored = append(o.ignored, opt)
		case sloppy:
			o.ignored = append(o.ignored, opt)
		default:
			return mountOptions{}, fmt.Errorf("unknown mount option %q (see 'swapfs help' for the options swapfs takes)", opt)
		}
	}
	return o, nil
}

// splitOptions splits an option string at the commas that are not inside double quotes:
// libmount quotes a value that holds commas (context="system_u:object_r:t:s0:c1,c2").
func splitOptions(s string) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// unquote drops the double quotes around a whole value.
func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

func parseCommit(v string) (time.Duration, error) {
	secs, err := strconv.ParseUint(v, 10, 32)
	if err != nil || secs == 0 || secs > 3600 {
		return 0, fmt.Errorf("mount option commit=%s: want a whole number of seconds from 1 to 3600", v)
	}
	return time.Duration(secs) * time.Second, nil
}

// String renders the options back into a -o string; the daemon gets them this way.
func (o mountOptions) String() string {
	var parts []string
	if o.debug {
		parts = append(parts, "debug")
	}
	if o.readOnly {
		parts = append(parts, "ro")
	} else {
		parts = append(parts, "rw")
	}
	if o.commit != 0 {
		parts = append(parts, fmt.Sprintf("commit=%d", int64(o.commit/time.Second)))
	}
	parts = append(parts, o.kernel...)
	for _, s := range o.swaps {
		parts = append(parts, s.String())
	}
	return strings.Join(parts, ",")
}
