package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/flags/postgresstore"
	"github.com/systembuilderhub/hardening/flags/redisstore"
	"github.com/systembuilderhub/hardening/flags/sqlitestore"
)

// hubFlags are the demo flags the hub registers.
var hubFlags = []flags.Flag{
	{Name: "preview.device-presets", Default: true, Description: "Offer device presets (phone, tablet, desktop) when creating a preview."},
	{Name: "llm.streaming", Default: false, Description: "Stream LLM answers to the browser as they are generated."},
	{Name: "preview.snapshots", Default: false, Description: "Let users take snapshots of a running preview."},
}

// flagClient returns the app's flag client (set by setupFlags).
func (a *app) flagClient() *flags.Client { return a.flagsFeature }

// setupFlags builds the flag client on Redis when configured, else on the
// database (Postgres: toggles reach the other replicas by LISTEN/NOTIFY), registers the demo flags, forwards every toggle to the
// tenant event streams and starts the cache refresh.
func (a *app) setupFlags(ctx context.Context) error {
	var store flags.Store
	var err error
	if a.rdb != nil {
		store, err = redisstore.New(a.rdb, redisstore.WithPrefix(a.cfg.RedisPrefix))
	} else if a.onPostgres() {
		store, err = postgresstore.New(a.db)
	} else {
		store, err = sqlitestore.New(a.db)
	}
	if err != nil {
		return err
	}
	opts := append([]flags.Option{
		flags.WithFlags(hubFlags...),
		flags.WithLogger(a.log),
		flags.WithRegisterer(a.reg),
		flags.WithClock(a.now),
	}, a.env.flags...)
	c, err := flags.New(store, opts...)
	if err != nil {
		return err
	}
	// A global toggle concerns every tenant; the streams treat "" as a
	// broadcast.
	c.OnChange(func(r flags.Record) { a.publish(r.TenantID, "flag.toggled", toggleEvent(r)) })
	if err := c.Start(ctx); err != nil {
		return err
	}
	a.flagsFeature = c
	a.onClose(c.Close)
	return nil
}

func (a *app) flagsRoutes() []route {
	return []route{
		{Method: http.MethodGet, Pattern: "/api/v1/feature-flags", Access: user, Handler: http.HandlerFunc(a.listFlags)},
		{Method: http.MethodGet, Pattern: "/api/v1/feature-flags/audit", Access: admin, Handler: http.HandlerFunc(a.flagAudit)},
		{Method: http.MethodPost, Pattern: "/api/v1/feature-flags/{flag_name}/toggle", Access: admin, Idempotent: true, Handler: http.HandlerFunc(a.toggleFlag),
			Check: func(w http.ResponseWriter, r *http.Request) bool {
				return a.toggledFlag(w, r) && checkJSON[toggleRequest](false)(w, r)
			}},
	}
}

// flagView is one flag as GET /api/v1/feature-flags shows it.
type flagView struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Default     bool   `json:"default"`
	Enabled     bool   `json:"enabled"`
	// Source is override, global, default or stale.
	Source string `json:"source"`
}

