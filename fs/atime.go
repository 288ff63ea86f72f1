package fs

import (
	"sync/atomic"
	"syscall"
	"time"
)

// The kernel never updates atime on a FUSE mount: it marks every FUSE inode S_NOATIME, so
// the mount's noatime, relatime and strictatime flags do nothing by themselves. It does
// mark its cached atime stale after every READ, READDIR and READLINK, expecting the daemon
// to have updated it. So the daemon decides, from the options it mounted with; the kernel
// tells it nothing about them.

// atimeMode is when a read updates atime.
type atimeMode uint8

const (
	atimeRelative atimeMode = iota // relatime, the kernel's default: see relatimeDue
	atimeStrict                    // strictatime: every read
	atimeNever                     // noatime, nodiratime, or a read-only mount
)

// relatimeWindow is how old atime may get before a read updates it although the file has
// not changed since it was last read (the kernel's relatime_need_update).
const relatimeWindow = 24 * time.Hour

// atimePolicy is the mount's atime modes for directories and for everything else.
type atimePolicy struct {
	files, dirs atimeMode
}

// atimePolicyOf reads the policy from the mount(2) flags, as do_mount turns them into mount
// flags: relatime unless MS_NOATIME, MS_STRICTATIME overriding both, MS_NODIRATIME for
// directories only, and nothing at all on a read-only mount.
func atimePolicyOf(flags uintptr) atimePolicy {
	if flags&0xffff0000 == syscall.MS_MGC_VAL {
		flags &^= 0xffff0000 // the old "no flags" marker: not flags itself
	}
	p := atimePolicy{files: atimeRelative}
	switch {
	case flags&syscall.MS_RDONLY != 0:
		return atimePolicy{files: atimeNever, dirs: atimeNever}
	case flags&syscall.MS_STRICTATIME != 0:
		p.files = atimeStrict
	case flags&syscall.MS_NOATIME != 0:
		p.files = atimeNever
	}
	p.dirs = p.files
	if flags&syscall.MS_NODIRATIME != 0 {
		p.dirs = atimeNever
	}
	return p
}

// relatimeDue says whether a read at now updates atime under relatime: when atime is not
// later than mtime or ctime (the file changed since it was last read), or is a day old.
func relatimeDue(atime, mtime, ctime, now time.Time) bool {
	return !atime.After(mtime) || !atime.After(ctime) || now.Unix()-atime.Unix() >= int64(relatimeWindow/time.Second)
}

// atimeState lets a read decide without asking the store that no atime update is due: after
// an update (or a check that found none due), relatime asks for none until the window ends or
// the inode changes. It is the one thing fs remembers about an inode, and changes through any
// node of this mount clear it (Node.changed).
type atimeState struct {
	// changes counts the changes this mount made to the inode's times (see Node.changed).
	changes atomic.Uint64
	// quiet, if its changes still match, says no update is due before its until.
	quiet atomic.Pointer[atimeQuiet]
}

type atimeQuiet struct {
	changes uint64
	until   int64 // Unix nanoseconds
}

// changed records that this mount has just changed (or may have changed) the inode's mtime,
// ctime or atime, so the next read must look at them again. Called after the store change:
// a read that saw the old count has read the times before the change, or sees them now.
func (n *Node) changed() {
	n.atime.changes.Add(1)
}

// childChanged is changed for the node of the entry name in this directory, if the kernel
// knows it (otherwise nobody can read it without a LOOKUP, which makes a node that knows
// nothing yet). go-fuse still has the entry when a method returns, so a deferred call finds
// the node an unlink or rename touched.
func (n *Node) childChanged(name string) {
	if c := n.GetChild(name); c != nil {
		if cn, ok := c.Operations().(*Node); ok {
			cn.changed()
		}
	}
}

// accessed updates atime after a read (READ, READDIR, READLINK), as the mount's atime mode
// asks. Under relatime, the usual case (read already since the last change) costs two atomic
// loads and a clock read. A failure to update is logged if it is a storage failure and
// otherwise ignored: the read itself succeeded.
func (n *Node) accessed(mode atimeMode) {
	switch mode {
	case atimeNever:
		return
	case atimeStrict:
		if _, err := n.fs.store.Touch(n.ino, time.Now()); err != nil {
			n.errno("atime", err)
		}
		return
	}
	now := time.Now()
	changes := n.atime.changes.Load()
	if q := n.atime.quiet.Load(); q != nil && q.changes == changes && now.UnixNano() < q.until {
		return
	}
	in, err := n.fs.store.GetInode(n.ino)
	if err != nil {
		n.errno("atime", err)
		return
	}
	if relatimeDue(in.Atime, in.Mtime, in.Ctime, now) {
		if in, err = n.fs.store.Touch(n.ino, now); err != nil {
			n.errno("atime", err)
			return
		}
		if relatimeDue(in.Atime, in.Mtime, in.Ctime, now) {
			return // mtime or ctime is in the future: every read updates, as on ext4
		}
	}
	// Due again when the whole seconds since atime reach the window, as the kernel counts.
	until := time.Unix(in.Atime.Unix(), 0).Add(relatimeWindow).UnixNano()
	n.atime.quiet.Store(&atimeQuiet{changes: changes, until: until})
}
