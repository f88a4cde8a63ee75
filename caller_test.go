package hardening_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening"
)

var errBadSignature = errors.New("signature mismatch for key k1")

// bearer accepts "Bearer alice@acme", refuses anything else, and reports
// its backend down for "Bearer down".
var bearer = hardening.AuthenticatorFunc(func(r *http.Request) (hardening.Caller, error) {
	switch r.Header.Get("Authorization") {
	case "Bearer alice@acme":
		return hardening.Caller{Subject: "alice", Tenant: "acme", Roles: []string{"admin"}}, nil
	case "Bearer down":
		return hardening.Caller{}, hardening.NewProblem(http.StatusServiceUnavailable, "auth_unavailable", "try again")
	}
	return hardening.Caller{}, fmt.Errorf("verify: %w", errBadSignature)
})

func whoami(w http.ResponseWriter, r *http.Request) {
	c, ok := hardening.CallerFrom(r.Context())
	if !ok {
		http.Error(w, "no caller", http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "%s@%s admin=%v", c.Subject, c.Tenant, c.HasRole("admin"))
}

func serve(h http.Handler, authz string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/me", nil)
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestRequireCaller(t *testing.T) {
	h := hardening.RequireCaller(bearer, nil)(http.HandlerFunc(whoami))

	rec := serve(h, "Bearer alice@acme")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "alice@acme admin=true", rec.Body.String())

	rec = serve(h, "Bearer forged")
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Equal(t, "Bearer", rec.Header().Get("WWW-Authenticate"))
	assert.Equal(t, "unauthenticated", decode(t, rec)["reason"])
	assert.NotContains(t, rec.Body.String(), "k1", "the cause stays out of the answer")

	rec = serve(h, "Bearer down")
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.Empty(t, rec.Header().Get("WWW-Authenticate"))
	assert.Equal(t, "auth_unavailable", decode(t, rec)["reason"])
}

func TestRequireCallerErrorHandlerSeesTheCause(t *testing.T) {
	var got error
	h := hardening.RequireCaller(bearer, func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		w.WriteHeader(http.StatusTeapot)
	})(http.HandlerFunc(whoami))
	assert.Equal(t, http.StatusTeapot, serve(h, "").Code)
	require.ErrorIs(t, got, errBadSignature)
	var e hardening.Error
	require.ErrorAs(t, got, &e)
	assert.Equal(t, http.StatusUnauthorized, e.Problem().Status)
}

func TestCallerFromEmptyContext(t *testing.T) {
	_, ok := hardening.CallerFrom(httptest.NewRequest(http.MethodGet, "/", nil).Context())
	assert.False(t, ok)
	assert.Panics(t, func() { hardening.RequireCaller(nil, nil) })
}

// ExampleRequireCaller: a service states its caller once; every package of
// the kit reads it from the request context.
func ExampleRequireCaller() {
	auth := hardening.AuthenticatorFunc(func(r *http.Request) (hardening.Caller, error) {
		if r.Header.Get("Authorization") != "Bearer demo" { // verify your real credential here
			return hardening.Caller{}, errors.New("no valid token")
		}
		return hardening.Caller{Subject: "alice", Tenant: "acme"}, nil
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		c, _ := hardening.CallerFrom(r.Context())
		fmt.Fprintf(w, "%s of %s\n", c.Subject, c.Tenant)
	})
	h := hardening.RequireCaller(auth, nil)(mux)

	for _, token := range []string{"demo", "stolen"} {
		r := httptest.NewRequest(http.MethodGet, "/me", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		fmt.Print(rec.Code, " ")
		_, _ = os.Stdout.Write(rec.Body.Bytes())
	}
	// Output:
	// 200 alice of acme
	// 401 {"detail":"a valid credential is required","instance":"/me","reason":"unauthenticated","status":401,"title":"Unauthorized","type":"https://github.com/systembuilderhub/hardening/blob/main/docs/problems.md#unauthenticated"}
}
