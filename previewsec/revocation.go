package previewsec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/systembuilderhub/hardening/internal/background"
)

// DefaultRevocationMaxAge is how old the in-memory copy of the revocation
// list may be before Verify reloads it from the store.
const DefaultRevocationMaxAge = 5 * time.Second

// DefaultRevocationRefreshTimeout bounds one reload of the revocation list
// from its store (WithRevocationRefreshTimeout).
const DefaultRevocationRefreshTimeout = 2 * time.Second

// RevocationList is the list of revoked preview ids and token ids, kept in
// a RevocationStore and mirrored in memory so that Verify makes no store
// round trip while the mirror is fresh.
//
// A revocation made through this list is effective here at once; on other
// replicas within the mirror's max age (WithRevocationMaxAge, default 5s).
// When the mirror is older and the store cannot be read, Verify fails
// closed with ErrUnavailable. Start keeps the mirror fresh in the
// background so requests never wait for the store.
//
// A reload is shared: one store read runs at a time, and every check that
// finds the mirror stale meanwhile waits for that read instead of starting
// its own. A waiter leaves when its context ends, and all of them give up
// with ErrUnavailable when the read has not answered within the refresh
// timeout (WithRevocationRefreshTimeout, default 2s); until the hung read
// returns, later checks on a stale mirror fail at once. So a store that
// stops answering costs each request at most the refresh timeout, and
// never more than one outstanding read.
//
// Entries are kept only as long as a token they revoke could still be
// valid (the retention: max TTL plus leeway), so the list stays small.
type RevocationList struct {
	store     RevocationStore
	retention time.Duration
	maxAge    time.Duration
	timeout   time.Duration
	now       func() time.Time
	log       *slog.Logger

	snap atomic.Pointer[revocationSnapshot]

	mu     sync.Mutex             // guards snap updates, call and recent
	call   *background.SharedRead // the reload in flight, nil when none
	recent []Revocation           // local revocations made while call runs

	bg background.Loop
}

type revocationSnapshot struct {
	loadedAt time.Time // by the list's clock; zero = never loaded
	pids     map[string]Revocation
	jtis     map[string]Revocation
}

// WithRevocationRetention sets how long a preview revocation is kept
// (default DefaultMaxTTL + MaxLeeway). It must be at least the key ring's
// max TTL plus leeway; NewVerifier checks.
func WithRevocationRetention(d time.Duration) RevocationOption {
	return revocationOption(func(l *RevocationList) { l.retention = d })
}

// WithRevocationMaxAge sets how stale the in-memory mirror may be before
// Verify reloads it (default DefaultRevocationMaxAge).
func WithRevocationMaxAge(d time.Duration) RevocationOption {
	return revocationOption(func(l *RevocationList) { l.maxAge = d })
}

// WithRevocationRefreshTimeout bounds how long one reload of the mirror
// may take (default DefaultRevocationRefreshTimeout). Checks waiting on a
// stale mirror fail with ErrUnavailable when the store has not answered
// within it, even if the store ignores its context.
func WithRevocationRefreshTimeout(d time.Duration) RevocationOption {
	return revocationOption(func(l *RevocationList) { l.timeout = d })
}

// NewRevocationList returns a list backed by store. It does not read the
// store until first needed.
func NewRevocationList(store RevocationStore, opts ...RevocationOption) (*RevocationList, error) {
	if store == nil {
		return nil, errors.New("previewsec: NewRevocationList needs a RevocationStore")
	}
	l := &RevocationList{store: store, retention: DefaultMaxTTL + MaxLeeway, maxAge: DefaultRevocationMaxAge,
		timeout: DefaultRevocationRefreshTimeout, now: time.Now}
	for _, o := range opts {
		if o != nil {
			o.applyRevocation(l)
		}
	}
	switch {
	case l.retention <= 0:
		return nil, fmt.Errorf("previewsec: revocation retention %s must be positive", l.retention)
	case l.maxAge <= 0:
		return nil, fmt.Errorf("previewsec: revocation max age %s must be positive", l.maxAge)
	case l.timeout <= 0:
		return nil, fmt.Errorf("previewsec: revocation refresh timeout %s must be positive", l.timeout)
	}
	if err := checkClock(l.now); err != nil {
		return nil, err
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.snap.Store(&revocationSnapshot{pids: map[string]Revocation{}, jtis: map[string]Revocation{}})
	return l, nil
}

// RevokePreview revokes every token of previewID issued until now. Tokens
// minted for the preview later are not affected.
func (l *RevocationList) RevokePreview(ctx context.Context, previewID string) error {
	now := l.now()
	return l.revoke(ctx, Revocation{Kind: RevokePreviewID, Value: previewID, RevokedAt: now, ExpiresAt: now.Add(l.retention)})
}

// RevokeToken revokes the token with id jti. expiresAt is the token's
// expiry (Claims.ExpiresAt); the entry is kept a leeway beyond it.
func (l *RevocationList) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	now := l.now()
	return l.revoke(ctx, Revocation{Kind: RevokeTokenID, Value: jti, RevokedAt: now, ExpiresAt: expiresAt.Add(MaxLeeway)})
}

