package fs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// killPrivFS clears setuid and setgid on the writes the kernel asks it for.
//
// For a buffered write by a user without CAP_FSETID the kernel clears the bits itself, with a
// SETATTR, as ext4 does (file_remove_privs). A write through a FOPEN_DIRECT_IO handle (every
// O_DIRECT open) skips that and instead flags the WRITE with FUSE_WRITE_KILL_SUIDGID, leaving
// the clearing to the server. go-fuse's node API does not pass write flags on, so the flag is
// read here, where the raw request still has it, and honoured through the node API's own
// GETATTR and SETATTR: the node tree keeps one path for changing a mode. The kernel holds the
// inode lock across the write, so no chmod comes between the two.
type killPrivFS struct {
	fuse.RawFileSystem
}

func (k killPrivFS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	if st := k.killSuidgid(cancel, in); !st.Ok() {
		return 0, st
	}
	return k.RawFileSystem.Write(cancel, in, data)
}

func (k killPrivFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	if st := k.killSuidgid(cancel, in); !st.Ok() {
		return 0, st
	}
	return k.RawFileSystem.Writev(cancel, in, data)
}

// killSuidgid clears S_ISUID, and S_ISGID when the group may execute (without it S_ISGID
// marks mandatory locking, not a set-group-ID program), as should_remove_suid does.
func (k killPrivFS) killSuidgid(cancel <-chan struct{}, in *fuse.WriteIn) fuse.Status {
	if in.WriteFlags&fuse.WRITE_KILL_SUIDGID == 0 {
		return fuse.OK
	}
	var attr fuse.AttrOut
	if st := k.RawFileSystem.GetAttr(cancel, &fuse.GetAttrIn{InHeader: in.InHeader}, &attr); !st.Ok() {
		return st
	}
	mode := attr.Mode &^ syscall.S_IFMT
	kill := uint32(syscall.S_ISUID)
	if mode&syscall.S_IXGRP != 0 {
		kill |= syscall.S_ISGID
	}
	if mode&kill == 0 {
		return fuse.OK
	}
	set := fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{InHeader: in.InHeader, Valid: fuse.FATTR_MODE, Mode: mode &^ kill}}
	return k.RawFileSystem.SetAttr(cancel, &set, &attr)
}
