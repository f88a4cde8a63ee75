package streamauth_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/streamauth"
)

// The token cache (WithTokenCache) must never change an answer: each test
// authenticates a token once so that it is cached, changes the world, and
// checks that the cached token gets the answer a full check gives.

var cacheNow = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

func TestTokenCacheIsOnByDefault(t *testing.T) {
	ctx := context.Background()
	a := newAuth(t)
	_, err := a.AuthenticateToken(ctx, token(t, a, "u", "t", time.Now().Add(time.Hour)))
	require.NoError(t, err)
	assert.Equal(t, 1, streamauth.TokenCacheLen(a))

	a = newAuth(t, streamauth.WithTokenCache(0))
	_, err = a.AuthenticateToken(ctx, token(t, a, "u", "t", time.Now().Add(time.Hour)))
	require.NoError(t, err)
	assert.Equal(t, 0, streamauth.TokenCacheLen(a), "WithTokenCache(0) disables the cache")

	_, err = streamauth.NewJWT(testSecret, streamauth.WithTokenCache(-1))
	assert.Error(t, err)
}

func TestTokenCacheExpiredWhileCached(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock(cacheNow)
	a := newAuth(t, streamauth.WithClock(clk.now), streamauth.WithLeeway(10*time.Second))
	tok := token(t, a, "u", "t", cacheNow.Add(time.Minute))
	_, err := a.AuthenticateToken(ctx, tok)
	require.NoError(t, err)
	clk.add(time.Minute + 5*time.Second)
	_, err = a.AuthenticateToken(ctx, tok)
	require.NoError(t, err, "within the leeway: accepted, as uncached")
	clk.add(10 * time.Second)
	_, err = a.AuthenticateToken(ctx, tok)
	assert.ErrorIs(t, err, streamauth.ErrTokenExpired)
	assert.Equal(t, 0, streamauth.TokenCacheLen(a), "the expired entry is dropped")
}

func TestTokenCacheNotBefore(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock(cacheNow)
	a := newAuth(t, streamauth.WithClock(clk.now))
	c := streamauth.Claims{Tenant: "t"}
	c.Subject, c.ExpiresAt, c.NotBefore = "u", jwt.NewNumericDate(cacheNow.Add(time.Hour)), jwt.NewNumericDate(cacheNow)
	tok, err := a.Sign(c)
	require.NoError(t, err)
	_, err = a.AuthenticateToken(ctx, tok)
	require.NoError(t, err)
	clk.add(-time.Minute)
	_, err = a.AuthenticateToken(ctx, tok)
	assert.ErrorIs(t, err, streamauth.ErrInvalidToken, "a cached token is not used before its nbf")
}

// A token that differs from a cached one in any byte is checked in full;
// failures are never cached.
func TestTokenCacheTamperedSibling(t *testing.T) {
	ctx := context.Background()
	a := newAuth(t)
	exp := time.Now().Add(time.Hour)
	tok := token(t, a, "alice", "acme", exp)
	_, err := a.AuthenticateToken(ctx, tok)
	require.NoError(t, err)
	p := strings.Split(tok, ".")
	other := strings.Split(token(t, a, "root", "other", exp), ".")
	// flip changes the first character: the last one of a base64url
	// signature carries unused bits, so changing it may not change the
	// decoded signature at all.
	flip := func(s string) string {
		if s[0] == 'A' {
			return "B" + s[1:]
		}
		return "A" + s[1:]
	}
	forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "tid": "acme",
		"exp": exp.Unix()}).SignedString([]byte("another-secret-0123456789abcdef"))
	require.NoError(t, err)
	for name, bad := range map[string]string{
		"signature flipped":   p[0] + "." + p[1] + "." + flip(p[2]),
		"payload of another":  p[0] + "." + other[1] + "." + p[2],
		"signature truncated": p[0] + "." + p[1] + "." + p[2][:len(p[2])-2],
		"no signature":        p[0] + "." + p[1] + ".",
		"trailing dot":        tok + ".",
		"another secret":      forged,
	} {
		for range 2 {
			_, err := a.AuthenticateToken(ctx, bad)
			assert.ErrorIs(t, err, streamauth.ErrInvalidToken, name)
		}
	}
	assert.Equal(t, 1, streamauth.TokenCacheLen(a), "no failure is cached")
}

