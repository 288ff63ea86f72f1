package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/swapfs/swapfs/swap"
)

// The daemon answers on a unix socket, one JSON request and one JSON reply per connection:
// "swapfs status" asks how it is, "swapfs swapon" asks it to pin a file. The socket is named
// after the mountpoint, as the log is, so an administrator finds it from the mount alone:
// /run/swapfs/MOUNTPOINT.sock, MOUNTPOINT escaped as systemd-escape --path does.
const (
	defaultRunDir = "/run/swapfs"
	// envRunDir overrides the socket directory, for administrators and tests.
	envRunDir = "SWAPFS_RUN_DIR"
)

// Client timeouts. Pinning may allocate and write every block of a large file.
const (
	dialTimeout   = 5 * time.Second
	statusTimeout = 15 * time.Second
	pinTimeout    = 10 * time.Minute
	// requestReadTimeout bounds how long a connection may take to send its request.
	requestReadTimeout = 10 * time.Second
	maxRequestBytes    = 64 << 10
)

// swapService is the swap side of a mount, as *fs.Server implements it.
type swapService interface {
	SwapStatus() swap.Status
	PinSwapfile(ino uint64) (swap.FileStatus, error)
	ActiveSwapfiles() []string
}

// controlRequest is one request: Op "status", or Op "pin" with Ino.
type controlRequest struct {
	Op  string `json:"op"`
	Ino uint64 `json:"ino,omitempty"`
	// Store, when set, is the store the client found mounted where it asks: a daemon that
	// serves another (a swapfs mount stacked on the same directory answers for the one
	// below) refuses, since the inode number means nothing in its store.
	Store string `json:"store,omitempty"`
}

// controlResponse is the reply. Error is set when the request failed; the daemon fields are
// always set, so a reply says which daemon it comes from.
type controlResponse struct {
	Error      string           `json:"error,omitempty"`
	Pid        int              `json:"pid"`
	Store      string           `json:"store"`
	Mountpoint string           `json:"mountpoint"`
	Uptime     time.Duration    `json:"uptime_ns"`
	Hardening  *hardeningReport `json:"hardening,omitempty"` // op status
	Swap       *swap.Status     `json:"swap,omitempty"`      // op status
	File       *swap.FileStatus `json:"file,omitempty"`      // op pin
}

// controlSocketPath is where the daemon of mountpoint listens. A name too long for a socket
// address (108 bytes, unix(7)) is shortened to a hash of the mountpoint.
func controlSocketPath(mountpoint string) string {
	dir := os.Getenv(envRunDir)
	if dir == "" {
		dir = defaultRunDir
	}
	p := filepath.Join(dir, escapePath(mountpoint)+".sock")
	if len(p) < len(unix.RawSockaddrUnix{}.Path) {
		return p
	}
	return filepath.Join(dir, fmt.Sprintf("%x.sock", fnv64(mountpoint)))
}

// fnv64 is FNV-1a: only a short stable name is needed, not a cryptographic hash.
func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// controlServer answers requests for one mount until Close.
type controlServer struct {
	path    string
	ln      *net.UnixListener
	svc     swapService
	hard    *hardening
	base    controlResponse // pid, store, mountpoint
	started time.Time
	logger  *slog.Logger
	wg      sync.WaitGroup
}

// startControl listens on path and serves in the background.
func startControl(path string, base controlResponse, started time.Time, svc swapService, hard *hardening,
	logger *slog.Logger) (*controlServer, error) {
	ln, err := listenControl(path)
	if err != nil {
		return nil, err
	}
	c := &controlServer{path: path, ln: ln, svc: svc, hard: hard, base: base, started: started, logger: logger}
	c.wg.Add(1)
	go c.acceptLoop()
	return c, nil
}

// listenControl creates the socket, replacing one left by a daemon that died; a socket some
// daemon still answers on is not taken over.
func listenControl(path string) (*net.UnixListener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("control socket directory: %w", err)
	}
	addr := &net.UnixAddr{Name: path, Net: "unix"}
	ln, err := net.ListenUnix("unix", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		conn, derr := net.DialTimeout("unix", path, time.Second)
		if derr == nil {
			conn.Close()
			return nil, fmt.Errorf("control socket %s is in use by another live swapfs daemon "+
				"(is something else mounted on the same mountpoint?)", path)
		}
		if rerr := os.Remove(path); rerr != nil {
			return nil, fmt.Errorf("remove the stale control socket %s: %w", path, rerr)
		}
		ln, err = net.ListenUnix("unix", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on control socket %s: %w", path, err)
	}
	// The directory is 0700 already; the socket itself says the same if the directory was
	// made by someone else.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod control socket %s: %w", path, err)
	}
	return ln, nil
}

// Close stops listening, removes the socket and waits for requests in progress.
func (c *controlServer) Close() {
	c.ln.Close() // unlinks the socket: ListenUnix created it
	c.wg.Wait()
}

