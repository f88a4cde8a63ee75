-- Feature flag state and the flag audit log (package flags, flags/sqlitestore).
-- The audit is append-only through the API: the store only ever INSERTs into it.
-- Times are Unix milliseconds (UTC).
CREATE TABLE hardening_flags (
    name       TEXT    NOT NULL,
    tenant_id  TEXT    NOT NULL DEFAULT '',         -- '' is the global value
    value      INTEGER NOT NULL CHECK (value IN (0, 1)),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (name, tenant_id)
);

CREATE TABLE hardening_flag_audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    flag_name  TEXT    NOT NULL,
    tenant_id  TEXT    NOT NULL DEFAULT '',
    old_value  INTEGER,                             -- NULL: no value was set before
    new_value  INTEGER NOT NULL,
    changed_by TEXT    NOT NULL,
    changed_at INTEGER NOT NULL,
    reason     TEXT    NOT NULL DEFAULT ''
);
-- Audit queries filter by flag, tenant or actor and page newest first by id.
CREATE INDEX hardening_flag_audit_flag ON hardening_flag_audit (flag_name, id);
CREATE INDEX hardening_flag_audit_tenant ON hardening_flag_audit (tenant_id, id);
CREATE INDEX hardening_flag_audit_actor ON hardening_flag_audit (changed_by, id);

-- One row; bumped in every toggle transaction so replicas can poll cheaply.
CREATE TABLE hardening_flags_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO hardening_flags_version (id, version) VALUES (1, 0);
