-- Per-tenant quotas, usage and the quota audit log (package tenancy, sqlitestore).
-- Times are Unix milliseconds (UTC); money is integer micro-dollars.
CREATE TABLE hardening_quota_limits (
    tenant_id                 TEXT PRIMARY KEY,
    active_previews           INTEGER,              -- NULL: the default applies
    snapshots_per_minute      INTEGER,
    llm_monthly_budget_micros INTEGER,
    updated_at                INTEGER NOT NULL
);

CREATE TABLE hardening_quota_audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id  TEXT    NOT NULL,
    field      TEXT    NOT NULL,
    old_value  TEXT,
    new_value  TEXT    NOT NULL,
    changed_by TEXT    NOT NULL,
    changed_at INTEGER NOT NULL,
    reason     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX hardening_quota_audit_tenant ON hardening_quota_audit (tenant_id, id);

CREATE TABLE hardening_active_previews (
    tenant_id        TEXT    NOT NULL,
    preview_id       TEXT    NOT NULL,
    lease_expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, preview_id)
);

CREATE TABLE hardening_rate_gcra (
    tenant_id TEXT    NOT NULL,
    resource  TEXT    NOT NULL,
    tat       INTEGER NOT NULL,                     -- theoretical arrival time, Unix microseconds
    PRIMARY KEY (tenant_id, resource)
);

CREATE TABLE hardening_llm_usage (
    tenant_id    TEXT    NOT NULL,
    month        TEXT    NOT NULL,                  -- YYYY-MM, UTC
    spent_micros INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, month)
);

CREATE TABLE hardening_llm_reservations (
    id            TEXT    PRIMARY KEY,
    tenant_id     TEXT    NOT NULL,
    month         TEXT    NOT NULL,
    amount_micros INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX hardening_llm_reservations_tenant ON hardening_llm_reservations (tenant_id, month);
