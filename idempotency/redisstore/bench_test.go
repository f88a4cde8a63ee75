package redisstore_test

import (
	"context"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/redisstore"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

// roundTrips counts commands sent to the server (a pipeline counts once).
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

func TestRoundTrips(t *testing.T) {
	srv := testenv.Redis(t)
	rdb := srv.NewClient(t)
	rt := &roundTrips{}
	rdb.AddHook(rt)
	s, err := redisstore.New(rdb, redisstore.WithPrefix(srv.Prefix))
	require.NoError(t, err)
	m, err := idempotency.New(s)
	require.NoError(t, err)
	h := m.Handler(storetest.BenchHandler)
	h.ServeHTTP(httptest.NewRecorder(), storetest.BenchRequest("warm-up")) // loads the scripts

	rt.n.Store(0)
	h.ServeHTTP(httptest.NewRecorder(), storetest.BenchRequest("first"))
	assert.Equal(t, int64(2), rt.n.Load(), "a first request: claim + complete")
	rt.n.Store(0)
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, storetest.BenchRequest("first"))
	assert.Equal(t, "true", rr.Header().Get(idempotency.DefaultReplayHeader))
	assert.Equal(t, int64(1), rt.n.Load(), "a replay: one claim")
}

func TestKeyExpiryFreesMemory(t *testing.T) {
	s, srv := newStore(t)
	ctx := context.Background()
	now := time.Now()
	_, err := s.Claim(ctx, idempotency.ClaimRequest{Key: "k", Fingerprint: "fp", Owner: "o", Now: now, LockTimeout: time.Second, TTL: time.Minute})
	require.NoError(t, err)
	ok, err := s.Complete(ctx, idempotency.CompleteRequest{Key: "k", Owner: "o", Record: idempotency.Record{StatusCode: 201}, Now: now, TTL: time.Hour})
	require.NoError(t, err)
	require.True(t, ok)
	ttl, err := srv.Client.PTTL(ctx, srv.Prefix+"{k}").Result()
	require.NoError(t, err)
	assert.InDelta(t, time.Hour.Seconds(), ttl.Seconds(), 5, "the key carries the record TTL")
}

// BenchmarkRedis measures a first request and a replay through the
// middleware against a bare SET NX round trip in the same run.
func BenchmarkRedis(b *testing.B) {
	ctx := context.Background()
	b.Run("baseline_setnx", func(b *testing.B) {
		_, srv := newStore(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := srv.Client.SetNX(ctx, srv.Prefix+"{"+strconv.Itoa(i)+"}", "1", time.Hour).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	storetest.Bench(b, func(b *testing.B) idempotency.Store { s, _ := newStore(b); return s }, strconv.Itoa)
}
