package streamauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/streamauth"
)

// mapToken signs claims as given (claim names of an identity provider).
func mapToken(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
	require.NoError(t, err)
	return tok
}

func bearer(target, tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

// A token whose tenant is in an "org" claim authenticates with
// WithTenantClaim("org"), through hardening.RequireCaller and through a
// stream, and fails closed (401) without it: a tenant is required.
func TestJWTTenantClaimMapping(t *testing.T) {
	t.Parallel()
	exp := time.Now().Add(time.Hour).Unix()
	tok := mapToken(t, jwt.MapClaims{"sub": "alice", "org": "acme", "exp": exp})
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := hardening.CallerFrom(r.Context())
		_, _ = w.Write([]byte(c.Subject + "@" + c.Tenant))
	})
	for _, tc := range []struct {
		name   string
		opts   []streamauth.JWTOption
		status int
		body   string
	}{
		{"default tid claim", nil, http.StatusUnauthorized, ""},
		{"org claim", []streamauth.JWTOption{streamauth.WithTenantClaim("org")}, http.StatusOK, "alice@acme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth := newAuth(t, tc.opts...)
			_, err := auth.Authenticate(bearer("/", tok))
			if tc.status == http.StatusOK {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, streamauth.ErrInvalidToken)
			}
			rec := httptest.NewRecorder()
			hardening.RequireCaller(auth, nil)(ok).ServeHTTP(rec, bearer("/api", tok))
			assert.Equal(t, tc.status, rec.Code)
			if tc.body != "" {
				assert.Equal(t, tc.body, rec.Body.String())
			}
			// The same value guards a stream.
			reg := newRegistry(t)
			sse, err := streamauth.SSE(auth, reg, streamauth.SSEHandlerFunc(func(context.Context, *streamauth.SSEStream) error { return nil }))
			require.NoError(t, err)
			rec = httptest.NewRecorder()
			sse.ServeHTTP(rec, bearer("/events", tok))
			assert.Equal(t, tc.status, rec.Code)
		})
	}
}

func TestJWTSubjectAndRolesClaims(t *testing.T) {
	t.Parallel()
	exp := time.Now().Add(time.Hour).Unix()
	auth := newAuth(t, streamauth.WithSubjectClaim("email"), streamauth.WithTenantClaim("org"), streamauth.WithRolesClaim("groups"))
	c, err := auth.Authenticate(bearer("/", mapToken(t, jwt.MapClaims{"email": "a@x", "org": "acme", "groups": []string{"admin", "ops"}, "exp": exp, "iat": exp - 60})))
	require.NoError(t, err)
	assert.Equal(t, hardening.Caller{Subject: "a@x", Tenant: "acme", Roles: []string{"admin", "ops"},
		ExpiresAt: time.Unix(exp, 0), IssuedAt: time.Unix(exp-60, 0)}, c)
	assert.True(t, c.HasRole("admin"))

	for name, claims := range map[string]jwt.MapClaims{
		"sub is not the subject claim": {"sub": "a", "org": "acme", "exp": exp},
		"subject not a string":         {"email": 7, "org": "acme", "exp": exp},
		"tenant not a string":          {"email": "a", "org": []string{"acme"}, "exp": exp},
		"roles not an array":           {"email": "a", "org": "acme", "groups": "admin", "exp": exp},
		"a role not a string":          {"email": "a", "org": "acme", "groups": []any{"admin", 1}, "exp": exp},
		"no exp":                       {"email": "a", "org": "acme"},
	} {
		_, err := auth.Authenticate(bearer("/", mapToken(t, claims)))
		assert.ErrorIs(t, err, streamauth.ErrInvalidToken, name)
	}
}

func TestOptionsReportInvalidValues(t *testing.T) {
	t.Parallel()
	for name, opt := range map[string]streamauth.JWTOption{
		"empty subject claim": streamauth.WithSubjectClaim(""),
		"empty tenant claim":  streamauth.WithTenantClaim(""),
		"empty roles claim":   streamauth.WithRolesClaim(""),
		"nil clock":           streamauth.WithClock(nil),
		"negative leeway":     streamauth.WithLeeway(-time.Second),
	} {
		_, err := streamauth.NewJWT(testSecret, opt)
		assert.Error(t, err, name)
	}
	_, err := streamauth.NewRegistry(streamauth.WithClock(nil))
	assert.Error(t, err)
	auth, reg := newAuth(t), newRegistry(t)
	_, err = streamauth.WebSocket(auth, reg, streamauth.ForwardWS, streamauth.WithReadLimit(0))
	assert.Error(t, err)
	_, err = streamauth.SSE(auth, reg, streamauth.ForwardSSE, nil) // a nil option is ignored
	assert.NoError(t, err)
}

// The stream's context carries its caller for hardening.CallerFrom, over
// any caller a middleware put in the request before.
func TestStreamContextCarriesCaller(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	reg := newRegistry(t)
	got := make(chan [3]hardening.Caller, 1)
	h, err := streamauth.SSE(auth, reg, streamauth.SSEHandlerFunc(func(ctx context.Context, s *streamauth.SSEStream) error {
		c, _ := hardening.CallerFrom(ctx)
		fc, _ := streamauth.FromContext(ctx)
		got <- [3]hardening.Caller{c, fc, s.Caller()}
		return nil
	}))
	require.NoError(t, err)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	r := bearer("/events", token(t, auth, "alice", "acme", exp))
	r = r.WithContext(hardening.WithCaller(r.Context(), hardening.Caller{Subject: "gateway"}))
	h.ServeHTTP(httptest.NewRecorder(), r)
	want := hardening.Caller{Subject: "alice", Tenant: "acme", ExpiresAt: exp}
	for _, c := range <-got {
		assert.Equal(t, want, c)
	}
	_, ok := streamauth.FromContext(r.Context())
	assert.False(t, ok, "FromContext answers for a stream's context only")
}
