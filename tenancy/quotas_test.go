package tenancy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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

func newClock() *clock { return &clock{now: time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)} }

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

var acme = tenancy.WithTenant(context.Background(), "acme")

func TestQuotasConcurrency(t *testing.T) {
	clk := newClock()
	reg := prometheus.NewRegistry()
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Concurrency("exports", 2, time.Minute),
		tenancy.WithClock(clk.Now), tenancy.WithRegisterer(reg))
	require.NoError(t, err)

	_, err = q.Acquire(context.Background(), "exports", "e1")
	assert.ErrorIs(t, err, tenancy.ErrNoTenant)
	assert.Equal(t, 401, write(err).Code)
	_, err = q.Acquire(acme, "exports", "")
	assert.Error(t, err, "a holder id is required")

	s, err := q.Acquire(acme, "exports", "e1")
	require.NoError(t, err)
	assert.Equal(t, clk.Now().Add(time.Minute).UnixMilli(), s.ExpiresAt.UnixMilli())
	_, err = q.Acquire(acme, "exports", "e2")
	require.NoError(t, err)
	_, err = q.Acquire(acme, "exports", "e3")
	var rej *tenancy.Rejection
	require.ErrorAs(t, err, &rej)
	assert.Equal(t, "exports", rej.Quota)
	w := write(err)
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	body := problemOf(t, w)
	assert.Equal(t, "exports_limit_exceeded", body["reason"])
	assert.Equal(t, "exports", body["resource"])
	assert.EqualValues(t, 2, body["current"])
	assert.EqualValues(t, 2, body["limit"])
	assert.Contains(t, body["detail"], `"exports"`, "the text names the quota")

	clk.Add(30 * time.Second)
	r, err := q.Renew(acme, "exports", "e1")
	require.NoError(t, err)
	assert.True(t, r.Held)
	clk.Add(45 * time.Second) // e2's lease ended, e1 was renewed
	_, err = q.Acquire(acme, "exports", "e3")
	require.NoError(t, err)
	ok, err := q.Release(acme, "exports", "e1")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = q.Release(acme, "exports", "e1")
	require.NoError(t, err)
	assert.False(t, ok)

	assert.Equal(t, 4.0, testutil.ToFloat64(counter(t, reg, "hardening_quota_checks_total", "exports")))
	assert.Equal(t, 1.0, testutil.ToFloat64(counter(t, reg, "hardening_quota_rejections_total", "exports")))
}

// counter finds name{quota=quota} on reg.
func counter(t *testing.T, reg *prometheus.Registry, name, quota string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "quota" && l.GetValue() == quota {
					return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return m.GetCounter().GetValue() })
				}
			}
		}
	}
	t.Fatalf("no %s{quota=%q}", name, quota)
	return nil
}

func TestQuotasRateHeaders(t *testing.T) {
	clk := newClock()
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Rate("orders", 10, time.Minute), tenancy.WithClock(clk.Now))
	require.NoError(t, err)
	for i := range 10 {
		res, err := q.Allow(acme, "orders")
		require.NoError(t, err, "order %d", i)
		if i == 0 {
			h := http.Header{}
			tenancy.SetRateLimitHeaders(h, res)
			assert.Equal(t, `"orders";q=10;w=60`, h.Get("RateLimit-Policy"), "the policy is named by the quota")
			assert.Equal(t, `"orders";r=9;t=6`, h.Get("RateLimit"))
		}
	}
	res, err := q.Allow(acme, "orders")
	require.Error(t, err)
	w := httptest.NewRecorder()
	tenancy.SetRateLimitHeaders(w.Header(), res)
	tenancy.WriteError(w, httptest.NewRequest(http.MethodPost, "/x", nil), err)
	assert.Equal(t, http.StatusTooManyRequests, w.Code)
	assert.Equal(t, "6", w.Header().Get("Retry-After"))
	assert.Equal(t, `"orders";q=10;w=60`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, `"orders";r=0;t=60`, w.Header().Get("RateLimit"))
	body := problemOf(t, w)
	assert.Equal(t, "orders_rate_exceeded", body["reason"])
	assert.Equal(t, "orders", body["resource"])
	assert.EqualValues(t, 10, body["current"])
	assert.EqualValues(t, 10, body["limit"])
	assert.EqualValues(t, 6, body["retry_after_seconds"])
	assert.Equal(t, `the "orders" rate limit is exhausted`, body["detail"])

	clk.Add(2500 * time.Millisecond)
	res, err = q.Allow(acme, "orders")
	require.Error(t, err)
	assert.Equal(t, 3500*time.Millisecond, res.RetryAfter)
	assert.Equal(t, "4", write(err).Header().Get("Retry-After"), "delay-seconds round up")
	clk.Add(3500 * time.Millisecond)
	_, err = q.Allow(acme, "orders")
	require.NoError(t, err)
}

