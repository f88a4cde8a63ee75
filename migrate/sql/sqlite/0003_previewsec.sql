-- Preview token signing keys and revocations (package previewsec, sqlitestore).
-- Times are Unix milliseconds (UTC).
CREATE TABLE hardening_preview_keys (
    kid          TEXT    PRIMARY KEY,
    period_start INTEGER NOT NULL UNIQUE,           -- start of the rotation period this key signs
    secret       BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL                   -- after it the key no longer verifies and is deleted
);

CREATE TABLE hardening_preview_revocations (
    kind       TEXT    NOT NULL CHECK (kind IN ('pid', 'jti')),
    value      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
);
