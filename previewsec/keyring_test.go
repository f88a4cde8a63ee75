package previewsec_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/keystoretest"
)

var midnight = time.Date(2030, 6, 2, 0, 0, 0, 0, time.UTC)

func derivedReplica(t *testing.T, secret string, clk *keystoretest.Clock, opts ...previewsec.KeyRingOption) (*previewsec.KeyRing, *previewsec.Issuer, *previewsec.Verifier) {
	t.Helper()
	ring, err := previewsec.NewDerivedKeyRing([]byte(secret), append([]previewsec.KeyRingOption{previewsec.WithClock(clk.Now)}, opts...)...)
	require.NoError(t, err)
	iss, err := previewsec.NewIssuer(ring)
	require.NoError(t, err)
	ver, err := previewsec.NewVerifier(ring)
	require.NoError(t, err)
	return ring, iss, ver
}

const secret = "a-master-secret-of-at-least-32-bytes!"

// TestDerivedRotation: the stateless mode across a rotation boundary, two
// replicas with the same secret and no store.
func TestDerivedRotation(t *testing.T) {
	ctx := context.Background()
	clk := keystoretest.NewClock(midnight.Add(-time.Second))
	ringA, issA, verA := derivedReplica(t, secret, clk)
	_, _, verB := derivedReplica(t, secret, clk)

	before, exp, kidBefore, err := issA.Mint(ctx, testGrant, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, "20300601T000000Z", kidBefore)
	_, err = verB.Verify(ctx, before)
	require.NoError(t, err, "replicas derive the same key")

	clk.Set(midnight)
	after, _, kidAfter, err := issA.Mint(ctx, testGrant, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, "20300602T000000Z", kidAfter)
	ka, err := ringA.SigningKey(ctx)
	require.NoError(t, err)
	assert.Equal(t, kidAfter, ka.ID)
	for _, tok := range []string{before, after} {
		_, err = verB.Verify(ctx, tok)
		require.NoError(t, err)
	}

	// Minted a second before the rotation: valid until its own expiry.
	clk.Set(exp.Add(previewsec.DefaultLeeway - time.Second))
	_, err = verA.Verify(ctx, before)
	require.NoError(t, err)
	clk.Set(exp.Add(previewsec.DefaultLeeway))
	_, err = verA.Verify(ctx, before)
	assert.ErrorIs(t, err, previewsec.ErrExpired)

	// After the overlap the old key is refused even though it is derivable.
	clk.Set(midnight.Add(previewsec.DefaultMaxTTL + previewsec.DefaultLeeway))
	_, err = ringA.VerificationKey(ctx, kidBefore)
	assert.ErrorIs(t, err, previewsec.ErrUnknownKey)
	assert.Equal(t, []string{kidAfter}, ringA.KeyIDs(), "old derived key purged from memory")

	// Another secret: same kid, other key.
	_, _, verC := derivedReplica(t, strings.Repeat("z", 32), clk)
	_, err = verC.Verify(ctx, after)
	assert.ErrorIs(t, err, previewsec.ErrBadSignature)
}

func TestDerivedRefusesFutureAndUnalignedKids(t *testing.T) {
	ctx := context.Background()
	clk := keystoretest.NewClock(midnight.Add(12 * time.Hour))
	ring, _, _ := derivedReplica(t, secret, clk, previewsec.WithKeyRotation(6*time.Hour))
	_, err := ring.VerificationKey(ctx, "20300602T120000Z")
	assert.NoError(t, err, "current 6h period")
	_, err = ring.VerificationKey(ctx, "20300602T060000Z")
	assert.NoError(t, err, "previous period within overlap")
	for _, kid := range []string{
		"20300602T180000Z", // next period, not started
		"20300602T130000Z", // not aligned to 6h
		"20300602T000000Z", // out of the overlap
		"20300602T12000Z",  // wrong length
		"20300602X120000Z",
		"20301302T120000Z", // month 13
	} {
		_, err := ring.VerificationKey(ctx, kid)
		assert.ErrorIs(t, err, previewsec.ErrUnknownKey, kid)
	}
	// Within the leeway before the next period its key is accepted (skewed
	// replica clocks).
	clk.Set(midnight.Add(18*time.Hour - 10*time.Second))
	_, err = ring.VerificationKey(ctx, "20300602T180000Z")
	assert.NoError(t, err)
}

