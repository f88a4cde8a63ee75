package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/postgresstore"
	"github.com/systembuilderhub/hardening/tenancy/redisstore"
	"github.com/systembuilderhub/hardening/tenancy/sqlitestore"
)

// previewLease is how long an active-preview slot stays held without
// renewal. The hub's previews are records, not running containers, so the
// lease matches the preview token lifetime; a real preview runner calls
// Quotas.Renew while the preview runs and the lease only frees the slot of
// a runner that crashed.
//
// HUB_PREVIEW_LEASE overrides it (the fault tests shorten it to watch the
// slots of a killed process come back).
const previewLease = 60 * time.Minute

// Knobs of the tenancy feature, for fault tests and demonstrations.
const (
	// envPreviewLease sets the active-preview slot lease (default previewLease).
	envPreviewLease = "HUB_PREVIEW_LEASE"
	// envStubModelDelay makes each stub model call take this long (default
	// 0), so a test can kill the hub in the middle of a completion.
	envStubModelDelay = "HUB_STUB_MODEL_DELAY"
)

// tenancyHub is the hub's tenancy feature: quotas on the configured store,
// the tenant middleware and the model client.
type tenancyHub struct {
	quotas *tenancy.Quotas
	model  modelClient
}

// The hub's quotas: declared in setupTenancy like any service's, with the
// reasons the hub has always answered.
const (
	// quotaPreviews is the concurrency quota of active previews.
	quotaPreviews = "active_previews"
	// quotaSnapshots is the rate of snapshots per minute.
	quotaSnapshots = "snapshots"
	// quotaLLM is the monthly LLM budget, in micro-dollars.
	quotaLLM = "llm_budget"
)

// tenancy returns the app's tenancy feature (set by setupTenancy).
func (a *app) tenancy() *tenancyHub { return a.tenancyFeature }

// setupTenancy declares the hub's three quotas on Redis when the hub has
// it, else on the database (SQLite or Postgres), with the defaults of DEFAULT_ACTIVE_PREVIEWS_LIMIT,
// DEFAULT_SNAPSHOT_RATE_PER_MINUTE and DEFAULT_LLM_MONTHLY_BUDGET_USD. On
// Redis it first moves the keys of the kit's former fixed quotas to the
// named ones (a no-op once done).
func (a *app) setupTenancy(ctx context.Context) error {
	var store tenancy.Store
	var err error
	if a.rdb != nil {
		rs, err := redisstore.New(a.rdb, redisstore.WithPrefix(a.cfg.RedisPrefix))
		if err != nil {
			return fmt.Errorf("%s: %w", envRedisPrefix, err)
		}
		if _, err := rs.UpgradeFixedQuotas(ctx); err != nil {
			return fmt.Errorf("upgrade the quota keys in redis: %w", err)
		}
		store = rs
	} else if a.onPostgres() {
		if store, err = postgresstore.New(a.db); err != nil {
			return err
		}
	} else if store, err = sqlitestore.New(a.db); err != nil {
		return err
	}
	d := a.env.quotas
	q, err := tenancy.NewQuotas(store,
		tenancy.Concurrency(quotaPreviews, d.ActivePreviews, a.env.previewLease, tenancy.WithReason("active_previews_limit_exceeded")),
		tenancy.Rate(quotaSnapshots, d.SnapshotsPerMinute, time.Minute, tenancy.WithReason("snapshot_rate_exceeded")),
		tenancy.Budget(quotaLLM, int64(d.LLMMonthlyBudget), tenancy.Monthly, tenancy.WithReason("llm_budget_exceeded"),
			tenancy.WithCurrency("USD", tenancy.MicrosPerUSD)),
		tenancy.WithClock(func() time.Time { return a.now() }),
		tenancy.WithLogger(a.log),
		tenancy.WithRegisterer(a.reg))
	if err != nil {
		return err
	}
	a.tenancyFeature = &tenancyHub{quotas: q, model: stubModel{delay: a.env.modelDelay}}
	return nil
}