func (l *RevocationList) revoke(ctx context.Context, rev Revocation) error {
	if err := l.store.Revoke(ctx, rev); err != nil {
		return fmt.Errorf("previewsec: revoke %s %q: %w", rev.Kind, rev.Value, err)
	}
	// Make it effective here at once.
	l.mu.Lock()
	defer l.mu.Unlock()
	l.snap.Store(l.snap.Load().with(rev))
	if l.call != nil {
		// The reload in flight may have read the store before rev: it
		// applies rev again before it replaces the snapshot.
		l.recent = append(l.recent, rev)
	}
	l.log.Info("previewsec: token revoked", "kind", string(rev.Kind), "value", rev.Value)
	return nil
}

// with returns a copy of s holding rev as well.
func (s *revocationSnapshot) with(rev Revocation) *revocationSnapshot {
	next := &revocationSnapshot{loadedAt: s.loadedAt, pids: s.pids, jtis: s.jtis}
	switch rev.Kind {
	case RevokePreviewID:
		next.pids = revocationWith(s.pids, rev)
	case RevokeTokenID:
		next.jtis = revocationWith(s.jtis, rev)
	}
	return next
}

func revocationWith(m map[string]Revocation, rev Revocation) map[string]Revocation {
	out := make(map[string]Revocation, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	if cur, ok := out[rev.Value]; ok {
		rev = mergeRevocations(cur, rev)
	}
	out[rev.Value] = rev
	return out
}

// Refresh reloads the mirror from the store and deletes expired entries.
// When a reload is already running, Refresh waits for that one. It returns
// when the reload is done, ctx ends or the refresh timeout passes.
func (l *RevocationList) Refresh(ctx context.Context) error {
	return l.reload(ctx, false)
}

// load reads the store at now.
func (l *RevocationList) load(ctx context.Context, now time.Time) (*revocationSnapshot, error) {
	if _, err := l.store.DeleteExpiredRevocations(ctx, now); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	revs, err := l.store.Revocations(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	next := &revocationSnapshot{loadedAt: now, pids: map[string]Revocation{}, jtis: map[string]Revocation{}}
	for _, r := range revs {
		switch r.Kind {
		case RevokePreviewID:
			next.pids[r.Value] = r
		case RevokeTokenID:
			next.jtis[r.Value] = r
		}
	}
	return next, nil
}

// fresh reports whether s may be used at now.
func (l *RevocationList) fresh(s *revocationSnapshot, now time.Time) bool {
	return !s.loadedAt.IsZero() && now.Sub(s.loadedAt) < l.maxAge && !now.Before(s.loadedAt.Add(-l.maxAge))
}

// check returns ErrRevoked when c is revoked, ErrUnavailable when the
// mirror is stale and the store cannot be read.
func (l *RevocationList) check(ctx context.Context, c Claims) error {
	now := l.now()
	s := l.snap.Load()
	if !l.fresh(s, now) {
		if err := l.reload(ctx, true); err != nil {
			l.log.Warn("previewsec: revocation list unavailable", "err", err)
			return err
		}
		s = l.snap.Load()
	}
	if r, ok := s.pids[c.PreviewID]; ok && now.Before(r.ExpiresAt) && !c.IssuedAt.After(r.RevokedAt) {
		return ErrRevoked
	}
	if c.ID != "" {
		if r, ok := s.jtis[c.ID]; ok && now.Before(r.ExpiresAt) {
			return ErrRevoked
		}
	}
	return nil
}

// Start keeps the mirror fresh in the background (reloading at half the max
// age) until ctx ends or Close is called. Optional; calling it twice is an
// error.
func (l *RevocationList) Start(ctx context.Context) error {
	err := l.bg.Start(ctx, func(ctx context.Context) {
		t := time.NewTicker(l.maxAge / 2)
		defer t.Stop()
		for {
			if err := l.Refresh(ctx); err != nil && ctx.Err() == nil {
				l.log.Warn("previewsec: revocation refresh failed", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	if err != nil {
		return fmt.Errorf("previewsec: revocation list %w", err)
	}
	return nil
}

// Close stops the loop started by Start and waits for it and for a store
// read in flight, or for ctx.
func (l *RevocationList) Close(ctx context.Context) error {
	if err := l.bg.Stop(ctx); err != nil {
		return err
	}
	l.mu.Lock()
	c := l.call
	l.mu.Unlock()
	return c.Drain(ctx)
}
