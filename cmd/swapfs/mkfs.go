package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/meta"
)

// Default data volume size for a store made without --size: half the free space of the
// filesystem that holds it, capped at maxDefaultSize, never below minDefaultSize. The data
// file is sparse, so this is a limit, not space taken.
const (
	maxDefaultSize = 16 << 30
	minDefaultSize = 64 << 20
)

func mkfsMain(args []string) int {
	fset := newFlagSet("mkfs")
	sizeFlag := fset.String("size", "", "size of the data file STORE/data (K, M, G, T suffixes)")
	device := fset.String("device", "", "block device (or existing file) to use as the data volume")
	inodes := fset.Uint64("inodes", 0, "inode limit (default: one per 16 KiB of volume)")
	force := fset.Bool("force", false, "overwrite a device that holds another store's data volume")
	pos, err := parseInterleaved(fset, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 {
		fmt.Fprintf(os.Stderr, "swapfs mkfs: want one STORE directory, got %d arguments\n%s", len(pos), usage)
		return exitUsage
	}
	if *sizeFlag != "" && *device != "" {
		fmt.Fprintln(os.Stderr, "swapfs mkfs: --size and --device exclude each other: a device's size is its own")
		return exitUsage
	}
	store, err := absPath("STORE", pos[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "swapfs mkfs: %v\n", err)
		return exitUsage
	}
	opts := meta.MkfsOptions{Device: *device, Inodes: *inodes, Force: *force}
	if *device == "" {
		if *sizeFlag != "" {
			opts.Size, err = parseSize(*sizeFlag)
		} else {
			opts.Size, err = defaultSize(store)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "swapfs mkfs: %v\n", err)
			return exitUsage
		}
	}
	msg, err := makeStore(store, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "swapfs mkfs: %v\n", err)
		return exitFailure
	}
	fmt.Println(msg)
	return exitOK
}

// makeStore runs Mkfs and describes what it made.
func makeStore(store string, opts meta.MkfsOptions) (string, error) {
	if err := meta.Mkfs(store, opts); err != nil {
		return "", err
	}
	s, err := meta.Open(store, meta.OpenOptions{ReadOnly: true})
	if err != nil {
		return "", fmt.Errorf("store %s was created but does not open: %w", store, err)
	}
	defer s.Close()
	st, err := s.Statfs()
	if err != nil {
		return "", fmt.Errorf("store %s was created but statfs fails: %w", store, err)
	}
	vol := filepath.Join(store, "data") + " (sparse file)"
	if opts.Device != "" {
		vol = opts.Device
	}
	return fmt.Sprintf("swapfs: created store %s (uuid %s): data volume %s of %s, %d inodes",
		store, s.UUID(), vol, formatSize(st.VolumeBytes), st.Inodes), nil
}

// parseSize reads sizes such as "4096", "64M", "1G" or "512k": whole numbers of bytes or of
// K, M, G, T (powers of 1024; "KiB" and "MB" are read the same way). "1.5G" is refused.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	shift := 0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		case 'T':
			shift = 40
		}
		if shift != 0 {
			t = t[:n-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive whole number with an optional K, M, G or T suffix", s)
	}
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n << shift, nil
}

func formatSize(b uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && b%1024 == 0 && i < len(units)-1 {
		b /= 1024
		i++
	}
	return fmt.Sprintf("%d %s", b, units[i])
}

// defaultSize picks the data volume size for a store at path: see maxDefaultSize.
func defaultSize(path string) (int64, error) {
	dir := path
	var st unix.Statfs_t
	for {
		err := unix.Statfs(dir, &st)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.ENOENT) || dir == filepath.Dir(dir) {
			return 0, fmt.Errorf("free space at %s: %w", dir, err)
		}
		dir = filepath.Dir(dir)
	}
	size := int64(st.Bavail) * st.Bsize / 2
	size = min(size, maxDefaultSize)
	size = max(size, minDefaultSize)
	return size &^ (1<<20 - 1), nil
}

// storeState tells a store from a directory where a new one may be made.
type storeState int

const (
	storeExists  storeState = iota // meta.db is there
	storeNew                       // missing, or a directory with nothing of importance
	storeForeign                   // a directory with other things in it
)

// ignorableEntries may sit in a directory that is still "empty" for a new store: our own log
// (written before the store exists) and what mkfs.ext4 leaves in a fresh filesystem.
var ignorableEntries = map[string]bool{"swapfs.log": true, "lost+found": true}

func inspectStore(store string) (storeState, error) {
	entries, err := os.ReadDir(store)
	if errors.Is(err, os.ErrNotExist) {
		return storeNew, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store %s: %w", store, err)
	}
	state := storeNew
	for _, e := range entries {
		if e.Name() == "meta.db" {
			return storeExists, nil
		}
		if !ignorableEntries[e.Name()] {
			state = storeForeign
		}
	}
	return state, nil
}
