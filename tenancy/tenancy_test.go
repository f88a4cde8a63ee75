package tenancy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/tenancy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"acme", true}, {"Acme-01_eu.west", true}, {"a", true}, {strings.Repeat("x", 64), true},
		{"", false}, {strings.Repeat("x", 65), false}, {"-acme", false}, {".acme", false},
		{"ac me", false}, {"a{b}", false}, {"a:b", false}, {"é", false}, {"a/b", false}, {"a\x00", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			id, err := tenancy.ParseID(tc.in)
			if tc.ok {
				require.NoError(t, err)
				assert.Equal(t, tenancy.ID(tc.in), id)
				assert.True(t, id.Valid())
			} else {
				assert.ErrorIs(t, err, tenancy.ErrInvalidID)
				assert.False(t, tenancy.ID(tc.in).Valid())
			}
		})
	}
}

func TestContext(t *testing.T) {
	_, ok := tenancy.FromContext(context.Background())
	assert.False(t, ok)
	//lint:ignore SA1012 a nil context must not panic
	_, ok = tenancy.FromContext(nil)
	assert.False(t, ok)
	id, ok := tenancy.FromContext(tenancy.WithTenant(context.Background(), "acme"))
	assert.True(t, ok)
	assert.Equal(t, tenancy.ID("acme"), id)
	_, ok = tenancy.FromContext(tenancy.WithTenant(context.Background(), "not valid"))
	assert.False(t, ok, "an invalid id reads as no tenant")
}

// claimIdentity stands for a verified token: the test puts the "tid" claim
// in a request header that only the test controls.
func claimIdentity(r *http.Request) (string, error) {
	if r.Header.Get("X-Test-Bad-Token") != "" {
		return "", errors.New("bad token")
	}
	return r.Header.Get("X-Test-Tid"), nil
}

func fromGateway(r *http.Request) bool { return r.RemoteAddr == "10.0.0.1:1234" }

func TestMiddleware(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []tenancy.MiddlewareOption
		tid     string
		header  string
		gateway bool
		badTok  bool
		status  int
		reason  string
		tenant  tenancy.ID
	}{
		{name: "identity", tid: "acme", status: 200, tenant: "acme"},
		{name: "no tenant", status: 401, reason: "tenant_required"},
		{name: "identity error", tid: "acme", badTok: true, status: 401, reason: "tenant_required"},
		{name: "malformed", tid: "ac me", status: 403, reason: "tenant_invalid"},
		{name: "header never trusted by default", header: "acme", gateway: true, status: 401, reason: "tenant_required"},
		{name: "untrusted header ignored beside identity", tid: "acme", header: "other", gateway: true, status: 200, tenant: "acme"},
		{name: "trusted hop header", opts: []tenancy.MiddlewareOption{tenancy.WithTrustedHeader(tenancy.HeaderTenantID, fromGateway)}, header: "acme", gateway: true, status: 200, tenant: "acme"},
		{name: "header from untrusted hop", opts: []tenancy.MiddlewareOption{tenancy.WithTrustedHeader(tenancy.HeaderTenantID, fromGateway)}, header: "acme", status: 401, reason: "tenant_required"},
		{name: "trusted header contradicts identity", opts: []tenancy.MiddlewareOption{tenancy.WithTrustedHeader(tenancy.HeaderTenantID, fromGateway)}, tid: "acme", header: "other", gateway: true, status: 403, reason: "tenant_mismatch"},
		{name: "trusted header agrees", opts: []tenancy.MiddlewareOption{tenancy.WithTrustedHeader(tenancy.HeaderTenantID, fromGateway)}, tid: "acme", header: "acme", gateway: true, status: 200, tenant: "acme"},
		{name: "trusted header malformed", opts: []tenancy.MiddlewareOption{tenancy.WithTrustedHeader(tenancy.HeaderTenantID, fromGateway)}, header: "a{b}", gateway: true, status: 403, reason: "tenant_invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The default identity is the Caller's tenant; the bad-token
			// case needs an identity function that fails (WithIdentity).
			opts := tc.opts
			if tc.badTok {
				opts = append([]tenancy.MiddlewareOption{tenancy.WithIdentity(claimIdentity)}, opts...)
			}
			m, err := tenancy.New(opts...)
			require.NoError(t, err)
			var seen tenancy.ID
			ran := false
			h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ran = true
				seen, _ = tenancy.FromContext(r.Context())
			}))
			r := httptest.NewRequest(http.MethodGet, "/x", nil)
			if tc.tid != "" {
				r.Header.Set("X-Test-Tid", tc.tid)
				r = r.WithContext(hardening.WithCaller(r.Context(), hardening.Caller{Subject: "u1", Tenant: tc.tid}))
			}
			if tc.header != "" {
				r.Header.Set(tenancy.HeaderTenantID, tc.header)
			}
			if tc.gateway {
				r.RemoteAddr = "10.0.0.1:1234"
			}
			if tc.badTok {
				r.Header.Set("X-Test-Bad-Token", "1")
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			assert.Equal(t, tc.status, w.Code)
			if tc.status == 200 {
				assert.True(t, ran)
				assert.Equal(t, tc.tenant, seen)
				return
			}
			assert.False(t, ran, "the handler must not run")
			assert.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
			var body map[string]any
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
			assert.Equal(t, tc.reason, body["reason"])
		})
	}
}

func TestNewValidates(t *testing.T) {
	_, err := tenancy.New(tenancy.WithIdentity(nil))
	assert.ErrorContains(t, err, "WithIdentity")
	_, err = tenancy.New(tenancy.WithTrustedHeader(tenancy.HeaderTenantID, nil))
	assert.Error(t, err)
	_, err = tenancy.New(tenancy.WithTrustedHeader("", fromGateway))
	assert.Error(t, err)
	_, err = tenancy.NewDB(nil)
	assert.Error(t, err)
	_, err = tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Rate("orders", 1, time.Minute), tenancy.WithClock(nil))
	assert.ErrorContains(t, err, "WithClock", "a nil clock is reported, not replaced silently")
}

func TestMicros(t *testing.T) {
	m, err := tenancy.MicrosFromUSD(0.02)
	require.NoError(t, err)
	assert.Equal(t, tenancy.Micros(20_000), m)
	m, err = tenancy.MicrosFromUSD(100.0)
	require.NoError(t, err)
	assert.Equal(t, tenancy.Micros(100_000_000), m)
	assert.InDelta(t, 100.0, m.USD(), 1e-9)
	for _, bad := range []float64{-0.01, 1e300, 9007199254.741} {
		_, err := tenancy.MicrosFromUSD(bad)
		assert.Error(t, err, bad)
	}
	m, err = tenancy.MicrosFromUSD(9007199254.74)
	require.NoError(t, err)
	assert.Equal(t, tenancy.Micros(9007199254740000), m, "the largest USD amount to the cent")
}

func TestPeriod(t *testing.T) {
	at := time.Date(2026, 12, 31, 23, 59, 59, 0, time.FixedZone("X", -3600))
	assert.Equal(t, "2027-01", tenancy.Monthly.Key(at), "months are UTC")
	assert.Equal(t, time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC), tenancy.Monthly.End(at))
	assert.Equal(t, "2027-01-01", tenancy.Daily.Key(at), "days are UTC")
	assert.Equal(t, time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC), tenancy.Daily.End(at))
	assert.Equal(t, "monthly", tenancy.Monthly.String())
	assert.Equal(t, "daily", tenancy.Daily.String())
}

func newLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, nil)), &buf
}
