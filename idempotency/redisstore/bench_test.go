package redisstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/storetest"
)

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
