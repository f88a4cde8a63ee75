package sqlitestore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/systembuilderhub/hardening/migrate"
	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/sqlitestore"
)

// Replicas sharing one SQLite file share each tenant's quotas.
func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "tenancy-example")
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
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	q, err := tenancy.NewQuotas(store,
		tenancy.Rate("orders", 2, time.Minute), // burst 2, then one every 30 s
		tenancy.WithClock(func() time.Time { return now }))
	if err != nil {
		fmt.Println(err)
		return
	}
	acme := tenancy.WithTenant(ctx, "acme") // the tenant middleware does this
	for range 3 {
		_, err := q.Allow(acme, "orders")
		fmt.Println(err)
	}
	// Output:
	// <nil>
	// <nil>
	// tenancy: rate "orders" exhausted (2 of 2 in use; retry in 30s)
}
