package main

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// signHubClaims signs arbitrary claims with the test secret, as an
// attacker holding a token-minting bug (or a lax issuer) would.
func signHubClaims(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testAuthSecret))
	require.NoError(t, err)
	return tok
}

// hubClaimsAt returns valid claims for alice@acme issued at iat and
// expiring ttl later; edit lets a case change or delete members.
func hubClaimsAt(iat time.Time, ttl time.Duration, edit func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "tid": "acme", "aud": "hub", "iss": "hub",
		"iat": iat.Unix(), "exp": iat.Add(ttl).Unix()}
	if edit != nil {
		edit(c)
	}
	return c
}

// streamStatusCode opens the SSE stream with the token in the
// Authorization header and returns the status (the stream is closed).
func streamStatusCode(t *testing.T, url, tok string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/api/v1/streams/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := (&http.Client{Transport: contractTransport(t, nil)}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	reason := ""
	if resp.StatusCode != http.StatusOK {
		var b [512]byte
		n, _ := resp.Body.Read(b[:])
		if i := strings.Index(string(b[:n]), `"reason":"`); i >= 0 {
			reason, _, _ = strings.Cut(string(b[i+len(`"reason":"`):n]), `"`)
		}
	}
	return resp.StatusCode, reason
}

// wsStatusCode dials the WebSocket stream with a query token and returns
// the handshake's status.
func wsStatusCode(t *testing.T, url, tok string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/api/v1/streams/ws?access_token="+tok, nil)
	if err == nil {
		_ = c.CloseNow()
	}
	require.NotNil(t, resp, "dial: %v", err)
	return resp.StatusCode
}

// TestBearerTokenRules: the hub's bearer tokens have a maximum lifetime
// (HUB_AUTH_MAX_TTL on exp-iat, or on exp-now without iat), an iat in the
// future beyond the leeway is refused, exp, iat and nbf must be JSON
// numbers, and REST and the streams (SSE and WebSocket) apply one leeway.
func TestBearerTokenRules(t *testing.T) {
	a, url := newTestApp(t, func(c *config) { c.AuthMaxTTL = 2 * time.Hour })
	now := time.Now()
	// str turns a numeric claim into a JSON string of the same digits,
	// which golang-jwt's NumericDate accepts on its own.
	str := func(k string) func(jwt.MapClaims) {
		return func(c jwt.MapClaims) { c[k] = strconv.FormatInt(c[k].(int64), 10) }
	}
	cases := []struct {
		name   string
		claims jwt.MapClaims
		ok     bool
		// streamOK, when set, is the streams' answer where it differs:
		// a stream is not opened on a token whose exp has passed, even
		// within the leeway, as it would end at once (see streamAuth).
		streamOK *bool
	}{
		{"valid", hubClaimsAt(now, time.Hour, nil), true, nil},
		{"lifetime at the max", hubClaimsAt(now, 2*time.Hour, nil), true, nil},
		{"lifetime over the max", hubClaimsAt(now, 2*time.Hour+time.Second, nil), false, nil},
		{"a year", hubClaimsAt(now, 365*24*time.Hour, nil), false, nil},
		{"old iat, long lifetime, exp soon", hubClaimsAt(now.Add(-3*time.Hour), 3*time.Hour+time.Minute, nil), false, nil},
		{"no iat, exp within the max", hubClaimsAt(now, time.Hour, func(c jwt.MapClaims) { delete(c, "iat") }), true, nil},
		{"no iat, exp beyond the max", hubClaimsAt(now, 3*time.Hour, func(c jwt.MapClaims) { delete(c, "iat") }), false, nil},
		{"iat in the future within the leeway", hubClaimsAt(now.Add(authLeeway-10*time.Second), time.Hour, nil), true, nil},
		{"iat in the future beyond the leeway", hubClaimsAt(now.Add(authLeeway+10*time.Second), time.Hour, nil), false, nil},
		{"iat far in the future", hubClaimsAt(now.Add(24*time.Hour), time.Hour, nil), false, nil},
		{"nbf in the future within the leeway", hubClaimsAt(now, time.Hour, func(c jwt.MapClaims) { c["nbf"] = now.Add(authLeeway - 10*time.Second).Unix() }), true, nil},
		{"nbf in the future beyond the leeway", hubClaimsAt(now, time.Hour, func(c jwt.MapClaims) { c["nbf"] = now.Add(authLeeway + 10*time.Second).Unix() }), false, nil},
		{"expired within the leeway", hubClaimsAt(now.Add(-time.Hour), time.Hour-(authLeeway-10*time.Second), nil), true, ptr(false)},
		{"expired beyond the leeway", hubClaimsAt(now.Add(-time.Hour), time.Hour-(authLeeway+10*time.Second), nil), false, nil},
		{"exp as a string", hubClaimsAt(now, time.Hour, str("exp")), false, nil},
		{"iat as a string", hubClaimsAt(now, time.Hour, str("iat")), false, nil},
		{"nbf as a string", hubClaimsAt(now, time.Hour, func(c jwt.MapClaims) { c["nbf"] = strconv.FormatInt(now.Unix(), 10) }), false, nil},
		{"exp as a bool", hubClaimsAt(now, time.Hour, func(c jwt.MapClaims) { c["exp"] = true }), false, nil},
		{"exp as an object", hubClaimsAt(now, time.Hour, func(c jwt.MapClaims) { c["exp"] = map[string]any{"n": 1} }), false, nil},
		{"exp as an array", hubClaimsAt(now, time.Hour, func(c jwt.MapClaims) { c["exp"] = []int64{now.Add(time.Hour).Unix()} }), false, nil},
		{"no exp", hubClaimsAt(now, time.Hour, func(c jwt.MapClaims) { delete(c, "exp") }), false, nil},
		{"exp null", hubClaimsAt(now, time.Hour, func(c jwt.MapClaims) { c["exp"] = nil }), false, nil},
		{"iat null", hubClaimsAt(now, time.Hour, func(c jwt.MapClaims) { c["iat"] = nil }), false, nil},
		{"nbf null", hubClaimsAt(now, time.Hour, func(c jwt.MapClaims) { c["nbf"] = nil }), false, nil},
		{"fractional numbers", hubClaimsAt(now, time.Hour, func(c jwt.MapClaims) { c["iat"] = float64(now.Unix()) + 0.5 }), true, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := signHubClaims(t, tc.claims)
			_, err := a.auth.verify(tok)
			assert.Equal(t, tc.ok, err == nil, "verify: %v", err)

			resp, b := call(t, "GET", url+"/api/v1/whoami", tok, "")
			if tc.ok {
				assert.Equal(t, http.StatusOK, resp.StatusCode, string(b))
			} else {
				assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, string(b))
				assert.Equal(t, "unauthenticated", decodeBody(t, b)["reason"])
				assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
			}

			streamOK := tc.ok
			if tc.streamOK != nil {
				streamOK = *tc.streamOK
			}
			code, reason := streamStatusCode(t, url, tok)
			if streamOK {
				assert.Equal(t, http.StatusOK, code, "SSE")
				assert.Equal(t, http.StatusSwitchingProtocols, wsStatusCode(t, url, tok), "WebSocket")
			} else {
				assert.Equal(t, http.StatusUnauthorized, code, "SSE")
				assert.Contains(t, []string{"invalid_token", "token_expired"}, reason)
				assert.Equal(t, http.StatusUnauthorized, wsStatusCode(t, url, tok), "WebSocket")
			}
		})
	}
}

