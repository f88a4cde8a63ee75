package streamauth

import (
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/internal/tokencache"
)

// DefaultTokenCacheSize is how many verified tokens a [JWTAuthenticator]
// remembers unless [WithTokenCache] says otherwise. A bearer or stream
// token is presented on every request and every reconnect of its holder;
// 1024 entries cover that many callers active at once per replica and
// hold at most about 1024 × (MaxTokenLen + 200 bytes), under 9 MiB, in the
// worst case (a few hundred KiB for typical tokens).
const DefaultTokenCacheSize = 1024

// WithTokenCache sets how many verified tokens the authenticator remembers
// (default DefaultTokenCacheSize); 0 disables the cache and a negative size
// is an error.
//
// A token presented again within its lifetime then skips the signature
// check and the claim decoding: what is cached is the Caller those two
// steps produce, nothing else.
//
//   - The entry is keyed by the token's SHA-256 (the token is not kept) and
//     only successful verifications are stored; a token spelled with any
//     byte outside the JWS compact alphabet (a line break, which base64
//     decoding ignores) is verified in full each time and never stored,
//     so one token's holder cannot evict others with its spellings.
//   - It is used only while the clock (WithClock) is between the token's
//     nbf (and iat, with WithIssuedAtCheck) and its exp: a token within the leeway past exp is verified in
//     full, so an entry never outlives its token.
//   - The authenticator has one secret, fixed at NewJWT, so no entry can
//     outlive its key: a service that rotates its secret builds a new
//     authenticator, with an empty cache.
//   - Everything per request still runs on every request: the registry's
//     revocations and limits, WithResourceTenant's tenant check, and
//     whatever the application checks on the Caller.
//   - A hit returns a Caller with its own copy of Roles (one allocation when
//     the token has roles, none otherwise), so a handler that sorts or edits
//     the roles cannot change another request's.
//
// The cache is bounded: when full, it evicts (expired entries first, then
// those not used recently), so a flood of distinct tokens cannot grow it.
// It has no goroutine.
func WithTokenCache(size int) JWTOption {
	return jwtOption(func(c *jwtConfig) { c.cacheSize = size })
}

// cached returns the Caller of token's cache entry when it may be used at
// now.
func (a *JWTAuthenticator) cached(k tokencache.Key, now time.Time) (hardening.Caller, bool) {
	c, ok := a.cache.Get(k, now)
	if ok && len(c.Roles) > 0 {
		c.Roles = slices.Clone(c.Roles)
	}
	return c, ok
}

// remember caches c, the Caller of a token with claims m, usable from its
// nbf (or its iat, if later and checked) until its exp.
func (a *JWTAuthenticator) remember(k tokencache.Key, m jwt.MapClaims, c hardening.Caller, now time.Time) {
	if a.cache == nil {
		return
	}
	var from time.Time
	if nbf, err := m.GetNotBefore(); err == nil && nbf != nil {
		from = nbf.Time
	}
	if a.cfg.checkIssuedAt && c.IssuedAt.After(from) {
		from = c.IssuedAt
	}
	c.Roles = slices.Clone(c.Roles)
	a.cache.Put(k, c, from, c.ExpiresAt, now)
}
