package fs

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

// DelayRelease makes every RELEASE wait d before it is served, until the test ends.
func DelayRelease(t testing.TB, d time.Duration) {
	releaseDelay.Store(int64(d))
	t.Cleanup(func() { releaseDelay.Store(0) })
}

// Evict makes the kernel forget the inodes named by paths (relative to the mountpoint, one
// name each: every name of an inode must be given, and none may be open): it invalidates
// their dentries, which drops them, and FUSE evicts an inode at its last reference rather
// than keeping it cached (its .drop_inode, fs/fuse/inode.c) and sends its FORGET. It returns
// once go-fuse has seen the FORGET of each, so that a test can check what a FORGET did
// instead of sleeping and hoping one came.
func (s *Server) Evict(t testing.TB, paths ...string) {
	t.Helper()
	var nodes []*gofs.Inode
	for _, p := range paths {
		parent := &s.root.Inode
		dir, name := filepath.Split(filepath.Clean(p))
		for _, c := range strings.Split(strings.Trim(dir, "/"), "/") {
			if c == "" {
				continue
			}
			if parent = parent.GetChild(c); parent == nil {
				t.Fatalf("evict %s: the kernel has not looked up %s", p, c)
			}
		}
		child := parent.GetChild(name)
		if child == nil {
			t.Fatalf("evict %s: the kernel has not looked it up", p)
		}
		// ENOENT: the kernel has dropped that dentry already.
		if errno := parent.NotifyEntry(name); errno != 0 && errno != syscall.ENOENT {
			t.Fatalf("evict %s: notify entry: %v", p, errno)
		}
		nodes = append(nodes, child)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		for !n.Forgotten() {
			if time.Now().After(deadline) {
				t.Fatalf("evict %v: no FORGET for inode %d after 10s", paths, n.StableAttr().Ino)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
