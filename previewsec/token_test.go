package previewsec_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"hash"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/keystoretest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestMemoryStoreConformance(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) (keystoretest.Store, keystoretest.Store) {
		s := previewsec.NewMemoryKeyStore()
		return s, s
	})
}

// now is the tests' fixed instant: midday, far from a rotation.
var now = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// countingStore counts store calls, to prove which paths touch the store.
type countingStore struct {
	*previewsec.MemoryKeyStore
	calls atomic.Int64
}

func (s *countingStore) CreateKey(ctx context.Context, k previewsec.Key) (previewsec.KeyCreateResult, error) {
	s.calls.Add(1)
	return s.MemoryKeyStore.CreateKey(ctx, k)
}

func (s *countingStore) Keys(ctx context.Context, t time.Time) ([]previewsec.Key, error) {
	s.calls.Add(1)
	return s.MemoryKeyStore.Keys(ctx, t)
}

func (s *countingStore) DeleteExpiredKeys(ctx context.Context, t time.Time) (int, error) {
	s.calls.Add(1)
	return s.MemoryKeyStore.DeleteExpiredKeys(ctx, t)
}

type fixture struct {
	clk   *keystoretest.Clock
	store *countingStore
	ring  *previewsec.KeyRing
	iss   *previewsec.Issuer
	ver   *previewsec.Verifier
	revs  *previewsec.RevocationList
	reg   *prometheus.Registry
	key   previewsec.Key
}

func newFixture(t *testing.T, vopts ...previewsec.VerifierOption) *fixture {
	t.Helper()
	f := &fixture{clk: keystoretest.NewClock(now), store: &countingStore{MemoryKeyStore: previewsec.NewMemoryKeyStore()}, reg: prometheus.NewRegistry()}
	var err error
	f.ring, err = previewsec.NewKeyRing(f.store, previewsec.WithClock(f.clk.Now))
	require.NoError(t, err)
	f.iss, err = previewsec.NewIssuer(f.ring, previewsec.WithRegisterer(f.reg))
	require.NoError(t, err)
	f.revs, err = previewsec.NewRevocationList(f.store, previewsec.WithClock(f.clk.Now))
	require.NoError(t, err)
	f.ver, err = previewsec.NewVerifier(f.ring, append([]previewsec.VerifierOption{
		previewsec.WithRevocations(f.revs), previewsec.WithRegisterer(f.reg)}, vopts...)...)
	require.NoError(t, err)
	f.key, err = f.ring.SigningKey(context.Background())
	require.NoError(t, err)
	return f
}

var testGrant = previewsec.Grant{UserID: "user-1", TenantID: "tenant-a", PreviewID: "prev-a", SystemID: "sys-1", Device: "desktop"}

func (f *fixture) mint(t *testing.T, g previewsec.Grant) string {
	t.Helper()
	tok, _, _, err := f.iss.Mint(context.Background(), g, 0)
	require.NoError(t, err)
	return tok
}

func b64(v any) string {
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	default:
		b, _ = json.Marshal(v)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// forge builds a token with any header and payload, signed with HMAC over
// h (nil = no signature).
func forge(header, payload map[string]any, h func() hash.Hash, key []byte) string {
	signing := b64(header) + "." + b64(payload)
	sig := ""
	if h != nil {
		m := hmac.New(h, key)
		m.Write([]byte(signing))
		sig = base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	return signing + "." + sig
}

// claims returns a valid payload at now, to be spoiled by each case.
func claims() map[string]any {
	return map[string]any{
		"iss": previewsec.DefaultIssuerName, "aud": []string{"preview"}, "sub": "user-1",
		"tid": "tenant-a", "pid": "prev-a", "sys": "sys-1", "dev": "desktop",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(30 * time.Minute).Unix(), "jti": "j1",
	}
}

func hs256(kid string) map[string]any {
	return map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}
}

func with(m map[string]any, kv ...any) map[string]any {
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
		} else {
			m[kv[i].(string)] = kv[i+1]
		}
	}
	return m
}

func TestMintAndVerify(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok, exp, kid, err := f.iss.Mint(ctx, testGrant, 30*time.Minute)
	require.NoError(t, err)
	assert.Equal(t, now.Add(30*time.Minute), exp)
	assert.Equal(t, "20300601T000000Z", kid)
	c, err := f.ver.Verify(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, previewsec.Claims{
		Issuer: previewsec.DefaultIssuerName, Audience: "preview", Subject: "user-1", TenantID: "tenant-a",
		PreviewID: "prev-a", SystemID: "sys-1", Device: "desktop", IssuedAt: now, NotBefore: now,
		ExpiresAt: exp, ID: c.ID, KeyID: kid,
	}, c)
	assert.Len(t, c.ID, 22, "128-bit jti")
	assert.Equal(t, 1.0, metricValue(t, f.reg, "hardening_previewsec_tokens_issued_total", ""))
}

