package postgresstore_test

import (
	"context"
	"fmt"
	"os"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/migrate"
	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/postgresstore"
)

// Replicas sharing one Postgres database share each tenant's quotas. The
// application connects as a role without BYPASSRLS: the store scopes each
// of its statements to the request's tenant, so row-level security holds
// for the kit's tables as for the application's. (No output: it needs a
// server.)
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
	store, err := postgresstore.New(db) // postgresstore.ErrNotMigrated without the schema
	if err != nil {
		fmt.Println(err)
		return
	}
	q, err := tenancy.NewQuotas(store,
		tenancy.Rate("orders", 2, time.Minute),                // burst 2, then one every 30 s
		tenancy.Concurrency("exports", 2, 2*time.Minute),      // leased slots
		tenancy.Budget("credits", 1_000_000, tenancy.Monthly)) // reserve / settle / cancel
	if err != nil {
		fmt.Println(err)
		return
	}
	acme := tenancy.WithTenant(ctx, "acme") // the tenant middleware does this
	_, err = q.Allow(acme, "orders")        // one round trip: hardening_quota_take_rate
	fmt.Println(err)
}
