package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type call struct {
	method, path, key, body string
	keys                    []string // several header values
	anonymous               bool     // no hardening.Caller in the context
}

// testCaller is the caller of the test requests: the default scope reads it.
var testCaller = hardening.Caller{Tenant: "t1", Subject: "alice"}

// asCaller returns ctx carrying testCaller.
func asCaller(ctx context.Context) context.Context { return hardening.WithCaller(ctx, testCaller) }

func do(h http.Handler, c call) *httptest.ResponseRecorder {
	if c.method == "" {
		c.method = http.MethodPost
	}
	if c.path == "" {
		c.path = "/things"
	}
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	if !c.anonymous {
		req = req.WithContext(asCaller(req.Context()))
	}
	if c.key != "" {
		req.Header.Set(idempotency.HeaderName, c.key)
	}
	for _, k := range c.keys {
		req.Header.Add(idempotency.HeaderName, k)
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	return rr
}

// counting returns a handler that echoes its body with 201 and counts runs.
func counting(n *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := n.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Request-Id", fmt.Sprint(k))
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("RateLimit-Remaining", "3")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "%d:%s", k, b)
	})
}

func newMW(t *testing.T, opts ...idempotency.Option) *idempotency.Middleware {
	t.Helper()
	m, err := idempotency.New(idempotency.NewMemoryStore(), opts...)
	require.NoError(t, err)
	return m
}

func TestHandlerDecisions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      []idempotency.Option
		calls     []call
		wantCodes []int
		wantRuns  int64
	}{
		{"replay", nil, []call{{key: "a", body: "x"}, {key: `"a"`, body: "x"}}, []int{201, 201}, 1},
		{"GET passes through", nil, []call{{method: "GET", key: "a"}, {method: "GET", key: "a"}}, []int{201, 201}, 2},
		{"PUT not covered by default", nil, []call{{method: "PUT", key: "a"}, {method: "PUT", key: "a"}}, []int{201, 201}, 2},
		{"PATCH covered", nil, []call{{method: "PATCH", key: "a"}, {method: "PATCH", key: "a"}}, []int{201, 201}, 1},
		{"custom methods", []idempotency.Option{idempotency.WithMethods("put")}, []call{{method: "PUT", key: "a"}, {method: "PUT", key: "a"}, {key: "a"}, {key: "a"}}, []int{201, 201, 201, 201}, 3},
		{"missing key passes", nil, []call{{}, {}}, []int{201, 201}, 2},
		{"missing key required", []idempotency.Option{idempotency.WithRequireKey(true)}, []call{{}}, []int{400}, 0},
		{"malformed key", nil, []call{{key: `"unterminated`}, {key: "has space"}, {key: strings.Repeat("k", 256)}}, []int{400, 400, 400}, 0},
		{"two key headers", nil, []call{{keys: []string{"a", "b"}}}, []int{400}, 0},
		{"different body", nil, []call{{key: "a", body: "x"}, {key: "a", body: "y"}}, []int{201, 422}, 1},
		{"different query", nil, []call{{key: "a", path: "/things?x=1"}, {key: "a", path: "/things?x=2"}}, []int{201, 422}, 1},
		{"different path is another record", nil, []call{{key: "a", path: "/a"}, {key: "a", path: "/b"}}, []int{201, 201}, 2},
		{"body too large", []idempotency.Option{idempotency.WithMaxRequestBody(4)}, []call{{key: "a", body: "12345"}, {key: "b", body: "1234"}}, []int{413, 201}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var runs atomic.Int64
			h := newMW(t, tc.opts...).Handler(counting(&runs))
			for i, c := range tc.calls {
				rr := do(h, c)
				assert.Equal(t, tc.wantCodes[i], rr.Code, "call %d: %s", i, rr.Body)
				if rr.Code >= 400 {
					assert.Equal(t, "application/problem+json", rr.Header().Get("Content-Type"))
				}
			}
			assert.Equal(t, tc.wantRuns, runs.Load())
		})
	}
}

func TestReplayHeadersAndBody(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	m := newMW(t, idempotency.WithReplayHeaders("X-Request-Id"), idempotency.WithReplayHeaderName("Idempotent-Replayed"))
	h := m.Handler(counting(&runs))
	first := do(h, call{key: "k", body: "hello"})
	require.Equal(t, 201, first.Code)
	assert.Empty(t, first.Header().Get("Idempotent-Replayed"))
	second := do(h, call{key: "k", body: "hello"})
	require.Equal(t, 201, second.Code)
	assert.Equal(t, "1:hello", second.Body.String(), "the handler saw the full body and the replay returns it")
	assert.Equal(t, "true", second.Header().Get("Idempotent-Replayed"))
	assert.Equal(t, "text/plain", second.Header().Get("Content-Type"))
	assert.Equal(t, "1", second.Header().Get("X-Request-Id"))
	assert.Equal(t, `"v1"`, second.Header().Get("ETag"))
	assert.Empty(t, second.Header().Get("RateLimit-Remaining"), "rate-limit headers are never replayed")
	assert.Equal(t, int64(1), runs.Load())

	_, err := idempotency.New(idempotency.NewMemoryStore(), idempotency.WithReplayHeaders("Set-Cookie"))
	assert.Error(t, err)
	_, err = idempotency.New(idempotency.NewMemoryStore(), idempotency.WithReplayHeaders("X-RateLimit-Limit"))
	assert.Error(t, err)
}

