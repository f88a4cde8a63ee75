package streamauth_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/streamauth"
)

// TestJWTToken: the exported extraction finds the credential where the
// authenticator looks for it, header first.
func TestJWTToken(t *testing.T) {
	a, err := streamauth.NewJWT([]byte("a-secret-of-at-least-16-bytes"), streamauth.WithCookie("sess"))
	require.NoError(t, err)
	req := func(mod func(*http.Request)) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/events?access_token=q", nil)
		mod(r)
		return r
	}
	assert.Equal(t, "h", a.Token(req(func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer h")
		r.AddCookie(&http.Cookie{Name: "sess", Value: "c"})
	})))
	assert.Empty(t, a.Token(req(func(r *http.Request) { r.Header.Set("Authorization", "Basic eDp5") })), "another scheme is no token")
	assert.Equal(t, "c", a.Token(req(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "sess", Value: "c"}) })))
	assert.Equal(t, "q", a.Token(req(func(*http.Request) {})))
}
