//go:build !race

package idempotency_test

import (
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
)

// TestMiddlewareAllocations pins what the middleware adds to a request on
// the memory store, beyond the bare handler with the same request
// construction, so that a change adding allocations to the common path
// fails (the race detector's instrumentation allocates: not run with
// -race).
func TestMiddlewareAllocations(t *testing.T) {
	m, err := idempotency.New(idempotency.NewMemoryStore())
	require.NoError(t, err)
	h := m.Handler(storetest.BenchHandler)
	i := 0
	bare := testing.AllocsPerRun(200, func() {
		i++
		storetest.BenchHandler.ServeHTTP(httptest.NewRecorder(), storetest.BenchRequest(strconv.Itoa(i)))
	})
	first := testing.AllocsPerRun(200, func() {
		i++
		h.ServeHTTP(httptest.NewRecorder(), storetest.BenchRequest(strconv.Itoa(i)))
	})
	h.ServeHTTP(httptest.NewRecorder(), storetest.BenchRequest("replayed"))
	replay := testing.AllocsPerRun(200, func() {
		h.ServeHTTP(httptest.NewRecorder(), storetest.BenchRequest("replayed"))
	})
	t.Logf("bare %v, first +%v, replay +%v", bare, first-bare, replay-bare)
	require.LessOrEqual(t, first-bare, 23.0, "first request")
	require.LessOrEqual(t, replay-bare, 13.0, "replay")
}
