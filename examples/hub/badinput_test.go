package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/flags"
	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/tenancy"
)

// badCase is one malformed request. status 0 accepts any 4xx; reason ""
// accepts any non-empty reason.
type badCase struct {
	name       string
	method     string
	path       string // escaped path and query (net/url keeps the escapes as written)
	admin      bool
	noToken    bool
	idempotent bool   // the route honours Idempotency-Key: check the key is not stored
	body       string // sent as is; "" sends no body
	ctype      string // default application/json when body is set
	hdr        []string
	status     int
	reason     string
}

// jsonEndpoint is a hub endpoint with a JSON request body.
type jsonEndpoint struct {
	name, path     string
	admin          bool
	idempotent     bool
	wrongType      string   // a body with a field of the wrong type
	invalid        []string // bodies that decode but fail validation
	anyJSON        bool     // any JSON value is accepted (echo)
	emptyBodyValid bool     // the body is optional (snapshots)
}

var jsonEndpoints = []jsonEndpoint{
	{name: "create preview", path: "/api/v1/previews", idempotent: true, wrongType: `{"system_id":5}`,
		invalid: []string{`{}`, `null`, `{"system_id":""}`, `{"system_id":"` + strings.Repeat("s", 129) + `"}`, `{"system_id":"a\u0000b"}`, `{"system_id":"s","device_preset":"\u007f"}`}},
	{name: "snapshot", path: "/api/v1/systems/sys1/snapshots", idempotent: true, wrongType: `{"label":["x"]}`, emptyBodyValid: true},
	{name: "completion", path: "/api/v1/llm/completions", idempotent: true, wrongType: `{"prompt":"hi","max_cost_usd":"1"}`,
		invalid: []string{`{"prompt":"hi"}`, `{"prompt":"","max_cost_usd":1}`, `{"prompt":"hi","max_cost_usd":-1}`, `{"prompt":"hi","max_cost_usd":0}`,
			`{"prompt":"hi","max_cost_usd":1e300}`, `{"prompt":"hi","max_cost_usd":1e400}`, `{"prompt":"hi","max_cost_usd":1e-9}`,
			`{"prompt":"hi","max_cost_usd":0.000001}`}},
	{name: "quota update", path: "/api/v1/tenancy/quotas/acme/update", admin: true, wrongType: `{"active_previews":"9"}`,
		invalid: []string{`{}`, `{"active_previews":-1}`, `{"active_previews":1.5}`, `{"active_previews":99999999999999999999}`,
			`{"llm_monthly_budget_usd":-1}`, `{"llm_monthly_budget_usd":1e300}`, `{"active_previews":1,"reason":"` + strings.Repeat("r", 501) + `"}`}},
	{name: "flag toggle", path: "/api/v1/feature-flags/llm.streaming/toggle", admin: true, idempotent: true, wrongType: `{"enabled":"yes"}`,
		invalid: []string{`{}`, `{"enabled":null}`, `{"enabled":true,"tenant_id":""}`, `{"enabled":true,"tenant_id":"` + strings.Repeat("t", 201) + `"}`,
			`{"enabled":true,"tenant_id":"a\nb"}`, `{"enabled":true,"reason":"` + strings.Repeat("r", 2001) + `"}`}},
	{name: "echo", path: "/api/v1/echo", idempotent: true, anyJSON: true},
	{name: "egress check", path: "/api/v1/preview-security/egress/check", wrongType: `{"url":1}`,
		invalid: []string{`{}`, `{"url":"https://x","host":"x"}`, `{"port":443}`}},
	{name: "preview jwt", path: "/api/v1/preview-security/jwt", wrongType: `{"preview_id":1}`,
		invalid: []string{`{}`, `{"preview_id":"p","system_id":"s","device_preset":"d","ttl_minutes":-1}`,
			`{"preview_id":"p","system_id":"s","device_preset":"d","ttl_minutes":100000000}`,
			`{"preview_id":"p","system_id":"s","device_preset":"d","ttl_minutes":1e30}`,
			`{"preview_id":"p","system_id":"s","device_preset":"` + strings.Repeat("d", 129) + `"}`, `{"preview_id":"p","system_id":"a\u0000b","device_preset":"d"}`}},
	{name: "stream revoke", path: "/api/v1/streaming/revoke", admin: true, wrongType: `{"user_id":1}`, invalid: []string{`{}`, `null`}},
}

