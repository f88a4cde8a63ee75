package previewsec

import (
	"context"
	"fmt"
)

// refreshCall is one reload of a RevocationList's mirror, shared by every
// caller that needs it while it runs.
type refreshCall struct {
	ctx  context.Context // the read's own: detached from any caller, ends at the refresh timeout
	done chan struct{}   // closed when the store read has returned
	err  error           // the read's result, set before done is closed
}

// reload waits for a reload of the mirror, starting one unless one is
// running. With ifStale it does nothing when the mirror is fresh (another
// caller's reload may have finished since the caller looked).
//
// It returns the shared read's result, or ErrUnavailable when ctx ends or
// the read outlives the refresh timeout; the read then goes on alone and
// later callers fail at once until it returns, so a hung store holds at
// most one read.
func (l *RevocationList) reload(ctx context.Context, ifStale bool) error {
	if ctx.Err() != nil {
		return waiterGone(ctx)
	}
	l.mu.Lock()
	if ifStale && l.fresh(l.snap.Load(), l.now()) {
		l.mu.Unlock()
		return nil
	}
	c := l.call
	if c == nil {
		c = l.startReloadLocked(ctx)
	}
	l.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-c.ctx.Done():
		select {
		case <-c.done: // finished just before its context was released
			return c.err
		default:
		}
		return fmt.Errorf("%w: revocation store did not answer within %s: %w", ErrUnavailable, l.timeout, context.Cause(c.ctx))
	case <-ctx.Done():
		return waiterGone(ctx)
	}
}

// waiterGone is the error of a caller whose ctx ended before the reload.
func waiterGone(ctx context.Context) error {
	return fmt.Errorf("%w: revocation list: %w", ErrUnavailable, ctx.Err())
}

// startReloadLocked starts a store read in its own goroutine, bounded by
// the refresh timeout and not cancelled by ctx (so one caller leaving does
// not fail the others). The caller holds l.mu.
func (l *RevocationList) startReloadLocked(ctx context.Context) *refreshCall {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.timeout)
	c := &refreshCall{ctx: rctx, done: make(chan struct{})}
	l.call, l.recent = c, nil
	now := l.now()
	go func() {
		defer cancel()
		next, err := l.load(rctx, now)
		l.mu.Lock()
		if err == nil {
			for _, rev := range l.recent {
				next = next.with(rev)
			}
			l.snap.Store(next)
		}
		l.call, l.recent, c.err = nil, nil, err
		l.mu.Unlock()
		close(c.done)
	}()
	return c
}
