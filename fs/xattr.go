package fs

import (
	"context"
	"encoding/binary"
	"strings"
	"syscall"

	"github.com/swapfs/swapfs/meta"
)

// The kernel checks xattr permissions by namespace before it asks (user.* only on regular
// files and directories, trusted.* and security.* writes for CAP_SYS_ADMIN), but it leaves
// system.* and names in no namespace to the filesystem, for every user of this allow_other
// mount: those are refused here (EOPNOTSUPP, as ext4 has no handler for them), but for the
// POSIX ACL names (see aclAccess). The store keeps the rest.

// xattrNamespaces are the namespaces whose names the store keeps.
var xattrNamespaces = []string{"user.", "trusted.", "security."}

func storedXattr(name string) bool {
	for _, ns := range xattrNamespaces {
		if strings.HasPrefix(name, ns) {
			return true
		}
	}
	return false
}

// Getxattr copies the value of attr into dest. An empty dest asks for the size; a dest that
// is too small is ERANGE, with the size (go-fuse answers the size query for ERANGE too).
func (n *Node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if attr == aclAccess || attr == aclDefault {
		return 0, syscall.ENODATA // no ACL: the mode bits are all there is
	}
	if !storedXattr(attr) {
		return 0, syscall.EOPNOTSUPP
	}
	val, err := n.fs.store.GetXattr(n.ino, attr)
	if err != nil {
		return 0, n.errno("getxattr", err)
	}
	return fill(dest, len(val), func(b []byte) { copy(b, val) })
}

// Setxattr stores a value; flags (XATTR_CREATE, XATTR_REPLACE) are the store's.
func (n *Node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	defer n.changed()
	switch attr {
	case aclAccess:
		return n.setACL(data)
	case aclDefault:
		return syscall.EOPNOTSUPP
	}
	if !storedXattr(attr) {
		return syscall.EOPNOTSUPP
	}
	return n.errno("setxattr", n.fs.store.SetXattr(n.ino, attr, data, flags))
}

// Removexattr removes attr: ENODATA if there is none.
func (n *Node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if attr == aclAccess || attr == aclDefault {
		return syscall.ENODATA
	}
	if !storedXattr(attr) {
		return syscall.EOPNOTSUPP
	}
	defer n.changed()
	return n.errno("removexattr", n.fs.store.RemoveXattr(n.ino, attr))
}

// Listxattr writes the names, each followed by a NUL, as listxattr(2) returns them. As on
// ext4, trusted.* names are listed only to a caller who may read them (root: FUSE passes no
// capabilities, and uid 0 stands for CAP_SYS_ADMIN).
func (n *Node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	all, err := n.fs.store.ListXattr(n.ino)
	if err != nil {
		return 0, n.errno("listxattr", err)
	}
	uid, _ := caller(ctx)
	names := all[:0]
	for _, name := range all {
		if storedXattr(name) && (uid == 0 || !strings.HasPrefix(name, "trusted.")) {
			names = append(names, name)
		}
	}
	size := 0
	for _, name := range names {
		size += len(name) + 1
	}
	return fill(dest, size, func(b []byte) {
		for _, name := range names {
			b = b[copy(b, name):]
			b[0], b = 0, b[1:]
		}
	})
}

// fill answers a getxattr/listxattr-style request for size bytes that put writes: the size
// alone for an empty dest, ERANGE for a dest that is too small.
func fill(dest []byte, size int, put func([]byte)) (uint32, syscall.Errno) {
	switch {
	case len(dest) == 0:
		return uint32(size), 0
	case len(dest) < size:
		return uint32(size), syscall.ERANGE
	}
	put(dest[:size])
	return uint32(size), 0
}

// POSIX ACLs. The mount does not negotiate FUSE_POSIX_ACL, so the kernel neither enforces
// ACLs nor keeps the mode in step with them: it passes system.posix_acl_* through as plain
// xattrs. Storing them would show ACLs that nobody enforces, and would lose the mode that
// tools set through them (cp -a, tar and rsync set a file's mode with an ACL equivalent to
// it). So, as ext4 does with such an ACL, an access ACL equivalent to a mode becomes that
// mode, and any other ACL is EOPNOTSUPP, on which those tools fall back to chmod.
const (
	aclAccess  = "system.posix_acl_access"
	aclDefault = "system.posix_acl_default"
)

// setACL applies an access ACL that is equivalent to permission bits.
func (n *Node) setACL(data []byte) syscall.Errno {
	perm, errno := aclMode(data)
	if errno != 0 {
		return errno
	}
	in, err := n.fs.store.GetInode(n.ino)
	if err != nil {
		return n.errno("setxattr acl", err)
	}
	mode := in.Mode&0o7000 | perm
	_, err = n.fs.store.SetAttr(n.ino, meta.SetAttr{Mode: &mode})
	return n.errno("setxattr acl", err)
}

// ACL xattr format (include/uapi/linux/posix_acl_xattr.h): a 4-byte version, then 8-byte
// entries of tag(2) perm(2) id(4), little-endian.
const (
	aclVersion  = 2
	aclUserObj  = 0x01
	aclGroupObj = 0x04
	aclOther    = 0x20
)

// aclMode returns the permission bits an ACL stands for: EINVAL for a malformed ACL,
// EOPNOTSUPP for one that needs more than the mode (named users or groups, a mask).
func aclMode(data []byte) (uint32, syscall.Errno) {
	if len(data) < 4 || (len(data)-4)%8 != 0 || binary.LittleEndian.Uint32(data) != aclVersion {
		return 0, syscall.EINVAL
	}
	var perm uint32
	seen := 0
	for e := data[4:]; len(e) > 0; e = e[8:] {
		tag, p := binary.LittleEndian.Uint16(e), uint32(binary.LittleEndian.Uint16(e[2:]))
		if p&^7 != 0 {
			return 0, syscall.EINVAL
		}
		switch tag {
		case aclUserObj:
			perm |= p << 6
		case aclGroupObj:
			perm |= p << 3
		case aclOther:
			perm |= p
		default:
			return 0, syscall.EOPNOTSUPP
		}
		if seen&int(tag) != 0 {
			return 0, syscall.EINVAL
		}
		seen |= int(tag)
	}
	if seen != aclUserObj|aclGroupObj|aclOther {
		return 0, syscall.EINVAL
	}
	return perm, 0
}
