-- Per-tenant quotas, usage and the quota audit log (package tenancy, sqlitestore).
-- Times are Unix milliseconds (UTC) unless noted; money is integer micro-dollars.
CREATE TABLE hardening_quota_limits (
    tenant_id                 TEXT PRIMARY KEY,
    active_previews           INTEGER,              -- NULL: the default applies
    snapshots_per_minute      INTEGER,
    llm_monthly_budget_micros INTEGER,
    updated_at                INTEGER NOT NULL
);

-- One row per changed field, written in the same transaction as the change.
CREATE TABLE hardening_quota_audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT    NOT NULL,
    field      TEXT    NOT NULL,
    old_value  INTEGER NOT NULL,                    -- effective value before (the default if none)
    new_value  INTEGER NOT NULL,
    changed_by TEXT    NOT NULL,
    changed_at INTEGER NOT NULL,
    reason     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX hardening_quota_audit_tenant ON hardening_quota_audit (tenant_id, id);
CREATE INDEX hardening_quota_audit_changed ON hardening_quota_audit (changed_at);

-- Active-preview semaphore: one row per held slot.
CREATE TABLE hardening_active_previews (
    tenant_id        TEXT    NOT NULL,
    preview_id       TEXT    NOT NULL,
    lease_expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, preview_id)
);

-- GCRA state of a rate.
CREATE TABLE hardening_rate_gcra (
    tenant_id TEXT    NOT NULL,
    resource  TEXT    NOT NULL,
    tat       INTEGER NOT NULL,                     -- theoretical arrival time, Unix microseconds
    PRIMARY KEY (tenant_id, resource)
);

-- Settled LLM spend per calendar month.
CREATE TABLE hardening_llm_usage (
    tenant_id    TEXT    NOT NULL,
    month        TEXT    NOT NULL,                  -- YYYY-MM, UTC
    spent_micros INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, month)
);

-- Open LLM budget reservations; expired rows are returned (deleted) lazily.
CREATE TABLE hardening_llm_reservations (
    tenant_id     TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    month         TEXT    NOT NULL,
    amount_micros INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX hardening_llm_reservations_month ON hardening_llm_reservations (tenant_id, month);
