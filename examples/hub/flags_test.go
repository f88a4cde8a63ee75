package main

import (
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type published struct {
	tenant, typ string
	data        any
}

// recordEvents captures what the flags feature publishes to the streams.
func recordEvents(a *app) func() []published {
	var mu sync.Mutex
	var got []published
	a.eventSinks = append(a.eventSinks, func(tenant, typ string, data any) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, published{tenant, typ, data})
	})
	return func() []published {
		mu.Lock()
		defer mu.Unlock()
		return append([]published(nil), got...)
	}
}

func flagByName(t *testing.T, body map[string]any, name string) map[string]any {
	t.Helper()
	for _, f := range body["flags"].([]any) {
		if m := f.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("flag %s not listed", name)
	return nil
}

func TestFlagsEndpoints(t *testing.T) {
	a, base := newTestApp(t)
	events := recordEvents(a)
	adminTok := mintToken(t, a, "root", "acme", true)
	aliceTok := mintToken(t, a, "alice", "acme", false)
	bobTok := mintToken(t, a, "bob", "globex", false)

	// Listing needs a bearer token and shows the registered defaults.
	resp, _ := call(t, "GET", base+"/api/v1/feature-flags", "", "")
	assert.Equal(t, 401, resp.StatusCode)
	resp, b := call(t, "GET", base+"/api/v1/feature-flags", aliceTok, "")
	require.Equal(t, 200, resp.StatusCode, string(b))
	body := decodeBody(t, b)
	assert.Equal(t, "acme", body["tenant_id"])
	f := flagByName(t, body, "llm.streaming")
	assert.Equal(t, false, f["enabled"])
	assert.Equal(t, "default", f["source"])
	assert.NotEmpty(t, f["description"])
	assert.Equal(t, true, flagByName(t, body, "preview.device-presets")["enabled"])

	toggle := func(tok, flag, body string) (int, map[string]any) {
		resp, b := call(t, "POST", base+"/api/v1/feature-flags/"+flag+"/toggle", tok, body)
		var m map[string]any
		if len(b) > 0 {
			m = decodeBody(t, b)
		}
		return resp.StatusCode, m
	}

	// Non-admins may not toggle; unknown flags are 404; bad bodies 400.
	code, _ := toggle(aliceTok, "llm.streaming", `{"enabled":true}`)
	assert.Equal(t, 403, code)
	code, _ = toggle(adminTok, "no.such.flag", `{"enabled":true}`)
	assert.Equal(t, 404, code)
	code, _ = toggle(adminTok, "BAD%20NAME", `{"enabled":true}`)
	assert.Equal(t, 404, code)
	for _, bad := range []string{``, `{}`, `{"enabled":"yes"}`, `{"enabled":true,"extra":1}`, `{"enabled":true,"tenant_id":""}`,
		`{"enabled":true,"tenant_id":"a\u0000b"}`, `[`} {
		code, m := toggle(adminTok, "llm.streaming", bad)
		assert.Equal(t, 400, code, "body %q: %v", bad, m)
	}

	// A tenant override.
	code, m := toggle(adminTok, "llm.streaming", `{"enabled":true,"tenant_id":"acme","reason":"beta customer"}`)
	require.Equal(t, 200, code, m)
	assert.Equal(t, "llm.streaming", m["flag"])
	assert.Equal(t, "acme", m["tenant_id"])
	assert.Nil(t, m["old_value"])
	assert.Equal(t, true, m["new_value"])
	assert.Equal(t, "root", m["changed_by"])
	_, err := time.Parse(time.RFC3339Nano, m["changed_at"].(string))
	require.NoError(t, err)

	_, b = call(t, "GET", base+"/api/v1/feature-flags", aliceTok, "")
	f = flagByName(t, decodeBody(t, b), "llm.streaming")
	assert.Equal(t, true, f["enabled"])
	assert.Equal(t, "override", f["source"])
	_, b = call(t, "GET", base+"/api/v1/feature-flags", bobTok, "")
	assert.Equal(t, false, flagByName(t, decodeBody(t, b), "llm.streaming")["enabled"], "globex is not affected")

	// A global toggle (tenant_id omitted), then the same value again: recorded with old = new.
	code, m = toggle(adminTok, "preview.device-presets", `{"enabled":false,"reason":"incident 42"}`)
	require.Equal(t, 200, code, m)
	assert.Nil(t, m["tenant_id"])
	code, m = toggle(adminTok, "preview.device-presets", `{"enabled":false}`)
	require.Equal(t, 200, code, m)
	assert.Equal(t, false, m["old_value"])
	assert.Equal(t, false, m["new_value"])
	_, b = call(t, "GET", base+"/api/v1/feature-flags", bobTok, "")
	f = flagByName(t, decodeBody(t, b), "preview.device-presets")
	assert.Equal(t, false, f["enabled"])
	assert.Equal(t, "global", f["source"])

	// Every toggle is published to the streams; a global one to "" (all tenants).
	ev := events()
	require.Len(t, ev, 3)
	assert.Equal(t, "acme", ev[0].tenant)
	assert.Equal(t, "flag.toggled", ev[0].typ)
	assert.Equal(t, "", ev[1].tenant)

	// The audit: admin only, newest first, filters, cursor pagination.
	resp, _ = call(t, "GET", base+"/api/v1/feature-flags/audit", aliceTok, "")
	assert.Equal(t, 403, resp.StatusCode)
	resp, _ = call(t, "GET", base+"/api/v1/feature-flags/audit", "", "")
	assert.Equal(t, 401, resp.StatusCode)
	audit := func(q string) (int, map[string]any) {
		resp, b := call(t, "GET", base+"/api/v1/feature-flags/audit"+q, adminTok, "")
		return resp.StatusCode, decodeBody(t, b)
	}
	code, m = audit("")
	require.Equal(t, 200, code)
	entries := m["entries"].([]any)
	require.Len(t, entries, 3)
	assert.Nil(t, m["next_cursor"])
	newest := entries[0].(map[string]any)
	assert.Equal(t, "preview.device-presets", newest["flag_name"])
	assert.Equal(t, false, newest["old_value"])
	oldest := entries[2].(map[string]any)
	assert.Equal(t, "llm.streaming", oldest["flag_name"])
	assert.Equal(t, "acme", oldest["tenant_id"])
	assert.Equal(t, "beta customer", oldest["reason"])
	assert.Equal(t, "root", oldest["changed_by"])

	code, m = audit("?flag=llm.streaming")
	require.Equal(t, 200, code)
	assert.Len(t, m["entries"], 1)
	code, m = audit("?tenant_id=acme&changed_by=root")
	require.Equal(t, 200, code)
	assert.Len(t, m["entries"], 1)
	code, m = audit("?changed_by=alice")
	require.Equal(t, 200, code)
	assert.Empty(t, m["entries"])
	code, m = audit("?since=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)))
	require.Equal(t, 200, code)
	assert.Empty(t, m["entries"])

	var seen []string
	q := "?limit=2"
	for range 5 {
		code, m = audit(q)
		require.Equal(t, 200, code, m)
		for _, e := range m["entries"].([]any) {
			seen = append(seen, fmt.Sprint(e.(map[string]any)["id"]))
		}
		if m["next_cursor"] == nil {
			break
		}
		q = "?limit=2&cursor=" + url.QueryEscape(m["next_cursor"].(string))
	}
	assert.Len(t, seen, 3)

	for _, bad := range []string{"?limit=0", "?limit=1001", "?limit=x", "?since=yesterday", "?cursor=zzz", "?flag=BAD"} {
		code, m = audit(bad)
		assert.Equal(t, 400, code, "%s: %v", bad, m)
	}

	// The metrics carry the names.
	resp, b = call(t, "GET", base+"/metrics", "", "")
	require.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(b), `hardening_flags_changes_total{flag="llm.streaming"} 1`)
	assert.Contains(t, string(b), "hardening_flags_evaluations_total")
	assert.Contains(t, string(b), "hardening_flags_unknown_total")
}

// TestFlagsRedisMode: with REDIS_URL the hub keeps flags in Redis.
func TestFlagsRedisMode(t *testing.T) {
	srv := testRedis(t)
	a, base := newTestApp(t, func(c *config) { c.RedisURL, c.RedisPrefix = srv.URL, srv.Prefix })
	adminTok := mintToken(t, a, "root", "acme", true)
	resp, b := call(t, "POST", base+"/api/v1/feature-flags/llm.streaming/toggle", adminTok, `{"enabled":true}`)
	require.Equal(t, 200, resp.StatusCode, string(b))
	n, err := srv.Client.LLen(t.Context(), srv.Prefix+"{flags}:audit").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "the audit record is in Redis")
	_, b = call(t, "GET", base+"/api/v1/feature-flags", adminTok, "")
	assert.Equal(t, true, flagByName(t, decodeBody(t, b), "llm.streaming")["enabled"])
}
