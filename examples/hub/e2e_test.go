package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/streamauth"
)

// e2eMode is one way of running the hub for the end-to-end suite.
type e2eMode struct {
	name  string
	redis bool // REDIS_URL set: every store on Redis (previews stay in SQLite)
	// postgres: DATABASE_URL is a schema at POSTGRES_URL (skipped when it
	// is unset): every store on Postgres.
	postgres bool
	procs    int // hub processes sharing the database (and Redis)
	// crossRevoke: a stream revocation on one process reaches the other
	// (only through Redis pub/sub).
	crossRevoke bool
}

// TestE2E runs the whole story of the hub over HTTP against the built
// binary, in each mode: one process on SQLite, one on Redis, and two
// processes sharing the store. In the two-process modes every step that
// writes goes to one process and the step that checks goes to the other.
func TestE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("the end-to-end suite builds and runs the hub binary")
	}
	hubBinary(t)
	for _, m := range []e2eMode{
		{name: "sqlite", procs: 1, crossRevoke: true},
		{name: "redis", redis: true, procs: 1, crossRevoke: true},
		{name: "two-processes-sqlite", procs: 2},
		{name: "two-processes-redis", redis: true, procs: 2, crossRevoke: true},
		{name: "postgres", postgres: true, procs: 1, crossRevoke: true},
		{name: "two-processes-postgres", postgres: true, procs: 2},
	} {
		t.Run(m.name, func(t *testing.T) { runE2E(t, m) })
	}
}

// e2eHubEnv is the environment of every hub process of one mode: short
// intervals so that cross-process propagation is fast.
func e2eHubEnv(t *testing.T, m e2eMode) ([]string, *testRedisServer) {
	env := []string{
		"DATABASE_URL=sqlite:///" + filepath.Join(t.TempDir(), "hub.db"),
		"HUB_AUTH_SECRET=" + testAuthSecret,
		"FLAGS_POLL_INTERVAL=200ms",
		"HUB_STREAM_HEARTBEAT=1s",
		// Allowlisted: a public address, the metadata address (refused all
		// the same: special purpose) and a domain with one denied host.
		"PREVIEW_EGRESS_ALLOWLIST=1.1.1.1,169.254.169.254,*.example.com",
		"PREVIEW_EGRESS_DENYLIST=blocked.example.com",
	}
	if m.postgres {
		env = append(env, "DATABASE_URL="+testPostgres(t).URL)
	}
	var srv *testRedisServer
	if m.redis {
		srv = testRedis(t)
		env = append(env, "REDIS_URL="+srv.URL, "HUB_REDIS_PREFIX="+srv.Prefix)
	}
	return env, srv
}

