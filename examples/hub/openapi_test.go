package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loadOpenAPI parses and validates the embedded document.
func loadOpenAPI(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapiDoc)
	require.NoError(t, err)
	require.True(t, doc.IsOpenAPI31OrLater(), "the document must be OpenAPI 3.1")
	require.NoError(t, doc.Validate(context.Background()))
	return doc
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	loadOpenAPI(t)
}

// docPaths maps a ServeMux pattern (without method) to the document's
// paths: "/{$}" is "/", "{name...}" is "{name}", and a subtree pattern
// ending in "/" is its root plus "{path}" for everything below it.
func docPaths(pattern string) []string {
	if pattern == "/{$}" {
		return []string{"/"}
	}
	p := strings.TrimSuffix(pattern, "{$}")
	p = regexp.MustCompile(`\{([a-z_]+)\.\.\.\}`).ReplaceAllString(p, "{$1}")
	if strings.HasSuffix(pattern, "/") {
		return []string{p, p + "{path}"}
	}
	return []string{p}
}

// opKey is "METHOD path" of the document.
func opKey(method, path string) string { return strings.ToUpper(method) + " " + path }

// docOperations lists every operation of the document by opKey.
func docOperations(doc *openapi3.T) map[string]*openapi3.Operation {
	ops := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops[opKey(method, path)] = op
		}
	}
	return ops
}

func securitySchemes(op *openapi3.Operation) []string {
	var out []string
	for _, req := range *op.Security {
		for name := range req {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// TestOpenAPIRoutesMatchDocument compares the route table with the
// document both ways, with access level, idempotency and security.
func TestOpenAPIRoutesMatchDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	a, _ := newTestApp(t)
	ops := docOperations(doc)
	routed := map[string]bool{}
	for _, rt := range a.routes() {
		require.NotEmpty(t, rt.Method, "route %s: every hub route names its method", rt.Pattern)
		for _, path := range docPaths(rt.Pattern) {
			key := opKey(rt.Method, path)
			routed[key] = true
			op := ops[key]
			if !assert.NotNil(t, op, "route %s %s (pattern %q) is not in openapi.json", rt.Method, path, rt.Pattern) {
				continue
			}
			require.NotNil(t, op.Security, "%s: security must be set per operation", key)
			schemes := securitySchemes(op)
			switch {
			case rt.Access == admin || rt.Access == user:
				assert.Equal(t, []string{"bearerAuth"}, schemes, key)
			case strings.HasPrefix(path, "/preview/"):
				assert.Equal(t, []string{"previewCookie", "previewQuery", "previewToken"}, schemes, key)
			case strings.HasPrefix(path, "/api/v1/streams/"):
				assert.Equal(t, []string{"bearerAuth", "streamCookie", "streamQuery"}, schemes, key)
			default:
				assert.Empty(t, schemes, "%s: a public route has security []", key)
			}
			role, _ := op.Extensions["x-required-role"].(string)
			if rt.Access == admin {
				assert.Equal(t, "admin", role, "%s: admin operations carry x-required-role: admin", key)
				assert.Contains(t, op.Description, "`admin` role", key)
				assert.NotNil(t, op.Responses.Status(http.StatusForbidden), "%s: admin operations document 403", key)
			} else {
				assert.Empty(t, role, key)
			}
			if rt.Access != public {
				assert.NotNil(t, op.Responses.Status(http.StatusUnauthorized), "%s: authenticated operations document 401", key)
			}
			hasKey := op.Parameters.GetByInAndName("header", "Idempotency-Key") != nil
			assert.Equal(t, rt.Idempotent, hasKey, "%s: Idempotency-Key is documented exactly on idempotent routes", key)
			if rt.Idempotent {
				for _, st := range []int{http.StatusConflict, http.StatusUnprocessableEntity} {
					assert.NotNil(t, op.Responses.Status(st), "%s: idempotent operations document %d", key, st)
				}
			}
		}
	}
	for key := range ops {
		assert.True(t, routed[key], "openapi.json documents %s, which the hub does not route", key)
	}
}

// TestOpenAPIDocumentedOperationsAreServed calls every documented
// operation on a live hub: none may fall through to the catch-all 404.
func TestOpenAPIDocumentedOperationsAreServed(t *testing.T) {
	doc := loadOpenAPI(t)
	a, base := newTestApp(t)
	tok := mintToken(t, a, "root", "acme", true)
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: noFollow}
	for key, op := range docOperations(doc) {
		method, path, _ := strings.Cut(key, " ")
		for _, p := range op.Parameters {
			if p.Value.In == "path" {
				path = strings.ReplaceAll(path, "{"+p.Value.Name+"}", "x")
			}
		}
		var body io.Reader
		if op.RequestBody != nil {
			body = strings.NewReader("{}")
		}
		ctx, cancel := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(ctx, method, base+path, body)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		require.NoError(t, err, key)
		b := []byte{}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			b, _ = io.ReadAll(resp.Body)
		}
		resp.Body.Close()
		cancel()
		assert.False(t, isCatchAll(resp, b), "%s (%s) is documented but answered by the catch-all 404", key, path)
	}
}

