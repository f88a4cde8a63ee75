package previewsec_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/previewsec"
)

// hungRevocations is a revocation store that stops answering, like a
// SIGSTOPped Redis: once hung, each read (its reply already fetched, so a
// late answer carries what the store held then) blocks until released or,
// with a stall, fails after it: a client timeout that is not the
// context's. It ignores the context unless honourCtx.
type hungRevocations struct {
	previewsec.RevocationStore
	hung      atomic.Bool
	stall     time.Duration // 0 = until released
	honourCtx bool
	calls     atomic.Int64 // reads while hung
	release   chan struct{}
	once      sync.Once
}

// Release lets every blocked and later read through.
func (h *hungRevocations) Release() { h.once.Do(func() { close(h.release) }) }

func (h *hungRevocations) Revocations(ctx context.Context, now time.Time) ([]previewsec.Revocation, error) {
	revs, err := h.RevocationStore.Revocations(ctx, now)
	if !h.hung.Load() {
		return revs, err
	}
	h.calls.Add(1)
	var stall <-chan time.Time
	if h.stall > 0 {
		stall = time.After(h.stall)
	}
	var done <-chan struct{}
	if h.honourCtx {
		done = ctx.Done()
	}
	select {
	case <-h.release:
		return revs, err
	case <-stall:
		return nil, errors.New("i/o timeout")
	case <-done:
		return nil, ctx.Err()
	}
}

// hungList returns a verifier whose revocation list was loaded and is now
// stale, with h hung (set its fields before use).
func hungList(t *testing.T, f *fixture, h *hungRevocations, opts ...previewsec.RevocationOption) (*previewsec.Verifier, *previewsec.RevocationList) {
	t.Helper()
	h.RevocationStore, h.release = f.store, make(chan struct{})
	t.Cleanup(h.Release)
	l, err := previewsec.NewRevocationList(h, append([]previewsec.RevocationOption{previewsec.WithClock(f.clk.Now)}, opts...)...)
	require.NoError(t, err)
	v, err := previewsec.NewVerifier(f.ring, previewsec.WithRevocations(l))
	require.NoError(t, err)
	_, err = v.Verify(context.Background(), f.mint(t, testGrant))
	require.NoError(t, err)
	h.hung.Store(true)
	f.clk.Advance(previewsec.DefaultRevocationMaxAge)
	return v, l
}

// verifyConcurrently runs n Verify calls at once and returns their errors
// and how long each took.
func verifyConcurrently(ctx context.Context, v *previewsec.Verifier, tok string, n int) ([]error, []time.Duration) {
	errs, took := make([]error, n), make([]time.Duration, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			t0 := time.Now()
			_, errs[i] = v.Verify(ctx, tok)
			took[i] = time.Since(t0)
		})
	}
	close(start)
	wg.Wait()
	return errs, took
}

// TestRevocationStalledStoreIsReadOnce is the attack of issue 13: a store
// whose every read stalls (Redis SIGSTOPped: each read fails after the
// client's own timeout). Concurrent checks must share one read and fail
// together, not queue behind the list's lock and read again one by one
// (before the fix: 20 reads, the last check answered after 6 s).
func TestRevocationStalledStoreIsReadOnce(t *testing.T) {
	f := newFixture(t)
	h := &hungRevocations{stall: 300 * time.Millisecond}
	v, _ := hungList(t, f, h)
	errs, took := verifyConcurrently(context.Background(), v, f.mint(t, testGrant), 20)
	for i, err := range errs {
		assert.ErrorIs(t, err, previewsec.ErrUnavailable, "check %d", i)
		assert.Less(t, took[i], 5*time.Second, "check %d waited behind the others", i)
	}
	assert.Equal(t, int64(1), h.calls.Load(), "20 waiters share one store read")
}

// TestRevocationHungStoreFailsClosedWithinTimeout: a store that never
// answers (and ignores its context) fails every waiting check closed at the
// refresh timeout, together; later checks fail at once without a second
// read; the list recovers when the store answers again.
func TestRevocationHungStoreFailsClosedWithinTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	f := newFixture(t)
	h := &hungRevocations{}
	v, l := hungList(t, f, h, previewsec.WithRevocationRefreshTimeout(timeout))
	tok := f.mint(t, testGrant)
	errs, took := verifyConcurrently(context.Background(), v, tok, 20)
	lo, hi := took[0], took[0]
	for i, err := range errs {
		assert.ErrorIs(t, err, previewsec.ErrUnavailable, "check %d", i)
		assert.ErrorIs(t, err, context.DeadlineExceeded, "check %d", i)
		lo, hi = min(lo, took[i]), max(hi, took[i])
	}
	// Liveness, not speed: one after another would take 20 timeouts (10 s).
	assert.Less(t, hi, 10*timeout, "the checks failed one after another")
	t.Logf("20 checks on a hung store (refresh timeout %s) answered after %s to %s", timeout, lo, hi)
	assert.Equal(t, int64(1), h.calls.Load(), "one store read for 20 checks")

	_, err := v.Verify(context.Background(), tok)
	assert.ErrorIs(t, err, previewsec.ErrUnavailable, "still hung: fail closed")
	assert.Equal(t, int64(1), h.calls.Load(), "no second read while the first hangs")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, l.Close(ctx), context.DeadlineExceeded, "Close waits for the read in flight")

	h.Release()
	testenv.WaitFor(t, "the list recovers", func() bool {
		_, err := v.Verify(context.Background(), tok)
		return err == nil
	})
	require.NoError(t, l.Close(context.Background()))
}

