-- Idempotency-Key records (package idempotency, sqlitestore).
-- Times are Unix milliseconds (UTC).
CREATE TABLE hardening_idempotency_keys (
    scope_key        TEXT    PRIMARY KEY,           -- hash of tenant, principal, method, path and key
    fingerprint      TEXT    NOT NULL,              -- SHA-256 of method, path and body
    state            TEXT    NOT NULL CHECK (state IN ('in_flight', 'completed')),
    owner            TEXT,                          -- lease owner token while in flight
    lease_expires_at INTEGER,                       -- in flight: when another request may take over
    status_code      INTEGER,
    headers          TEXT,                          -- JSON object of the replayed headers
    body             BLOB,
    body_stored      INTEGER NOT NULL DEFAULT 1,    -- 0: body over the cap or streamed
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL               -- result TTL; the sweeper deletes after it
);
CREATE INDEX hardening_idempotency_keys_expires ON hardening_idempotency_keys (expires_at);
