package previewsec_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/previewsec"
)

var owners = map[string]string{"prev-a": "tenant-a", "prev-b": "tenant-b", "prev-c": "tenant-a"}

type seen struct {
	claims previewsec.Claims
	auth   string
	cookie string
	query  string
}

func newPreviewServer(t *testing.T, f *fixture, opts ...previewsec.MiddlewareOption) (*httptest.Server, *seen) {
	t.Helper()
	var last seen
	owner := func(ctx context.Context, id string) (string, bool, error) {
		if id == "broken" {
			return "", false, errors.New("db down")
		}
		tid, ok := owners[id]
		return tid, ok, nil
	}
	auth, err := previewsec.RequirePreviewToken(f.ver, append([]previewsec.MiddlewareOption{
		previewsec.WithPreviewOwner(owner), previewsec.WithSecureCookie(false)}, opts...)...)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/preview/{preview_id}/", auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := previewsec.ClaimsFromContext(r.Context())
		if !ok {
			http.Error(w, "no claims", 500)
			return
		}
		last = seen{claims: c, auth: r.Header.Get("Authorization"), cookie: r.Header.Get("Cookie"), query: r.URL.RawQuery}
		_, _ = io.WriteString(w, "preview "+c.PreviewID)
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &last
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: noRedirect}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

func get(t *testing.T, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	for i := 0; i < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func TestMiddlewareBearer(t *testing.T) {
	f := newFixture(t)
	srv, last := newPreviewServer(t, f)
	tok := f.mint(t, testGrant)
	resp, body := get(t, srv.URL+"/preview/prev-a/index.html", "Authorization", "Bearer "+tok, "Cookie", "other=1")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "preview prev-a", body)
	assert.Equal(t, "tenant-a", last.claims.TenantID)
	assert.Equal(t, "user-1", last.claims.Subject)
	assert.Empty(t, last.auth, "the token is not forwarded to the preview app")
	assert.Equal(t, "other=1", last.cookie, "other cookies are")
}

func TestMiddlewareCookie(t *testing.T) {
	f := newFixture(t)
	srv, last := newPreviewServer(t, f)
	tok := f.mint(t, testGrant)
	resp, body := get(t, srv.URL+"/preview/prev-a/", "Cookie", "a=1; preview_token="+tok+"; b=2")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "a=1; b=2", last.cookie)
}

func TestMiddlewareQueryExchange(t *testing.T) {
	f := newFixture(t)
	srv, _ := newPreviewServer(t, f)
	tok := f.mint(t, testGrant)
	resp, _ := get(t, srv.URL+"/preview/prev-a/page?x=1&preview_token="+url.QueryEscape(tok)+"&y=2")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/preview/prev-a/page?x=1&y=2", resp.Header.Get("Location"))
	assert.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))
	cookies := resp.Cookies()
	require.Len(t, cookies, 1)
	c := cookies[0]
	assert.Equal(t, "preview_token", c.Name)
	assert.Equal(t, tok, c.Value)
	assert.Equal(t, "/preview/prev-a/", c.Path)
	assert.True(t, c.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, c.SameSite)
	assert.False(t, c.Secure, "turned off for this plain-HTTP test")
	assert.Equal(t, 3600, c.MaxAge)
	raw := resp.Header.Get("Set-Cookie")
	assert.Contains(t, raw, "HttpOnly")
	assert.Contains(t, raw, "SameSite=Lax")

	// Follow it like a browser.
	resp, body := get(t, srv.URL+resp.Header.Get("Location"), "Cookie", c.Name+"="+c.Value)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
}

func TestMiddlewareStaleCookieGivesWayToQueryToken(t *testing.T) {
	f := newFixture(t)
	srv, last := newPreviewServer(t, f)
	tok := f.mint(t, testGrant)
	resp, _ := get(t, srv.URL+"/preview/prev-a/?preview_token="+tok, "Cookie", "preview_token=stale")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Len(t, resp.Cookies(), 1)
	assert.Equal(t, tok, resp.Cookies()[0].Value)
	// A good cookie wins over a bad query token.
	resp, body := get(t, srv.URL+"/preview/prev-a/?a=1&preview_token=junk", "Cookie", "preview_token="+tok)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "a=1", last.query, "the ignored query token is not forwarded")
}

func TestMiddlewareSecureCookieByDefault(t *testing.T) {
	f := newFixture(t)
	auth, err := previewsec.RequirePreviewToken(f.ver)
	require.NoError(t, err)
	h := auth.Handler(http.NotFoundHandler())
	tok := f.mint(t, testGrant)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/preview/prev-a/?preview_token="+tok, nil))
	require.Equal(t, http.StatusSeeOther, rec.Code)
	assert.Equal(t, "/preview/prev-a/", rec.Header().Get("Location"))
	assert.Contains(t, rec.Header().Get("Set-Cookie"), "Secure")
}

