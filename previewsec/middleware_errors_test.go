package previewsec_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/previewsec"
)

// TestMiddlewareCustomErrorHandler: every refusal reaches the handler as a
// *previewsec.RejectionError that is a hardening.Error with the default
// answer's status and reason, and the handler writes the response.
func TestMiddlewareCustomErrorHandler(t *testing.T) {
	f := newFixture(t)
	var got error
	srv, _ := newPreviewServer(t, f, previewsec.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		w.WriteHeader(http.StatusTeapot)
	}))
	tokA := f.mint(t, testGrant)
	for _, tc := range []struct {
		name, path, auth string
		status           int
		reason, cause    string
	}{
		{"missing", "/preview/prev-a/", "", 401, previewsec.ProblemTokenRequired, "missing"},
		{"malformed", "/preview/prev-a/", "Bearer nope", 401, previewsec.ProblemTokenRequired, "malformed"},
		{"other preview", "/preview/prev-b/", "Bearer " + tokA, 403, previewsec.ProblemForbidden, "wrong_preview"},
		{"owner lookup down", "/preview/broken/", "Bearer " + f.mint(t, previewsec.Grant{TenantID: "tenant-a", PreviewID: "broken"}), 503, previewsec.ProblemUnavailable, "unavailable"},
		{"unknown preview", "/preview/nope/", "Bearer " + f.mint(t, previewsec.Grant{TenantID: "tenant-a", PreviewID: "nope"}), 404, previewsec.ProblemNotFound, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			hdr := []string{}
			if tc.auth != "" {
				hdr = []string{"Authorization", tc.auth}
			}
			resp, _ := get(t, srv.URL+tc.path, hdr...)
			assert.Equal(t, http.StatusTeapot, resp.StatusCode)
			var rej *previewsec.RejectionError
			require.ErrorAs(t, got, &rej)
			assert.Equal(t, tc.status, rej.Status)
			assert.Equal(t, tc.reason, rej.Reason)
			assert.Equal(t, tc.cause, rej.Cause)
			var he hardening.Error
			require.ErrorAs(t, got, &he)
			p := he.Problem()
			assert.Equal(t, tc.status, p.Status)
			assert.Equal(t, tc.reason, p.Reason)
			if tc.status == 401 {
				assert.Equal(t, `Bearer realm="preview"`, resp.Header.Get("WWW-Authenticate"))
			}
			if tc.status == 503 {
				assert.Equal(t, time.Second, p.RetryAfter)
			}
		})
	}
}

// TestMiddlewareRejectionUnwraps: the Verifier's error is found through the
// RejectionError.
func TestMiddlewareRejectionUnwraps(t *testing.T) {
	f := newFixture(t)
	var got error
	srv, _ := newPreviewServer(t, f, previewsec.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		hardening.WriteError(w, r, err)
	}))
	tok := f.mint(t, testGrant)
	require.NoError(t, f.revs.RevokePreview(context.Background(), testGrant.PreviewID))
	resp, _ := get(t, srv.URL+"/preview/prev-a/", "Authorization", "Bearer "+tok)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.ErrorIs(t, got, previewsec.ErrRevoked)
}

// TestMiddlewareOwnerFromCaller: without WithPreviewOwner, a
// hardening.Caller in the context is the owner check: a token of another
// tenant is refused (403) and one of the caller's tenant passes; without a
// caller only the preview binding counts, as before.
func TestMiddlewareOwnerFromCaller(t *testing.T) {
	f := newFixture(t)
	auth, err := previewsec.RequirePreviewToken(f.ver)
	require.NoError(t, err)
	h := auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	tok := f.mint(t, testGrant) // tenant-a, prev-a
	serve := func(caller *hardening.Caller) int {
		req := httptest.NewRequest(http.MethodGet, "/preview/prev-a/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if caller != nil {
			req = req.WithContext(hardening.WithCaller(req.Context(), *caller))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	assert.Equal(t, http.StatusNoContent, serve(nil), "no caller: binding only")
	assert.Equal(t, http.StatusNoContent, serve(&hardening.Caller{Subject: "u", Tenant: "tenant-a"}))
	assert.Equal(t, http.StatusForbidden, serve(&hardening.Caller{Subject: "u", Tenant: "tenant-b"}))
	assert.Equal(t, http.StatusForbidden, serve(&hardening.Caller{Subject: "u"}), "a caller without a tenant owns nothing")
}

// TestMintForCaller: an empty tenant and user are the caller's; without a
// caller an empty tenant is refused as before; given fields win.
func TestMintForCaller(t *testing.T) {
	f := newFixture(t)
	ctx := hardening.WithCaller(context.Background(), hardening.Caller{Subject: "alice", Tenant: "tenant-a"})
	tok, _, _, err := f.iss.Mint(ctx, previewsec.Grant{PreviewID: "prev-a"}, 0)
	require.NoError(t, err)
	c, err := f.ver.Verify(context.Background(), tok)
	require.NoError(t, err)
	assert.Equal(t, "tenant-a", c.TenantID)
	assert.Equal(t, "alice", c.Subject)

	_, _, _, err = f.iss.Mint(context.Background(), previewsec.Grant{PreviewID: "prev-a"}, 0)
	assert.ErrorIs(t, err, previewsec.ErrInvalidGrant)
	_, _, _, err = f.iss.Mint(hardening.WithCaller(context.Background(), hardening.Caller{Subject: "bob"}), previewsec.Grant{PreviewID: "prev-a"}, 0)
	assert.ErrorIs(t, err, previewsec.ErrInvalidGrant, "a caller without a tenant")

	tok, _, _, err = f.iss.Mint(ctx, previewsec.Grant{UserID: "svc", TenantID: "tenant-b", PreviewID: "prev-b"}, 0)
	require.NoError(t, err)
	c, err = f.ver.Verify(context.Background(), tok)
	require.NoError(t, err)
	assert.Equal(t, "tenant-b", c.TenantID)
	assert.Equal(t, "svc", c.Subject)
}

// TestInvalidOptionsReportedByConstructors: options record values; each
// constructor reports the invalid ones.
func TestInvalidOptionsReportedByConstructors(t *testing.T) {
	f := newFixture(t)
	for name, opt := range map[string]previewsec.MiddlewareOption{
		"prefix": previewsec.WithPreviewPathPrefix("preview"), "id func": previewsec.WithPreviewIDFunc(nil),
		"cookie": previewsec.WithCookieName("a;b"), "secure": previewsec.WithSecureCookieFunc(nil),
		"error handler": previewsec.WithErrorHandler(nil),
	} {
		_, err := previewsec.RequirePreviewToken(f.ver, opt)
		assert.Error(t, err, name)
	}
	_, err := previewsec.NewKeyRing(previewsec.NewMemoryKeyStore(), previewsec.WithClock(nil))
	assert.Error(t, err)
	_, err = previewsec.NewKeyRing(previewsec.NewMemoryKeyStore(), previewsec.WithLeeway(-time.Second))
	assert.Error(t, err)
	_, err = previewsec.NewIssuer(f.ring, previewsec.WithIssuerName(""))
	assert.Error(t, err)
	_, err = previewsec.NewVerifier(f.ring, previewsec.WithMaxTokenLength(10))
	assert.Error(t, err)
	_, err = previewsec.NewRevocationList(f.store, previewsec.WithRevocationMaxAge(0))
	assert.Error(t, err)
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "hardening_previewsec_tokens_issued_total", Help: "clash"}))
	_, err = previewsec.NewIssuer(f.ring, previewsec.WithRegisterer(reg))
	assert.Error(t, err, "a clashing metric is reported by the constructor")
}
