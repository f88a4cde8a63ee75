package streamauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/streamauth"
)

// One authenticator for the whole service: hardening.RequireCaller guards
// the REST routes with it and streamauth.SSE the streams; both handlers
// read the caller with hardening.CallerFrom. The identity provider puts
// the tenant in an "org" claim.
func Example_oneAuthenticator() {
	secret := []byte("a-secret-of-at-least-16-bytes")
	auth, err := streamauth.NewJWT(secret, streamauth.WithTenantClaim("org"))
	if err != nil {
		panic(err)
	}
	reg, err := streamauth.NewRegistry()
	if err != nil {
		panic(err)
	}
	defer reg.Close(context.Background())

	events, err := streamauth.SSE(auth, reg, streamauth.SSEHandlerFunc(func(ctx context.Context, s *streamauth.SSEStream) error {
		c, _ := hardening.CallerFrom(ctx) // the stream's caller
		ev, err := streamauth.NewEvent("hello", c.Subject+"@"+c.Tenant)
		if err != nil {
			return err
		}
		return s.Send(ev)
	}))
	if err != nil {
		panic(err)
	}
	me := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := hardening.CallerFrom(r.Context())
		fmt.Fprintf(w, "%s@%s\n", c.Subject, c.Tenant)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /api/me", hardening.RequireCaller(auth, nil)(me))
	mux.Handle("GET /events", events)

	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "org": "acme", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(secret)
	for _, path := range []string{"/api/me", "/events"} {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, r)
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	// Output:
	// 200 alice@acme
	// 200 event: hello
	// data: "alice@acme"
}

// A custom ErrorHandler sees every refusal as a *streamauth.RefusedError
// (here to count it) and answers it; hardening.ProblemWriter links the
// problem types to the service's own documentation.
func ExampleWithErrorHandler() {
	auth, _ := streamauth.NewJWT([]byte("a-secret-of-at-least-16-bytes"))
	reg, _ := streamauth.NewRegistry()
	defer reg.Close(context.Background())
	refused := map[string]int{}
	onError := func(w http.ResponseWriter, r *http.Request, err error) {
		var re *streamauth.RefusedError
		if errors.As(err, &re) {
			refused[re.Reason]++
		}
		hardening.ProblemWriter{TypeBase: "https://docs.example.com/errors#"}.WriteError(w, r, err)
	}
	events, _ := streamauth.SSE(auth, reg, streamauth.ForwardSSE, streamauth.WithErrorHandler(onError))

	rec := httptest.NewRecorder()
	events.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/events", nil))
	var body struct{ Type, Reason string }
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"), body.Type, refused)
	// Output: 401 Bearer https://docs.example.com/errors#missing_token map[missing_token:1]
}