func TestMiddlewareRejections(t *testing.T) {
	f := newFixture(t)
	srv, _ := newPreviewServer(t, f)
	tokA := f.mint(t, testGrant)                                                                   // tenant-a, prev-a
	tokForB := f.mint(t, previewsec.Grant{UserID: "u", TenantID: "tenant-a", PreviewID: "prev-b"}) // tenant-a claims tenant-b's preview
	expired := forgeExpired(t, f)
	revoked := f.mint(t, previewsec.Grant{TenantID: "tenant-a", PreviewID: "prev-c"})
	require.NoError(t, f.revs.RevokePreview(context.Background(), "prev-c"))

	cases := []struct {
		name   string
		path   string
		hdr    []string
		status int
		reason string
	}{
		{"no token", "/preview/prev-a/", nil, 401, "preview_token_required"},
		{"garbage bearer", "/preview/prev-a/", []string{"Authorization", "Bearer junk"}, 401, "preview_token_required"},
		{"basic auth", "/preview/prev-a/", []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, "preview_token_required"},
		{"expired", "/preview/prev-a/", []string{"Authorization", "Bearer " + expired}, 401, "preview_token_required"},
		{"revoked", "/preview/prev-c/", []string{"Authorization", "Bearer " + revoked}, 401, "preview_token_required"},
		{"bad cookie", "/preview/prev-a/", []string{"Cookie", "preview_token=junk"}, 401, "preview_token_required"},
		{"bad query token", "/preview/prev-a/?preview_token=junk", nil, 401, "preview_token_required"},
		{"header wins over a good cookie", "/preview/prev-a/", []string{"Authorization", "Bearer junk", "Cookie", "preview_token=" + tokA}, 401, "preview_token_required"},
		{"token for preview A on preview B", "/preview/prev-c/", []string{"Authorization", "Bearer " + tokA}, 403, "preview_forbidden"},
		{"tenant A token for tenant B's preview", "/preview/prev-b/", []string{"Authorization", "Bearer " + tokForB}, 403, "preview_forbidden"},
		{"token for A on an unknown preview", "/preview/nope/", []string{"Authorization", "Bearer " + tokA}, 403, "preview_forbidden"},
		{"preview does not exist", "/preview/gone/", []string{"Authorization", "Bearer " + f.mint(t, previewsec.Grant{TenantID: "tenant-a", PreviewID: "gone"})}, 404, "not_found"},
		{"owner lookup fails", "/preview/broken/", []string{"Authorization", "Bearer " + f.mint(t, previewsec.Grant{TenantID: "tenant-a", PreviewID: "broken"})}, 503, "preview_auth_unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+tc.path, tc.hdr...)
			require.Equal(t, tc.status, resp.StatusCode, body)
			assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			var p map[string]any
			require.NoError(t, json.Unmarshal([]byte(body), &p))
			assert.Equal(t, tc.reason, p["reason"])
			if tc.status == 401 {
				assert.Equal(t, `Bearer realm="preview"`, resp.Header.Get("WWW-Authenticate"))
				assert.Equal(t, "a valid preview token is required", p["detail"], "one generic message")
				assert.NotContains(t, strings.ToLower(body), "expired")
				assert.NotContains(t, strings.ToLower(body), "revoked")
			}
		})
	}
	assert.Equal(t, 2.0, metricValue(t, f.reg, "hardening_previewsec_token_rejections_total", "wrong_preview"))
	assert.Equal(t, 1.0, metricValue(t, f.reg, "hardening_previewsec_token_rejections_total", "wrong_tenant"))
	assert.Equal(t, 1.0, metricValue(t, f.reg, "hardening_previewsec_token_rejections_total", "missing"))
	assert.Equal(t, 1.0, metricValue(t, f.reg, "hardening_previewsec_token_rejections_total", "expired"))
}

func forgeExpired(t *testing.T, f *fixture) string {
	t.Helper()
	c := claims()
	c["iat"], c["exp"] = now.Add(-time30m()).Unix(), now.Add(-time30m()/2).Unix()
	delete(c, "nbf")
	return forge(hs256(f.key.ID), c, sha256New, f.key.Secret)
}

