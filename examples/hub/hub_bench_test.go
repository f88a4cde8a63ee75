package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/systembuilderhub/hardening/migrate"
)

// BenchmarkHubRequest serves the load test's five scenarios
// (examples/loadtest) through the hub's whole handler in-process, on
// SQLite and on Redis (REDIS_URL, else miniredis), so -benchmem shows what
// one request costs in allocations and -cpuprofile where its time goes.
// The request log is JSON to io.Discard (the binary writes it to stderr).
//
//	REDIS_URL=redis://127.0.0.1:6379/0 go test ./examples/hub -run '^$' -bench HubRequest -benchmem
func BenchmarkHubRequest(b *testing.B) {
	for _, store := range []string{"sqlite", "redis"} {
		b.Run(store, func(b *testing.B) {
			h, tok := benchHub(b, store)
			pv := benchCall(b, h, newBenchReq(http.MethodPost, "/api/v1/previews", tok, "", `{"system_id":"sys_load"}`), http.StatusCreated)
			var created struct {
				ID    string `json:"preview_id"`
				Token string `json:"token"`
			}
			if err := json.Unmarshal(pv, &created); err != nil || created.Token == "" {
				b.Fatalf("create preview: %v %s", err, pv)
			}
			// The hub's idempotency keys in Redis do not take the test
			// prefix: fresh keys need a per-run part.
			run := strconv.FormatInt(time.Now().UnixNano(), 36)
			benchCall(b, h, newBenchReq(http.MethodPost, "/api/v1/echo", tok, "replay-"+run, `{"n":1}`), http.StatusCreated)
			for _, sc := range []struct {
				name   string
				status int
				req    func(i int) *http.Request
			}{
				{"preview", http.StatusOK, func(int) *http.Request {
					return newBenchReq(http.MethodGet, "/preview/"+created.ID+"/", created.Token, "", "")
				}},
				{"idem-first", http.StatusCreated, func(i int) *http.Request {
					return newBenchReq(http.MethodPost, "/api/v1/echo", tok, "first-"+run+"-"+strconv.Itoa(i), `{"n":1}`)
				}},
				{"idem-replay", http.StatusCreated, func(int) *http.Request {
					return newBenchReq(http.MethodPost, "/api/v1/echo", tok, "replay-"+run, `{"n":1}`)
				}},
				{"quota", http.StatusCreated, func(int) *http.Request {
					return newBenchReq(http.MethodPost, "/api/v1/systems/sys_load/snapshots", tok, "", "")
				}},
				{"flags", http.StatusOK, func(int) *http.Request {
					return newBenchReq(http.MethodGet, "/api/v1/feature-flags", tok, "", "")
				}},
			} {
				b.Run(sc.name, func(b *testing.B) {
					b.ReportAllocs()
					for i := 0; b.Loop(); i++ {
						rr := httptest.NewRecorder()
						h.ServeHTTP(rr, sc.req(i))
						if rr.Code != sc.status {
							b.Fatalf("status %d: %s", rr.Code, rr.Body)
						}
					}
				})
			}
		})
	}
}

// benchHub builds the hub on store with quotas high enough never to refuse
// and returns its handler and a user token.
func benchHub(b *testing.B, store string) (http.Handler, string) {
	b.Setenv("DEFAULT_SNAPSHOT_RATE_PER_MINUTE", "1000000000")
	b.Setenv("DEFAULT_ACTIVE_PREVIEWS_LIMIT", "1000000000")
	cfg := config{
		Addr:        "127.0.0.1:0",
		DatabaseURL: "sqlite:///" + filepath.Join(b.TempDir(), "hub.db"),
		AuthSecret:  []byte(testAuthSecret),
		Migrations:  migrate.DefaultPolicy(),
	}
	cfg.DBPath, _ = sqlitePath(cfg.DatabaseURL)
	if store == "redis" {
		srv := testRedis(b)
		cfg.RedisURL, cfg.RedisPrefix = srv.URL, srv.Prefix
	}
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Close(ctx)
	})
	tok, err := a.auth.mint("loaduser", "acme", nil, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	return a.handler(), tok
}

func newBenchReq(method, path, token, key, body string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	r.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		r.Header.Set("Idempotency-Key", key)
	}
	return r
}

func benchCall(b *testing.B, h http.Handler, r *http.Request, want int) []byte {
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	if rr.Code != want {
		b.Fatalf("%s %s: status %d: %s", r.Method, r.URL.Path, rr.Code, rr.Body)
	}
	return rr.Body.Bytes()
}

// TestObserveCountsRequests checks the request counter by route and code
// (the observe middleware caches its child counters).
func TestObserveCountsRequests(t *testing.T) {
	_, base := newTestApp(t)
	for range 2 {
		call(t, http.MethodGet, base+"/livez", "", "")
	}
	call(t, http.MethodGet, base+"/no-such-path", "", "")
	_, body := call(t, http.MethodGet, base+"/metrics", "", "")
	assert.Contains(t, string(body), `hub_http_requests_total{code="200",route="GET /livez"} 2`)
	assert.Contains(t, string(body), `hub_http_requests_total{code="404",route="/"} 1`)
}
