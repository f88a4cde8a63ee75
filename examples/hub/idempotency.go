package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/postgresstore"
	"github.com/systembuilderhub/hardening/idempotency/redisstore"
	"github.com/systembuilderhub/hardening/idempotency/sqlitestore"
)

// envEchoDelay makes each run of POST /api/v1/echo take this long (default
// 0), so a test can hold a key in flight for longer than the lock timeout.
const envEchoDelay = "HUB_ECHO_DELAY"

// setupIdempotency builds the Idempotency-Key middleware on Redis when the
// hub runs with REDIS_URL (keys under HUB_REDIS_PREFIX when it is set),
// else on the database (SQLite or Postgres), configured from
// IDEMPOTENCY_TTL and IDEMPOTENCY_LOCK_TIMEOUT, and starts its sweeper.
func (a *app) setupIdempotency(ctx context.Context) error {
	opts := slices.Clip(a.env.idempotency)
	a.echoDelay = a.env.echoDelay
	var store idempotency.Store
	var err error
	if a.rdb != nil {
		store, err = redisstore.New(a.rdb, redisstore.WithPrefix(a.cfg.RedisPrefix+"idempotency:"))
	} else if a.onPostgres() {
		store, err = postgresstore.New(a.db)
	} else {
		store, err = sqlitestore.New(a.db)
	}
	if err != nil {
		return err
	}
	// Records are scoped by the caller's tenant and user (the default:
	// hardening.CallerFrom, set by the hub's auth), so two tenants or users
	// sending the same key never share a response. Idempotent routes are
	// never public: an anonymous caller has no scope and gets a 500.
	opts = append(opts,
		idempotency.WithClock(a.now),
		idempotency.WithLogger(a.log),
		idempotency.WithRegisterer(a.reg),
		// Responses carrying tokens are no-store; their replays must be too.
		idempotency.WithReplayHeaders("Cache-Control"),
		// Every 4xx of the hub means nothing was done (bad input, not
		// found, a quota refusal): release the key so a corrected or later
		// retry runs, instead of replaying the refusal for the TTL.
		idempotency.WithStoreStatus(func(status int) bool { return status < 400 }),
	)
	m, err := idempotency.New(store, opts...)
	if err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return err
	}
	a.idempotencyFeature = m
	a.onClose(m.Close)
	return nil
}

// idempotent wraps h with the idempotency middleware (routes with
// Idempotent set). Without setupIdempotency it returns h unchanged.
func (a *app) idempotent(h http.Handler) http.Handler {
	if m := a.idempotencyFeature; m != nil {
		return m.Handler(h)
	}
	return h
}

func (a *app) idempotencyRoutes() []route {
	echoes := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hub_echo_executions_total",
		Help: "Executions of POST /api/v1/echo: with Idempotency-Key retries it must not grow.",
	})
	if err := a.reg.Register(echoes); err != nil {
		// routes() may be listed more than once (contract tests): reuse
		// the counter registered first.
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic(err)
		}
		echoes = are.ExistingCollector.(prometheus.Counter)
	}
	return []route{
		{Method: http.MethodPost, Pattern: "/api/v1/echo", Access: user, Idempotent: true, Handler: a.echoHandler(echoes), Check: checkJSON[json.RawMessage](false)},
		{Method: http.MethodGet, Pattern: "/api/v1/idempotency/status", Access: admin, Handler: http.HandlerFunc(a.idempotencyStatus)},
	}
}

// echoHandler answers 201 with a fresh random id and the JSON body: under
// "echo", and, when the body is an object, its members also at the top
// level (id and echo excepted). Each run counts in
// hub_echo_executions_total, which makes duplicate execution visible. A
// delay (HUB_ECHO_DELAY) makes each run take that long after it counted,
// like a slow operation; a cancelled request ends the wait early.
func (a *app) echoHandler(executions prometheus.Counter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body json.RawMessage
		if !decodeJSON(w, r, &body) {
			return
		}
		executions.Inc()
		if a.echoDelay > 0 {
			t := time.NewTimer(a.echoDelay)
			select {
			case <-r.Context().Done():
			case <-t.C:
			}
			t.Stop()
		}
		out := map[string]any{}
		var obj map[string]json.RawMessage
		if json.Unmarshal(body, &obj) == nil {
			for k, v := range obj {
				out[k] = v
			}
		}
		out["id"] = newID("echo_")
		out["echo"] = body
		writeJSON(w, http.StatusCreated, out)
	})
}

// idempotencyStatus serves GET /api/v1/idempotency/status.
func (a *app) idempotencyStatus(w http.ResponseWriter, r *http.Request) {
	m := a.idempotencyFeature
	if m == nil {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusServiceUnavailable, "idempotency_unavailable", "idempotency is not set up"))
		return
	}
	st, err := m.Status(r.Context())
	if err != nil {
		a.log.ErrorContext(r.Context(), "idempotency status", "error", err)
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusServiceUnavailable, "idempotency_store_unavailable", "the idempotency store is unavailable"))
		return
	}
	writeJSON(w, http.StatusOK, st)
}
