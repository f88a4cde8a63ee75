package idempotency_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/systembuilderhub/hardening/idempotency"
)

var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"id":"0123456789abcdef"}`))
})

func benchRequest(key string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/things", strings.NewReader(`{"name":"preview"}`))
	req.Header.Set(idempotency.HeaderName, key)
	return req
}

// BenchmarkMemory compares the bare handler (baseline, same request
// construction) with a first request and a replay through the middleware
// on the memory store.
func BenchmarkMemory(b *testing.B) {
	b.Run("baseline_handler", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			benchHandler.ServeHTTP(httptest.NewRecorder(), benchRequest(strconv.Itoa(i)))
		}
	})
	b.Run("store_first", func(b *testing.B) {
		s := idempotency.NewMemoryStore()
		ctx, now := context.Background(), time.Now()
		rec := idempotency.Record{StatusCode: 201, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":"0123456789abcdef"}`)}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			k := strconv.Itoa(i)
			_, _ = s.Claim(ctx, idempotency.ClaimRequest{Key: k, Fingerprint: "fp", Owner: "o", Now: now, LockTimeout: time.Minute, TTL: time.Hour})
			_, _ = s.Complete(ctx, idempotency.CompleteRequest{Key: k, Owner: "o", Record: rec, Now: now, TTL: time.Hour})
		}
	})
	b.Run("store_replay", func(b *testing.B) {
		s := idempotency.NewMemoryStore()
		ctx, now := context.Background(), time.Now()
		req := idempotency.ClaimRequest{Key: "k", Fingerprint: "fp", Owner: "o", Now: now, LockTimeout: time.Minute, TTL: time.Hour}
		_, _ = s.Claim(ctx, req)
		_, _ = s.Complete(ctx, idempotency.CompleteRequest{Key: "k", Owner: "o", Record: idempotency.Record{StatusCode: 201, Body: []byte("{}")}, Now: now, TTL: time.Hour})
		b.ReportAllocs()
		for b.Loop() {
			_, _ = s.Claim(ctx, req)
		}
	})
	b.Run("first", func(b *testing.B) {
		m, _ := idempotency.New(idempotency.NewMemoryStore())
		h := m.Handler(benchHandler)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			h.ServeHTTP(httptest.NewRecorder(), benchRequest(strconv.Itoa(i)))
		}
	})
	b.Run("replay", func(b *testing.B) {
		m, _ := idempotency.New(idempotency.NewMemoryStore())
		h := m.Handler(benchHandler)
		h.ServeHTTP(httptest.NewRecorder(), benchRequest("k"))
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(httptest.NewRecorder(), benchRequest("k"))
		}
	})
}
