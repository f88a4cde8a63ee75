// Package tenancy isolates tenants in an HTTP service: it carries the
// tenant in the request context, enforces the tenant at the data layer,
// and applies per-tenant quotas whose changes are audited.
//
// # Tenant context and middleware
//
// New builds a middleware that takes the tenant from an identity the
// service has already verified (an IdentityFunc, for example reading the
// "tid" claim of a checked bearer token) and stores it with WithTenant;
// handlers read it with FromContext. Client headers such as X-Tenant-ID are
// ignored unless the caller marks the hop trusted with WithTrustedHeader.
// Without a tenant the request is answered 401 (problem+json) and the
// handler never runs; a malformed tenant id answers 403. Tenant ids are 1
// to 64 bytes of [A-Za-z0-9._-] (see ParseID).
//
// # Isolation at the data layer
//
// DB wraps a *sqlx.DB for the application's tenant-owned tables. Every
// query must use the named parameter :tenant_id, which DB binds from the
// context, overriding any "tenant_id" the caller passed. A query without
// :tenant_id fails with ErrUnscopedQuery and a context without tenant with
// ErrNoTenant, before anything reaches the database. The one escape hatch
// for deliberate cross-tenant work is DB.CrossTenant(ctx, reason): it needs
// a reason, logs every use with its caller, and is easy to grep for.
//
// # Quotas
//
// Quotas applies three per-tenant quotas on a Store:
//
//   - Active previews: a counting semaphore keyed by preview id. Acquiring
//     the same id twice counts once, release is idempotent, and every
//     slot carries a lease the holder renews, so a crashed owner's slot
//     frees itself. Over the limit: 429, reason
//     active_previews_limit_exceeded.
//   - Snapshot rate: GCRA with N per minute and a burst of N (N at once,
//     then one every 60/N seconds). Over: 429 snapshot_rate_exceeded with
//     Retry-After and the RateLimit / RateLimit-Policy header fields
//     (SetRateLimitHeaders).
//   - LLM monthly budget in integer micro-dollars (Micros), per UTC
//     calendar month: ReserveLLM succeeds only when spent + reserved +
//     estimate <= budget; SettleLLM records the real cost and returns the
//     rest, CancelLLM returns it all, and reservations of a crashed
//     process expire. Over: 402 llm_budget_exceeded with limit, spent,
//     reserved, requested and resets_at.
//
// Defaults come from WithDefaults or the environment (LimitsFromEnv:
// DEFAULT_ACTIVE_PREVIEWS_LIMIT=5, DEFAULT_SNAPSHOT_RATE_PER_MINUTE=10,
// DEFAULT_LLM_MONTHLY_BUDGET_USD=100.0); per-tenant overrides are stored,
// and every change writes an audit entry (tenant, field, old and new
// value, changed_by, changed_at, reason) in the same transaction or script.
// Quotas.Audit pages through them.
//
// When the store fails, checks fail closed with an *UnavailableError (503)
// unless WithFailOpen names the resource. WriteError turns every error of
// the package into its problem+json response.
//
// # Stores
//
// MemoryStore lives here; tenancy/sqlitestore (one BEGIN IMMEDIATE
// transaction per decision) and tenancy/redisstore (one Lua script, so one
// round trip, per decision; keys hash-tagged per tenant; Redis TIME as the
// clock of the rate) are the shared backends. All pass the conformance
// suite in tenancy/storetest.
//
// # Metrics
//
// With WithRegisterer: hardening_quota_checks_total{resource},
// hardening_quota_rejections_total{resource} and
// hardening_quota_store_errors_total{resource}; per-tenant
// hardening_quota_usage{tenant,resource} only for the tenants listed with
// WithUsageGauges.
package tenancy
