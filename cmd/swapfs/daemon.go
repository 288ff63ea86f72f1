package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Go cannot fork, so "swapfs mount" without -f starts itself again with -f, detached, and
// waits on a pipe for the daemon to say how the mount went. The environment tells the daemon
// which descriptor the pipe is and where its stderr (the log) goes.
const (
	envReadyFD = "SWAPFS_READY_FD"
	envLogPath = "SWAPFS_LOG_PATH"
	// envLogDir overrides the log directory, for administrators and tests.
	envLogDir = "SWAPFS_LOG_DIR"
)

const defaultLogDir = "/var/log/swapfs"

// Lines on the pipe: "info TEXT" to print, then "ready" or "error TEXT".
const (
	msgInfo  = "info "
	msgReady = "ready"
	msgError = "error "
)

// reporter tells whoever started the mount how it goes: the waiting parent over the pipe, or
// the terminal in the foreground.
type reporter struct {
	pipe *os.File // nil in the foreground
}

func reporterFromEnv() *reporter {
	v := os.Getenv(envReadyFD)
	if v == "" {
		return &reporter{}
	}
	os.Unsetenv(envReadyFD)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return &reporter{}
	}
	return &reporter{pipe: os.NewFile(uintptr(fd), "ready-pipe")}
}

func (r *reporter) send(line string) {
	// One line per message: the parent reads lines.
	line = strings.ReplaceAll(line, "\n", "; ")
	if _, err := io.WriteString(r.pipe, line+"\n"); err != nil {
		slog.Warn("cannot report to the starting process", "err", err)
	}
}

func (r *reporter) info(msg string) {
	if r.pipe == nil {
		fmt.Println(msg)
		return
	}
	r.send(msgInfo + msg)
}

func (r *reporter) ready(req mountRequest) {
	if r.pipe == nil {
		if req.verbose {
			fmt.Printf("swapfs: mounted %s on %s; serving in the foreground until 'umount %s' or Ctrl-C\n",
				req.store, req.mountpoint, req.mountpoint)
		}
		return
	}
	r.send(msgReady)
	r.pipe.Close()
	r.pipe = nil
}

func (r *reporter) fail(err error) {
	if r.pipe == nil {
		fmt.Fprintf(os.Stderr, "swapfs: %v\n", err)
		return
	}
	r.send(msgError + err.Error())
	r.pipe.Close()
	r.pipe = nil
}

// startDaemon starts "swapfs mount -f" in the background and returns once it has mounted, or
// with its error.
func startDaemon(req mountRequest) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "swapfs: cannot find my own executable to start the daemon: %v\n", err)
		return exitMountFail
	}
	logFile, logPath, err := openLogFile(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "swapfs: %v\n", err)
		return exitMountFail
	}
	r, w, err := os.Pipe()
	if err != nil {
		logFile.Close()
		fmt.Fprintf(os.Stderr, "swapfs: pipe: %v\n", err)
		return exitMountFail
	}
	cmd := exec.Command(exe, "mount", "-f", "-o", req.opts.String(), req.store, req.mountpoint)
	cmd.Env = append(os.Environ(), envReadyFD+"=3", envLogPath+"="+logPath)
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = "/" // hold no directory busy
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	logFile.Close()
	if err != nil {
		r.Close()
		fmt.Fprintf(os.Stderr, "swapfs: start daemon: %v\n", err)
		return exitMountFail
	}
	defer r.Close()
	return waitReady(req, cmd, bufio.NewScanner(r), logPath)
}

func waitReady(req mountRequest, cmd *exec.Cmd, sc *bufio.Scanner, logPath string) int {
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, msgInfo):
			fmt.Println(strings.TrimPrefix(line, msgInfo))
		case line == msgReady:
			if req.verbose {
				fmt.Printf("swapfs: mounted %s on %s (daemon pid %d, log %s); unmount with 'umount %s'\n",
					req.store, req.mountpoint, cmd.Process.Pid, logPath, req.mountpoint)
			}
			cmd.Process.Release()
			return exitOK
		case strings.HasPrefix(line, msgError):
			fmt.Fprintf(os.Stderr, "swapfs: %s\n", strings.TrimPrefix(line, msgError))
			reap(cmd)
			return exitMountFail
		}
	}
	status := reap(cmd)
	fmt.Fprintf(os.Stderr, "swapfs: the daemon ended (%s) before mounting %s; see %s\n",
		status, req.mountpoint, logPath)
	return exitMountFail
}

// reap waits a little for a daemon that failed, so that it leaves no zombie while we run.
func reap(cmd *exec.Cmd) string {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ProcessState.String()
		}
		if err != nil {
			return err.Error()
		}
		return "exit status 0"
	case <-time.After(10 * time.Second):
		return "still running"
	}
}

// openLogFile opens the daemon's log: /var/log/swapfs/MOUNTPOINT.log, or STORE/swapfs.log
// when /var/log is not writable.
func openLogFile(req mountRequest) (*os.File, string, error) {
	dir := os.Getenv(envLogDir)
	if dir == "" {
		dir = defaultLogDir
	}
	path := filepath.Join(dir, escapePath(req.mountpoint)+".log")
	f, err := openAppend(path, 0o755)
	if err == nil {
		return f, path, nil
	}
	fallback := filepath.Join(req.store, "swapfs.log")
	f, ferr := openAppend(fallback, 0o700)
	if ferr != nil {
		return nil, "", fmt.Errorf("cannot open a log file: %v; %v", err, ferr)
	}
	return f, fallback, nil
}

func openAppend(path string, dirMode os.FileMode) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
}

// escapePath turns a path into a file name as systemd-escape --path does: "/mnt/swap fs"
// becomes "mnt-swap\x20fs".
func escapePath(p string) string {
	p = strings.Trim(filepath.Clean(p), "/")
	if p == "" {
		return "-"
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == ':', c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}

// newLogger logs to stderr, which is the log file in the background daemon.
func newLogger(debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	l := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(l)
	return l
}

// logDestination names where the log goes, for the first line of the log.
func logDestination() string {
	if p := os.Getenv(envLogPath); p != "" {
		return p
	}
	return "stderr"
}