func TestMintDefaultsAndLimits(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, exp, _, err := f.iss.Mint(ctx, testGrant, 0)
	require.NoError(t, err)
	assert.Equal(t, now.Add(previewsec.DefaultTTL), exp, "ttl 0 = default")
	_, _, _, err = f.iss.Mint(ctx, testGrant, previewsec.DefaultMaxTTL+time.Second)
	assert.ErrorIs(t, err, previewsec.ErrTTLTooLong, "over the max is an error, not a clamp")
	_, _, _, err = f.iss.Mint(ctx, testGrant, -time.Second)
	assert.ErrorIs(t, err, previewsec.ErrInvalidGrant)
	_, _, _, err = f.iss.Mint(ctx, previewsec.Grant{TenantID: "t"}, 0)
	assert.ErrorIs(t, err, previewsec.ErrInvalidGrant)
	_, _, _, err = f.iss.Mint(ctx, previewsec.Grant{PreviewID: "p"}, 0)
	assert.ErrorIs(t, err, previewsec.ErrInvalidGrant)
	_, err = previewsec.NewIssuer(f.ring, previewsec.WithDefaultTTL(2*time.Hour))
	assert.Error(t, err, "default above max")
}

// TestAttacks: every forged or misused token is rejected with its typed
// error.
func TestAttacks(t *testing.T) {
	f := newFixture(t)
	kid, key := f.key.ID, f.key.Secret
	valid := f.mint(t, testGrant)
	parts := strings.Split(valid, ".")

	otherKey := []byte("0123456789abcdef0123456789abcdef")
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"alg none", forge(map[string]any{"alg": "none", "typ": "JWT", "kid": kid}, claims(), nil, nil), previewsec.ErrAlgorithm},
		{"alg none with signature", forge(map[string]any{"alg": "none", "kid": kid}, claims(), sha256.New, key), previewsec.ErrAlgorithm},
		{"alg NONE", forge(map[string]any{"alg": "NONE", "kid": kid}, claims(), nil, nil), previewsec.ErrAlgorithm},
		{"alg HS384 with the real key", forge(map[string]any{"alg": "HS384", "kid": kid}, claims(), sha512.New384, key), previewsec.ErrAlgorithm},
		{"alg HS512 with the real key", forge(map[string]any{"alg": "HS512", "kid": kid}, claims(), sha512.New, key), previewsec.ErrAlgorithm},
		{"alg RS256 with the HMAC key as public key", forge(map[string]any{"alg": "RS256", "kid": kid}, claims(), sha256.New, key), previewsec.ErrAlgorithm},
		{"alg ES256", forge(map[string]any{"alg": "ES256", "kid": kid}, claims(), sha256.New, key), previewsec.ErrAlgorithm},
		{"alg missing", forge(map[string]any{"kid": kid}, claims(), sha256.New, key), previewsec.ErrAlgorithm},
		{"empty signature", parts[0] + "." + parts[1] + ".", previewsec.ErrBadSignature},
		{"tampered payload", parts[0] + "." + b64(with(claims(), "pid", "prev-b")) + "." + parts[2], previewsec.ErrBadSignature},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flipLast(parts[2]), previewsec.ErrBadSignature},
		{"signed with another key", forge(hs256(kid), claims(), sha256.New, otherKey), previewsec.ErrBadSignature},
		{"wrong kid (yesterday, never created)", forge(hs256("20300531T000000Z"), claims(), sha256.New, key), previewsec.ErrUnknownKey},
		{"wrong kid (far past)", forge(hs256("20200101T000000Z"), claims(), sha256.New, key), previewsec.ErrUnknownKey},
		{"wrong kid (future)", forge(hs256("20310101T000000Z"), claims(), sha256.New, key), previewsec.ErrUnknownKey},
		{"kid missing", forge(map[string]any{"alg": "HS256"}, claims(), sha256.New, key), previewsec.ErrUnknownKey},
		{"kid not a string", forge(map[string]any{"alg": "HS256", "kid": 20300601}, claims(), sha256.New, key), previewsec.ErrUnknownKey},
		{"kid with path", forge(hs256("../../../etc/passwd"), claims(), sha256.New, key), previewsec.ErrUnknownKey},
		{"kid with path, right length", forge(hs256("../../../etc/pas"), claims(), sha256.New, key), previewsec.ErrUnknownKey},
		{"kid with SQL", forge(hs256("x' OR '1'='1"), claims(), sha256.New, key), previewsec.ErrUnknownKey},
		{"kid with SQL, right length", forge(hs256("2030'--T00000;Z"), claims(), sha256.New, key), previewsec.ErrUnknownKey},
		{"kid with NUL", forge(hs256(kid[:15]+"\x00"), claims(), sha256.New, key), previewsec.ErrUnknownKey},
		{"expired beyond leeway", forge(hs256(kid), with(claims(), "iat", now.Add(-time.Hour).Unix(), "nbf", nil, "exp", now.Add(-31*time.Second).Unix()), sha256.New, key), previewsec.ErrExpired},
		{"nbf in the future", forge(hs256(kid), with(claims(), "nbf", now.Add(2*time.Minute).Unix()), sha256.New, key), previewsec.ErrNotYetValid},
		{"iat in the future", forge(hs256(kid), with(claims(), "iat", now.Add(2*time.Minute).Unix(), "nbf", nil), sha256.New, key), previewsec.ErrNotYetValid},
		{"missing exp", forge(hs256(kid), with(claims(), "exp", nil), sha256.New, key), previewsec.ErrMissingClaim},
		{"missing iat", forge(hs256(kid), with(claims(), "iat", nil), sha256.New, key), previewsec.ErrMissingClaim},
		{"missing pid", forge(hs256(kid), with(claims(), "pid", nil), sha256.New, key), previewsec.ErrMissingClaim},
		{"missing tid", forge(hs256(kid), with(claims(), "tid", ""), sha256.New, key), previewsec.ErrMissingClaim},
		{"missing aud", forge(hs256(kid), with(claims(), "aud", nil), sha256.New, key), previewsec.ErrMissingClaim},
		{"missing iss", forge(hs256(kid), with(claims(), "iss", nil), sha256.New, key), previewsec.ErrMissingClaim},
		{"exp - iat over the max", forge(hs256(kid), with(claims(), "iat", now.Add(-time.Minute).Unix(), "exp", now.Add(2*time.Hour).Unix()), sha256.New, key), previewsec.ErrLifetimeTooLong},
		{"wrong aud (hub)", forge(hs256(kid), with(claims(), "aud", "hub"), sha256.New, key), previewsec.ErrInvalidAudience},
		{"wrong iss", forge(hs256(kid), with(claims(), "iss", "evil"), sha256.New, key), previewsec.ErrInvalidIssuer},
		{"exp as string", forge(hs256(kid), with(claims(), "exp", "soon"), sha256.New, key), previewsec.ErrMalformed},
		{"1 MB token", strings.Repeat("a", 1<<20), previewsec.ErrTooLong},
		{"10,000 dots", strings.Repeat(".", 10000), previewsec.ErrTooLong},
		{"two segments", parts[0] + "." + parts[1], previewsec.ErrMalformed},
		{"four segments", valid + ".x", previewsec.ErrMalformed},
		{"padding in segment", parts[0] + "=." + parts[1] + "." + parts[2], previewsec.ErrMalformed},
		{"empty", "", previewsec.ErrMalformed},
		{"garbage", "not a token", previewsec.ErrMalformed},
	}
	calls := f.store.calls.Load()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.ver.Verify(context.Background(), tc.token)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want, "got %v", err)
		})
	}
	// Only the plausible-but-missing kids (yesterday, tomorrow's period
	// at most) may reach the store, and at most once per second.
	assert.LessOrEqual(t, f.store.calls.Load()-calls, int64(3))

	_, err := f.ver.Verify(context.Background(), valid)
	require.NoError(t, err, "the valid token still verifies")
}

