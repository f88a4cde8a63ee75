package main

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTenancyLimitAboveMax: a limit the stores cannot hold exactly
// (above tenancy.MaxLimit = 2^53-1) is a 400 invalid_body naming the
// range, and changes nothing; MaxLimit itself is stored and read back
// exactly.
func TestTenancyLimitAboveMax(t *testing.T) {
	tenancyModes(t, func(t *testing.T, a *app, url string) {
		adm := mintToken(t, a, "root", "ops", true)
		for _, body := range []string{
			`{"active_previews":9223372036854775807,"reason":"x"}`,
			`{"snapshots_per_minute":9007199254740992,"reason":"x"}`,
			`{"llm_monthly_budget_usd":9007199255,"reason":"x"}`,
			`{"llm_monthly_budget_usd":1e300,"reason":"x"}`,
		} {
			resp, b := call(t, "POST", url+"/api/v1/tenancy/quotas/acme/update", adm, body)
			require.Equal(t, 400, resp.StatusCode, body)
			p := decodeBody(t, b)
			assert.Equal(t, "invalid_body", p["reason"])
			assert.Contains(t, p["detail"], "9007199254740991", body)
		}
		resp, b := call(t, "GET", url+"/api/v1/tenancy/quotas/acme", adm, "")
		require.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, map[string]any{"active_previews": 5.0, "snapshots_per_minute": 10.0, "llm_monthly_budget_usd": 100.0}, decodeBody(t, b)["limits"], "nothing changed")

		resp, b = call(t, "POST", url+"/api/v1/tenancy/quotas/acme/update", adm, `{"snapshots_per_minute":9007199254740991,"reason":"max"}`)
		require.Equal(t, 200, resp.StatusCode, string(b))
		tok := mintToken(t, a, "alice", "acme", false)
		resp, b = call(t, "POST", url+"/api/v1/systems/s1/snapshots", tok, "")
		require.Equal(t, 201, resp.StatusCode, string(b))
		assert.Equal(t, `"snapshots";q=9007199254740991;w=60`, resp.Header.Get("RateLimit-Policy"))
		assert.Contains(t, resp.Header.Get("RateLimit"), `"snapshots";r=9007199254740990;`)
	})
}

// TestTenancyRedisUpgradesFixedQuotas: a hub started on a Redis written by
// the fixed quotas' key layout finds that tenant's overrides and slots
// under its named quotas.
func TestTenancyRedisUpgradesFixedQuotas(t *testing.T) {
	srv := testRedis(t)
	t.Setenv(envRedisPrefix, srv.Prefix)
	ctx := t.Context()
	srv.Client.HSet(ctx, srv.Prefix+"{t:acme}:limits", "active_previews", "2", "snapshots_per_minute", "3", "llm_monthly_budget_micros", "7000000")
	srv.Client.ZAdd(ctx, srv.Prefix+"{t:acme}:slots", redis.Z{Score: float64(time.Now().Add(time.Hour).UnixMilli()), Member: "pv_old"})
	a, url := newTestApp(t, func(c *config) { c.RedisURL = srv.URL })
	tok := mintToken(t, a, "alice", "acme", false)
	resp, b := call(t, "GET", url+"/api/v1/tenancy/quotas/acme", tok, "")
	require.Equal(t, 200, resp.StatusCode, string(b))
	body := decodeBody(t, b)
	assert.Equal(t, map[string]any{"active_previews": 2.0, "snapshots_per_minute": 3.0, "llm_monthly_budget_usd": 7.0}, body["limits"])
	assert.EqualValues(t, 1, body["usage"].(map[string]any)["active_previews"], "the old process's slot is held")
	resp, _ = call(t, "POST", url+"/api/v1/previews", tok, `{"system_id":"s1"}`)
	assert.Equal(t, 201, resp.StatusCode)
	resp, _ = call(t, "POST", url+"/api/v1/previews", tok, `{"system_id":"s1"}`)
	assert.Equal(t, 429, resp.StatusCode, "the old slot counts against the limit of 2")
}
