// Package storetest is the conformance suite every idempotency.Store must
// pass. A store package runs it from its tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) idempotency.Store { return newStore(t) })
//	}
//
// newStore must return an empty store, isolated from other calls.
// The suite also exercises the store through the middleware, including 64
// concurrent requests with one key, and the optional Sweeper and
// StatsReader interfaces when the store implements them.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency"
)

const (
	lock = 30 * time.Second
	ttl  = 24 * time.Hour
)

// Clock is a settable clock for tests, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t truncated to the millisecond (the finest
// resolution the kit's stores keep).
func NewClock(t time.Time) *Clock { return &Clock{t: t.Truncate(time.Millisecond)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var keySeq atomic.Int64

func newKey() string { return fmt.Sprintf("key-%d-%d", time.Now().UnixNano(), keySeq.Add(1)) }

func claim(key, fp, owner string, now time.Time) idempotency.ClaimRequest {
	return idempotency.ClaimRequest{Key: key, Fingerprint: fp, Owner: owner, Now: now, LockTimeout: lock, TTL: ttl}
}

func sampleRecord() idempotency.Record {
	return idempotency.Record{
		StatusCode: http.StatusCreated,
		Header:     http.Header{"Content-Type": {"application/json"}, "Location": {"/things/1"}, "Link": {"<a>", "<b>"}},
		Body:       []byte("{\"id\":1}\x00\xff binary"),
	}
}

// Run runs the conformance suite against stores made by newStore.
func Run(t *testing.T, newStore func(t *testing.T) idempotency.Store) {
	t.Run("ClaimCompleteReplay", func(t *testing.T) { testClaimCompleteReplay(t, newStore(t)) })
	t.Run("InFlightAndMismatch", func(t *testing.T) { testInFlightAndMismatch(t, newStore(t)) })
	t.Run("Release", func(t *testing.T) { testRelease(t, newStore(t)) })
	t.Run("LeaseExpiryFencesLateOwner", func(t *testing.T) { testLeaseExpiry(t, newStore(t)) })
	t.Run("RenewExtends", func(t *testing.T) { testRenewExtends(t, newStore(t)) })
	t.Run("RenewFenced", func(t *testing.T) { testRenewFenced(t, newStore(t)) })
	t.Run("RenewLapsed", func(t *testing.T) { testRenewLapsed(t, newStore(t)) })
	t.Run("TTLExpiry", func(t *testing.T) { testTTLExpiry(t, newStore(t)) })
	t.Run("BodyOmittedAndEmpty", func(t *testing.T) { testBodyOmitted(t, newStore(t)) })
	t.Run("ConcurrentClaims", func(t *testing.T) { testConcurrentClaims(t, newStore(t)) })
	t.Run("Middleware64SameBody", func(t *testing.T) { testMiddlewareSameBody(t, newStore(t)) })
	t.Run("Middleware64DifferentBodies", func(t *testing.T) { testMiddlewareDifferentBodies(t, newStore(t)) })
	t.Run("MiddlewareLeaseExpiry", func(t *testing.T) { testMiddlewareLeaseExpiry(t, newStore(t)) })
	t.Run("MiddlewareSlowHandler", func(t *testing.T) { testMiddlewareSlowHandler(t, newStore(t)) })
	t.Run("Sweep", func(t *testing.T) { testSweep(t, newStore(t)) })
	t.Run("Stats", func(t *testing.T) { testStats(t, newStore(t)) })
}

func testClaimCompleteReplay(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	now := NewClock(time.Now()).Now()
	key := newKey()
	res, err := s.Claim(ctx, claim(key, "fp", "owner-1", now))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Claimed, res.Status)
	assert.False(t, res.TookOver)

	ok, err := s.Complete(ctx, idempotency.CompleteRequest{Key: key, Owner: "owner-1", Record: sampleRecord(), Now: now, TTL: ttl})
	require.NoError(t, err)
	assert.True(t, ok)

	res, err = s.Claim(ctx, claim(key, "fp", "owner-2", now.Add(time.Second)))
	require.NoError(t, err)
	require.Equal(t, idempotency.Completed, res.Status)
	require.NotNil(t, res.Record)
	want := sampleRecord()
	assert.Equal(t, want.StatusCode, res.Record.StatusCode)
	assert.Equal(t, want.Header, res.Record.Header)
	assert.Equal(t, want.Body, res.Record.Body)
	assert.False(t, res.Record.BodyOmitted)

	// A second Complete (even by the owner) does not overwrite.
	ok, err = s.Complete(ctx, idempotency.CompleteRequest{Key: key, Owner: "owner-1", Record: idempotency.Record{StatusCode: 400}, Now: now, TTL: ttl})
	require.NoError(t, err)
	assert.False(t, ok)
	// Unknown keys cannot be completed or released.
	ok, err = s.Complete(ctx, idempotency.CompleteRequest{Key: newKey(), Owner: "x", Record: sampleRecord(), Now: now, TTL: ttl})
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = s.Release(ctx, newKey(), "x")
	require.NoError(t, err)
	assert.False(t, ok)
	// A completed record cannot be released.
	ok, err = s.Release(ctx, key, "owner-1")
	require.NoError(t, err)
	assert.False(t, ok)
}

func testInFlightAndMismatch(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	now := NewClock(time.Now()).Now()
	key := newKey()
	res, err := s.Claim(ctx, claim(key, "fp", "a", now))
	require.NoError(t, err)
	require.Equal(t, idempotency.Claimed, res.Status)

	res, err = s.Claim(ctx, claim(key, "fp", "b", now.Add(time.Second)))
	require.NoError(t, err)
	assert.Equal(t, idempotency.InFlight, res.Status)
	assert.True(t, res.LeaseExpiresAt.Equal(now.Add(lock)), "lease ends at %v, want %v", res.LeaseExpiresAt, now.Add(lock))

	res, err = s.Claim(ctx, claim(key, "other", "c", now.Add(time.Second)))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Mismatch, res.Status)

	ok, err := s.Complete(ctx, idempotency.CompleteRequest{Key: key, Owner: "a", Record: sampleRecord(), Now: now, TTL: ttl})
	require.NoError(t, err)
	require.True(t, ok)
	res, err = s.Claim(ctx, claim(key, "other", "d", now.Add(2*time.Second)))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Mismatch, res.Status)

	// Another key is independent.
	res, err = s.Claim(ctx, claim(newKey(), "fp", "e", now))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Claimed, res.Status)
}

