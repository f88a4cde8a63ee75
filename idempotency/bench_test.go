package idempotency_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

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
