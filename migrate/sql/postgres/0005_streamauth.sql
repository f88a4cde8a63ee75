-- Sticky stream revocations (package streamauth, streamauth/postgresstore):
-- credentials of a user, a tenant, or a user within a tenant issued at or
-- before revoked_at open no stream until expires_at. '' means "any".
-- Times are Unix milliseconds (UTC), passed in by the caller's clock. Rows
-- past expires_at are deleted when the revocations are loaded.
--
-- No row-level security here: every replica's registry loads the whole set
-- (revocations of any tenant), like the SQLite and Redis stores.
CREATE TABLE hardening_stream_revocations (
    user_id    text   NOT NULL DEFAULT '',
    tenant_id  text   NOT NULL DEFAULT '',
    revoked_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    CHECK (user_id <> '' OR tenant_id <> ''),
    PRIMARY KEY (user_id, tenant_id)
);
CREATE INDEX hardening_stream_revocations_expiry ON hardening_stream_revocations (expires_at);
