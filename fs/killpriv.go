package fs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/swapfs/swapfs/meta"
)

// killPrivFS clears setuid and setgid on the writes the kernel asks it for.
//
// For a buffered write by a user without CAP_FSETID the kernel clears the bits itself, with a
// SETATTR, as ext4 does (file_remove_privs). A write through a FOPEN_DIRECT_IO handle (every
// O_DIRECT open) skips that and instead flags the WRITE with FUSE_WRITE_KILL_SUIDGID, leaving
// the clearing to the server. go-fuse's node API does not pass write flags on, so the flag is
// read here, where the raw request still has it. The node API's GETATTR names the inode; the
// store clears the bits in one transaction, since an asynchronous direct write (aio,
// io_uring) comes without the inode lock and a chmod may run alongside. The kernel did not
// ask for the change, so it is told to drop the attributes it caches.
type killPrivFS struct {
	fuse.RawFileSystem
	store  *meta.Store
	server *fuse.Server // set before the server serves
}

func (k *killPrivFS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	if st := k.killSuidgid(cancel, in); !st.Ok() {
		return 0, st
	}
	return k.RawFileSystem.Write(cancel, in, data)
}

func (k *killPrivFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	if st := k.killSuidgid(cancel, in); !st.Ok() {
		return 0, st
	}
	return k.RawFileSystem.Writev(cancel, in, data)
}

func (k *killPrivFS) killSuidgid(cancel <-chan struct{}, in *fuse.WriteIn) fuse.Status {
	if in.WriteFlags&fuse.WRITE_KILL_SUIDGID == 0 {
		return fuse.OK
	}
	var attr fuse.AttrOut
	if st := k.RawFileSystem.GetAttr(cancel, &fuse.GetAttrIn{InHeader: in.InHeader}, &attr); !st.Ok() {
		return st
	}
	if attr.Mode&(syscall.S_ISUID|syscall.S_ISGID) == 0 {
		return fuse.OK // the common case: nothing to clear, no transaction
	}
	changed, err := k.store.ClearSetID(attr.Ino)
	if err != nil {
		return fuse.Status(toErrno(err))
	}
	if changed {
		// Not from this request: a notification must not wait on the kernel while it waits
		// for our reply.
		go k.server.InodeNotify(in.NodeId, -1, 0)
	}
	return fuse.OK
}
