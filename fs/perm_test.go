package fs_test

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/meta"
)

// Unprivileged users for the permission tests; they need no passwd entries.
const (
	alice = 1000
	bob   = 1001
	users = 100 // a group neither is in unless stated
)

// TestStickyBit: in a 1777 directory only a name's owner (or the directory's, or root) may
// remove or rename it.
func TestStickyBit(t *testing.T) {
	m := newMount(t)
	tmp := m.path("tmp")
	must(t, "mkdir", os.Mkdir(tmp, 0o777))
	must(t, "chmod 1777", unix.Chmod(tmp, 0o1777))
	must(t, "alice creates", asUser(t, alice, alice, func() error {
		return os.WriteFile(tmp+"/alices", []byte("mine"), 0o666)
	}))
	if st := lstat(t, tmp+"/alices"); st.Uid != alice || st.Gid != alice {
		t.Errorf("created as %d:%d, want %d:%d", st.Uid, st.Gid, alice, alice)
	}
	wantErrno(t, "bob unlinks alice's file", asUser(t, bob, bob, func() error {
		return unix.Unlink(tmp + "/alices")
	}), syscall.EPERM)
	wantErrno(t, "bob renames alice's file", asUser(t, bob, bob, func() error {
		return unix.Rename(tmp+"/alices", tmp+"/bobs")
	}), syscall.EPERM)
	must(t, "bob creates his own", asUser(t, bob, bob, func() error {
		return os.WriteFile(tmp+"/bobs", nil, 0o644)
	}))
	wantErrno(t, "bob replaces alice's file by rename", asUser(t, bob, bob, func() error {
		return unix.Rename(tmp+"/bobs", tmp+"/alices")
	}), syscall.EPERM)
	must(t, "alice unlinks her file", asUser(t, alice, alice, func() error {
		return unix.Unlink(tmp + "/alices")
	}))
	must(t, "root unlinks bob's file", unix.Unlink(tmp+"/bobs"))
}

// TestSetgidDirectory: names created in a setgid directory take its group, and new
// subdirectories inherit the bit, as inode_init_owner does on ext4.
func TestSetgidDirectory(t *testing.T) {
	m := newMount(t)
	d := m.path("shared")
	must(t, "mkdir", os.Mkdir(d, 0o777))
	must(t, "chown", os.Chown(d, 0, 4242))
	must(t, "chmod 2777", unix.Chmod(d, 0o2777))

	writeFile(t, d+"/root-file", nil, 0o644)
	must(t, "alice creates", asUser(t, alice, alice, func() error {
		if err := os.WriteFile(d+"/alice-file", nil, 0o644); err != nil {
			return err
		}
		return os.Mkdir(d+"/alice-dir", 0o755)
	}))
	for _, tt := range []struct {
		name string
		uid  uint32
		mode uint32
	}{
		{"root-file", 0, syscall.S_IFREG | 0o644},
		{"alice-file", alice, syscall.S_IFREG | 0o644},
		{"alice-dir", alice, syscall.S_IFDIR | 0o2755},
	} {
		st := lstat(t, d+"/"+tt.name)
		if st.Uid != tt.uid || st.Gid != 4242 || st.Mode != tt.mode {
			t.Errorf("%s: %d:%d mode %o, want %d:4242 mode %o", tt.name, st.Uid, st.Gid, st.Mode, tt.uid, tt.mode)
		}
	}
	// Without the bit, the creator's group.
	must(t, "chmod 0777", unix.Chmod(d, 0o777))
	must(t, "alice creates again", asUser(t, alice, alice, func() error {
		return os.WriteFile(d+"/plain", nil, 0o644)
	}))
	if st := lstat(t, d+"/plain"); st.Gid != alice {
		t.Errorf("plain: gid %d, want %d", st.Gid, alice)
	}
}

