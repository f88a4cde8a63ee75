package background

import (
	"context"
	"time"
)

// SharedRead is one bounded read shared by every caller that waits for it
// (a refresh of an in-memory mirror of a store). It runs in its own
// goroutine on a context detached from the caller that started it, so one
// waiter leaving does not fail the others, and it ends at its timeout, so a
// hung store holds at most one read.
type SharedRead struct {
	ctx  context.Context // the read's own: ends at the timeout
	done chan struct{}   // closed when fn has returned
	err  error           // fn's result, set before done is closed
}

// StartRead runs fn in a goroutine on a context that keeps parent's values
// but not its cancellation and ends after timeout. fn applies its result
// itself (under its owner's lock) before it returns; waiters are released
// after that.
func StartRead(parent context.Context, timeout time.Duration, fn func(ctx context.Context) error) *SharedRead {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), timeout)
	r := &SharedRead{ctx: ctx, done: make(chan struct{})}
	go func() {
		defer cancel() // after done is closed: a waiter must never see the context end first
		defer close(r.done)
		r.err = fn(ctx)
	}()
	return r
}

// Outcome says how a wait for a SharedRead ended.
type Outcome int

const (
	// Finished: the read returned; the error is its result.
	Finished Outcome = iota
	// TimedOut: the read outlived its timeout and goes on alone; the error
	// is the timeout's cause.
	TimedOut
	// Abandoned: the waiter's context ended first; the error is its Err.
	Abandoned
)

// Wait waits for the read, its timeout or ctx, whichever comes first. A
// read that finished just as its timeout fired counts as Finished.
func (r *SharedRead) Wait(ctx context.Context) (Outcome, error) {
	select {
	case <-r.done:
		return Finished, r.err
	case <-r.ctx.Done():
		select {
		case <-r.done:
			return Finished, r.err
		default:
		}
		return TimedOut, context.Cause(r.ctx)
	case <-ctx.Done():
		return Abandoned, ctx.Err()
	}
}

// Drain waits until the read has returned, or ctx ends (for Close).
func (r *SharedRead) Drain(ctx context.Context) error {
	if r == nil {
		return nil
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
