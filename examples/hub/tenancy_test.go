package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tenancyModes runs a test on the SQLite stores, on the Redis stores and
// on the Postgres stores (skipped without POSTGRES_URL).
func tenancyModes(t *testing.T, fn func(t *testing.T, a *app, url string)) {
	t.Run("sqlite", func(t *testing.T) {
		a, url := newTestApp(t)
		fn(t, a, url)
	})
	t.Run("redis", func(t *testing.T) {
		srv := testRedis(t)
		t.Setenv(envRedisPrefix, srv.Prefix)
		a, url := newTestApp(t, func(c *config) { c.RedisURL = srv.URL })
		require.NotNil(t, a.rdb)
		fn(t, a, url)
	})
	t.Run("postgres", func(t *testing.T) {
		a, url := newTestApp(t, withPostgres(testPostgres(t)))
		require.True(t, a.onPostgres())
		fn(t, a, url)
	})
}

type eventLog struct {
	mu  sync.Mutex
	got []string
}

func (e *eventLog) sink(tenant, typ string, _ any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, tenant+":"+typ)
}

func (e *eventLog) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.got...)
}

func TestTenancyPreviews(t *testing.T) {
	tenancyModes(t, func(t *testing.T, a *app, url string) {
		events := &eventLog{}
		a.eventSinks = append(a.eventSinks, events.sink)
		alice := mintToken(t, a, "alice", "acme", false)
		bob := mintToken(t, a, "bob", "globex", false)

		var ids []string
		for i := range 5 {
			resp, b := call(t, "POST", url+"/api/v1/previews", alice, `{"system_id":"s1","device_preset":"desktop"}`)
			require.Equal(t, 201, resp.StatusCode, "preview %d: %s", i, b)
			body := decodeBody(t, b)
			id, _ := body["preview_id"].(string)
			require.NotEmpty(t, id)
			assert.Equal(t, "acme", body["tenant_id"])
			ids = append(ids, id)
		}
		resp, b := call(t, "POST", url+"/api/v1/previews", alice, `{"system_id":"s1","device_preset":"desktop"}`)
		require.Equal(t, 429, resp.StatusCode, string(b))
		assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		body := decodeBody(t, b)
		assert.Equal(t, "active_previews_limit_exceeded", body["reason"])
		assert.EqualValues(t, 5, body["current"])
		assert.EqualValues(t, 5, body["limit"])

		resp, _ = call(t, "POST", url+"/api/v1/previews", bob, `{"system_id":"s1","device_preset":"mobile"}`)
		assert.Equal(t, 201, resp.StatusCode, "another tenant has its own slots")

		resp, _ = call(t, "DELETE", url+"/api/v1/previews/"+ids[0], bob, "")
		assert.Equal(t, 404, resp.StatusCode, "another tenant's preview is not found")
		resp, _ = call(t, "DELETE", url+"/api/v1/previews/"+ids[0], alice, "")
		assert.Equal(t, 204, resp.StatusCode)
		resp, _ = call(t, "DELETE", url+"/api/v1/previews/"+ids[0], alice, "")
		assert.Equal(t, 404, resp.StatusCode)
		resp, _ = call(t, "POST", url+"/api/v1/previews", alice, `{"system_id":"s2","device_preset":"tablet"}`)
		assert.Equal(t, 201, resp.StatusCode, "the deleted preview's slot is free again")

		for _, bad := range []string{`{"device_preset":"desktop"}`, `{"system_id":"s1","extra":1}`, `{"system_id":""}`, `[]`} {
			resp, _ = call(t, "POST", url+"/api/v1/previews", alice, bad)
			assert.Equal(t, 400, resp.StatusCode, bad)
		}
		resp, _ = call(t, "POST", url+"/api/v1/previews", "", `{"system_id":"s1"}`)
		assert.Equal(t, 401, resp.StatusCode)
		resp, _ = call(t, "POST", url+"/api/v1/previews", alice, `{"system_id":"s1"}`, "X-Tenant-ID", "globex")
		assert.Equal(t, 429, resp.StatusCode, "X-Tenant-ID is not trusted: the token's tenant (acme, full) counts")

		assert.Equal(t, []string{"acme:preview.created", "acme:preview.created", "acme:preview.created", "acme:preview.created", "acme:preview.created",
			"globex:preview.created", "acme:preview.deleted", "acme:preview.created"}, events.list())

		resp, b = call(t, "GET", url+"/metrics", "", "")
		require.Equal(t, 200, resp.StatusCode)
		assert.Contains(t, string(b), `hardening_quota_rejections_total{quota="active_previews"} 2`)
		assert.Contains(t, string(b), `hardening_quota_checks_total{quota="active_previews"} 9`)
	})
}

