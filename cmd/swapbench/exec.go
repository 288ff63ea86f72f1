package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Commands. Every child runs in its own process group, so a ^C at the terminal reaches the
// bench alone and teardown decides what stops in which order; every child has a timeout.

// command returns a command for name with the bench's environment (extra added) and a
// timeout from ctx.
func command(ctx context.Context, extraEnv []string, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A grandchild (a daemon) may hold the pipes; do not wait for it forever.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// runCmd runs name with a timeout and returns its stdout; on failure the error holds the
// command, its exit status and the end of its output.
func runCmd(ctx context.Context, timeout time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := command(ctx, env, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("timed out after %v", timeout)
		}
		return stdout.String(), fmt.Errorf("%s %s: %w%s", name, strings.Join(args, " "), err, tail(stderr.String()+stdout.String(), 600))
	}
	return stdout.String(), nil
}

// tail returns the last n bytes of s as ": ..." for an error message, "" when s is blank.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return ": " + s
}
