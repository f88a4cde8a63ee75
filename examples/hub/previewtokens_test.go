package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/migrate"
	"github.com/systembuilderhub/hardening/previewsec"
)

func seedPreview(t *testing.T, a *app, tenant string) previewRecord {
	t.Helper()
	rec := previewRecord{ID: newID("prv_"), TenantID: tenant, SystemID: "sys-1", DevicePreset: "desktop", CreatedBy: "alice", CreatedAt: time.Now()}
	require.NoError(t, a.createPreview(context.Background(), rec))
	return rec
}

func mintPreviewJWT(t *testing.T, base, bearer, body string) (*http.Response, map[string]any) {
	t.Helper()
	resp, b := call(t, "POST", base+"/api/v1/preview-security/jwt", bearer, body)
	return resp, decodeBody(t, b)
}

func noFollow(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func TestPreviewJWTEndpoint(t *testing.T) {
	for _, mode := range []string{"sqlite", "derived", "redis", "postgres"} {
		t.Run(mode, func(t *testing.T) {
			var mods []func(*config)
			switch mode {
			case "derived":
				t.Setenv("PREVIEW_JWT_SECRET", "hub-test-master-secret-0123456789abcdef")
			case "redis":
				srv := testRedis(t)
				t.Setenv("HUB_REDIS_PREFIX", srv.Prefix)
				mods = append(mods, func(c *config) { c.RedisURL = srv.URL })
			case "postgres":
				mods = append(mods, withPostgres(testPostgres(t)))
			}
			a, base := newTestApp(t, mods...)
			require.Equal(t, mode, a.previewTokens().mode)
			alice := mintToken(t, a, "alice", "acme", false)
			rec := seedPreview(t, a, "acme")

			resp, body := mintPreviewJWT(t, base, alice, `{"preview_id":"`+rec.ID+`","system_id":"sys-1","device_preset":"mobile","ttl_minutes":30}`)
			require.Equal(t, http.StatusOK, resp.StatusCode, body)
			tok, _ := body["token"].(string)
			require.NotEmpty(t, tok)
			exp, err := time.Parse(time.RFC3339, body["expires_at"].(string))
			require.NoError(t, err)
			assert.WithinDuration(t, time.Now().Add(30*time.Minute), exp, 5*time.Second)
			assert.Len(t, body["kid"], 16)

			// The token opens the preview, with the header...
			resp, page := call(t, "GET", base+"/preview/"+rec.ID+"/", tok, "")
			require.Equal(t, http.StatusOK, resp.StatusCode, string(page))
			assert.Contains(t, resp.Header.Get("Content-Type"), "text/html")
			assert.Contains(t, string(page), "Preview "+rec.ID)
			assert.Contains(t, string(page), "mobile")
			// ...and anything under it.
			resp, _ = call(t, "GET", base+"/preview/"+rec.ID+"/assets/app.js", tok, "")
			assert.Equal(t, http.StatusOK, resp.StatusCode)

			// A revoked preview's tokens stop working.
			require.NoError(t, a.revokePreviewTokens(context.Background(), rec.ID))
			resp, _ = call(t, "GET", base+"/preview/"+rec.ID+"/", tok, "")
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		})
	}
}

func TestPreviewJWTValidation(t *testing.T) {
	a, base := newTestApp(t)
	alice := mintToken(t, a, "alice", "acme", false)
	bob := mintToken(t, a, "bob", "globex", false)
	rec := seedPreview(t, a, "acme")
	good := func(extra string) string {
		return `{"preview_id":"` + rec.ID + `","system_id":"sys-1","device_preset":"desktop"` + extra + `}`
	}
	cases := []struct {
		name   string
		bearer string
		body   string
		status int
		reason string
	}{
		{"no ttl: default", alice, good(""), 200, ""},
		{"ttl at the max", alice, good(`,"ttl_minutes":60`), 200, ""},
		{"ttl over the max", alice, good(`,"ttl_minutes":61`), 400, "ttl_too_long"},
		{"huge ttl", alice, good(`,"ttl_minutes":100000000`), 400, "ttl_too_long"},
		{"zero ttl", alice, good(`,"ttl_minutes":0`), 400, "invalid_ttl"},
		{"missing preview_id", alice, `{"system_id":"sys-1","device_preset":"desktop","ttl_minutes":30}`, 400, "missing_field"},
		{"missing system_id", alice, `{"preview_id":"` + rec.ID + `","device_preset":"desktop"}`, 400, "missing_field"},
		{"missing device_preset", alice, `{"preview_id":"` + rec.ID + `","system_id":"sys-1"}`, 400, "missing_field"},
		{"tenant in the body is not a field", alice, good(`,"tenant_id":"globex"`), 400, "invalid_body"},
		{"not JSON", alice, `nope`, 400, "invalid_body"},
		{"another tenant's preview", bob, good(""), 403, "forbidden"},
		{"unknown preview", alice, `{"preview_id":"prv_nope","system_id":"sys-1","device_preset":"desktop"}`, 404, "not_found"},
		{"no bearer", "", good(""), 401, "unauthenticated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := mintPreviewJWT(t, base, tc.bearer, tc.body)
			require.Equal(t, tc.status, resp.StatusCode, body)
			if tc.reason != "" {
				assert.Equal(t, tc.reason, body["reason"])
				assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			}
		})
	}
	// Tenant and user come from the bearer token.
	resp, body := mintPreviewJWT(t, base, alice, good(""))
	require.Equal(t, 200, resp.StatusCode)
	c, err := a.previewTokens().verifier.Verify(context.Background(), body["token"].(string))
	require.NoError(t, err)
	assert.Equal(t, "acme", c.TenantID)
	assert.Equal(t, "alice", c.Subject)
	assert.Equal(t, rec.ID, c.PreviewID)
}