// TestSuidClearedOnWrite: a write, truncate or chown by someone without CAP_FSETID clears
// suid (and sgid with group execute), as on ext4; the kernel sends us that SETATTR.
func TestSuidClearedOnWrite(t *testing.T) {
	m := newMount(t)
	p := m.path("prog")
	reset := func(mode uint32) {
		t.Helper()
		writeFile(t, p, []byte("#!/bin/true\n"), 0o777)
		must(t, "chmod", unix.Chmod(p, mode))
	}
	mode := func() uint32 { return lstat(t, p).Mode &^ syscall.S_IFMT }

	reset(0o6777)
	must(t, "alice writes", asUser(t, alice, alice, func() error {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteAt([]byte("x"), 0)
		return err
	}))
	if got := mode(); got != 0o777 {
		t.Errorf("after a write by a user: mode %o, want 0777", got)
	}

	// O_DIRECT: the kernel sends no SETATTR for it but flags the WRITE itself
	// (FUSE_WRITE_KILL_SUIDGID).
	reset(0o6777)
	must(t, "alice writes with O_DIRECT", asUser(t, alice, alice, func() error {
		f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_DIRECT, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteAt(meta.AlignedBuffer(meta.BlockSize), 0)
		return err
	}))
	if got := mode(); got != 0o777 {
		t.Errorf("after an O_DIRECT write by a user: mode %o, want 0777", got)
	}

	reset(0o2767) // sgid without group execute is mandatory locking, not sgid: it stays
	must(t, "alice writes", asUser(t, alice, alice, func() error {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.Write([]byte("x"))
		return err
	}))
	if got := mode(); got != 0o2767 {
		t.Errorf("sgid without group x after a write: mode %o, want 02767", got)
	}

	reset(0o4777)
	must(t, "alice truncates", asUser(t, alice, alice, func() error { return os.Truncate(p, 1) }))
	if got := mode(); got != 0o777 {
		t.Errorf("after a truncate by a user: mode %o, want 0777", got)
	}

	reset(0o6777)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	must(t, "open", err)
	_, err = f.WriteAt([]byte("x"), 0)
	f.Close()
	must(t, "root writes", err)
	if got := mode(); got != 0o6777 {
		t.Errorf("after a write by root (CAP_FSETID): mode %o, want 06777", got)
	}

	reset(0o6755)
	must(t, "chown", os.Chown(p, alice, alice))
	if got := mode(); got != 0o755 {
		t.Errorf("after chown: mode %o, want 0755 (Linux clears suid/sgid on chown, even by root)", got)
	}
}

