package tenancy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/tenancy"
)

// renewStore wraps the memory store: its RenewSlot hangs until its context
// ends (hang) or reports the slot lost, and counts its calls.
type renewStore struct {
	*tenancy.MemoryStore
	hang  bool
	calls atomic.Int64
}

func (s *renewStore) RenewSlot(ctx context.Context, req tenancy.SlotRequest) (tenancy.SlotResult, error) {
	s.calls.Add(1)
	if s.hang {
		<-ctx.Done()
		return tenancy.SlotResult{}, ctx.Err()
	}
	return tenancy.SlotResult{Held: false}, nil
}

// serveExport runs one request through ConcurrencyLimit("exports") whose
// handler takes run, and fails the test if it has not returned by limit.
func serveExport(t *testing.T, s tenancy.Store, lease, run, limit time.Duration) {
	t.Helper()
	q, err := tenancy.NewQuotas(s, tenancy.Concurrency("exports", 2, lease))
	require.NoError(t, err)
	h := q.ConcurrencyLimit("exports")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(run)
		w.WriteHeader(http.StatusNoContent)
	}))
	done := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/exports", nil)
		h.ServeHTTP(rec, r.WithContext(tenancy.WithTenant(r.Context(), "acme")))
		done <- rec.Code
	}()
	select {
	case code := <-done:
		assert.Equal(t, http.StatusNoContent, code)
	case <-time.After(limit):
		t.Fatalf("the request did not end within %v of a %v handler", limit, run)
	}
}

// TestConcurrencyLimitHungStoreRenewal: a store that hangs on renewal
// cannot hold the request past its handler by more than a renewal period
// (each renewal is bounded).
func TestConcurrencyLimitHungStoreRenewal(t *testing.T) {
	s := &renewStore{MemoryStore: tenancy.NewMemoryStore(), hang: true}
	serveExport(t, s, 150*time.Millisecond, 300*time.Millisecond, 5*time.Second)
	assert.GreaterOrEqual(t, s.calls.Load(), int64(2), "renewals were tried while the handler ran")
}

// TestConcurrencyLimitStopsRenewingALostSlot: once the store says the slot
// is gone, the renewer stops instead of renewing a slot it does not hold.
func TestConcurrencyLimitStopsRenewingALostSlot(t *testing.T) {
	s := &renewStore{MemoryStore: tenancy.NewMemoryStore()}
	serveExport(t, s, 60*time.Millisecond, 400*time.Millisecond, 5*time.Second)
	assert.Equal(t, int64(1), s.calls.Load())
}