func testRelease(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	now := NewClock(time.Now()).Now()
	key := newKey()
	_, err := s.Claim(ctx, claim(key, "fp", "a", now))
	require.NoError(t, err)
	ok, err := s.Release(ctx, key, "not-the-owner")
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = s.Release(ctx, key, "a")
	require.NoError(t, err)
	assert.True(t, ok)
	// The key is free again, for any payload.
	res, err := s.Claim(ctx, claim(key, "new-fp", "b", now))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Claimed, res.Status)
	assert.False(t, res.TookOver)
	ok, err = s.Complete(ctx, idempotency.CompleteRequest{Key: key, Owner: "a", Record: sampleRecord(), Now: now, TTL: ttl})
	require.NoError(t, err)
	assert.False(t, ok, "the released owner must not complete the new claim")
}

func testLeaseExpiry(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	clock := NewClock(time.Now())
	key := newKey()
	res, err := s.Claim(ctx, claim(key, "fp", "late", clock.Now()))
	require.NoError(t, err)
	require.Equal(t, idempotency.Claimed, res.Status)

	clock.Advance(lock - time.Millisecond)
	res, err = s.Claim(ctx, claim(key, "fp", "early", clock.Now()))
	require.NoError(t, err)
	assert.Equal(t, idempotency.InFlight, res.Status, "lease still held 1ms before it ends")

	clock.Advance(time.Millisecond)
	res, err = s.Claim(ctx, claim(key, "fp", "next", clock.Now()))
	require.NoError(t, err)
	require.Equal(t, idempotency.Claimed, res.Status, "lease expired: a new request runs")
	assert.True(t, res.TookOver)

	// The new owner holds a fresh lease.
	res, err = s.Claim(ctx, claim(key, "fp", "third", clock.Now().Add(time.Second)))
	require.NoError(t, err)
	assert.Equal(t, idempotency.InFlight, res.Status)

	// The fenced original can neither complete nor release.
	ok, err := s.Complete(ctx, idempotency.CompleteRequest{Key: key, Owner: "late", Record: idempotency.Record{StatusCode: 200, Body: []byte("late")}, Now: clock.Now(), TTL: ttl})
	require.NoError(t, err)
	assert.False(t, ok, "late Complete from the fenced owner must be rejected")
	ok, err = s.Release(ctx, key, "late")
	require.NoError(t, err)
	assert.False(t, ok)

	ok, err = s.Complete(ctx, idempotency.CompleteRequest{Key: key, Owner: "next", Record: sampleRecord(), Now: clock.Now(), TTL: ttl})
	require.NoError(t, err)
	assert.True(t, ok)
	res, err = s.Claim(ctx, claim(key, "fp", "fourth", clock.Now()))
	require.NoError(t, err)
	require.Equal(t, idempotency.Completed, res.Status)
	assert.Equal(t, sampleRecord().Body, res.Record.Body, "the record is the new owner's")
}

