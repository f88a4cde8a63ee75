// Package previewsec secures previews: running copies of a user's app
// reachable behind a URL.
//
// # Preview tokens
//
// Only the holder of a short-lived token for one preview, issued to the
// tenant that owns it, may reach that preview. An Issuer mints HS256 JWTs
// (built on github.com/golang-jwt/jwt/v5) with the claims iss, aud
// ("preview"), sub, tid, pid, sys, dev, iat, nbf, exp and jti, and a kid
// header. A Verifier pins the algorithm, requires exp, iat, aud, iss, pid
// and tid, bounds exp-iat by the max TTL, allows a small leeway, caps the
// token length before parsing, and returns typed errors (ErrExpired,
// ErrUnknownKey, ErrMalformed, ...). A RevocationList rejects tokens of a
// revoked preview or jti.
//
// Keys live in a KeyRing that rotates every day (WithKeyRotation),
// aligned to UTC midnight, keeping old keys verifying for the longest token
// lifetime plus the leeway. Replicas share random keys through a KeyStore
// (NewMemoryKeyStore here, previewsec/sqlitestore, previewsec/postgresstore,
// previewsec/redisstore; creation is an atomic create-if-absent per
// period), or derive them with
// HKDF-SHA256 from a master secret (NewDerivedKeyRing). Keys and the
// revocation list are cached, so verification makes no store round trip in
// steady state.
//
// RequirePreviewToken is the middleware for /preview/{preview_id}/...: it
// takes the token from the Authorization header, the preview cookie or the
// preview_token query parameter (exchanged for an HttpOnly cookie with a
// 303; a query token that fits the preview wins over any cookie), checks
// the preview and tenant binding, and answers failures with one generic 401
// problem (403 for a token of another preview or tenant), each a
// *RejectionError passed to the error handler (WithErrorHandler; default
// hardening.WriteError). The owning tenant comes from WithPreviewOwner, or
// else from the hardening.Caller in the request context when there is one;
// Issuer.Mint likewise takes an empty tenant and user from the caller. The
// cookie's Secure attribute is decided from the connection
// (SecureFromConnection), never from the Host header.
//
// # Egress and containers
//
// What a preview's container may do is limited by two sibling packages:
// previewsec/egress (the egress policy, its dialer, http.Client and forward
// proxy) and previewsec/container (verification of the container's runtime
// settings: CPU and memory limits, network mode, security options). The
// three packages do not depend on each other.
//
// Every constructor takes its own option type; WithLogger, WithClock and
// WithRegisterer are shared by the constructors they fit (see
// KeyRingOption); constructors report invalid values. The package reads no environment: configuration is the
// application's (the reference hub maps PREVIEW_* variables to options).
//
// See docs/previewsec-tokens.md for configuration, the hub endpoints and
// benchmarks.
package previewsec