func TestScopeIsolation(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	m := newMW(t, idempotency.WithScope(func(r *http.Request) (string, error) {
		if u := r.Header.Get("X-Test-User"); u != "" {
			return u, nil
		}
		return "", errors.New("no principal")
	}))
	h := m.Handler(counting(&runs))
	send := func(user string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/things", strings.NewReader("same"))
		req.Header.Set(idempotency.HeaderName, "shared-key")
		if user != "" {
			req.Header.Set("X-Test-User", user)
		}
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		return rr
	}
	assert.Equal(t, "1:same", send("tenant-a/alice").Body.String())
	assert.Equal(t, "2:same", send("tenant-b/alice").Body.String(), "another scope never sees the first response")
	assert.Equal(t, "1:same", send("tenant-a/alice").Body.String())
	rr := send("")
	assert.Equal(t, http.StatusInternalServerError, rr.Code)
	assert.Equal(t, int64(2), runs.Load())
}

func TestServerErrorsAndPanicsAreNotStored(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	h := newMW(t).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch runs.Add(1) {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			panic("boom")
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	assert.Equal(t, 503, do(h, call{key: "k"}).Code)
	assert.PanicsWithValue(t, "boom", func() { do(h, call{key: "k"}) }, "the panic is re-raised")
	assert.Equal(t, 202, do(h, call{key: "k"}).Code, "the key was released: the retry runs")
	rr := do(h, call{key: "k"})
	assert.Equal(t, 202, rr.Code)
	assert.Equal(t, "true", rr.Header().Get(idempotency.DefaultReplayHeader))
	assert.Equal(t, int64(3), runs.Load())
}

func TestClientErrorsAreStored(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	h := newMW(t).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		http.Error(w, "nope", http.StatusNotFound)
	}))
	assert.Equal(t, 404, do(h, call{key: "k"}).Code)
	rr := do(h, call{key: "k"})
	assert.Equal(t, 404, rr.Code)
	assert.Equal(t, "nope\n", rr.Body.String())
	assert.Equal(t, int64(1), runs.Load())
}

// TestRetryLaterStatusesAreNotStored: a 429 (or another "retry later"
// status, or whatever WithStoreStatus declines) releases the key, so the
// retry runs once the quota allows it instead of replaying the refusal.
func TestRetryLaterStatusesAreNotStored(t *testing.T) {
	t.Parallel()
	noQuotaRefusals := idempotency.WithStoreStatus(func(s int) bool {
		return s != http.StatusPaymentRequired && idempotency.DefaultStoreStatus(s)
	})
	tests := []struct {
		name   string
		opts   []idempotency.Option
		status int
		stored bool
	}{
		{"429 by default", nil, http.StatusTooManyRequests, false},
		{"409 by default", nil, http.StatusConflict, false},
		{"408 by default", nil, http.StatusRequestTimeout, false},
		{"425 by default", nil, http.StatusTooEarly, false},
		{"402 stored by default", nil, http.StatusPaymentRequired, true},
		{"402 declined by the option", []idempotency.Option{noQuotaRefusals}, http.StatusPaymentRequired, false},
		{"200 still stored with the option", []idempotency.Option{noQuotaRefusals}, http.StatusOK, true},
		{"nil option is the default", []idempotency.Option{idempotency.WithStoreStatus(nil)}, http.StatusTooManyRequests, false},
		{"5xx never stored even if the option says so", []idempotency.Option{idempotency.WithStoreStatus(func(int) bool { return true })}, http.StatusBadGateway, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs atomic.Int64
			h := newMW(t, tt.opts...).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if runs.Add(1) == 1 {
					w.WriteHeader(tt.status)
					return
				}
				w.WriteHeader(http.StatusCreated)
			}))
			assert.Equal(t, tt.status, do(h, call{key: "k"}).Code)
			rr := do(h, call{key: "k"})
			if tt.stored {
				assert.Equal(t, tt.status, rr.Code)
				assert.Equal(t, "true", rr.Header().Get(idempotency.DefaultReplayHeader))
				assert.Equal(t, int64(1), runs.Load())
				return
			}
			assert.Equal(t, http.StatusCreated, rr.Code, "the key was released: the retry runs")
			assert.Empty(t, rr.Header().Get(idempotency.DefaultReplayHeader))
			assert.Equal(t, int64(2), runs.Load())
		})
	}
}

