package postgresstore_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/postgresstore"
	"github.com/systembuilderhub/hardening/migrate"
)

// Replicas sharing one Postgres database run a retried request once. (The
// example needs a server, so it has no checked output.)
func ExampleNew() {
	ctx := context.Background()
	db, err := sqlx.Open("pgx", os.Getenv("DATABASE_URL")) // postgres://app@db:5432/app
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	if _, err := migrate.Up(ctx, db); err != nil { // the schema comes from migrate
		fmt.Println(err)
		return
	}
	store, err := postgresstore.New(db) // reports an unmigrated database
	if err != nil {
		fmt.Println(err)
		return
	}
	auth := hardening.AuthenticatorFunc(func(*http.Request) (hardening.Caller, error) {
		return hardening.Caller{Tenant: "acme", Subject: "alice"}, nil // verify the credential here
	})
	m, _ := idempotency.New(store)       // records are scoped by the caller
	if err := m.Start(ctx); err != nil { // the sweeper deletes expired records
		fmt.Println(err)
		return
	}
	defer m.Close(context.Background())
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
}