func flipLast(s string) string {
	b := []byte(s)
	if b[len(b)-2] == 'A' {
		b[len(b)-2] = 'B'
	} else {
		b[len(b)-2] = 'A'
	}
	return string(b)
}

func TestTenThousandDotsUnderARaisedCap(t *testing.T) {
	f := newFixture(t, previewsec.WithMaxTokenLength(1<<20))
	_, err := f.ver.Verify(context.Background(), strings.Repeat(".", 10000))
	assert.ErrorIs(t, err, previewsec.ErrMalformed)
}

func TestLeeway(t *testing.T) {
	f := newFixture(t)
	kid, key := f.key.ID, f.key.Secret
	ctx := context.Background()
	// Expired 29s ago, iat and nbf 29s ahead: all within the 30s leeway.
	for _, c := range []map[string]any{
		with(claims(), "iat", now.Add(-time.Hour).Unix(), "nbf", nil, "exp", now.Add(-29*time.Second).Unix()),
		with(claims(), "iat", now.Add(29*time.Second).Unix(), "nbf", now.Add(29*time.Second).Unix()),
	} {
		_, err := f.ver.Verify(ctx, forge(hs256(kid), c, sha256.New, key))
		assert.NoError(t, err)
	}
	_, err := previewsec.NewKeyRing(f.store, previewsec.WithLeeway(2*time.Minute))
	assert.Error(t, err, "leeway is capped")
}