// TestHubTokenWithinMaxTTL: `hub token` mints tokens the hub accepts (iat
// set, lifetime within HUB_AUTH_MAX_TTL) and refuses a -ttl over the max.
func TestHubTokenWithinMaxTTL(t *testing.T) {
	t.Setenv("HUB_AUTH_SECRET", testAuthSecret)
	t.Setenv("HUB_AUTH_MAX_TTL", "2h")
	var out strings.Builder
	require.NoError(t, runToken(context.Background(), []string{"-sub", "alice", "-tenant", "acme", "-ttl", "2h"}, &out, nil))
	au := &authenticator{secret: []byte(testAuthSecret), now: time.Now, maxTTL: 2 * time.Hour}
	p, err := au.verify(strings.TrimSpace(out.String()))
	require.NoError(t, err)
	assert.False(t, p.IssuedAt.IsZero(), "iat is set")
	var claims map[string]any
	_, _, err = jwt.NewParser().ParseUnverified(strings.TrimSpace(out.String()), (*jwt.MapClaims)(&claims))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"sub", "tid", "iss", "aud", "exp", "iat"}, slices.Collect(maps.Keys(claims)), "no nbf, no roles for a user")
	assert.Equal(t, 2*time.Hour, time.Duration(claims["exp"].(float64)-claims["iat"].(float64))*time.Second)

	err = runToken(context.Background(), []string{"-sub", "alice", "-tenant", "acme", "-ttl", "3h"}, &out, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HUB_AUTH_MAX_TTL")
}

func TestConfigAuthMaxTTL(t *testing.T) {
	t.Setenv("HUB_AUTH_MAX_TTL", "")
	c, err := configFromEnv()
	require.NoError(t, err)
	assert.Equal(t, 24*time.Hour, c.AuthMaxTTL)
	t.Setenv("HUB_AUTH_MAX_TTL", "90m")
	c, err = configFromEnv()
	require.NoError(t, err)
	assert.Equal(t, 90*time.Minute, c.AuthMaxTTL)
	for _, bad := range []string{"0", "-1h", "soon", "1"} {
		t.Setenv("HUB_AUTH_MAX_TTL", bad)
		_, err = configFromEnv()
		require.Error(t, err, bad)
		assert.Contains(t, err.Error(), "HUB_AUTH_MAX_TTL")
	}
}

func ptr[T any](v T) *T { return &v }