func TestLargeAndStreamedResponsesStoredWithoutBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		handler func(w http.ResponseWriter)
	}{
		{"over cap", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(strings.Repeat("x", 10)))
			_, _ = w.Write([]byte(strings.Repeat("y", 10)))
		}},
		{"flushed", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte("data: 1\n\n"))
			require.NoError(t, http.NewResponseController(w).Flush())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var runs atomic.Int64
			h := newMW(t, idempotency.WithMaxStoredBody(16)).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				runs.Add(1)
				tc.handler(w)
			}))
			first := do(h, call{key: "k"})
			assert.Equal(t, 201, first.Code)
			assert.NotEmpty(t, first.Body.String(), "the first client gets the whole body")
			rr := do(h, call{key: "k"})
			assert.Equal(t, 201, rr.Code)
			assert.Empty(t, rr.Body.String())
			assert.Equal(t, "true", rr.Header().Get(idempotency.BodyOmittedHeader))
			assert.Equal(t, "true", rr.Header().Get(idempotency.DefaultReplayHeader))
			assert.Equal(t, int64(1), runs.Load(), "the operation never runs twice")
		})
	}
}

// failingStore fails every call.
type failingStore struct{}

func (failingStore) Claim(context.Context, idempotency.ClaimRequest) (idempotency.ClaimResult, error) {
	return idempotency.ClaimResult{}, errors.New("backend down")
}
func (failingStore) Complete(context.Context, idempotency.CompleteRequest) (bool, error) {
	return false, errors.New("backend down")
}
func (failingStore) Release(context.Context, string, string) (bool, error) {
	return false, errors.New("backend down")
}
func (failingStore) Renew(context.Context, idempotency.RenewRequest) (bool, error) {
	return false, errors.New("backend down")
}

func TestStoreFailure(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	m, err := idempotency.New(failingStore{})
	require.NoError(t, err)
	rr := do(m.Handler(counting(&runs)), call{key: "k"})
	assert.Equal(t, http.StatusServiceUnavailable, rr.Code)
	assert.Equal(t, "1", rr.Header().Get("Retry-After"))
	assert.NotContains(t, rr.Body.String(), "backend down", "internal errors are not leaked")
	assert.Zero(t, runs.Load(), "fails closed: the handler does not run")

	m, err = idempotency.New(failingStore{}, idempotency.WithFailOpen(true))
	require.NoError(t, err)
	assert.Equal(t, 201, do(m.Handler(counting(&runs)), call{key: "k"}).Code)
	assert.Equal(t, int64(1), runs.Load())
}

