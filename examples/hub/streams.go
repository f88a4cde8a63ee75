package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/streamauth/postgresstore"
	"github.com/systembuilderhub/hardening/streamauth/redisbus"
	"github.com/systembuilderhub/hardening/streamauth/redisstore"
	"github.com/systembuilderhub/hardening/streamauth/sqlitestore"
)

// Environment of the hub's live streams (besides the STREAMAUTH_*
// variables of streamOptionsFromEnv).
const (
	// envStreamHeartbeat is the interval of the "heartbeat" event sent to
	// every stream (default 15s).
	envStreamHeartbeat = "HUB_STREAM_HEARTBEAT"
	// defaultStreamHeartbeat is the heartbeat interval when
	// envStreamHeartbeat is unset.
	defaultStreamHeartbeat = 15 * time.Second

	// defaultMaxStreamsPerUser is the hub's limit of open streams per
	// subject (envMaxStreamsPerUser overrides it; 0 = unlimited): the
	// next stream gets 429 stream_limit_exceeded.
	defaultMaxStreamsPerUser = 20
)

// hubStreams is the hub's live-stream feature: one registry, the
// authenticator for stream tokens, and the handlers.
type hubStreams struct {
	reg    *streamauth.Registry
	sse    http.Handler
	ws     http.Handler
	stopHB func()
}

// streams returns the app's stream feature, nil when it is not set up.
func (a *app) streams() *hubStreams { return a.streamsFeature }

// setupStreams builds the stream registry (its revocations kept in the
// hub's database (SQLite or Postgres), or in Redis, so they survive a restart, and
// mirrored at most streamauth.DefaultRevocationRefresh old, so hubs on one
// SQLite file refuse each other's revoked tokens and drop the streams
// within it; with Redis, revocations and tenant events are also carried to
// the other replicas over pub/sub at once, the mirror covering messages
// lost in a reconnect), the SSE and WebSocket handlers, the event sink that fans
// a.publish out to the tenant's streams, and the heartbeat.
func (a *app) setupStreams(ctx context.Context) error {
	heartbeat := a.env.heartbeat
	// A user or tenant revocation lasts as long as the longest-lived token
	// it can refuse: HUB_AUTH_MAX_TTL plus the leeway.
	opts := append([]streamauth.Option{
		streamauth.WithMaxStreamsPerUser(defaultMaxStreamsPerUser),
		streamauth.WithRevocationMemory(a.cfg.AuthMaxTTL + authLeeway),
		// Revocations of the other hubs sharing the store reach this one
		// within the refresh interval, bus or not.
		streamauth.WithRevocationRefresh(streamauth.DefaultRevocationRefresh),
	}, a.env.streams...)
	opts = append(opts, streamauth.WithLogger(a.log), streamauth.WithRegisterer(a.reg), streamauth.WithClock(a.now))
	var bus *redisbus.Bus
	var store streamauth.RevocationStore
	var err error
	if a.rdb != nil {
		prefix := a.cfg.RedisPrefix
		if bus, err = redisbus.New(a.rdb, redisbus.WithPrefix(prefix), redisbus.WithLogger(a.log)); err != nil {
			return err
		}
		opts = append(opts, streamauth.WithBroadcaster(bus))
		store, err = redisstore.New(a.rdb, redisstore.WithPrefix(prefix))
	} else if a.onPostgres() {
		store, err = postgresstore.New(a.db)
	} else {
		store, err = sqlitestore.New(a.db)
	}
	if err != nil {
		return err
	}
	reg, err := streamauth.NewRegistry(append(opts, streamauth.WithRevocationStore(store))...)
	if err != nil {
		return err
	}
	if err := reg.LoadRevocations(ctx); err != nil {
		// A schema behind (lenient startup) or a backend hiccup: streams
		// are refused (503 auth_unavailable) until a load succeeds; each
		// stream request retries it.
		a.log.Warn("stream revocations not loaded: streams are refused until they load", "err", err.Error())
	}
	// Streams authenticate themselves (browsers pass access_token in the
	// query) with the REST routes' verifier: one parser, leeway and
	// maximum lifetime for the hub's tokens.
	auth := streamAuth{au: a.auth}
	// ?tenant_id= names the tenant the client expects; another tenant's
	// token is refused with 403.
	resource := streamauth.WithResourceTenant(func(r *http.Request) string { return r.URL.Query().Get("tenant_id") })
	// Each handler subscribes (Events) before saying hello, so a client
	// that saw hello sees every later event of its tenant.
	sse, err := streamauth.SSE(auth, reg, streamauth.SSEHandlerFunc(func(ctx context.Context, s *streamauth.SSEStream) error {
		_ = s.Events()
		if err := s.Send(helloEvent(s.Info())); err != nil {
			return err
		}
		return streamauth.ForwardSSE.ServeSSE(ctx, s)
	}), resource)
	if err != nil {
		return err
	}
	ws, err := streamauth.WebSocket(auth, reg, streamauth.WSHandlerFunc(func(ctx context.Context, c *streamauth.WSConn) error {
		_ = c.Events()
		if err := c.Send(ctx, helloEvent(c.Info())); err != nil {
			return err
		}
		return streamauth.ForwardWS.ServeWS(ctx, c)
	}), resource)
	if err != nil {
		return err
	}
	if bus != nil {
		if err := bus.Start(ctx, reg); err != nil {
			return err
		}
	}
	hs := &hubStreams{reg: reg, sse: sse, ws: ws}
	a.eventSinks = append(a.eventSinks, func(tenantID, eventType string, data any) {
		b, err := json.Marshal(data)
		if err != nil {
			a.log.Error("stream event not sent: data does not marshal", "event", eventType, "err", err.Error())
			return
		}
		ev := streamauth.Event{Type: eventType, Data: b}
		// With the Redis bus the registry sends the event to the other
		// replicas' streams too, and logs when that fails.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if tenantID == "" {
			_, _ = reg.Broadcast(ctx, ev)
		} else {
			_, _ = reg.Publish(ctx, tenantID, ev)
		}
	})
	hbCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				b, _ := json.Marshal(map[string]string{"time": a.now().UTC().Format(time.RFC3339)})
				// Each replica beats for its own streams only.
				reg.BroadcastLocal(streamauth.Event{Type: "heartbeat", Data: b})
			}
		}
	}()
	hs.stopHB = func() { stop(); <-hbDone }
	a.streamsFeature = hs
	a.onClose(func(ctx context.Context) error {
		hs.stopHB()
		err := reg.Close(ctx)
		if bus != nil {
			err = errors.Join(err, bus.Close(ctx))
		}
		return err
	})
	return nil
}