// TestRevocationWaiterLeavesOnItsContext: a waiter whose context ends
// returns at once, and the read it started goes on for the others.
func TestRevocationWaiterLeavesOnItsContext(t *testing.T) {
	f := newFixture(t)
	h := &hungRevocations{honourCtx: true}
	v, _ := hungList(t, f, h, previewsec.WithRevocationRefreshTimeout(time.Minute))
	tok := f.mint(t, testGrant)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := v.Verify(cancelled, tok)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, previewsec.ErrUnavailable, "fails closed")
	assert.Zero(t, h.calls.Load(), "a caller already gone starts no read")

	first, leave := context.WithCancel(context.Background())
	firstErr := make(chan error, 1)
	go func() { _, err := v.Verify(first, tok); firstErr <- err }()
	testenv.WaitFor(t, "the read to start", func() bool { return h.calls.Load() == 1 })
	otherErr := make(chan error, 1)
	go func() { _, err := v.Verify(context.Background(), tok); otherErr <- err }()
	leave()
	select {
	case err := <-firstErr:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("a waiter whose context ended did not return")
	}
	h.Release()
	select {
	case err := <-otherErr:
		assert.NoError(t, err, "the read outlives the waiter that started it")
	case <-time.After(5 * time.Second):
		t.Fatal("the other waiter did not return")
	}
	assert.Equal(t, int64(1), h.calls.Load())
}

// TestRevocationLocalRevokeSurvivesReloadInFlight: a revocation made here
// while a reload is reading the store stays effective when that reload's
// (older) answer replaces the mirror.
func TestRevocationLocalRevokeSurvivesReloadInFlight(t *testing.T) {
	f := newFixture(t)
	h := &hungRevocations{}
	v, l := hungList(t, f, h)
	tokA := f.mint(t, testGrant)
	tokB := f.mint(t, previewsec.Grant{TenantID: "tenant-b", PreviewID: "prev-b"})
	done := make(chan error, 1)
	go func() { _, err := v.Verify(context.Background(), tokB); done <- err }()
	testenv.WaitFor(t, "the read to start", func() bool { return h.calls.Load() == 1 })
	require.NoError(t, l.RevokePreview(context.Background(), "prev-a"))
	h.Release()
	require.NoError(t, <-done)
	_, err := v.Verify(context.Background(), tokA)
	assert.ErrorIs(t, err, previewsec.ErrRevoked)
}

// TestMiddlewareHungRevocationStore: with the revocation store hung, 20
// concurrent preview requests each answer 503 preview_auth_unavailable
// within the refresh timeout, from one store read.
func TestMiddlewareHungRevocationStore(t *testing.T) {
	const timeout = 500 * time.Millisecond
	f := newFixture(t)
	h := &hungRevocations{}
	v, _ := hungList(t, f, h, previewsec.WithRevocationRefreshTimeout(timeout))
	fv := *f
	fv.ver = v
	srv, _ := newPreviewServer(t, &fv)
	tok := f.mint(t, testGrant)
	var wg sync.WaitGroup
	status, reason, retry := make([]int, 20), make([]string, 20), make([]string, 20)
	took := make([]time.Duration, 20)
	for i := range status {
		wg.Go(func() {
			t0 := time.Now()
			status[i], reason[i], retry[i] = previewStatus(srv.URL+"/preview/prev-a/", tok)
			took[i] = time.Since(t0)
		})
	}
	wg.Wait()
	for i := range status {
		assert.Equal(t, http.StatusServiceUnavailable, status[i], "request %d", i)
		assert.Equal(t, "preview_auth_unavailable", reason[i], "request %d", i)
		assert.Equal(t, "1", retry[i], "request %d: Retry-After", i)
		assert.Less(t, took[i], 10*timeout, "request %d waited behind the others", i)
	}
	assert.Equal(t, int64(1), h.calls.Load())
}

// previewStatus GETs u with a bearer token, from any goroutine, and
// returns the status, the problem's reason and Retry-After.
func previewStatus(u, tok string) (status int, reason, retryAfter string) {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return 0, err.Error(), ""
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error(), ""
	}
	defer resp.Body.Close()
	var p struct{ Reason string }
	_ = json.NewDecoder(resp.Body).Decode(&p)
	return resp.StatusCode, p.Reason, resp.Header.Get("Retry-After")
}

func TestRevocationOptionsValidated(t *testing.T) {
	s := previewsec.NewMemoryKeyStore()
	for _, o := range []previewsec.RevocationOption{
		previewsec.WithRevocationRefreshTimeout(0), previewsec.WithRevocationMaxAge(-time.Second),
		previewsec.WithRevocationRetention(0), previewsec.WithClock(nil),
	} {
		_, err := previewsec.NewRevocationList(s, o)
		assert.Error(t, err)
	}
}
