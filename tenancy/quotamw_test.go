package tenancy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy"
)

// brokenStore fails every decision, like an unreachable backend.
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
	decls := func(orders ...tenancy.RateOption) []tenancy.QuotasOption {
		return []tenancy.QuotasOption{tenancy.Rate("orders", 5, time.Minute, orders...),
			tenancy.Concurrency("exports", 5, time.Minute), tenancy.Budget("credits", 5, tenancy.Monthly)}
	}
	q, err := tenancy.NewQuotas(brokenStore{}, decls()...)
	require.NoError(t, err)
	_, err = q.Acquire(acme, "exports", "e")
	var un *tenancy.UnavailableError
	require.ErrorAs(t, err, &un)
	assert.ErrorIs(t, err, errDown)
	w := write(err)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	body := problemOf(t, w)
	assert.Equal(t, "quota_store_unavailable", body["reason"])
	assert.Equal(t, "exports", body["resource"])
	assert.NotContains(t, w.Body.String(), "connection refused", "internal errors are not sent")
	_, err = q.Allow(acme, "orders")
	assert.ErrorAs(t, err, &un)
	_, err = q.Reserve(acme, "credits", 1)
	assert.ErrorAs(t, err, &un)

	log, buf := newLogger()
	q, err = tenancy.NewQuotas(brokenStore{}, append(decls(tenancy.WithFailOpen()), tenancy.WithLogger(log))...)
	require.NoError(t, err)
	res, err := q.Allow(acme, "orders")
	require.NoError(t, err, "orders fail open")
	assert.True(t, res.Allowed)
	assert.Contains(t, buf.String(), "fail-open")
	_, err = q.Acquire(acme, "exports", "e")
	assert.ErrorAs(t, err, &un, "exports still fail closed")

	assert.Equal(t, 500, write(errors.New("boom")).Code)
	assert.NotContains(t, write(errors.New("boom")).Body.String(), "boom")
}

func TestUsageGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Concurrency("exports", 5, time.Minute),
		tenancy.Rate("orders", 5, time.Minute), tenancy.Budget("llm", 100, tenancy.Monthly, tenancy.WithCurrency("USD", 100)),
		tenancy.WithRegisterer(reg), tenancy.WithUsageGauges("acme"))
	require.NoError(t, err)
	_, err = q.Acquire(acme, "exports", "e1")
	require.NoError(t, err)
	_, err = q.Acquire(tenancy.WithTenant(context.Background(), "other"), "exports", "e1")
	require.NoError(t, err)
	_, err = q.Reserve(acme, "llm", 25)
	require.NoError(t, err)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hardening_quota_usage Current quota usage of the tenants the service listed (WithUsageGauges), by quota: units of a rate's burst in use, slots held, or a budget's spent + reserved (in its currency with WithCurrency).
# TYPE hardening_quota_usage gauge
hardening_quota_usage{quota="exports",tenant="acme"} 1
hardening_quota_usage{quota="llm",tenant="acme"} 0.25
hardening_quota_usage{quota="orders",tenant="acme"} 0
`), "hardening_quota_usage"), "only the listed tenant, one series per declared quota")

	// A second Quotas on the same registry shares the counters.
	_, err = tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Rate("orders", 5, time.Minute), tenancy.WithRegisterer(reg))
	require.NoError(t, err)
}

func TestRateLimitMiddleware(t *testing.T) {
	var failures []error
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Rate("orders", 2, time.Minute),
		tenancy.WithClock(newClock().Now), tenancy.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			failures = append(failures, err)
			tenancy.WriteError(w, r, err)
		}))
	require.NoError(t, err)
	calls := 0
	h := q.RateLimit("orders")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls++ }))
	serve := func(ctx context.Context) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/orders", nil).WithContext(ctx))
		return w
	}
	assert.Equal(t, 200, serve(acme).Code)
	w := serve(acme)
	assert.Equal(t, `"orders";r=0;t=60`, w.Header().Get("RateLimit"))
	w = serve(acme)
	assert.Equal(t, 429, w.Code)
	assert.Equal(t, "30", w.Header().Get("Retry-After"))
	assert.Equal(t, `"orders";q=2;w=60`, w.Header().Get("RateLimit-Policy"))
	assert.Equal(t, "orders_rate_exceeded", problemOf(t, w)["reason"])
	assert.Equal(t, 401, serve(context.Background()).Code, "no tenant in the context")
	assert.Equal(t, 2, calls, "refused requests never reach the handler")
	assert.Len(t, failures, 2, "the error handler answered the refusals")
}

func TestConcurrencyLimitMiddleware(t *testing.T) {
	const lease = 300 * time.Millisecond // generous: renewals every 100 ms survive a loaded machine
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Concurrency("exports", 1, lease))
	require.NoError(t, err)
	inside, release := make(chan struct{}), make(chan struct{})
	h := q.ConcurrencyLimit("exports")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inside)
		<-release
		w.WriteHeader(http.StatusAccepted)
	}))
	first := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/exports", nil).WithContext(acme))
		first <- w.Code
	}()
	<-inside
	time.Sleep(4 * lease) // the slot outlives its first leases: the middleware renews it
	u, err := q.Usage(acme, "acme")
	require.NoError(t, err)
	assert.Equal(t, int64(1), u["exports"].Used, "the slot is held while the request runs")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/exports", nil).WithContext(acme))
	assert.Equal(t, 429, w.Code, "a second export waits for the slot")
	assert.Equal(t, "exports_limit_exceeded", problemOf(t, w)["reason"])

	close(release)
	assert.Equal(t, http.StatusAccepted, <-first)
	u, err = q.Usage(acme, "acme")
	require.NoError(t, err)
	assert.Equal(t, int64(0), u["exports"].Used, "the slot is released when the request ends")
}