func helloEvent(info streamauth.StreamInfo) streamauth.Event {
	b, _ := json.Marshal(map[string]any{"stream_id": info.ID, "kind": info.Kind, "user_id": info.Subject,
		"tenant_id": info.Tenant, "expires_at": info.ExpiresAt.UTC().Format(time.RFC3339)})
	return streamauth.Event{Type: "hello", Data: b}
}

// streamsRoutes are the live streams and their administration.
func (a *app) streamsRoutes() []route {
	hs := a.streams()
	if hs == nil {
		return nil
	}
	return []route{
		{Method: http.MethodGet, Pattern: "/api/v1/streams/events", Access: public, Handler: hs.sse, Stream: true},
		{Method: http.MethodGet, Pattern: "/api/v1/streams/ws", Access: public, Handler: hs.ws, Stream: true},
		{Method: http.MethodGet, Pattern: "/api/v1/streaming/status", Access: admin, Handler: http.HandlerFunc(hs.status)},
		{Method: http.MethodPost, Pattern: "/api/v1/streaming/cleanup", Access: admin, Handler: http.HandlerFunc(hs.cleanup)},
		{Method: http.MethodPost, Pattern: "/api/v1/streaming/revoke", Access: admin, Handler: http.HandlerFunc(hs.revoke)},
	}
}

func (hs *hubStreams) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, hs.reg.Status())
}

func (hs *hubStreams) cleanup(w http.ResponseWriter, r *http.Request) {
	n, err := hs.reg.Cleanup(r.Context())
	if err != nil {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusServiceUnavailable, "cleanup_interrupted", "the cleanup did not finish").With("dropped", n))
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"dropped": n})
}

func (hs *hubStreams) revoke(w http.ResponseWriter, r *http.Request) {
	var sel streamauth.Selector
	if !decodeJSON(w, r, &sel) {
		return
	}
	if sel.IsZero() {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_selector", `send {"user_id":"..."} or {"tenant_id":"..."}`))
		return
	}
	n, err := hs.reg.Revoke(r.Context(), sel)
	switch {
	case errors.Is(err, streamauth.ErrRevocationNotStored):
		// The local streams are dropped and this replica refuses the
		// tokens until it restarts.
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusServiceUnavailable, "revocation_store_failed",
			"streams on this replica were dropped; the revocation was not stored and would not survive a restart").With("dropped", n))
		return
	case err != nil:
		// The local streams are dropped; the other replicas may not be.
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusServiceUnavailable, "revocation_broadcast_failed",
			"streams on this replica were dropped; the revocation did not reach the other replicas").With("dropped", n))
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"dropped": n})
}
