package previewsec_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/systembuilderhub/hardening/previewsec"
)

// The README's "Embed it in your service" snippets: each Example_ function
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
