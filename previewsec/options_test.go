package previewsec_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/systembuilderhub/hardening/previewsec"
)

// TestSharedOptionsFitOnlyTheirConstructors: a shared option is an option
// of exactly the constructors it documents; passing it to any other does
// not compile (a value is assignable to an interface parameter only if it
// implements it).
func TestSharedOptionsFitOnlyTheirConstructors(t *testing.T) {
	t.Parallel()
	kinds := map[string]reflect.Type{
		"key ring":   reflect.TypeFor[previewsec.KeyRingOption](),
		"issuer":     reflect.TypeFor[previewsec.IssuerOption](),
		"verifier":   reflect.TypeFor[previewsec.VerifierOption](),
		"revocation": reflect.TypeFor[previewsec.RevocationOption](),
		"middleware": reflect.TypeFor[previewsec.MiddlewareOption](),
	}
	for _, tc := range []struct {
		option any
		fits   []string
	}{
		{previewsec.WithLogger(nil), []string{"key ring", "issuer", "verifier", "revocation", "middleware"}},
		{previewsec.WithClock(time.Now), []string{"key ring", "issuer", "verifier", "revocation"}},
		{previewsec.WithRegisterer(nil), []string{"issuer", "verifier"}},
		{previewsec.WithKeyRotation(time.Hour), []string{"key ring"}},
		{previewsec.WithDefaultTTL(time.Minute), []string{"issuer"}},
		{previewsec.WithMaxTokenLength(100), []string{"verifier"}},
		{previewsec.WithRevocationMaxAge(time.Second), []string{"revocation"}},
		{previewsec.WithCookieName("c"), []string{"middleware"}},
	} {
		typ := reflect.TypeOf(tc.option)
		for kind, iface := range kinds {
			want := false
			for _, f := range tc.fits {
				want = want || f == kind
			}
			assert.Equal(t, want, typ.Implements(iface), "%s as a %s option", typ, kind)
		}
	}
}

func TestNilClockIsAnError(t *testing.T) {
	t.Parallel()
	_, err := previewsec.NewDerivedKeyRing(make([]byte, 32), previewsec.WithClock(nil))
	assert.Error(t, err)
	_, err = previewsec.NewRevocationList(previewsec.NewMemoryKeyStore(), previewsec.WithClock(nil))
	assert.Error(t, err)
}
