package streamauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening"
)

// Kind is the transport of a stream.
type Kind string

// Stream kinds.
const (
	KindSSE       Kind = "sse"
	KindWebSocket Kind = "websocket"
)

// Reason says why a stream ended or was refused.
type Reason string

// Reasons a stream ends.
const (
	// ReasonExpired: the credential reached its expiry.
	ReasonExpired Reason = "expired"
	// ReasonRevoked: Registry.Revoke matched the stream.
	ReasonRevoked Reason = "revoked"
	// ReasonTenantMismatch: the stream was opened for, or sent, another
	// tenant's data.
	ReasonTenantMismatch Reason = "tenant_mismatch"
	// ReasonClientClosed: the client went away.
	ReasonClientClosed Reason = "client_closed"
	// ReasonCompleted: the handler returned on its own.
	ReasonCompleted Reason = "completed"
	// ReasonRefreshRejected: a WebSocket in-band refresh was invalid,
	// expired or for another user.
	ReasonRefreshRejected Reason = "refresh_rejected"
	// ReasonShutdown: Registry.Close ended the stream.
	ReasonShutdown Reason = "shutdown"
	// ReasonWriteTimeout: a write to the client did not finish within the
	// write timeout (WithWriteTimeout): the client stopped reading.
	ReasonWriteTimeout Reason = "write_timeout"
)

var allReasons = []Reason{ReasonExpired, ReasonRevoked, ReasonTenantMismatch, ReasonClientClosed,
	ReasonCompleted, ReasonRefreshRejected, ReasonShutdown, ReasonWriteTimeout}

// DropError is the cause (context.Cause) of a stream context the registry
// cancelled.
type DropError struct{ Reason Reason }

func (e *DropError) Error() string { return "streamauth: stream dropped: " + string(e.Reason) }

// DropReason returns why the stream whose context ctx is was dropped, once
// it was.
func DropReason(ctx context.Context) (Reason, bool) {
	var de *DropError
	if errors.As(context.Cause(ctx), &de) {
		return de.Reason, true
	}
	return "", false
}

// Errors of Registry operations.
var (
	// ErrClosed: the registry is closed and accepts no streams.
	ErrClosed = errors.New("streamauth: registry closed")
	// ErrEmptySelector: Revoke was given a selector that matches nothing.
	ErrEmptySelector = errors.New("streamauth: empty selector")
	// ErrStreamClosed: a send on a stream that has ended.
	ErrStreamClosed = errors.New("streamauth: stream closed")
	// ErrTenantMismatch: a send of another tenant's event; the stream is
	// dropped.
	ErrTenantMismatch = errors.New("streamauth: event for another tenant")
)

// LimitError is returned when a concurrent-stream limit is reached; the
// handlers answer it with 429.
type LimitError struct {
	// Scope is "user" or "tenant".
	Scope string
	// Limit is the configured limit; Current the streams open now.
	Limit, Current int
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("streamauth: %s stream limit %d reached", e.Scope, e.Limit)
}