func (a *app) tenancyRoutes() []route {
	// The tenant is the caller's (the default: the "tid" claim of the
	// bearer token the hub's auth verified, as hardening.Caller); no client
	// header is trusted.
	mw, err := tenancy.New(tenancy.WithLogger(a.log))
	if err != nil {
		panic(err) // no option here can fail
	}
	scoped := func(h http.HandlerFunc) http.Handler { return mw.Handler(h) }
	return []route{
		{Method: http.MethodPost, Pattern: "/api/v1/previews", Access: user, Idempotent: true, Handler: scoped(a.createPreviewHandler),
			Check: checkJSON[createPreviewRequest](false)},
		{Method: http.MethodDelete, Pattern: "/api/v1/previews/{id}", Access: user, Handler: scoped(a.deletePreviewHandler)},
		{Method: http.MethodPost, Pattern: "/api/v1/systems/{system_id}/snapshots", Access: user, Idempotent: true, Handler: scoped(a.createSnapshotHandler),
			Check: checkSnapshot},
		{Method: http.MethodPost, Pattern: "/api/v1/llm/completions", Access: user, Idempotent: true, Handler: scoped(a.completionHandler),
			Check: checkJSON[completionRequest](false)},
		{Method: http.MethodGet, Pattern: "/api/v1/tenancy/quotas/{tenant_id}", Access: user, Handler: http.HandlerFunc(a.getQuotasHandler)},
		{Method: http.MethodPost, Pattern: "/api/v1/tenancy/quotas/{tenant_id}/update", Access: admin, Handler: http.HandlerFunc(a.updateQuotasHandler)},
		{Method: http.MethodGet, Pattern: "/api/v1/tenancy/audit", Access: admin, Handler: http.HandlerFunc(a.auditHandler)},
	}
}

// previewCreated is the body of 201 POST /api/v1/previews: the one place
// the response is built (the preview-token feature adds token, expires_at
// and url here).
type previewCreated struct {
	PreviewID      string    `json:"preview_id"`
	TenantID       string    `json:"tenant_id"`
	SystemID       string    `json:"system_id"`
	DevicePreset   string    `json:"device_preset"`
	CreatedAt      time.Time `json:"created_at"`
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
	previewAccess
}

func validName(field, v string) error {
	if v == "" || len(v) > 128 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%s must be 1 to 128 printable characters", field)
	}
	return nil
}

// createPreviewRequest is the body of POST /api/v1/previews.
type createPreviewRequest struct {
	SystemID     string `json:"system_id"`
	DevicePreset string `json:"device_preset"`
}

// validate checks the names; the device preset defaults to desktop.
func (req *createPreviewRequest) validate() error {
	if req.DevicePreset == "" {
		req.DevicePreset = "desktop"
	}
	return validPreviewTarget(req.SystemID, req.DevicePreset)
}

// validPreviewTarget checks a preview's system id and device preset (1 to
// 128 printable characters each), for POST /api/v1/previews and the
// preview-token mint alike: what the mint signs is what a preview may hold.
func validPreviewTarget(systemID, devicePreset string) error {
	return cmp.Or(validName("system_id", systemID), validName("device_preset", devicePreset))
}

func (a *app) createPreviewHandler(w http.ResponseWriter, r *http.Request) {
	var req createPreviewRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	ctx := r.Context()
	tenant, _ := tenancy.FromContext(ctx)
	p, _ := principalFrom(ctx)
	q := a.tenancy().quotas
	id := newID("pv_")
	slot, err := q.Acquire(ctx, quotaPreviews, id)
	if err != nil {
		tenancy.WriteError(w, r, err)
		return
	}
	rec := previewRecord{ID: id, TenantID: string(tenant), SystemID: req.SystemID, DevicePreset: req.DevicePreset, CreatedBy: p.UserID, CreatedAt: a.now().UTC()}
	if err := a.createPreview(ctx, rec); err != nil {
		if _, rerr := q.Release(context.WithoutCancel(ctx), quotaPreviews, id); rerr != nil {
			a.log.ErrorContext(ctx, "release preview slot after failed create", "preview_id", id, "err", rerr)
		}
		a.dbFailed(w, r, "create preview", err)
		return
	}
	resp := previewCreated{PreviewID: id, TenantID: rec.TenantID, SystemID: rec.SystemID, DevicePreset: rec.DevicePreset, CreatedAt: rec.CreatedAt, LeaseExpiresAt: slot.ExpiresAt.UTC()}
	if p, ok := principalFrom(ctx); ok {
		if acc, err := a.previewAccessFor(ctx, p, rec); err != nil {
			a.log.ErrorContext(ctx, "mint preview token", "preview_id", id, "err", err)
		} else {
			resp.previewAccess = acc
		}
	}
	// The event goes to every stream of the tenant, other users included:
	// it must not carry the creator's preview token.
	event := resp
	event.previewAccess = previewAccess{}
	a.publish(rec.TenantID, "preview.created", event)
	writeJSON(w, http.StatusCreated, resp)
}