// A hit's roles are the caller's own: editing them does not change the
// next request's.
func TestTokenCacheRolesNotShared(t *testing.T) {
	ctx := context.Background()
	a := newAuth(t)
	c := streamauth.Claims{Tenant: "t", Roles: []string{"viewer"}}
	c.Subject, c.ExpiresAt = "u", jwt.NewNumericDate(time.Now().Add(time.Hour))
	tok, err := a.Sign(c)
	require.NoError(t, err)
	for range 3 {
		got, err := a.AuthenticateToken(ctx, tok)
		require.NoError(t, err)
		require.Equal(t, []string{"viewer"}, got.Roles)
		got.Roles[0] = "admin"
	}
}

// sseOnce serves an SSE handler that ends at once, behind auth and reg.
func sseOnce(t *testing.T, auth *streamauth.JWTAuthenticator, reg *streamauth.Registry) string {
	t.Helper()
	mux := http.NewServeMux()
	h, err := streamauth.SSE(auth, reg, streamauth.SSEHandlerFunc(func(context.Context, *streamauth.SSEStream) error { return nil }),
		streamauth.WithResourceTenant(func(r *http.Request) string { return r.PathValue("tenant") }))
	require.NoError(t, err)
	mux.Handle("GET /tenants/{tenant}/events", h)
	return serve(t, mux).URL
}

func getStatus(t *testing.T, c *http.Client, url, tok string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTokenCacheRevokedWhileCached(t *testing.T) {
	auth := newAuth(t)
	reg := newRegistry(t)
	url := sseOnce(t, auth, reg)
	c := httpClient(t)
	tok := signedToken(t, auth, "alice", "acme", time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	code, _ := getStatus(t, c, url+"/tenants/acme/events", tok)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 1, streamauth.TokenCacheLen(auth))
	_, err := reg.Revoke(context.Background(), streamauth.Selector{Subject: "alice"})
	require.NoError(t, err)
	code, body := getStatus(t, c, url+"/tenants/acme/events", tok)
	assert.Equal(t, http.StatusUnauthorized, code)
	assert.Contains(t, body, `"reason":"token_revoked"`)
}

func TestTokenCacheTenantMismatchOnHit(t *testing.T) {
	auth := newAuth(t)
	reg := newRegistry(t)
	url := sseOnce(t, auth, reg)
	c := httpClient(t)
	tok := token(t, auth, "alice", "acme", time.Now().Add(time.Hour))
	code, _ := getStatus(t, c, url+"/tenants/acme/events", tok)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 1, streamauth.TokenCacheLen(auth))
	code, body := getStatus(t, c, url+"/tenants/other/events", tok)
	assert.Equal(t, http.StatusForbidden, code)
	assert.Contains(t, body, `"reason":"tenant_mismatch"`)
}

// A flood of distinct valid tokens does not grow the cache past its size.
func TestTokenCacheBounded(t *testing.T) {
	a := newAuth(t, streamauth.WithTokenCache(32))
	exp := time.Now().Add(time.Hour)
	for i := range 500 {
		_, err := a.AuthenticateToken(context.Background(), token(t, a, fmt.Sprint("u", i), "t", exp))
		require.NoError(t, err)
		require.LessOrEqual(t, streamauth.TokenCacheLen(a), 32)
	}
}

