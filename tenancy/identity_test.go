package tenancy_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/tenancy"
)

// The tenant middleware needs no identity function: it reads the Caller
// that hardening.RequireCaller put in the context.
func TestMiddlewareReadsRequireCaller(t *testing.T) {
	auth := hardening.AuthenticatorFunc(func(r *http.Request) (hardening.Caller, error) {
		if r.Header.Get("Authorization") == "" {
			return hardening.Caller{}, errors.New("no token")
		}
		return hardening.Caller{Subject: "alice", Tenant: r.Header.Get("X-Test-Org")}, nil
	})
	m, err := tenancy.New()
	require.NoError(t, err)
	h := hardening.RequireCaller(auth, nil)(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := tenancy.FromContext(r.Context())
		_, _ = w.Write([]byte(id))
	})))
	for _, tc := range []struct {
		org    string
		status int
		body   string
	}{{"acme", 200, "acme"}, {"", 401, ""}, {"ac me", 403, ""}} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "Bearer x")
		r.Header.Set("X-Test-Org", tc.org)
		r.Header.Set(tenancy.HeaderTenantID, "evil") // never trusted by default
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		assert.Equal(t, tc.status, w.Code, "org %q", tc.org)
		if tc.status == 200 {
			assert.Equal(t, tc.body, w.Body.String())
		}
	}

	// Without RequireCaller (no Caller at all) the middleware fails closed.
	w := httptest.NewRecorder()
	m.Handler(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Contains(t, w.Body.String(), `"reason":"tenant_required"`)
}

// A custom error handler receives the typed *TenantError, with the cause
// reachable by errors.Is, and the default bytes stay those of
// hardening.WriteError.
func TestMiddlewareErrorHandler(t *testing.T) {
	var got error
	m, err := tenancy.New(tenancy.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		w.WriteHeader(http.StatusTeapot)
	}))
	require.NoError(t, err)
	for _, tc := range []struct {
		tenant string
		reason string
		status int
		cause  error
	}{{"", tenancy.ReasonTenantRequired, 401, tenancy.ErrNoTenant}, {"a b", tenancy.ReasonTenantInvalid, 403, tenancy.ErrInvalidID}} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r = r.WithContext(hardening.WithCaller(r.Context(), hardening.Caller{Tenant: tc.tenant}))
		w := httptest.NewRecorder()
		m.Handler(http.NotFoundHandler()).ServeHTTP(w, r)
		assert.Equal(t, http.StatusTeapot, w.Code)
		var te *tenancy.TenantError
		require.ErrorAs(t, got, &te)
		assert.Equal(t, tc.reason, te.Reason)
		assert.ErrorIs(t, got, tc.cause)
		var he hardening.Error
		require.ErrorAs(t, got, &he)
		assert.Equal(t, tc.status, he.Problem().Status)
		assert.Equal(t, tc.reason, he.Problem().Reason)
	}
}

// FromContext falls back to the Caller's tenant, so quotas and DB work
// behind hardening.RequireCaller alone; a WithTenant value always wins.
func TestFromContextFallsBackToCaller(t *testing.T) {
	ctx := hardening.WithCaller(context.Background(), hardening.Caller{Subject: "alice", Tenant: "acme"})
	id, ok := tenancy.FromContext(ctx)
	assert.True(t, ok)
	assert.Equal(t, tenancy.ID("acme"), id)

	id, ok = tenancy.FromContext(tenancy.WithTenant(ctx, "other"))
	assert.True(t, ok, "WithTenant wins over the Caller")
	assert.Equal(t, tenancy.ID("other"), id)

	_, ok = tenancy.FromContext(tenancy.WithTenant(ctx, "not valid"))
	assert.False(t, ok, "an invalid WithTenant hides the Caller's tenant: fail closed")

	for _, bad := range []string{"", "a{b}"} {
		_, ok = tenancy.FromContext(hardening.WithCaller(context.Background(), hardening.Caller{Subject: "alice", Tenant: bad}))
		assert.False(t, ok, "caller tenant %q", bad)
	}
}

// Quotas work behind hardening.RequireCaller without the tenant
// middleware: the rate is counted per the Caller's tenant.
func TestQuotasBehindRequireCaller(t *testing.T) {
	q, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Rate("orders", 1, 60_000_000_000))
	require.NoError(t, err)
	auth := hardening.AuthenticatorFunc(func(r *http.Request) (hardening.Caller, error) {
		return hardening.Caller{Subject: "u", Tenant: r.Header.Get("X-Test-Org")}, nil
	})
	h := hardening.RequireCaller(auth, nil)(q.RateLimit("orders")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})))
	codes := map[string][]int{}
	for _, org := range []string{"acme", "acme", "globex", ""} {
		r := httptest.NewRequest(http.MethodPost, "/orders", nil)
		r.Header.Set("X-Test-Org", org)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		codes[org] = append(codes[org], w.Code)
	}
	assert.Equal(t, []int{201, 429}, codes["acme"])
	assert.Equal(t, []int{201}, codes["globex"])
	assert.Equal(t, []int{401}, codes[""], "a caller without a tenant is refused")
}

// The quota middlewares pass typed errors to a custom handler: a
// *Rejection (with the RateLimit fields already set) and, on a store
// failure, an *UnavailableError whose Problem is the default 503.
func TestQuotaMiddlewareErrorHandlerTypes(t *testing.T) {
	var got []error
	onError := func(w http.ResponseWriter, r *http.Request, err error) {
		got = append(got, err)
		assert.NotEmpty(t, w.Header().Get("RateLimit-Policy"), "headers are set before the handler runs")
		w.WriteHeader(http.StatusTeapot)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	ctx := tenancy.WithTenant(context.Background(), "acme")
	for _, store := range []tenancy.Store{tenancy.NewMemoryStore(), brokenStore{}} {
		q, err := tenancy.NewQuotas(store, tenancy.Rate("orders", 1, time.Minute), tenancy.WithErrorHandler(onError))
		require.NoError(t, err)
		for range 2 {
			w := httptest.NewRecorder()
			q.RateLimit("orders")(ok).ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", nil).WithContext(ctx))
		}
	}
	require.Len(t, got, 3) // one refusal, two store failures
	var rej *tenancy.Rejection
	require.ErrorAs(t, got[0], &rej)
	assert.Equal(t, 429, rej.Problem().Status)
	var un *tenancy.UnavailableError
	require.ErrorAs(t, got[1], &un)
	p := un.Problem()
	assert.Equal(t, 503, p.Status)
	assert.Equal(t, "quota_store_unavailable", p.Reason)
	assert.Equal(t, time.Second, p.RetryAfter)
}
