package previewsec_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/systembuilderhub/hardening/previewsec"
)

// Mint and verify a token with keys derived from a master secret (the
// PREVIEW_JWT_SECRET mode: no store).
func ExampleIssuer_Mint() {
	at := func() time.Time { return time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC) }
	ring, _ := previewsec.NewDerivedKeyRing([]byte("example-master-secret-of-32-bytes!!"), previewsec.WithClock(at))
	issuer, _ := previewsec.NewIssuer(ring)
	verifier, _ := previewsec.NewVerifier(ring)

	token, expires, kid, err := issuer.Mint(context.Background(), previewsec.Grant{
		UserID: "user-1", TenantID: "tenant-1", PreviewID: "prev-1", SystemID: "sys-1", Device: "desktop",
	}, 30*time.Minute)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("kid:", kid, "expires:", expires.Format(time.RFC3339))

	claims, err := verifier.Verify(context.Background(), token)
	fmt.Println(claims.TenantID, claims.PreviewID, err)

	_, _, _, err = issuer.Mint(context.Background(), previewsec.Grant{TenantID: "t", PreviewID: "p"}, 2*time.Hour)
	fmt.Println(errors.Is(err, previewsec.ErrTTLTooLong))
	// Output:
	// kid: 20300601T000000Z expires: 2030-06-01T12:30:00Z
	// tenant-1 prev-1 <nil>
	// true
}

// Keys shared by replicas through a store, with background rotation and a
// revocation list.
func ExampleNewKeyRing() {
	ctx := context.Background()
	store := previewsec.NewMemoryKeyStore() // or sqlitestore.New(db), redisstore.New(rdb)
	ring, _ := previewsec.NewKeyRing(store, previewsec.WithKeyRotation(24*time.Hour))
	if err := ring.Refresh(ctx); err != nil { // fail fast at startup
		fmt.Println(err)
		return
	}
	_ = ring.Start(ctx)
	defer ring.Close(ctx)

	revocations, _ := previewsec.NewRevocationList(store)
	verifier, _ := previewsec.NewVerifier(ring, previewsec.WithRevocations(revocations))
	issuer, _ := previewsec.NewIssuer(ring)

	token, _, _, _ := issuer.Mint(ctx, previewsec.Grant{TenantID: "t1", PreviewID: "p1"}, 0)
	_ = revocations.RevokePreview(ctx, "p1") // the preview was deleted
	_, err := verifier.Verify(ctx, token)
	fmt.Println(errors.Is(err, previewsec.ErrRevoked))
	// Output: true
}

// Protect /preview/{preview_id}/ with the middleware; the verified claims
// are in the request context.
func ExampleRequirePreviewToken() {
	ring, _ := previewsec.NewDerivedKeyRing([]byte("example-master-secret-of-32-bytes!!"))
	issuer, _ := previewsec.NewIssuer(ring)
	verifier, _ := previewsec.NewVerifier(ring)
	owner := func(ctx context.Context, previewID string) (string, bool, error) {
		return "tenant-1", previewID == "prev-1", nil // look the preview up in your database
	}
	auth, _ := previewsec.RequirePreviewToken(verifier, previewsec.WithPreviewOwner(owner))

	mux := http.NewServeMux()
	mux.Handle("/preview/{preview_id}/", auth.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := previewsec.ClaimsFromContext(r.Context())
		fmt.Fprintf(w, "hello %s", c.Subject)
	})))

	token, _, _, _ := issuer.Mint(context.Background(), previewsec.Grant{UserID: "ann", TenantID: "tenant-1", PreviewID: "prev-1"}, 0)

	req := httptest.NewRequest(http.MethodGet, "/preview/prev-1/?preview_token="+token, nil)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("Location"))

	req = httptest.NewRequest(http.MethodGet, "/preview/prev-1/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())

	req = httptest.NewRequest(http.MethodGet, "/preview/prev-1/", nil)
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))
	// Output:
	// 303 /preview/prev-1/
	// 200 hello ann
	// 401 Bearer realm="preview"
}
