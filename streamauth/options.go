package streamauth

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultKeepAlive is the default interval of SSE keep-alive comments and
// WebSocket pings.
const DefaultKeepAlive = 15 * time.Second

// Broadcaster carries revocations to the other replicas. Registry.Revoke
// calls it after dropping the local streams; streamauth/redisbus implements
// it over Redis pub/sub. A Broadcaster that also implements
// EventBroadcaster carries Registry.Publish and Registry.Broadcast events.
type Broadcaster interface {
	BroadcastRevoke(ctx context.Context, sel Selector) error
}

type config struct {
	now            func() time.Time
	log            *slog.Logger
	reg            prometheus.Registerer
	keepAlive      time.Duration
	maxPerUser     int
	maxPerTenant   int
	eventBuffer    int
	bus            Broadcaster
	revokeMemory   time.Duration
	store          RevocationStore
	refresh        time.Duration
	refreshTimeout time.Duration
}

// Options: each constructor of the package takes its own option type, an
// interface, so an option that does not fit a constructor does not compile
// there: Option ([NewRegistry]), [HandlerOption] ([SSE], [WebSocket]) and
// [JWTOption] ([NewJWT]). [WithClock], which fits NewRegistry and NewJWT,
// returns a [ClockOption], an option of both. A nil option is ignored;
// invalid values are reported by the constructor.

// Option configures a [Registry].
type Option interface{ apply(*config) }

type option func(*config)

func (f option) apply(c *config) { f(c) }

// ClockOption is the option WithClock returns: an [Option] and a
// [JWTOption].
type ClockOption struct{ now func() time.Time }

// WithClock sets the clock (default time.Now): of the registry, for
// opened/expiry times, revocations and Cleanup (expiry timers run on real
// durations computed from it); of a JWTAuthenticator, to check exp and nbf.
// nil is an error.
func WithClock(now func() time.Time) ClockOption { return ClockOption{now: now} }

func (o ClockOption) apply(c *config)       { c.now = o.now }
func (o ClockOption) applyJWT(c *jwtConfig) { c.now = o.now }

// WithLogger sets the logger for stream and auth events; nil discards.
func WithLogger(l *slog.Logger) Option { return option(func(c *config) { c.log = l }) }

// WithRegisterer registers the package's metrics; nil means none.
func WithRegisterer(r prometheus.Registerer) Option { return option(func(c *config) { c.reg = r }) }

// WithKeepAlive sets the SSE keep-alive comment / WebSocket ping interval
// (default 15s); a negative value disables keep-alives.
func WithKeepAlive(d time.Duration) Option { return option(func(c *config) { c.keepAlive = d }) }

// WithMaxStreamsPerUser limits concurrent streams per user; 0 = unlimited.
// Streams over the limit are refused with 429.
func WithMaxStreamsPerUser(n int) Option { return option(func(c *config) { c.maxPerUser = n }) }

// WithMaxStreamsPerTenant limits concurrent streams per tenant; 0 =
// unlimited. Streams over the limit are refused with 429.
func WithMaxStreamsPerTenant(n int) Option { return option(func(c *config) { c.maxPerTenant = n }) }

// WithEventBuffer sets how many published events a stream buffers before
// further events to it are dropped (default 16).
func WithEventBuffer(n int) Option { return option(func(c *config) { c.eventBuffer = n }) }

// DefaultRevocationMemory is how long a user or tenant revocation keeps
// refusing credentials issued before it.
const DefaultRevocationMemory = 24 * time.Hour

// WithRevocationMemory sets how long Registry.Revoke for a user or tenant
// keeps refusing (401 token_revoked) credentials of it issued at or before
// the revocation, so that clients that reconnect automatically (a browser
// EventSource) cannot resume with the revoked token. Set it to at least the
// longest token lifetime; d <= 0 turns it off (Revoke only drops streams).
// Default 24h.
func WithRevocationMemory(d time.Duration) Option {
	return option(func(c *config) { c.revokeMemory = d })
}

// WithRevocationStore keeps the sticky revocations of Registry.Revoke in s,
// so that they survive a restart and reach the other replicas: the
// registry writes every new one through and keeps a mirror of s at most
// the refresh interval old (WithRevocationRefresh; see
// Registry.LoadRevocations), so replicas that use the same store (same
// SQLite file, same Redis) refuse each other's revoked credentials and drop
// each other's covered streams within that interval. A Broadcaster makes
// it immediate. Each revocation expires with the revocation memory. Close
// the registry to stop its background reads. Default none: revocations
// live in process memory only.
func WithRevocationStore(s RevocationStore) Option { return option(func(c *config) { c.store = s }) }

// WithRevocationRefresh sets the maximum age of the registry's mirror of
// its RevocationStore (default DefaultRevocationRefresh, 5s): revocations
// made by other replicas on the same store are enforced here within d, and
// drop this replica's open streams they cover, with or without a
// Broadcaster. The store is read in the background every d/2; a stream
// admission on a mirror older than d reads it first, and is refused with
// 503 auth_unavailable when that fails (fail closed). d must be positive.
func WithRevocationRefresh(d time.Duration) Option { return option(func(c *config) { c.refresh = d }) }

// WithRevocationRefreshTimeout bounds one read of the RevocationStore
// (default DefaultRevocationRefreshTimeout, 2s): admissions waiting on a
// stale mirror are refused (503) when the store has not answered within
// it, even if the store ignores its context. d must be positive.
func WithRevocationRefreshTimeout(d time.Duration) Option {
	return option(func(c *config) { c.refreshTimeout = d })
}

// WithBroadcaster sends every Revoke, and every Publish and Broadcast when b
// is also an EventBroadcaster, to the other replicas through b.
func WithBroadcaster(b Broadcaster) Option { return option(func(c *config) { c.bus = b }) }

func newConfig(opts []Option) (config, error) {
	c := config{now: time.Now, keepAlive: DefaultKeepAlive, eventBuffer: 16, revokeMemory: DefaultRevocationMemory,
		refresh: DefaultRevocationRefresh, refreshTimeout: DefaultRevocationRefreshTimeout}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.now == nil {
		return c, errors.New("streamauth: WithClock(nil)")
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.maxPerUser < 0 || c.maxPerTenant < 0 {
		return c, errors.New("streamauth: negative stream limit")
	}
	if c.eventBuffer <= 0 {
		return c, errors.New("streamauth: event buffer must be positive")
	}
	if c.refresh <= 0 || c.refreshTimeout <= 0 {
		return c, errors.New("streamauth: revocation refresh interval and timeout must be positive")
	}
	if c.keepAlive == 0 {
		c.keepAlive = DefaultKeepAlive
	}
	return c, nil
}
