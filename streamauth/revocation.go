package streamauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/systembuilderhub/hardening"
)

// Revocation is a sticky revocation of a user, a tenant, or a user within a
// tenant: until ExpiresAt, credentials of it issued at or before RevokedAt
// (whole seconds, as JWT iat is), or without an issue time, open no stream
// and refresh none (401 / 4003 token_revoked).
type Revocation struct {
	// Subject and Tenant name what is revoked; at least one is set.
	Subject string
	Tenant  string
	// RevokedAt is when Registry.Revoke ran, on the registry's clock.
	RevokedAt time.Time
	// ExpiresAt is RevokedAt plus the revocation memory
	// (WithRevocationMemory): by then every credential the revocation
	// refuses has expired, so the revocation expires with them.
	ExpiresAt time.Time
}

// Validate reports whether r can be stored: it names a user or a tenant
// (else ErrEmptySelector) and expires after it was made.
func (r Revocation) Validate() error {
	if r.Subject == "" && r.Tenant == "" {
		return ErrEmptySelector
	}
	if !r.ExpiresAt.After(r.RevokedAt) {
		return errors.New("streamauth: revocation expires before it was made")
	}
	return nil
}

// RevocationStore keeps sticky revocations across restarts and shares them
// between the replicas that use the same backend (WithRevocationStore).
// The kit ships a memory store (NewMemoryRevocationStore) and
// streamauth/sqlitestore, streamauth/redisstore and
// streamauth/postgresstore; streamauth/storetest is the conformance suite. Implementations are safe for concurrent use.
type RevocationStore interface {
	// Add records rev, which is valid (Revocation.Validate). For a user
	// and tenant already recorded the later RevokedAt and the later
	// ExpiresAt are kept.
	Add(ctx context.Context, rev Revocation) error
	// Load returns every revocation whose ExpiresAt is after now, in no
	// particular order; it may delete the others.
	Load(ctx context.Context, now time.Time) ([]Revocation, error)
}

// ErrRevocationNotStored is wrapped by the error of Registry.Revoke when
// the RevocationStore failed: the local streams were dropped and this
// process refuses the revoked credentials, but a restart forgets it.
var ErrRevocationNotStored = errors.New("streamauth: revocation not stored")

// revokeKey names a user, a tenant, or a user within a tenant.
type revokeKey struct{ user, tenant string }

// revocation is the registry's record of a sticky revocation.
type revocation struct{ at, exp time.Time }

// recordLocked merges a revocation into the registry's set and forgets
// the ones expired at now. The caller holds r.mu.
func (r *Registry) recordLocked(rev Revocation, now time.Time) { mergeRevocation(r.revoked, rev, now) }

// mergeRevocation adds rev to m, keeping the later times for a user and
// tenant already in m, and deletes the entries expired at now.
func mergeRevocation(m map[revokeKey]revocation, rev Revocation, now time.Time) {
	for k, v := range m {
		if !now.Before(v.exp) {
			delete(m, k)
		}
	}
	if !now.Before(rev.ExpiresAt) {
		return
	}
	k := revokeKey{user: rev.Subject, tenant: rev.Tenant}
	v := m[k]
	if rev.RevokedAt.After(v.at) {
		v.at = rev.RevokedAt
	}
	if rev.ExpiresAt.After(v.exp) {
		v.exp = rev.ExpiresAt
	}
	m[k] = v
}

// revokedLocked reports whether a user or tenant revocation covers p: p's
// credential was issued (at whole-second precision, as JWT iat is) at or
// before the revocation, or has no issue time.
func (r *Registry) revokedLocked(p hardening.Caller, now time.Time) bool {
	if len(r.revoked) == 0 {
		return false
	}
	for _, k := range [...]revokeKey{{user: p.Subject}, {tenant: p.Tenant}, {user: p.Subject, tenant: p.Tenant}} {
		v, ok := r.revoked[k]
		if !ok || !now.Before(v.exp) {
			continue
		}
		if p.IssuedAt.IsZero() || !p.IssuedAt.After(v.at.Truncate(time.Second)) {
			return true
		}
	}
	return false
}

// admissibleLocked checks what the registry knows about a credential, for
// opening a stream and for refreshing one: it must not be expired
// (ErrTokenExpired) nor covered by a revocation (ErrRevoked). The caller
// holds r.mu.
func (r *Registry) admissibleLocked(p hardening.Caller, now time.Time) error {
	if !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt) {
		return ErrTokenExpired
	}
	if r.revokedLocked(p, now) {
		return ErrRevoked
	}
	return nil
}

// admissible is admissibleLocked for callers that do not hold r.mu.
func (r *Registry) admissible(p hardening.Caller) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.admissibleLocked(p, r.cfg.now())
}

