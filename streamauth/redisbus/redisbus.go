package redisbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/internal/background"
	"github.com/systembuilderhub/hardening/streamauth"
)

// DefaultChannel is the channel name, after the prefix.
const DefaultChannel = "streamauth:revocations"

// Revoker is what a Bus applies remote revocations to;
// *streamauth.Registry implements it.
type Revoker interface {
	RevokeLocal(ctx context.Context, sel streamauth.Selector) (int, error)
}

// EventSink is what a Bus delivers remote events to (see BroadcastEvent);
// *streamauth.Registry implements it. Its methods deliver on the receiving
// replica only, so an event is not sent back over the bus. The Revoker
// passed to Start receives remote events only when it also implements
// EventSink.
type EventSink interface {
	PublishLocal(tenantID string, ev streamauth.Event) int
	BroadcastLocal(ev streamauth.Event) int
}

var _ streamauth.Broadcaster = (*Bus)(nil)
var _ streamauth.EventBroadcaster = (*Bus)(nil)
var _ Revoker = (*streamauth.Registry)(nil)
var _ EventSink = (*streamauth.Registry)(nil)

type config struct {
	prefix     string
	channel    string
	log        *slog.Logger
	minBackoff time.Duration
	maxBackoff time.Duration
	idlePing   time.Duration
}

// Option configures a Bus.
type Option interface{ apply(*config) }

type option func(*config)

func (f option) apply(c *config) { f(c) }

// WithPrefix prefixes the channel name (default none), so several
// applications or tests share one Redis.
func WithPrefix(p string) Option { return option(func(c *config) { c.prefix = p }) }

// WithChannel sets the channel name after the prefix (default
// DefaultChannel).
func WithChannel(name string) Option { return option(func(c *config) { c.channel = name }) }

// WithLogger sets the logger for connection and revocation events; nil
// discards.
func WithLogger(l *slog.Logger) Option { return option(func(c *config) { c.log = l }) }

// WithBackoff sets the reconnect backoff bounds (default 100ms to 5s,
// doubling).
func WithBackoff(min, max time.Duration) Option {
	return option(func(c *config) { c.minBackoff, c.maxBackoff = min, max })
}

// WithIdlePing sets how long the subscription may be silent before the bus
// pings Redis to detect a dead connection (default 30s).
func WithIdlePing(d time.Duration) Option { return option(func(c *config) { c.idlePing = d }) }

// Bus publishes and receives revocations, and optionally stream events, on
// one Redis channel.
type Bus struct {
	client redis.UniversalClient
	cfg    config
	ch     string
	origin string

	mu      sync.Mutex // serializes Start
	started bool
	loop    background.Loop
}

