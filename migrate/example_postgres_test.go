package migrate_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"testing/fstest"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the application imports the driver: "pgx"
	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/migrate"
)

// Run the startup check on Postgres. The dialect follows the driver name
// ("pgx"); search_path chooses the schema the migrations and their
// bookkeeping table go to. Replicas starting together wait on one advisory
// lock; bound the wait with ctx. (It needs a server, so it has no output
// and does not run under go test.)
func Example_postgres() {
	db, err := sqlx.Open("pgx", "postgres://app@127.0.0.1:5432/app?sslmode=disable&search_path=app")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	appMigrations := fstest.MapFS{ // Postgres SQL: one set per dialect
		"0001_orders.sql": {Data: []byte("CREATE TABLE orders (id bigserial PRIMARY KEY, tenant_id text NOT NULL);")},
	}
	m, err := migrate.New(db, migrate.WithSet("app", appMigrations))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := m.Enforce(ctx, migrate.Policy{Strict: true, UpCommand: "myservice migrate up"})
	switch {
	case errors.Is(err, migrate.ErrLockTimeout):
		log.Fatal("another replica is still migrating: ", err)
	case err != nil:
		log.Fatal(err)
	}
	log.Printf("schema at head: %t\n%s", st.AtHead(), st)

	ready, err := m.ReadinessHandler()
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /readyz", ready)
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
}
