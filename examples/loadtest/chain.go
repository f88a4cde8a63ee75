package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/tenancy"
)

// The hub's bearer tokens (examples/hub/auth.go): HS256, audience and
// issuer "hub", tenant in "tid". The load generator mints them for the hub
// binary with the HUB_AUTH_SECRET it gives the hub, and the memory chain
// verifies them the way the hub does.
type hubClaims struct {
	TenantID string   `json:"tid"`
	Roles    []string `json:"roles,omitempty"`
	jwt.RegisteredClaims
}

func mintHubToken(secret []byte, sub, tenant string, admin bool, ttl time.Duration) (string, error) {
	now := time.Now()
	c := hubClaims{TenantID: tenant, RegisteredClaims: jwt.RegisteredClaims{
		Subject: sub, Issuer: "hub", Audience: jwt.ClaimStrings{"hub"},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}}
	if admin {
		c.Roles = []string{"admin"}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}

type principal struct {
	UserID, TenantID string
	Roles            []string
}

type principalKey struct{}

func principalFrom(ctx context.Context) (principal, bool) {
	p, ok := ctx.Value(&principalKey{}).(principal)
	return p, ok
}

// memoryChain is the hub's middleware chain rebuilt in-process on the kit's
// memory stores (the hub binary has no memory mode), or on its Postgres
// stores for the postgres row (chainStores): the observe middleware
// (recover, nosniff, request counter, JSON request log to io.Discard), the
// bearer check, idempotency on the idempotent routes, the tenancy
// middleware and quotas, the preview-token middleware with an owner lookup,
// and the flag client.
type memoryChain struct {
	secret  []byte
	auth    *streamauth.JWTAuthenticator
	log     *slog.Logger
	reg     *prometheus.Registry
	idem    *idempotency.Middleware
	quotas  *tenancy.Quotas
	tenants *tenancy.Middleware
	ring    *previewsec.KeyRing
	revs    *previewsec.RevocationList
	issuer  *previewsec.Issuer
	preview *previewsec.PreviewAuth
	flags   *flags.Client

	mu       sync.RWMutex
	previews map[string]string // preview id -> tenant

	closeStores func() error // releases what the stores hold
}

// chainStores are the stores a chain runs on: the memory stores
// (memoryStores) or the Postgres ones (postgresStores).
type chainStores struct {
	idem  idempotency.Store
	quota tenancy.Store
	keys  previewsec.KeyStore
	revs  previewsec.RevocationStore
	flags flags.Store
	// close releases what the stores hold (a database pool); nil: nothing.
	close func() error
}

// memoryStores are the packages' memory stores.
func memoryStores() chainStores {
	keys := previewsec.NewMemoryKeyStore()
	return chainStores{idem: idempotency.NewMemoryStore(), quota: tenancy.NewMemoryStore(), keys: keys, revs: keys, flags: flags.NewMemoryStore()}
}

// newMemoryChain sets the chain up on memory stores.
func newMemoryChain(ctx context.Context, secret []byte) (*memoryChain, error) {
	return newChain(ctx, secret, memoryStores())
}

// newChain sets the chain up on st; Close stops its background work and
// closes st (on an error, st is the caller's to close).
func newChain(ctx context.Context, secret []byte, st chainStores) (*memoryChain, error) {
	c := &memoryChain{secret: secret, log: slog.New(slog.NewJSONHandler(io.Discard, nil)), reg: prometheus.NewRegistry(), previews: map[string]string{}}
	var err error
	if c.auth, err = streamauth.NewJWT(secret, streamauth.WithAudience("hub"), streamauth.WithIssuer("hub"),
		streamauth.WithLeeway(30*time.Second), streamauth.WithIssuedAtCheck()); err != nil {
		return nil, err
	}
	if c.idem, err = idempotency.New(st.idem,
		idempotency.WithLogger(c.log), idempotency.WithRegisterer(c.reg), idempotency.WithScope(func(r *http.Request) (string, error) {
			p, ok := principalFrom(r.Context())
			if !ok {
				return "", errors.New("no principal")
			}
			return fmt.Sprintf("%d:%s/%s", len(p.TenantID), p.TenantID, p.UserID), nil
		})); err != nil {
		return nil, err
	}
	if err := c.idem.Start(ctx); err != nil {
		return nil, err
	}
	if c.quotas, err = tenancy.NewQuotas(st.quota,
		tenancy.Concurrency("active_previews", highLimit, time.Hour),
		tenancy.Rate("snapshots", highLimit, time.Minute, tenancy.WithReason("snapshot_rate_exceeded")),
		tenancy.WithLogger(c.log), tenancy.WithRegisterer(c.reg)); err != nil {
		return nil, err
	}
	if c.tenants, err = tenancy.New(tenancy.WithIdentity(func(r *http.Request) (string, error) {
		p, _ := principalFrom(r.Context())
		return p.TenantID, nil
	}), tenancy.WithLogger(c.log)); err != nil {
		return nil, err
	}
	if c.ring, err = previewsec.NewKeyRing(st.keys, previewsec.WithLogger(c.log)); err != nil {
		return nil, err
	}
	if c.revs, err = previewsec.NewRevocationList(st.revs, previewsec.WithLogger(c.log)); err != nil {
		return nil, err
	}
	if c.issuer, err = previewsec.NewIssuer(c.ring, previewsec.WithLogger(c.log), previewsec.WithRegisterer(c.reg)); err != nil {
		return nil, err
	}
	v, err := previewsec.NewVerifier(c.ring, previewsec.WithRevocations(c.revs), previewsec.WithLogger(c.log), previewsec.WithRegisterer(c.reg))
	if err != nil {
		return nil, err
	}
	if c.preview, err = previewsec.RequirePreviewToken(v, previewsec.WithPreviewOwner(c.previewOwner),
		previewsec.WithSecureCookieFunc(previewsec.SecureFromConnection()), previewsec.WithLogger(c.log)); err != nil {
		return nil, err
	}
	if err := c.ring.Refresh(ctx); err != nil {
		return nil, err
	}
	if err := c.revs.Refresh(ctx); err != nil {
		return nil, err
	}
	var defs []flags.Flag
	for _, f := range hubFlagDefs {
		defs = append(defs, flags.Flag{Name: f.Name, Default: f.Default, Description: f.Description})
	}
	if c.flags, err = flags.New(st.flags, flags.WithFlags(defs...), flags.WithLogger(c.log), flags.WithRegisterer(c.reg)); err != nil {
		return nil, err
	}
	if err := c.flags.Start(ctx); err != nil {
		return nil, err
	}
	c.closeStores = st.close
	return c, nil
}

// highLimit is the quota the load runs under: high enough never to refuse.
const highLimit = 1_000_000_000

// Close stops the chain's background work.
func (c *memoryChain) Close(ctx context.Context) error {
	err := errors.Join(c.flags.Close(ctx), c.idem.Close(ctx))
	if c.closeStores != nil {
		err = errors.Join(err, c.closeStores())
	}
	return err
}

func (c *memoryChain) previewOwner(_ context.Context, id string) (string, bool, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.previews[id]
	return t, ok, nil
}

// Handler is the chain's http.Handler.
func (c *memoryChain) Handler() http.Handler {
	mux := http.NewServeMux()
	user := func(h http.Handler) http.Handler { return c.requireUser(h) }
	scoped := func(h http.HandlerFunc) http.Handler { return c.tenants.Handler(h) }
	mux.Handle("POST /api/v1/echo", user(c.idem.Handler(http.HandlerFunc(echo))))
	mux.Handle("POST /api/v1/systems/{system_id}/snapshots", user(c.idem.Handler(scoped(c.createSnapshot))))
	mux.Handle("POST /api/v1/previews", user(c.idem.Handler(scoped(c.createPreview))))
	mux.Handle("GET /api/v1/feature-flags", user(http.HandlerFunc(c.listFlags)))
	mux.Handle("GET /preview/{preview_id}/", c.preview.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cl, ok := previewsec.ClaimsFromContext(r.Context())
		if !ok {
			hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusUnauthorized, "preview_token_required", "a valid preview token is required"))
			return
		}
		previewPageOf(w, r, pageClaims{PreviewID: cl.PreviewID, SystemID: cl.SystemID, Device: cl.Device, TenantID: cl.TenantID, ExpiresAt: cl.ExpiresAt})
	})))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusNotFound, "not_found", "no such endpoint"))
	}))
	return c.observe(mux)
}

