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
	now          func() time.Time
	log          *slog.Logger
	reg          prometheus.Registerer
	keepAlive    time.Duration
	maxPerUser   int
	maxPerTenant int
	eventBuffer  int
	bus          Broadcaster
	revokeMemory time.Duration
	store        RevocationStore
}

// Option configures a [Registry].
type Option func(*config)

// WithClock sets the clock used for opened/expiry times and Cleanup
// (default time.Now). Expiry timers run on real durations computed from it.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithLogger sets the logger for stream and auth events; nil discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithRegisterer registers the package's metrics; nil means none.
func WithRegisterer(r prometheus.Registerer) Option { return func(c *config) { c.reg = r } }

// WithKeepAlive sets the SSE keep-alive comment / WebSocket ping interval
// (default 15s); a negative value disables keep-alives.
func WithKeepAlive(d time.Duration) Option { return func(c *config) { c.keepAlive = d } }

// WithMaxStreamsPerUser limits concurrent streams per user; 0 = unlimited.
// Streams over the limit are refused with 429.
func WithMaxStreamsPerUser(n int) Option { return func(c *config) { c.maxPerUser = n } }

// WithMaxStreamsPerTenant limits concurrent streams per tenant; 0 =
// unlimited. Streams over the limit are refused with 429.
func WithMaxStreamsPerTenant(n int) Option { return func(c *config) { c.maxPerTenant = n } }

// WithEventBuffer sets how many published events a stream buffers before
// further events to it are dropped (default 16).
func WithEventBuffer(n int) Option { return func(c *config) { c.eventBuffer = n } }

// DefaultRevocationMemory is how long a user or tenant revocation keeps
// refusing credentials issued before it.
const DefaultRevocationMemory = 24 * time.Hour

// WithRevocationMemory sets how long Registry.Revoke for a user or tenant
// keeps refusing (401 token_revoked) credentials of it issued at or before
// the revocation, so that clients that reconnect automatically (a browser
// EventSource) cannot resume with the revoked token. Set it to at least the
// longest token lifetime; d <= 0 turns it off (Revoke only drops streams).
// Default 24h.
func WithRevocationMemory(d time.Duration) Option { return func(c *config) { c.revokeMemory = d } }

// WithRevocationStore keeps the sticky revocations of Registry.Revoke in s,
// so that they survive a restart: the registry loads them before its first
// stream (or at Registry.LoadRevocations) and writes every new one through.
// Each revocation expires with the revocation memory. Replicas that share
// revocations must use the same store (same SQLite file, same Redis) and a
// Broadcaster to drop each other's streams. Default none: revocations live
// in process memory only.
func WithRevocationStore(s RevocationStore) Option { return func(c *config) { c.store = s } }

// WithBroadcaster sends every Revoke, and every Publish and Broadcast when b
// is also an EventBroadcaster, to the other replicas through b.
func WithBroadcaster(b Broadcaster) Option { return func(c *config) { c.bus = b } }

func newConfig(opts []Option) (config, error) {
	c := config{now: time.Now, keepAlive: DefaultKeepAlive, eventBuffer: 16, revokeMemory: DefaultRevocationMemory}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.now == nil {
		c.now = time.Now
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
	if c.keepAlive == 0 {
		c.keepAlive = DefaultKeepAlive
	}
	return c, nil
}
