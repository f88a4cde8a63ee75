package idempotency_test

import (
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
)

// BenchmarkMemory compares the bare handler (baseline, same request
// construction) with a first request and a replay through the middleware
// on the memory store.
func BenchmarkMemory(b *testing.B) {
	b.Run("baseline_handler", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			storetest.BenchHandler.ServeHTTP(httptest.NewRecorder(), storetest.BenchRequest(strconv.Itoa(i)))
		}
	})
	storetest.Bench(b, func(*testing.B) idempotency.Store { return idempotency.NewMemoryStore() }, strconv.Itoa)
}
