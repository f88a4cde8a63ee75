package previewsec

import (
	"time"

	"github.com/systembuilderhub/hardening/internal/tokencache"
)

// DefaultTokenCacheSize is how many verified tokens a Verifier remembers
// unless WithTokenCache says otherwise. A preview token is presented on
// every request of the preview's page, its assets and API calls, for up to
// the max TTL; 1024 entries cover that many tokens live at once per
// replica and hold at most about 1024 × (DefaultMaxTokenLength + 200
// bytes), under 5 MiB, in the worst case (a few hundred KiB for typical
// tokens).
const DefaultTokenCacheSize = 1024

// WithTokenCache sets how many verified tokens the Verifier remembers
// (default DefaultTokenCacheSize); 0 disables the cache and a negative size
// is an error.
//
// A token presented again within its lifetime then skips the signature
// check and the claim decoding, which allocates nothing; what is cached is
// the result of those two steps only:
//
//   - the entry is keyed by the token's SHA-256 (the token is not kept) and
//     only successful verifications are stored; a token spelled with any
//     byte outside the JWS compact alphabet (a line break, which base64
//     decoding ignores) is verified in full each time and never stored,
//     so one token's holder cannot evict others with its spellings;
//   - it is used only while the clock is between the token's iat/nbf and
//     its exp (a token within the leeway past exp is verified in full), so
//     it never outlives the token;
//   - it is used only while the key that verified the token is still in
//     the key ring, with the same secret: a retired or replaced key makes
//     the next Verify check the token in full;
//   - the revocation list is still checked on every Verify, and the
//     middleware's preview and tenant checks still run on every request.
//
// The cache is bounded: when full, it evicts (expired entries first, then
// those not used recently), so a flood of distinct tokens cannot grow it.
// It has no goroutine.
func WithTokenCache(size int) VerifierOption {
	return verifierOption(func(v *Verifier) { v.cacheSize = size })
}

// cachedToken is what a cache hit stands for: the decoded claims of a token
// whose signature the key with secret verified.
type cachedToken struct {
	claims Claims
	secret *byte // identity of the verifying key's secret (its first byte)
}

// cached returns the claims of token's cache entry when it may be used at
// now; an entry whose key left the ring is dropped.
func (v *Verifier) cached(k tokencache.Key, now time.Time) (Claims, bool) {
	e, ok := v.cache.Get(k, now)
	if !ok {
		return Claims{}, false
	}
	if !v.ring.holds(e.claims.KeyID, e.secret, now) {
		v.cache.Delete(k)
		return Claims{}, false
	}
	return e.claims, true
}

// remember caches the claims of a token verified by secret, usable from
// its iat (or nbf, if later) until its exp.
func (v *Verifier) remember(k tokencache.Key, c Claims, secret []byte, now time.Time) {
	if v.cache == nil || len(secret) == 0 {
		return
	}
	from := c.IssuedAt
	if c.NotBefore.After(from) {
		from = c.NotBefore
	}
	v.cache.Put(k, cachedToken{claims: c, secret: &secret[0]}, from, c.ExpiresAt, now)
}

// holds reports whether the key kid, whose secret starts at secret, is in
// the ring and still verifies at now. A key reloaded from the store has a
// new secret slice: its tokens are then verified once more in full.
func (r *KeyRing) holds(kid string, secret *byte, now time.Time) bool {
	k, ok := r.state.Load().byID[kid]
	return ok && now.Before(k.ExpiresAt) && len(k.Secret) > 0 && &k.Secret[0] == secret
}
