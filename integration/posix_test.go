package integration

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/hanwen/go-fuse/v2/posixtest"
)

// posixSkips are the posixtest cases not run against swapfs, each with its reason.
var posixSkips = map[string]string{
	"FcntlFlockLocksFile": "expects a second fd of the same process to conflict with the first's " +
		"write lock, but POSIX record locks belong to the process (fcntl(2)): ext4 grants it too. " +
		"go-fuse's own TestAll skips this case for the same reason.",
}

// posixMustRun are the posixtest cases that skip themselves when the filesystem lacks a
// feature, which swapfs has: a skip is a failure.
var posixMustRun = []string{"Tmpfile", "DirectIO", "FstatDeleted", "XAttr", "XAttrLarge"}

// TestPOSIX runs go-fuse's POSIX suite on a real swapfs mount, each case in its own
// directory.
func TestPOSIX(t *testing.T) {
	m := mountStore(t)
	names := make([]string, 0, len(posixtest.All))
	for name := range posixtest.All {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			if why, ok := posixSkips[name]; ok {
				t.Skip(why)
			}
			if slices.Contains(posixMustRun, name) {
				t.Cleanup(func() {
					if t.Skipped() {
						t.Errorf("%s skipped itself, but swapfs has what it needs", name)
					}
				})
			}
			dir := filepath.Join(m.Dir, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			posixtest.All[name](t, dir)
		})
	}
}
