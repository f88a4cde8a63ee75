package main

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/migrate"
)

// route is one endpoint of the hub. Every endpoint is listed here, in one
// place, so the routing table (and the OpenAPI contract test) has a single
// source.
type route struct {
	// Method is the HTTP method; empty matches every method.
	Method string
	// Pattern is a Go 1.22 http.ServeMux pattern without the method.
	Pattern string
	// Access is who may call it: public, user or admin.
	Access access
	// Idempotent routes honour the Idempotency-Key header.
	Idempotent bool
	// Handler serves the route.
	Handler http.Handler
	// Check, when set on an Idempotent route, validates the request (path
	// and body) before the idempotency middleware, so a request the
	// handler would reject does not use up its key. It writes the problem
	// and returns false on failure; the handler still validates itself.
	Check func(http.ResponseWriter, *http.Request) bool
	// Stream routes (SSE, WebSocket) last as long as the client stays:
	// they are exempt from the write deadline (HUB_WRITE_TIMEOUT).
	Stream bool
}

// pattern returns the route's http.ServeMux pattern.
func (rt route) pattern() string {
	if rt.Method == "" {
		return rt.Pattern
	}
	return rt.Method + " " + rt.Pattern
}

// setupFeatures wires every feature package onto the app's backends.
// Each feature lives in its own file with a setup<Feature> method.
func (a *app) setupFeatures(ctx context.Context) error {
	// Egress needs no backend: newApp sets it up before the database.
	for _, setup := range []func(context.Context) error{
		// features: one line each
		a.setupIdempotency,
		a.setupTenancy,
		a.setupPreviewTokens,
		a.setupStreams,
		a.setupFlags,
	} {
		if err := setup(ctx); err != nil {
			return err
		}
	}
	return nil
}

// routes lists every endpoint of the hub.
func (a *app) routes() []route {
	var rs []route
	rs = append(rs, a.coreRoutes()...)
	rs = append(rs, a.openapiRoutes()...)
	rs = append(rs, a.egressRoutes()...)
	// features: one append each
	rs = append(rs, a.idempotencyRoutes()...)
	rs = append(rs, a.tenancyRoutes()...)
	rs = append(rs, a.previewTokensRoutes()...)
	rs = append(rs, a.streamsRoutes()...)
	rs = append(rs, a.flagsRoutes()...)
	return rs
}

// readiness builds the /readyz handler: the schema, Redis when the hub
// uses it, and while the hub waits for its schema (late set) the features.
func (a *app) readiness(late *lateStart) (http.Handler, error) {
	readyOpts := []migrate.ReadinessOption{migrate.CacheFor(2 * time.Second)}
	if a.rdb != nil {
		readyOpts = append(readyOpts, migrate.WithCheck(migrate.Check{
			Name:   "redis",
			Reason: "redis_unavailable",
			Func:   func(ctx context.Context) error { return a.rdb.Ping(ctx).Err() },
		}))
	}
	if late != nil {
		readyOpts = append(readyOpts, migrate.WithCheck(late.featuresCheck()))
	}
	return a.migrator.ReadinessHandler(readyOpts...)
}

func (a *app) coreRoutes() []route {
	return []route{
		{Method: http.MethodGet, Pattern: "/{$}", Access: public, Handler: demoHandler()},
		{Method: http.MethodGet, Pattern: "/livez", Access: public, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})},
		{Method: http.MethodGet, Pattern: "/readyz", Access: public, Handler: a.ready},
		{Method: http.MethodGet, Pattern: "/metrics", Access: public, Handler: promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg})},
		{Method: http.MethodGet, Pattern: "/api/v1/whoami", Access: user, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := principalFrom(r.Context())
			roles := p.Roles
			if roles == nil {
				roles = []string{}
			}
			writeJSON(w, http.StatusOK, map[string]any{"user_id": p.UserID, "tenant_id": p.TenantID, "roles": roles, "expires_at": p.ExpiresAt.UTC().Format(time.RFC3339)})
		})},
	}
}

// handler builds the hub's http.Handler: the routing (a.mux, or while
// the schema is pending the routing of pending.go until a.mux is ready)
// inside the hub-wide middleware: request deadlines, then observe.
func (a *app) handler() http.Handler {
	var h http.Handler
	if a.late == nil {
		h = a.mux()
	} else {
		h = a.late.handler(a.pendingMux())
	}
	return limitRequests(a.cfg.BodyTimeout, a.cfg.WriteTimeout, a.observe(h))
}

// mux routes every route, each wrapped (innermost first) by the
// idempotency middleware where marked, the access check, and for streams
// the lifted write deadline.
func (a *app) mux() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range a.routes() {
		h := rt.Handler
		// idempotency: wrap h here when rt.Idempotent
		if rt.Idempotent {
			h = a.idempotent(h)
			if rt.Check != nil {
				h = precheck(rt.Check, h)
			}
		}
		h = a.requireAccess(rt.Access, h)
		if rt.Stream {
			h = streaming(h)
		}
		mux.Handle(rt.pattern(), h)
	}
	mux.Handle("/", notFound())
	return mux
}

// notFound is the catch-all: 404 not_found "no such endpoint".
func notFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusNotFound, "not_found", "no such endpoint"))
	})
}

// observe recovers panics into a 500 problem, logs every request (path
// only: query strings may carry tokens) and counts it by route pattern.
func (a *app) observe(next http.Handler) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hub_http_requests_total",
		Help: "HTTP requests served by the hub, by route pattern and status code.",
	}, []string{"route", "code"})
	a.reg.MustRegister(requests)
	// counters caches each (route, code) child counter, so a request costs
	// one map read instead of a label hash and a status-code string.
	// Routes and codes are few, so it stays small.
	type routeCode struct {
		route string
		code  int
	}
	var countersMu sync.RWMutex
	counters := map[routeCode]prometheus.Counter{}
	count := func(route string, code int) {
		k := routeCode{route, code}
		countersMu.RLock()
		c, ok := counters[k]
		countersMu.RUnlock()
		if !ok {
			c = requests.WithLabelValues(route, strconv.Itoa(code))
			countersMu.Lock()
			counters[k] = c
			countersMu.Unlock()
		}
		c.Inc()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, nosniff: [1]string{"nosniff"}}
		// The value's slice lives in sw: no allocation of its own.
		w.Header()["X-Content-Type-Options"] = sw.nosniff[:]
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log.ErrorContext(r.Context(), "panic serving request", "path", r.URL.Path, "panic", v)
				if sw.status == 0 {
					hardening.WriteProblem(sw, r, hardening.NewProblem(http.StatusInternalServerError, "internal_error", "the server failed; the error is logged"))
				}
			}
			pattern := r.Pattern
			if pattern == "" {
				pattern = "unmatched"
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			count(pattern, status)
			a.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", status), slog.Duration("duration", time.Since(start)))
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter records the status code; Unwrap keeps http.ResponseController
// (Flush, Hijack, deadlines) working for streams.
type statusWriter struct {
	http.ResponseWriter
	status  int
	nosniff [1]string // the X-Content-Type-Options value
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
