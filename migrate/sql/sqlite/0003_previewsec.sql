-- Preview token signing keys and revocations (package previewsec, sqlitestore).
-- Times are Unix milliseconds (UTC).
CREATE TABLE hardening_preview_keys (
    kid          TEXT    PRIMARY KEY,
    period_start INTEGER NOT NULL UNIQUE,           -- start of the rotation period this key signs; one key per period
    secret       BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL                   -- after it the key no longer verifies and is deleted
);

CREATE TABLE hardening_preview_revocations (
    kind       TEXT    NOT NULL CHECK (kind IN ('pid', 'jti')),
    value      TEXT    NOT NULL,
    revoked_at INTEGER NOT NULL,                    -- pid: tokens issued at or before it are revoked
    expires_at INTEGER NOT NULL,                    -- after it no revoked token can be valid; entry deleted
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;

CREATE INDEX hardening_preview_revocations_expires ON hardening_preview_revocations (expires_at);
