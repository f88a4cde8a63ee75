package idempotency_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/systembuilderhub/hardening/idempotency"
)

func Example() {
	m, err := idempotency.New(idempotency.NewMemoryStore(),
		idempotency.WithScope(func(r *http.Request) (string, error) {
			// In a real service: the tenant and user set by authentication.
			return "tenant-1/user-1", nil
		}))
	if err != nil {
		panic(err)
	}
	runs := 0
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"charge":%d}`, runs)
	}))

	for range 2 {
		req := httptest.NewRequest(http.MethodPost, "/charges", strings.NewReader(`{"amount":5}`))
		req.Header.Set("Idempotency-Key", `"order-42"`)
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		fmt.Printf("%d %s replay=%q\n", rr.Code, rr.Body.String(), rr.Header().Get("Idempotent-Replay"))
	}
	fmt.Println("runs:", runs)
	// Output:
	// 201 {"charge":1} replay=""
	// 201 {"charge":1} replay="true"
	// runs: 1
}

func ExampleParseKey() {
	for _, v := range []string{`"abc"`, `abc`, `"a b"`} {
		k, err := idempotency.ParseKey(v)
		fmt.Printf("%q %v\n", k, err)
	}
	// Output:
	// "abc" <nil>
	// "abc" <nil>
	// "" idempotency: malformed Idempotency-Key
}

func ExampleMiddleware_Start() {
	m, err := idempotency.New(idempotency.NewMemoryStore())
	if err != nil {
		panic(err)
	}
	// The sweeper deletes expired records until Close.
	if err := m.Start(context.Background()); err != nil {
		panic(err)
	}
	defer m.Close(context.Background())

	st, _ := m.Status(context.Background())
	fmt.Println(st.Store, st.TTLSeconds, st.LockTimeoutSeconds)
	// Output:
	// memory 86400 30
}

// Wire the middleware into a plain net/http service (the README's
// "Embed it in your service" snippet).
func Example_service() {
	idem, err := idempotency.New(idempotency.NewMemoryStore(), // or sqlitestore.New(db), redisstore.New(rdb)
		idempotency.WithScope(func(r *http.Request) (string, error) {
			return "acme/alice", nil // the tenant and user your authentication verified
		}))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /orders", idem.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"order":"ord_1"}`)
	})))

	for range 2 { // a client retrying with the same key
		req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(`{"sku":"anvil"}`))
		req.Header.Set("Idempotency-Key", "order-42")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		fmt.Printf("%d replay=%q %s\n", rec.Code, rec.Header().Get("Idempotent-Replay"), rec.Body)
	}
	// Output:
	// 201 replay="" {"order":"ord_1"}
	// 201 replay="true" {"order":"ord_1"}
}
