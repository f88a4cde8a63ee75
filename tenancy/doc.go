// Package tenancy isolates tenants in an HTTP service: it carries the
// tenant in the request context, enforces the tenant at the data layer,
// and applies per-tenant quotas whose changes are audited.
//
// # Tenant context and middleware
//
// New builds a middleware that takes the tenant from the verified caller
// the service stated once (the Tenant of hardening.CallerFrom, put in the
// context by hardening.RequireCaller; WithIdentity supplies another
// function) and stores it with WithTenant; handlers read it with
// FromContext, which also falls back to the Caller's tenant when no
// WithTenant value is present, so quotas work behind RequireCaller alone.
// Client headers such as X-Tenant-ID are ignored unless the caller marks
// the hop trusted with WithTrustedHeader. Without a tenant the request is
// answered 401 (problem+json) and the handler never runs; a malformed
// tenant id answers 403. Tenant ids are 1 to 64 bytes of [A-Za-z0-9._-]
// (see ParseID).
//
// # Isolation at the data layer
//
// DB wraps a *sqlx.DB for the application's tenant-owned tables. Every
// query must use the named parameter :tenant_id, which DB binds from the
// context, overriding any "tenant_id" the caller passed. A query without
// :tenant_id fails with ErrUnscopedQuery and a context without tenant with
// ErrNoTenant, before anything reaches the database. The one escape hatch
// for deliberate cross-tenant work is DB.CrossTenant(ctx, reason) (or
// DB.CrossTenantTx, its transaction form): it needs a reason, logs every
// use with its caller (at Warn, or at Debug for a reason declared routine
// with WithRoutineCrossTenant), and is easy to grep for.
//
// # Postgres and row-level security
//
// On a Postgres handle (detected from the driver name: pgx, postgres, ...)
// DB also sets TenantSetting, app.tenant_id, at the start of every
// transaction it runs, with set_config(..., true) (SET LOCAL semantics: it
// ends with the transaction and never reaches the next user of the pooled
// connection). BeginTxx sets it once for the Tx; ExecContext, GetContext
// and SelectContext run their statement in a short transaction for it
// (4 round trips: BEGIN, set_config, the statement, COMMIT);
// QueryxContext returns ErrRowsNeedTx (use Tx.QueryxContext). Tables put
// under row-level security with the statements of RowLevelSecuritySQL
// (in the application's own migrations; the kit's quota tables carry the
// same policy) then admit only the current tenant's rows: a query that
// forgets or subverts its tenant filter reads and writes nothing else,
// and with no tenant set a query sees no row and a write fails. The
// application must connect as a role without SUPERUSER or BYPASSRLS.
//
// The escape hatch under RLS is DB.CrossTenantTx: after the reason check
// and the log line it sets CrossTenantSetting, app.cross_tenant, to "on"
// for its own transaction, which the policy honours. A setting confined to
// a transaction the kit opens and closes keeps one policy per table for
// every role and pool, and cannot leak to another request; the raw handle
// of CrossTenant sets nothing and under RLS sees no tenant's rows. RLS
// guards against a forgotten or wrong filter, not against code on the
// application role that sets the settings itself; a hard boundary needs a
// separate role for cross-tenant work and a policy TO that role.
//
// # Quotas
//
// A service declares its quotas by name and kind when it builds Quotas, and
// names them in every check; each refusal carries the quota's name and
// reason:
//
//	q, err := tenancy.NewQuotas(store,
//		tenancy.Rate("orders", 5, time.Minute),                // GCRA: burst 5, then one every 12 s
//		tenancy.Concurrency("exports", 2, 2*time.Minute),      // leased slots, renewed by the holder
//		tenancy.Budget("credits", 1_000_000, tenancy.Monthly), // reserve, settle, cancel per UTC month
//	)
//	res, err := q.Allow(ctx, "orders")
//	slot, err := q.Acquire(ctx, "exports", exportID) // Renew, Release
//	r, err := q.Reserve(ctx, "credits", amount)      // Settle(ctx, r, actual), Cancel(ctx, r)
//	mux.Handle("POST /orders", q.RateLimit("orders")(orders))
//	mux.Handle("POST /exports", q.ConcurrencyLimit("exports")(exports))
//
// The kinds:
//
//   - Rate: GCRA with N per period and a burst of N (WithBurst changes it).
//     Over: 429 <name>_rate_exceeded with Retry-After and the RateLimit /
//     RateLimit-Policy header fields, the policy named by the quota
//     (SetRateLimitHeaders).
//   - Concurrency: a counting semaphore keyed by holder id. Acquiring the
//     same holder twice counts once, release is idempotent, and every slot
//     carries a lease the holder renews, so a crashed holder's slot frees
//     itself. Over: 429 <name>_limit_exceeded.
//   - Budget: an integer amount per UTC calendar period (Monthly, Daily).
//     Reserve succeeds only when spent + reserved + amount <= limit; Settle
//     records the real amount and returns the rest, Cancel returns it all,
//     and reservations of a crashed process expire. Over: 402
//     <name>_budget_exceeded with limit, spent, reserved, requested and
//     resets_at (in a currency with WithCurrency; money as Micros).
//
// WithReason replaces a quota's reason code. A name that was not declared
// is an error (ErrUnknownQuota), never an allow.
//
// Limits are 0 (nothing allowed) to MaxLimit (2^53-1, which every store
// holds exactly), or Unlimited. The declarations give the defaults;
// SetLimits stores per-tenant overrides, writing an audit entry (tenant,
// quota, old and new value, changed_by, changed_at, reason) per quota in
// the same transaction or script. Limits reads the effective limits, Audit
// pages through the changes, Usage reads the consumption.
//
// When the store fails, checks fail closed with an *UnavailableError (503)
// unless the quota was declared WithFailOpen.
//
// # Errors
//
// Every error the package answers with is a typed hardening.Error
// (*Rejection, *UnavailableError, *TenantError, ErrNoTenant,
// ErrInvalidID): its Problem is the problem+json body, which
// hardening.WriteError writes. The middlewares (New, RateLimit,
// ConcurrencyLimit) take WithErrorHandler to answer them another way;
// RateLimit sets the RateLimit header fields before calling it.
//
// # Stores
//
// Store is four small interfaces, one per kind (RateStore,
// ConcurrencyStore, BudgetStore) and LimitStore for overrides and audit.
// MemoryStore lives here; tenancy/sqlitestore (one BEGIN IMMEDIATE
// transaction per decision), tenancy/redisstore (one Lua script, so one
// round trip, per decision; keys hash-tagged per tenant; Redis TIME as the
// clock of rates) and tenancy/postgresstore (one PL/pgSQL function call,
// so one round trip, per decision; tables under row-level security) are
// the shared backends. All pass the conformance suites in
// tenancy/storetest, one per kind.
//
// # Options
//
// Each constructor takes its own option type: MiddlewareOption (New),
// DBOption (NewDB), QuotasOption (NewQuotas, which also takes the quota
// declarations), RateOption, ConcurrencyOption and BudgetOption. An option
// that does not fit a constructor does not compile there; WithLogger fits
// New, NewDB and NewQuotas, WithErrorHandler fits New and NewQuotas,
// WithReason and WithFailOpen fit every quota. Options only record values;
// the constructor reports an invalid one as an error.
// The package reads no environment: a service parses its own
// configuration and passes the values.
//
// # Metrics
//
// With WithRegisterer: hardening_quota_checks_total{quota},
// hardening_quota_rejections_total{quota} and
// hardening_quota_store_errors_total{quota}, labelled by the declared
// quota name (so bounded); per-tenant hardening_quota_usage{tenant,quota}
// only for the tenants listed with WithUsageGauges.
//
// The package is before 1.0: the quotas named after one application
// (AllowSnapshot, AcquirePreview, ReserveLLM, a three-field Limits and an
// 11-method Store) were replaced by the named quotas above, not kept beside
// them. Migration 0006 and redisstore.Store.UpgradeFixedQuotas carry their
// data over as active_previews, snapshots and llm_budget.
package tenancy