func (c *memoryChain) requireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := ""
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			raw = strings.TrimSpace(h[7:])
		}
		cl, err := c.auth.AuthenticateToken(r.Context(), raw)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hub"`)
			hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusUnauthorized, "unauthenticated", "a valid bearer token is required"))
			return
		}
		p := principal{UserID: cl.Subject, TenantID: cl.Tenant, Roles: cl.Roles}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), &principalKey{}, p)))
	})
}

func (c *memoryChain) observe(next http.Handler) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hub_http_requests_total", Help: "requests"}, []string{"route", "code"})
	c.reg.MustRegister(requests)
	// Each (route, code) child counter is cached, as the hub's observe
	// does: one map read per request instead of a label hash and a
	// status-code string.
	type routeCode struct {
		route string
		code  int
	}
	var countersMu sync.RWMutex
	counters := map[routeCode]prometheus.Counter{}
	count := func(route string, code int) {
		k := routeCode{route, code}
		countersMu.RLock()
		ctr, ok := counters[k]
		countersMu.RUnlock()
		if !ok {
			ctr = requests.WithLabelValues(route, strconv.Itoa(code))
			countersMu.Lock()
			counters[k] = ctr
			countersMu.Unlock()
		}
		ctr.Inc()
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
				if sw.status == 0 {
					hardening.WriteProblem(sw, r, hardening.NewProblem(http.StatusInternalServerError, "internal_error", "the server failed"))
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			count(r.Pattern, status)
			c.log.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", status), slog.Duration("duration", time.Since(start)))
		}()
		next.ServeHTTP(sw, r)
	})
}

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

