package previewsec_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/keystoretest"
)

// The verified-token cache (WithTokenCache) must never change an answer:
// each test verifies a token once so that it is cached, changes the world,
// and checks that the cached token gets the answer a full verification
// gives.

func TestTokenCacheIsOnByDefault(t *testing.T) {
	f := newFixture(t)
	_, err := f.ver.Verify(context.Background(), f.mint(t, testGrant))
	require.NoError(t, err)
	assert.Equal(t, 1, previewsec.TokenCacheLen(f.ver))

	f = newFixture(t, previewsec.WithTokenCache(0))
	_, err = f.ver.Verify(context.Background(), f.mint(t, testGrant))
	require.NoError(t, err)
	assert.Equal(t, 0, previewsec.TokenCacheLen(f.ver), "WithTokenCache(0) disables the cache")

	_, err = previewsec.NewVerifier(f.ring, previewsec.WithTokenCache(-1))
	assert.Error(t, err)
}

func TestTokenCacheExpiredWhileCached(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok, exp, _, err := f.iss.Mint(ctx, testGrant, time.Minute)
	require.NoError(t, err)
	_, err = f.ver.Verify(ctx, tok)
	require.NoError(t, err)
	f.clk.Set(exp.Add(10 * time.Second))
	_, err = f.ver.Verify(ctx, tok)
	require.NoError(t, err, "within the leeway: accepted, as uncached")
	f.clk.Set(exp.Add(previewsec.DefaultLeeway))
	_, err = f.ver.Verify(ctx, tok)
	assert.ErrorIs(t, err, previewsec.ErrExpired)
	assert.Equal(t, 0, previewsec.TokenCacheLen(f.ver), "the expired entry is dropped")
}

func TestTokenCacheRevokedWhileCached(t *testing.T) {
	ctx := context.Background()
	for name, revoke := range map[string]func(*fixture, previewsec.Claims) error{
		"token": func(f *fixture, c previewsec.Claims) error {
			return f.revs.RevokeToken(ctx, c.ID, c.ExpiresAt)
		},
		"preview": func(f *fixture, c previewsec.Claims) error { return f.revs.RevokePreview(ctx, c.PreviewID) },
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			tok := f.mint(t, testGrant)
			c, err := f.ver.Verify(ctx, tok)
			require.NoError(t, err)
			f.clk.Advance(time.Second)
			require.NoError(t, revoke(f, c))
			_, err = f.ver.Verify(ctx, tok)
			assert.ErrorIs(t, err, previewsec.ErrRevoked)
			_, err = f.ver.Verify(ctx, tok)
			assert.ErrorIs(t, err, previewsec.ErrRevoked, "and again")
		})
	}
}

// A token that differs from a cached one in any byte is verified in full.
func TestTokenCacheTamperedSibling(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := f.mint(t, testGrant)
	_, err := f.ver.Verify(ctx, tok)
	require.NoError(t, err)
	parts := strings.Split(tok, ".")
	other := f.mint(t, previewsec.Grant{UserID: "user-1", TenantID: "tenant-b", PreviewID: "prev-b"})
	otherParts := strings.Split(other, ".")
	// flip changes the first character: the last one of a base64url
	// signature carries unused bits, so changing it may not change the
	// decoded signature at all.
	flip := func(s string) string {
		if s[0] == 'A' {
			return "B" + s[1:]
		}
		return "A" + s[1:]
	}
	for name, forged := range map[string]string{
		"signature flipped":      parts[0] + "." + parts[1] + "." + flip(parts[2]),
		"payload of another":     parts[0] + "." + otherParts[1] + "." + parts[2],
		"payload with tenant-b":  parts[0] + "." + b64(with(claims(), "tid", "tenant-b")) + "." + parts[2],
		"trailing dot":           tok + ".",
		"signature truncated":    parts[0] + "." + parts[1] + "." + parts[2][:len(parts[2])-2],
		"no signature":           parts[0] + "." + parts[1] + ".",
		"header kid swapped out": b64(hs256("20300531T000000Z")) + "." + parts[1] + "." + parts[2],
	} {
		_, err := f.ver.Verify(ctx, forged)
		assert.Error(t, err, name)
	}
	assert.Equal(t, 1, previewsec.TokenCacheLen(f.ver), "no failure is cached")
	_, err = f.ver.Verify(ctx, tok)
	require.NoError(t, err, "the original still verifies")
}

