package tenancy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"

	"github.com/jmoiron/sqlx"
)

// TenantParam is the named parameter every query through DB must use
// (as ":tenant_id"); DB binds it to the context's tenant.
const TenantParam = "tenant_id"

var (
	// ErrUnscopedQuery is returned when a query through DB does not
	// reference :tenant_id. The query does not reach the database.
	ErrUnscopedQuery = errors.New("tenancy: query does not reference :tenant_id")
	// ErrNoTenant is returned when the context carries no tenant. Nothing
	// reaches the database (or the quota store). It is a hardening.Error:
	// 401 tenant_required.
	ErrNoTenant = newProblemError("tenancy: no tenant in context",
		http.StatusUnauthorized, ReasonTenantRequired, "the request carries no verified tenant")
	// ErrNoReason is returned by DB.CrossTenant and DB.CrossTenantTx
	// without a reason.
	ErrNoReason = errors.New("tenancy: cross-tenant access needs a reason")
	// ErrRowsNeedTx is returned by DB.QueryxContext on Postgres, where the
	// tenant is set per transaction and open rows would outlive the
	// statement's own: query through BeginTxx and Tx.QueryxContext.
	ErrRowsNeedTx = errors.New("tenancy: on Postgres, QueryxContext needs a transaction (BeginTxx, then Tx.QueryxContext)")
)

// Args are the named arguments of a query through DB. The "tenant_id"
// entry, if any, is ignored: DB always binds the context's tenant.
type Args map[string]any

// DB wraps a *sqlx.DB for the application's own tenant-owned tables and
// enforces one rule: every query names the parameter :tenant_id, and DB
// binds it to the tenant of the call's context, overriding any value in
// the arguments. A query that does not reference :tenant_id fails with
// ErrUnscopedQuery, a context without a tenant with ErrNoTenant, and in
// both cases nothing is sent to the database.
//
// The rule is a guard rail checked on the query's parameters, not a SQL
// parser: "WHERE tenant_id = :tenant_id OR 1=1" passes it. Review queries
// as usual; the wrapper makes forgetting the tenant impossible, not
// subverting it.
//
// Deliberate cross-tenant queries (admin reports, migrations) go through
// CrossTenant, which needs a reason and logs every use.
type DB struct {
	db      *sqlx.DB
	log     *slog.Logger
	routine map[string]bool
	pg      bool // Postgres: set TenantSetting per transaction
}

// NewDB wraps db. The options that apply are WithLogger (CrossTenant
// logs there) and WithRoutineCrossTenant.
func NewDB(db *sqlx.DB, opts ...DBOption) (*DB, error) {
	if db == nil {
		return nil, errors.New("tenancy: NewDB: nil *sqlx.DB")
	}
	c := &dbConfig{}
	for _, o := range opts {
		if o != nil {
			o.applyDB(c)
		}
	}
	if c.routine[""] {
		return nil, fmt.Errorf("tenancy: NewDB: WithRoutineCrossTenant: %w", ErrNoReason)
	}
	return &DB{db: db, log: discardIfNil(c.log), routine: c.routine, pg: isPostgres(db.DriverName())}, nil
}

type dbOption func(*dbConfig)

func (o dbOption) applyDB(c *dbConfig) { o(c) }

// WithRoutineCrossTenant declares reasons of CrossTenant calls that are
// routine, such as a lookup every request makes before it knows the
// tenant. CrossTenant logs those at Debug instead of Warn, so that the Warn
// log keeps only the ad hoc escapes. The declaration sits where the DB is
// built, so review sees every routine escape in one place; each call still
// needs its reason and is logged with its caller. An empty reason is an
// error from NewDB.
func WithRoutineCrossTenant(reasons ...string) DBOption {
	return dbOption(func(c *dbConfig) {
		if c.routine == nil {
			c.routine = make(map[string]bool, len(reasons))
		}
		for _, r := range reasons {
			c.routine[r] = true
		}
	})
}

type sentinelT struct{ _ byte }

// tenantSentinel stands for the tenant while sqlx compiles the named query,
// so the check uses sqlx's own parser: the query is scoped exactly when the
// sentinel shows up among the bound arguments.
var tenantSentinel = &sentinelT{}

// bind compiles query with args for the context's tenant, returning the
// positional query, its arguments and the tenant.
func bind(db *sqlx.DB, ctx context.Context, query string, args Args) (string, []any, ID, error) {
	tenant, ok := FromContext(ctx)
	if !ok {
		return "", nil, "", ErrNoTenant
	}
	m := make(map[string]any, len(args)+1)
	for k, v := range args {
		m[k] = v
	}
	m[TenantParam] = tenantSentinel
	q, bound, err := sqlx.Named(query, m)
	if err != nil {
		return "", nil, "", fmt.Errorf("tenancy: bind query: %w", err)
	}
	scoped := false
	for i, a := range bound {
		if a == any(tenantSentinel) {
			bound[i] = string(tenant)
			scoped = true
		}
	}
	if !scoped {
		return "", nil, "", ErrUnscopedQuery
	}
	return db.Rebind(q), bound, tenant, nil
}

// ExecContext runs a statement scoped to the context's tenant (on
// Postgres in a short transaction that sets TenantSetting first).
func (d *DB) ExecContext(ctx context.Context, query string, args Args) (res sql.Result, err error) {
	q, a, tenant, err := bind(d.db, ctx, query, args)
	if err != nil {
		return nil, err
	}
	if !d.pg {
		return d.db.ExecContext(ctx, q, a...)
	}
	err = d.inTenantTx(ctx, tenant, func(tx *sqlx.Tx) (err error) {
		res, err = tx.ExecContext(ctx, q, a...)
		return err
	})
	return res, err
}