func (a *app) deletePreviewHandler(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tenant, _ := tenancy.FromContext(ctx)
	p, _ := principalFrom(ctx)
	id := r.PathValue("id")
	rec, found, err := a.lookupPreview(ctx, id)
	if err != nil {
		a.dbFailed(w, r, "lookup preview", err)
		return
	}
	// Another tenant's preview answers like a missing one (no existence
	// oracle), unless the caller is an admin.
	if !found || (rec.TenantID != string(tenant) && !p.isAdmin()) {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusNotFound, "preview_not_found", "no such preview"))
		return
	}
	if _, err := a.deletePreview(ctx, id); err != nil {
		a.dbFailed(w, r, "delete preview", err)
		return
	}
	if err := a.revokePreviewTokens(context.WithoutCancel(ctx), id); err != nil {
		a.log.ErrorContext(ctx, "revoke preview tokens", "preview_id", id, "err", err)
	}
	// Release in the preview's own tenant (an admin may delete any).
	if _, err := a.tenancy().quotas.Release(tenancy.WithTenant(context.WithoutCancel(ctx), tenancy.ID(rec.TenantID)), quotaPreviews, id); err != nil {
		// The record is gone; the slot's lease frees it at the latest.
		a.log.ErrorContext(ctx, "release preview slot", "preview_id", id, "err", err)
	}
	a.publish(rec.TenantID, "preview.deleted", map[string]string{"preview_id": id, "tenant_id": rec.TenantID})
	w.WriteHeader(http.StatusNoContent)
}

