package streamauth

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/systembuilderhub/hardening/internal/background"
)

// DefaultRevocationRefresh is the default maximum age of a registry's
// mirror of its RevocationStore (WithRevocationRefresh): a revocation made
// on another replica is enforced here within it, even without a
// Broadcaster.
const DefaultRevocationRefresh = 5 * time.Second

// DefaultRevocationRefreshTimeout bounds one read of the RevocationStore
// (WithRevocationRefreshTimeout).
const DefaultRevocationRefreshTimeout = 2 * time.Second

// mirror is the state of a registry's copy of its RevocationStore: when it
// was last read, the read in flight, and the loop that keeps it fresh.
type mirror struct {
	mu       sync.Mutex
	loadedAt time.Time              // registry clock at the start of the last good read; zero = never
	call     *background.SharedRead // the read in flight, nil when none
	bg       background.Loop
}

// freshLocked reports whether the mirror may be used at now without a
// read. The caller holds r.mir.mu.
func (r *Registry) freshLocked(now time.Time) bool {
	at, age := r.mir.loadedAt, r.cfg.refresh
	return !at.IsZero() && now.Sub(at) < age && !now.Before(at.Add(-age))
}

// ensureFresh makes sure the mirror is at most the refresh interval old
// before a stream opens, reading the store when it is older; when that
// fails the stream is refused with ErrUnavailable (503, fail closed).
func (r *Registry) ensureFresh(ctx context.Context) error {
	if r.cfg.store == nil {
		return nil
	}
	if err := r.reload(ctx, true); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// reload waits for a read of the store, starting one unless one is
// running. With ifStale it returns at once when the mirror is fresh. It
// returns the shared read's result, or an error when ctx ends or the read
// outlives the refresh timeout; the read then goes on alone, and later
// callers wait for it (up to its timeout), so a hung store holds at most
// one read.
func (r *Registry) reload(ctx context.Context, ifStale bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("streamauth: load revocations: %w", err)
	}
	r.mir.mu.Lock()
	if ifStale && r.freshLocked(r.cfg.now()) {
		r.mir.mu.Unlock()
		return nil
	}
	c := r.mir.call
	if c == nil {
		c = r.startReloadLocked(ctx)
	}
	r.mir.mu.Unlock()
	switch outcome, err := c.Wait(ctx); outcome {
	case background.TimedOut:
		return fmt.Errorf("streamauth: load revocations: store did not answer within %s: %w", r.cfg.refreshTimeout, err)
	case background.Abandoned:
		return fmt.Errorf("streamauth: load revocations: %w", err)
	default:
		return err
	}
}

// startReloadLocked starts a read of the store in its own goroutine,
// bounded by the refresh timeout and not cancelled by ctx (one caller
// leaving does not fail the others). The caller holds r.mir.mu.
func (r *Registry) startReloadLocked(ctx context.Context) *background.SharedRead {
	now := r.cfg.now()
	r.mir.call = background.StartRead(ctx, r.cfg.refreshTimeout, func(rctx context.Context) error {
		err := r.apply(rctx, now)
		r.mir.mu.Lock()
		defer r.mir.mu.Unlock()
		if err == nil && now.After(r.mir.loadedAt) {
			r.mir.loadedAt = now
		}
		r.mir.call = nil
		return err
	})
	return r.mir.call
}

// apply reads the store at now, merges its revocations into the
// registry's set and drops the open streams that the revocations new to
// this replica refuse (reason revoked), as RevokeLocal does for a
// broadcast one.
func (r *Registry) apply(ctx context.Context, now time.Time) error {
	revs, err := r.cfg.store.Load(ctx, now)
	if err != nil {
		r.cfg.log.LogAttrs(ctx, slog.LevelError, "streamauth: loading revocations failed",
			slog.String("event", "revocations_load_failed"), slog.String("error", err.Error()))
		return fmt.Errorf("streamauth: load revocations: %w", err)
	}
	r.mu.Lock()
	var fresh []Revocation
	for _, rev := range revs {
		k := revokeKey{user: rev.Subject, tenant: rev.Tenant}
		if old, ok := r.revoked[k]; !ok || rev.RevokedAt.After(old.at) {
			fresh = append(fresh, rev)
		}
		r.recordLocked(rev, now)
	}
	var victims []*stream
	if len(fresh) > 0 {
		victims = r.selectLocked(func(s *stream) bool { return !s.done && coveredBy(s, fresh) })
	}
	r.mu.Unlock()
	n := 0
	for _, s := range victims {
		if s.drop(ReasonRevoked) {
			n++
		}
	}
	if len(fresh) > 0 {
		r.cfg.log.LogAttrs(ctx, slog.LevelInfo, "streamauth: revocations loaded",
			slog.String("event", "revocations_loaded"), slog.Int("count", len(revs)),
			slog.Int("new", len(fresh)), slog.Int("dropped", n))
	}
	return nil
}

// coveredBy reports whether one of revs matches s and was made after s
// opened, or refuses the credential s opened with.
func coveredBy(s *stream, revs []Revocation) bool {
	for _, rev := range revs {
		if (rev.Subject != "" && rev.Subject != s.info.Subject) || (rev.Tenant != "" && rev.Tenant != s.info.Tenant) {
			continue
		}
		if !s.info.OpenedAt.After(rev.RevokedAt) || s.issued.IsZero() ||
			!s.issued.After(rev.RevokedAt.Truncate(time.Second)) {
			return true
		}
	}
	return false
}

// startRefresh keeps the mirror fresh in the background, reading the store
// at half the refresh interval, until Close.
func (r *Registry) startRefresh() {
	_ = r.mir.bg.Start(context.Background(), func(ctx context.Context) {
		t := time.NewTicker(r.cfg.refresh / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := r.reload(ctx, false); err != nil && ctx.Err() == nil {
				r.cfg.log.LogAttrs(ctx, slog.LevelWarn, "streamauth: revocation refresh failed",
					slog.String("event", "revocations_refresh_failed"), slog.String("error", err.Error()))
			}
		}
	})
}

// stopRefresh stops the background loop and waits for it and for a read in
// flight, or for ctx.
func (r *Registry) stopRefresh(ctx context.Context) error {
	if err := r.mir.bg.Stop(ctx); err != nil {
		return err
	}
	r.mir.mu.Lock()
	c := r.mir.call
	r.mir.mu.Unlock()
	return c.Drain(ctx)
}
