-- Idempotency-Key records (package idempotency, postgresstore).
-- Times are Unix milliseconds (UTC) from the middleware's clock, passed in by
-- the store: never now(), so every replica decides on the caller's clock.
CREATE TABLE hardening_idempotency_keys (
    scope_key        text     PRIMARY KEY,           -- hash of tenant, principal, method, path and key
    fingerprint      text     NOT NULL,              -- SHA-256 of method, path and body
    state            text     NOT NULL CHECK (state IN ('in_flight', 'completed')),
    owner            text,                           -- lease owner token while in flight
    lease_expires_at bigint,                         -- in flight: when another request may take over
    status_code      integer,
    headers          text,                           -- JSON object of the replayed headers
    body             bytea,
    body_stored      boolean  NOT NULL DEFAULT true, -- false: body over the cap or streamed
    created_at       bigint   NOT NULL,
    expires_at       bigint   NOT NULL               -- result TTL; the sweeper deletes after it
);
CREATE INDEX hardening_idempotency_keys_expires ON hardening_idempotency_keys (expires_at);

-- hardening_idempotency_claim is Store.Claim in one call (one round trip).
-- A live record that cannot be claimed (another payload, completed, lease
-- held) is answered from one plain SELECT, without a write. Otherwise an
-- INSERT ... ON CONFLICT DO UPDATE inserts the claim, or replaces a record
-- whose TTL ended; when the record is live it leaves it unchanged but locked
-- until the call returns, so the decision that follows (take over a lapsed
-- lease, or answer in flight / completed / mismatch) is made on a row no
-- other caller can change. Needs READ COMMITTED (the default): each
-- statement then sees the rows committed before it.
--
-- outcome is claimed, took_over, mismatch, in_flight (with lease_until) or
-- completed (with status, hdr, payload, stored).
CREATE FUNCTION hardening_idempotency_claim(
    p_key text, p_fingerprint text, p_owner text, p_now bigint, p_lease bigint, p_expires bigint)
RETURNS TABLE (outcome text, lease_until bigint, status integer, hdr text, payload bytea, stored boolean)
LANGUAGE plpgsql AS $$
DECLARE
    r hardening_idempotency_keys%ROWTYPE;
BEGIN
    SELECT * INTO r FROM hardening_idempotency_keys k WHERE k.scope_key = p_key;
    IF NOT FOUND OR r.expires_at <= p_now
       OR (r.state = 'in_flight' AND r.fingerprint = p_fingerprint AND r.lease_expires_at <= p_now) THEN
        INSERT INTO hardening_idempotency_keys AS k
            (scope_key, fingerprint, state, owner, lease_expires_at, created_at, expires_at)
        VALUES (p_key, p_fingerprint, 'in_flight', p_owner, p_lease, p_now, p_expires)
        ON CONFLICT (scope_key) DO UPDATE SET
            fingerprint = excluded.fingerprint, state = 'in_flight', owner = excluded.owner,
            lease_expires_at = excluded.lease_expires_at, status_code = NULL, headers = NULL,
            body = NULL, body_stored = true, created_at = excluded.created_at, expires_at = excluded.expires_at
        WHERE k.expires_at <= p_now;
        IF FOUND THEN
            outcome := 'claimed';
            RETURN NEXT;
            RETURN;
        END IF;
        -- The record is live and this call holds its row lock.
        SELECT * INTO STRICT r FROM hardening_idempotency_keys k WHERE k.scope_key = p_key;
        IF r.state = 'in_flight' AND r.fingerprint = p_fingerprint AND r.lease_expires_at <= p_now THEN
            UPDATE hardening_idempotency_keys k SET owner = p_owner, lease_expires_at = p_lease
            WHERE k.scope_key = p_key;
            outcome := 'took_over';
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    IF r.fingerprint <> p_fingerprint THEN
        outcome := 'mismatch';
    ELSIF r.state = 'completed' THEN
        outcome := 'completed';
        status := r.status_code;
        hdr := r.headers;
        payload := r.body;
        stored := r.body_stored;
    ELSE
        outcome := 'in_flight';
        lease_until := r.lease_expires_at;
    END IF;
    RETURN NEXT;
END
$$;
