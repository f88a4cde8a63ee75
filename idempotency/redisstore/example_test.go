package redisstore_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/redisstore"
)

// Replicas sharing one Redis run a retried request once.
func ExampleNew() {
	mr, err := miniredis.Run() // stands in for a real Redis here
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	store, err := redisstore.New(rdb, redisstore.WithPrefix("myapp:idem:"))
	if err != nil {
		panic(err)
	}
	auth := hardening.AuthenticatorFunc(func(*http.Request) (hardening.Caller, error) {
		return hardening.Caller{Tenant: "acme", Subject: "alice"}, nil // verify the credential here
	})
	m, _ := idempotency.New(store) // records are scoped by the caller
	h := hardening.RequireCaller(auth, nil)(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"order":"ord_1"}`)
	})))

	for range 2 { // a client retrying with the same key
		req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(`{"sku":"anvil"}`))
		req.Header.Set("Idempotency-Key", "order-42")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Printf("%d replay=%q %s\n", rec.Code, rec.Header().Get("Idempotent-Replay"), rec.Body)
	}
	st, _ := store.Stats(context.Background(), time.Now())
	fmt.Printf("%s records: %d, in flight: %d\n", store, st.Keys, st.InFlight)
	// Output:
	// 201 replay="" {"order":"ord_1"}
	// 201 replay="true" {"order":"ord_1"}
	// redis records: 1, in flight: 0
}