func TestTenancyPreviewsConcurrent(t *testing.T) {
	tenancyModes(t, func(t *testing.T, a *app, url string) {
		tok := mintToken(t, a, "alice", "acme", false)
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[int]int{}
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, _ := call(t, "POST", url+"/api/v1/previews", tok, `{"system_id":"s1"}`)
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		assert.Equal(t, map[int]int{201: 5, 429: 15}, codes)
	})
}

func TestTenancySnapshots(t *testing.T) {
	tenancyModes(t, func(t *testing.T, a *app, url string) {
		now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
		a.now = func() time.Time { return now }
		tok := mintToken(t, a, "alice", "acme", false)
		for i := range 10 {
			body := ""
			if i%2 == 0 {
				body = `{"label":"nightly"}`
			}
			resp, b := call(t, "POST", url+"/api/v1/systems/s1/snapshots", tok, body)
			require.Equal(t, 201, resp.StatusCode, "snapshot %d: %s", i, b)
			assert.Equal(t, `"snapshots";q=10;w=60`, resp.Header.Get("RateLimit-Policy"))
			assert.True(t, strings.HasPrefix(resp.Header.Get("RateLimit"), fmt.Sprintf(`"snapshots";r=%d;t=`, 9-i)), resp.Header.Get("RateLimit"))
			assert.Equal(t, "s1", decodeBody(t, b)["system_id"])
		}
		resp, b := call(t, "POST", url+"/api/v1/systems/s1/snapshots", tok, "")
		require.Equal(t, 429, resp.StatusCode)
		body := decodeBody(t, b)
		assert.Equal(t, "snapshot_rate_exceeded", body["reason"])
		assert.EqualValues(t, 10, body["limit"])
		assert.EqualValues(t, 10, body["current"])
		retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		require.NoError(t, err)
		assert.True(t, retry >= 1 && retry <= 6, "Retry-After %d", retry)
		if a.rdb == nil {
			assert.Equal(t, 6, retry, "60/N seconds")
			assert.Equal(t, `"snapshots";r=0;t=60`, resp.Header.Get("RateLimit"))
		}
		assert.Equal(t, `"snapshots";q=10;w=60`, resp.Header.Get("RateLimit-Policy"))

		resp, _ = call(t, "POST", url+"/api/v1/systems/s1/snapshots", tok, `{"unknown":true}`)
		assert.Equal(t, 400, resp.StatusCode)
		other := mintToken(t, a, "bob", "globex", false)
		resp, _ = call(t, "POST", url+"/api/v1/systems/s1/snapshots", other, "")
		assert.Equal(t, 201, resp.StatusCode, "rates are per tenant")

		resp, b = call(t, "GET", url+"/api/v1/tenancy/quotas/acme", tok, "")
		require.Equal(t, 200, resp.StatusCode)
		usage := decodeBody(t, b)["usage"].(map[string]any)
		assert.EqualValues(t, 10, usage["snapshots_last_minute"])
	})
}

func TestTenancyLLM(t *testing.T) {
	tenancyModes(t, func(t *testing.T, a *app, url string) {
		tok := mintToken(t, a, "alice", "acme", false)
		adm := mintToken(t, a, "root", "ops", true)
		resp, b := call(t, "POST", url+"/api/v1/llm/completions", tok, `{"prompt":"hello","max_cost_usd":0.02}`)
		require.Equal(t, 200, resp.StatusCode, string(b))
		body := decodeBody(t, b)
		assert.InDelta(t, 0.00318, body["cost_usd"], 1e-12, "2,000 + 100 per prompt byte + 20 per output byte (34) micro-dollars")
		assert.InDelta(t, 0.0045, body["reserved_usd"], 1e-12, "the price: the output at its 100-byte maximum")

		resp, b = call(t, "POST", url+"/api/v1/tenancy/quotas/acme/update", adm, `{"llm_monthly_budget_usd":0.0075,"reason":"trial plan"}`)
		require.Equal(t, 200, resp.StatusCode, string(b))
		resp, b = call(t, "POST", url+"/api/v1/llm/completions", tok, `{"prompt":"hello","max_cost_usd":0.02}`)
		require.Equal(t, 402, resp.StatusCode, string(b))
		body = decodeBody(t, b)
		assert.Equal(t, "llm_budget_exceeded", body["reason"])
		assert.InDelta(t, 0.0075, body["limit"], 1e-12)
		assert.InDelta(t, 0.00318, body["spent"], 1e-12)
		assert.InDelta(t, 0.0, body["reserved"], 1e-12)
		assert.InDelta(t, 0.0045, body["requested"], 1e-12, "the price, not max_cost_usd")
		assert.NotEmpty(t, body["resets_at"])
		resp, _ = call(t, "POST", url+"/api/v1/llm/completions", tok, `{"prompt":"h","max_cost_usd":0.02}`)
		assert.Equal(t, 200, resp.StatusCode, "what is left still covers a cheaper request")

		for _, bad := range []string{`{"prompt":"","max_cost_usd":0.02}`, `{"prompt":"x"}`, `{"prompt":"x","max_cost_usd":-1}`, `{"prompt":"x","max_cost_usd":0.02,"model":"y"}`} {
			resp, _ = call(t, "POST", url+"/api/v1/llm/completions", tok, bad)
			assert.Equal(t, 400, resp.StatusCode, bad)
		}
		resp, b = call(t, "GET", url+"/api/v1/tenancy/quotas/acme", tok, "")
		require.Equal(t, 200, resp.StatusCode)
		usage := decodeBody(t, b)["usage"].(map[string]any)
		assert.InDelta(t, 0.00318+0.00278, usage["llm_spent_usd"], 1e-12)
		assert.InDelta(t, 0.0, usage["llm_reserved_usd"], 1e-12)
	})
}