// bodyCases are the malformed bodies sent to every JSON endpoint.
func bodyCases() []badCase {
	huge := `{"x":"` + strings.Repeat("a", maxBodyBytes+1) + `"}`
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	var out []badCase
	for _, e := range jsonEndpoints {
		add := func(name, body, ctype string, status int, reason string) {
			out = append(out, badCase{name: e.name + "/" + name, method: http.MethodPost, path: e.path, admin: e.admin,
				idempotent: e.idempotent, body: body, ctype: ctype, status: status, reason: reason})
		}
		add("malformed", `{"a":`, "", 400, "invalid_body")
		add("unterminated string", `{"a":"b`, "", 400, "invalid_body")
		add("trailing data", `{} {}`, "", 400, "invalid_body")
		add("trailing garbage", `{}x`, "", 400, "invalid_body")
		add("invalid utf-8", "{\"x\":\"\xff\xfe\"}", "", 400, "invalid_body")
		add("lone surrogate bytes", "{\"x\":\"\xed\xa0\x80\"}", "", 400, "invalid_body")
		add("huge", huge, "", 413, "body_too_large")
		add("wrong content type", `{}`, "text/plain", 415, "unsupported_media_type")
		add("form content type", `a=b`, "application/x-www-form-urlencoded", 415, "unsupported_media_type")
		add("deep nesting", deep, "", 400, "invalid_body")
		add("bom", "\xef\xbb\xbf{}", "", 400, "invalid_body")
		if !e.emptyBodyValid {
			add("empty", "", "", 400, "")
			add("whitespace only", " \n\t ", "", 400, "invalid_body")
		}
		if !e.anyJSON {
			add("array", `[]`, "", 400, "invalid_body")
			add("string", `"x"`, "", 400, "invalid_body")
			add("unknown field", `{"no_such_field":1}`, "", 400, "invalid_body")
			add("wrong type", e.wrongType, "", 400, "invalid_body")
			for i, b := range e.invalid {
				add(fmt.Sprintf("invalid value %d", i), b, "", 0, "")
			}
		}
	}
	return out
}

