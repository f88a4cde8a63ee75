// Package keystoretest is the conformance suite every previewsec key and
// revocation store must pass. A new backend is correct when Run passes.
package keystoretest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/internal/keyrules"
)

// Store is what a previewsec backend implements.
type Store interface {
	previewsec.KeyStore
	previewsec.RevocationStore
}

// NewStores returns two handles on one fresh, empty backend: they stand
// for two replicas (two connection pools, two Redis clients). For an
// in-memory store both may be the same value.
type NewStores func(t *testing.T) (a, b Store)

// base is a fixed instant, whole milliseconds, away from real time so
// expiry is decided by the arguments only.
var base = time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)

func testKey(start time.Time, fill byte) previewsec.Key {
	return previewsec.Key{
		ID:          keyrules.KeyID(start),
		PeriodStart: start,
		Secret:      bytes.Repeat([]byte{fill}, 32),
		CreatedAt:   start.Add(time.Second),
		ExpiresAt:   start.Add(25 * time.Hour),
	}
}

// Run runs the suite.
func Run(t *testing.T, newStores NewStores) {
	ctx := context.Background()

	t.Run("CreateKeyRoundTrip", func(t *testing.T) {
		s, _ := newStores(t)
		k := testKey(base, 1)
		res, err := s.CreateKey(ctx, k)
		require.NoError(t, err)
		assert.True(t, res.Created)
		keys, err := s.Keys(ctx, base)
		require.NoError(t, err)
		require.Len(t, keys, 1)
		got := keys[0]
		assert.Equal(t, k.ID, got.ID)
		assert.True(t, k.PeriodStart.Equal(got.PeriodStart), "period start %s", got.PeriodStart)
		assert.True(t, k.CreatedAt.Equal(got.CreatedAt), "created at %s", got.CreatedAt)
		assert.True(t, k.ExpiresAt.Equal(got.ExpiresAt), "expires at %s", got.ExpiresAt)
		assert.Equal(t, k.Secret, got.Secret)
		assert.Equal(t, k.ID, res.Key.ID)
		assert.Equal(t, k.Secret, res.Key.Secret)
	})

	t.Run("CreateKeyIfAbsent", func(t *testing.T) {
		s, _ := newStores(t)
		first, err := s.CreateKey(ctx, testKey(base, 1))
		require.NoError(t, err)
		require.True(t, first.Created)
		second, err := s.CreateKey(ctx, testKey(base, 2))
		require.NoError(t, err)
		assert.False(t, second.Created)
		assert.Equal(t, first.Key.Secret, second.Key.Secret, "the first key of the period wins")
		keys, err := s.Keys(ctx, base)
		require.NoError(t, err)
		assert.Len(t, keys, 1)
	})

	t.Run("CreateKeyRejectsInvalid", func(t *testing.T) {
		s, _ := newStores(t)
		bad := testKey(base, 1)
		bad.Secret = []byte("short")
		_, err := s.CreateKey(ctx, bad)
		assert.Error(t, err)
		bad = testKey(base, 1)
		bad.ID = ""
		_, err = s.CreateKey(ctx, bad)
		assert.Error(t, err)
		keys, err := s.Keys(ctx, base)
		require.NoError(t, err)
		assert.Empty(t, keys)
	})

	t.Run("KeysOrderedAndUnexpired", func(t *testing.T) {
		s, _ := newStores(t)
		for i := 2; i >= 0; i-- {
			_, err := s.CreateKey(ctx, testKey(base.Add(time.Duration(i)*24*time.Hour), byte(i+1)))
			require.NoError(t, err)
		}
		keys, err := s.Keys(ctx, base)
		require.NoError(t, err)
		require.Len(t, keys, 3)
		for i := range keys {
			assert.True(t, keys[i].PeriodStart.Equal(base.Add(time.Duration(i)*24*time.Hour)))
		}
		// The first key expires at base+25h: gone at exactly that instant.
		keys, err = s.Keys(ctx, base.Add(25*time.Hour))
		require.NoError(t, err)
		require.Len(t, keys, 2)
		assert.Equal(t, keyrules.KeyID(base.Add(24*time.Hour)), keys[0].ID)
	})

	t.Run("DeleteExpiredKeys", func(t *testing.T) {
		s, _ := newStores(t)
		for i := 0; i < 3; i++ {
			_, err := s.CreateKey(ctx, testKey(base.Add(time.Duration(i)*24*time.Hour), byte(i+1)))
			require.NoError(t, err)
		}
		n, err := s.DeleteExpiredKeys(ctx, base.Add(49*time.Hour))
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		n, err = s.DeleteExpiredKeys(ctx, base.Add(49*time.Hour))
		require.NoError(t, err)
		assert.Equal(t, 0, n)
		keys, err := s.Keys(ctx, base)
		require.NoError(t, err)
		require.Len(t, keys, 1)
		assert.Equal(t, keyrules.KeyID(base.Add(48*time.Hour)), keys[0].ID)
		// The period of a deleted key can be created again (a wiped store).
		res, err := s.CreateKey(ctx, testKey(base, 9))
		require.NoError(t, err)
		assert.True(t, res.Created)
	})

	t.Run("ConcurrentCreateOneKeyPerPeriod", func(t *testing.T) {
		a, b := newStores(t)
		const n = 16
		results := make([]previewsec.KeyCreateResult, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := a
				if i%2 == 1 {
					s = b
				}
				results[i], errs[i] = s.CreateKey(ctx, testKey(base, byte(i+1)))
			}()
		}
		wg.Wait()
		created := 0
		for i := 0; i < n; i++ {
			require.NoError(t, errs[i])
			if results[i].Created {
				created++
			}
			assert.Equal(t, results[0].Key.Secret, results[i].Key.Secret, "replica %d got another key", i)
		}
		assert.Equal(t, 1, created)
		for _, s := range []Store{a, b} {
			keys, err := s.Keys(ctx, base)
			require.NoError(t, err)
			require.Len(t, keys, 1)
			assert.Equal(t, results[0].Key.Secret, keys[0].Secret)
		}
	})

	t.Run("RevokeAndList", func(t *testing.T) {
		s, _ := newStores(t)
		require.NoError(t, s.Revoke(ctx, previewsec.Revocation{Kind: previewsec.RevokePreviewID, Value: "p1", RevokedAt: base, ExpiresAt: base.Add(time.Hour)}))
		require.NoError(t, s.Revoke(ctx, previewsec.Revocation{Kind: previewsec.RevokeTokenID, Value: "p1", RevokedAt: base, ExpiresAt: base.Add(2 * time.Hour)}))
		revs, err := s.Revocations(ctx, base)
		require.NoError(t, err)
		require.Len(t, revs, 2, "the same value under two kinds is two entries")
		byKind := map[previewsec.RevocationKind]previewsec.Revocation{}
		for _, r := range revs {
			byKind[r.Kind] = r
		}
		assert.True(t, byKind[previewsec.RevokePreviewID].ExpiresAt.Equal(base.Add(time.Hour)))
		assert.True(t, byKind[previewsec.RevokePreviewID].RevokedAt.Equal(base))
		assert.Equal(t, "p1", byKind[previewsec.RevokeTokenID].Value)
		revs, err = s.Revocations(ctx, base.Add(time.Hour))
		require.NoError(t, err)
		require.Len(t, revs, 1)
		assert.Equal(t, previewsec.RevokeTokenID, revs[0].Kind)
	})

	t.Run("RevokeKeepsLaterTimes", func(t *testing.T) {
		s, _ := newStores(t)
		r := previewsec.Revocation{Kind: previewsec.RevokePreviewID, Value: "p", RevokedAt: base.Add(time.Minute), ExpiresAt: base.Add(2 * time.Hour)}
		require.NoError(t, s.Revoke(ctx, r))
		require.NoError(t, s.Revoke(ctx, previewsec.Revocation{Kind: r.Kind, Value: "p", RevokedAt: base, ExpiresAt: base.Add(time.Hour)}))
		revs, err := s.Revocations(ctx, base)
		require.NoError(t, err)
		require.Len(t, revs, 1)
		assert.True(t, revs[0].RevokedAt.Equal(r.RevokedAt))
		assert.True(t, revs[0].ExpiresAt.Equal(r.ExpiresAt))
		require.NoError(t, s.Revoke(ctx, previewsec.Revocation{Kind: r.Kind, Value: "p", RevokedAt: base.Add(time.Hour), ExpiresAt: base.Add(3 * time.Hour)}))
		revs, err = s.Revocations(ctx, base)
		require.NoError(t, err)
		require.Len(t, revs, 1)
		assert.True(t, revs[0].RevokedAt.Equal(base.Add(time.Hour)))
		assert.True(t, revs[0].ExpiresAt.Equal(base.Add(3*time.Hour)))
	})

	t.Run("RevokeRejectsInvalid", func(t *testing.T) {
		s, _ := newStores(t)
		assert.Error(t, s.Revoke(ctx, previewsec.Revocation{Kind: "sub", Value: "x", ExpiresAt: base}))
		assert.Error(t, s.Revoke(ctx, previewsec.Revocation{Kind: previewsec.RevokeTokenID, ExpiresAt: base}))
	})

	t.Run("DeleteExpiredRevocations", func(t *testing.T) {
		s, _ := newStores(t)
		for i := 0; i < 4; i++ {
			require.NoError(t, s.Revoke(ctx, previewsec.Revocation{Kind: previewsec.RevokeTokenID, Value: fmt.Sprint("j", i),
				RevokedAt: base, ExpiresAt: base.Add(time.Duration(i+1) * time.Minute)}))
		}
		n, err := s.DeleteExpiredRevocations(ctx, base.Add(2*time.Minute))
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		revs, err := s.Revocations(ctx, base)
		require.NoError(t, err)
		assert.Len(t, revs, 2)
	})

	t.Run("ConcurrentRevocations", func(t *testing.T) {
		a, b := newStores(t)
		const n = 20
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := a
				if i%2 == 1 {
					s = b
				}
				// Half the writers hit one shared value with growing expiries.
				v := fmt.Sprint("pid-", i)
				if i%2 == 0 {
					v = "shared"
				}
				errs[i] = s.Revoke(ctx, previewsec.Revocation{Kind: previewsec.RevokePreviewID, Value: v,
					RevokedAt: base, ExpiresAt: base.Add(time.Duration(i+1) * time.Minute)})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
		revs, err := b.Revocations(ctx, base)
		require.NoError(t, err)
		assert.Len(t, revs, n/2+1)
		for _, r := range revs {
			if r.Value == "shared" {
				assert.True(t, r.ExpiresAt.Equal(base.Add(time.Duration(n-1)*time.Minute)), "latest expiry wins: %s", r.ExpiresAt)
			}
		}
	})

	t.Run("KeyRingReplicasRotateToOneKey", func(t *testing.T) {
		a, b := newStores(t)
		runReplicaRotation(t, a, b)
	})

	t.Run("ConcurrentMintVerifyAcrossRotation", func(t *testing.T) {
		a, b := newStores(t)
		runConcurrentAcrossRotation(t, a, b)
	})

	t.Run("KeyRingPurgesAfterOverlap", func(t *testing.T) {
		s, _ := newStores(t)
		runPurge(t, s)
	})

	t.Run("RevocationAcrossReplicas", func(t *testing.T) {
		a, b := newStores(t)
		runRevocationAcrossReplicas(t, a, b)
	})
}