// TestPermissionChecks: with default_permissions the kernel checks mode bits and ownership.
func TestPermissionChecks(t *testing.T) {
	m := newMount(t)
	writeFile(t, m.path("secret"), []byte("root only"), 0o600)
	must(t, "chmod", unix.Chmod(m.path("secret"), 0o600))
	writeFile(t, m.path("shared"), []byte("everyone writes"), 0o666)
	must(t, "chmod", unix.Chmod(m.path("shared"), 0o666))
	must(t, "mkdir", os.Mkdir(m.path("closed"), 0o755))
	must(t, "mkdir", os.Mkdir(m.path("locked"), 0o700))
	writeFile(t, m.path("locked", "inside"), nil, 0o644)

	tests := []struct {
		what string
		op   func() error
		want syscall.Errno // 0: allowed
	}{
		{"read a 0600 file", func() error { _, err := os.ReadFile(m.path("secret")); return err }, syscall.EACCES},
		{"create in a 0755 root dir", func() error { return os.WriteFile(m.path("closed", "x"), nil, 0o644) }, syscall.EACCES},
		{"unlink in a 0755 root dir", func() error { return unix.Unlink(m.path("secret")) }, syscall.EACCES},
		{"stat inside a 0700 dir", func() error { return unix.Lstat(m.path("locked", "inside"), new(unix.Stat_t)) }, syscall.EACCES},
		{"chmod another's file", func() error { return unix.Chmod(m.path("shared"), 0o777) }, syscall.EPERM},
		{"chown another's file", func() error { return unix.Chown(m.path("shared"), alice, alice) }, syscall.EPERM},
		{"set times of another's file", func() error {
			ts := []unix.Timespec{{Sec: 1}, {Sec: 1}}
			return unix.UtimesNanoAt(unix.AT_FDCWD, m.path("shared"), ts, 0)
		}, syscall.EPERM},
		{"touch (UTIME_NOW) a writable file", func() error {
			return unix.UtimesNanoAt(unix.AT_FDCWD, m.path("shared"), nil, 0)
		}, 0},
		{"write a 0666 file", func() error { return os.WriteFile(m.path("shared"), []byte("alice"), 0) }, 0},
		{"user xattr on another's 0666 file", func() error {
			return unix.Setxattr(m.path("shared"), "user.by-alice", []byte("v"), 0)
		}, 0},
		{"trusted xattr", func() error {
			return unix.Setxattr(m.path("shared"), "trusted.x", []byte("v"), 0)
		}, syscall.EPERM},
	}
	for _, tt := range tests {
		err := asUser(t, alice, users, tt.op)
		if tt.want == 0 {
			if err != nil {
				t.Errorf("%s as alice: %v, want success", tt.what, err)
			}
			continue
		}
		wantErrno(t, tt.what+" as alice", err, tt.want)
	}

	// Alice's own file: she may chmod it, but not give it away or to a group she is not in.
	writeFile(t, m.path("alices"), nil, 0o644)
	must(t, "chown to alice", os.Chown(m.path("alices"), alice, alice))
	must(t, "alice chmods her file", asUser(t, alice, alice, func() error {
		return unix.Chmod(m.path("alices"), 0o600)
	}))
	wantErrno(t, "alice gives her file away", asUser(t, alice, alice, func() error {
		return unix.Chown(m.path("alices"), bob, -1)
	}), syscall.EPERM)
	wantErrno(t, "alice chgrps to a group she is not in", asUser(t, alice, alice, func() error {
		return unix.Chown(m.path("alices"), -1, users)
	}), syscall.EPERM)
	// chmod g+s on a file of a group she is not in: the kernel drops the bit silently.
	must(t, "chown to users", os.Chown(m.path("alices"), alice, users))
	must(t, "alice sets sgid", asUser(t, alice, alice, func() error {
		return unix.Chmod(m.path("alices"), 0o2755)
	}))
	if st := lstat(t, m.path("alices")); st.Mode&^syscall.S_IFMT != 0o755 {
		t.Errorf("chmod g+s by a non-member: mode %o, want 0755", st.Mode)
	}
}

// TestSuidClearedBeforeExec: a program run right after an O_DIRECT write by a user runs
// without the setuid bit the write cleared: the kernel, which did not clear it itself, does
// not run it from a mode it cached before the write.
func TestSuidClearedBeforeExec(t *testing.T) {
	prog, err := os.ReadFile("/usr/bin/id")
	if err != nil || len(prog) < meta.BlockSize {
		t.Skipf("skipped: no /usr/bin/id to run setuid: %v", err)
	}
	m := newMount(t)
	p := m.path("id")
	writeFile(t, p, prog, 0o755)
	must(t, "chmod", unix.Chmod(p, 0o6777))
	lstat(t, p) // the kernel now caches the setuid mode
	must(t, "alice rewrites the first block with O_DIRECT", asUser(t, alice, alice, func() error {
		f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_DIRECT, 0)
		if err != nil {
			return err
		}
		buf := meta.AlignedBuffer(meta.BlockSize)
		copy(buf, prog)
		if _, err := f.WriteAt(buf, 0); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}))
	// Through a shell: exec'ing a file on the mount straight from the process that serves it
	// can hang (the vfork'ed child waits on this server while a GC waits on the forking
	// thread), as TestMmap's helper explains for page faults.
	cmd := command(t, "/bin/sh", "-c", `exec "$0" -u`, p)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: alice, Gid: alice}}
	out, err := cmd.Output()
	must(t, "run it as alice", err)
	if euid := strings.TrimSpace(string(out)); euid != fmt.Sprint(alice) {
		t.Errorf("run right after the write, it ran with euid %s, want %d: the cleared setuid bit was still cached", euid, alice)
	}
}
