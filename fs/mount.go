package fs

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/meta"
)

// Options configure a mount.
type Options struct {
	// Debug turns on go-fuse's protocol log, one line per request and reply, written to
	// Logger at slog.LevelDebug (the handler must let Debug through).
	Debug bool
	// Logger receives storage failures and go-fuse's diagnostics. nil: discard.
	Logger *slog.Logger
	// FsName is the mount's source in /proc/mounts (the store path).
	FsName string
	// ReadOnly mounts read-only (MS_RDONLY): the kernel refuses every change with EROFS.
	ReadOnly bool
	// KernelOptions are filesystem-independent mount options: noatime, nodiratime, relatime,
	// strictatime, nosuid, suid, nodev, dev, noexec, exec, sync, async, dirsync. Without
	// them the mount behaves like ext4's defaults (suid and devices honoured, relatime).
	// The atime options take effect through swapfs itself, which updates atime on reads as
	// they say (the kernel leaves atime on FUSE mounts to the daemon); so does ReadOnly,
	// under which reads change nothing.
	KernelOptions []string
}

const (
	// attrTimeout is how long the kernel trusts attributes and names it got from us. All
	// changes pass through the kernel, which updates its caches as it makes them, so the
	// timeout only bounds how often unchanged attributes are asked for again.
	attrTimeout = time.Second
	// maxWrite is the largest READ or WRITE request: 1 MiB, the kernel's limit.
	maxWrite = 1 << 20
	// maxBackground is how many asynchronous requests (readahead, async direct I/O) the
	// kernel keeps in flight: at least a loop device's queue depth (hw_queue_depth, 128 by
	// default), so that the loop driver is not throttled by FUSE before its own queue fills.
	//
	// go-fuse's MaxInflightRequestBytes is left unbounded on purpose: requests in flight
	// are bounded by the kernel (maxBackground asynchronous ones, and one per blocked
	// caller), and a bound here could deadlock the daemon, whose active-swap checks query
	// loop devices (LOOP_GET_STATUS64 stats the backing file) and so send GETATTRs to this
	// very mount, which need a free reader while the requests waiting for them hold theirs.
	maxBackground = 128
)

// Server is a mounted swapfs: the FUSE server, and the swap side of the mount for the
// daemon's control socket.
type Server struct {
	*fuse.Server
	fsys *filesystem
	root *Node
}

// Mount serves store at mountpoint with a direct mount(2) (root only; fusermount is not
// used) and returns once the kernel has answered INIT, so the mount is ready. The store must
// stay open until the server's Wait returns; the caller closes it after that.
func Mount(store *meta.Store, mountpoint string, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	flags, err := mountFlags(opts)
	if err != nil {
		return nil, err
	}
	root, err := store.GetInode(meta.RootIno)
	if err != nil {
		return nil, fmt.Errorf("read the root directory (inode %d) of the store: %w", meta.RootIno, err)
	}
	fsys := &filesystem{store: store, log: log, atime: atimePolicyOf(flags), open: make(map[uint64]int),
		swap: newSwapFiles(store), mounted: true}
	fsys.huge = NewHugeBuffers(fsys.swap.attached)
	if err := fsys.swap.repinAll(log); err != nil {
		return nil, fmt.Errorf("pin the store's swapfiles: %w", err)
	}
	timeout := attrTimeout
	protoLevel := slog.LevelWarn // go-fuse writes its rare complaints to the same logger
	if opts.Debug {
		protoLevel = slog.LevelDebug
	}
	gopts := &gofs.Options{
		MountOptions: fuse.MountOptions{
			// Root serves every user, as ext4 does; the kernel checks permissions.
			AllowOther:        true,
			Options:           []string{"default_permissions"},
			Name:              "swapfs", // /proc/mounts type: fuse.swapfs
			FsName:            opts.FsName,
			DirectMount:       true,
			DirectMountStrict: true,
			DirectMountFlags:  flags,
			Debug:             opts.Debug,
			Logger:            slog.NewLogLogger(log.Handler(), protoLevel),
		},
		EntryTimeout: &timeout,
		AttrTimeout:  &timeout,
		// Mode 000 is a valid mode; go-fuse would otherwise show it as 0644/0755.
		NullPermissions: true,
		RootStableAttr:  &gofs.StableAttr{Ino: meta.RootIno, Gen: root.Gen},
		Logger:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	SetTransferOptions(&gopts.MountOptions)
	// gofs.Mount, with the node tree's raw filesystem wrapped.
	rootNode := &Node{fs: fsys, ino: meta.RootIno}
	raw := &killPrivFS{RawFileSystem: gofs.NewNodeFS(rootNode, gopts), store: store}
	server, err := fuse.NewServer(raw, mountpoint, &gopts.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("mount fuse.swapfs on %s: %w", mountpoint, err)
	}
	raw.server = server
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		return nil, fmt.Errorf("mount fuse.swapfs on %s: %w", mountpoint, err)
	}
	// Loop devices name their backing file by st_dev and st_ino; st_dev of a FUSE mount is
	// known only once it is mounted.
	var st syscall.Stat_t
	if err := syscall.Stat(mountpoint, &st); err != nil {
		server.Unmount()
		return nil, fmt.Errorf("stat the new mount %s: %w", mountpoint, err)
	}
	fsys.swap.dev = st.Dev
	// As the kernel prints paths (sysfs backing_file): absolute, without symlinks.
	if abs, err := filepath.Abs(mountpoint); err == nil {
		if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
			abs = filepath.Join(dir, filepath.Base(abs))
		}
		fsys.swap.mountpoint = abs
	}
	return &Server{Server: server, fsys: fsys, root: rootNode}, nil
}