// A token that failed verification is not cached, and fails again.
func TestTokenCacheNeverCachesFailures(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	kid, key := f.key.ID, f.key.Secret
	for name, tok := range map[string]string{
		"not yet valid":  forge(hs256(kid), with(claims(), "nbf", now.Add(time.Hour).Unix()), sha256New, key),
		"wrong audience": forge(hs256(kid), with(claims(), "aud", []string{"hub"}), sha256New, key),
		"no pid":         forge(hs256(kid), with(claims(), "pid", nil), sha256New, key),
		"too long-lived": forge(hs256(kid), with(claims(), "exp", now.Add(2*time.Hour).Unix()), sha256New, key),
		"expired":        forge(hs256(kid), with(claims(), "exp", now.Add(-time.Hour).Unix()), sha256New, key),
		"bad signature":  forge(hs256(kid), claims(), sha256New, []byte("0123456789abcdef0123456789abcdef")),
	} {
		for range 2 {
			_, err := f.ver.Verify(ctx, tok)
			assert.Error(t, err, name)
		}
	}
	assert.Equal(t, 0, previewsec.TokenCacheLen(f.ver))
}

// A token is not used from the cache before its nbf, even if the clock
// goes back after it was cached.
func TestTokenCacheClockBeforeNotBefore(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tok := forge(hs256(f.key.ID), claims(), sha256New, f.key.Secret)
	_, err := f.ver.Verify(ctx, tok)
	require.NoError(t, err)
	f.clk.Set(now.Add(-previewsec.DefaultLeeway - time.Second))
	_, err = f.ver.Verify(ctx, tok)
	assert.ErrorIs(t, err, previewsec.ErrNotYetValid)
}

// editStore is a KeyStore whose Keys answer can be edited, to retire or
// replace a key behind the ring's back.
type editStore struct {
	*previewsec.MemoryKeyStore
	mu   sync.Mutex
	edit func([]previewsec.Key) []previewsec.Key
}

func (s *editStore) Keys(ctx context.Context, t time.Time) ([]previewsec.Key, error) {
	keys, err := s.MemoryKeyStore.Keys(ctx, t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.edit != nil {
		keys = s.edit(keys)
	}
	return keys, err
}

func (s *editStore) setEdit(f func([]previewsec.Key) []previewsec.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.edit = f
}

// TestTokenCacheKeyLeavesRing: a token cached while its key verified is
// rejected once the key is retired from the ring, or replaced under the
// same id by another secret.
func TestTokenCacheKeyLeavesRing(t *testing.T) {
	ctx := context.Background()
	late := time.Date(2030, 6, 1, 23, 50, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		edit func(kid string) func([]previewsec.Key) []previewsec.Key
		want error
	}{
		{"retired", func(kid string) func([]previewsec.Key) []previewsec.Key {
			return func(keys []previewsec.Key) []previewsec.Key {
				out := keys[:0]
				for _, k := range keys {
					if k.ID != kid {
						out = append(out, k)
					}
				}
				return out
			}
		}, previewsec.ErrUnknownKey},
		{"replaced", func(kid string) func([]previewsec.Key) []previewsec.Key {
			return func(keys []previewsec.Key) []previewsec.Key {
				for i := range keys {
					if keys[i].ID == kid {
						keys[i].Secret = []byte("another-secret-0123456789abcdefX")
					}
				}
				return keys
			}
		}, previewsec.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := keystoretest.NewClock(late)
			store := &editStore{MemoryKeyStore: previewsec.NewMemoryKeyStore()}
			ring, err := previewsec.NewKeyRing(store, previewsec.WithClock(clk.Now))
			require.NoError(t, err)
			iss, err := previewsec.NewIssuer(ring)
			require.NoError(t, err)
			ver, err := previewsec.NewVerifier(ring)
			require.NoError(t, err)
			tok, _, kid, err := iss.Mint(ctx, testGrant, 0)
			require.NoError(t, err)
			_, err = ver.Verify(ctx, tok)
			require.NoError(t, err)

			clk.Advance(20 * time.Minute) // the next period: the old key still verifies
			require.NoError(t, ring.Refresh(ctx))
			_, err = ver.Verify(ctx, tok)
			require.NoError(t, err, "a reloaded key verifies its tokens")
			require.Equal(t, 1, previewsec.TokenCacheLen(ver))

			store.setEdit(tc.edit(kid))
			require.NoError(t, ring.Refresh(ctx))
			_, err = ver.Verify(ctx, tok)
			assert.ErrorIs(t, err, tc.want)
			assert.Equal(t, 0, previewsec.TokenCacheLen(ver), "the entry is dropped")
		})
	}
}

