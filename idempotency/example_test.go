package idempotency_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/idempotency"
)

func Example() {
	// Authentication puts the verified hardening.Caller in the context; the
	// middleware scopes its records by that caller's tenant and subject.
	auth := hardening.AuthenticatorFunc(func(r *http.Request) (hardening.Caller, error) {
		if r.Header.Get("Authorization") != "Bearer alice-token" {
			return hardening.Caller{}, errors.New("unknown token")
		}
		return hardening.Caller{Tenant: "acme", Subject: "alice"}, nil
	})
	m, err := idempotency.New(idempotency.NewMemoryStore())
	if err != nil {
		panic(err)
	}
	runs := 0
	h := hardening.RequireCaller(auth, nil)(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runs++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"charge":%d}`, runs)
	})))

	for range 2 {
		req := httptest.NewRequest(http.MethodPost, "/charges", strings.NewReader(`{"amount":5}`))
		req.Header.Set("Authorization", "Bearer alice-token")
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

// Answer the middleware's refusals in your service's own error format: the
// handler receives an *idempotency.Error, which is also a hardening.Error.
func ExampleWithErrorHandler() {
	m, err := idempotency.New(idempotency.NewMemoryStore(),
		idempotency.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			var e *idempotency.Error
			if errors.As(err, &e) && e.Reason == idempotency.ReasonKeyInvalid {
				http.Error(w, "bad Idempotency-Key", e.Problem().Status)
				return
			}
			hardening.WriteError(w, r, err) // problem+json for the others
		}))
	if err != nil {
		panic(err)
	}
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}))

	req := httptest.NewRequest(http.MethodPost, "/charges", strings.NewReader(`{"amount":5}`))
	req = req.WithContext(hardening.WithCaller(req.Context(), hardening.Caller{Tenant: "acme", Subject: "alice"}))
	req.Header.Set("Idempotency-Key", `"unterminated`)
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	fmt.Print(rr.Code, " ", rr.Body.String())
	// Output:
	// 400 bad Idempotency-Key
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
// "Use it in your own service" snippet).
func Example_service() {
	auth := hardening.AuthenticatorFunc(func(r *http.Request) (hardening.Caller, error) {
		return hardening.Caller{Tenant: "acme", Subject: "alice"}, nil // verify the credential here
	})
	idem, err := idempotency.New(idempotency.NewMemoryStore()) // or sqlitestore.New(db), redisstore.New(rdb)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /orders", idem.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"order":"ord_1"}`)
	})))
	srv := hardening.RequireCaller(auth, nil)(mux) // records are scoped by the caller

	for range 2 { // a client retrying with the same key
		req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(`{"sku":"anvil"}`))
		req.Header.Set("Idempotency-Key", "order-42")
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		fmt.Printf("%d replay=%q %s\n", rec.Code, rec.Header().Get("Idempotent-Replay"), rec.Body)
	}
	// Output:
	// 201 replay="" {"order":"ord_1"}
	// 201 replay="true" {"order":"ord_1"}
}
