package idempotency_test

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/systembuilderhub/hardening/idempotency"
)

// tokens is a rate limiter with a fixed number of tokens, refilled by hand.
type tokens struct{ left atomic.Int64 }

func (l *tokens) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.left.Add(-1) < 0 {
			l.left.Add(1)
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// The documented order: idempotency outside the rate limit. A retry of a
// completed key gets its replay without touching the quota, and a 429 is
// not stored, so the same key runs once the quota allows it.
func TestOrderIdempotencyBeforeRateLimit(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	limit := &tokens{}
	limit.left.Store(1)
	h := newMW(t).Handler(limit.Handler(counting(&runs)))

	first := do(h, call{key: "k1", body: "a"})
	assert.Equal(t, http.StatusCreated, first.Code)
	retry := do(h, call{key: "k1", body: "a"})
	assert.Equal(t, http.StatusCreated, retry.Code, "the retry is a replay, not a 429")
	assert.Equal(t, "true", retry.Header().Get(idempotency.DefaultReplayHeader))
	assert.Equal(t, first.Body.String(), retry.Body.String())

	refused := do(h, call{key: "k2", body: "b"})
	assert.Equal(t, http.StatusTooManyRequests, refused.Code)
	limit.left.Store(1)
	later := do(h, call{key: "k2", body: "b"})
	assert.Equal(t, http.StatusCreated, later.Code, "the 429 was not stored for k2")
	assert.Empty(t, later.Header().Get(idempotency.DefaultReplayHeader))
	assert.EqualValues(t, 2, runs.Load())
}

// The order the docs used to advise, rate limit outside idempotency, turns
// the retry of a completed request into a 429 and burns quota on replays.
func TestOrderRateLimitFirstRefusesReplays(t *testing.T) {
	t.Parallel()
	var runs atomic.Int64
	limit := &tokens{}
	limit.left.Store(2)
	h := limit.Handler(newMW(t).Handler(counting(&runs)))

	assert.Equal(t, http.StatusCreated, do(h, call{key: "k1", body: "a"}).Code)
	assert.Equal(t, http.StatusCreated, do(h, call{key: "k1", body: "a"}).Code, "a replay, but it used a token")
	assert.Equal(t, http.StatusTooManyRequests, do(h, call{key: "k1", body: "a"}).Code,
		"the retry of a completed key gets a 429 instead of its replay")
	assert.EqualValues(t, 1, runs.Load())
}