// A token for tenant-a, cached by a request of a tenant-a caller, is
// still refused to a tenant-b caller.
func TestTokenCacheTenantMismatchOnHit(t *testing.T) {
	f := newFixture(t)
	auth, err := previewsec.RequirePreviewToken(f.ver, previewsec.WithSecureCookie(false))
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/preview/{preview_id}/", auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	tok := f.mint(t, testGrant)
	serve := func(tenant string) int {
		req := httptest.NewRequest(http.MethodGet, "/preview/prev-a/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req = req.WithContext(hardening.WithCaller(req.Context(), hardening.Caller{Subject: "u", Tenant: tenant}))
		rr := httptest.NewRecorder()
		mux.ServeHTTP(rr, req)
		return rr.Code
	}
	require.Equal(t, http.StatusOK, serve("tenant-a"))
	require.Equal(t, 1, previewsec.TokenCacheLen(f.ver))
	assert.Equal(t, http.StatusForbidden, serve("tenant-b"))
	assert.Equal(t, http.StatusOK, serve("tenant-a"))

	req := httptest.NewRequest(http.MethodGet, "/preview/prev-b/", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rr := httptest.NewRecorder()
	mux.ServeHTTP(rr, req)
	assert.Equal(t, http.StatusForbidden, rr.Code, "a cached token for prev-a does not open prev-b")
}

// A flood of distinct valid tokens does not grow the cache past its size.
func TestTokenCacheBounded(t *testing.T) {
	f := newFixture(t, previewsec.WithTokenCache(32))
	ctx := context.Background()
	for i := range 500 {
		_, err := f.ver.Verify(ctx, f.mint(t, previewsec.Grant{TenantID: "t", PreviewID: fmt.Sprint("p", i)}))
		require.NoError(t, err)
		require.LessOrEqual(t, previewsec.TokenCacheLen(f.ver), 32)
	}
}

// Many goroutines verify cached and fresh tokens while a token is revoked
// and the clock moves (run with -race): every answer is the uncached one.
func TestTokenCacheConcurrent(t *testing.T) {
	f := newFixture(t, previewsec.WithTokenCache(8))
	ctx := context.Background()
	toks := make([]string, 16)
	ids := make([]string, len(toks))
	for i := range toks {
		toks[i] = f.mint(t, previewsec.Grant{TenantID: "t", PreviewID: fmt.Sprint("p", i)})
		c, err := f.ver.Verify(ctx, toks[i])
		require.NoError(t, err)
		ids[i] = c.ID
	}
	f.clk.Advance(time.Second)
	require.NoError(t, f.revs.RevokeToken(ctx, ids[0], now.Add(time.Hour)))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for n := range 400 {
				i := (n + w) % len(toks)
				_, err := f.ver.Verify(ctx, toks[i])
				if (i == 0) != (err != nil) {
					errs <- fmt.Errorf("token %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			f.clk.Advance(time.Millisecond)
			_ = f.ring.Refresh(ctx)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Attack: the holder of one preview token floods the cache with spellings
// of it (base64 decoding, even strict, ignores CR and LF, so a line break
// in the signature leaves it valid), evicting every other viewer's entry.
// They are still accepted (a full check accepts them) but not cached.
func TestTokenCacheMalleableSpellingsNotCached(t *testing.T) {
	f := newFixture(t, previewsec.WithTokenCache(16))
	ctx := context.Background()
	_, err := f.ver.Verify(ctx, f.mint(t, previewsec.Grant{TenantID: "t", PreviewID: "victim"}))
	require.NoError(t, err)
	tok := f.mint(t, previewsec.Grant{TenantID: "t", PreviewID: "attacker"})
	sig := strings.LastIndexByte(tok, '.') + 1
	for i := range 100 {
		at := sig + 1 + i%(len(tok)-sig-1)
		c, err := f.ver.Verify(ctx, tok[:at]+strings.Repeat("\r\n", 1+i/(len(tok)-sig-1))+tok[at:])
		require.NoError(t, err, "a full check accepts the spelling")
		require.Equal(t, "attacker", c.PreviewID)
	}
	assert.Equal(t, 1, previewsec.TokenCacheLen(f.ver), "only the victim's canonical token is cached")
}
