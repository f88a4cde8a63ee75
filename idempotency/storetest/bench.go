package storetest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/idempotency"
)

// BenchHandler is the handler of the benchmarks: 201 with a small JSON
// body.
var BenchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"id":"0123456789abcdef"}`))
})

// BenchRequest is the benchmarks' request: a small JSON POST /things with
// Idempotency-Key key, from a hardening.Caller (the default scope reads
// it).
func BenchRequest(key string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/things", strings.NewReader(`{"name":"preview"}`))
	req.Header.Set(idempotency.HeaderName, key)
	return withCaller(req)
}

// withCaller returns req with the suite's caller in its context.
func withCaller(req *http.Request) *http.Request {
	c := hardening.Caller{Tenant: "storetest", Subject: "client"}
	return req.WithContext(hardening.WithCaller(req.Context(), c))
}

// Bench runs the store's sub-benchmarks on fresh stores from newStore:
// store_first (a claim and a complete of the key keyOf(i)) and
// store_replay (a claim of a completed key) call the store directly; first
// and replay send BenchRequest through the whole middleware. The caller
// adds its baseline sub-benchmarks beside them.
func Bench(b *testing.B, newStore func(b *testing.B) idempotency.Store, keyOf func(i int) string) {
	ctx := context.Background()
	record := idempotency.Record{StatusCode: 201, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":"0123456789abcdef"}`)}
	b.Run("store_first", func(b *testing.B) {
		s := newStore(b)
		now := time.Now()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			k := keyOf(i)
			res, err := s.Claim(ctx, idempotency.ClaimRequest{Key: k, Fingerprint: "fp", Owner: "o", Now: now, LockTimeout: time.Minute, TTL: time.Hour})
			if err != nil || res.Status != idempotency.Claimed {
				b.Fatal(res.Status, err)
			}
			ok, err := s.Complete(ctx, idempotency.CompleteRequest{Key: k, Owner: "o", Now: now, TTL: time.Hour, Record: record})
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("store_replay", func(b *testing.B) {
		s := newStore(b)
		now := time.Now()
		req := idempotency.ClaimRequest{Key: "k", Fingerprint: "fp", Owner: "o", Now: now, LockTimeout: time.Minute, TTL: time.Hour}
		_, _ = s.Claim(ctx, req)
		_, _ = s.Complete(ctx, idempotency.CompleteRequest{Key: "k", Owner: "o", Now: now, TTL: time.Hour, Record: record})
		b.ReportAllocs()
		for b.Loop() {
			res, err := s.Claim(ctx, req)
			if err != nil || res.Status != idempotency.Completed {
				b.Fatal(res.Status, err)
			}
		}
	})
	b.Run("first", func(b *testing.B) {
		m, _ := idempotency.New(newStore(b))
		h := m.Handler(BenchHandler)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, BenchRequest(strconv.Itoa(i)))
			if rr.Code != http.StatusCreated {
				b.Fatal(rr.Code)
			}
		}
	})
	b.Run("replay", func(b *testing.B) {
		m, _ := idempotency.New(newStore(b))
		h := m.Handler(BenchHandler)
		h.ServeHTTP(httptest.NewRecorder(), BenchRequest("k"))
		b.ReportAllocs()
		for b.Loop() {
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, BenchRequest("k"))
			if rr.Header().Get(idempotency.DefaultReplayHeader) != "true" {
				b.Fatal("not a replay")
			}
		}
	})
}