// snapshotCreated is the body of 201 POST /api/v1/systems/{id}/snapshots.
type snapshotCreated struct {
	SnapshotID string    `json:"snapshot_id"`
	SystemID   string    `json:"system_id"`
	TenantID   string    `json:"tenant_id"`
	Label      string    `json:"label,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// snapshotRequest is the optional body of POST .../snapshots.
type snapshotRequest struct {
	Label string `json:"label"`
}

// snapshotSystem reads {system_id}; it writes the problem and returns
// false when it is malformed.
func snapshotSystem(w http.ResponseWriter, r *http.Request) (string, bool) {
	systemID := r.PathValue("system_id")
	if err := validName("system_id", systemID); err != nil {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_path", err.Error()))
		return "", false
	}
	return systemID, true
}

// checkSnapshot is the snapshot route's Check: the path, then the body.
func checkSnapshot(w http.ResponseWriter, r *http.Request) bool {
	_, ok := snapshotSystem(w, r)
	return ok && checkJSON[snapshotRequest](true)(w, r)
}

func (a *app) createSnapshotHandler(w http.ResponseWriter, r *http.Request) {
	systemID, ok := snapshotSystem(w, r)
	if !ok {
		return
	}
	// The body is optional: empty, or a JSON object with an optional label.
	var req snapshotRequest
	if hasBody(r) && !decodeJSON(w, r, &req) {
		return
	}
	ctx := r.Context()
	tenant, _ := tenancy.FromContext(ctx)
	res, err := a.tenancy().quotas.Allow(ctx, quotaSnapshots)
	if res.Limit > 0 || err == nil {
		tenancy.SetRateLimitHeaders(w.Header(), res)
	}
	if err != nil {
		tenancy.WriteError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, snapshotCreated{SnapshotID: newID("snap_"), SystemID: systemID, TenantID: string(tenant), Label: req.Label, CreatedAt: a.now().UTC()})
}

// hasBody reports whether the request has a non-empty body, peeking at a
// body of unknown length (chunked) without consuming it.
func hasBody(r *http.Request) bool {
	switch {
	case r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0:
		return false
	case r.ContentLength > 0:
		return true
	}
	br := bufio.NewReader(r.Body)
	if _, err := br.Peek(1); err != nil {
		return false
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{br, r.Body}
	return true
}

// limitsJSON is the hub's view of its three quotas' limits (money in USD).
type limitsJSON struct {
	ActivePreviews      int64   `json:"active_previews"`
	SnapshotsPerMinute  int64   `json:"snapshots_per_minute"`
	LLMMonthlyBudgetUSD float64 `json:"llm_monthly_budget_usd"`
}

func toLimitsJSON(l tenancy.Limits) limitsJSON {
	return limitsJSON{ActivePreviews: l[quotaPreviews], SnapshotsPerMinute: l[quotaSnapshots], LLMMonthlyBudgetUSD: tenancy.Micros(l[quotaLLM]).USD()}
}

// pathTenant reads {tenant_id}; it writes the problem and returns false
// when the caller may not see it or it is malformed.
func pathTenant(w http.ResponseWriter, r *http.Request) (tenancy.ID, bool) {
	raw := r.PathValue("tenant_id")
	p, _ := principalFrom(r.Context())
	if !p.isAdmin() && raw != p.TenantID {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusForbidden, "forbidden", "only admins may read another tenant's quotas"))
		return "", false
	}
	id, err := tenancy.ParseID(raw)
	if err != nil {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "tenant_invalid", "the tenant id is malformed"))
		return "", false
	}
	return id, true
}

func (a *app) getQuotasHandler(w http.ResponseWriter, r *http.Request) {
	tenant, ok := pathTenant(w, r)
	if !ok {
		return
	}
	q := a.tenancy().quotas
	ctx := r.Context()
	l, err := q.Limits(ctx, tenant)
	if err != nil {
		a.quotaStoreFailed(w, r, err)
		return
	}
	u, err := q.Usage(ctx, tenant)
	if err != nil {
		a.quotaStoreFailed(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_id": tenant,
		"limits":    toLimitsJSON(l),
		"usage": map[string]any{
			"active_previews":       u[quotaPreviews].Used,
			"snapshots_last_minute": u[quotaSnapshots].Used,
			"llm_spent_usd":         tenancy.Micros(u[quotaLLM].Used).USD(),
			"llm_reserved_usd":      tenancy.Micros(u[quotaLLM].Reserved).USD(),
		},
	})
}

// limitsRangeDetail is the detail of a 400 invalid_body for a limit out of
// range: the kit holds every limit exactly up to tenancy.MaxLimit (2^53-1).
var limitsRangeDetail = fmt.Sprintf("limits must be from 0 to %d (llm_monthly_budget_usd from 0 to %.2f)",
	int64(tenancy.MaxLimit), float64(tenancy.MaxLimit/10_000)/100)

// limitsInRange reports whether every limit is 0 to tenancy.MaxLimit: the
// hub offers no tenancy.Unlimited.
func limitsInRange(l tenancy.Limits) bool {
	for _, v := range l {
		if v < 0 || v > tenancy.MaxLimit {
			return false
		}
	}
	return true
}

func (a *app) updateQuotasHandler(w http.ResponseWriter, r *http.Request) {
	tenant, ok := pathTenant(w, r)
	if !ok {
		return
	}
	var req struct {
		ActivePreviews      *int64   `json:"active_previews"`
		SnapshotsPerMinute  *int64   `json:"snapshots_per_minute"`
		LLMMonthlyBudgetUSD *float64 `json:"llm_monthly_budget_usd"`
		Reason              string   `json:"reason"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	bad := func(detail string) {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_body", detail))
	}
	set := tenancy.Limits{}
	for name, v := range map[string]*int64{quotaPreviews: req.ActivePreviews, quotaSnapshots: req.SnapshotsPerMinute} {
		if v != nil {
			set[name] = *v
		}
	}
	if req.LLMMonthlyBudgetUSD != nil {
		m, err := tenancy.MicrosFromUSD(*req.LLMMonthlyBudgetUSD)
		if err != nil {
			bad(limitsRangeDetail)
			return
		}
		set[quotaLLM] = int64(m)
	}
	switch {
	case len(set) == 0:
		bad("give at least one of active_previews, snapshots_per_minute, llm_monthly_budget_usd")
		return
	case !limitsInRange(set):
		bad(limitsRangeDetail)
		return
	case len(req.Reason) > 500:
		bad("reason must be at most 500 characters")
		return
	}
	p, _ := principalFrom(r.Context())
	l, err := a.tenancy().quotas.SetLimits(r.Context(), tenant, set, p.UserID, req.Reason)
	if err != nil {
		a.quotaStoreFailed(w, r, err)
		return
	}
	lj := toLimitsJSON(l)
	// Every user of the tenant sees the new limits; who changed them and
	// why stay with the admin audit (GET /api/v1/tenancy/audit).
	a.publish(string(tenant), "quota.changed", map[string]any{"tenant_id": tenant, "limits": lj})
	// The new limits, as "limits" (the shape of GET quotas) and flat.
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_id":              tenant,
		"limits":                 lj,
		"active_previews":        lj.ActivePreviews,
		"snapshots_per_minute":   lj.SnapshotsPerMinute,
		"llm_monthly_budget_usd": lj.LLMMonthlyBudgetUSD,
	})
}

