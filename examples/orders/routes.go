package main

import (
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/streamauth"
)

// The service's own errors: hardening.Problems, answered by a.onError like
// the kit's (flags' errors are answered as they come).
var (
	errForbidden = hardening.NewProblem(http.StatusForbidden, "forbidden", "this endpoint needs the admin role")
	errBody      = hardening.NewProblem(http.StatusBadRequest, "invalid_body", "the body is not the expected JSON object")
	errOrder     = hardening.NewProblem(http.StatusBadRequest, "invalid_body", "want a sku of 1 to 64 bytes and a qty from 1 to 1000")
	errEnabled   = hardening.NewProblem(http.StatusBadRequest, "invalid_body", "enabled is required")
	errSeconds   = hardening.NewProblem(http.StatusBadRequest, "invalid_query", "seconds must be an integer from 0 to 300")
)

// handler is the service's HTTP contract (see the README).
func (a *app) handler() (http.Handler, error) {
	events, err := streamauth.SSE(a.auth, a.streams, streamauth.ForwardSSE, streamauth.WithErrorHandler(a.onError))
	if err != nil {
		return nil, err
	}
	requireCaller := hardening.RequireCaller(a.auth, a.onError)
	user := func(h http.Handler) http.Handler { return requireCaller(a.tenant.Handler(h)) }
	mux := http.NewServeMux()
	mux.Handle("POST /orders", user(a.idem.Handler(a.quotas.RateLimit("orders")(http.HandlerFunc(a.createOrder)))))
	mux.Handle("POST /exports", user(a.quotas.ConcurrencyLimit("exports")(http.HandlerFunc(a.runExport))))
	mux.Handle("GET /events", events)
	mux.Handle("GET /features/{flag}", user(http.HandlerFunc(a.getFeature)))
	mux.Handle("POST /admin/features/{flag}", user(a.admin(a.setFeature)))
	mux.Handle("GET /admin/features/audit", user(a.admin(a.featureAudit)))
	mux.Handle("POST /webhooks/check", user(http.HandlerFunc(a.checkWebhook)))
	return mux, nil
}

// admin lets callers with the admin role through, and answers 403 to others.
func (a *app) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c, _ := hardening.CallerFrom(r.Context()); !c.HasRole("admin") {
			a.onError(w, r, errForbidden)
			return
		}
		next(w, r)
	}
}

func (a *app) createOrder(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SKU string `json:"sku"`
		Qty int    `json:"qty"`
	}
	if !a.decode(w, r, &req) {
		return
	}
	if req.SKU == "" || len(req.SKU) > 64 || req.Qty < 1 || req.Qty > 1000 {
		a.onError(w, r, errOrder)
		return
	}
	id := "ord_" + rand.Text()
	c, _ := hardening.CallerFrom(r.Context())
	ev, err := streamauth.NewEvent("order_created", map[string]any{"order_id": id, "sku": req.SKU, "qty": req.Qty})
	if err == nil {
		_, err = a.streams.Publish(r.Context(), c.Tenant, ev)
	}
	if err != nil {
		a.log.WarnContext(r.Context(), "orders: event not published", "order_id", id, "error", err)
	}
	reply(w, http.StatusCreated, map[string]string{"order_id": id})
}

// runExport stands for an export of ?seconds=N (0 to 300) seconds.
func (a *app) runExport(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("seconds"))
	if err != nil || n < 0 || n > 300 {
		a.onError(w, r, errSeconds)
		return
	}
	select {
	case <-time.After(time.Duration(n) * time.Second):
		reply(w, http.StatusOK, map[string]int{"seconds": n})
	case <-r.Context().Done():
	}
}

func (a *app) getFeature(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("flag")
	if _, ok := a.flags.Lookup(name); !ok {
		a.onError(w, r, flags.ErrUnknownFlag)
		return
	}
	reply(w, http.StatusOK, map[string]any{"flag": name, "enabled": a.flags.EnabledContext(r.Context(), name, false)})
}

func (a *app) setFeature(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Enabled *bool  `json:"enabled"`
		Org     string `json:"org"`
		Reason  string `json:"reason"`
	}
	if !a.decode(w, r, &req) {
		return
	}
	if req.Enabled == nil {
		a.onError(w, r, errEnabled)
		return
	}
	c, _ := hardening.CallerFrom(r.Context())
	rec, err := a.flags.Toggle(r.Context(), r.PathValue("flag"), *req.Enabled, flags.Change{By: c.Subject, TenantID: req.Org, Reason: req.Reason})
	a.answer(w, r, rec, err)
}

func (a *app) featureAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := a.flags.Audit(r.Context(), flags.AuditQuery{Flag: q.Get("flag"), Cursor: q.Get("cursor")})
	a.answer(w, r, page, err)
}

// answer replies 200 with v, or answers err (a flags error, which knows its
// problem: flag_not_found, invalid_change, invalid_cursor, flags_unavailable).
func (a *app) answer(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		a.log.InfoContext(r.Context(), "orders: flags", "path", r.URL.Path, "error", err)
		a.onError(w, r, err)
		return
	}
	reply(w, http.StatusOK, v)
}

// checkWebhook answers the egress decision for a webhook URL in public
// mode. It never connects: the policy only decides (resolving a name).
func (a *app) checkWebhook(w http.ResponseWriter, r *http.Request) {
	var req struct {
		URL string `json:"url"`
	}
	if !a.decode(w, r, &req) {
		return
	}
	d := a.egress.DecideURL(r.Context(), req.URL)
	reply(w, http.StatusOK, map[string]any{"allowed": d.Allowed, "reason": d.Reason})
}

func (a *app) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		a.onError(w, r, errBody)
		return false
	}
	return true
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
