-- Sticky stream revocations (package streamauth, streamauth/sqlitestore):
-- credentials of a user, a tenant, or a user within a tenant issued at or
-- before revoked_at open no stream until expires_at. '' means "any".
-- Times are Unix milliseconds (UTC). Rows past expires_at are deleted when
-- the revocations are loaded.
CREATE TABLE hardening_stream_revocations (
    user_id    TEXT    NOT NULL DEFAULT '',
    tenant_id  TEXT    NOT NULL DEFAULT '',
    revoked_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    CHECK (user_id <> '' OR tenant_id <> ''),
    PRIMARY KEY (user_id, tenant_id)
);
CREATE INDEX hardening_stream_revocations_expiry ON hardening_stream_revocations (expires_at);
