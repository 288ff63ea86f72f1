package swap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// SwapArea is one line of /proc/swaps.
type SwapArea struct {
	Filename string // unescaped; a block device shows as its /dev path
	Type     string // "partition" (a block device, loop devices included) or "file"
	SizeKiB  int64
	UsedKiB  int64
	Priority int
}

// ActiveSwaps returns the swap areas in use, as /proc/swaps lists them.
func ActiveSwaps() ([]SwapArea, error) {
	f, err := os.Open("/proc/swaps")
	if err != nil {
		return nil, fmt.Errorf("read swap areas: %w", err)
	}
	defer f.Close()
	areas, err := parseProcSwaps(f)
	if err != nil {
		return nil, fmt.Errorf("read swap areas: /proc/swaps: %w", err)
	}
	return areas, nil
}

// ActiveSwapNamed returns the area /proc/swaps lists under name, if any; an unreadable
// /proc/swaps lists none.
func ActiveSwapNamed(name string) (SwapArea, bool) {
	areas, _ := ActiveSwaps()
	for _, a := range areas {
		if a.Filename == name {
			return a, true
		}
	}
	return SwapArea{}, false
}

// IsActiveSwap reports whether dev is in use as swap. dev may be any name of the device
// (a symlink, a relative path): when its name is not listed it is compared by device number
// with the listed block devices, and a regular file by inode.
func IsActiveSwap(dev string) (bool, error) {
	areas, err := ActiveSwaps()
	if err != nil {
		return false, err
	}
	for _, a := range areas {
		if a.Filename == dev {
			return true, nil
		}
	}
	if len(areas) == 0 {
		return false, nil
	}
	var want unix.Stat_t
	if err := unix.Stat(dev, &want); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("is %s active swap: %w", dev, err)
	}
	for _, a := range areas {
		var st unix.Stat_t
		// An area whose name no longer resolves (renamed, deleted) cannot be dev's.
		if unix.Stat(a.Filename, &st) != nil || st.Mode&unix.S_IFMT != want.Mode&unix.S_IFMT {
			continue
		}
		switch want.Mode & unix.S_IFMT {
		case unix.S_IFBLK:
			if st.Rdev == want.Rdev {
				return true, nil
			}
		case unix.S_IFREG:
			if st.Dev == want.Dev && st.Ino == want.Ino {
				return true, nil
			}
		}
	}
	return false, nil
}

// parseProcSwaps parses the text of /proc/swaps, as swap_show in mm/swapfile.c writes it:
// a header line, then per area the path with " \t\n\\" escaped as \ooo (seq_file_path), a
// padding of spaces, and type, size, used and priority separated by tabs. Fields are split
// on spaces and tabs only, never on other white space: the kernel leaves "\r" or a
// non-breaking space in a path as it is.
func parseProcSwaps(r io.Reader) ([]SwapArea, error) {
	text, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(text) == 0 {
		return nil, errors.New("empty, without even the header line")
	}
	var areas []SwapArea
	var fields [5][]byte
	for i := 0; len(text) > 0; i++ {
		var line []byte
		line, text, _ = bytes.Cut(text, []byte{'\n'})
		n, ok := splitFields(line, &fields)
		if i == 0 {
			if n == 0 || string(fields[0]) != "Filename" {
				return nil, fmt.Errorf("line 1: not the header: %s", quote(line))
			}
			continue
		}
		if n == 0 {
			continue
		}
		if !ok || n != len(fields) {
			return nil, fmt.Errorf("line %d: want 5 fields: %s", i+1, quote(line))
		}
		a, err := parseArea(&fields)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w: %s", i+1, err, quote(line))
		}
		areas = append(areas, a)
	}
	return areas, nil
}

func parseArea(f *[5][]byte) (SwapArea, error) {
	name, err := unescapeOctal(f[0])
	if err != nil {
		return SwapArea{}, err
	}
	size, err := strconv.ParseInt(string(f[2]), 10, 64)
	if err != nil || size < 0 {
		return SwapArea{}, fmt.Errorf("bad size %q", f[2])
	}
	used, err := strconv.ParseInt(string(f[3]), 10, 64)
	if err != nil || used < 0 {
		return SwapArea{}, fmt.Errorf("bad used %q", f[3])
	}
	prio, err := strconv.Atoi(string(f[4]))
	if err != nil {
		return SwapArea{}, fmt.Errorf("bad priority %q", f[4])
	}
	return SwapArea{Filename: name, Type: string(f[1]), SizeKiB: size, UsedKiB: used, Priority: prio}, nil
}

// splitFields puts the space- or tab-separated fields of line in out and returns how many
// there are; ok is false when there are more than fit.
func splitFields(line []byte, out *[5][]byte) (n int, ok bool) {
	for {
		i := 0
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		line = line[i:]
		if len(line) == 0 {
			return n, true
		}
		if n == len(out) {
			return n, false
		}
		j := 0
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		out[n], line = line[:j], line[j:]
		n++
	}
}

// unescapeOctal undoes mangle_path (fs/seq_file.c): a byte it escapes becomes a backslash
// and exactly three octal digits. A backslash not followed by those is an error, since the
// kernel escapes every backslash.
func unescapeOctal(s []byte) (string, error) {
	i := bytes.IndexByte(s, '\\')
	if i < 0 {
		return string(s), nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for ; i >= 0; i = bytes.IndexByte(s, '\\') {
		b.Write(s[:i])
		if len(s) < i+4 || !isOctal(s[i+1]) || !isOctal(s[i+2]) || !isOctal(s[i+3]) || s[i+1] > '3' {
			return "", fmt.Errorf("bad escape %q in file name", s[i:min(i+4, len(s))])
		}
		b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
		s = s[i+4:]
	}
	b.Write(s)
	return b.String(), nil
}

func isOctal(c byte) bool { return '0' <= c && c <= '7' }

// quote shows a bad line in an error, cut short: it may be anything.
func quote(line []byte) string {
	const max = 80
	if len(line) > max {
		return strconv.Quote(string(line[:max])) + "..."
	}
	return strconv.Quote(string(line))
}