// auditEntryJSON is one entry of GET /api/v1/tenancy/audit; the budget is
// reported as llm_monthly_budget_usd in dollars, like the limits.
type auditEntryJSON struct {
	TenantID  string    `json:"tenant_id"`
	Field     string    `json:"field"`
	OldValue  any       `json:"old_value"`
	NewValue  any       `json:"new_value"`
	ChangedBy string    `json:"changed_by"`
	ChangedAt time.Time `json:"changed_at"`
	Reason    string    `json:"reason"`
}

func (a *app) auditHandler(w http.ResponseWriter, r *http.Request) {
	bad := func(detail string) {
		hardening.WriteProblem(w, r, hardening.NewProblem(http.StatusBadRequest, "invalid_query", detail))
	}
	v, ok := queryValues(w, r)
	if !ok {
		return
	}
	var q tenancy.AuditQuery
	if s := v.Get("tenant_id"); s != "" {
		id, err := tenancy.ParseID(s)
		if err != nil {
			bad("tenant_id is malformed")
			return
		}
		q.Tenant = id
	}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			bad("since must be an RFC 3339 time, for example 2026-01-02T15:04:05Z")
			return
		}
		q.Since = t
	}
	q.Limit = 50
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			bad("limit must be an integer from 1 to 1000")
			return
		}
		q.Limit = n
	}
	q.Cursor = v.Get("cursor")
	page, err := a.tenancy().quotas.Audit(r.Context(), q)
	if errors.Is(err, tenancy.ErrBadCursor) {
		bad("cursor is not one this endpoint returned")
		return
	}
	if err != nil {
		a.quotaStoreFailed(w, r, err)
		return
	}
	entries := make([]auditEntryJSON, 0, len(page.Entries))
	for _, e := range page.Entries {
		j := auditEntryJSON{TenantID: string(e.Tenant), Field: e.Quota, OldValue: e.OldValue, NewValue: e.NewValue, ChangedBy: e.ChangedBy, ChangedAt: e.ChangedAt.UTC(), Reason: e.Reason}
		switch e.Quota {
		case quotaSnapshots:
			j.Field = "snapshots_per_minute"
		case quotaLLM:
			j.Field = "llm_monthly_budget_usd"
			j.OldValue, j.NewValue = tenancy.Micros(e.OldValue).USD(), tenancy.Micros(e.NewValue).USD()
		}
		entries = append(entries, j)
	}
	var next any
	if page.NextCursor != "" {
		next = page.NextCursor
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries, "next_cursor": next})
}

// quotaStoreFailed answers a failed limits, usage or audit read or write:
// 503, fail closed, without the internal error.
func (a *app) quotaStoreFailed(w http.ResponseWriter, r *http.Request, err error) {
	a.log.ErrorContext(r.Context(), "quota store", "path", r.URL.Path, "err", err)
	p := hardening.NewProblem(http.StatusServiceUnavailable, "quota_store_unavailable", "the quota store is unreachable; try again")
	p.RetryAfter = time.Second
	hardening.WriteProblem(w, r, p)
}