// Many goroutines authenticate cached and fresh tokens while the clock
// moves past some tokens' exp (run with -race): every answer is the
// uncached one.
func TestTokenCacheConcurrent(t *testing.T) {
	clk := newFakeClock(cacheNow)
	a := newAuth(t, streamauth.WithClock(clk.now), streamauth.WithTokenCache(8))
	toks := make([]string, 16)
	for i := range toks {
		exp := cacheNow.Add(time.Hour)
		if i%2 == 1 {
			exp = cacheNow.Add(time.Second)
		}
		toks[i] = token(t, a, fmt.Sprint("u", i), "t", exp)
		_, err := a.AuthenticateToken(context.Background(), toks[i])
		require.NoError(t, err)
	}
	clk.add(2 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for n := range 400 {
				i := (n + w) % len(toks)
				c, err := a.AuthenticateToken(context.Background(), toks[i])
				if (i%2 == 1) != (err != nil) || (err == nil && c.Subject != fmt.Sprint("u", i)) {
					errs <- fmt.Errorf("token %d: %v %v", i, c, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			clk.add(time.Millisecond)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// WithIssuedAtCheck refuses an iat in the future beyond the leeway or not a
// number; without it iat is only read.
func TestIssuedAtCheck(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock(cacheNow)
	sign := func(iat any) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u", "tid": "t",
			"iat": iat, "exp": cacheNow.Add(time.Hour).Unix()}).SignedString(testSecret)
		require.NoError(t, err)
		return tok
	}
	for _, tc := range []struct {
		name           string
		iat            any
		plain, checked bool
	}{
		{"now", cacheNow.Unix(), true, true},
		{"future within the leeway", cacheNow.Add(5 * time.Second).Unix(), true, true},
		{"future beyond the leeway", cacheNow.Add(time.Minute).Unix(), true, false},
		{"null", nil, true, false},
		{"string", fmt.Sprint(cacheNow.Unix()), true, false},
	} {
		tok := sign(tc.iat)
		for _, opt := range []bool{false, true} {
			opts := []streamauth.JWTOption{streamauth.WithClock(clk.now), streamauth.WithLeeway(10 * time.Second)}
			want := tc.plain
			if opt {
				opts, want = append(opts, streamauth.WithIssuedAtCheck()), tc.checked
			}
			a := newAuth(t, opts...)
			for range 2 { // the second answer may come from the cache
				_, err := a.AuthenticateToken(ctx, tok)
				assert.Equal(t, want, err == nil, "%s, checked %v: %v", tc.name, opt, err)
			}
		}
	}
}

// With WithIssuedAtCheck, a cached token is not used before its iat (less
// the leeway is the full check's answer).
func TestTokenCacheIssuedAtCheckedClockBack(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock(cacheNow)
	a := newAuth(t, streamauth.WithClock(clk.now), streamauth.WithIssuedAtCheck())
	tok := signedToken(t, a, "u", "t", cacheNow, cacheNow.Add(time.Hour))
	_, err := a.AuthenticateToken(ctx, tok)
	require.NoError(t, err)
	clk.add(-time.Minute)
	_, err = a.AuthenticateToken(ctx, tok)
	assert.ErrorIs(t, err, streamauth.ErrInvalidToken)
}

// malleable returns n spellings of tok that verify like it: base64 decoding
// ignores CR and LF, so a line break in the signature segment leaves the
// token valid (a query token can carry one as %0A).
func malleable(tok string, n int) []string {
	sig := strings.LastIndexByte(tok, '.') + 1
	out := make([]string, 0, n)
	for i := range n {
		at := sig + 1 + i%(len(tok)-sig-1)
		out = append(out, tok[:at]+strings.Repeat("\n", 1+i/(len(tok)-sig-1))+tok[at:])
	}
	return out
}

// Attack: the holder of one valid token floods the cache with spellings of
// it (line breaks in the signature), evicting every other caller's entry.
// They are still accepted (a full check accepts them) but not cached.
func TestTokenCacheMalleableSpellingsNotCached(t *testing.T) {
	ctx := context.Background()
	a := newAuth(t, streamauth.WithTokenCache(16))
	exp := time.Now().Add(time.Hour)
	_, err := a.AuthenticateToken(ctx, token(t, a, "victim", "t", exp))
	require.NoError(t, err)
	for _, v := range malleable(token(t, a, "attacker", "t", exp), 100) {
		c, err := a.AuthenticateToken(ctx, v)
		require.NoError(t, err, "a full check accepts the spelling")
		require.Equal(t, "attacker", c.Subject)
	}
	assert.Equal(t, 1, streamauth.TokenCacheLen(a), "only the victim's canonical token is cached")
}
