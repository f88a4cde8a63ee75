package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// TenantSetting is the Postgres setting that names the tenant of the
// current transaction. DB sets it, transaction-local (SET LOCAL
// semantics, set_config(TenantSetting, tenant, true)), at the start of
// every transaction it runs on Postgres, and the policies of
// RowLevelSecuritySQL compare each row's tenant column with it. Outside
// such a transaction it is unset, and those policies admit no row.
const TenantSetting = "app.tenant_id"

// CrossTenantSetting is the Postgres setting that lifts the tenant
// policies of RowLevelSecuritySQL for the current transaction when it is
// "on". Only DB.CrossTenantTx sets it (transaction-local), after checking
// and logging its reason; the kit's tenancy/postgresstore sets it for the
// one statement that reads every tenant's audit entries.
const CrossTenantSetting = "app.cross_tenant"

// postgresDrivers are the database/sql driver names of Postgres, as
// sqlx.DB.DriverName reports them.
var postgresDrivers = map[string]bool{"pgx": true, "pgx/v5": true, "postgres": true, "cloudsqlpostgres": true, "nrpostgres": true}

func isPostgres(driver string) bool { return postgresDrivers[driver] }

// begin starts a transaction and, on Postgres, sets the setting name to
// value for it.
func (d *DB) begin(ctx context.Context, opts *sql.TxOptions, name, value string) (*sqlx.Tx, error) {
	tx, err := d.db.BeginTxx(ctx, opts)
	if err != nil {
		return nil, err
	}
	if !d.pg {
		return tx, nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT set_config($1, $2, true)`, name, value); err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("tenancy: set %s: %w", name, err)
	}
	return tx, nil
}

// run runs fn in a transaction begun by begin, committing when fn
// succeeds and rolling back otherwise.
func (d *DB) run(ctx context.Context, name, value string, fn func(tx *sqlx.Tx) error) error {
	tx, err := d.begin(ctx, nil, name, value)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// inTenantTx runs one statement of DB on Postgres: a transaction scoped to
// tenant around it.
func (d *DB) inTenantTx(ctx context.Context, tenant ID, fn func(tx *sqlx.Tx) error) error {
	return d.run(ctx, TenantSetting, string(tenant), fn)
}

// CrossTenantTx runs fn in a transaction that may read and write every
// tenant's rows: the escape hatch that works under row-level security. On
// Postgres the transaction first sets CrossTenantSetting to "on", which
// the policies of RowLevelSecuritySQL honour for that transaction only;
// on SQLite it is a plain transaction. Like CrossTenant it needs a
// non-empty reason (ErrNoReason) and logs every call with the reason and
// the caller's file and line, at Warn (Debug for a reason declared with
// WithRoutineCrossTenant). The transaction commits when fn returns nil
// and rolls back otherwise; fn's error is returned as is.
func (d *DB) CrossTenantTx(ctx context.Context, reason string, fn func(tx *sqlx.Tx) error) error {
	if reason == "" {
		return ErrNoReason
	}
	if fn == nil {
		return errors.New("tenancy: CrossTenantTx: nil function")
	}
	d.logCrossTenant(ctx, reason)
	return d.run(ctx, CrossTenantSetting, "on", fn)
}