func runE2E(t *testing.T, m e2eMode) {
	env, srv := e2eHubEnv(t, m)
	var procs []*hubProc
	for range m.procs {
		procs = append(procs, startHub(t, env...))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, p := range procs {
				t.Logf("hub %d logs:\n%s", i, p.logs())
			}
		}
	})
	// a takes the writes, b (the other process, if any) the checks.
	a, b := "http://"+procs[0].addr, "http://"+procs[len(procs)-1].addr
	c := newE2EClient(t)
	sfx := e2eSuffix()
	tenant, other := "acme-"+sfx, "globex-"+sfx
	mint := func(sub, tid string, admin bool, ttl time.Duration) string {
		t.Helper()
		args := []string{"token", "-sub", sub, "-tenant", tid, "-ttl", ttl.String()}
		if admin {
			args = append(args, "-admin")
		}
		code, out, stderr := runHub(t, t.TempDir(), []string{"HUB_AUTH_SECRET=" + testAuthSecret}, args...)
		require.Equal(t, 0, code, stderr)
		return strings.TrimSpace(out)
	}
	alice := mint("alice-"+sfx, tenant, false, time.Hour)
	root := mint("root-"+sfx, tenant, true, time.Hour)
	bob := mint("bob-"+sfx, other, false, time.Hour)
	carol := mint("carol-"+sfx, tenant, false, time.Hour)
	// A stream token that expires during the run: its streams must end.
	short := mint("alice-"+sfx, tenant, false, 4*time.Second)

	before := map[string]map[string]float64{a: c.metrics(a), b: c.metrics(b)}

	// Live streams: expiring ones on a; long-lived ones on both.
	expSSE, expWS := c.openSSE(a, short), c.dialWS(a, short)
	sseA, wsA := c.openSSE(a, alice), c.dialWS(a, alice)
	sses, wss := []*e2eSSE{expSSE, sseA}, []*e2eWS{expWS, wsA}
	sseB, wsB := sseA, wsA
	if b != a {
		sseB, wsB = c.openSSE(b, alice), c.dialWS(b, alice)
		sses, wss = append(sses, sseB), append(wss, wsB)
	}
	for _, s := range sses {
		require.Equal(t, http.StatusOK, s.Status)
		s.waitFor(t, "hello", 10*time.Second)
	}
	for _, w := range wss {
		w.waitFor(t, "hello", 10*time.Second)
	}

	t.Run("health and auth", func(t *testing.T) {
		for _, base := range []string{a, b} {
			assert.Equal(t, http.StatusOK, c.do("GET", base+"/livez", "", nil).Status)
			r := c.do("GET", base+"/readyz", "", nil)
			assert.Equal(t, http.StatusOK, r.Status, r.String())
		}
		r := c.do("GET", b+"/api/v1/whoami", "", nil)
		assert.Equal(t, http.StatusUnauthorized, r.Status)
		assert.Contains(t, r.Header.Get("WWW-Authenticate"), "Bearer")
		r = c.do("GET", b+"/api/v1/whoami", alice, nil)
		require.Equal(t, http.StatusOK, r.Status, r.String())
		assert.Equal(t, tenant, r.JSON(t)["tenant_id"])
	})

	var previewID, previewToken, previewURL string
	createBody := map[string]any{"system_id": "sys-1", "device_preset": "desktop"}
	ok := t.Run("create a preview, retry it idempotently on the other process", func(t *testing.T) {
		key := "e2e-preview-" + sfx
		r := c.do("POST", a+"/api/v1/previews", alice, createBody, "Idempotency-Key", key)
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		body := r.JSON(t)
		previewID, _ = body["preview_id"].(string)
		previewToken, _ = body["token"].(string)
		previewURL, _ = body["url"].(string)
		require.NotEmpty(t, previewID)
		require.NotEmpty(t, previewToken)
		assert.Equal(t, "/preview/"+previewID+"/", previewURL)
		assert.Equal(t, tenant, body["tenant_id"])
		assert.Empty(t, r.Header.Get("Idempotent-Replay"))

		again := c.do("POST", b+"/api/v1/previews", alice, createBody, "Idempotency-Key", key)
		require.Equal(t, http.StatusCreated, again.Status, again.String())
		assert.Equal(t, "true", again.Header.Get("Idempotent-Replay"))
		assert.Equal(t, previewID, again.JSON(t)["preview_id"], "the replay returns the same preview")

		other := c.do("POST", b+"/api/v1/previews", alice, map[string]any{"system_id": "sys-2"}, "Idempotency-Key", key)
		require.Equal(t, http.StatusUnprocessableEntity, other.Status, other.String())
		assert.Equal(t, "idempotency_key_reused", other.JSON(t)["reason"])

		ev := sseA.waitFor(t, "preview.created", 5*time.Second)
		assert.Contains(t, ev.Data, previewID)
		msg := wsA.waitFor(t, "preview.created", 5*time.Second)
		assert.Contains(t, string(msg.Data), previewID)
	})
	require.True(t, ok, "the rest of the story needs the preview")

	t.Run("open the preview through the query-to-cookie exchange", func(t *testing.T) {
		r := c.do("GET", b+previewURL+"?preview_token="+previewToken, "", nil)
		require.Equal(t, http.StatusSeeOther, r.Status, r.String())
		assert.Equal(t, previewURL, r.Header.Get("Location"))
		cookie := r.Header.Get("Set-Cookie")
		assert.Contains(t, cookie, "preview_token=")
		assert.Contains(t, cookie, "HttpOnly")
		assert.Contains(t, cookie, "Path="+previewURL)
		page := c.do("GET", b+previewURL, "", nil) // the jar sends the cookie
		require.Equal(t, http.StatusOK, page.Status, page.String())
		assert.Contains(t, string(page.Body), previewID)
		assert.Contains(t, page.Header.Get("Content-Type"), "text/html")

		r = c.send(c.bare, "GET", b+previewURL, "", nil) // no cookie, no token
		assert.Equal(t, http.StatusUnauthorized, r.Status, r.String())
		assert.Contains(t, r.Header.Get("WWW-Authenticate"), `realm="preview"`)
		// A preview token never authenticates the API.
		assert.Equal(t, http.StatusUnauthorized, c.do("GET", a+"/api/v1/whoami", previewToken, nil).Status)
	})

	t.Run("mint a preview token on one process, use it on the other", func(t *testing.T) {
		req := map[string]any{"preview_id": previewID, "system_id": "sys-1", "device_preset": "mobile", "ttl_minutes": 5}
		r := c.do("POST", a+"/api/v1/preview-security/jwt", alice, req)
		require.Equal(t, http.StatusOK, r.Status, r.String())
		body := r.JSON(t)
		tok, _ := body["token"].(string)
		require.NotEmpty(t, tok)
		assert.NotEmpty(t, body["kid"])
		exp, err := time.Parse(time.RFC3339, fmt.Sprint(body["expires_at"]))
		require.NoError(t, err)
		assert.WithinDuration(t, time.Now().Add(5*time.Minute), exp, time.Minute)

		page := c.send(c.bare, "GET", b+previewURL+"sub-page", tok, nil)
		require.Equal(t, http.StatusOK, page.Status, page.String())
		assert.Contains(t, string(page.Body), "mobile")

		r = c.do("POST", b+"/api/v1/preview-security/jwt", bob, req)
		assert.Equal(t, http.StatusForbidden, r.Status, r.String())
		r = c.do("POST", b+"/api/v1/preview-security/jwt", alice, map[string]any{"preview_id": previewID})
		assert.Equal(t, http.StatusBadRequest, r.Status, r.String())
	})

	t.Run("egress check", func(t *testing.T) {
		for _, tc := range []struct {
			body    map[string]any
			allowed bool
			reason  string
		}{
			{map[string]any{"host": "169.254.169.254", "port": 80}, false, "special_purpose_address"},
			{map[string]any{"url": "http://169.254.169.254/latest/meta-data/"}, false, "special_purpose_address"},
			{map[string]any{"host": "1.1.1.1"}, true, "allowed"},
			{map[string]any{"url": "https://blocked.example.com/"}, false, "denylisted"},
			{map[string]any{"host": "github.com", "port": 443}, false, "not_in_allowlist"},
			{map[string]any{"host": "8.8.8.8", "port": 53}, false, "not_in_allowlist"},
		} {
			r := c.do("POST", a+"/api/v1/preview-security/egress/check", alice, tc.body)
			require.Equal(t, http.StatusOK, r.Status, r.String())
			body := r.JSON(t)
			assert.Equal(t, tc.allowed, body["allowed"], "%v: %s", tc.body, r.Body)
			assert.Equal(t, tc.reason, body["reason"], "%v: %s", tc.body, r.Body)
			assert.Equal(t, "allowlist", body["mode"], "%v: %s", tc.body, r.Body)
		}
		assert.Equal(t, http.StatusBadRequest, c.do("POST", a+"/api/v1/preview-security/egress/check", alice, "{not json").Status)
	})

	t.Run("quotas set on one process are enforced by the other", func(t *testing.T) {
		upd := c.do("POST", a+"/api/v1/tenancy/quotas/"+tenant+"/update", root,
			map[string]any{"active_previews": 2, "snapshots_per_minute": 3, "llm_monthly_budget_usd": 0.03, "reason": "e2e"})
		require.Equal(t, http.StatusOK, upd.Status, upd.String())
		assert.EqualValues(t, 2, upd.JSON(t)["active_previews"])
		ev := sseA.waitFor(t, "quota.changed", 5*time.Second)
		assert.Contains(t, ev.Data, `"active_previews":2`)
		assert.NotContains(t, ev.Data, "changed_by", "the admin's name stays in the audit")
		assert.Equal(t, http.StatusForbidden, c.do("POST", a+"/api/v1/tenancy/quotas/"+tenant+"/update", alice,
			map[string]any{"active_previews": 100}).Status)

		// One preview is active: one more fits, the third is refused.
		r := c.do("POST", b+"/api/v1/previews", alice, map[string]any{"system_id": "sys-2"})
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		r = c.do("POST", b+"/api/v1/previews", alice, map[string]any{"system_id": "sys-3"})
		require.Equal(t, http.StatusTooManyRequests, r.Status, r.String())
		body := r.JSON(t)
		assert.Equal(t, "active_previews_limit_exceeded", body["reason"])
		assert.EqualValues(t, 2, body["limit"])
		// The hub gives no Retry-After here: a slot frees when a preview
		// is deleted, not after a known time.
		assert.Empty(t, r.Header.Get("Retry-After"))

		for i := range 3 {
			r := c.do("POST", b+"/api/v1/systems/sys-1/snapshots", alice, map[string]any{"label": fmt.Sprint("s", i)})
			require.Equal(t, http.StatusCreated, r.Status, "snapshot %d: %s", i, r)
			assert.Equal(t, `"snapshots";q=3;w=60`, r.Header.Get("RateLimit-Policy"))
			assert.Contains(t, r.Header.Get("RateLimit"), fmt.Sprintf(`"snapshots";r=%d;`, 2-i))
		}
		r = c.do("POST", a+"/api/v1/systems/sys-1/snapshots", alice, nil)
		require.Equal(t, http.StatusTooManyRequests, r.Status, r.String())
		assert.Equal(t, "snapshot_rate_exceeded", r.JSON(t)["reason"])
		assert.NotEmpty(t, r.Header.Get("Retry-After"))
		assert.Equal(t, `"snapshots";q=3;w=60`, r.Header.Get("RateLimit-Policy"))
		assert.Contains(t, r.Header.Get("RateLimit"), `"snapshots";r=0;`)

		r = c.do("POST", a+"/api/v1/llm/completions", alice, map[string]any{"prompt": "hello", "max_cost_usd": 0.02})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		// The stub model charged 0.00318 of the 0.0045 reserved (the
		// price): a 300-byte prompt, priced 0.034, does not fit in the
		// 0.03 budget.
		r = c.do("POST", b+"/api/v1/llm/completions", alice, map[string]any{"prompt": strings.Repeat("p", 300), "max_cost_usd": 0.05})
		require.Equal(t, http.StatusPaymentRequired, r.Status, r.String())
		body = r.JSON(t)
		assert.Equal(t, "llm_budget_exceeded", body["reason"])
		assert.InDelta(t, 0.03, body["limit"], 1e-9)
		assert.InDelta(t, 0.034, body["requested"], 1e-9)

		q := c.do("GET", b+"/api/v1/tenancy/quotas/"+tenant, alice, nil)
		require.Equal(t, http.StatusOK, q.Status, q.String())
		usage, _ := q.JSON(t)["usage"].(map[string]any)
		assert.EqualValues(t, 2, usage["active_previews"])
		assert.EqualValues(t, 3, usage["snapshots_last_minute"])
		assert.Equal(t, http.StatusForbidden, c.do("GET", b+"/api/v1/tenancy/quotas/"+tenant, bob, nil).Status)

		audit := c.do("GET", b+"/api/v1/tenancy/audit?tenant_id="+tenant, root, nil)
		require.Equal(t, http.StatusOK, audit.Status, audit.String())
		entries, _ := audit.JSON(t)["entries"].([]any)
		assert.Len(t, entries, 3, "one entry per changed limit")
		assert.Equal(t, http.StatusForbidden, c.do("GET", b+"/api/v1/tenancy/audit", alice, nil).Status)
	})

	t.Run("a flag toggled on one process is seen, streamed and audited on the other", func(t *testing.T) {
		r := c.do("POST", a+"/api/v1/feature-flags/llm.streaming/toggle", root,
			map[string]any{"enabled": true, "tenant_id": tenant, "reason": "e2e"}, "Idempotency-Key", "e2e-flag-"+sfx)
		require.Equal(t, http.StatusOK, r.Status, r.String())
		body := r.JSON(t)
		assert.Equal(t, "llm.streaming", body["flag"])
		assert.Equal(t, true, body["new_value"])
		assert.Equal(t, http.StatusForbidden, c.do("POST", a+"/api/v1/feature-flags/llm.streaming/toggle", alice,
			map[string]any{"enabled": false}).Status)
		assert.Equal(t, http.StatusNotFound, c.do("POST", a+"/api/v1/feature-flags/no.such.flag/toggle", root,
			map[string]any{"enabled": true}).Status)

		// Events go to the streams of the process that made the change.
		ev := sseA.waitFor(t, "flag.toggled", 5*time.Second)
		assert.Contains(t, ev.Data, `"llm.streaming"`)
		msg := wsA.waitFor(t, "flag.toggled", 5*time.Second)
		assert.Contains(t, string(msg.Data), tenant)
		// The other process picks the value up (notification or poll).
		assert.Eventually(t, func() bool {
			return e2eFlagEnabled(c.do("GET", b+"/api/v1/feature-flags", alice, nil).Body, "llm.streaming")
		}, 5*time.Second, 50*time.Millisecond, "the toggle reaches the other process")
		assert.False(t, e2eFlagEnabled(c.do("GET", b+"/api/v1/feature-flags", bob, nil).Body, "llm.streaming"),
			"another tenant keeps the default")

		audit := c.do("GET", b+"/api/v1/feature-flags/audit?flag=llm.streaming&tenant_id="+tenant, root, nil)
		require.Equal(t, http.StatusOK, audit.Status, audit.String())
		var page struct {
			Entries []struct {
				FlagName  string `json:"flag_name"`
				NewValue  bool   `json:"new_value"`
				ChangedBy string `json:"changed_by"`
				Reason    string `json:"reason"`
			} `json:"entries"`
		}
		require.NoError(t, json.Unmarshal(audit.Body, &page))
		require.Len(t, page.Entries, 1)
		assert.Equal(t, "root-"+sfx, page.Entries[0].ChangedBy)
		assert.Equal(t, "e2e", page.Entries[0].Reason)
		assert.Equal(t, http.StatusForbidden, c.do("GET", b+"/api/v1/feature-flags/audit", alice, nil).Status)
	})

	t.Run("deleting the preview streams the event and closes the preview everywhere", func(t *testing.T) {
		r := c.do("DELETE", a+"/api/v1/previews/"+previewID, bob, nil)
		assert.Equal(t, http.StatusNotFound, r.Status, "another tenant's preview looks missing: %s", r)
		r = c.do("DELETE", a+"/api/v1/previews/"+previewID, alice, nil)
		require.Equal(t, http.StatusNoContent, r.Status, r.String())
		ev := sseA.waitFor(t, "preview.deleted", 5*time.Second)
		assert.Contains(t, ev.Data, previewID)
		wsA.waitFor(t, "preview.deleted", 5*time.Second)
		// The cookie from the exchange no longer opens the preview.
		page := c.do("GET", b+previewURL, "", nil)
		assert.Contains(t, []int{http.StatusUnauthorized, http.StatusNotFound}, page.Status, page.String())
		// The freed slot is usable again.
		r = c.do("POST", b+"/api/v1/previews", alice, map[string]any{"system_id": "sys-4"})
		assert.Equal(t, http.StatusCreated, r.Status, r.String())
	})

	t.Run("a stream revoked through one process is dropped on the other", func(t *testing.T) {
		via := a
		if !m.crossRevoke {
			via = b // revocations cross processes only over Redis pub/sub
		}
		sse, ws := c.openSSE(b, carol), c.dialWS(b, carol)
		require.Equal(t, http.StatusOK, sse.Status)
		sse.waitFor(t, "hello", 5*time.Second)
		ws.waitFor(t, "hello", 5*time.Second)
		r := c.do("POST", via+"/api/v1/streaming/revoke", root, map[string]any{"user_id": "carol-" + sfx})
		require.Equal(t, http.StatusOK, r.Status, r.String())
		sse.waitFor(t, "auth_revoked", 5*time.Second)
		sse.waitEnd(t, 5*time.Second)
		code, reason := ws.waitClose(t, 5*time.Second)
		assert.Equal(t, streamauth.CloseForbidden, code)
		assert.Equal(t, "revoked", reason)
		// The revoked token cannot reconnect; alice's streams live on.
		again := c.openSSE(b, carol)
		assert.Equal(t, http.StatusUnauthorized, again.Status)
		assert.Equal(t, http.StatusUnauthorized, c.send(c.bare, "GET", b+"/api/v1/streams/events", "", nil).Status)
		r = c.do("POST", a+"/api/v1/streaming/revoke", alice, map[string]any{"user_id": "alice-" + sfx})
		assert.Equal(t, http.StatusForbidden, r.Status)
	})

	t.Run("streams refuse another tenant and a plain GET", func(t *testing.T) {
		r := c.send(c.bare, "GET", b+"/api/v1/streams/events?tenant_id="+other+"&access_token="+alice, "", nil)
		assert.Equal(t, http.StatusForbidden, r.Status, r.String())
		assert.Equal(t, "tenant_mismatch", r.JSON(t)["reason"])
		r = c.send(c.bare, "GET", b+"/api/v1/streams/ws?access_token="+alice, "", nil)
		// coder/websocket's own answer (text/plain, not a problem): the
		// stream was admitted first, then refused.
		assert.Equal(t, http.StatusUpgradeRequired, r.Status, r.String())
	})

	t.Run("an expired stream token ends its streams", func(t *testing.T) {
		ev := expSSE.waitFor(t, "auth_expired", 10*time.Second)
		assert.Contains(t, ev.Data, "expired")
		expSSE.waitEnd(t, 5*time.Second)
		code, reason := expWS.waitClose(t, 10*time.Second)
		assert.Equal(t, streamauth.CloseTokenExpired, code)
		assert.Equal(t, "token_expired", reason)
		// The long-lived streams are still open and get the heartbeat.
		sseB.waitFor(t, "heartbeat", 5*time.Second)
		wsB.waitFor(t, "heartbeat", 5*time.Second)
		select {
		case <-sseA.done:
			t.Error("alice's long-lived SSE stream ended")
		default:
		}
	})

	t.Run("admin status pages", func(t *testing.T) {
		r := c.do("GET", b+"/api/v1/streaming/status", root, nil)
		require.Equal(t, http.StatusOK, r.Status, r.String())
		assert.Equal(t, http.StatusForbidden, c.do("GET", b+"/api/v1/streaming/status", alice, nil).Status)
		r = c.do("POST", b+"/api/v1/streaming/cleanup", root, nil)
		assert.Equal(t, http.StatusOK, r.Status, r.String())
		r = c.do("GET", b+"/api/v1/idempotency/status", root, nil)
		assert.Equal(t, http.StatusOK, r.Status, r.String())
		r = c.do("GET", b+"/openapi.json", "", nil)
		assert.Equal(t, http.StatusOK, r.Status)
		assert.JSONEq(t, string(openapiDoc), string(r.Body))
		r = c.do("POST", a+"/api/v1/echo", alice, map[string]any{"n": 1}, "Idempotency-Key", "e2e-echo-"+sfx)
		assert.Equal(t, http.StatusCreated, r.Status, r.String())
		// No Docker daemon here: 503 (or 404 where one runs).
		r = c.do("GET", a+"/api/v1/preview-security/container/verify/nope", root, nil)
		assert.Contains(t, []int{http.StatusNotFound, http.StatusServiceUnavailable}, r.Status, r.String())
	})

	if srv != nil && srv.Mini != nil {
		t.Run("every Redis key is under HUB_REDIS_PREFIX", func(t *testing.T) {
			keys := srv.Mini.Keys()
			require.NotEmpty(t, keys)
			for _, k := range keys {
				assert.True(t, strings.HasPrefix(k, srv.Prefix), "key %q is outside %q: a real Redis keeps it after the test", k, srv.Prefix)
			}
		})
	}

	t.Run("metrics moved", func(t *testing.T) {
		after := map[string]map[string]float64{a: c.metrics(a), b: c.metrics(b)}
		moved := func(base, series string) float64 { return after[base][series] - before[base][series] }
		assert.GreaterOrEqual(t, moved(a, `hub_http_requests_total{code="201",route="POST /api/v1/previews"}`), 1.0)
		assert.GreaterOrEqual(t, moved(b, `hub_http_requests_total{code="429",route="POST /api/v1/previews"}`), 1.0)
		assert.GreaterOrEqual(t, moved(b, `hardening_idempotency_requests_total{outcome="replay"}`), 1.0)
		assert.GreaterOrEqual(t, moved(b, `hardening_idempotency_requests_total{outcome="mismatch"}`), 1.0)
		assert.GreaterOrEqual(t, moved(b, `hardening_quota_rejections_total{quota="active_previews"}`), 1.0)
		assert.GreaterOrEqual(t, moved(a, `hardening_quota_rejections_total{quota="snapshots"}`), 1.0)
		assert.GreaterOrEqual(t, moved(b, `hardening_quota_rejections_total{quota="llm_budget"}`), 1.0)
		assert.GreaterOrEqual(t, moved(a, `hardening_previewsec_tokens_issued_total`), 2.0)
		var flagChanges float64
		for series, v := range after[a] {
			if strings.HasPrefix(series, "hardening_flags_changes_total") {
				flagChanges += v - before[a][series]
			}
		}
		assert.GreaterOrEqual(t, flagChanges, 1.0)
		var dropped float64
		for series, v := range after[b] {
			if strings.HasPrefix(series, "hardening_streamauth_dropped_total") {
				dropped += v - before[b][series]
			}
		}
		assert.GreaterOrEqual(t, dropped, 1.0)
	})
}

// e2eFlagEnabled reports whether GET /api/v1/feature-flags's body shows name
// enabled.
func e2eFlagEnabled(body []byte, name string) bool {
	var resp struct {
		Flags []struct {
			Name    string `json:"name"`
			Enabled bool   `json:"enabled"`
		} `json:"flags"`
	}
	if json.Unmarshal(body, &resp) != nil {
		return false
	}
	for _, f := range resp.Flags {
		if f.Name == name {
			return f.Enabled
		}
	}
	return false
}