// TestOpenAPIErrorsAreProblems checks the document's own rules: every
// error response is application/problem+json with the Problem schema and
// the reasons it can carry, every reason is documented in docs/, every
// operation has an id, a summary and its security, and every operation
// under /api/ and /preview/ may answer 503 schema_pending (a hub waiting
// for its migrations, see pending.go).
func TestOpenAPIErrorsAreProblems(t *testing.T) {
	doc := loadOpenAPI(t)
	var prose strings.Builder
	files, err := filepath.Glob("../../docs/*.md")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		prose.Write(b)
	}
	for key, op := range docOperations(doc) {
		assert.NotEmpty(t, op.OperationID, key)
		assert.NotEmpty(t, op.Summary, key)
		assert.NotNil(t, op.Security, "%s: security must be set per operation", key)
		assert.NotNil(t, op.Responses.Status(http.StatusInternalServerError), "%s: any operation may answer 500 internal_error", key)
		_, path, _ := strings.Cut(key, " ")
		waitsForSchema := strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/preview/")
		schemaPending := false
		for status, rr := range op.Responses.Map() {
			if status[0] != '4' && status[0] != '5' {
				continue
			}
			where := key + " " + status
			mts := slices.Collect(func(yield func(string) bool) {
				for mt := range rr.Value.Content {
					if !yield(mt) {
						return
					}
				}
			})
			if !assert.Equal(t, []string{"application/problem+json"}, mts, where) {
				continue
			}
			s := rr.Value.Content["application/problem+json"].Schema.Value
			require.Len(t, s.AllOf, 2, where)
			assert.Equal(t, "#/components/schemas/Problem", s.AllOf[0].Ref, where)
			reasons := s.AllOf[1].Value.Properties["reason"].Value.Enum
			assert.NotEmpty(t, reasons, where)
			schemaPending = schemaPending || (status == "503" && slices.Contains(reasons, any("schema_pending")))
			for _, r := range reasons {
				assert.True(t, strings.Contains(prose.String(), "`"+r.(string)+"`"), "%s: reason %q is not documented in docs/", where, r)
			}
			for name, ex := range rr.Value.Content["application/problem+json"].Examples {
				v := ex.Value.Value.(map[string]any)
				assert.Contains(t, reasons, v["reason"], "%s example %s", where, name)
				assert.EqualValues(t, status, fmt.Sprint(v["status"]), "%s example %s", where, name)
			}
		}
		if waitsForSchema {
			assert.True(t, schemaPending, "%s: answers 503 schema_pending while migrations are pending; document it", key)
		}
	}
}

// recTB records the errors checkContract reports.
type recTB struct {
	testing.TB
	errs []string
}

func (r *recTB) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}
func (r *recTB) Helper() {}