func TestRevokedToken(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.mint(t, testGrant)
	other := f.mint(t, previewsec.Grant{TenantID: "tenant-a", PreviewID: "prev-b"})
	c, err := f.ver.Verify(ctx, tok)
	require.NoError(t, err)
	require.NoError(t, f.revs.RevokeToken(ctx, c.ID, c.ExpiresAt))
	_, err = f.ver.Verify(ctx, tok)
	assert.ErrorIs(t, err, previewsec.ErrRevoked)

	require.NoError(t, f.revs.RevokePreview(ctx, "prev-b"))
	_, err = f.ver.Verify(ctx, other)
	assert.ErrorIs(t, err, previewsec.ErrRevoked)
	assert.Equal(t, 2.0, metricValue(t, f.reg, "hardening_previewsec_token_rejections_total", "revoked"))
}

// metricValue returns the value of the counter name{reason} (reason ""
// for an unlabelled counter).
func metricValue(t *testing.T, reg *prometheus.Registry, name, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if reason == "" || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == reason) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s{reason=%q}", name, reason)
	return 0
}

// TestRevocationStoreDownFailsClosed: a stale mirror and an unreachable
// store deny with ErrUnavailable.
func TestRevocationStoreDownFailsClosed(t *testing.T) {
	clk := keystoretest.NewClock(now)
	ks := previewsec.NewMemoryKeyStore()
	ring, err := previewsec.NewKeyRing(ks, previewsec.WithClock(clk.Now))
	require.NoError(t, err)
	down := &flakyRevocations{RevocationStore: ks}
	revs, err := previewsec.NewRevocationList(down, previewsec.WithClock(clk.Now))
	require.NoError(t, err)
	iss, err := previewsec.NewIssuer(ring)
	require.NoError(t, err)
	ver, err := previewsec.NewVerifier(ring, previewsec.WithRevocations(revs))
	require.NoError(t, err)
	tok, _, _, err := iss.Mint(context.Background(), testGrant, 0)
	require.NoError(t, err)
	_, err = ver.Verify(context.Background(), tok)
	require.NoError(t, err)
	down.fail.Store(true)
	_, err = ver.Verify(context.Background(), tok)
	require.NoError(t, err, "fresh mirror: no store round trip")
	clk.Advance(previewsec.DefaultRevocationMaxAge)
	_, err = ver.Verify(context.Background(), tok)
	assert.ErrorIs(t, err, previewsec.ErrUnavailable)
	assert.Equal(t, "unavailable", previewsec.RejectionReason(err))
}

type flakyRevocations struct {
	previewsec.RevocationStore
	fail atomic.Bool
}

func (f *flakyRevocations) Revocations(ctx context.Context, t time.Time) ([]previewsec.Revocation, error) {
	if f.fail.Load() {
		return nil, assert.AnError
	}
	return f.RevocationStore.Revocations(ctx, t)
}

func TestVerifierRejectsShortRetention(t *testing.T) {
	ring, err := previewsec.NewKeyRing(previewsec.NewMemoryKeyStore(), previewsec.WithMaxTTL(2*time.Hour))
	require.NoError(t, err)
	revs, err := previewsec.NewRevocationList(previewsec.NewMemoryKeyStore())
	require.NoError(t, err)
	_, err = previewsec.NewVerifier(ring, previewsec.WithRevocations(revs))
	assert.Error(t, err)
}

// TestVerifySteadyStateNoStoreRoundTrips: once keys and revocations are
// loaded, Verify never calls the store.
func TestVerifySteadyStateNoStoreRoundTrips(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, testGrant)
	_, err := f.ver.Verify(context.Background(), tok)
	require.NoError(t, err)
	before := f.store.calls.Load()
	for i := 0; i < 100; i++ {
		_, err := f.ver.Verify(context.Background(), tok)
		require.NoError(t, err)
		_, _, _, err = f.iss.Mint(context.Background(), testGrant, 0)
		require.NoError(t, err)
	}
	assert.Equal(t, before, f.store.calls.Load())
}