func TestMiddlewareNoPreviewID(t *testing.T) {
	f := newFixture(t)
	auth, err := previewsec.RequirePreviewToken(f.ver)
	require.NoError(t, err)
	h := auth.Handler(http.NotFoundHandler())
	for _, p := range []string{"/elsewhere/", "/preview/", "/preview//x"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		assert.Equal(t, http.StatusNotFound, rec.Code, p)
	}
	_, err = previewsec.RequirePreviewToken(nil)
	assert.Error(t, err)
	_, err = previewsec.RequirePreviewToken(f.ver, previewsec.WithPreviewPathPrefix("preview"))
	assert.Error(t, err)
	_, err = previewsec.RequirePreviewToken(f.ver, previewsec.WithCookieName("a;b"))
	assert.Error(t, err)
}

// TestPreviewTokenIsNotAnAPIToken: a verifier for another audience (as an
// API's auth would be) refuses a preview token, and RequirePreviewToken
// refuses a token of another audience.
func TestPreviewTokenIsNotAnAPIToken(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, testGrant)
	// An API verifier built on golang-jwt with its own audience.
	_, err := jwtParseForAudience(tok, f.key.Secret, "hub")
	assert.Error(t, err)
	apiToken := forge(hs256(f.key.ID), with(claims(), "aud", "hub"), sha256New, f.key.Secret)
	_, err = f.ver.Verify(context.Background(), apiToken)
	assert.ErrorIs(t, err, previewsec.ErrInvalidAudience)
}

// TestMiddlewareFreshLinkWinsOverCookie is the lockout of issue 13: a
// cookie holding another preview's valid token (a previewed app can set
// one for Path=/preview/) answered 403 even to a fresh link. A valid query
// token for this preview wins over any cookie and replaces it on the 303;
// a cookie that does not fit is ignored then, and still refused alone.
func TestMiddlewareFreshLinkWinsOverCookie(t *testing.T) {
	f := newFixture(t)
	srv, last := newPreviewServer(t, f)
	tokA := f.mint(t, testGrant)
	tokA2 := f.mint(t, previewsec.Grant{UserID: "user-2", TenantID: "tenant-a", PreviewID: "prev-a"})
	tokC := f.mint(t, previewsec.Grant{UserID: "user-1", TenantID: "tenant-a", PreviewID: "prev-c"})
	tokB := f.mint(t, previewsec.Grant{UserID: "user-1", TenantID: "tenant-b", PreviewID: "prev-b"})
	expired := forgeExpired(t, f)

	for name, cookie := range map[string]string{
		"another preview's valid token": tokC,
		"another tenant's valid token":  tokB,
		"garbage":                       "junk",
		"an expired token":              expired,
		"another valid token for this":  tokA2,
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := get(t, srv.URL+"/preview/prev-a/page?x=1&preview_token="+url.QueryEscape(tokA), "Cookie", "preview_token="+cookie)
			require.Equal(t, http.StatusSeeOther, resp.StatusCode, body)
			assert.Equal(t, "/preview/prev-a/page?x=1", resp.Header.Get("Location"))
			require.Len(t, resp.Cookies(), 1)
			c := resp.Cookies()[0]
			assert.Equal(t, tokA, c.Value, "the link's token replaces the cookie")
			assert.Equal(t, "/preview/prev-a/", c.Path)
			resp, body = get(t, srv.URL+resp.Header.Get("Location"), "Cookie", c.Name+"="+c.Value)
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			assert.Equal(t, "user-1", last.claims.Subject)
		})
	}

	// Without a fresh link, a cookie that does not fit is refused as before.
	resp, body := get(t, srv.URL+"/preview/prev-a/", "Cookie", "preview_token="+tokC)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	// A query token that does not fit gives way to a cookie that does.
	resp, body = get(t, srv.URL+"/preview/prev-a/?a=1&preview_token="+url.QueryEscape(tokC), "Cookie", "preview_token="+tokA)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "a=1", last.query, "the ignored query token is not forwarded")
	// When neither fits, the answer is the cookie's, as before, unless the
	// cookie is invalid: then the query token's.
	resp, body = get(t, srv.URL+"/preview/prev-a/?preview_token=junk", "Cookie", "preview_token="+tokB)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	resp, body = get(t, srv.URL+"/preview/prev-a/?preview_token="+url.QueryEscape(tokC), "Cookie", "preview_token=junk")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	resp, body = get(t, srv.URL+"/preview/prev-a/?preview_token=junk", "Cookie", "preview_token=junk")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
	// Alone, a query token for another preview is refused.
	resp, body = get(t, srv.URL+"/preview/prev-a/?preview_token="+url.QueryEscape(tokC))
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, body)
}