// TestCheckContract shows what the validator accepts and rejects.
func TestCheckContract(t *testing.T) {
	const problem404 = `{"type":"x","title":"Not Found","status":404,"reason":"%s"}`
	tests := []struct {
		name            string
		method, path    string
		body            string
		status          int
		ctype, respBody string
		wantErr         string
	}{
		{"ok", "GET", "/livez", "", 200, "application/json", `{"status":"ok"}`, ""},
		{"undocumented field", "GET", "/livez", "", 200, "application/json", `{"status":"ok","x":1}`, "additional properties"},
		{"undocumented status", "GET", "/livez", "", 418, "application/problem+json", `{}`, "status is not supported"},
		{"error as JSON", "DELETE", "/api/v1/previews/p", "", 404, "application/json", fmt.Sprintf(problem404, "preview_not_found"), "want application/problem+json"},
		{"reason not documented", "DELETE", "/api/v1/previews/p", "", 404, "application/problem+json", fmt.Sprintf(problem404, "not_found"), "allowed values"},
		{"documented reason", "DELETE", "/api/v1/previews/p", "", 404, "application/problem+json", fmt.Sprintf(problem404, "preview_not_found"), ""},
		{"undocumented path", "GET", "/api/v1/nothing", "", 200, "application/json", `{}`, "not in openapi.json"},
		{"catch-all 404", "GET", "/api/v1/nothing", "", 404, "application/problem+json", `{"type":"x","title":"Not Found","status":404,"reason":"not_found","detail":"no such endpoint"}`, ""},
		{"invalid request accepted", "POST", "/api/v1/previews", `{"nope":1}`, 400, "application/problem+json", `{"type":"x","title":"Bad Request","status":400,"reason":"invalid_body"}`, ""},
		{"invalid request served", "POST", "/api/v1/previews", `{"nope":1}`, 201, "application/json", `{}`, "does not allow"},
		{"body where none is documented", "DELETE", "/api/v1/previews/p", "", 204, "application/json", `{}`, "declares no body"},
		{"HEAD of a GET operation", "HEAD", "/livez", "", 200, "application/json", ``, ""},
		{"preview subtree", "GET", "/preview/pv_1/a/b/c.js", "", 200, "text/html; charset=utf-8", `<p>`, ""},
		{"wrong media type", "GET", "/", "", 200, "application/json", `{}`, "Content-Type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "http://hub.test"+tc.path, strings.NewReader(tc.body))
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {tc.ctype}}}
			rec := &recTB{TB: t}
			checkContract(rec, req, []byte(tc.body), resp, []byte(tc.respBody))
			if tc.wantErr == "" {
				assert.Empty(t, rec.errs)
				return
			}
			require.NotEmpty(t, rec.errs)
			assert.Contains(t, strings.Join(rec.errs, "\n"), tc.wantErr)
		})
	}
}

