package storetest

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency"
)

// slowLock is the real-time lock timeout of the slow-handler test; its
// handler runs three times as long.
const slowLock = time.Second

// testMiddlewareSlowHandler runs a handler for 3 lock timeouts (real time)
// while retries with the same key arrive every 25ms: the middleware renews
// the lease, so every retry gets 409 until the handler returns, then the
// replay, and the handler runs exactly once.
func testMiddlewareSlowHandler(t *testing.T, s idempotency.Store) {
	m, err := idempotency.New(s, idempotency.WithLockTimeout(slowLock))
	require.NoError(t, err)
	var count atomic.Int64
	entered := make(chan struct{})
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := count.Add(1)
		if n == 1 {
			close(entered)
			time.Sleep(3 * slowLock)
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "run %d", n)
	}))
	key := newKey()
	start := time.Now()
	first := make(chan int)
	go func() { first <- run(h, key, "b").Code }()
	<-entered
	var conflicts int
	var lastConflict time.Duration
	for {
		select {
		case code := <-first:
			assert.Equal(t, http.StatusCreated, code)
			rr := run(h, key, "b")
			assert.Equal(t, http.StatusCreated, rr.Code)
			assert.Equal(t, "true", rr.Header().Get(idempotency.DefaultReplayHeader))
			assert.Equal(t, "run 1", rr.Body.String())
			assert.Equal(t, int64(1), count.Load(), "the slow handler ran once")
			assert.Greater(t, lastConflict, 2*slowLock, "retries met the lease after it was renewed")
			t.Logf("%d retries answered 409 over %s (lock timeout %s)", conflicts, lastConflict.Round(time.Millisecond), slowLock)
			return
		default:
		}
		rr := run(h, key, "b")
		switch rr.Code {
		case http.StatusConflict:
			conflicts++
			lastConflict = time.Since(start)
		case http.StatusCreated:
			// Only the replay of the first run, once it completed.
			if rr.Header().Get(idempotency.DefaultReplayHeader) != "true" {
				t.Errorf("a retry at %s ran the handler again: %s", time.Since(start).Round(time.Millisecond), rr.Body)
			}
		default:
			t.Errorf("retry: status %d: %s", rr.Code, rr.Body)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