// pathQueryCases are bad path parameters and query strings.
func pathQueryCases() []badCase {
	long := strings.Repeat("x", 8000)
	flag := `{"enabled":true}`
	cases := []badCase{
		{name: "delete preview long id", method: "DELETE", path: "/api/v1/previews/" + long, status: 404, reason: "preview_not_found"},
		{name: "delete preview dotdot", method: "DELETE", path: "/api/v1/previews/%2e%2e", status: 404},
		{name: "delete preview encoded slash", method: "DELETE", path: "/api/v1/previews/..%2f..%2fetc", status: 404, reason: "preview_not_found"},
		{name: "delete preview nul", method: "DELETE", path: "/api/v1/previews/%00", status: 404, reason: "preview_not_found"},
		{name: "delete preview bad utf-8", method: "DELETE", path: "/api/v1/previews/%ff%fe", status: 404, reason: "preview_not_found"},
		{name: "delete preview sql", method: "DELETE", path: "/api/v1/previews/x'%20OR%20'1'='1", status: 404, reason: "preview_not_found"},
		{name: "quotas long tenant", method: "GET", path: "/api/v1/tenancy/quotas/" + long, admin: true, status: 400, reason: "tenant_invalid"},
		{name: "quotas nul tenant", method: "GET", path: "/api/v1/tenancy/quotas/a%00b", admin: true, status: 400, reason: "tenant_invalid"},
		{name: "quotas bad utf-8 tenant", method: "GET", path: "/api/v1/tenancy/quotas/%ff", admin: true, status: 400, reason: "tenant_invalid"},
		{name: "quotas other tenant as user", method: "GET", path: "/api/v1/tenancy/quotas/acme%00", status: 403, reason: "forbidden"},
		{name: "quota update bad tenant", method: "POST", path: "/api/v1/tenancy/quotas/..%2f/update", admin: true, body: `{"active_previews":1}`, status: 400, reason: "tenant_invalid"},
		{name: "quota update long tenant", method: "POST", path: "/api/v1/tenancy/quotas/" + long + "/update", admin: true, body: `{"active_previews":1}`, status: 400, reason: "tenant_invalid"},
		{name: "toggle nul flag", method: "POST", path: "/api/v1/feature-flags/%00/toggle", admin: true, idempotent: true, body: flag, status: 404, reason: "flag_not_found"},
		{name: "toggle long flag", method: "POST", path: "/api/v1/feature-flags/" + long + "/toggle", admin: true, idempotent: true, body: flag, status: 404, reason: "flag_not_found"},
		{name: "toggle dotdot flag", method: "POST", path: "/api/v1/feature-flags/%2e%2e/toggle", admin: true, idempotent: true, body: flag, status: 404},
		{name: "snapshot long system", method: "POST", path: "/api/v1/systems/" + long + "/snapshots", idempotent: true, status: 400, reason: "invalid_path"},
		{name: "snapshot control system", method: "POST", path: "/api/v1/systems/a%0d%0ab/snapshots", idempotent: true, status: 400, reason: "invalid_path"},
		{name: "container dotdot", method: "GET", path: "/api/v1/preview-security/container/verify/..%2f..%2fetc", admin: true, status: 400, reason: "invalid_container_id"},
		{name: "container long", method: "GET", path: "/api/v1/preview-security/container/verify/" + long, admin: true, status: 400, reason: "invalid_container_id"},
		{name: "container junk", method: "GET", path: "/api/v1/preview-security/container/verify/%ff%00", admin: true, status: 400, reason: "invalid_container_id"},
		{name: "preview page nul", method: "GET", path: "/preview/%00/", noToken: true, status: 401},
		{name: "preview page long", method: "GET", path: "/preview/" + long + "/", noToken: true, status: 401},
		{name: "unknown endpoint junk", method: "GET", path: "/api/v1/%ff%00/" + long, status: 404, reason: "not_found"},
	}
	for _, q := range []string{"limit=-1", "limit=0", "limit=abc", "limit=1e3", "limit=99999999999999999999", "limit=%zz",
		"since=garbage", "since=2026-13-45T00:00:00Z", "cursor=garbage", "cursor=" + long, "tenant_id=%00", "tenant_id=" + long, "x=%"} {
		cases = append(cases, badCase{name: "tenancy audit " + q[:min(len(q), 20)], method: "GET", path: "/api/v1/tenancy/audit?" + q, admin: true, status: 400, reason: "invalid_query"})
	}
	for _, q := range []string{"limit=-1", "limit=0", "limit=abc", "limit=100000", "limit=%zz", "since=garbage", "until=garbage",
		"cursor=garbage", "cursor=" + long, "flag=%00", "tenant_id=" + long, "changed_by=a%0ab", "x=%"} {
		cases = append(cases, badCase{name: "flag audit " + q[:min(len(q), 20)], method: "GET", path: "/api/v1/feature-flags/audit?" + q, admin: true, status: 400, reason: "invalid_query"})
	}
	for _, p := range []string{"/api/v1/streams/events", "/api/v1/streams/ws"} {
		var hdr []string
		if strings.HasSuffix(p, "/ws") {
			hdr = []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}
		}
		cases = append(cases,
			badCase{name: p + " garbage token", method: "GET", path: p + "?access_token=garbage", noToken: true, hdr: hdr, status: 401},
			badCase{name: p + " long token", method: "GET", path: p + "?access_token=" + long, noToken: true, hdr: hdr, status: 401},
			badCase{name: p + " no token", method: "GET", path: p, noToken: true, hdr: hdr, status: 401},
		)
	}
	cases = append(cases, badCase{name: "ws without handshake", method: "GET", path: "/api/v1/streams/ws", status: 426, reason: "websocket_upgrade_required"})
	return cases
}

// headerCases are bad header values a net/http client can still send.
func headerCases() []badCase {
	valid := `{"system_id":"sys"}`
	pv := func(name string, status int, reason string, hdr ...string) badCase {
		return badCase{name: name, method: "POST", path: "/api/v1/previews", body: valid, hdr: hdr, status: status, reason: reason}
	}
	return []badCase{
		pv("idempotency key too long", 400, "idempotency_key_invalid", "Idempotency-Key", strings.Repeat("k", idempotency.MaxKeyLength+1)),
		pv("idempotency key non-ascii", 400, "idempotency_key_invalid", "Idempotency-Key", "k\xc3\xa9y"),
		pv("idempotency key space", 400, "idempotency_key_invalid", "Idempotency-Key", "a b"),
		pv("idempotency key empty quotes", 400, "idempotency_key_invalid", "Idempotency-Key", `""`),
		pv("idempotency key params", 400, "idempotency_key_invalid", "Idempotency-Key", `"a";x=1`),
		pv("idempotency key bad escape", 400, "idempotency_key_invalid", "Idempotency-Key", `"a\n"`),
		pv("bearer garbage", 401, "unauthenticated", "Authorization", "Bearer garbage"),
		pv("bearer huge", 401, "unauthenticated", "Authorization", "Bearer "+strings.Repeat("a", 9000)),
		pv("bearer none alg", 401, "unauthenticated", "Authorization", "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSIsInRpZCI6ImFjbWUiLCJyb2xlcyI6WyJhZG1pbiJdfQ."),
		pv("basic auth", 401, "unauthenticated", "Authorization", "Basic YWxpY2U6cHc="),
		pv("content type json with junk", 415, "unsupported_media_type", "Content-Type", "text/json"),
	}
}

