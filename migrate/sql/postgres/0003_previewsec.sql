-- Preview token signing keys and revocations (package previewsec,
-- postgresstore). The same tables as on SQLite; times are Unix
-- milliseconds (UTC) as bigint, passed in by the store's clock (never now()).
-- Neither table holds tenant data: the key ring and the revocation list are
-- shared by every tenant, so no row-level security applies to them.
CREATE TABLE hardening_preview_keys (
    kid          text   PRIMARY KEY,
    period_start bigint NOT NULL UNIQUE,            -- start of the rotation period this key signs; one key per period
    secret       bytea  NOT NULL,                   -- the HMAC key, stored as given (as on SQLite)
    created_at   bigint NOT NULL,
    expires_at   bigint NOT NULL                    -- after it the key no longer verifies and is deleted
);

CREATE TABLE hardening_preview_revocations (
    kind       text   NOT NULL CHECK (kind IN ('pid', 'jti')),
    value      text   NOT NULL,
    revoked_at bigint NOT NULL,                     -- pid: tokens issued at or before it are revoked
    expires_at bigint NOT NULL,                     -- after it no revoked token can be valid; entry deleted
    PRIMARY KEY (kind, value)
);

CREATE INDEX hardening_preview_revocations_expires ON hardening_preview_revocations (expires_at);

-- hardening_preview_create_key stores a key unless its period already has
-- one, in one call. status is 1 when this call stored it, 0 when the period
-- already had a key (returned), -1 when the kid belongs to another period
-- (no row data). Each statement of a VOLATILE PL/pgSQL function takes a
-- fresh snapshot under READ COMMITTED, so a key committed by a concurrent
-- caller after our INSERT waited for it and did nothing is seen by the
-- SELECT that follows; the loop retries when the period's key was deleted
-- in between.
CREATE FUNCTION hardening_preview_create_key(
    p_kid text, p_period_start bigint, p_secret bytea, p_created_at bigint, p_expires_at bigint)
RETURNS TABLE (status int, kid text, period_start bigint, secret bytea, created_at bigint, expires_at bigint)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    FOR attempt IN 1..3 LOOP
        INSERT INTO hardening_preview_keys AS k (kid, period_start, secret, created_at, expires_at)
        VALUES (p_kid, p_period_start, p_secret, p_created_at, p_expires_at)
        ON CONFLICT DO NOTHING;
        IF FOUND THEN
            RETURN QUERY SELECT 1, p_kid, p_period_start, p_secret, p_created_at, p_expires_at;
            RETURN;
        END IF;
        RETURN QUERY SELECT 0, k.kid, k.period_start, k.secret, k.created_at, k.expires_at
            FROM hardening_preview_keys k WHERE k.period_start = p_period_start;
        IF FOUND THEN
            RETURN;
        END IF;
        IF EXISTS (SELECT 1 FROM hardening_preview_keys k WHERE k.kid = p_kid) THEN
            RETURN QUERY SELECT -1, p_kid, p_period_start, NULL::bytea, 0::bigint, 0::bigint;
            RETURN;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'hardening_preview_create_key: the key of period % keeps disappearing', p_period_start;
END
$$;