func TestCancelledClientStillCompletes(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	h := newMW(t).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel() // the client goes away while the operation runs
		counting(&runs).ServeHTTP(w, r)
	}))
	req := httptest.NewRequest(http.MethodPost, "/things", strings.NewReader("b")).WithContext(asCaller(ctx))
	req.Header.Set(idempotency.HeaderName, "k")
	h.ServeHTTP(httptest.NewRecorder(), req)
	rr := do(h, call{key: "k", body: "b"})
	assert.Equal(t, "true", rr.Header().Get(idempotency.DefaultReplayHeader), "the outcome was stored")
	assert.Equal(t, int64(1), runs.Load())
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	var runs atomic.Int64
	m := newMW(t, idempotency.WithRegisterer(reg))
	h := m.Handler(counting(&runs))
	do(h, call{key: "a"})
	do(h, call{key: "a"})
	do(h, call{key: "a", body: "other"})
	do(h, call{key: "bad key"})
	do(h, call{})
	expected := `
# HELP hardening_idempotency_requests_total Requests seen by the idempotency middleware, by outcome.
# TYPE hardening_idempotency_requests_total counter
hardening_idempotency_requests_total{outcome="conflict"} 0
hardening_idempotency_requests_total{outcome="error"} 0
hardening_idempotency_requests_total{outcome="first"} 1
hardening_idempotency_requests_total{outcome="invalid"} 1
hardening_idempotency_requests_total{outcome="mismatch"} 1
hardening_idempotency_requests_total{outcome="missing"} 1
hardening_idempotency_requests_total{outcome="replay"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(expected), "hardening_idempotency_requests_total"))
	_, err := idempotency.New(idempotency.NewMemoryStore(), idempotency.WithRegisterer(reg))
	assert.Error(t, err, "registering twice is reported")
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	s := idempotency.NewMemoryStore()
	for name, opts := range map[string][]idempotency.Option{
		"zero ttl":          {idempotency.WithTTL(0)},
		"lock over ttl":     {idempotency.WithTTL(time.Second), idempotency.WithLockTimeout(time.Minute)},
		"zero lock":         {idempotency.WithLockTimeout(0)},
		"zero request cap":  {idempotency.WithMaxRequestBody(0)},
		"no methods":        {idempotency.WithMethods()},
		"nil clock":         {idempotency.WithClock(nil)},
		"empty replay name": {idempotency.WithReplayHeaderName("")},
		"bad sweep":         {idempotency.WithSweep(0, 1)},
		"negative renewal":  {idempotency.WithLeaseRenewal(-time.Second)},
		"renewal = lock":    {idempotency.WithLockTimeout(time.Second), idempotency.WithLeaseRenewal(time.Second)},
		"tiny lock":         {idempotency.WithLockTimeout(time.Nanosecond)},
		"nil scope":         {idempotency.WithScope(nil)},
		"empty method":      {idempotency.WithMethods("POST", "")},
		"malformed method":  {idempotency.WithMethods("PO ST")},
		"bad replay name":   {idempotency.WithReplayHeaderName("Idempotent Replay")},
		"nil option":        {nil},
	} {
		_, err := idempotency.New(s, opts...)
		assert.Error(t, err, name)
	}
	_, err := idempotency.New(nil)
	assert.Error(t, err)
}

func TestSweeperAndStatus(t *testing.T) {
	t.Parallel()
	clock := storetest.NewClock(time.Now())
	reg := prometheus.NewRegistry()
	m, err := idempotency.New(idempotency.NewMemoryStore(), idempotency.WithClock(clock.Now),
		idempotency.WithTTL(time.Hour), idempotency.WithSweep(time.Hour, 2), idempotency.WithRegisterer(reg))
	require.NoError(t, err)
	var runs atomic.Int64
	h := m.Handler(counting(&runs))
	for i := range 5 {
		do(h, call{key: fmt.Sprint(i)})
	}
	st, err := m.Status(context.Background())
	require.NoError(t, err)
	assert.Equal(t, idempotency.Status{Store: "memory", TTLSeconds: 3600, LockTimeoutSeconds: 30, Keys: 5}, st)

	clock.Advance(time.Hour)
	n, err := m.Sweep(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 5, n, "batches of 2 until a short one")
	st, err = m.Status(context.Background())
	require.NoError(t, err)
	assert.Zero(t, st.Keys)
	assert.Equal(t, 5, st.LastSweepDeleted)
	require.NotNil(t, st.LastSweepAt)
	assert.True(t, st.LastSweepAt.Equal(clock.Now()))
	assert.Equal(t, 5.0, testutil.ToFloat64(mustCounter(t, reg, "hardening_idempotency_sweep_deleted_total")))

	// Start runs a sweep at once and stops on Close.
	require.NoError(t, m.Start(context.Background()))
	assert.Error(t, m.Start(context.Background()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, m.Close(ctx))
	require.NoError(t, m.Close(ctx))
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: "copy"}, func() float64 {
				return mf.GetMetric()[0].GetCounter().GetValue()
			})
		}
	}
	t.Fatalf("metric %s not found", name)
	return nil
}

// flakyStore fails the first Complete, then delegates.
type flakyStore struct {
	*idempotency.MemoryStore
	failed atomic.Bool
}

func (s *flakyStore) Complete(ctx context.Context, req idempotency.CompleteRequest) (bool, error) {
	if !s.failed.Swap(true) {
		return false, errors.New("blip")
	}
	return s.MemoryStore.Complete(ctx, req)
}

func TestCompleteIsRetried(t *testing.T) {
	t.Parallel()
	m, err := idempotency.New(&flakyStore{MemoryStore: idempotency.NewMemoryStore()})
	require.NoError(t, err)
	var runs atomic.Int64
	h := m.Handler(counting(&runs))
	do(h, call{key: "k"})
	rr := do(h, call{key: "k"})
	assert.Equal(t, "true", rr.Header().Get(idempotency.DefaultReplayHeader), "a transient Complete error does not lose the record")
	assert.Equal(t, int64(1), runs.Load())
}

func TestBodyOfUnknownLength(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	h := newMW(t, idempotency.WithMaxRequestBody(8)).Handler(counting(&runs))
	for _, tc := range []struct {
		body string
		code int
	}{{"12345678", 201}, {"123456789", 413}} {
		req := httptest.NewRequest(http.MethodPost, "/things", io.NopCloser(strings.NewReader(tc.body)))
		req = req.WithContext(asCaller(req.Context()))
		req.ContentLength = -1
		req.Header.Set(idempotency.HeaderName, "k"+tc.body)
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		assert.Equal(t, tc.code, rr.Code)
		if tc.code == 201 {
			assert.Equal(t, "1:"+tc.body, rr.Body.String())
		}
	}
}