func TestQuotasBudget(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)}
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.WithClock(clk.Now),
		tenancy.Budget("llm", 50_000, tenancy.Monthly, tenancy.WithReservationTTL(5*time.Minute), tenancy.WithCurrency("USD", tenancy.MicrosPerUSD)),
		tenancy.Budget("credits", 10, tenancy.Daily))
	require.NoError(t, err)

	for _, bad := range []int64{0, -1, tenancy.MaxLimit + 1} {
		_, err = q.Reserve(acme, "llm", bad)
		assert.Error(t, err, bad)
	}
	r1, err := q.Reserve(acme, "llm", 20_000)
	require.NoError(t, err)
	assert.Equal(t, tenancy.ID("acme"), r1.Tenant)
	assert.Equal(t, "llm", r1.Quota)
	assert.Equal(t, clk.Now().Add(5*time.Minute).UnixMilli(), r1.ExpiresAt.UnixMilli())
	r2, err := q.Reserve(acme, "llm", 20_000)
	require.NoError(t, err)
	_, err = q.Reserve(acme, "llm", 20_000)
	w := write(err)
	assert.Equal(t, http.StatusPaymentRequired, w.Code)
	body := problemOf(t, w)
	assert.Equal(t, "llm_budget_exceeded", body["reason"])
	assert.Equal(t, "USD", body["currency"])
	assert.InDelta(t, 0.05, body["limit"], 1e-9)
	assert.InDelta(t, 0.0, body["spent"], 1e-9)
	assert.InDelta(t, 0.04, body["reserved"], 1e-9)
	assert.InDelta(t, 0.02, body["requested"], 1e-9)
	assert.InDelta(t, 0.04, body["current"], 1e-9)
	assert.Equal(t, "2026-02-01T00:00:00Z", body["resets_at"])

	_, err = q.Settle(acme, r1, -1)
	assert.Error(t, err)
	s, err := q.Settle(acme, r1, 5_000)
	require.NoError(t, err)
	assert.True(t, s.Found)
	ok, err := q.Cancel(acme, r2)
	require.NoError(t, err)
	assert.True(t, ok)
	u, err := q.Usage(acme, "acme")
	require.NoError(t, err)
	assert.Equal(t, tenancy.Usage{"llm": {Used: 5_000}, "credits": {}}, u)
	_, err = q.Reserve(acme, "llm", 45_000)
	require.NoError(t, err, "the unused part of r1 and all of r2 came back")

	// Without WithCurrency the amounts are the integer units.
	_, err = q.Reserve(acme, "credits", 11)
	body = problemOf(t, write(err))
	assert.Equal(t, "credits_budget_exceeded", body["reason"])
	assert.EqualValues(t, 10, body["limit"])
	assert.EqualValues(t, 11, body["requested"])
	assert.NotContains(t, body, "currency")
	assert.Equal(t, "2026-02-01T00:00:00Z", body["resets_at"], "a daily budget resets at midnight UTC")

	clk.Add(time.Hour) // February
	r, err := q.Reserve(acme, "llm", 50_000)
	require.NoError(t, err, "the period's rollover resets the budget")
	assert.Equal(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), r.Result.ResetsAt)
}