// TestPreviewTokenNeverAuthenticatesAPI: a preview token is refused by the
// hub's bearer auth (401) on user and admin routes, and a hub token is
// refused on preview routes.
func TestPreviewTokenNeverAuthenticatesAPI(t *testing.T) {
	a, base := newTestApp(t)
	alice := mintToken(t, a, "alice", "acme", true)
	rec := seedPreview(t, a, "acme")
	tok, _, _, err := a.issuePreviewToken(context.Background(), principal{UserID: "alice", TenantID: "acme"}, rec)
	require.NoError(t, err)

	for _, path := range []string{"/api/v1/whoami"} {
		resp, b := call(t, "GET", base+path, tok, "")
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, string(b))
	}
	resp, b := call(t, "POST", base+"/api/v1/preview-security/jwt", tok, `{"preview_id":"`+rec.ID+`","system_id":"sys-1","device_preset":"desktop"}`)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, string(b))

	// The hub's own token does not open a preview.
	resp, b = call(t, "GET", base+"/preview/"+rec.ID+"/", alice, "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, string(b))
	assert.Equal(t, `Bearer realm="preview"`, resp.Header.Get("WWW-Authenticate"))
}

func TestPreviewPageAccess(t *testing.T) {
	a, base := newTestApp(t)
	mine := seedPreview(t, a, "acme")
	other := seedPreview(t, a, "acme")
	theirs := seedPreview(t, a, "globex")
	alice := principal{UserID: "alice", TenantID: "acme"}
	tok, _, _, err := a.issuePreviewToken(context.Background(), alice, mine)
	require.NoError(t, err)
	_, _, _, err = a.issuePreviewToken(context.Background(), alice, theirs)
	assert.ErrorIs(t, err, errPreviewOfOtherTenant)

	// Query token -> cookie + 303 without the token; a cookie jar follows.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Jar: jar, CheckRedirect: noFollow}
	resp, err := client.Get(base + "/preview/" + mine.ID + "/page?x=1&preview_token=" + url.QueryEscape(tok))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/preview/"+mine.ID+"/page?x=1", resp.Header.Get("Location"))
	setCookie := resp.Header.Get("Set-Cookie")
	assert.Contains(t, setCookie, "HttpOnly")
	assert.Contains(t, setCookie, "SameSite=Lax")
	assert.Contains(t, setCookie, "Path=/preview/"+mine.ID+"/")
	assert.NotContains(t, setCookie, "Secure", "plain HTTP on loopback (local dev)")
	resp, err = client.Get(base + resp.Header.Get("Location"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// A token for one preview does not open another, even of the same tenant.
	r2, b := call(t, "GET", base+"/preview/"+other.ID+"/", tok, "")
	assert.Equal(t, http.StatusForbidden, r2.StatusCode, string(b))
	// No token, bad token: one generic 401.
	for _, bearer := range []string{"", "junk", strings.Repeat("a", 5000)} {
		r, b := call(t, "GET", base+"/preview/"+mine.ID+"/", bearer, "")
		assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
		assert.Equal(t, "a valid preview token is required", decodeBody(t, b)["detail"])
	}
	// A token of tenant acme for globex's preview (forged ownership): 403.
	forged, _, _, err := a.previewTokens().issuer.Mint(context.Background(), previewsec.Grant{UserID: "alice", TenantID: "acme", PreviewID: theirs.ID}, 0)
	require.NoError(t, err)
	r3, b := call(t, "GET", base+"/preview/"+theirs.ID+"/", forged, "")
	assert.Equal(t, http.StatusForbidden, r3.StatusCode, string(b))

	// Metrics are exported.
	_, m := call(t, "GET", base+"/metrics", "", "")
	assert.Contains(t, string(m), "hardening_previewsec_tokens_issued_total")
	assert.Contains(t, string(m), `hardening_previewsec_token_rejections_total{reason="wrong_preview"} 1`)
	assert.Contains(t, string(m), `hardening_previewsec_token_rejections_total{reason="wrong_tenant"} 1`)
}

func TestPreviewTokensBadEnv(t *testing.T) {
	t.Setenv("PREVIEW_TOKEN_TTL", "forever")
	cfg := config{DatabaseURL: "sqlite:///" + t.TempDir() + "/hub.db", AuthSecret: []byte(testAuthSecret), Migrations: migrate.DefaultPolicy()}
	cfg.DBPath, _ = sqlitePath(cfg.DatabaseURL)
	_, err := newApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "PREVIEW_TOKEN_TTL")
}

func TestPreviewAccessAndDeletion(t *testing.T) {
	a, base := newTestApp(t)
	rec := seedPreview(t, a, "acme")
	acc, err := a.previewAccessFor(context.Background(), principal{UserID: "alice", TenantID: "acme"}, rec)
	require.NoError(t, err)
	assert.Equal(t, "/preview/"+rec.ID+"/", acc.URL)
	_, err = time.Parse(time.RFC3339, acc.ExpiresAt)
	require.NoError(t, err)
	resp, _ := call(t, "GET", base+acc.URL, acc.Token, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// What DELETE /api/v1/previews/{id} does: delete the record and revoke.
	deleted, err := a.deletePreview(context.Background(), rec.ID)
	require.NoError(t, err)
	require.True(t, deleted)
	require.NoError(t, a.revokePreviewTokens(context.Background(), rec.ID))
	resp, b := call(t, "GET", base+acc.URL, acc.Token, "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, string(b))
}

// TestPreviewCookieSecureFromConnection: the preview cookie's Secure
// attribute follows the connection, not the Host header (issue 13): Host:
// 127.0.0.1 sent to a public listener, or nginx's default Host rewrite,
// keeps it; a proxy named in HUB_TRUSTED_PROXIES on this machine gets it
// unless it says X-Forwarded-Proto: http.
func TestPreviewCookieSecureFromConnection(t *testing.T) {
	a, _ := newTestApp(t, func(c *config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")} })
	rec := seedPreview(t, a, "acme")
	tok, _, _, err := a.issuePreviewToken(context.Background(), principal{UserID: "alice", TenantID: "acme"}, rec)
	require.NoError(t, err)
	h := a.previewTokens().auth.Handler(http.NotFoundHandler()) // a.handler() is served by newTestApp already
	for _, tc := range []struct {
		name, remote, host, proto string
		secure                    bool
	}{
		{"Host 127.0.0.1 from a public peer", "203.0.113.7:50000", "127.0.0.1", "", true},
		{"nginx proxy_set_header Host $proxy_host", "10.1.2.3:41000", "127.0.0.1:8080", "", true},
		{"browser on this machine", "127.0.0.1:50000", "127.0.0.1:8080", "", false},
		{"untrusted local peer forwarding is a proxy", "127.0.0.1:50000", "127.0.0.1:8080", "https", true},
		{"trusted local proxy", "127.0.0.2:50000", "127.0.0.1:8080", "", true},
		{"trusted local proxy for a plain-HTTP client", "127.0.0.2:50000", "127.0.0.1:8080", "http", false},
		{"public peer claiming http", "203.0.113.7:50000", "hub.example.com", "http", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/preview/"+rec.ID+"/?preview_token="+url.QueryEscape(tok), nil)
			r.RemoteAddr, r.Host = tc.remote, tc.host
			if tc.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tc.proto)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			require.Equal(t, http.StatusSeeOther, w.Code, w.Body.String())
			cookies := w.Result().Cookies()
			require.Len(t, cookies, 1)
			assert.Equal(t, tc.secure, cookies[0].Secure)
		})
	}
}

func TestTrustedProxiesConfig(t *testing.T) {
	t.Setenv(envTrustedProxies, " 127.0.0.1, 10.0.0.0/8 ,::1,192.168.1.7/16")
	c, err := configFromEnv()
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("192.168.0.0/16")}, c.TrustedProxies)
	for _, bad := range []string{"nginx", "10.0.0.0/33", "fe80::1%eth0", "127.0.0.1:8080"} {
		t.Setenv(envTrustedProxies, bad)
		_, err := configFromEnv()
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), envTrustedProxies)
	}
	t.Setenv(envTrustedProxies, "")
	c, err = configFromEnv()
	require.NoError(t, err)
	assert.Empty(t, c.TrustedProxies)
}