// StreamInfo describes one live stream.
type StreamInfo struct {
	ID        string    `json:"id"`
	Kind      Kind      `json:"kind"`
	Subject   string    `json:"user_id"`
	Tenant    string    `json:"tenant_id"`
	OpenedAt  time.Time `json:"opened_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Selector picks streams to revoke. Every non-empty field must match; a
// selector with no field set is rejected.
type Selector struct {
	Subject  string `json:"user_id,omitempty"`
	Tenant   string `json:"tenant_id,omitempty"`
	StreamID string `json:"stream_id,omitempty"`
}

// IsZero reports whether no field is set.
func (s Selector) IsZero() bool { return s == Selector{} }

func (s Selector) matches(i *StreamInfo) bool {
	return (s.Subject == "" || s.Subject == i.Subject) &&
		(s.Tenant == "" || s.Tenant == i.Tenant) &&
		(s.StreamID == "" || s.StreamID == i.ID)
}

// Status is a snapshot of the registry. It marshals to the JSON the hub's
// status endpoint returns.
type Status struct {
	// Active is the number of open streams; SSE and WebSocket split it. A
	// dropped stream stays open, and counted, until its handler returned
	// and its connection is being closed.
	Active    int `json:"active"`
	SSE       int `json:"sse"`
	WebSocket int `json:"websocket"`
	// ByReason counts streams ended (or refused, for tenant_mismatch)
	// since the registry started, by reason.
	ByReason map[Reason]uint64 `json:"by_reason"`
}

// Registry tracks every open stream of one process. Each stream has one
// timer, armed at its credential's expiry; nothing scans. A stream is
// dropped (its context cancelled) at expiry, on revocation and so on, but it
// stays in the registry, and counts toward the per-user and per-tenant
// limits, until its handler returned: a client that stops reading cannot
// hold connections beyond the limits. The zero value is not usable: use
// [NewRegistry]. A Registry is safe for concurrent use.
type Registry struct {
	cfg config

	mu       sync.Mutex
	closed   bool
	streams  map[string]*stream
	byUser   map[string]int
	byTenant map[string]map[*stream]struct{}
	kinds    map[Kind]int
	reasons  map[Reason]uint64
	revoked  map[revokeKey]revocation // sticky revocations by user / tenant
	wg       sync.WaitGroup           // open streams, for Close
	timers   atomic.Int64             // armed expiry timers, for leak checks

	// mir is the state of the mirror of the RevocationStore.
	mir mirror

	gauge   *prometheus.GaugeVec
	dropped *prometheus.CounterVec
	authRej *prometheus.CounterVec
}

// NewRegistry returns an empty registry.
func NewRegistry(opts ...Option) (*Registry, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	r := &Registry{
		cfg:      cfg,
		streams:  make(map[string]*stream),
		byUser:   make(map[string]int),
		byTenant: make(map[string]map[*stream]struct{}),
		kinds:    make(map[Kind]int),
		reasons:  make(map[Reason]uint64),
		revoked:  make(map[revokeKey]revocation),
	}
	if cfg.reg != nil {
		r.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hardening_streamauth_streams",
			Help: "Live authenticated streams by kind.",
		}, []string{"kind"})
		r.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hardening_streamauth_dropped_total",
			Help: "Streams ended or refused, by reason.",
		}, []string{"reason"})
		r.authRej = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hardening_streamauth_auth_rejected_total",
			Help: "Stream requests refused before the stream opened, by reason.",
		}, []string{"reason"})
		for _, c := range []prometheus.Collector{r.gauge, r.dropped, r.authRej} {
			if err := cfg.reg.Register(c); err != nil {
				return nil, fmt.Errorf("streamauth: register metrics: %w", err)
			}
		}
		for _, k := range []Kind{KindSSE, KindWebSocket} {
			r.gauge.WithLabelValues(string(k))
		}
		for _, re := range allReasons {
			r.dropped.WithLabelValues(string(re))
		}
	}
	if cfg.store != nil {
		r.startRefresh()
	}
	return r, nil
}

// stream is one registry entry.
type stream struct {
	reg    *Registry
	cancel context.CancelCauseFunc

	// Guarded by reg.mu.
	info     StreamInfo
	issued   time.Time // the credential's issue time (Caller.IssuedAt)
	deadline time.Time // monotonic deadline of the timer
	timer    *time.Timer
	done     bool // dropped: the context is cancelled
	armed    bool // timer armed (counted in reg.timers)
	events   chan Event
	finished bool // the handler returned: the stream left the registry
}

func (s *stream) snapshot() StreamInfo {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	return s.info
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// open records a new stream for p and returns it with its context, which
// derives from parent and carries the principal.
func (r *Registry) open(parent context.Context, kind Kind, p hardening.Caller) (*stream, context.Context, error) {
	if err := r.ensureFresh(parent); err != nil {
		return nil, nil, err
	}
	now := r.cfg.now()
	s := &stream{reg: r, info: StreamInfo{ID: newID(), Kind: kind, Subject: p.Subject, Tenant: p.Tenant,
		OpenedAt: now, ExpiresAt: p.ExpiresAt}, issued: p.IssuedAt}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, nil, ErrClosed
	}
	if err := r.admissibleLocked(p, now); err != nil {
		r.mu.Unlock()
		return nil, nil, err
	}
	if n := r.byUser[p.Subject]; r.cfg.maxPerUser > 0 && n >= r.cfg.maxPerUser {
		r.mu.Unlock()
		return nil, nil, &LimitError{Scope: "user", Limit: r.cfg.maxPerUser, Current: n}
	}
	if n := len(r.byTenant[p.Tenant]); r.cfg.maxPerTenant > 0 && n >= r.cfg.maxPerTenant {
		r.mu.Unlock()
		return nil, nil, &LimitError{Scope: "tenant", Limit: r.cfg.maxPerTenant, Current: n}
	}
	ctx, cancel := context.WithCancelCause(parent)
	pp := p
	ctx = context.WithValue(context.WithValue(ctx, callerCtxKey, &pp), streamCtxKey, s)
	ctx = hardening.WithCaller(ctx, p)
	s.cancel = cancel
	r.streams[s.info.ID] = s
	r.byUser[p.Subject]++
	set := r.byTenant[p.Tenant]
	if set == nil {
		set = make(map[*stream]struct{})
		r.byTenant[p.Tenant] = set
	}
	set[s] = struct{}{}
	r.kinds[kind]++
	r.wg.Add(1)
	if !p.ExpiresAt.IsZero() {
		d := p.ExpiresAt.Sub(now)
		s.deadline = time.Now().Add(d)
		s.timer = time.AfterFunc(d, s.onTimer)
		s.timerArmed(true)
	}
	r.mu.Unlock()

	if r.gauge != nil {
		r.gauge.WithLabelValues(string(kind)).Inc()
	}
	return s, ctx, nil
}

// onTimer runs when the stream's timer fires. A refresh may have moved the
// deadline after the timer fired; then the timer is re-armed.
func (s *stream) onTimer() {
	r := s.reg
	r.mu.Lock()
	s.timerArmed(false)
	if s.done {
		r.mu.Unlock()
		return
	}
	if left := time.Until(s.deadline); left > 0 {
		s.timer.Reset(left)
		s.timerArmed(true)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	s.drop(ReasonExpired)
}

// timerArmed tracks the stream's timer state in reg.timers, which tests
// read for leak checks; the caller holds reg.mu.
func (s *stream) timerArmed(on bool) {
	if on == s.armed {
		return
	}
	s.armed = on
	if on {
		s.reg.timers.Add(1)
	} else {
		s.reg.timers.Add(-1)
	}
}

// extend moves the stream's expiry to exp (a refreshed credential).
func (s *stream) extend(exp time.Time) bool {
	r := s.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.done {
		return false
	}
	s.info.ExpiresAt = exp
	if exp.IsZero() {
		if s.timer != nil && s.timer.Stop() {
			s.timerArmed(false)
		}
		return true
	}
	d := exp.Sub(r.cfg.now())
	s.deadline = time.Now().Add(d)
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.onTimer)
		s.timerArmed(true)
	} else if !s.timer.Reset(d) {
		s.timerArmed(true) // it had fired or been stopped
	}
	return true
}

// drop ends the stream for reason, once: its timer stops and its context
// is cancelled with a *DropError cause. The stream stays in the registry
// (and counts toward the limits) until finish. It reports whether this call
// dropped it.
func (s *stream) drop(reason Reason) bool {
	r := s.reg
	r.mu.Lock()
	if s.done {
		r.mu.Unlock()
		return false
	}
	s.done = true
	r.reasons[reason]++
	info := s.info
	if s.timer != nil && s.timer.Stop() {
		s.timerArmed(false)
	}
	r.mu.Unlock()

	if r.dropped != nil {
		r.dropped.WithLabelValues(string(reason)).Inc()
	}
	s.cancel(&DropError{Reason: reason})
	lvl := slog.LevelInfo
	if reason == ReasonClientClosed || reason == ReasonCompleted {
		lvl = slog.LevelDebug
	}
	r.cfg.log.LogAttrs(context.Background(), lvl, "streamauth: stream dropped",
		slog.String("event", "stream_dropped"), slog.String("reason", string(reason)),
		slog.String("stream_id", info.ID), slog.String("kind", string(info.Kind)),
		slog.String("user_id", info.Subject), slog.String("tenant_id", info.Tenant),
		slog.Time("expires_at", info.ExpiresAt))
	return true
}

// finish is called by the handler wrapper, after drop, when the stream's
// handler and every write to the stream are over: the stream leaves the
// registry and no longer counts toward the limits.
func (s *stream) finish() {
	r := s.reg
	r.mu.Lock()
	if s.finished {
		r.mu.Unlock()
		return
	}
	s.finished = true
	r.removeLocked(s)
	kind := s.info.Kind
	r.mu.Unlock()
	if r.gauge != nil {
		r.gauge.WithLabelValues(string(kind)).Dec()
	}
	r.wg.Done()
}

func (r *Registry) removeLocked(s *stream) {
	delete(r.streams, s.info.ID)
	if n := r.byUser[s.info.Subject] - 1; n > 0 {
		r.byUser[s.info.Subject] = n
	} else {
		delete(r.byUser, s.info.Subject)
	}
	if set := r.byTenant[s.info.Tenant]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(r.byTenant, s.info.Tenant)
		}
	}
	r.kinds[s.info.Kind]--
}

func (r *Registry) selectLocked(match func(*stream) bool) []*stream {
	var out []*stream
	for _, s := range r.streams {
		if match(s) {
			out = append(out, s)
		}
	}
	return out
}

// Cleanup drops, as expired, every stream whose expiry is not after the
// registry clock's now (for example after a clock jump the timers did not
// see) and returns how many it dropped.
func (r *Registry) Cleanup(ctx context.Context) (int, error) {
	now := r.cfg.now()
	r.mu.Lock()
	victims := r.selectLocked(func(s *stream) bool {
		return !s.done && !s.info.ExpiresAt.IsZero() && !now.Before(s.info.ExpiresAt)
	})
	r.mu.Unlock()
	n := 0
	for _, s := range victims {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if s.drop(ReasonExpired) {
			n++
		}
	}
	return n, nil
}

// eventsChan returns the stream's event channel for its handler.
func (s *stream) eventsChan() <-chan Event {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	return s.eventsLocked()
}

// eventsLocked returns the stream's event queue, made on first use: by
// the handler's Events or by the first event published to the stream, so
// an event published before the handler starts reading waits in the queue
// (up to the registry's event buffer) instead of being lost. The caller
// holds s.reg.mu.
func (s *stream) eventsLocked() chan Event {
	if s.events == nil {
		s.events = make(chan Event, s.reg.cfg.eventBuffer)
	}
	return s.events
}

// checkTenant drops the stream when ev belongs to another tenant.
func (s *stream) checkTenant(ev Event) error {
	if ev.Tenant == "" || ev.Tenant == s.info.Tenant { // Tenant is immutable
		return nil
	}
	s.drop(ReasonTenantMismatch)
	return ErrTenantMismatch
}

// Status returns the registry's counts.
func (r *Registry) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{Active: len(r.streams), SSE: r.kinds[KindSSE], WebSocket: r.kinds[KindWebSocket],
		ByReason: make(map[Reason]uint64, len(allReasons))}
	for _, re := range allReasons {
		st.ByReason[re] = r.reasons[re]
	}
	return st
}

// Streams lists the open streams (in no particular order), including
// dropped ones whose handler has not returned yet.
func (r *Registry) Streams() []StreamInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]StreamInfo, 0, len(r.streams))
	for _, s := range r.streams {
		out = append(out, s.info)
	}
	return out
}

// Close refuses new streams, drops every live stream with reason shutdown
// (SSE streams and WebSockets end gracefully) and waits until their
// handlers returned or ctx is done. It also stops the background reads of
// the RevocationStore.
func (r *Registry) Close(ctx context.Context) error {
	refreshErr := r.stopRefresh(ctx)
	r.mu.Lock()
	r.closed = true
	victims := r.selectLocked(func(*stream) bool { return true })
	r.mu.Unlock()
	for _, s := range victims {
		s.drop(ReasonShutdown)
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return refreshErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refused counts a stream refused before it opened.
func (r *Registry) refused(reason string, countAs Reason) {
	if countAs != "" {
		r.mu.Lock()
		r.reasons[countAs]++
		r.mu.Unlock()
		if r.dropped != nil {
			r.dropped.WithLabelValues(string(countAs)).Inc()
		}
	}
	if r.authRej != nil {
		r.authRej.WithLabelValues(reason).Inc()
	}
}