func TestTenancyQuotasAndAudit(t *testing.T) {
	tenancyModes(t, func(t *testing.T, a *app, url string) {
		events := &eventLog{}
		a.eventSinks = append(a.eventSinks, events.sink)
		tok := mintToken(t, a, "alice", "acme", false)
		adm := mintToken(t, a, "root", "ops", true)

		resp, b := call(t, "GET", url+"/api/v1/tenancy/quotas/acme", tok, "")
		require.Equal(t, 200, resp.StatusCode, string(b))
		assert.JSONEq(t, `{"tenant_id":"acme","limits":{"active_previews":5,"snapshots_per_minute":10,"llm_monthly_budget_usd":100},
			"usage":{"active_previews":0,"snapshots_last_minute":0,"llm_spent_usd":0,"llm_reserved_usd":0}}`, string(b))
		resp, _ = call(t, "GET", url+"/api/v1/tenancy/quotas/globex", tok, "")
		assert.Equal(t, 403, resp.StatusCode, "another tenant's quotas")
		resp, _ = call(t, "GET", url+"/api/v1/tenancy/quotas/globex", adm, "")
		assert.Equal(t, 200, resp.StatusCode, "admins read any tenant")
		resp, _ = call(t, "GET", url+"/api/v1/tenancy/quotas/bad%20id", adm, "")
		assert.Equal(t, 400, resp.StatusCode)

		resp, _ = call(t, "POST", url+"/api/v1/tenancy/quotas/acme/update", tok, `{"active_previews":10,"reason":"self-service"}`)
		assert.Equal(t, 403, resp.StatusCode, "only admins change quotas")
		for _, bad := range []string{`{"active_previews":-1,"reason":"x"}`, `{"llm_monthly_budget_usd":-5}`, `{"reason":"nothing"}`, `{"active_previews":10,"colour":"red"}`, `{"active_previews":1.5}`} {
			resp, _ = call(t, "POST", url+"/api/v1/tenancy/quotas/acme/update", adm, bad)
			assert.Equal(t, 400, resp.StatusCode, bad)
		}

		resp, b = call(t, "POST", url+"/api/v1/tenancy/quotas/acme/update", adm, `{"active_previews":10,"reason":"bigger plan"}`)
		require.Equal(t, 200, resp.StatusCode, string(b))
		body := decodeBody(t, b)
		assert.EqualValues(t, 10, body["limits"].(map[string]any)["active_previews"])
		assert.EqualValues(t, 10, body["active_previews"])
		resp, b = call(t, "POST", url+"/api/v1/tenancy/quotas/acme/update", adm, `{"llm_monthly_budget_usd":250.0,"snapshots_per_minute":20,"reason":"enterprise"}`)
		require.Equal(t, 200, resp.StatusCode, string(b))
		resp, b = call(t, "POST", url+"/api/v1/tenancy/quotas/globex/update", adm, `{"active_previews":1,"reason":"abuse"}`)
		require.Equal(t, 200, resp.StatusCode, string(b))

		resp, b = call(t, "GET", url+"/api/v1/tenancy/quotas/acme", tok, "")
		require.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, map[string]any{"active_previews": 10.0, "snapshots_per_minute": 20.0, "llm_monthly_budget_usd": 250.0}, decodeBody(t, b)["limits"])
		assert.Equal(t, []string{"acme:quota.changed", "acme:quota.changed", "globex:quota.changed"}, events.list())

		resp, _ = call(t, "GET", url+"/api/v1/tenancy/audit", tok, "")
		assert.Equal(t, 403, resp.StatusCode)
		resp, b = call(t, "GET", url+"/api/v1/tenancy/audit?tenant_id=acme", adm, "")
		require.Equal(t, 200, resp.StatusCode, string(b))
		body = decodeBody(t, b)
		assert.Nil(t, body["next_cursor"])
		entries := body["entries"].([]any)
		require.Len(t, entries, 3)
		first := entries[0].(map[string]any)
		assert.Equal(t, "acme", first["tenant_id"])
		assert.Equal(t, "active_previews", first["field"])
		assert.EqualValues(t, 5, first["old_value"])
		assert.EqualValues(t, 10, first["new_value"])
		assert.Equal(t, "root", first["changed_by"])
		assert.Equal(t, "bigger plan", first["reason"])
		_, err := time.Parse(time.RFC3339, first["changed_at"].(string))
		assert.NoError(t, err)
		var budget map[string]any
		for _, e := range entries {
			if e.(map[string]any)["field"] == "llm_monthly_budget_usd" {
				budget = e.(map[string]any)
			}
		}
		require.NotNil(t, budget)
		assert.EqualValues(t, 100.0, budget["old_value"])
		assert.EqualValues(t, 250.0, budget["new_value"])

		// Cursor pagination over every tenant.
		seen := 0
		cursor := ""
		for range 10 {
			u := url + "/api/v1/tenancy/audit?limit=2"
			if cursor != "" {
				u += "&cursor=" + cursor
			}
			resp, b = call(t, "GET", u, adm, "")
			require.Equal(t, 200, resp.StatusCode, string(b))
			body = decodeBody(t, b)
			seen += len(body["entries"].([]any))
			next, _ := body["next_cursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		assert.Equal(t, 4, seen)

		resp, b = call(t, "GET", url+"/api/v1/tenancy/audit?since="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339), adm, "")
		require.Equal(t, 200, resp.StatusCode)
		assert.Empty(t, decodeBody(t, b)["entries"])
		for _, q := range []string{"since=yesterday", "limit=0", "limit=x", "cursor=%25garbage", "tenant_id=a%20b"} {
			resp, _ = call(t, "GET", url+"/api/v1/tenancy/audit?"+q, adm, "")
			assert.Equal(t, 400, resp.StatusCode, q)
		}
	})
}

