package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/streamauth"
)

// handler is the service's HTTP contract (see the README).
func (a *app) handler() (http.Handler, error) {
	events, err := streamauth.SSE(a.auth, a.streams, streamauth.ForwardSSE)
	if err != nil {
		return nil, err
	}
	requireCaller := hardening.RequireCaller(a.auth, nil)
	user := func(h http.Handler) http.Handler { return requireCaller(a.tenant.Handler(h)) }
	admin := func(h http.HandlerFunc) http.Handler { return user(requireAdmin(h)) }
	mux := http.NewServeMux()
	mux.Handle("POST /orders", user(a.idem.Handler(a.quotas.RateLimit("orders")(http.HandlerFunc(a.createOrder)))))
	mux.Handle("POST /exports", user(a.quotas.ConcurrencyLimit("exports")(http.HandlerFunc(runExport))))
	mux.Handle("GET /events", events)
	mux.Handle("GET /features/{flag}", user(http.HandlerFunc(a.getFeature)))
	mux.Handle("POST /admin/features/{flag}", admin(a.setFeature))
	mux.Handle("GET /admin/features/audit", admin(a.featureAudit))
	mux.Handle("POST /webhooks/check", user(http.HandlerFunc(a.checkWebhook)))
	return mux, nil
}

func requireAdmin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c, _ := hardening.CallerFrom(r.Context()); !c.HasRole("admin") {
			problem(w, r, http.StatusForbidden, "forbidden", "this endpoint needs the admin role")
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
	if !decode(w, r, &req) {
		return
	}
	if req.SKU == "" || len(req.SKU) > 64 || req.Qty < 1 || req.Qty > 1000 {
		problem(w, r, http.StatusBadRequest, "invalid_body", "want a sku of 1 to 64 bytes and a qty from 1 to 1000")
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
func runExport(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("seconds"))
	if err != nil || n < 0 || n > 300 {
		problem(w, r, http.StatusBadRequest, "invalid_query", "seconds must be an integer from 0 to 300")
		return
	}
	t := time.NewTimer(time.Duration(n) * time.Second)
	defer t.Stop()
	select {
	case <-t.C:
		reply(w, http.StatusOK, map[string]int{"seconds": n})
	case <-r.Context().Done():
	}
}

func (a *app) getFeature(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("flag")
	if _, ok := a.flags.Lookup(name); !ok {
		problem(w, r, http.StatusNotFound, "flag_not_found", "no flag is registered under this name")
		return
	}
	c, _ := hardening.CallerFrom(r.Context())
	reply(w, http.StatusOK, map[string]any{"flag": name, "enabled": a.flags.Enabled(name, c.Tenant, false)})
}

func (a *app) setFeature(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Enabled *bool  `json:"enabled"`
		Org     string `json:"org"`
		Reason  string `json:"reason"`
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Enabled == nil {
		problem(w, r, http.StatusBadRequest, "invalid_body", "enabled is required")
		return
	}
	c, _ := hardening.CallerFrom(r.Context())
	rec, err := a.flags.Toggle(r.Context(), r.PathValue("flag"), *req.Enabled, flags.Change{By: c.Subject, TenantID: req.Org, Reason: req.Reason})
	switch {
	case errors.Is(err, flags.ErrUnknownFlag):
		problem(w, r, http.StatusNotFound, "flag_not_found", "no flag is registered under this name")
	case errors.Is(err, flags.ErrInvalidChange):
		problem(w, r, http.StatusBadRequest, "invalid_body", err.Error())
	case err != nil:
		a.log.ErrorContext(r.Context(), "orders: toggle", "error", err)
		problem(w, r, http.StatusServiceUnavailable, "flags_unavailable", "the flag store is unavailable; retry later")
	default:
		reply(w, http.StatusOK, rec)
	}
}

func (a *app) featureAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := a.flags.Audit(r.Context(), flags.AuditQuery{Flag: q.Get("flag"), Cursor: q.Get("cursor")})
	if errors.Is(err, flags.ErrInvalidCursor) || errors.Is(err, flags.ErrInvalidName) {
		problem(w, r, http.StatusBadRequest, "invalid_query", "flag or cursor is malformed")
		return
	} else if err != nil {
		a.log.ErrorContext(r.Context(), "orders: audit", "error", err)
		problem(w, r, http.StatusServiceUnavailable, "flags_unavailable", "the flag store is unavailable; retry later")
		return
	}
	reply(w, http.StatusOK, page)
}

// checkWebhook answers the egress decision for a webhook URL in public
// mode. It never connects: the policy only decides (resolving a name).
func (a *app) checkWebhook(w http.ResponseWriter, r *http.Request) {
	var req struct {
		URL string `json:"url"`
	}
	if !decode(w, r, &req) {
		return
	}
	d := a.egress.DecideURL(r.Context(), req.URL)
	reply(w, http.StatusOK, map[string]any{"allowed": d.Allowed, "reason": d.Reason})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		problem(w, r, http.StatusBadRequest, "invalid_body", "the body is not the expected JSON object")
		return false
	}
	return true
}

func problem(w http.ResponseWriter, r *http.Request, status int, reason, detail string) {
	hardening.WriteProblem(w, r, hardening.NewProblem(status, reason, detail))
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
