package sqlitestore_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency"
)

// TestReplayHeadersAreCopies: replays decode their headers through a
// cache, yet each replay gets its own copy, and different header sets
// (more than the cache holds) come back intact.
func TestReplayHeadersAreCopies(t *testing.T) {
	ctx, now := context.Background(), time.Now()
	s := newStore(t)
	complete := func(key string, h http.Header) {
		req := idempotency.ClaimRequest{Key: key, Fingerprint: "fp", Owner: "o", Now: now, LockTimeout: time.Minute, TTL: time.Hour}
		res, err := s.Claim(ctx, req)
		require.NoError(t, err)
		require.Equal(t, idempotency.Claimed, res.Status)
		ok, err := s.Complete(ctx, idempotency.CompleteRequest{Key: key, Owner: "o", Now: now, TTL: time.Hour,
			Record: idempotency.Record{StatusCode: 201, Header: h, Body: []byte("{}")}})
		require.NoError(t, err)
		require.True(t, ok)
	}
	replay := func(key string) http.Header {
		res, err := s.Claim(ctx, idempotency.ClaimRequest{Key: key, Fingerprint: "fp", Owner: "o2", Now: now, LockTimeout: time.Minute, TTL: time.Hour})
		require.NoError(t, err)
		require.Equal(t, idempotency.Completed, res.Status)
		return res.Record.Header
	}
	complete("shared", http.Header{"Content-Type": {"application/json"}})
	first := replay("shared")
	first["Content-Type"][0] = "text/plain"
	first.Set("X-Extra", "1")
	assert.Equal(t, http.Header{"Content-Type": {"application/json"}}, replay("shared"))
	for i := range 100 {
		k := "k" + strconv.Itoa(i)
		complete(k, http.Header{"Etag": {strconv.Itoa(i)}})
	}
	for i := range 100 {
		assert.Equal(t, http.Header{"Etag": {strconv.Itoa(i)}}, replay("k"+strconv.Itoa(i)))
	}
}