// New returns a Bus on client. It does not connect until Start or the first
// broadcast.
func New(client redis.UniversalClient, opts ...Option) (*Bus, error) {
	if client == nil {
		return nil, errors.New("redisbus: nil client")
	}
	cfg := config{channel: DefaultChannel, minBackoff: 100 * time.Millisecond, maxBackoff: 5 * time.Second, idlePing: 30 * time.Second}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	if cfg.channel == "" {
		return nil, errors.New("redisbus: empty channel name")
	}
	if cfg.minBackoff <= 0 || cfg.maxBackoff < cfg.minBackoff {
		return nil, errors.New("redisbus: invalid backoff bounds")
	}
	if cfg.idlePing <= 0 {
		return nil, errors.New("redisbus: idle ping must be positive")
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Bus{client: client, cfg: cfg, ch: cfg.prefix + cfg.channel, origin: hex.EncodeToString(b[:])}, nil
}

// Channel returns the Redis channel the bus uses.
func (b *Bus) Channel() string { return b.ch }

// message is one publication on the channel: a revocation (Selector
// fields) or, when Event is set, a stream event for EventSink.
type message struct {
	Origin   string        `json:"origin"`
	Subject  string        `json:"user_id,omitempty"`
	Tenant   string        `json:"tenant_id,omitempty"`
	StreamID string        `json:"stream_id,omitempty"`
	Event    *eventMessage `json:"event,omitempty"`
}

type eventMessage struct {
	ID   string          `json:"id,omitempty"`
	Type string          `json:"type,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
	// Broadcast marks an event for every tenant's streams.
	Broadcast bool `json:"broadcast,omitempty"`
}

// BroadcastEvent publishes ev for the streams of tenantID on the other
// replicas (an empty tenantID means every stream, as Registry.Broadcast).
// A Registry built WithBroadcaster(bus) calls it from Publish and Broadcast
// after delivering the event locally; the bus ignores its own messages, so
// no replica gets the event twice. ev.Data must be valid JSON. Like
// revocations, events are fire-and-forget: a replica disconnected from
// Redis misses them.
func (b *Bus) BroadcastEvent(ctx context.Context, tenantID string, ev streamauth.Event) error {
	if len(ev.Data) > 0 && !json.Valid(ev.Data) {
		return errors.New("redisbus: event data is not valid JSON")
	}
	payload, err := json.Marshal(message{Origin: b.origin, Tenant: tenantID,
		Event: &eventMessage{ID: ev.ID, Type: ev.Type, Data: ev.Data, Broadcast: tenantID == ""}})
	if err != nil {
		return err
	}
	if err := b.client.Publish(ctx, b.ch, payload).Err(); err != nil {
		return fmt.Errorf("redisbus: publish: %w", err)
	}
	return nil
}

// BroadcastRevoke publishes a revocation for the other replicas.
func (b *Bus) BroadcastRevoke(ctx context.Context, sel streamauth.Selector) error {
	if sel.IsZero() {
		return streamauth.ErrEmptySelector
	}
	payload, err := json.Marshal(message{Origin: b.origin, Subject: sel.Subject, Tenant: sel.Tenant, StreamID: sel.StreamID})
	if err != nil {
		return err
	}
	if err := b.client.Publish(ctx, b.ch, payload).Err(); err != nil {
		return fmt.Errorf("redisbus: publish: %w", err)
	}
	return nil
}

// Start subscribes to the channel and applies every revocation from other
// replicas to r (and delivers their events, when r is also an EventSink)
// until Close or until ctx is done. It returns once the
// subscription is confirmed, or the error that prevented it.
func (b *Bus) Start(ctx context.Context, r Revoker) error {
	if r == nil {
		return errors.New("redisbus: nil Revoker")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return errors.New("redisbus: already started")
	}
	ps := b.client.Subscribe(ctx, b.ch)
	msg, err := ps.Receive(ctx)
	if err == nil {
		if _, ok := msg.(*redis.Subscription); !ok {
			err = fmt.Errorf("unexpected %T", msg)
		}
	}
	if err != nil {
		_ = ps.Close()
		return fmt.Errorf("redisbus: subscribe %s: %w", b.ch, err)
	}
	b.started = true
	b.cfg.log.LogAttrs(ctx, slog.LevelInfo, "redisbus: subscribed", slog.String("channel", b.ch))
	return b.loop.Start(ctx, func(ctx context.Context) {
		// ctx ending stops the loop; the blocking read needs the PubSub closed.
		context.AfterFunc(ctx, func() { _ = ps.Close() })
		b.run(ctx, ps, r)
	})
}

func (b *Bus) run(ctx context.Context, ps *redis.PubSub, r Revoker) {
	log := b.cfg.log
	lost := false
	backoff := b.cfg.minBackoff
	for {
		msg, err := ps.ReceiveTimeout(ctx, b.cfg.idlePing)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !lost {
				// Idle: check the connection is alive.
				if perr := ps.Ping(ctx); perr == nil {
					continue
				} else {
					err = perr
				}
			}
			if !lost {
				lost = true
				log.LogAttrs(ctx, slog.LevelWarn, "redisbus: connection lost, reconnecting",
					slog.String("channel", b.ch), slog.String("error", err.Error()))
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, b.cfg.maxBackoff)
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if lost && m.Kind == "subscribe" {
				lost = false
				backoff = b.cfg.minBackoff
				log.LogAttrs(ctx, slog.LevelInfo, "redisbus: reconnected", slog.String("channel", b.ch))
			}
		case *redis.Message:
			b.apply(ctx, m.Payload, r)
		}
	}
}

func (b *Bus) apply(ctx context.Context, payload string, r Revoker) {
	var m message
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		b.cfg.log.LogAttrs(ctx, slog.LevelWarn, "redisbus: malformed revocation ignored", slog.String("channel", b.ch))
		return
	}
	if m.Origin == b.origin {
		return
	}
	if m.Event != nil {
		sink, ok := r.(EventSink)
		if !ok {
			return
		}
		ev := streamauth.Event{ID: m.Event.ID, Type: m.Event.Type, Data: []byte(m.Event.Data)}
		if m.Event.Broadcast {
			sink.BroadcastLocal(ev)
		} else if m.Tenant != "" {
			sink.PublishLocal(m.Tenant, ev)
		}
		return
	}
	sel := streamauth.Selector{Subject: m.Subject, Tenant: m.Tenant, StreamID: m.StreamID}
	if sel.IsZero() {
		return
	}
	n, err := r.RevokeLocal(ctx, sel)
	if err != nil {
		b.cfg.log.LogAttrs(ctx, slog.LevelError, "redisbus: applying revocation failed", slog.String("error", err.Error()))
		return
	}
	b.cfg.log.LogAttrs(ctx, slog.LevelInfo, "redisbus: remote revocation applied",
		slog.String("origin", m.Origin), slog.String("user_id", sel.Subject), slog.String("tenant_id", sel.Tenant),
		slog.String("stream_id", sel.StreamID), slog.Int("dropped", n))
}

// Close stops receiving and waits for the receive loop to end (or ctx).
// It does not close the Redis client.
func (b *Bus) Close(ctx context.Context) error { return b.loop.Stop(ctx) }