// TestPreviewFreshLinkOverOtherPreviewsCookie: a browser holding a cookie
// with another preview's valid token (a previewed app can set one for all
// of /preview/) is not locked out: a fresh link replaces it (issue 13).
func TestPreviewFreshLinkOverOtherPreviewsCookie(t *testing.T) {
	a, base := newTestApp(t)
	alice := principal{UserID: "alice", TenantID: "acme"}
	mine, other := seedPreview(t, a, "acme"), seedPreview(t, a, "acme")
	tok, _, _, err := a.issuePreviewToken(context.Background(), alice, mine)
	require.NoError(t, err)
	otherTok, _, _, err := a.issuePreviewToken(context.Background(), alice, other)
	require.NoError(t, err)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	u, err := url.Parse(base + "/preview/")
	require.NoError(t, err)
	jar.SetCookies(u, []*http.Cookie{{Name: "preview_token", Value: otherTok, Path: "/preview/"}})
	client := &http.Client{Jar: jar, CheckRedirect: noFollow}

	resp, err := client.Get(base + "/preview/" + mine.ID + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "the other preview's cookie alone")

	resp, err = client.Get(base + "/preview/" + mine.ID + "/?preview_token=" + url.QueryEscape(tok))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	resp, err = client.Get(base + resp.Header.Get("Location"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the fresh link's cookie, on the preview's own path, is sent first")
}