func TestQuotasLimitsAndAudit(t *testing.T) {
	log, buf := newLogger()
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Concurrency("exports", 5, time.Minute),
		tenancy.Rate("orders", 10, time.Minute), tenancy.WithClock(newClock().Now), tenancy.WithLogger(log))
	require.NoError(t, err)
	ctx := context.Background()
	for _, tc := range []struct {
		tenant tenancy.ID
		set    tenancy.Limits
		by     string
		want   error
	}{
		{"acme", tenancy.Limits{"exports": -2}, "admin", tenancy.ErrInvalidLimit},
		{"acme", tenancy.Limits{"exports": tenancy.MaxLimit + 1}, "admin", tenancy.ErrInvalidLimit},
		{"acme", tenancy.Limits{"invoices": 1}, "admin", tenancy.ErrUnknownQuota},
		{"acme", tenancy.Limits{}, "admin", nil},
		{"acme", tenancy.Limits{"exports": 1}, "", nil},
		{"a b", tenancy.Limits{"exports": 1}, "admin", tenancy.ErrInvalidID},
	} {
		_, err := q.SetLimits(ctx, tc.tenant, tc.set, tc.by, "")
		require.Error(t, err, "%v %v %q", tc.tenant, tc.set, tc.by)
		if tc.want != nil {
			assert.ErrorIs(t, err, tc.want)
		}
	}

	l, err := q.SetLimits(ctx, "acme", tenancy.Limits{"exports": 10, "orders": tenancy.Unlimited}, "admin", "upgrade")
	require.NoError(t, err)
	assert.Equal(t, tenancy.Limits{"exports": 10, "orders": tenancy.Unlimited}, l)
	assert.Contains(t, buf.String(), "quota changed")
	got, err := q.Limits(ctx, "acme")
	require.NoError(t, err)
	assert.Equal(t, l, got)
	res, err := q.Allow(acme, "orders")
	require.NoError(t, err)
	assert.Equal(t, tenancy.Unlimited, res.Limit)
	h := http.Header{}
	tenancy.SetRateLimitHeaders(h, res)
	assert.Empty(t, h, "an Unlimited rate has no RateLimit fields")

	page, err := q.Audit(ctx, tenancy.AuditQuery{Tenant: "acme"})
	require.NoError(t, err)
	require.Len(t, page.Entries, 2)
	assert.Equal(t, "exports", page.Entries[0].Quota, "the audit records the quota name")
	assert.Equal(t, "upgrade", page.Entries[0].Reason)
	_, err = q.Audit(ctx, tenancy.AuditQuery{Tenant: "a b"})
	assert.ErrorIs(t, err, tenancy.ErrInvalidID)
	_, err = q.Limits(ctx, "a b")
	assert.ErrorIs(t, err, tenancy.ErrInvalidID)
	_, err = q.Usage(ctx, "a b")
	assert.ErrorIs(t, err, tenancy.ErrInvalidID)
}

func TestQuotasUnknownName(t *testing.T) {
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Rate("orders", 1, time.Minute),
		tenancy.Concurrency("exports", 1, time.Minute), tenancy.Budget("credits", 1, tenancy.Monthly))
	require.NoError(t, err)
	_, err = q.Allow(acme, "snapshots")
	assert.ErrorIs(t, err, tenancy.ErrUnknownQuota, "an undeclared name is an error, not an allow")
	_, err = q.Allow(acme, "exports")
	assert.ErrorIs(t, err, tenancy.ErrUnknownQuota, "a concurrency quota is not a rate")
	_, err = q.Acquire(acme, "orders", "h")
	assert.ErrorIs(t, err, tenancy.ErrUnknownQuota)
	_, err = q.Renew(acme, "credits", "h")
	assert.ErrorIs(t, err, tenancy.ErrUnknownQuota)
	_, err = q.Release(acme, "nope", "h")
	assert.ErrorIs(t, err, tenancy.ErrUnknownQuota)
	_, err = q.Reserve(acme, "orders", 1)
	assert.ErrorIs(t, err, tenancy.ErrUnknownQuota)
	_, err = q.Settle(acme, tenancy.Reservation{Quota: "exports"}, 1)
	assert.ErrorIs(t, err, tenancy.ErrUnknownQuota)
	_, err = q.Cancel(acme, tenancy.Reservation{Quota: "nope"})
	assert.ErrorIs(t, err, tenancy.ErrUnknownQuota)
	assert.Equal(t, 500, write(err).Code)
	assert.Panics(t, func() { q.RateLimit("exports") })
	assert.Panics(t, func() { q.ConcurrencyLimit("orders") })
	_, ok := q.Quota("credits")
	assert.True(t, ok)
	_, ok = q.Quota("nope")
	assert.False(t, ok)
}