func (c *memoryChain) createSnapshot(w http.ResponseWriter, r *http.Request) {
	tenant, _ := tenancy.FromContext(r.Context())
	res, err := c.quotas.Allow(r.Context(), "snapshots")
	if res.Limit > 0 || err == nil {
		tenancy.SetRateLimitHeaders(w.Header(), res)
	}
	if err != nil {
		tenancy.WriteError(w, r, err)
		return
	}
	snapshot(w, r, string(tenant))
}

// createPreview is the fixture setup: a slot, a record and a token.
func (c *memoryChain) createPreview(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SystemID     string `json:"system_id"`
		DevicePreset string `json:"device_preset"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	ctx := r.Context()
	tenant, _ := tenancy.FromContext(ctx)
	p, _ := principalFrom(ctx)
	id := newID("pv_")
	if _, err := c.quotas.Acquire(ctx, "active_previews", id); err != nil {
		tenancy.WriteError(w, r, err)
		return
	}
	c.mu.Lock()
	c.previews[id] = string(tenant)
	c.mu.Unlock()
	tok, _, _, err := c.issuer.Mint(ctx, previewsec.Grant{UserID: p.UserID, TenantID: string(tenant), PreviewID: id, SystemID: req.SystemID, Device: "desktop"}, 0)
	if err != nil {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusServiceUnavailable, "preview_tokens_unavailable", "no token"))
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"preview_id": id, "tenant_id": string(tenant), "token": tok})
}

func (c *memoryChain) listFlags(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	list := c.flags.List(p.TenantID)
	out := make([]flagView, 0, len(list))
	for _, s := range list {
		out = append(out, flagView{Name: s.Name, Description: s.Description, Default: s.Default, Enabled: s.Value, Source: s.Source.String()})
	}
	writeFlags(w, p.TenantID, out)
}
