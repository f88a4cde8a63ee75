-- Named quotas (package tenancy, tenancy/sqlitestore): the three fixed quotas
-- of 0002 become rows keyed by quota name, so a service declares any number of
-- rate, concurrency and budget quotas. Everything 0002 held carries over under
-- the names the hub declares: active_previews (concurrency), snapshots (rate)
-- and llm_budget (budget, in micro-dollars).
-- Times are Unix milliseconds (UTC) unless noted. Limits are 0 to 2^53-1, or
-- -1 for unlimited.

-- Per-tenant overrides: one row per tenant and quota. Versions before 0006
-- accepted overrides up to 2^63-1; a value above 2^53-1 (tenancy.MaxLimit,
-- the largest every store holds exactly) carries over as -1, unlimited,
-- which is what such a limit meant.
CREATE TABLE hardening_quota_overrides (
    tenant_id  TEXT    NOT NULL,
    quota      TEXT    NOT NULL,
    value      INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, quota)
) WITHOUT ROWID;
INSERT INTO hardening_quota_overrides (tenant_id, quota, value, updated_at)
    SELECT tenant_id, 'active_previews', CASE WHEN active_previews > 9007199254740991 THEN -1 ELSE active_previews END, updated_at FROM hardening_quota_limits WHERE active_previews IS NOT NULL
    UNION ALL
    SELECT tenant_id, 'snapshots', CASE WHEN snapshots_per_minute > 9007199254740991 THEN -1 ELSE snapshots_per_minute END, updated_at FROM hardening_quota_limits WHERE snapshots_per_minute IS NOT NULL
    UNION ALL
    SELECT tenant_id, 'llm_budget', CASE WHEN llm_monthly_budget_micros > 9007199254740991 THEN -1 ELSE llm_monthly_budget_micros END, updated_at FROM hardening_quota_limits WHERE llm_monthly_budget_micros IS NOT NULL;
DROP TABLE hardening_quota_limits;

-- The audit log records the quota name (was: the column name of the limit).
UPDATE hardening_quota_audit SET field = CASE field
    WHEN 'snapshots_per_minute' THEN 'snapshots'
    WHEN 'llm_monthly_budget_micros' THEN 'llm_budget'
    ELSE field END;
ALTER TABLE hardening_quota_audit RENAME COLUMN field TO quota;

-- Concurrency quotas: one row per held slot.
CREATE TABLE hardening_quota_slots (
    tenant_id        TEXT    NOT NULL,
    quota            TEXT    NOT NULL,
    holder           TEXT    NOT NULL,
    lease_expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, quota, holder)
) WITHOUT ROWID;
INSERT INTO hardening_quota_slots (tenant_id, quota, holder, lease_expires_at)
    SELECT tenant_id, 'active_previews', preview_id, lease_expires_at FROM hardening_active_previews;
DROP TABLE hardening_active_previews;

-- Rate quotas: the GCRA state (tat in Unix microseconds); 0002 already keyed
-- it by name ('snapshots').
ALTER TABLE hardening_rate_gcra RENAME TO hardening_quota_rates;
ALTER TABLE hardening_quota_rates RENAME COLUMN resource TO quota;

-- Budget quotas: settled spend per period (YYYY-MM or YYYY-MM-DD, UTC) ...
CREATE TABLE hardening_quota_spend (
    tenant_id TEXT    NOT NULL,
    quota     TEXT    NOT NULL,
    period    TEXT    NOT NULL,
    spent     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, quota, period)
) WITHOUT ROWID;
INSERT INTO hardening_quota_spend (tenant_id, quota, period, spent)
    SELECT tenant_id, 'llm_budget', month, spent_micros FROM hardening_llm_usage;
DROP TABLE hardening_llm_usage;

-- ... and open reservations; expired rows are returned (deleted) lazily.
CREATE TABLE hardening_quota_reservations (
    tenant_id  TEXT    NOT NULL,
    quota      TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    period     TEXT    NOT NULL,
    amount     INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, quota, id)
) WITHOUT ROWID;
CREATE INDEX hardening_quota_reservations_period ON hardening_quota_reservations (tenant_id, quota, period);
INSERT INTO hardening_quota_reservations (tenant_id, quota, id, period, amount, expires_at)
    SELECT tenant_id, 'llm_budget', id, month, amount_micros, expires_at FROM hardening_llm_reservations;
DROP TABLE hardening_llm_reservations;