// SetTransferOptions sets how requests move between the kernel and the daemon, as swapfs
// mounts: swapbench's FUSE floor mounts with them too, so that it measures what a swapfs
// request costs before the daemon does any I/O.
func SetTransferOptions(o *fuse.MountOptions) {
	o.MaxWrite = maxWrite
	o.MaxBackground = maxBackground
	// Asynchronous direct I/O (io_submit, and the loop driver, which submits its direct I/O
	// as aio) reaches us as parallel requests, instead of the kernel waiting for each before
	// it sends the next.
	o.ExtraCapabilities |= fuse.CAP_ASYNC_DIO
	// go-fuse would splice READ replies through a pipe; swapfs's replies are already in
	// memory, so that is one more copy and two more syscalls per READ.
	o.DisableSplice = true
}

// kernelFlags maps mount(8)'s filesystem-independent options to mount(2) flags: with a
// direct mount they are flags, not part of the option string, which the kernel's fuse
// parser would refuse.
var kernelFlags = map[string]struct{ set, clear uintptr }{
	"noatime":     {syscall.MS_NOATIME, syscall.MS_RELATIME | syscall.MS_STRICTATIME},
	"relatime":    {syscall.MS_RELATIME, syscall.MS_NOATIME | syscall.MS_STRICTATIME},
	"strictatime": {syscall.MS_STRICTATIME, syscall.MS_NOATIME | syscall.MS_RELATIME},
	"nodiratime":  {syscall.MS_NODIRATIME, 0},
	"nosuid":      {syscall.MS_NOSUID, 0},
	"suid":        {0, syscall.MS_NOSUID},
	"nodev":       {syscall.MS_NODEV, 0},
	"dev":         {0, syscall.MS_NODEV},
	"noexec":      {syscall.MS_NOEXEC, 0},
	"exec":        {0, syscall.MS_NOEXEC},
	"sync":        {syscall.MS_SYNCHRONOUS, 0},
	"async":       {0, syscall.MS_SYNCHRONOUS},
	"dirsync":     {syscall.MS_DIRSYNC, 0},
	// relatime is the kernel's default; these only undo an earlier option.
	"norelatime":    {0, syscall.MS_RELATIME},
	"nostrictatime": {0, syscall.MS_STRICTATIME},
	"lazytime":      {unix.MS_LAZYTIME, 0},
	"nolazytime":    {0, unix.MS_LAZYTIME},
	"nosymfollow":   {unix.MS_NOSYMFOLLOW, 0},
}

// IsKernelOption reports whether opt is one of mount(8)'s filesystem-independent options
// ("FILESYSTEM-INDEPENDENT MOUNT OPTIONS") that Options.KernelOptions takes.
func IsKernelOption(opt string) bool {
	_, ok := kernelFlags[opt]
	return ok
}

// mountFlags computes the mount(2) flags, so that devices and suid programs work as on
// ext4 unless the options say otherwise. go-fuse reads 0 as "nosuid,nodev", so no flags at
// all are passed as MS_MGC_VAL, the kernel's old "no flags" marker (it cannot be combined
// with flags: its bits overlap MS_RELATIME and MS_STRICTATIME).
func mountFlags(opts Options) (uintptr, error) {
	var flags uintptr
	if opts.ReadOnly {
		flags |= syscall.MS_RDONLY
	}
	for _, o := range opts.KernelOptions {
		f, ok := kernelFlags[o]
		if !ok {
			return 0, fmt.Errorf("mount option %q is not a kernel mount option swapfs passes on", o)
		}
		flags = flags&^f.clear | f.set
	}
	if flags == 0 {
		flags = syscall.MS_MGC_VAL
	}
	return flags, nil
}
