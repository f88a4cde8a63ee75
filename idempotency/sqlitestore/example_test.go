package sqlitestore_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/sqlitestore"
	"github.com/systembuilderhub/hardening/migrate"
)

// Replicas sharing one SQLite file run a retried request once.
func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "idempotency-example")
	defer os.RemoveAll(dir)
	db, err := migrate.OpenSQLite(ctx, filepath.Join(dir, "app.db"), 5*time.Second)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	if _, err := migrate.Up(ctx, db); err != nil { // the schema comes from migrate
		fmt.Println(err)
		return
	}
	store, err := sqlitestore.New(db)
	if err != nil {
		fmt.Println(err)
		return
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
	st, _ := store.Stats(ctx, time.Now())
	fmt.Printf("records: %d, in flight: %d\n", st.Keys, st.InFlight)
	// Output:
	// 201 replay="" {"order":"ord_1"}
	// 201 replay="true" {"order":"ord_1"}
	// records: 1, in flight: 0
}