// GetContext scans one row scoped to the context's tenant into dest (on
// Postgres in a short transaction that sets TenantSetting first).
func (d *DB) GetContext(ctx context.Context, dest any, query string, args Args) error {
	q, a, tenant, err := bind(d.db, ctx, query, args)
	if err != nil {
		return err
	}
	if !d.pg {
		return d.db.GetContext(ctx, dest, q, a...)
	}
	return d.inTenantTx(ctx, tenant, func(tx *sqlx.Tx) error { return tx.GetContext(ctx, dest, q, a...) })
}

// SelectContext scans all rows scoped to the context's tenant into dest
// (on Postgres in a short transaction that sets TenantSetting first).
func (d *DB) SelectContext(ctx context.Context, dest any, query string, args Args) error {
	q, a, tenant, err := bind(d.db, ctx, query, args)
	if err != nil {
		return err
	}
	if !d.pg {
		return d.db.SelectContext(ctx, dest, q, a...)
	}
	return d.inTenantTx(ctx, tenant, func(tx *sqlx.Tx) error { return tx.SelectContext(ctx, dest, q, a...) })
}

// QueryxContext runs a query scoped to the context's tenant. On Postgres
// it returns ErrRowsNeedTx: open rows would outlive the transaction that
// sets the tenant, so use BeginTxx and Tx.QueryxContext (or
// SelectContext).
func (d *DB) QueryxContext(ctx context.Context, query string, args Args) (*sqlx.Rows, error) {
	q, a, _, err := bind(d.db, ctx, query, args)
	if err != nil {
		return nil, err
	}
	if d.pg {
		return nil, ErrRowsNeedTx
	}
	return d.db.QueryxContext(ctx, q, a...)
}

// BeginTxx starts a transaction bound to the context's tenant: every
// statement of the returned Tx is scoped to that tenant, whatever the
// context passed to the statement carries. On Postgres its first
// statement sets TenantSetting to the tenant for the transaction.
func (d *DB) BeginTxx(ctx context.Context, opts *sql.TxOptions) (*Tx, error) {
	tenant, ok := FromContext(ctx)
	if !ok {
		return nil, ErrNoTenant
	}
	tx, err := d.begin(ctx, opts, TenantSetting, string(tenant))
	if err != nil {
		return nil, err
	}
	return &Tx{tx: tx, db: d.db, tenant: tenant}, nil
}

// CrossTenant returns the unwrapped database for a deliberate query across
// tenants. It is, with CrossTenantTx, the wrapper's escape hatch: it needs
// a non-empty reason, logs every call with the reason and the caller's
// file and line, and its name is easy to grep for in review. The level is
// Warn, or Debug for a reason declared with WithRoutineCrossTenant.
//
// On Postgres the raw handle sets no setting: under row-level security
// its queries see no tenant's rows unless the role bypasses RLS. Use
// CrossTenantTx there.
func (d *DB) CrossTenant(ctx context.Context, reason string) (*sqlx.DB, error) {
	if reason == "" {
		return nil, ErrNoReason
	}
	d.logCrossTenant(ctx, reason)
	return d.db, nil
}

// logCrossTenant logs a cross-tenant access by the caller of the caller.
func (d *DB) logCrossTenant(ctx context.Context, reason string) {
	level := slog.LevelWarn
	if d.routine[reason] {
		level = slog.LevelDebug
	}
	if d.log.Enabled(ctx, level) {
		_, file, line, _ := runtime.Caller(2)
		d.log.Log(ctx, level, "tenancy: cross-tenant database access", "reason", reason, "caller", fmt.Sprintf("%s:%d", file, line))
	}
}

// Tx is a transaction of DB bound to one tenant.
type Tx struct {
	tx     *sqlx.Tx
	db     *sqlx.DB
	tenant ID
}

func (t *Tx) bind(query string, args Args) (string, []any, error) {
	q, a, _, err := bind(t.db, WithTenant(context.Background(), t.tenant), query, args)
	return q, a, err
}

// ExecContext runs a statement in the transaction, scoped to its tenant.
func (t *Tx) ExecContext(ctx context.Context, query string, args Args) (sql.Result, error) {
	q, a, err := t.bind(query, args)
	if err != nil {
		return nil, err
	}
	return t.tx.ExecContext(ctx, q, a...)
}

// GetContext scans one row in the transaction, scoped to its tenant.
func (t *Tx) GetContext(ctx context.Context, dest any, query string, args Args) error {
	q, a, err := t.bind(query, args)
	if err != nil {
		return err
	}
	return t.tx.GetContext(ctx, dest, q, a...)
}

// SelectContext scans all rows in the transaction, scoped to its tenant.
func (t *Tx) SelectContext(ctx context.Context, dest any, query string, args Args) error {
	q, a, err := t.bind(query, args)
	if err != nil {
		return err
	}
	return t.tx.SelectContext(ctx, dest, q, a...)
}

// QueryxContext runs a query in the transaction, scoped to its tenant.
// Close the rows before Commit.
func (t *Tx) QueryxContext(ctx context.Context, query string, args Args) (*sqlx.Rows, error) {
	q, a, err := t.bind(query, args)
	if err != nil {
		return nil, err
	}
	return t.tx.QueryxContext(ctx, q, a...)
}

// Tenant returns the tenant the transaction is bound to.
func (t *Tx) Tenant() ID { return t.tenant }

// Commit commits the transaction.
func (t *Tx) Commit() error { return t.tx.Commit() }

// Rollback aborts the transaction.
func (t *Tx) Rollback() error { return t.tx.Rollback() }
