package main

import (
	"context"
	"fmt"
	"os"
	"sync"
)

// undoStack holds the teardown of everything the bench set up (swap areas, loop devices,
// mounts, cgroups, the workdir), newest first. Each step runs at most once: either where
// the bench is done with the thing, or at the end (or on a signal) with all the others.
type undoStack struct {
	mu    sync.Mutex
	items []*undoItem
}

type undoItem struct {
	name string
	fn   func(context.Context) error

	mu    sync.Mutex // held while fn runs
	state int        // pending, running or done; guarded by undoStack.mu
}

const (
	undoPending = iota
	undoRunning
	undoDone
)

// push registers fn, described by name, as the teardown of something just set up.
func (u *undoStack) push(name string, fn func(context.Context) error) *undoItem {
	it := &undoItem{name: name, fn: fn}
	u.mu.Lock()
	u.items = append(u.items, it)
	u.mu.Unlock()
	return it
}

// run tears down it now, unless it already ran or is running; the error is fn's.
func (u *undoStack) run(ctx context.Context, it *undoItem) error {
	u.mu.Lock()
	if it.state != undoPending {
		u.mu.Unlock()
		return nil
	}
	it.state = undoRunning
	u.mu.Unlock()
	it.mu.Lock()
	err := it.fn(ctx)
	it.mu.Unlock()
	u.mu.Lock()
	it.state = undoDone
	for i, x := range u.items {
		if x == it {
			u.items = append(u.items[:i], u.items[i+1:]...)
			break
		}
	}
	u.mu.Unlock()
	if err != nil {
		return fmt.Errorf("teardown %s: %w", it.name, err)
	}
	return nil
}

// all tears down everything still pending, newest first, and reports each failure on
// stderr; it returns how many failed. Steps already running elsewhere are left to finish
// there.
func (u *undoStack) all(ctx context.Context) int {
	failed := 0
	for {
		u.mu.Lock()
		var next *undoItem
		for i := len(u.items) - 1; i >= 0; i-- {
			if u.items[i].state == undoPending {
				next = u.items[i]
				break
			}
		}
		u.mu.Unlock()
		if next == nil {
			return failed
		}
		if err := u.run(ctx, next); err != nil {
			fmt.Fprintf(os.Stderr, "swapbench: %v\n", err)
			failed++
		}
	}
}
