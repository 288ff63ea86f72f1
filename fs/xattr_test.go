package fs_test

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestXattrs(t *testing.T) {
	m := newMount(t)
	f := m.path("f")
	writeFile(t, f, nil, 0o644)

	_, err := unix.Getxattr(f, "user.missing", make([]byte, 10))
	wantErrno(t, "get missing", err, syscall.ENODATA)
	wantErrno(t, "remove missing", unix.Removexattr(f, "user.missing"), syscall.ENODATA)
	wantErrno(t, "replace missing", unix.Setxattr(f, "user.a", []byte("x"), unix.XATTR_REPLACE), syscall.ENODATA)

	must(t, "create a", unix.Setxattr(f, "user.a", []byte("value a"), unix.XATTR_CREATE))
	wantErrno(t, "create existing", unix.Setxattr(f, "user.a", []byte("again"), unix.XATTR_CREATE), syscall.EEXIST)
	must(t, "replace a", unix.Setxattr(f, "user.a", []byte("value A"), unix.XATTR_REPLACE))
	must(t, "set b", unix.Setxattr(f, "user.b", nil, 0)) // an empty value is a value
	must(t, "set security", unix.Setxattr(f, "security.test", []byte("label"), 0))
	must(t, "set trusted", unix.Setxattr(f, "trusted.t", bytes.Repeat([]byte{0, 1, 2}, 1000), 0))

	// Size query, exact buffer, too small a buffer.
	if n, err := unix.Getxattr(f, "user.a", nil); err != nil || n != 7 {
		t.Errorf("size query: %d %v, want 7", n, err)
	}
	buf := make([]byte, 7)
	if n, err := unix.Getxattr(f, "user.a", buf); err != nil || string(buf[:n]) != "value A" {
		t.Errorf("get a: %q %v", buf[:n], err)
	}
	_, err = unix.Getxattr(f, "user.a", make([]byte, 6))
	wantErrno(t, "get into a small buffer", err, syscall.ERANGE)
	if n, err := unix.Getxattr(f, "user.b", make([]byte, 4)); err != nil || n != 0 {
		t.Errorf("get empty value: %d %v", n, err)
	}
	big := make([]byte, 3000)
	if n, err := unix.Getxattr(f, "trusted.t", big); err != nil || !bytes.Equal(big[:n], bytes.Repeat([]byte{0, 1, 2}, 1000)) {
		t.Errorf("get binary value: %d %v", n, err)
	}

	// List: NUL-terminated names.
	size, err := unix.Listxattr(f, nil)
	must(t, "list size", err)
	list := make([]byte, size)
	n, err := unix.Listxattr(f, list)
	must(t, "list", err)
	names := strings.Split(strings.TrimSuffix(string(list[:n]), "\x00"), "\x00")
	slices.Sort(names)
	if want := []string{"security.test", "trusted.t", "user.a", "user.b"}; !slices.Equal(names, want) {
		t.Errorf("list %q, want %q", names, want)
	}
	_, err = unix.Listxattr(f, make([]byte, size-1))
	wantErrno(t, "list into a small buffer", err, syscall.ERANGE)

	must(t, "remove a", unix.Removexattr(f, "user.a"))
	_, err = unix.Getxattr(f, "user.a", buf)
	wantErrno(t, "get removed", err, syscall.ENODATA)

	// Limits: 255-byte names, 64 KiB values.
	wantErrno(t, "256-byte name", unix.Setxattr(f, "user."+strings.Repeat("n", 251), nil, 0), syscall.ERANGE)
	must(t, "255-byte name", unix.Setxattr(f, "user."+strings.Repeat("n", 250), []byte("ok"), 0))
	must(t, "64 KiB value", unix.Setxattr(f, "user.big", make([]byte, 65536), 0))
	wantErrno(t, "value over 64 KiB", unix.Setxattr(f, "user.big", make([]byte, 65537), 0), syscall.E2BIG)

	// Directories and symlinks: user.* on a directory works; on a symlink the kernel refuses it.
	must(t, "mkdir", os.Mkdir(m.path("d"), 0o755))
	must(t, "dir xattr", unix.Setxattr(m.path("d"), "user.d", []byte("dir"), 0))
	must(t, "symlink", os.Symlink("f", m.path("l")))
	wantErrno(t, "user xattr on a symlink", unix.Lsetxattr(m.path("l"), "user.l", []byte("x"), 0), syscall.EPERM)
	must(t, "trusted xattr on a symlink", unix.Lsetxattr(m.path("l"), "trusted.l", []byte("x"), 0))

	// Xattrs go with the inode: gone with its last name, kept across rename.
	must(t, "rename", os.Rename(f, m.path("g")))
	if n, err := unix.Getxattr(m.path("g"), "user.b", nil); err != nil || n != 0 {
		t.Errorf("after rename: %d %v", n, err)
	}
}