func TestKeyRingOptions(t *testing.T) {
	s := previewsec.NewMemoryKeyStore()
	for _, d := range []time.Duration{0, 30 * time.Second, 7 * time.Hour, 25 * time.Hour} {
		_, err := previewsec.NewKeyRing(s, previewsec.WithKeyRotation(d))
		assert.Error(t, err, d)
	}
	for _, d := range []time.Duration{time.Minute, time.Hour, 8 * time.Hour, 24 * time.Hour, 48 * time.Hour} {
		_, err := previewsec.NewKeyRing(s, previewsec.WithKeyRotation(d))
		assert.NoError(t, err, d)
	}
	_, err := previewsec.NewKeyRing(nil)
	assert.Error(t, err)
	_, err = previewsec.NewDerivedKeyRing([]byte("short"))
	assert.Error(t, err)
	_, err = previewsec.NewKeyRing(s, previewsec.WithMaxTTL(0))
	assert.Error(t, err)
	_, err = previewsec.NewKeyRing(s, previewsec.WithClock(nil))
	assert.Error(t, err)
}

func TestPeriodStartAlignedToUTCMidnight(t *testing.T) {
	ring, err := previewsec.NewKeyRing(previewsec.NewMemoryKeyStore(), previewsec.WithKeyRotation(8*time.Hour))
	require.NoError(t, err)
	loc := time.FixedZone("UTC+5", 5*3600)
	at := time.Date(2030, 6, 2, 3, 0, 0, 0, loc) // 2030-06-01 22:00 UTC
	assert.Equal(t, time.Date(2030, 6, 1, 16, 0, 0, 0, time.UTC), ring.PeriodStart(at))
	assert.Equal(t, time.Date(2030, 6, 2, 0, 0, 0, 0, time.UTC), ring.PeriodStart(time.Date(2030, 6, 2, 0, 0, 0, 0, time.UTC)))
}

// TestKeyRingStoreDown: signing fails closed with ErrUnavailable when the
// key of a new period cannot be created; cached keys keep verifying.
func TestKeyRingStoreDown(t *testing.T) {
	ctx := context.Background()
	clk := keystoretest.NewClock(midnight.Add(-30 * time.Minute))
	down := &downKeys{KeyStore: previewsec.NewMemoryKeyStore()}
	ring, err := previewsec.NewKeyRing(down, previewsec.WithClock(clk.Now))
	require.NoError(t, err)
	iss, err := previewsec.NewIssuer(ring)
	require.NoError(t, err)
	ver, err := previewsec.NewVerifier(ring)
	require.NoError(t, err)
	tok, _, _, err := iss.Mint(ctx, testGrant, 0)
	require.NoError(t, err)
	down.down = true
	_, err = ver.Verify(ctx, tok)
	assert.NoError(t, err)
	clk.Set(midnight)
	_, _, _, err = iss.Mint(ctx, testGrant, 0)
	assert.ErrorIs(t, err, previewsec.ErrUnavailable)
	_, err = ver.Verify(ctx, tok)
	assert.NoError(t, err, "the old key still verifies from memory")
}

type downKeys struct {
	previewsec.KeyStore
	down bool
}

func (d *downKeys) Keys(ctx context.Context, t time.Time) ([]previewsec.Key, error) {
	if d.down {
		return nil, assert.AnError
	}
	return d.KeyStore.Keys(ctx, t)
}

func (d *downKeys) DeleteExpiredKeys(ctx context.Context, t time.Time) (int, error) {
	if d.down {
		return 0, assert.AnError
	}
	return d.KeyStore.DeleteExpiredKeys(ctx, t)
}

func TestStartClose(t *testing.T) {
	ctx := context.Background()
	ring, err := previewsec.NewKeyRing(previewsec.NewMemoryKeyStore())
	require.NoError(t, err)
	require.NoError(t, ring.Start(ctx))
	assert.Error(t, ring.Start(ctx), "twice")
	require.Eventually(t, func() bool { return len(ring.KeyIDs()) == 1 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, ring.Close(ctx))
	require.NoError(t, ring.Close(ctx), "idempotent")

	revs, err := previewsec.NewRevocationList(previewsec.NewMemoryKeyStore())
	require.NoError(t, err)
	require.NoError(t, revs.Start(ctx))
	assert.Error(t, revs.Start(ctx))
	require.NoError(t, revs.Close(ctx))
	require.NoError(t, revs.Close(ctx))
}
