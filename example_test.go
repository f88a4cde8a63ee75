package hardening_test

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/tenancy"
)

// Example_service composes the kit in a service of its own: the caller is
// stated once (RequireCaller), idempotency scopes its records by it,
// tenancy's quota counts per its tenant, and every error is answered in the
// service's own problem namespace.
func Example_service() {
	// Your authentication, written once: verify the credential, return the caller.
	auth := hardening.AuthenticatorFunc(func(r *http.Request) (hardening.Caller, error) {
		org, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer demo-") // in a service: verify a JWT
		if !ok {
			return hardening.Caller{}, errors.New("no valid token")
		}
		return hardening.Caller{Subject: "alice", Tenant: org}, nil
	})
	onError := hardening.ProblemWriter{TypeBase: "https://api.example.com/problems/"}.WriteError

	idem, err := idempotency.New(idempotency.NewMemoryStore(), idempotency.WithErrorHandler(onError)) // or sqlitestore / redisstore
	if err != nil {
		log.Fatal(err)
	}
	quotas, err := tenancy.NewQuotas(tenancy.NewMemoryStore(), tenancy.Rate("orders", 1, time.Minute), tenancy.WithErrorHandler(onError))
	if err != nil {
		log.Fatal(err)
	}
	orders := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"order_id":"ord_1"}`)
	})
	mux := http.NewServeMux()
	mux.Handle("POST /orders", idem.Handler(quotas.RateLimit("orders")(orders))) // idempotency outside the quota
	srv := hardening.RequireCaller(auth, onError)(mux)

	for _, key := range []string{"k1", "k1", "k2"} { // a retry, then a second order within the minute
		r := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(`{"sku":"anvil"}`))
		r.Header.Set("Authorization", "Bearer demo-acme")
		r.Header.Set("Idempotency-Key", key)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, r)
		fmt.Println(rec.Code, rec.Header().Get("Idempotent-Replay"), strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// 201  {"order_id":"ord_1"}
	// 201 true {"order_id":"ord_1"}
	// 429  {"current":1,"detail":"the \"orders\" rate limit is exhausted","instance":"/orders","limit":1,"reason":"orders_rate_exceeded","resource":"orders","retry_after_seconds":60,"status":429,"title":"Too Many Requests","type":"https://api.example.com/problems/orders_rate_exceeded"}
}