// TestOpenAPIContractTour drives every operation of a live hub through
// contractTransport: the success answers and the documented errors that
// the feature tests do not reach through call (quota rejections with
// their headers, idempotent replays and conflicts, the preview cookie
// exchange, streams).
func TestOpenAPIContractTour(t *testing.T) {
	a, base := newTestApp(t)
	user := mintToken(t, a, "alice", "acme", false)
	root := mintToken(t, a, "root", "acme", true)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{Transport: contractTransport(t, nil), Jar: jar, CheckRedirect: noFollow, Timeout: 10 * time.Second}
	do := func(method, path, token, body string, hdr ...string) (*http.Response, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, base+path, rd)
		require.NoError(t, err)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		var m map[string]any
		if strings.Contains(resp.Header.Get("Content-Type"), "json") && len(b) > 0 && b[0] == '{' {
			m = decodeBody(t, b)
		}
		return resp, m
	}
	status := func(want int, resp *http.Response, m map[string]any) {
		t.Helper()
		assert.Equal(t, want, resp.StatusCode, "%s %s: %v", resp.Request.Method, resp.Request.URL.Path, m)
	}

	// Public operations.
	for _, p := range []string{"/", "/livez", "/readyz", "/readyz?verbose", "/metrics", "/openapi.json"} {
		resp, m := do("GET", p, "", "")
		status(200, resp, m)
	}
	resp, m := do("GET", "/api/v1/whoami", "", "")
	status(401, resp, m)
	resp, m = do("GET", "/api/v1/whoami", "junk", "")
	status(401, resp, m)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
	resp, m = do("GET", "/api/v1/whoami", user, "")
	status(200, resp, m)

	// Tight limits for acme, set through the admin API (audited).
	resp, m = do("POST", "/api/v1/tenancy/quotas/acme/update", user, `{"active_previews":1}`)
	status(403, resp, m)
	resp, m = do("POST", "/api/v1/tenancy/quotas/acme/update", root, `{}`)
	status(400, resp, m)
	resp, m = do("POST", "/api/v1/tenancy/quotas/acme/update", root, `{"active_previews":1,"snapshots_per_minute":1,"llm_monthly_budget_usd":0.01,"reason":"contract tour"}`)
	status(200, resp, m)
	resp, m = do("GET", "/api/v1/tenancy/quotas/acme", user, "")
	status(200, resp, m)
	resp, m = do("GET", "/api/v1/tenancy/quotas/globex", user, "")
	status(403, resp, m)
	resp, m = do("GET", "/api/v1/tenancy/audit?tenant_id=acme&limit=1", root, "")
	status(200, resp, m)
	resp, m = do("GET", "/api/v1/tenancy/audit?limit=0", root, "")
	status(400, resp, m)
	assert.Equal(t, "invalid_query", m["reason"])

	// Idempotency: first response, replay, reuse with another body.
	resp, first := do("POST", "/api/v1/previews", user, `{"system_id":"s1"}`, "Idempotency-Key", "tour-1")
	status(201, resp, first)
	resp, replay := do("POST", "/api/v1/previews", user, `{"system_id":"s1"}`, "Idempotency-Key", "tour-1")
	status(201, resp, replay)
	assert.Equal(t, "true", resp.Header.Get("Idempotent-Replay"))
	assert.Equal(t, first["preview_id"], replay["preview_id"])
	resp, m = do("POST", "/api/v1/previews", user, `{"system_id":"s2"}`, "Idempotency-Key", "tour-1")
	status(422, resp, m)
	assert.Equal(t, "idempotency_key_reused", m["reason"])
	resp, m = do("POST", "/api/v1/previews", user, `{"system_id":"s2"}`, "Idempotency-Key", "two words")
	status(400, resp, m)
	assert.Equal(t, "idempotency_key_invalid", m["reason"])
	resp, m = do("POST", "/api/v1/previews", user, `{"system_id":"s2"}`)
	status(429, resp, m)
	assert.Equal(t, "active_previews_limit_exceeded", m["reason"])
	resp, m = do("POST", "/api/v1/echo", user, `{"hello":"world"}`, "Idempotency-Key", `"tour-echo"`)
	status(201, resp, m)

	// The preview: bearer, query -> cookie exchange, cookie.
	pid := first["preview_id"].(string)
	ptoken := first["token"].(string)
	resp, m = do("GET", "/preview/"+pid+"/", "", "")
	status(401, resp, m)
	resp, m = do("GET", "/preview/"+pid+"/", ptoken, "")
	status(200, resp, m)
	resp, m = do("GET", "/preview/"+pid+"/assets/app.js?preview_token="+url.QueryEscape(ptoken), "", "")
	status(303, resp, m)
	resp, m = do("GET", resp.Header.Get("Location"), "", "")
	status(200, resp, m)
	resp, m = do("GET", "/preview/nope/", ptoken, "")
	status(403, resp, m)
	resp, m = do("POST", "/api/v1/preview-security/jwt", user, `{"preview_id":"`+pid+`","system_id":"s1","device_preset":"phone","ttl_minutes":5}`)
	status(200, resp, m)
	resp, m = do("POST", "/api/v1/preview-security/jwt", user, `{"preview_id":"`+pid+`"}`)
	status(400, resp, m)
	assert.Equal(t, "missing_field", m["reason"])
	resp, m = do("POST", "/api/v1/preview-security/jwt", user, `{"preview_id":"nope","system_id":"s1","device_preset":"phone"}`)
	status(404, resp, m)

	// Snapshots: the rate limit with its headers.
	resp, m = do("POST", "/api/v1/systems/s1/snapshots", user, "")
	status(201, resp, m)
	assert.NotEmpty(t, resp.Header.Get("RateLimit"))
	resp, m = do("POST", "/api/v1/systems/s1/snapshots", user, `{"label":"again"}`)
	status(429, resp, m)
	assert.Equal(t, "snapshot_rate_exceeded", m["reason"])
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.Regexp(t, `^"snapshots";r=0;t=\d+$`, resp.Header.Get("RateLimit"))
	assert.Equal(t, `"snapshots";q=1;w=60`, resp.Header.Get("RateLimit-Policy"))

	// The LLM budget: 402 with the budget members.
	resp, m = do("POST", "/api/v1/llm/completions", user, `{"prompt":"hi","max_cost_usd":0.001}`)
	status(400, resp, m)
	assert.Equal(t, "max_cost_too_low", m["reason"])
	resp, m = do("POST", "/api/v1/llm/completions", user, `{"prompt":"hi","max_cost_usd":0.005}`)
	status(200, resp, m)
	resp, m = do("POST", "/api/v1/llm/completions", user, `{"prompt":"`+strings.Repeat("p", 100)+`","max_cost_usd":0.02}`)
	status(402, resp, m)
	assert.Equal(t, "llm_budget_exceeded", m["reason"])
	resp, m = do("POST", "/api/v1/llm/completions", user, `{"prompt":""}`)
	status(400, resp, m)

	// Deleting the preview frees the slot and revokes its tokens.
	resp, m = do("DELETE", "/api/v1/previews/"+pid, user, "")
	status(204, resp, m)
	resp, m = do("DELETE", "/api/v1/previews/"+pid, user, "")
	status(404, resp, m)
	resp, m = do("GET", "/preview/"+pid+"/", ptoken, "")
	status(401, resp, m)

	// Egress check (the default policy denies everything) and containers
	// (no Docker daemon here: 503, or 400 for a malformed id).
	resp, m = do("POST", "/api/v1/preview-security/egress/check", user, `{"host":"127.0.0.1","port":80}`)
	status(200, resp, m)
	assert.Equal(t, false, m["allowed"])
	resp, m = do("POST", "/api/v1/preview-security/egress/check", user, `{}`)
	status(400, resp, m)
	resp, m = do("GET", "/api/v1/preview-security/container/verify/bad%20id", root, "")
	status(400, resp, m)

	// Flags.
	resp, m = do("GET", "/api/v1/feature-flags", user, "")
	status(200, resp, m)
	resp, m = do("POST", "/api/v1/feature-flags/llm.streaming/toggle", root, `{"enabled":true,"tenant_id":"acme","reason":"tour"}`, "Idempotency-Key", "tour-flag")
	status(200, resp, m)
	resp, m = do("POST", "/api/v1/feature-flags/no.such/toggle", root, `{"enabled":true}`)
	status(404, resp, m)
	resp, m = do("GET", "/api/v1/feature-flags/audit?flag=llm.streaming", root, "")
	status(200, resp, m)
	resp, m = do("GET", "/api/v1/feature-flags/audit", user, "")
	status(403, resp, m)

	// Streams: the SSE answer is checked on its headers, then closed.
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/streams/events?tenant_id=acme&access_token="+url.QueryEscape(user), nil)
	require.NoError(t, err)
	sse, err := client.Do(req)
	require.NoError(t, err)
	assert.Equal(t, 200, sse.StatusCode)
	cancel()
	sse.Body.Close()
	resp, m = do("GET", "/api/v1/streams/events?tenant_id=globex", user, "")
	status(403, resp, m)
	resp, m = do("GET", "/api/v1/streams/events", "", "")
	status(401, resp, m)
	resp, m = do("GET", "/api/v1/streams/ws", "junk", "")
	status(426, resp, m) // not a WebSocket handshake: refused before authentication
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	ws, up, err := websocket.Dial(wctx, "ws"+strings.TrimPrefix(base, "http")+"/api/v1/streams/ws?access_token="+url.QueryEscape(user),
		&websocket.DialOptions{HTTPClient: &http.Client{Transport: contractTransport(t, nil)}})
	require.NoError(t, err)
	assert.Equal(t, http.StatusSwitchingProtocols, up.StatusCode)
	_, msg, err := ws.Read(wctx)
	require.NoError(t, err)
	assert.Contains(t, string(msg), `"hello"`)
	require.NoError(t, ws.Close(websocket.StatusNormalClosure, ""))
	resp, m = do("GET", "/api/v1/streaming/status", root, "")
	status(200, resp, m)
	resp, m = do("POST", "/api/v1/streaming/cleanup", root, "")
	status(200, resp, m)
	resp, m = do("POST", "/api/v1/streaming/revoke", root, `{}`)
	status(400, resp, m)
	resp, m = do("POST", "/api/v1/streaming/revoke", root, `{"user_id":"alice"}`)
	status(200, resp, m)
	resp, m = do("GET", "/api/v1/idempotency/status", root, "")
	status(200, resp, m)
}
