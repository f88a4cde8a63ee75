package tenancy_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func problemOf(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	var body map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	return body
}

func write(err error) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	tenancy.WriteError(w, httptest.NewRequest(http.MethodPost, "/x", nil), err)
	return w
}

func TestQuotasPreviews(t *testing.T) {
	clk := &clock{now: time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.WithClock(clk.Now), tenancy.WithRegisterer(reg),
		tenancy.WithDefaults(tenancy.Limits{ActivePreviews: 2, SnapshotsPerMinute: 10, LLMMonthlyBudget: 1_000_000}), tenancy.WithLeaseTTL(time.Minute))
	require.NoError(t, err)
	ctx := tenancy.WithTenant(context.Background(), "acme")

	_, err = q.AcquirePreview(context.Background(), "p1")
	assert.ErrorIs(t, err, tenancy.ErrNoTenant)
	assert.Equal(t, 401, write(err).Code)

	s, err := q.AcquirePreview(ctx, "p1")
	require.NoError(t, err)
	assert.Equal(t, clk.Now().Add(time.Minute).UnixMilli(), s.ExpiresAt.UnixMilli())
	_, err = q.AcquirePreview(ctx, "p2")
	require.NoError(t, err)
	_, err = q.AcquirePreview(ctx, "p3")
	var rej *tenancy.Rejection
	require.ErrorAs(t, err, &rej)
	w := write(err)
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	body := problemOf(t, w)
	assert.Equal(t, "active_previews_limit_exceeded", body["reason"])
	assert.EqualValues(t, 2, body["current"])
	assert.EqualValues(t, 2, body["limit"])

	clk.Add(30 * time.Second)
	r, err := q.RenewPreview(ctx, "p1")
	require.NoError(t, err)
	assert.True(t, r.Held)
	clk.Add(45 * time.Second) // p2's lease ended, p1 was renewed
	_, err = q.AcquirePreview(ctx, "p3")
	require.NoError(t, err)
	ok, err := q.ReleasePreview(ctx, "p1")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = q.ReleasePreview(ctx, "p1")
	require.NoError(t, err)
	assert.False(t, ok)

	assert.Equal(t, 4.0, testutil.ToFloat64(metric(t, reg, "hardening_quota_checks_total", "active_previews")))
	assert.Equal(t, 1.0, testutil.ToFloat64(metric(t, reg, "hardening_quota_rejections_total", "active_previews")))
}

func metric(t *testing.T, reg *prometheus.Registry, name, resource string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "resource" && l.GetValue() == resource {
					return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return m.GetCounter().GetValue() })
				}
			}
		}
	}
	t.Fatalf("no %s{resource=%q}", name, resource)
	return nil
}