func (c *controlServer) acceptLoop() {
	defer c.wg.Done()
	for {
		conn, err := c.ln.AcceptUnix()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			c.logger.Warn("control socket: accept failed", "socket", c.path, "err", err)
			time.Sleep(100 * time.Millisecond) // EMFILE and the like: do not spin
			continue
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer conn.Close()
			c.handle(conn)
		}()
	}
}

// handle serves one connection: one request, one reply.
func (c *controlServer) handle(conn *net.UnixConn) {
	if err := checkPeer(conn); err != nil {
		c.logger.Warn("control socket: refused a connection", "err", err)
		c.reply(conn, controlResponse{Error: err.Error()})
		return
	}
	conn.SetReadDeadline(time.Now().Add(requestReadTimeout))
	var req controlRequest
	if err := json.NewDecoder(io.LimitReader(conn, maxRequestBytes)).Decode(&req); err != nil {
		c.reply(conn, controlResponse{Error: fmt.Sprintf("cannot read the request: %v", err)})
		return
	}
	c.reply(conn, c.answer(req))
}

// checkPeer admits root and the daemon's own user: the socket can pin files.
func checkPeer(conn *net.UnixConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("peer credentials: %w", cerr)
	}
	if cred.Uid != 0 && int(cred.Uid) != os.Geteuid() {
		return fmt.Errorf("uid %d (pid %d) may not use the control socket: only root may", cred.Uid, cred.Pid)
	}
	return nil
}

func (c *controlServer) answer(req controlRequest) controlResponse {
	resp := c.base
	resp.Uptime = time.Since(c.started).Round(time.Second)
	switch req.Op {
	case "status":
		st := c.svc.SwapStatus()
		resp.Swap = &st
		if c.hard != nil {
			r := c.hard.report()
			resp.Hardening = &r
		}
	case "pin":
		if req.Ino == 0 {
			resp.Error = "pin: no inode number given"
			break
		}
		if req.Store != "" && filepath.Clean(req.Store) != filepath.Clean(resp.Store) {
			resp.Error = fmt.Sprintf("this daemon serves store %s, not %s (two swapfs mounts on one directory?); nothing was done",
				resp.Store, req.Store)
			break
		}
		fst, err := c.svc.PinSwapfile(req.Ino)
		if err != nil {
			resp.Error = fmt.Sprintf("pin inode %d: %v", req.Ino, err)
			c.logger.Warn("control: pin refused", "ino", req.Ino, "err", err)
			break
		}
		resp.File = &fst
	default:
		resp.Error = fmt.Sprintf("unknown op %q (this daemon knows status and pin)", req.Op)
	}
	return resp
}

func (c *controlServer) reply(conn *net.UnixConn, resp controlResponse) {
	conn.SetWriteDeadline(time.Now().Add(requestReadTimeout))
	if err := json.NewEncoder(conn).Encode(resp); err != nil {
		c.logger.Warn("control socket: cannot send the reply", "err", err)
	}
}

// callDaemon sends req to the daemon serving mountpoint and returns its reply. The error is
// for a daemon that cannot be reached or does not answer; a refused request comes back in
// the reply's Error.
func callDaemon(mountpoint string, req controlRequest) (controlResponse, error) {
	timeout := statusTimeout
	if req.Op == "pin" {
		timeout = pinTimeout
	}
	return callSocket(controlSocketPath(mountpoint), mountpoint, req, timeout)
}

func callSocket(path, mountpoint string, req controlRequest, timeout time.Duration) (controlResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return controlResponse{}, dialError(path, mountpoint, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return controlResponse{}, fmt.Errorf("send %q to the swapfs daemon of %s (%s): %w", req.Op, mountpoint, path, err)
	}
	var resp controlResponse
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return controlResponse{}, fmt.Errorf("the swapfs daemon of %s did not answer %q within %v (socket %s); "+
				"it may be stuck: see %s", mountpoint, req.Op, timeout, path, logHint(mountpoint))
		}
		return controlResponse{}, fmt.Errorf("read the reply of the swapfs daemon of %s (%s): %w", mountpoint, path, err)
	}
	return resp, nil
}

// dialError says what a failure to connect means for the mount.
func dialError(path, mountpoint string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("no swapfs daemon answers for %s (no control socket %s): is swapfs mounted on %s? "+
			"('swapfs status' lists the swapfs mounts)", mountpoint, path, mountpoint)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("the swapfs daemon of %s is gone (nothing listens on %s): is swapfs mounted on %s? "+
			"If it still shows in /proc/mounts, its daemon died: see %s", mountpoint, path, mountpoint, logHint(mountpoint))
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the swapfs daemon of %s does not accept connections on %s within %v; it may be stuck: "+
			"see %s", mountpoint, path, dialTimeout, logHint(mountpoint))
	}
	return fmt.Errorf("connect to the swapfs daemon of %s (%s): %w", mountpoint, path, err)
}

// logHint says where the daemon of mountpoint logs (openLogFile).
func logHint(mountpoint string) string {
	dir := os.Getenv(envLogDir)
	if dir == "" {
		dir = defaultLogDir
	}
	return fmt.Sprintf("its log, %s (or swapfs.log in its store)", filepath.Join(dir, escapePath(mountpoint)+".log"))
}