// hubState is what a rejected request must not change.
type hubState struct {
	Previews      int
	Usage         tenancy.Usage
	Limits        tenancy.Limits
	QuotaAudit    int
	Flags         []flags.Status
	GlobalFlags   []flags.Status
	FlagAudit     int
	StreamsActive any
}

func snapshotState(t *testing.T, a *app) hubState {
	t.Helper()
	ctx := tenancy.WithTenant(context.Background(), "acme")
	var s hubState
	require.NoError(t, a.db.GetContext(ctx, &s.Previews, `SELECT COUNT(*) FROM hub_previews`))
	q := a.tenancy().quotas
	var err error
	s.Usage, err = q.Usage(ctx, "acme")
	require.NoError(t, err)
	s.Limits, err = q.Limits(ctx, "acme")
	require.NoError(t, err)
	page, err := q.Audit(ctx, tenancy.AuditQuery{Limit: 1000})
	require.NoError(t, err)
	s.QuotaAudit = len(page.Entries)
	s.Flags, s.GlobalFlags = a.flagClient().List("acme"), a.flagClient().List("")
	fpage, err := a.flagClient().Audit(ctx, flags.AuditQuery{Limit: flags.MaxAuditLimit})
	require.NoError(t, err)
	s.FlagAudit = len(fpage.Entries)
	s.StreamsActive = a.streams().reg.Status()
	return s
}

// rawExchange sends raw bytes on a new TCP connection and reads one
// response (for header values net/http clients refuse to send).
func rawExchange(t *testing.T, base, raw string) (*http.Response, []byte) {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	go func() { // the server may answer before reading it all
		if _, err := io.WriteString(conn, raw); err == nil {
			_ = conn.(*net.TCPConn).CloseWrite()
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// checkProblem asserts a 4xx problem+json answer with a reason.
func checkProblem(t *testing.T, c badCase, resp *http.Response, b []byte) {
	t.Helper()
	require.Less(t, resp.StatusCode, 500, "never a 5xx: %s", b)
	require.GreaterOrEqual(t, resp.StatusCode, 400, "%s", b)
	if c.status != 0 {
		assert.Equal(t, c.status, resp.StatusCode, "%s", b)
	}
	assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"), "%s", b)
	var p map[string]any
	require.NoError(t, json.Unmarshal(b, &p), "%s", b)
	reason, _ := p["reason"].(string)
	assert.NotEmpty(t, reason, "%s", b)
	if c.reason != "" {
		assert.Equal(t, c.reason, reason, "%s", b)
	}
	assert.EqualValues(t, resp.StatusCode, p["status"])
}

// runBadCases sends every case and checks the answer and that the hub's
// state did not change (and, on idempotent routes, that the key was not
// stored: the same request again is not a replay).
func runBadCases(t *testing.T, a *app, base string, cases []badCase) {
	userTok := mintToken(t, a, "alice", "acme", false)
	adminTok := mintToken(t, a, "root", "acme", true)
	before := snapshotState(t, a)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := userTok
			switch {
			case c.noToken:
				tok = ""
			case c.admin:
				tok = adminTok
			}
			hdr := append([]string(nil), c.hdr...)
			if c.idempotent {
				hdr = append(hdr, "Idempotency-Key", newID(fmt.Sprintf("bad-%d-", i)))
			}
			if c.ctype != "" {
				hdr = append(hdr, "Content-Type", c.ctype)
			}
			send := func() (*http.Response, []byte) { return call(t, c.method, base+c.path, tok, c.body, hdr...) }
			resp, b := send()
			checkProblem(t, c, resp, b)
			if c.idempotent {
				resp, b = send()
				checkProblem(t, c, resp, b)
				assert.Empty(t, resp.Header.Get(idempotency.DefaultReplayHeader), "the rejected request's key was stored: %s", b)
			}
			assert.Equal(t, before, snapshotState(t, a), "a rejected request changed the hub's state")
		})
	}
}

// rawCase is a request written byte for byte on the wire.
type rawCase struct {
	name string
	head string // request line and headers, without the final CRLF
	body string
}

