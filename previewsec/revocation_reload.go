package previewsec

import (
	"context"
	"fmt"

	"github.com/systembuilderhub/hardening/internal/background"
)

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
	switch outcome, err := c.Wait(ctx); outcome {
	case background.TimedOut:
		return fmt.Errorf("%w: revocation store did not answer within %s: %w", ErrUnavailable, l.timeout, err)
	case background.Abandoned:
		return waiterGone(ctx)
	default:
		return err
	}
}

// waiterGone is the error of a caller whose ctx ended before the reload.
func waiterGone(ctx context.Context) error {
	return fmt.Errorf("%w: revocation list: %w", ErrUnavailable, ctx.Err())
}

// startReloadLocked starts a store read in its own goroutine, bounded by
// the refresh timeout and not cancelled by ctx (so one caller leaving does
// not fail the others). The caller holds l.mu.
func (l *RevocationList) startReloadLocked(ctx context.Context) *background.SharedRead {
	now := l.now()
	l.recent = nil
	l.call = background.StartRead(ctx, l.timeout, func(rctx context.Context) error {
		next, err := l.load(rctx, now)
		l.mu.Lock()
		defer l.mu.Unlock()
		if err == nil {
			for _, rev := range l.recent {
				next = next.with(rev)
			}
			l.snap.Store(next)
		}
		l.call, l.recent = nil, nil
		return err
	})
	return l.call
}