// LoadRevocations reads the RevocationStore's revocations into the
// registry now, and drops the open streams that revocations new to this
// replica refuse. Without WithRevocationStore it does nothing. Call it at
// startup to fail early; otherwise the first stream admission loads them,
// and until a load succeeded streams are refused with 503 auth_unavailable
// (fail closed).
//
// The registry keeps its revocations as a mirror of the store at most the
// refresh interval old (WithRevocationRefresh, default 5s): a background
// loop, stopped by Close, reads the store at half the interval, and an
// admission that finds the mirror older reads it first. So a revocation
// made on another replica sharing the store refuses new streams here, and
// drops this replica's open streams it covers, within the interval, with
// or without a Broadcaster. When the mirror is older than the interval and
// the store cannot be read, admissions fail closed (503). One read runs at
// a time and callers share it; each read is bounded by the refresh timeout
// (WithRevocationRefreshTimeout).
func (r *Registry) LoadRevocations(ctx context.Context) error {
	if r.cfg.store == nil {
		return nil
	}
	return r.reload(ctx, false)
}

// Revoke drops every local stream sel matches with reason revoked and, for
// a user or tenant selector, refuses credentials of it issued at or before
// the revocation for WithRevocationMemory (401 token_revoked), writing the
// revocation to the RevocationStore when one is set. Then, when a
// Broadcaster is set, it sends the revocation to the other replicas. It
// returns the number of local streams dropped. The local streams are
// dropped regardless of errors; an error wrapping ErrRevocationNotStored
// means the store failed, any other that the broadcast failed.
func (r *Registry) Revoke(ctx context.Context, sel Selector) (int, error) {
	n, rev, err := r.revokeLocal(ctx, sel)
	if err != nil {
		return 0, err
	}
	var errs []error
	if rev != nil && r.cfg.store != nil {
		if err := r.cfg.store.Add(ctx, *rev); err != nil {
			r.cfg.log.LogAttrs(ctx, slog.LevelError, "streamauth: revocation not stored",
				slog.String("event", "revoke_store_failed"), slog.String("error", err.Error()))
			errs = append(errs, fmt.Errorf("%w: %w", ErrRevocationNotStored, err))
		}
	}
	if r.cfg.bus != nil {
		if err := r.cfg.bus.BroadcastRevoke(ctx, sel); err != nil {
			r.cfg.log.LogAttrs(ctx, slog.LevelError, "streamauth: revocation broadcast failed",
				slog.String("event", "revoke_broadcast_failed"), slog.String("error", err.Error()))
			errs = append(errs, fmt.Errorf("streamauth: broadcast revocation: %w", err))
		}
	}
	return n, errors.Join(errs...)
}

// RevokeLocal drops the streams of this registry that sel matches, and
// records a user or tenant revocation in memory, without broadcasting and
// without writing to the RevocationStore. Broadcasters call it for
// revocations from other replicas (the replica that revoked stored it).
func (r *Registry) RevokeLocal(ctx context.Context, sel Selector) (int, error) {
	n, _, err := r.revokeLocal(ctx, sel)
	return n, err
}

// revokeLocal is RevokeLocal; it also returns the sticky revocation it
// recorded, if any.
func (r *Registry) revokeLocal(ctx context.Context, sel Selector) (int, *Revocation, error) {
	if sel.IsZero() {
		return 0, nil, ErrEmptySelector
	}
	var rev *Revocation
	r.mu.Lock()
	if sel.StreamID == "" && r.cfg.revokeMemory > 0 {
		now := r.cfg.now()
		rev = &Revocation{Subject: sel.Subject, Tenant: sel.Tenant, RevokedAt: now, ExpiresAt: now.Add(r.cfg.revokeMemory)}
		r.recordLocked(*rev, now)
	}
	victims := r.matchLocked(sel)
	r.mu.Unlock()
	n := 0
	for _, s := range victims {
		if s.drop(ReasonRevoked) {
			n++
		}
	}
	r.cfg.log.LogAttrs(ctx, slog.LevelInfo, "streamauth: streams revoked",
		slog.String("event", "revoked"), slog.String("user_id", sel.Subject),
		slog.String("tenant_id", sel.Tenant), slog.String("stream_id", sel.StreamID), slog.Int("dropped", n))
	return n, rev, nil
}

// matchLocked returns the streams sel matches. The caller holds r.mu.
func (r *Registry) matchLocked(sel Selector) []*stream {
	switch {
	case sel.StreamID != "":
		if s := r.streams[sel.StreamID]; s != nil && sel.matches(&s.info) {
			return []*stream{s}
		}
		return nil
	case sel.Tenant != "":
		var out []*stream
		for s := range r.byTenant[sel.Tenant] {
			if sel.matches(&s.info) {
				out = append(out, s)
			}
		}
		return out
	default:
		return r.selectLocked(func(s *stream) bool { return sel.matches(&s.info) })
	}
}
