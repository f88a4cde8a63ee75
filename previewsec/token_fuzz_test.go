package previewsec_test

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/keystoretest"
)

// FuzzVerify feeds arbitrary strings to Verify: it must never panic and
// never accept anything but the one token minted here. The seed corpus
// (testdata/fuzz/FuzzVerify) holds forged tokens of every attack shape.
func FuzzVerify(f *testing.F) {
	clk := keystoretest.NewClock(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
	ring, err := previewsec.NewDerivedKeyRing([]byte("fuzz-master-secret-0123456789abcdef"), previewsec.WithClock(clk.Now))
	if err != nil {
		f.Fatal(err)
	}
	ver, err := previewsec.NewVerifier(ring)
	if err != nil {
		f.Fatal(err)
	}
	// One valid token, the same in every fuzz worker (fixed jti), so the
	// fuzzer mutates a real token without it counting as an acceptance.
	key, err := ring.SigningKey(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	iat := clk.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, &benchClaims{TenantID: "t", PreviewID: "p",
		RegisteredClaims: jwt.RegisteredClaims{Issuer: previewsec.DefaultIssuerName, Audience: jwt.ClaimStrings{"preview"},
			IssuedAt: jwt.NewNumericDate(iat), ExpiresAt: jwt.NewNumericDate(iat.Add(time.Minute)), ID: "fixed"}})
	tok.Header["kid"] = key.ID
	valid, err := tok.SignedString(key.Secret)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add("")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ver.Verify(context.Background(), s)
		if s == valid {
			if err != nil {
				t.Fatalf("the minted token was rejected: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("accepted %q as %+v", s, c)
		}
		if previewsec.RejectionReason(err) == "" {
			t.Fatalf("no reason for %v", err)
		}
	})
}