func testTTLExpiry(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	clock := NewClock(time.Now())
	key := newKey()
	_, err := s.Claim(ctx, claim(key, "fp", "a", clock.Now()))
	require.NoError(t, err)
	clock.Advance(time.Minute)
	ok, err := s.Complete(ctx, idempotency.CompleteRequest{Key: key, Owner: "a", Record: sampleRecord(), Now: clock.Now(), TTL: ttl})
	require.NoError(t, err)
	require.True(t, ok)

	// The TTL runs from completion.
	clock.Advance(ttl - time.Millisecond)
	res, err := s.Claim(ctx, claim(key, "fp", "b", clock.Now()))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Completed, res.Status)

	clock.Advance(time.Millisecond)
	res, err = s.Claim(ctx, claim(key, "different", "c", clock.Now()))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Claimed, res.Status, "an expired record is gone, whatever the payload")
	assert.False(t, res.TookOver)
}

func testBodyOmitted(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	now := NewClock(time.Now()).Now()
	for _, tc := range []struct {
		name string
		rec  idempotency.Record
	}{
		{"omitted", idempotency.Record{StatusCode: 202, Header: http.Header{"Content-Type": {"text/event-stream"}}, BodyOmitted: true}},
		{"empty", idempotency.Record{StatusCode: 204, Header: http.Header{}}},
		{"client error", idempotency.Record{StatusCode: 404, Header: http.Header{"Content-Type": {"application/problem+json"}}, Body: []byte(`{"status":404}`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := newKey()
			_, err := s.Claim(ctx, claim(key, "fp", "a", now))
			require.NoError(t, err)
			ok, err := s.Complete(ctx, idempotency.CompleteRequest{Key: key, Owner: "a", Record: tc.rec, Now: now, TTL: ttl})
			require.NoError(t, err)
			require.True(t, ok)
			res, err := s.Claim(ctx, claim(key, "fp", "b", now))
			require.NoError(t, err)
			require.Equal(t, idempotency.Completed, res.Status)
			assert.Equal(t, tc.rec.StatusCode, res.Record.StatusCode)
			assert.Equal(t, tc.rec.BodyOmitted, res.Record.BodyOmitted)
			assert.Empty(t, res.Record.Header.Get("Set-Cookie"))
			assert.Equal(t, tc.rec.Header.Get("Content-Type"), res.Record.Header.Get("Content-Type"))
			assert.True(t, bytes.Equal(tc.rec.Body, res.Record.Body), "body %q", res.Record.Body)
		})
	}
}

func testConcurrentClaims(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	now := NewClock(time.Now()).Now()
	key := newKey()
	const n = 64
	var claimed, inFlight atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := s.Claim(ctx, claim(key, "fp", fmt.Sprintf("owner-%d", i), now))
			if err != nil {
				errs <- err
				return
			}
			switch res.Status {
			case idempotency.Claimed:
				claimed.Add(1)
			case idempotency.InFlight:
				inFlight.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int64(1), claimed.Load(), "exactly one claim wins")
	assert.Equal(t, int64(n-1), inFlight.Load())
}

// run sends one request through h.
func run(h http.Handler, key, body string) *httptest.ResponseRecorder {
	req := withCaller(httptest.NewRequest(http.MethodPost, "/things", strings.NewReader(body)))
	req.Header.Set(idempotency.HeaderName, key)
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	return rr
}

func creating(count *atomic.Int64, delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := count.Add(1)
		b, _ := io.ReadAll(r.Body)
		time.Sleep(delay)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "session=secret")
		w.Header().Set("Location", fmt.Sprintf("/things/%d", n))
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"n":%d,"echo":%q}`, n, b)
	})
}

func testMiddlewareSameBody(t *testing.T, s idempotency.Store) {
	m, err := idempotency.New(s)
	require.NoError(t, err)
	var count atomic.Int64
	h := m.Handler(creating(&count, 5*time.Millisecond))
	key := `"` + newKey() + `"`
	const n = 64
	codes := make([]int, n)
	bodies := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rr := run(h, key, `{"x":1}`)
			codes[i], bodies[i] = rr.Code, rr.Body.String()
		}()
	}
	close(start)
	wg.Wait()
	assert.Equal(t, int64(1), count.Load(), "the handler runs once")
	first := run(h, key, `{"x":1}`)
	require.Equal(t, http.StatusCreated, first.Code)
	assert.Equal(t, "true", first.Header().Get(idempotency.DefaultReplayHeader))
	assert.Empty(t, first.Header().Get("Set-Cookie"), "Set-Cookie is never replayed")
	assert.Equal(t, "/things/1", first.Header().Get("Location"))
	for i := range n {
		switch codes[i] {
		case http.StatusCreated:
			assert.Equal(t, first.Body.String(), bodies[i])
		case http.StatusConflict:
		default:
			t.Errorf("request %d: status %d, want 201 or 409: %s", i, codes[i], bodies[i])
		}
	}
}

func testMiddlewareDifferentBodies(t *testing.T, s idempotency.Store) {
	m, err := idempotency.New(s)
	require.NoError(t, err)
	var count atomic.Int64
	h := m.Handler(creating(&count, time.Millisecond))
	key := newKey()
	const n = 64
	var created, mismatched atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			switch rr := run(h, key, fmt.Sprintf(`{"x":%d}`, i)); rr.Code {
			case http.StatusCreated:
				created.Add(1)
			case http.StatusUnprocessableEntity:
				mismatched.Add(1)
			default:
				t.Errorf("status %d: %s", rr.Code, rr.Body)
			}
		}()
	}
	close(start)
	wg.Wait()
	assert.Equal(t, int64(1), count.Load())
	assert.Equal(t, int64(1), created.Load())
	assert.Equal(t, int64(n-1), mismatched.Load())
}

func testMiddlewareLeaseExpiry(t *testing.T, s idempotency.Store) {
	clock := NewClock(time.Now())
	m, err := idempotency.New(s, idempotency.WithClock(clock.Now), idempotency.WithLockTimeout(lock))
	require.NoError(t, err)
	var count atomic.Int64
	entered, unblock := make(chan struct{}), make(chan struct{})
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := count.Add(1)
		if n == 1 {
			close(entered)
			<-unblock
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "run %d", n)
	}))
	key := newKey()
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- run(h, key, "b") }()
	<-entered

	rr := run(h, key, "b")
	assert.Equal(t, http.StatusConflict, rr.Code)
	assert.Equal(t, "30", rr.Header().Get("Retry-After"))

	clock.Advance(lock)
	rr = run(h, key, "b")
	assert.Equal(t, http.StatusCreated, rr.Code)
	assert.Equal(t, "run 2", rr.Body.String())

	close(unblock)
	late := <-done
	assert.Equal(t, "run 1", late.Body.String(), "the late original still answers its own client")

	rr = run(h, key, "b")
	assert.Equal(t, http.StatusCreated, rr.Code)
	assert.Equal(t, "run 2", rr.Body.String(), "the fenced original did not overwrite the record")
	assert.Equal(t, "true", rr.Header().Get(idempotency.DefaultReplayHeader))
	assert.Equal(t, int64(2), count.Load())
}

func testSweep(t *testing.T, s idempotency.Store) {
	sw, ok := s.(idempotency.Sweeper)
	if !ok {
		t.Logf("%T does not implement Sweeper: it expires records itself", s)
		return
	}
	ctx := context.Background()
	clock := NewClock(time.Now())
	var old []string
	for i := range 5 {
		k := newKey()
		old = append(old, k)
		_, err := s.Claim(ctx, claim(k, "fp", "o", clock.Now()))
		require.NoError(t, err)
		if i%2 == 0 {
			ok, err := s.Complete(ctx, idempotency.CompleteRequest{Key: k, Owner: "o", Record: sampleRecord(), Now: clock.Now(), TTL: ttl})
			require.NoError(t, err)
			require.True(t, ok)
		}
	}
	clock.Advance(time.Hour)
	fresh := newKey()
	_, err := s.Claim(ctx, claim(fresh, "fp", "o", clock.Now()))
	require.NoError(t, err)
	ok, err = s.Complete(ctx, idempotency.CompleteRequest{Key: fresh, Owner: "o", Record: sampleRecord(), Now: clock.Now(), TTL: ttl})
	require.NoError(t, err)
	require.True(t, ok)

	n, err := sw.Sweep(ctx, clock.Now(), 10)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing has expired yet")

	clock.Advance(ttl - time.Hour)
	total := 0
	for range 10 {
		n, err := sw.Sweep(ctx, clock.Now(), 2)
		require.NoError(t, err)
		assert.LessOrEqual(t, n, 2, "a batch is bounded")
		total += n
		if n == 0 {
			break
		}
	}
	assert.Equal(t, 5, total)
	res, err := s.Claim(ctx, claim(fresh, "fp", "p", clock.Now()))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Completed, res.Status, "the unexpired record survives")
	for _, k := range old {
		res, err := s.Claim(ctx, claim(k, "other", "q", clock.Now()))
		require.NoError(t, err)
		assert.Equal(t, idempotency.Claimed, res.Status)
	}
}

func testStats(t *testing.T, s idempotency.Store) {
	sr, ok := s.(idempotency.StatsReader)
	if !ok {
		t.Logf("%T does not implement StatsReader", s)
		return
	}
	ctx := context.Background()
	clock := NewClock(time.Now())
	st, err := sr.Stats(ctx, clock.Now())
	require.NoError(t, err)
	assert.Equal(t, idempotency.Stats{}, st)
	a, b, c := newKey(), newKey(), newKey()
	for _, k := range []string{a, b, c} {
		_, err := s.Claim(ctx, claim(k, "fp", "o", clock.Now()))
		require.NoError(t, err)
	}
	ok, err = s.Complete(ctx, idempotency.CompleteRequest{Key: a, Owner: "o", Record: sampleRecord(), Now: clock.Now(), TTL: ttl})
	require.NoError(t, err)
	require.True(t, ok)
	st, err = sr.Stats(ctx, clock.Now())
	require.NoError(t, err)
	assert.Equal(t, idempotency.Stats{Keys: 3, InFlight: 2}, st)
	clock.Advance(lock)
	st, err = sr.Stats(ctx, clock.Now())
	require.NoError(t, err)
	assert.Equal(t, idempotency.Stats{Keys: 3, InFlight: 0}, st, "expired leases are not in flight")
	clock.Advance(ttl)
	st, err = sr.Stats(ctx, clock.Now())
	require.NoError(t, err)
	assert.Equal(t, idempotency.Stats{}, st)
}
