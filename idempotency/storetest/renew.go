package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/idempotency"
)

func renew(key, owner string, now time.Time) idempotency.RenewRequest {
	return idempotency.RenewRequest{Key: key, Owner: owner, Now: now, LockTimeout: lock}
}

// testRenewExtends: a renewal by the owner moves the lease end, so a claim
// at the old end still finds the key in flight; the key is free one lock
// timeout after the last renewal.
func testRenewExtends(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	clock := NewClock(time.Now())
	key := newKey()
	res, err := s.Claim(ctx, claim(key, "fp", "a", clock.Now()))
	require.NoError(t, err)
	require.Equal(t, idempotency.Claimed, res.Status)
	claimed := clock.Now()

	clock.Advance(lock / 3)
	ok, err := s.Renew(ctx, renew(key, "a", clock.Now()))
	require.NoError(t, err)
	assert.True(t, ok, "the owner renews its lease")
	clock.Advance(lock / 3)
	ok, err = s.Renew(ctx, renew(key, "a", clock.Now()))
	require.NoError(t, err)
	require.True(t, ok)
	renewed := clock.Now()

	res, err = s.Claim(ctx, claim(key, "fp", "b", claimed.Add(lock)))
	require.NoError(t, err)
	assert.Equal(t, idempotency.InFlight, res.Status, "a claim at the old lease end finds the key in flight")
	assert.True(t, res.LeaseExpiresAt.Equal(renewed.Add(lock)), "lease ends at %v, want %v", res.LeaseExpiresAt, renewed.Add(lock))
	res, err = s.Claim(ctx, claim(key, "fp", "b", renewed.Add(lock-time.Millisecond)))
	require.NoError(t, err)
	assert.Equal(t, idempotency.InFlight, res.Status)

	// The renewed owner completes normally.
	ok, err = s.Complete(ctx, idempotency.CompleteRequest{Key: key, Owner: "a", Record: sampleRecord(), Now: renewed, TTL: ttl})
	require.NoError(t, err)
	assert.True(t, ok)
	res, err = s.Claim(ctx, claim(key, "fp", "c", renewed.Add(lock)))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Completed, res.Status)

	// Once renewals stop, the lease lapses one lock timeout after the last.
	key = newKey()
	_, err = s.Claim(ctx, claim(key, "fp", "a", claimed))
	require.NoError(t, err)
	ok, err = s.Renew(ctx, renew(key, "a", renewed))
	require.NoError(t, err)
	require.True(t, ok)
	res, err = s.Claim(ctx, claim(key, "fp", "b", renewed.Add(lock)))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Claimed, res.Status)
	assert.True(t, res.TookOver)
}

// testRenewFenced: only the owner of a live in-flight record renews it.
func testRenewFenced(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	clock := NewClock(time.Now())
	key := newKey()
	_, err := s.Claim(ctx, claim(key, "fp", "a", clock.Now()))
	require.NoError(t, err)

	ok, err := s.Renew(ctx, renew(key, "not-the-owner", clock.Now().Add(time.Second)))
	require.NoError(t, err)
	assert.False(t, ok, "another owner cannot renew")
	ok, err = s.Renew(ctx, renew(newKey(), "a", clock.Now()))
	require.NoError(t, err)
	assert.False(t, ok, "an unknown key cannot be renewed")

	// The wrong owner's renewal changed nothing: the lease lapses on time
	// and another request takes over.
	clock.Advance(lock)
	res, err := s.Claim(ctx, claim(key, "fp", "b", clock.Now()))
	require.NoError(t, err)
	require.Equal(t, idempotency.Claimed, res.Status)
	require.True(t, res.TookOver)
	ok, err = s.Renew(ctx, renew(key, "a", clock.Now()))
	require.NoError(t, err)
	assert.False(t, ok, "the owner that lost the key to a takeover cannot renew")
	res, err = s.Claim(ctx, claim(key, "fp", "c", clock.Now().Add(lock)))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Claimed, res.Status, "the fenced renewal did not extend the new owner's lease")

	// Completed and released keys cannot be renewed.
	ok, err = s.Complete(ctx, idempotency.CompleteRequest{Key: key, Owner: "c", Record: sampleRecord(), Now: clock.Now(), TTL: ttl})
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.Renew(ctx, renew(key, "c", clock.Now()))
	require.NoError(t, err)
	assert.False(t, ok, "a completed key cannot be renewed")
	res, err = s.Claim(ctx, claim(key, "fp", "d", clock.Now()))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Completed, res.Status, "the renewal did not reopen the record")

	key = newKey()
	_, err = s.Claim(ctx, claim(key, "fp", "a", clock.Now()))
	require.NoError(t, err)
	ok, err = s.Release(ctx, key, "a")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.Renew(ctx, renew(key, "a", clock.Now()))
	require.NoError(t, err)
	assert.False(t, ok, "a released key cannot be renewed")
	res, err = s.Claim(ctx, claim(key, "fp", "b", clock.Now()))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Claimed, res.Status)
	assert.False(t, res.TookOver, "the renewal did not recreate the record")
}

// testRenewLapsed: a lapsed lease that nobody took over is still its
// owner's; a record past its TTL is not.
func testRenewLapsed(t *testing.T, s idempotency.Store) {
	ctx := context.Background()
	clock := NewClock(time.Now())
	key := newKey()
	_, err := s.Claim(ctx, claim(key, "fp", "a", clock.Now()))
	require.NoError(t, err)
	clock.Advance(2 * lock)
	ok, err := s.Renew(ctx, renew(key, "a", clock.Now()))
	require.NoError(t, err)
	assert.True(t, ok, "a late renewal wins back a lapsed lease nobody took")
	res, err := s.Claim(ctx, claim(key, "fp", "b", clock.Now().Add(time.Second)))
	require.NoError(t, err)
	assert.Equal(t, idempotency.InFlight, res.Status)

	// A record claimed with a TTL shorter than the handler's run: renewals
	// keep it past its TTL while they last; without them it expires.
	short := claim(newKey(), "fp", "a", clock.Now())
	short.TTL = lock
	_, err = s.Claim(ctx, short)
	require.NoError(t, err)
	ok, err = s.Renew(ctx, renew(short.Key, "a", clock.Now().Add(lock/2)))
	require.NoError(t, err)
	require.True(t, ok)
	res, err = s.Claim(ctx, claim(short.Key, "other-fp", "b", clock.Now().Add(lock)))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Mismatch, res.Status, "the record outlives its TTL while its lease is renewed")
	ok, err = s.Renew(ctx, renew(short.Key, "a", clock.Now().Add(lock/2+lock)))
	require.NoError(t, err)
	assert.False(t, ok, "an expired record cannot be renewed")
	res, err = s.Claim(ctx, claim(short.Key, "other-fp", "b", clock.Now().Add(lock/2+lock)))
	require.NoError(t, err)
	assert.Equal(t, idempotency.Claimed, res.Status, "without renewals the record expires")
	assert.False(t, res.TookOver)
}
