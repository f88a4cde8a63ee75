package idempotency_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

// renewStore is a memory store whose Renew answers through hook (nil:
// the memory store's) and reports every call on renewed.
type renewStore struct {
	*idempotency.MemoryStore
	hook      func(n int64, req idempotency.RenewRequest) (bool, error)
	calls     atomic.Int64 // renewals started
	done      atomic.Int64 // renewals returned
	renewed   chan int64
	completed atomic.Bool
	late      atomic.Int64 // renewals after Complete or Release
}

func newRenewStore(hook func(int64, idempotency.RenewRequest) (bool, error)) *renewStore {
	return &renewStore{MemoryStore: idempotency.NewMemoryStore(), hook: hook, renewed: make(chan int64, 1000)}
}

func (s *renewStore) Renew(ctx context.Context, req idempotency.RenewRequest) (bool, error) {
	if s.completed.Load() {
		s.late.Add(1)
	}
	n := s.calls.Add(1)
	defer func() { s.done.Add(1); s.renewed <- n }()
	if s.hook != nil {
		return s.hook(n, req)
	}
	return s.MemoryStore.Renew(ctx, req)
}

func (s *renewStore) Complete(ctx context.Context, req idempotency.CompleteRequest) (bool, error) {
	s.completed.Store(true)
	return s.MemoryStore.Complete(ctx, req)
}

func (s *renewStore) Release(ctx context.Context, key, owner string) (bool, error) {
	s.completed.Store(true)
	return s.MemoryStore.Release(ctx, key, owner)
}

// waitRenewals waits until the store answered at least n renewals.
func (s *renewStore) waitRenewals(t *testing.T, n int64) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for s.done.Load() < n {
		select {
		case <-s.renewed:
		case <-timeout:
			t.Errorf("only %d of %d renewals within 10s", s.done.Load(), n)
			return
		}
	}
}

const renewEvery = 5 * time.Millisecond

// renewMW returns a middleware on s that renews every renewEvery, with its
// metrics in reg and its log in logs.
func renewMW(t *testing.T, s idempotency.Store, opts ...idempotency.Option) (m *idempotency.Middleware, reg *prometheus.Registry, logs *testenv.Buffer) {
	t.Helper()
	reg, logs = prometheus.NewRegistry(), &testenv.Buffer{}
	m, err := idempotency.New(s, append([]idempotency.Option{idempotency.WithLeaseRenewal(renewEvery),
		idempotency.WithRegisterer(reg), idempotency.WithLogger(slog.New(slog.NewTextHandler(logs, nil)))}, opts...)...)
	require.NoError(t, err)
	return m, reg, logs
}

// renewals returns hardening_idempotency_lease_renewals_total by result.
func renewals(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "hardening_idempotency_lease_renewals_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	require.Len(t, out, 3, "every result is exported from the start")
	return out
}

func TestLeaseRenewedWhileHandlerRuns(t *testing.T) {
	t.Parallel()
	s := newRenewStore(nil)
	m, reg, _ := renewMW(t, s, idempotency.WithLockTimeout(time.Minute))
	var runs atomic.Int64
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.waitRenewals(t, 3)
		counting(&runs).ServeHTTP(w, r)
	}))
	assert.Equal(t, http.StatusCreated, do(h, call{key: "k"}).Code)
	after := s.calls.Load()
	time.Sleep(20 * renewEvery)
	assert.Equal(t, after, s.calls.Load(), "renewing stops when the handler returns")
	assert.Zero(t, s.late.Load(), "no renewal after Complete")
	got := renewals(t, reg)
	assert.GreaterOrEqual(t, got[idempotency.RenewRenewed], 3.0)
	assert.Zero(t, got[idempotency.RenewError]+got[idempotency.RenewLost])
	assert.Equal(t, "true", do(h, call{key: "k"}).Header().Get(idempotency.DefaultReplayHeader))
}

func TestLeaseRenewalSurvivesClientCancel(t *testing.T) {
	t.Parallel()
	s := newRenewStore(nil)
	m, _, _ := renewMW(t, s)
	var runs atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel() // the client goes away; the operation goes on
		<-r.Context().Done()
		s.waitRenewals(t, s.done.Load()+2)
		counting(&runs).ServeHTTP(w, r)
	}))
	req := httptest.NewRequest(http.MethodPost, "/things", strings.NewReader("b")).WithContext(asCaller(ctx))
	req.Header.Set(idempotency.HeaderName, "k")
	h.ServeHTTP(httptest.NewRecorder(), req)
	assert.Zero(t, s.late.Load())
	assert.Equal(t, "true", do(h, call{key: "k", body: "b"}).Header().Get(idempotency.DefaultReplayHeader))
}

func TestLeaseRenewalErrorsAreRetried(t *testing.T) {
	t.Parallel()
	var s *renewStore
	s = newRenewStore(func(n int64, req idempotency.RenewRequest) (bool, error) {
		if n <= 2 {
			return false, errors.New("store down")
		}
		return s.MemoryStore.Renew(context.Background(), req)
	})
	m, reg, logs := renewMW(t, s)
	var runs atomic.Int64
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.waitRenewals(t, 3)
		counting(&runs).ServeHTTP(w, r)
	}))
	assert.Equal(t, http.StatusCreated, do(h, call{key: "k"}).Code)
	got := renewals(t, reg)
	assert.Equal(t, 2.0, got[idempotency.RenewError])
	assert.GreaterOrEqual(t, got[idempotency.RenewRenewed], 1.0, "renewing goes on after errors")
	assert.Zero(t, got[idempotency.RenewLost])
	assert.Contains(t, logs.String(), "lease renewal failed")
	assert.Equal(t, "true", do(h, call{key: "k"}).Header().Get(idempotency.DefaultReplayHeader))
}

func TestLeaseLostIsCountedNotKilled(t *testing.T) {
	t.Parallel()
	s := newRenewStore(func(int64, idempotency.RenewRequest) (bool, error) { return false, nil })
	m, reg, logs := renewMW(t, s)
	var runs atomic.Int64
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.waitRenewals(t, 1)
		time.Sleep(20 * renewEvery)
		require.NoError(t, r.Context().Err(), "the handler is not interrupted")
		counting(&runs).ServeHTTP(w, r)
	}))
	rr := do(h, call{key: "k"})
	assert.Equal(t, http.StatusCreated, rr.Code, "the client gets its answer: %s", rr.Body)
	assert.Equal(t, int64(1), s.calls.Load(), "renewing stops once the lease is lost")
	assert.Equal(t, map[string]float64{idempotency.RenewRenewed: 0, idempotency.RenewLost: 1, idempotency.RenewError: 0}, renewals(t, reg))
	assert.Contains(t, logs.String(), "lease lost")
}

func TestLeaseRenewalStopsOnPanic(t *testing.T) {
	t.Parallel()
	s := newRenewStore(nil)
	m, _, _ := renewMW(t, s)
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.waitRenewals(t, 1)
		panic("boom")
	}))
	assert.Panics(t, func() { do(h, call{key: "k"}) })
	after := s.calls.Load()
	time.Sleep(20 * renewEvery)
	assert.Equal(t, after, s.calls.Load(), "renewing stops when the handler panics")
	assert.Zero(t, s.late.Load(), "no renewal after Release")
	var runs atomic.Int64
	assert.Equal(t, http.StatusCreated, do(m.Handler(counting(&runs)), call{key: "k"}).Code, "the key was released")
}
