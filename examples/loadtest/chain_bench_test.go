package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkRequest serves each scenario in-process (no network) through
// the bare handler and through the memory chain, so -benchmem shows what
// the middleware adds per request in allocations:
//
//	go test ./examples/loadtest -run '^$' -bench Request -benchmem
func BenchmarkRequest(b *testing.B) {
	secret := []byte("loadtest-bench-secret-0123456789")
	c, err := newMemoryChain(context.Background(), secret)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close(context.Background()) })
	chain := c.Handler()
	tok, err := mintHubToken(secret, "loaduser", bareTenant, false, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	rr := httptest.NewRecorder()
	chain.ServeHTTP(rr, benchReq(http.MethodPost, "/api/v1/previews", tok, "", `{"system_id":"sys_load"}`))
	var pv struct {
		ID    string `json:"preview_id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(rr.Body.Bytes(), &pv); err != nil || rr.Code != http.StatusCreated {
		b.Fatalf("create preview: %d %s", rr.Code, rr.Body)
	}
	for name, h := range map[string]http.Handler{"bare": bareHandler(), "memory": chain} {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, benchReq(http.MethodPost, "/api/v1/echo", tok, "replay-1", string(echoBody)))
		if rr.Code != http.StatusCreated {
			b.Fatalf("%s: first echo: %d", name, rr.Code)
		}
	}
	for _, sc := range []struct {
		name   string
		status int
		req    func(i int) *http.Request
	}{
		{"preview", http.StatusOK, func(int) *http.Request {
			return benchReq(http.MethodGet, "/preview/"+pv.ID+"/", pv.Token, "", "")
		}},
		{"idem-first", http.StatusCreated, func(i int) *http.Request {
			return benchReq(http.MethodPost, "/api/v1/echo", tok, "first-"+strconv.Itoa(i), string(echoBody))
		}},
		{"idem-replay", http.StatusCreated, func(int) *http.Request {
			return benchReq(http.MethodPost, "/api/v1/echo", tok, "replay-1", string(echoBody))
		}},
		{"quota", http.StatusCreated, func(int) *http.Request {
			return benchReq(http.MethodPost, "/api/v1/systems/"+bareSystem+"/snapshots", tok, "", "")
		}},
		{"flags", http.StatusOK, func(int) *http.Request {
			return benchReq(http.MethodGet, "/api/v1/feature-flags", tok, "", "")
		}},
	} {
		for _, side := range []struct {
			name string
			h    http.Handler
		}{{"bare", bareHandler()}, {"memory", chain}} {
			b.Run(sc.name+"/"+side.name, func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					rr := httptest.NewRecorder()
					side.h.ServeHTTP(rr, sc.req(i))
					if rr.Code != sc.status {
						b.Fatalf("status %d: %s", rr.Code, rr.Body)
					}
				}
			})
		}
	}
}

func benchReq(method, path, token, key, body string) *http.Request {
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	r.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		r.Header.Set("Idempotency-Key", key)
	}
	return r
}
