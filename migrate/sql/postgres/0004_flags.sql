-- Feature flag state and the flag audit log (package flags,
-- flags/postgresstore). Times are Unix milliseconds (UTC), passed in by the
-- store's clock, never now(). The audit is append-only through the API: the
-- store only ever INSERTs into it, in the same transaction as the change.
--
-- No row-level security here: flags are operator configuration that every
-- replica loads whole (tenant overrides included), not tenant-owned data.
CREATE TABLE hardening_flags (
    name       text    NOT NULL,
    tenant_id  text    NOT NULL DEFAULT '',          -- '' is the global value
    value      boolean NOT NULL,
    updated_at bigint  NOT NULL,
    PRIMARY KEY (name, tenant_id)
);

CREATE TABLE hardening_flag_audit (
    id         bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flag_name  text    NOT NULL,
    tenant_id  text    NOT NULL DEFAULT '',
    old_value  boolean,                              -- NULL: no value was set before
    new_value  boolean NOT NULL,
    changed_by text    NOT NULL,
    changed_at bigint  NOT NULL,
    reason     text    NOT NULL DEFAULT ''
);
-- Audit queries filter by flag, tenant or actor and page newest first by id.
CREATE INDEX hardening_flag_audit_flag ON hardening_flag_audit (flag_name, id);
CREATE INDEX hardening_flag_audit_tenant ON hardening_flag_audit (tenant_id, id);
CREATE INDEX hardening_flag_audit_actor ON hardening_flag_audit (changed_by, id);

-- One row; bumped by every toggle so replicas can poll it with one
-- primary-key SELECT. Its row lock also serialises toggles (see below).
CREATE TABLE hardening_flags_version (
    id      integer PRIMARY KEY CHECK (id = 1),
    version bigint  NOT NULL
);
INSERT INTO hardening_flags_version (id, version) VALUES (1, 0);

-- The LISTEN/NOTIFY channel of the flag tables: named after the schema that
-- holds them (current_schema() when search_path names it first), so
-- databases with one kit schema per application or per test do not hear
-- each other. Channel names are at most 63 bytes: a long schema name is
-- replaced by its md5.
CREATE FUNCTION hardening_flags_channel() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'hardening_flags:' || CASE WHEN octet_length(s) <= 47 THEN s ELSE md5(s) END
    FROM (SELECT n.nspname::text AS s
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.oid = 'hardening_flags_version'::regclass) AS t
$$;

-- One toggle, in the caller's single statement (one round trip, one
-- transaction): lock and bump the version row first, so concurrent toggles
-- queue here and each reads the old value the previous one committed (READ
-- COMMITTED takes a new snapshot per statement); then write the value,
-- append the audit record and NOTIFY the flag's name (delivered on commit).
CREATE FUNCTION hardening_flags_toggle(
    p_name text, p_tenant text, p_value boolean, p_by text, p_at bigint, p_reason text,
    OUT o_id bigint, OUT o_old boolean, OUT o_version bigint)
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE hardening_flags_version SET version = version + 1 WHERE id = 1 RETURNING version INTO o_version;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hardening_flags_version has no row: run the kit''s migrations';
    END IF;
    SELECT f.value INTO o_old FROM hardening_flags f WHERE f.name = p_name AND f.tenant_id = p_tenant;
    INSERT INTO hardening_flags (name, tenant_id, value, updated_at) VALUES (p_name, p_tenant, p_value, p_at)
        ON CONFLICT (name, tenant_id) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at;
    INSERT INTO hardening_flag_audit (flag_name, tenant_id, old_value, new_value, changed_by, changed_at, reason)
        VALUES (p_name, p_tenant, o_old, p_value, p_by, p_at, p_reason)
        RETURNING id INTO o_id;
    PERFORM pg_notify(hardening_flags_channel(), p_name);
END
$$;
