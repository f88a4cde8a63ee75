package previewsec_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/previewsec"
)

// The README's "Use it in your own service" snippets: each Example_ function
// body below is shown there as is.

// Mint preview tokens and serve /preview/{preview_id}/ behind the
// preview-auth middleware: a link with ?preview_token= becomes a cookie and
// a 303 to the same URL without the token.
func Example_previewAuth() {
	ring, _ := previewsec.NewDerivedKeyRing([]byte("a-master-secret-of-at-least-32-bytes")) // or NewKeyRing(store)
	issuer, _ := previewsec.NewIssuer(ring)
	verifier, _ := previewsec.NewVerifier(ring) // + WithRevocations(list) to honour revocations
	auth, err := previewsec.RequirePreviewToken(verifier, previewsec.WithPreviewOwner(
		func(ctx context.Context, previewID string) (string, bool, error) {
			return "acme", previewID == "pv_1", nil // the preview's tenant, from your database
		}))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /preview/{preview_id}/", auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := previewsec.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "preview %s for %s", c.PreviewID, c.Subject)
	})))

	token, _, _, _ := issuer.Mint(context.Background(), previewsec.Grant{UserID: "alice", TenantID: "acme", PreviewID: "pv_1"}, 15*time.Minute)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/preview/pv_1/?preview_token="+token, nil))
	fmt.Println(rec.Code, rec.Header().Get("Location"), rec.Result().Cookies()[0].Name)
	// Output:
	// 303 /preview/pv_1/ preview_token
}

// Mint a preview token on behalf of the caller that hardening.RequireCaller
// put in the context: the grant names only the preview; tenant and user
// are the caller's.
func ExampleIssuer_Mint_caller() {
	ring, _ := previewsec.NewDerivedKeyRing([]byte("a-master-secret-of-at-least-32-bytes"))
	issuer, _ := previewsec.NewIssuer(ring)
	verifier, _ := previewsec.NewVerifier(ring)
	auth := hardening.AuthenticatorFunc(func(r *http.Request) (hardening.Caller, error) {
		return hardening.Caller{Subject: "alice", Tenant: "acme"}, nil // verify your own credential here
	})
	mint := hardening.RequireCaller(auth, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, _, _, err := issuer.Mint(r.Context(), previewsec.Grant{PreviewID: "pv_1"}, 0)
		if err != nil {
			http.Error(w, "cannot mint", http.StatusInternalServerError)
			return
		}
		c, _ := verifier.Verify(r.Context(), token)
		fmt.Fprintf(w, "token for %s/%s on %s", c.TenantID, c.Subject, c.PreviewID)
	}))
	rec := httptest.NewRecorder()
	mint.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/previews/pv_1/token", nil))
	fmt.Println(rec.Body.String())
	// Output:
	// token for acme/alice on pv_1
}

// Answer refused preview requests your own way: the handler receives a
// *previewsec.RejectionError, a hardening.Error whose Problem is the
// default answer.
func ExampleWithErrorHandler() {
	ring, _ := previewsec.NewDerivedKeyRing([]byte("a-master-secret-of-at-least-32-bytes"))
	verifier, _ := previewsec.NewVerifier(ring)
	auth, err := previewsec.RequirePreviewToken(verifier, previewsec.WithErrorHandler(
		func(w http.ResponseWriter, r *http.Request, err error) {
			var rej *previewsec.RejectionError
			if errors.As(err, &rej) {
				log.Printf("preview %s refused: %s", rej.PreviewID, rej.Cause) // the detail stays in your logs
			}
			// Or keep problem+json with your own type URIs:
			hardening.ProblemWriter{TypeBase: "https://docs.example.com/errors#"}.WriteError(w, r, err)
		}))
	if err != nil {
		log.Fatal(err)
	}
	h := auth.Handler(http.NotFoundHandler())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/preview/pv_1/", nil))
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	fmt.Println(strings.Contains(rec.Body.String(), `"type":"https://docs.example.com/errors#preview_token_required"`))
	// Output:
	// 401 Bearer realm="preview"
	// true
}