// acl encodes a POSIX ACL xattr: tag, perm pairs (ids undefined).
func acl(entries ...uint16) []byte {
	b := []byte{2, 0, 0, 0}
	for i := 0; i+1 < len(entries); i += 2 {
		b = append(b, byte(entries[i]), byte(entries[i]>>8), byte(entries[i+1]), byte(entries[i+1]>>8),
			0xff, 0xff, 0xff, 0xff)
	}
	return b
}

// TestPosixACL: ACLs are not supported, but an access ACL that only restates a mode (as cp
// -a, tar and rsync write them) sets that mode, as on ext4.
func TestPosixACL(t *testing.T) {
	m := newMount(t)
	f := m.path("f")
	writeFile(t, f, nil, 0o644)
	must(t, "chmod", unix.Chmod(f, 0o4644))
	const userObj, user, groupObj, mask, other = 0x01, 0x02, 0x04, 0x10, 0x20

	must(t, "minimal ACL", unix.Setxattr(f, "system.posix_acl_access", acl(userObj, 7, groupObj, 5, other, 0), 0))
	if st := lstat(t, f); st.Mode != syscall.S_IFREG|0o4750 {
		t.Errorf("after a minimal ACL: mode %o, want %o", st.Mode, syscall.S_IFREG|0o4750)
	}
	_, err := unix.Getxattr(f, "system.posix_acl_access", make([]byte, 100))
	wantErrno(t, "get the access ACL", err, syscall.ENODATA)
	named := acl(userObj, 7, user, 7, groupObj, 5, mask, 7, other, 0)
	named[4+8+4] = 0xe8 // the named user is uid 1000
	named[4+8+5], named[4+8+6], named[4+8+7] = 3, 0, 0
	wantErrno(t, "ACL with a named user", unix.Setxattr(f, "system.posix_acl_access", named, 0), syscall.EOPNOTSUPP)
	wantErrno(t, "ACL without other", unix.Setxattr(f, "system.posix_acl_access", acl(userObj, 7, groupObj, 5), 0), syscall.EINVAL)
	must(t, "mkdir", os.Mkdir(m.path("d"), 0o755))
	wantErrno(t, "default ACL", unix.Setxattr(m.path("d"), "system.posix_acl_default",
		acl(userObj, 7, groupObj, 5, other, 5), 0), syscall.EOPNOTSUPP)
	if n, err := unix.Listxattr(f, nil); err != nil || n != 0 {
		t.Errorf("listxattr after ACL calls: %d %v, want nothing stored", n, err)
	}
}

// TestXattrNamespaces: as on ext4, names outside user., trusted. and security. (system.*
// but the ACL names, or no namespace at all), which the kernel lets every user of the mount
// through, are refused; trusted.* names are listed to root only.
func TestXattrNamespaces(t *testing.T) {
	m := newMount(t)
	f := m.path("f")
	writeFile(t, f, []byte("x"), 0o666)
	must(t, "chmod", os.Chmod(f, 0o666))
	for _, name := range []string{"system.evil", "bogus", "os2.name"} {
		wantErrno(t, "root sets "+name, unix.Setxattr(f, name, []byte("v"), 0), syscall.EOPNOTSUPP)
		wantErrno(t, "alice sets "+name, asUser(t, alice, alice, func() error {
			return unix.Setxattr(f, name, []byte("v"), 0)
		}), syscall.EOPNOTSUPP)
		_, err := unix.Getxattr(f, name, nil)
		wantErrno(t, "get "+name, err, syscall.EOPNOTSUPP)
		wantErrno(t, "remove "+name, unix.Removexattr(f, name), syscall.EOPNOTSUPP)
	}
	must(t, "root sets trusted.secret", unix.Setxattr(f, "trusted.secret", []byte("v"), 0))
	must(t, "alice sets user.mine", asUser(t, alice, alice, func() error { return unix.Setxattr(f, "user.mine", []byte("v"), 0) }))
	list := func() string {
		b := make([]byte, 4096)
		n, err := unix.Listxattr(f, b)
		must(t, "listxattr", err)
		return string(b[:n])
	}
	if got := list(); got != "trusted.secret\x00user.mine\x00" {
		t.Errorf("root lists %q", got)
	}
	var alices string
	must(t, "alice lists", asUser(t, alice, alice, func() error { alices = list(); return nil }))
	if alices != "user.mine\x00" {
		t.Errorf("alice lists %q, want only user.mine", alices)
	}
}
