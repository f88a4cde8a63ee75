package storetest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/systembuilderhub/hardening/idempotency"
)

// RoundTrips sends a first request and then its replay through the
// middleware on s and reports the backend round trips of each, as counted
// by count after reset (the store's test wraps its client or driver to
// count). A warm-up request with another key runs first, so one-time costs
// (loading a Redis script, preparing a statement) are not counted. The
// kit's stores cost 2 for a first request (claim, complete) and 1 for a
// replay; a store test asserts those numbers so that a change adding a
// round trip fails.
func RoundTrips(t testing.TB, s idempotency.Store, reset func(), count func() int) (first, replay int) {
	t.Helper()
	m, err := idempotency.New(s)
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(BenchHandler)
	send := func(key string, wantReplay bool) int {
		t.Helper()
		reset()
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, BenchRequest(key))
		if rr.Code != http.StatusCreated || (rr.Header().Get(idempotency.DefaultReplayHeader) == "true") != wantReplay {
			t.Fatalf("key %s: status %d, replay header %q, want 201 and replay %v", key, rr.Code, rr.Header().Get(idempotency.DefaultReplayHeader), wantReplay)
		}
		return count()
	}
	send("warm-up", false)
	send("warm-up", true)
	first = send("round-trips", false)
	replay = send("round-trips", true)
	return first, replay
}