func TestNewQuotasValidates(t *testing.T) {
	mem := tenancy.NewMemoryStore()
	_, err := tenancy.NewQuotas(nil, tenancy.Rate("orders", 1, time.Minute))
	assert.Error(t, err)
	for name, opts := range map[string][]tenancy.QuotasOption{
		"no quota":          {tenancy.WithClock(time.Now)},
		"empty name":        {tenancy.Rate("", 1, time.Minute)},
		"upper-case name":   {tenancy.Rate("Orders", 1, time.Minute)},
		"name with a dash":  {tenancy.Rate("my-orders", 1, time.Minute)},
		"digit first":       {tenancy.Rate("1orders", 1, time.Minute)},
		"duplicate":         {tenancy.Rate("orders", 1, time.Minute), tenancy.Budget("orders", 1, tenancy.Monthly)},
		"negative":          {tenancy.Rate("orders", -5, time.Minute)},
		"above MaxLimit":    {tenancy.Concurrency("exports", tenancy.MaxLimit+1, time.Minute)},
		"zero period":       {tenancy.Rate("orders", 1, 0)},
		"period too long":   {tenancy.Rate("orders", 1, 400*24*time.Hour)},
		"zero burst":        {tenancy.Rate("orders", 1, time.Minute, tenancy.WithBurst(0))},
		"zero lease":        {tenancy.Concurrency("exports", 1, 0)},
		"no period":         {tenancy.Budget("credits", 1, 0)},
		"zero TTL":          {tenancy.Budget("credits", 1, tenancy.Monthly, tenancy.WithReservationTTL(0))},
		"currency no units": {tenancy.Budget("credits", 1, tenancy.Monthly, tenancy.WithCurrency("EUR", 0))},
		"bad reason":        {tenancy.Rate("orders", 1, time.Minute, tenancy.WithReason("Too Many!"))},
		"zero quota":        {tenancy.Quota{}},
		"bad gauge tenant":  {tenancy.Rate("orders", 1, time.Minute), tenancy.WithUsageGauges("a b")},
	} {
		_, err := tenancy.NewQuotas(mem, opts...)
		assert.Error(t, err, name)
	}
	q, err := tenancy.NewQuotas(mem, tenancy.Rate("orders", tenancy.Unlimited, time.Minute), tenancy.Concurrency("exports", 0, time.Minute))
	require.NoError(t, err, "Unlimited and 0 are limits")
	assert.Equal(t, tenancy.Limits{"orders": tenancy.Unlimited, "exports": 0}, q.Defaults())
	_, err = q.Acquire(acme, "exports", "e")
	assert.Error(t, err, "0 means none allowed")
}

func TestQuotasReasonOverride(t *testing.T) {
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(),
		tenancy.Rate("snapshots", 0, time.Minute, tenancy.WithReason("snapshot_rate_exceeded")),
		tenancy.Concurrency("exports", 0, time.Minute, tenancy.WithReason("too_many_exports")),
		tenancy.Budget("credits", 0, tenancy.Monthly, tenancy.WithReason("out_of_credits")))
	require.NoError(t, err)
	_, err = q.Allow(acme, "snapshots")
	assert.Equal(t, "snapshot_rate_exceeded", problemOf(t, write(err))["reason"])
	_, err = q.Acquire(acme, "exports", "e")
	assert.Equal(t, "too_many_exports", problemOf(t, write(err))["reason"])
	_, err = q.Reserve(acme, "credits", 1)
	assert.Equal(t, "out_of_credits", problemOf(t, write(err))["reason"])
	d, _ := q.Quota("credits")
	assert.Equal(t, "out_of_credits", d.Reason())
	assert.Equal(t, tenancy.KindBudget, d.Kind())
}

// TestQuotasAllowOverrideSameAsGCRA: Allow on a memory store, which takes
// a shortcut with the GCRA parameters of the declared default, decides
// exactly as tenancy.GCRA at the tenant's override, with and without a
// declared burst.
func TestQuotasAllowOverrideSameAsGCRA(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for quota, burst := range map[string]int64{"plain": 0, "bursty": 3} {
		t.Run(quota, func(t *testing.T) {
			now := t0
			q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.WithClock(func() time.Time { return now }),
				tenancy.Rate("bursty", 2, time.Minute, tenancy.WithBurst(3)), tenancy.Rate("plain", 2, time.Minute))
			require.NoError(t, err)
			_, err = q.SetLimits(ctx, "acme", tenancy.Limits{quota: 6}, "admin", "")
			require.NoError(t, err)
			acme := tenancy.WithTenant(ctx, "acme")
			var tat int64
			for i := range 12 {
				now = t0.Add(time.Duration(i) * 3 * time.Second)
				var want tenancy.RateResult
				tat, want = tenancy.GCRA(tat, now.UnixMicro(), 6, burst, time.Minute)
				want.Quota, want.Period = quota, time.Minute
				got, _ := q.Allow(acme, quota)
				require.Equal(t, want, got, "decision %d", i)
			}
		})
	}
}
