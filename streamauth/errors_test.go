package streamauth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/streamauth"
)

// Every refusal reaches a custom ErrorHandler as a *RefusedError whose
// Problem is today's body, after the handler set its headers; the
// default handler writes exactly that problem.
func TestRefusalsReachTheErrorHandler(t *testing.T) {
	t.Parallel()
	auth := newAuth(t)
	exp := time.Now().Add(time.Hour)
	down := hardening.AuthenticatorFunc(func(*http.Request) (hardening.Caller, error) {
		return hardening.Caller{}, streamauth.ErrUnavailable
	})
	const want401 = "a valid bearer token is required to open this stream"
	tests := []struct {
		name      string
		ws        bool
		auth      hardening.Authenticator
		tok       string
		target    string
		status    int
		reason    string
		detail    string
		header    [2]string
		cause     error
		extension map[string]any
	}{
		{name: "missing", status: 401, reason: "missing_token", detail: want401, header: [2]string{"WWW-Authenticate", "Bearer"}, cause: streamauth.ErrNoCredentials},
		{name: "invalid", tok: "x.y.z", status: 401, reason: "invalid_token", detail: want401,
			header: [2]string{"WWW-Authenticate", `Bearer error="invalid_token"`}, cause: streamauth.ErrInvalidToken},
		{name: "expired", tok: token(t, auth, "u", "t", time.Now().Add(-time.Minute)), status: 401, reason: "token_expired", detail: want401,
			header: [2]string{"WWW-Authenticate", `Bearer error="invalid_token"`}, cause: streamauth.ErrTokenExpired},
		{name: "unavailable", auth: down, status: 503, reason: "auth_unavailable", detail: "authentication is unavailable", cause: streamauth.ErrUnavailable},
		{name: "tenant mismatch", tok: token(t, auth, "u", "t", exp), target: "/events?tenant=other", status: 403, reason: "tenant_mismatch",
			detail: "the stream's resource belongs to another tenant"},
		{name: "limit", tok: token(t, auth, "busy", "t", exp), status: 429, reason: "stream_limit_exceeded", detail: "too many concurrent streams for this user",
			extension: map[string]any{"limit": 1, "current": 1, "scope": "user"}},
		{name: "not an upgrade", ws: true, status: 426, reason: "websocket_upgrade_required",
			detail: "this endpoint speaks WebSocket only: send a GET with Connection: Upgrade and Upgrade: websocket", header: [2]string{"Upgrade", "websocket"}},
	}
	reg := newRegistry(t, streamauth.WithMaxStreamsPerUser(1))
	busy := openSSE(t, httpClient(t), sseServer(t, auth, reg, streamauth.ForwardSSE), token(t, auth, "busy", "t", exp))
	require.Equal(t, http.StatusOK, busy.resp.StatusCode)
	waitFor(t, "stream open", func() bool { return reg.Status().Active == 1 })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got error
			custom := func(w http.ResponseWriter, r *http.Request, err error) { got = err; w.WriteHeader(599) }
			build := func(opts ...streamauth.HandlerOption) http.Handler {
				a := tc.auth
				if a == nil {
					a = auth
				}
				opts = append(opts, streamauth.WithResourceTenant(func(r *http.Request) string { return r.URL.Query().Get("tenant") }))
				var h http.Handler
				var err error
				if tc.ws {
					h, err = streamauth.WebSocket(a, reg, streamauth.ForwardWS, opts...)
				} else {
					h, err = streamauth.SSE(a, reg, streamauth.ForwardSSE, opts...)
				}
				require.NoError(t, err)
				return h
			}
			target := tc.target
			if target == "" {
				target = "/events"
			}
			rec := httptest.NewRecorder()
			build(streamauth.WithErrorHandler(custom)).ServeHTTP(rec, bearer(target, tc.tok))
			assert.Equal(t, 599, rec.Code)
			var re *streamauth.RefusedError
			require.ErrorAs(t, got, &re)
			assert.Equal(t, tc.status, re.Status)
			assert.Equal(t, tc.reason, re.Reason)
			if tc.cause != nil {
				assert.ErrorIs(t, got, tc.cause)
			}
			if tc.header[0] != "" {
				assert.Equal(t, tc.header[1], rec.Header().Get(tc.header[0]))
			}
			var he hardening.Error
			require.True(t, errors.As(got, &he))
			want := hardening.NewProblem(tc.status, tc.reason, tc.detail)
			for k, v := range tc.extension {
				want = want.With(k, v)
			}
			assert.Equal(t, want, he.Problem())

			// The default answer is that problem, byte for byte.
			def := httptest.NewRecorder()
			build().ServeHTTP(def, bearer(target, tc.tok))
			exp := httptest.NewRecorder()
			hardening.WriteProblem(exp, bearer(target, ""), want)
			assert.Equal(t, tc.status, def.Code)
			assert.Equal(t, exp.Body.String(), def.Body.String())
			assert.Equal(t, exp.Header().Get("Content-Type"), def.Header().Get("Content-Type"))
		})
	}
	busy.close()
}
