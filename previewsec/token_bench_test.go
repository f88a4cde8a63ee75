package previewsec_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/systembuilderhub/hardening/previewsec"
)

// The benchmarks compare Mint and Verify with golang-jwt used directly on a
// fixed key: the same claims, the same parser checks, in the same run.
//
//	go test ./previewsec -run '^$' -bench 'Mint|Verify' -benchmem -count 5

type benchClaims struct {
	TenantID  string `json:"tid,omitempty"`
	PreviewID string `json:"pid,omitempty"`
	SystemID  string `json:"sys,omitempty"`
	Device    string `json:"dev,omitempty"`
	jwt.RegisteredClaims
}

func benchFixture(b *testing.B) *fixture {
	t := &testing.T{}
	f := newFixture(t)
	if t.Failed() {
		b.Fatal("fixture")
	}
	return f
}

func BenchmarkMint(b *testing.B) {
	f := benchFixture(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := f.iss.Mint(ctx, testGrant, 30*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMintBaselineGolangJWT(b *testing.B) {
	f := benchFixture(b)
	key, kid := f.key.Secret, f.key.ID
	b.ReportAllocs()
	for b.Loop() {
		iat := f.clk.Now().Truncate(time.Second)
		jti, err := benchID()
		if err != nil {
			b.Fatal(err)
		}
		t := jwt.NewWithClaims(jwt.SigningMethodHS256, &benchClaims{
			TenantID: testGrant.TenantID, PreviewID: testGrant.PreviewID, SystemID: testGrant.SystemID, Device: testGrant.Device,
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer: previewsec.DefaultIssuerName, Subject: testGrant.UserID, Audience: jwt.ClaimStrings{"preview"},
				IssuedAt: jwt.NewNumericDate(iat), NotBefore: jwt.NewNumericDate(iat),
				ExpiresAt: jwt.NewNumericDate(iat.Add(30 * time.Minute)), ID: jti,
			},
		})
		t.Header["kid"] = kid
		if _, err := t.SignedString(key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is Verify of one token presented again and again: with
// the token cache (a hit: no signature check, no JSON decoding) and
// without it (WithTokenCache(0): the full check every time).
func BenchmarkVerify(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []previewsec.VerifierOption
	}{{"cached", nil}, {"uncached", []previewsec.VerifierOption{previewsec.WithTokenCache(0)}}} {
		b.Run(bc.name, func(b *testing.B) {
			t := &testing.T{}
			f := newFixture(t, bc.opts...)
			if t.Failed() {
				b.Fatal("fixture")
			}
			ctx := context.Background()
			tok := f.mint(&testing.T{}, testGrant)
			if _, err := f.ver.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
			calls := f.store.calls.Load()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.ver.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(f.store.calls.Load()-calls)/float64(b.N), "store-calls/op")
		})
	}
}

func BenchmarkVerifyBaselineGolangJWT(b *testing.B) {
	f := benchFixture(b)
	tok := f.mint(&testing.T{}, testGrant)
	key := f.key.Secret
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience("preview"), jwt.WithIssuer(previewsec.DefaultIssuerName),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(30*time.Second), jwt.WithTimeFunc(f.clk.Now),
		jwt.WithStrictDecoding())
	keyFunc := func(*jwt.Token) (any, error) { return key, nil }
	b.ReportAllocs()
	for b.Loop() {
		var c benchClaims
		if _, err := p.ParseWithClaims(tok, &c, keyFunc); err != nil {
			b.Fatal(err)
		}
	}
}

// The interleaved benchmarks run ours and the golang-jwt baseline in
// alternating batches inside one loop, so load changes on a shared machine
// hit both equally; they report the ratio ours/baseline.
//
//	go test ./previewsec -run '^$' -bench Interleaved -benchmem -count 5

const benchBatch = 32

func BenchmarkMintInterleaved(b *testing.B) {
	f := benchFixture(b)
	ctx := context.Background()
	key, kid := f.key.Secret, f.key.ID
	var ours, base time.Duration
	for b.Loop() {
		t0 := time.Now()
		for range benchBatch {
			if _, _, _, err := f.iss.Mint(ctx, testGrant, 30*time.Minute); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for range benchBatch {
			iat := f.clk.Now().Truncate(time.Second)
			jti, _ := benchID()
			t := jwt.NewWithClaims(jwt.SigningMethodHS256, &benchClaims{
				TenantID: testGrant.TenantID, PreviewID: testGrant.PreviewID, SystemID: testGrant.SystemID, Device: testGrant.Device,
				RegisteredClaims: jwt.RegisteredClaims{
					Issuer: previewsec.DefaultIssuerName, Subject: testGrant.UserID, Audience: jwt.ClaimStrings{"preview"},
					IssuedAt: jwt.NewNumericDate(iat), NotBefore: jwt.NewNumericDate(iat),
					ExpiresAt: jwt.NewNumericDate(iat.Add(30 * time.Minute)), ID: jti,
				},
			})
			t.Header["kid"] = kid
			if _, err := t.SignedString(key); err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		ours += t1.Sub(t0)
		base += t2.Sub(t1)
	}
	b.ReportMetric(float64(ours)/float64(b.N*benchBatch), "ours-ns/op")
	b.ReportMetric(float64(base)/float64(b.N*benchBatch), "golangjwt-ns/op")
	b.ReportMetric(float64(ours)/float64(base), "ratio")
}

// BenchmarkVerifyInterleaved runs three in alternating batches: Verify
// with the token cache (a hit), Verify without it, and golang-jwt's
// ParseWithClaims with the same key, method and checks. It reports each
// one's ns/op and the ratios to golang-jwt (goal for the cached one: at
// most 0.2).
func BenchmarkVerifyInterleaved(b *testing.B) {
	f := benchFixture(b)
	ctx := context.Background()
	tok := f.mint(&testing.T{}, testGrant)
	uncached, err := previewsec.NewVerifier(f.ring, previewsec.WithRevocations(f.revs), previewsec.WithTokenCache(0))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.ver.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	key := f.key.Secret
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience("preview"), jwt.WithIssuer(previewsec.DefaultIssuerName),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(30*time.Second), jwt.WithTimeFunc(f.clk.Now),
		jwt.WithStrictDecoding())
	keyFunc := func(*jwt.Token) (any, error) { return key, nil }
	calls := f.store.calls.Load()
	var cached, full, base time.Duration
	for b.Loop() {
		t0 := time.Now()
		for range benchBatch {
			if _, err := f.ver.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for range benchBatch {
			if _, err := uncached.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		for range benchBatch {
			var c benchClaims
			if _, err := p.ParseWithClaims(tok, &c, keyFunc); err != nil {
				b.Fatal(err)
			}
		}
		t3 := time.Now()
		cached += t1.Sub(t0)
		full += t2.Sub(t1)
		base += t3.Sub(t2)
	}
	n := float64(b.N * benchBatch)
	b.ReportMetric(float64(cached)/n, "cached-ns/op")
	b.ReportMetric(float64(full)/n, "uncached-ns/op")
	b.ReportMetric(float64(base)/n, "golangjwt-ns/op")
	b.ReportMetric(float64(cached)/float64(base), "cached/golangjwt")
	b.ReportMetric(float64(full)/float64(base), "uncached/golangjwt")
	b.ReportMetric(float64(f.store.calls.Load()-calls)/n, "store-calls/op")
}
