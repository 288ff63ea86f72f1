package swap

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Mount is one line of /proc/self/mountinfo (proc(5)), unescaped. The option lists are split
// on commas before each option is unescaped: a comma inside an option's value comes escaped
// (\054), and unescaping first would split the value.
type Mount struct {
	Major, Minor uint32 // the filesystem's device number (its superblock's s_dev)
	Root         string // the directory of the filesystem seen here: not "/" for a bind mount of a subtree
	Mountpoint   string
	Options      []string // this mount's: ro or rw, then flags such as nosuid and noatime
	FSType       string   // with a FUSE mount's subtype: "fuse.swapfs"
	Source       string
	SuperOptions []string // the filesystem's, the same for all its mounts: ro or rw, then its own
}

// Mounts returns the mounts of this process's mount namespace, in the order of
// /proc/self/mountinfo. It is the one reader of the mount table: /proc/mounts has no device
// numbers and merges the mount's options with the filesystem's (see AllOptions).
func Mounts() ([]Mount, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseMountInfo(b), nil
}

// MountOn returns the mount on exactly dir that lookups under dir see: of several mounts on
// one directory the last one, as the kernel lists a mount after the ones it was mounted over.
func MountOn(mounts []Mount, dir string) (Mount, bool) {
	for i := len(mounts) - 1; i >= 0; i-- {
		if mounts[i].Mountpoint == dir {
			return mounts[i], true
		}
	}
	return Mount{}, false
}

// MountOfDevice returns the first mount of the filesystem with device number major:minor.
// Its type, source and super options are those of every mount of that filesystem; its
// mountpoint is the first the kernel lists when the filesystem is mounted more than once.
func MountOfDevice(mounts []Mount, major, minor uint32) (Mount, bool) {
	for _, m := range mounts {
		if m.Major == major && m.Minor == minor {
			return m, true
		}
	}
	return Mount{}, false
}

// AllOptions returns the options /proc/mounts shows (show_vfsmnt in fs/proc_namespace.c): the
// mount's and the filesystem's in one list, headed by ro when either is read-only and by rw
// otherwise. Only the order differs: /proc/mounts puts superblock flags such as sync before
// the mount's flags, this list after them.
func (m Mount) AllOptions() []string {
	mode := "rw"
	if slices.Contains(m.Options, "ro") || slices.Contains(m.SuperOptions, "ro") {
		mode = "ro"
	}
	all := []string{mode}
	for _, o := range slices.Concat(m.Options, m.SuperOptions) {
		if o != "ro" && o != "rw" {
			all = append(all, o)
		}
	}
	return all
}

// parseMountInfo parses the text of /proc/self/mountinfo as show_mountinfo in
// fs/proc_namespace.c writes it, a line a mount:
//
//	ID PARENT MAJOR:MINOR ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
//
// Fields are separated by one space; the kernel escapes " \t\n\\" in them as \ooo. A line it
// cannot read is skipped rather than failing the whole table: callers look for one mount,
// and an odd line elsewhere must not hide it.
func parseMountInfo(text []byte) []Mount {
	var mounts []Mount
	for len(text) > 0 {
		var line []byte
		line, text, _ = bytes.Cut(text, []byte{'\n'})
		if m, ok := parseMountLine(string(line)); ok {
			mounts = append(mounts, m)
		}
	}
	return mounts
}

func parseMountLine(line string) (Mount, bool) {
	f := strings.Split(line, " ")
	// The separator is looked for after OPTIONS only: a root or mountpoint may be "-".
	if len(f) < 10 {
		return Mount{}, false
	}
	sep := slices.Index(f[6:], "-") + 6
	if sep < 6 || len(f) < sep+4 {
		return Mount{}, false
	}
	ma, mi, ok := strings.Cut(f[2], ":")
	major, err1 := strconv.ParseUint(ma, 10, 32)
	minor, err2 := strconv.ParseUint(mi, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return Mount{}, false
	}
	return Mount{
		Major:      uint32(major),
		Minor:      uint32(minor),
		Root:       unescapeMountField(f[3]),
		Mountpoint: unescapeMountField(f[4]),
		Options:    splitMountOptions(f[5]),
		FSType:     unescapeMountField(f[sep+1]),
		Source:     unescapeMountField(f[sep+2]),
		// A filesystem that prints a space in its options unescaped still has them all.
		SuperOptions: splitMountOptions(strings.Join(f[sep+3:], " ")),
	}, true
}

func splitMountOptions(s string) []string {
	if s == "" {
		return nil
	}
	opts := strings.Split(s, ",")
	for i, o := range opts {
		opts[i] = unescapeMountField(o)
	}
	return opts
}

// unescapeMountField undoes the octal escapes (\040 for a space) that the mount table puts in
// its fields (proc(5)); a backslash that does not start one stays as it is. (/proc/swaps,
// which ActiveSwaps reads, goes through the strict unescapeOctal.)
func unescapeMountField(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
