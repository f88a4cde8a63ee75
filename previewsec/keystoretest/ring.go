package keystoretest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/internal/keyrules"
)

// Clock is a settable clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set sets the clock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type replica struct {
	ring *previewsec.KeyRing
	iss  *previewsec.Issuer
	ver  *previewsec.Verifier
}

func newReplica(t *testing.T, s Store, clk *Clock, revs *previewsec.RevocationList) replica {
	t.Helper()
	ring, err := previewsec.NewKeyRing(s, previewsec.WithClock(clk.Now))
	require.NoError(t, err)
	iss, err := previewsec.NewIssuer(ring)
	require.NoError(t, err)
	var opts []previewsec.VerifierOption
	if revs != nil {
		opts = append(opts, previewsec.WithRevocations(revs))
	}
	ver, err := previewsec.NewVerifier(ring, opts...)
	require.NoError(t, err)
	return replica{ring, iss, ver}
}

var grant = previewsec.Grant{UserID: "u1", TenantID: "t1", PreviewID: "p1", SystemID: "s1", Device: "desktop"}

func runReplicaRotation(t *testing.T, a, b Store) {
	ctx := context.Background()
	clk := NewClock(base.Add(-time.Second)) // one second before midnight UTC
	ra, rb := newReplica(t, a, clk, nil), newReplica(t, b, clk, nil)

	before, _, kidBefore, err := ra.iss.Mint(ctx, grant, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, keyrules.KeyID(base.Add(-24*time.Hour)), kidBefore)
	_, err = rb.ver.Verify(ctx, before)
	require.NoError(t, err, "replica B verifies A's token")

	// Midnight: both replicas rotate at the same moment.
	clk.Set(base)
	var wg sync.WaitGroup
	kids := make([]string, 2)
	secrets := make([][]byte, 2)
	errs := make([]error, 2)
	for i, r := range []replica{ra, rb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := r.ring.SigningKey(ctx)
			kids[i], secrets[i], errs[i] = k.ID, k.Secret, err
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	assert.Equal(t, keyrules.KeyID(base), kids[0])
	assert.Equal(t, kids[0], kids[1])
	assert.Equal(t, secrets[0], secrets[1], "both replicas sign with the one key of the period")
	keys, err := a.Keys(ctx, base)
	require.NoError(t, err)
	require.Len(t, keys, 2, "old key (still verifying) and exactly one new key")

	after, _, kidAfter, err := rb.iss.Mint(ctx, grant, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, kids[0], kidAfter)
	_, err = ra.ver.Verify(ctx, after)
	require.NoError(t, err)

	// The token minted a second before the rotation lives to its own expiry.
	clk.Set(base.Add(59*time.Minute + 58*time.Second))
	for _, r := range []replica{ra, rb} {
		_, err = r.ver.Verify(ctx, before)
		require.NoError(t, err)
	}
	clk.Set(base.Add(time.Hour - time.Second + previewsec.DefaultLeeway)) // exp + leeway; the key still verifies
	_, err = rb.ver.Verify(ctx, before)
	assert.ErrorIs(t, err, previewsec.ErrExpired)
}

func runPurge(t *testing.T, s Store) {
	ctx := context.Background()
	clk := NewClock(base.Add(12 * time.Hour))
	r := newReplica(t, s, clk, nil)
	_, _, oldKid, err := r.iss.Mint(ctx, grant, 0)
	require.NoError(t, err)

	// Next period, still within the overlap: the old key verifies.
	clk.Set(base.Add(24*time.Hour + 30*time.Minute))
	require.NoError(t, r.ring.Refresh(ctx))
	_, err = r.ring.VerificationKey(ctx, oldKid)
	require.NoError(t, err)
	assert.Len(t, r.ring.KeyIDs(), 2)

	// Overlap over (period end + max TTL + leeway): gone from ring and store.
	clk.Set(base.Add(24*time.Hour + previewsec.DefaultMaxTTL + previewsec.DefaultLeeway))
	_, err = r.ring.VerificationKey(ctx, oldKid)
	assert.ErrorIs(t, err, previewsec.ErrUnknownKey)
	require.NoError(t, r.ring.Refresh(ctx))
	assert.Equal(t, []string{keyrules.KeyID(base.Add(24 * time.Hour))}, r.ring.KeyIDs())
	keys, err := s.Keys(ctx, time.Time{})
	require.NoError(t, err)
	require.Len(t, keys, 1, "expired key deleted from the store")
	assert.Equal(t, keyrules.KeyID(base.Add(24*time.Hour)), keys[0].ID)
}

func runRevocationAcrossReplicas(t *testing.T, a, b Store) {
	ctx := context.Background()
	clk := NewClock(base.Add(time.Hour))
	la, err := previewsec.NewRevocationList(a, previewsec.WithClock(clk.Now))
	require.NoError(t, err)
	lb, err := previewsec.NewRevocationList(b, previewsec.WithClock(clk.Now))
	require.NoError(t, err)
	ra, rb := newReplica(t, a, clk, la), newReplica(t, b, clk, lb)

	tok, exp, _, err := ra.iss.Mint(ctx, grant, 0)
	require.NoError(t, err)
	other, _, _, err := ra.iss.Mint(ctx, previewsec.Grant{TenantID: "t1", PreviewID: "p2"}, 0)
	require.NoError(t, err)
	_, err = rb.ver.Verify(ctx, tok)
	require.NoError(t, err)

	require.NoError(t, la.RevokePreview(ctx, "p1"))
	_, err = ra.ver.Verify(ctx, tok)
	assert.ErrorIs(t, err, previewsec.ErrRevoked, "effective at once on the revoking replica")
	// B sees it once its mirror is older than the max age.
	clk.Advance(previewsec.DefaultRevocationMaxAge)
	_, err = rb.ver.Verify(ctx, tok)
	assert.ErrorIs(t, err, previewsec.ErrRevoked)
	_, err = rb.ver.Verify(ctx, other)
	assert.NoError(t, err, "other previews unaffected")

	// A token minted after the revocation works.
	clk.Advance(time.Second)
	fresh, _, _, err := rb.iss.Mint(ctx, grant, 0)
	require.NoError(t, err)
	_, err = ra.ver.Verify(ctx, fresh)
	assert.NoError(t, err)

	// Revoke one token by jti.
	c, err := ra.ver.Verify(ctx, other)
	require.NoError(t, err)
	require.NoError(t, lb.RevokeToken(ctx, c.ID, c.ExpiresAt))
	clk.Advance(previewsec.DefaultRevocationMaxAge)
	_, err = ra.ver.Verify(ctx, other)
	assert.ErrorIs(t, err, previewsec.ErrRevoked)

	// Entries disappear once no token they revoke can be valid.
	clk.Set(exp.Add(2 * time.Hour))
	require.NoError(t, la.Refresh(ctx))
	revs, err := a.Revocations(ctx, time.Time{})
	require.NoError(t, err)
	assert.Empty(t, revs)
}

// runConcurrentAcrossRotation mints on one replica and verifies on the
// other from several goroutines while the clock crosses a rotation.
func runConcurrentAcrossRotation(t *testing.T, a, b Store) {
	ctx := context.Background()
	clk := NewClock(base.Add(-3 * time.Second))
	reps := []replica{newReplica(t, a, clk, nil), newReplica(t, b, clk, nil)}
	const workers, rounds = 4, 25
	errs := make(chan error, workers*rounds)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				tok, _, _, err := reps[(w+i)%2].iss.Mint(ctx, grant, 0)
				if err == nil {
					_, err = reps[(w+i+1)%2].ver.Verify(ctx, tok)
				}
				if err != nil {
					errs <- err
				}
				if w == 0 && i%4 == 3 {
					clk.Advance(time.Second) // 6s in all: crosses midnight mid-run
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	keys, err := a.Keys(ctx, clk.Now())
	require.NoError(t, err)
	require.Len(t, keys, 2, "one key per period")
	assert.Equal(t, keyrules.KeyID(base), keys[1].ID)
}