func (a *app) listFlags(w http.ResponseWriter, r *http.Request) {
	p, _ := principalFrom(r.Context())
	list := a.flagClient().List(p.TenantID)
	out := make([]flagView, 0, len(list))
	for _, s := range list {
		out = append(out, flagView{Name: s.Name, Description: s.Description, Default: s.Default, Enabled: s.Value, Source: s.Source.String()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenant_id": p.TenantID, "flags": out})
}

// tenantOrNull shows the global scope as JSON null.
func tenantOrNull(t string) *string {
	if t == "" {
		return nil
	}
	return &t
}

// toggleResponse is the body of a successful toggle.
type toggleResponse struct {
	Flag      string  `json:"flag"`
	TenantID  *string `json:"tenant_id"`
	OldValue  *bool   `json:"old_value"`
	NewValue  bool    `json:"new_value"`
	ChangedBy string  `json:"changed_by"`
	ChangedAt string  `json:"changed_at"`
	Reason    string  `json:"reason"`
}

func toggleView(r flags.Record) toggleResponse {
	return toggleResponse{
		Flag: r.Flag, TenantID: tenantOrNull(r.TenantID), OldValue: r.OldValue, NewValue: r.NewValue,
		ChangedBy: r.ChangedBy, ChangedAt: r.ChangedAt.UTC().Format(time.RFC3339Nano), Reason: r.Reason,
	}
}

// flagEvent is the data of the flag.toggled stream event: what every user
// of the scope may see. Who changed the flag and why stay with the admin
// endpoints (the toggle's answer, GET /api/v1/feature-flags/audit).
type flagEvent struct {
	Flag string `json:"flag"`
	// Scope is "global" (every tenant; TenantID null) or "tenant".
	Scope    string  `json:"scope"`
	TenantID *string `json:"tenant_id"`
	NewValue bool    `json:"new_value"`
}

func toggleEvent(r flags.Record) flagEvent {
	scope := "tenant"
	if r.TenantID == "" {
		scope = "global"
	}
	return flagEvent{Flag: r.Flag, Scope: scope, TenantID: tenantOrNull(r.TenantID), NewValue: r.NewValue}
}

// toggleRequest is the body of POST /api/v1/feature-flags/{flag_name}/toggle.
type toggleRequest struct {
	Enabled  *bool   `json:"enabled"`
	TenantID *string `json:"tenant_id"`
	Reason   string  `json:"reason"`
}

// validate checks the body as the flag client will check the change.
func (body *toggleRequest) validate() error {
	if body.Enabled == nil {
		return errors.New(`"enabled" (true or false) is required`)
	}
	ch := flags.Change{By: "caller", Reason: body.Reason} // the caller is the verified principal
	if body.TenantID != nil {
		if *body.TenantID == "" {
			return errors.New(`"tenant_id" must not be empty; omit it to change the global value`)
		}
		ch.TenantID = *body.TenantID
	}
	if ch.Validate() != nil {
		return fmt.Errorf("tenant_id must be printable text of at most %d characters, reason at most %d bytes of UTF-8", flags.MaxTenantIDLen, flags.MaxReasonLen)
	}
	return nil
}

// toggledFlag answers 404 (and returns false) when {flag_name} is not a
// registered flag.
func (a *app) toggledFlag(w http.ResponseWriter, r *http.Request) bool {
	if _, ok := a.flagClient().Lookup(r.PathValue("flag_name")); !ok {
		hardening.WriteError(w, r, flags.ErrUnknownFlag) // 404 flag_not_found
		return false
	}
	return true
}

func (a *app) toggleFlag(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("flag_name")
	c := a.flagClient()
	if !a.toggledFlag(w, r) {
		return
	}
	var body toggleRequest
	if !decodeJSON(w, r, &body) {
		return
	}
	ch := flags.Change{Reason: body.Reason}
	if body.TenantID != nil {
		ch.TenantID = *body.TenantID
	}
	p, _ := principalFrom(r.Context())
	ch.By = p.UserID
	rec, err := c.Toggle(r.Context(), name, *body.Enabled, ch)
	switch {
	case errors.Is(err, flags.ErrInvalidChange):
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_body",
			"tenant_id and the caller must be printable text of at most 200 characters, reason at most 2000 bytes"))
		return
	case errors.Is(err, flags.ErrUnknownFlag):
		hardening.WriteError(w, r, err) // 404 flag_not_found
		return
	case err != nil:
		// The store failed: err wraps flags.ErrUnavailable, 503
		// flags_unavailable; the store's error goes to the log only.
		a.log.ErrorContext(r.Context(), "flag toggle failed", "flag", name, "err", err)
		hardening.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toggleView(rec))
}

// auditEntry is one audit record as GET /api/v1/feature-flags/audit shows it.
type auditEntry struct {
	ID        int64   `json:"id"`
	FlagName  string  `json:"flag_name"`
	TenantID  *string `json:"tenant_id"`
	OldValue  *bool   `json:"old_value"`
	NewValue  bool    `json:"new_value"`
	ChangedBy string  `json:"changed_by"`
	ChangedAt string  `json:"changed_at"`
	Reason    string  `json:"reason"`
}

func (a *app) flagAudit(w http.ResponseWriter, r *http.Request) {
	qs, ok := queryValues(w, r)
	if !ok {
		return
	}
	q := flags.AuditQuery{
		Flag:      qs.Get("flag"),
		TenantID:  qs.Get("tenant_id"),
		ChangedBy: qs.Get("changed_by"),
		Cursor:    qs.Get("cursor"),
	}
	bad := func(detail string) {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_query", detail))
	}
	for _, tp := range []struct {
		param string
		dst   *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := qs.Get(tp.param); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				bad(tp.param + " must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
				return
			}
			*tp.dst = t
		}
	}
	if v := qs.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > flags.MaxAuditLimit {
			bad("limit must be an integer from 1 to " + strconv.Itoa(flags.MaxAuditLimit))
			return
		}
		q.Limit = n
	}
	page, err := a.flagClient().Audit(r.Context(), q)
	switch {
	case errors.Is(err, flags.ErrInvalidCursor):
		bad("cursor is not one this endpoint returned")
		return
	case errors.Is(err, flags.ErrInvalidName), errors.Is(err, flags.ErrInvalidChange):
		bad("flag, tenant_id or changed_by is malformed")
		return
	case err != nil: // wraps flags.ErrUnavailable: 503 flags_unavailable
		a.log.ErrorContext(r.Context(), "flag audit query failed", "err", err)
		hardening.WriteError(w, r, err)
		return
	}
	entries := make([]auditEntry, 0, len(page.Entries))
	for _, e := range page.Entries {
		entries = append(entries, auditEntry{
			ID: e.ID, FlagName: e.Flag, TenantID: tenantOrNull(e.TenantID), OldValue: e.OldValue, NewValue: e.NewValue,
			ChangedBy: e.ChangedBy, ChangedAt: e.ChangedAt.UTC().Format(time.RFC3339Nano), Reason: e.Reason,
		})
	}
	var next *string
	if page.NextCursor != "" {
		next = &page.NextCursor
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries, "next_cursor": next})
}
