package idempotency_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/idempotency"
)

// sendAs sends body with Idempotency-Key "shared" as c (nil: no caller).
func sendAs(h http.Handler, c *hardening.Caller, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/things", strings.NewReader(body))
	if c != nil {
		req = req.WithContext(hardening.WithCaller(req.Context(), *c))
	}
	req.Header.Set(idempotency.HeaderName, "shared")
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	return rr
}

// TestDefaultScopeIsTheCaller: without WithScope, records are scoped by the
// hardening.Caller in the context, so another tenant or user with the same
// key runs the handler, and the same caller gets the replay.
func TestDefaultScopeIsTheCaller(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	h := newMW(t).Handler(counting(&runs))
	callers := []hardening.Caller{
		{Tenant: "acme", Subject: "alice"},
		{Tenant: "globex", Subject: "alice"},
		{Tenant: "acme", Subject: "bob"},
		{Tenant: "", Subject: "alice"},
		// The separator cannot be forged: "a/b" + "c" is not "a" + "b/c".
		{Tenant: "a/b", Subject: "c"},
		{Tenant: "a", Subject: "b/c"},
		{Tenant: "1:a", Subject: "b"},
		{Tenant: "1", Subject: "a/b"},
	}
	for i, c := range callers {
		rr := sendAs(h, &c, "same")
		assert.Equal(t, http.StatusCreated, rr.Code, "%+v", c)
		assert.Empty(t, rr.Header().Get(idempotency.DefaultReplayHeader), "%+v sees no other caller's response", c)
		assert.Equal(t, int64(i+1), runs.Load())
	}
	for _, c := range callers {
		rr := sendAs(h, &c, "same")
		assert.Equal(t, "true", rr.Header().Get(idempotency.DefaultReplayHeader), "%+v gets its own replay", c)
	}
	assert.Equal(t, int64(len(callers)), runs.Load())
}

// TestDefaultScopeNeedsACaller: no caller, or one without a subject, is a
// 500 and the handler does not run (never a shared scope).
func TestDefaultScopeNeedsACaller(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	h := newMW(t).Handler(counting(&runs))
	for _, c := range []*hardening.Caller{nil, {Tenant: "acme"}} {
		rr := sendAs(h, c, "b")
		assert.Equal(t, http.StatusInternalServerError, rr.Code)
		assert.Contains(t, rr.Body.String(), `"reason":"idempotency_scope_unavailable"`)
	}
	assert.Zero(t, runs.Load())
	// A request without a key still passes through: no scope is needed.
	assert.Equal(t, http.StatusCreated, do(h, call{anonymous: true}).Code)
}

// TestWithScopeOverridesTheCaller: WithScope decides alone, whatever the
// caller.
func TestWithScopeOverridesTheCaller(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	h := newMW(t, idempotency.WithScope(func(r *http.Request) (string, error) {
		c, _ := hardening.CallerFrom(r.Context())
		return c.Tenant, nil // per tenant only
	})).Handler(counting(&runs))
	sendAs(h, &hardening.Caller{Tenant: "acme", Subject: "alice"}, "b")
	rr := sendAs(h, &hardening.Caller{Tenant: "acme", Subject: "bob"}, "b")
	assert.Equal(t, "true", rr.Header().Get(idempotency.DefaultReplayHeader), "one scope per tenant")
	assert.Equal(t, http.StatusCreated, sendAs(h, nil, "b").Code, "the override needs no caller")
	assert.Equal(t, int64(2), runs.Load())
}

func TestDefaultScopeEncoding(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req = req.WithContext(hardening.WithCaller(req.Context(), hardening.Caller{Tenant: "acme1", Subject: "alice"}))
	s, err := idempotency.DefaultScope(req)
	require.NoError(t, err)
	assert.Equal(t, "5:acme1/alice", s)
	_, err = idempotency.DefaultScope(httptest.NewRequest(http.MethodPost, "/", nil))
	assert.ErrorIs(t, err, idempotency.ErrNoCaller)
}