func TestQuotasSnapshotHeaders(t *testing.T) {
	clk := &clock{now: time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)}
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.WithClock(clk.Now))
	require.NoError(t, err)
	ctx := tenancy.WithTenant(context.Background(), "acme")
	for i := range 10 {
		res, err := q.AllowSnapshot(ctx)
		require.NoError(t, err, "snapshot %d", i)
		if i == 0 {
			h := http.Header{}
			tenancy.SetRateLimitHeaders(h, res)
			assert.Equal(t, `"snapshots";q=10;w=60`, h.Get("RateLimit-Policy"))
			assert.Equal(t, `"snapshots";r=9;t=6`, h.Get("RateLimit"))
		}
	}
	res, err := q.AllowSnapshot(ctx)
	require.Error(t, err)
	w := httptest.NewRecorder()
	tenancy.SetRateLimitHeaders(w.Header(), res)
	tenancy.WriteError(w, httptest.NewRequest(http.MethodPost, "/x", nil), err)
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "6", w.Header().Get("Retry-After"))
	assert.Equal(t, `"snapshots";q=10;w=60`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"snapshots";r=0;t=60`, w.Header().Get("RateLimit"))
	body := problemOf(t, w)
	assert.Equal(t, "snapshot_rate_exceeded", body["reason"])
	assert.EqualValues(t, 10, body["current"])
	assert.EqualValues(t, 10, body["limit"])
	assert.EqualValues(t, 6, body["retry_after_seconds"])

	clk.Add(2500 * time.Millisecond)
	res, err = q.AllowSnapshot(ctx)
	require.Error(t, err)
	assert.Equal(t, 3500*time.Millisecond, res.RetryAfter)
	assert.Equal(t, "4", write(err).Header().Get("Retry-After"), "delay-seconds round up")
	clk.Add(3500 * time.Millisecond)
	_, err = q.AllowSnapshot(ctx)
	require.NoError(t, err)
}

func TestQuotasBudget(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)}
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.WithClock(clk.Now),
		tenancy.WithDefaults(tenancy.Limits{LLMMonthlyBudget: 50_000}), tenancy.WithReservationTTL(5*time.Minute))
	require.NoError(t, err)
	ctx := tenancy.WithTenant(context.Background(), "acme")

	_, err = q.ReserveLLM(ctx, 0)
	assert.Error(t, err)
	r1, err := q.ReserveLLM(ctx, 20_000)
	require.NoError(t, err)
	assert.Equal(t, tenancy.ID("acme"), r1.Tenant)
	r2, err := q.ReserveLLM(ctx, 20_000)
	require.NoError(t, err)
	_, err = q.ReserveLLM(ctx, 20_000)
	w := write(err)
	assert.Equal(t, http.StatusPaymentRequired, w.Code)
	body := problemOf(t, w)
	assert.Equal(t, "llm_budget_exceeded", body["reason"])
	assert.InDelta(t, 0.05, body["limit"], 1e-9)
	assert.InDelta(t, 0.0, body["spent"], 1e-9)
	assert.InDelta(t, 0.04, body["reserved"], 1e-9)
	assert.InDelta(t, 0.02, body["requested"], 1e-9)
	assert.InDelta(t, 0.04, body["current"], 1e-9)
	assert.Equal(t, "2026-02-01T00:00:00Z", body["resets_at"])

	s, err := q.SettleLLM(ctx, r1, 5_000)
	require.NoError(t, err)
	assert.True(t, s.Found)
	ok, err := q.CancelLLM(ctx, r2)
	require.NoError(t, err)
	assert.True(t, ok)
	u, err := q.Usage(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, tenancy.Usage{LLMSpent: 5_000}, u)
	_, err = q.ReserveLLM(ctx, 45_000)
	require.NoError(t, err, "the unused part of r1 and all of r2 came back")

	clk.Add(time.Hour) // February
	r, err := q.ReserveLLM(ctx, 50_000)
	require.NoError(t, err, "month rollover resets the budget")
	assert.Equal(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), r.Result.ResetsAt)
}

func TestQuotasLimitsAndAudit(t *testing.T) {
	clk := &clock{now: time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)}
	log, buf := newLogger()
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.WithClock(clk.Now), tenancy.WithLogger(log))
	require.NoError(t, err)
	ctx := context.Background()
	neg := int64(-1)
	_, err = q.UpdateLimits(ctx, "acme", tenancy.LimitsPatch{ActivePreviews: &neg}, "admin", "")
	assert.Error(t, err)
	_, err = q.UpdateLimits(ctx, "acme", tenancy.LimitsPatch{}, "admin", "")
	assert.Error(t, err)
	ten := int64(10)
	_, err = q.UpdateLimits(ctx, "acme", tenancy.LimitsPatch{ActivePreviews: &ten}, "", "")
	assert.Error(t, err, "changedBy is required")
	_, err = q.UpdateLimits(ctx, "a b", tenancy.LimitsPatch{ActivePreviews: &ten}, "admin", "")
	assert.ErrorIs(t, err, tenancy.ErrInvalidID)

	l, err := q.UpdateLimits(ctx, "acme", tenancy.LimitsPatch{ActivePreviews: &ten}, "admin", "upgrade")
	require.NoError(t, err)
	assert.Equal(t, int64(10), l.ActivePreviews)
	assert.Contains(t, buf.String(), "quota changed")
	got, err := q.Limits(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, l, got)
	page, err := q.Audit(ctx, tenancy.AuditQuery{Tenant: "acme"})
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	assert.Equal(t, "upgrade", page.Entries[0].Reason)
	_, err = q.Audit(ctx, tenancy.AuditQuery{Tenant: "a b"})
	assert.ErrorIs(t, err, tenancy.ErrInvalidID)
}

// brokenStore fails every call, like an unreachable backend.
type brokenStore struct{ tenancy.Store }

var errDown = errors.New("connection refused")

func (brokenStore) AcquireSlot(context.Context, tenancy.SlotRequest) (tenancy.SlotResult, error) {
	return tenancy.SlotResult{}, errDown
}
func (brokenStore) TakeRate(context.Context, tenancy.RateRequest) (tenancy.RateResult, error) {
	return tenancy.RateResult{}, errDown
}
func (brokenStore) Reserve(context.Context, tenancy.ReserveRequest) (tenancy.BudgetResult, error) {
	return tenancy.BudgetResult{}, errDown
}

func TestQuotasFailClosedAndOpen(t *testing.T) {
	ctx := tenancy.WithTenant(context.Background(), "acme")
	q, err := tenancy.NewQuotas(brokenStore{})
	require.NoError(t, err)
	_, err = q.AcquirePreview(ctx, "p")
	var un *tenancy.UnavailableError
	require.ErrorAs(t, err, &un)
	assert.ErrorIs(t, err, errDown)
	w := write(err)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	body := problemOf(t, w)
	assert.Equal(t, "quota_store_unavailable", body["reason"])
	assert.NotContains(t, w.Body.String(), "connection refused", "internal errors are not sent")
	_, err = q.AllowSnapshot(ctx)
	assert.ErrorAs(t, err, &un)
	_, err = q.ReserveLLM(ctx, 1)
	assert.ErrorAs(t, err, &un)

	log, buf := newLogger()
	q, err = tenancy.NewQuotas(brokenStore{}, tenancy.WithFailOpen(tenancy.ResourceSnapshots), tenancy.WithLogger(log))
	require.NoError(t, err)
	res, err := q.AllowSnapshot(ctx)
	require.NoError(t, err, "snapshots fail open")
	assert.True(t, res.Allowed)
	assert.Contains(t, buf.String(), "fail-open")
	_, err = q.AcquirePreview(ctx, "p")
	assert.ErrorAs(t, err, &un, "previews still fail closed")

	assert.Equal(t, 500, write(errors.New("boom")).Code)
	assert.False(t, strings.Contains(write(errors.New("boom")).Body.String(), "boom"))
}

func TestUsageGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.WithRegisterer(reg), tenancy.WithUsageGauges("acme"))
	require.NoError(t, err)
	_, err = q.AcquirePreview(tenancy.WithTenant(context.Background(), "acme"), "p1")
	require.NoError(t, err)
	_, err = q.AcquirePreview(tenancy.WithTenant(context.Background(), "other"), "p1")
	require.NoError(t, err)
	n, err := testutil.GatherAndCount(reg, "hardening_quota_usage")
	require.NoError(t, err)
	assert.Equal(t, 3, n, "three resources of the one listed tenant")
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hardening_quota_usage Current quota usage of the tenants the service listed (WithUsageGauges), by resource; the budget in USD.
# TYPE hardening_quota_usage gauge
hardening_quota_usage{resource="active_previews",tenant="acme"} 1
hardening_quota_usage{resource="llm_budget",tenant="acme"} 0
hardening_quota_usage{resource="snapshots",tenant="acme"} 0
`), "hardening_quota_usage"))

	// A second Quotas on the same registry shares the counters.
	_, err = tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.WithRegisterer(reg))
	require.NoError(t, err)
}
