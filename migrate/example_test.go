package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing/fstest"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/migrate"
)

// Apply the kit's schema and an application's own migration set at startup,
// refusing to start when the database does not match this binary.
func Example() {
	dir, _ := os.MkdirTemp("", "migrate-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := migrate.OpenSQLite(ctx, filepath.Join(dir, "app.db"), 0)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	appMigrations := fstest.MapFS{
		"0001_orders.sql": {Data: []byte("CREATE TABLE orders (id INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL);")},
	}
	m, err := migrate.New(db, migrate.WithSet("app", appMigrations))
	if err != nil {
		log.Fatal(err)
	}
	policy := migrate.Policy{Strict: true, UpCommand: "myservice migrate up"} // zero fields: check and auto-apply on
	st, err := m.Enforce(ctx, policy)
	if err != nil {
		log.Fatal(err) // the error text names the versions and the command to run
	}
	fmt.Println("at head:", st.AtHead())
	for _, s := range st.Sets {
		fmt.Printf("%s at version %d\n", s.Set, s.Current)
	}

	// Serve the same verdict on /readyz.
	ready, err := m.ReadinessHandler()
	if err != nil {
		log.Fatal(err)
	}
	rec := httptest.NewRecorder()
	ready.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	fmt.Println("readyz:", rec.Code)
	// Output:
	// at head: true
	// kit at version 6
	// app at version 1
	// readyz: 200
}

// Run the startup check and serve /readyz in a plain net/http service (the
// README's "Use it in your own service" snippet).
func Example_service() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "service") // your data directory
	defer os.RemoveAll(dir)
	db, err := migrate.OpenSQLite(ctx, filepath.Join(dir, "app.db"), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	m, err := migrate.New(db) // + migrate.WithSet("app", yourMigrations) for your own tables
	if err != nil {
		log.Fatal(err)
	}
	policy := migrate.DefaultPolicy() // your config sets Strict, DisableAutoApply, ...
	if _, err := m.Enforce(ctx, policy); err != nil {
		log.Fatal(err) // strict mode: names the pending versions and the command to run
	}
	ready, err := m.ReadinessHandler()
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /readyz", ready)

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	fmt.Println(rec.Code, rec.Body)
	// Output: 200 {"status":"ready"}
}

// Answer a not-ready /readyz in the service's own format: the error
// handler receives a *migrate.NotReadyError and can tell a pending schema
// from a dead database with errors.Is.
func ExampleWithErrorHandler() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "readyz")
	defer os.RemoveAll(dir)
	db, err := migrate.OpenSQLite(ctx, filepath.Join(dir, "app.db"), 0)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	m, err := migrate.New(db)
	if err != nil {
		log.Fatal(err)
	}
	onError := func(w http.ResponseWriter, r *http.Request, err error) {
		var nr *migrate.NotReadyError
		if !errors.As(err, &nr) {
			hardening.WriteError(w, r, err)
			return
		}
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s (pending: %t)\n", nr.Reason, errors.Is(err, migrate.ErrPending))
	}
	ready, err := m.ReadinessHandler(migrate.WithErrorHandler(onError))
	if err != nil {
		log.Fatal(err)
	}
	rec := httptest.NewRecorder()
	ready.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	fmt.Print(rec.Code, " ", rec.Body)
	// Output: 503 not ready: schema_pending (pending: true)
}