func rawCases(userTok string) []rawCase {
	auth := "Authorization: Bearer " + userTok + "\r\n"
	post := func(name, extra string) rawCase {
		body := `{"system_id":"sys"}`
		return rawCase{name: name, head: "POST /api/v1/previews HTTP/1.1\r\nHost: hub\r\n" + auth +
			"Content-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n" + extra, body: body}
	}
	return []rawCase{
		post("idempotency key with CR", "Idempotency-Key: a\rb\r\n"),
		// net/http takes a bare LF as a line end: the injected line is a
		// header of its own, here a second, conflicting Content-Length.
		post("idempotency key with LF", "Idempotency-Key: a\nContent-Length: 5\r\n"),
		post("idempotency key with NUL", "Idempotency-Key: a\x00b\r\n"),
		post("idempotency key with DEL", "Idempotency-Key: a\x7fb\r\n"),
		post("idempotency key folded", "Idempotency-Key: a\r\n b\r\n"),
		post("idempotency key twice", "Idempotency-Key: a1\r\nIdempotency-Key: a2\r\n"),
		post("idempotency key with non-ascii", "Idempotency-Key: a\xffb\r\n"),
		post("content type with CR", "X-Other: 1\rContent-Type: text/plain\r\n"),
		post("authorization with LF", "Authorization: Bearer x\nadmin\r\n"),
		post("header name with space", "Idempotency Key: a\r\n"),
		post("oversize header", "X-Big: "+strings.Repeat("b", http.DefaultMaxHeaderBytes+4096)+"\r\n"),
		post("content length twice", "Content-Length: 3\r\n"),
		post("content length and chunked", "Transfer-Encoding: chunked\r\n"),
		{name: "request line junk", head: "POST /api/v1/previews\x00 HTTP/1.1\r\nHost: hub\r\n" + auth},
		{name: "chunked junk", head: "POST /api/v1/previews HTTP/1.1\r\nHost: hub\r\n" + auth +
			"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n", body: "zz\r\n{}\r\n0\r\n\r\n"},
		{name: "chunked over limit", head: "POST /api/v1/echo HTTP/1.1\r\nHost: hub\r\n" + auth +
			"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
			body: fmt.Sprintf("%x\r\n", maxBodyBytes+10) + strings.Repeat("a", maxBodyBytes+10) + "\r\n0\r\n\r\n"},
	}
}

// runRawCases sends each raw request: a 4xx (problem+json when the hub
// answers; net/http itself answers framing errors in text/plain before
// any handler runs), never a 5xx, and no state change.
func runRawCases(t *testing.T, a *app, base string) {
	before := snapshotState(t, a)
	for _, c := range rawCases(mintToken(t, a, "alice", "acme", false)) {
		t.Run(c.name, func(t *testing.T) {
			resp, b := rawExchange(t, base, c.head+"Connection: close\r\n\r\n"+c.body)
			require.GreaterOrEqual(t, resp.StatusCode, 400, "%s", b)
			require.Less(t, resp.StatusCode, 500, "never a 5xx: %s", b)
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/") {
				checkProblem(t, badCase{}, resp, b)
			}
			t.Logf("%d %s %.80s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
			assert.Equal(t, before, snapshotState(t, a), "a rejected request changed the hub's state")
		})
	}
}

// TestBadInput sends malformed requests to every hub endpoint, on SQLite
// on Redis and on Postgres: each is a 4xx problem+json with a reason, never a 5xx, and
// leaves no trace (no preview, no quota use, no flag change, no audit row,
// no stored idempotency key).
func TestBadInput(t *testing.T) {
	modes := []struct {
		name string
		mods func(t *testing.T) []func(*config)
	}{
		{"sqlite", func(*testing.T) []func(*config) { return nil }},
		{"redis", func(t *testing.T) []func(*config) {
			srv := testRedis(t)
			return []func(*config){func(c *config) { c.RedisURL, c.RedisPrefix = srv.URL, srv.Prefix }}
		}},
		{"postgres", func(t *testing.T) []func(*config) { return []func(*config){withPostgres(testPostgres(t))} }},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			a, base := newTestApp(t, m.mods(t)...)
			t.Run("body", func(t *testing.T) { runBadCases(t, a, base, bodyCases()) })
			t.Run("path and query", func(t *testing.T) { runBadCases(t, a, base, pathQueryCases()) })
			t.Run("header", func(t *testing.T) { runBadCases(t, a, base, headerCases()) })
			t.Run("raw", func(t *testing.T) { runRawCases(t, a, base) })
			t.Run("control: a valid request's key is stored", func(t *testing.T) {
				tok, key := mintToken(t, a, "alice", "acme", false), newID("good-")
				_, b := call(t, "POST", base+"/api/v1/echo", tok, `{"a":1}`, "Idempotency-Key", key)
				resp, b2 := call(t, "POST", base+"/api/v1/echo", tok, `{"a":1}`, "Idempotency-Key", key)
				assert.Equal(t, "true", resp.Header.Get(idempotency.DefaultReplayHeader))
				assert.Equal(t, string(b), string(b2))
			})
		})
	}
}
