package tenancy_test

import (
	"context"
	"fmt"
	"os"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/tenancy"
)

// The application's own migration puts its tenant-owned table under
// row-level security with the kit's policy.
func ExampleRowLevelSecuritySQL() {
	stmt, err := tenancy.RowLevelSecuritySQL("widgets", "tenant_id")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(stmt)
	_, err = tenancy.RowLevelSecuritySQL("widgets; DROP TABLE users", "tenant_id")
	fmt.Println(err)
	// Output:
	// ALTER TABLE "widgets" ENABLE ROW LEVEL SECURITY;
	// ALTER TABLE "widgets" FORCE ROW LEVEL SECURITY;
	// CREATE POLICY hardening_tenant_isolation ON "widgets"
	//     USING ("tenant_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on')
	//     WITH CHECK ("tenant_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on');
	// tenancy: invalid SQL identifier: table "widgets; DROP TABLE users"
}

// On Postgres, DB sets app.tenant_id for each of its transactions, and the
// table's policy (RowLevelSecuritySQL) filters the rows in the database:
// a query that forgets its tenant filter still reads only the tenant's
// rows. The application connects as a role without BYPASSRLS. (No
// output: it needs a server.)
func ExampleDB_postgres() {
	raw, err := sqlx.Open("pgx", os.Getenv("DATABASE_URL")) // postgres://app@db:5432/app
	if err != nil {
		fmt.Println(err)
		return
	}
	defer raw.Close()
	db, err := tenancy.NewDB(raw) // detects Postgres from raw.DriverName()
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := tenancy.WithTenant(context.Background(), "acme") // the middleware does this

	// BEGIN; SELECT set_config('app.tenant_id', 'acme', true); the query; COMMIT
	var names []string
	err = db.SelectContext(ctx, &names, `SELECT name FROM widgets WHERE tenant_id = :tenant_id OR true`, nil)
	fmt.Println(names, err) // acme's widgets only: RLS filtered the rest

	// The escape hatch: a reason, a log line, and app.cross_tenant = 'on'
	// for this transaction only.
	var total int
	err = db.CrossTenantTx(ctx, "monthly usage report", func(tx *sqlx.Tx) error {
		return tx.GetContext(ctx, &total, `SELECT count(*) FROM widgets`)
	})
	fmt.Println(total, err)
}