func TestTenancyBadEnv(t *testing.T) {
	t.Setenv("DEFAULT_ACTIVE_PREVIEWS_LIMIT", "many")
	cfg := config{DatabaseURL: "sqlite:///" + t.TempDir() + "/hub.db", AuthSecret: []byte(testAuthSecret)}
	cfg.DBPath, _ = sqlitePath(cfg.DatabaseURL)
	_, err := newApp(t.Context(), cfg, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DEFAULT_ACTIVE_PREVIEWS_LIMIT")
}

func TestSnapshotChunkedBody(t *testing.T) {
	a, url := newTestApp(t)
	tok := mintToken(t, a, "alice", "acme", false)
	for body, want := range map[string]int{"": 201, `{"label":"x"}`: 201, `{"nope":1}`: 400} {
		req, err := http.NewRequest("POST", url+"/api/v1/systems/s1/snapshots", io.NopCloser(strings.NewReader(body)))
		require.NoError(t, err)
		req.ContentLength = -1 // sent chunked
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, want, resp.StatusCode, body)
	}
}

// TestPreviewCreatedEventCarriesNoToken: the preview.created event reaches
// every stream of the tenant, so it must not hand the creator's preview
// token to the other users.
func TestPreviewCreatedEventCarriesNoToken(t *testing.T) {
	a, url := newTestApp(t)
	var mu sync.Mutex
	var events []string
	a.eventSinks = append(a.eventSinks, func(_, typ string, data any) {
		b, err := json.Marshal(data)
		require.NoError(t, err)
		mu.Lock()
		events = append(events, typ+" "+string(b))
		mu.Unlock()
	})
	resp, b := call(t, "POST", url+"/api/v1/previews", mintToken(t, a, "alice", "acme", false), `{"system_id":"s1"}`)
	require.Equal(t, 201, resp.StatusCode, string(b))
	body := decodeBody(t, b)
	require.NotEmpty(t, body["token"], "the creator gets the token")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, events, 1)
	assert.Contains(t, events[0], `"preview_id":"`+body["preview_id"].(string)+`"`)
	assert.NotContains(t, events[0], `"token"`)
	assert.NotContains(t, events[0], body["token"].(string))
}
