package redisstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/redisstore"
	"github.com/systembuilderhub/hardening/internal/testenv"
)

var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{"id":"0123456789abcdef"}`))
})

func benchRequest(key string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/things", strings.NewReader(`{"name":"preview"}`))
	req.Header.Set(idempotency.HeaderName, key)
	return req
}

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
	h := m.Handler(benchHandler)
	h.ServeHTTP(httptest.NewRecorder(), benchRequest("warm-up")) // loads the scripts

	rt.n.Store(0)
	h.ServeHTTP(httptest.NewRecorder(), benchRequest("first"))
	assert.Equal(t, int64(2), rt.n.Load(), "a first request: claim + complete")
	rt.n.Store(0)
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, benchRequest("first"))
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
	b.Run("store_first", func(b *testing.B) {
		s, _ := newStore(b)
		now := time.Now()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			k := strconv.Itoa(i)
			res, err := s.Claim(ctx, idempotency.ClaimRequest{Key: k, Fingerprint: "fp", Owner: "o", Now: now, LockTimeout: time.Minute, TTL: time.Hour})
			if err != nil || res.Status != idempotency.Claimed {
				b.Fatal(res.Status, err)
			}
			ok, err := s.Complete(ctx, idempotency.CompleteRequest{Key: k, Owner: "o", Now: now, TTL: time.Hour,
				Record: idempotency.Record{StatusCode: 201, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":"0123456789abcdef"}`)}})
			if err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("store_replay", func(b *testing.B) {
		s, _ := newStore(b)
		now := time.Now()
		req := idempotency.ClaimRequest{Key: "k", Fingerprint: "fp", Owner: "o", Now: now, LockTimeout: time.Minute, TTL: time.Hour}
		_, _ = s.Claim(ctx, req)
		_, _ = s.Complete(ctx, idempotency.CompleteRequest{Key: "k", Owner: "o", Now: now, TTL: time.Hour,
			Record: idempotency.Record{StatusCode: 201, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"id":"0123456789abcdef"}`)}})
		b.ReportAllocs()
		for b.Loop() {
			res, err := s.Claim(ctx, req)
			if err != nil || res.Status != idempotency.Completed {
				b.Fatal(res.Status, err)
			}
		}
	})
	b.Run("first", func(b *testing.B) {
		s, _ := newStore(b)
		m, _ := idempotency.New(s)
		h := m.Handler(benchHandler)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, benchRequest(strconv.Itoa(i)))
			if rr.Code != http.StatusCreated {
				b.Fatal(rr.Code)
			}
		}
	})
	b.Run("replay", func(b *testing.B) {
		s, _ := newStore(b)
		m, _ := idempotency.New(s)
		h := m.Handler(benchHandler)
		h.ServeHTTP(httptest.NewRecorder(), benchRequest("k"))
		b.ReportAllocs()
		for b.Loop() {
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, benchRequest("k"))
			if rr.Header().Get(idempotency.DefaultReplayHeader) != "true" {
				b.Fatal("not a replay")
			}
		}
	})
}
