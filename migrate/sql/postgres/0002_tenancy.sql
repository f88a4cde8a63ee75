-- Named quotas, their per-tenant overrides and the audited change log
-- (package tenancy, tenancy/postgresstore), the tables of SQLite's 0006 under
-- the same names. Times are Unix milliseconds (UTC) unless noted; limits are
-- 0 to 2^53-1 (tenancy.MaxLimit), or -1 for unlimited.
--
-- Every table is tenant-owned and under row-level security: a row is visible
-- and writable only while the setting app.tenant_id (tenancy.TenantSetting)
-- names its tenant, or app.cross_tenant (tenancy.CrossTenantSetting) is 'on'.
-- The store's functions below set app.tenant_id themselves (transaction-local,
-- set_config(..., true)), so the store works under a role without BYPASSRLS.
-- The policies are what tenancy.RowLevelSecuritySQL returns for each table.

CREATE TABLE hardening_quota_overrides (
    tenant_id  text   NOT NULL,
    quota      text   NOT NULL,
    value      bigint NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, quota)
);

-- One row per changed quota, written in the same transaction as the change.
CREATE TABLE hardening_quota_audit (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  text   NOT NULL,
    quota      text   NOT NULL,
    old_value  bigint NOT NULL,                      -- effective value before (the default if none)
    new_value  bigint NOT NULL,
    changed_by text   NOT NULL,
    changed_at bigint NOT NULL,
    reason     text   NOT NULL DEFAULT ''
);
CREATE INDEX hardening_quota_audit_tenant ON hardening_quota_audit (tenant_id, id);
CREATE INDEX hardening_quota_audit_changed ON hardening_quota_audit (changed_at);

-- Concurrency quotas: one row per held slot.
CREATE TABLE hardening_quota_slots (
    tenant_id        text   NOT NULL,
    quota            text   NOT NULL,
    holder           text   NOT NULL,
    lease_expires_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, quota, holder)
);

-- Rate quotas: the GCRA state.
CREATE TABLE hardening_quota_rates (
    tenant_id text   NOT NULL,
    quota     text   NOT NULL,
    tat       bigint NOT NULL,                       -- theoretical arrival time, Unix microseconds
    PRIMARY KEY (tenant_id, quota)
);

-- Budget quotas: settled spend per period (YYYY-MM or YYYY-MM-DD, UTC) ...
CREATE TABLE hardening_quota_spend (
    tenant_id text   NOT NULL,
    quota     text   NOT NULL,
    period    text   NOT NULL,
    spent     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, quota, period)
);

-- ... and open reservations; expired rows are returned (deleted) lazily.
CREATE TABLE hardening_quota_reservations (
    tenant_id  text   NOT NULL,
    quota      text   NOT NULL,
    id         text   NOT NULL,
    period     text   NOT NULL,
    amount     bigint NOT NULL,
    expires_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, quota, id)
);
CREATE INDEX hardening_quota_reservations_period ON hardening_quota_reservations (tenant_id, quota, period);

-- Row-level security (tenancy.RowLevelSecuritySQL(table, "tenant_id")).
ALTER TABLE "hardening_quota_overrides" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "hardening_quota_overrides" FORCE ROW LEVEL SECURITY;
CREATE POLICY hardening_tenant_isolation ON "hardening_quota_overrides"
    USING ("tenant_id" = current_setting('app.tenant_id', true) OR current_setting('app.cross_tenant', true) = 'on')
    WITH CHECK ("tenant_id" = current_setting('app.tenant_id', true) OR current_setting('app.cross_tenant', true) = 'on');
ALTER TABLE "hardening_quota_audit" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "hardening_quota_audit" FORCE ROW LEVEL SECURITY;
CREATE POLICY hardening_tenant_isolation ON "hardening_quota_audit"
    USING ("tenant_id" = current_setting('app.tenant_id', true) OR current_setting('app.cross_tenant', true) = 'on')
    WITH CHECK ("tenant_id" = current_setting('app.tenant_id', true) OR current_setting('app.cross_tenant', true) = 'on');
ALTER TABLE "hardening_quota_slots" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "hardening_quota_slots" FORCE ROW LEVEL SECURITY;
CREATE POLICY hardening_tenant_isolation ON "hardening_quota_slots"
    USING ("tenant_id" = current_setting('app.tenant_id', true) OR current_setting('app.cross_tenant', true) = 'on')
    WITH CHECK ("tenant_id" = current_setting('app.tenant_id', true) OR current_setting('app.cross_tenant', true) = 'on');
ALTER TABLE "hardening_quota_rates" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "hardening_quota_rates" FORCE ROW LEVEL SECURITY;
CREATE POLICY hardening_tenant_isolation ON "hardening_quota_rates"
    USING ("tenant_id" = current_setting('app.tenant_id', true) OR current_setting('app.cross_tenant', true) = 'on')
    WITH CHECK ("tenant_id" = current_setting('app.tenant_id', true) OR current_setting('app.cross_tenant', true) = 'on');
ALTER TABLE "hardening_quota_spend" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "hardening_quota_spend" FORCE ROW LEVEL SECURITY;
CREATE POLICY hardening_tenant_isolation ON "hardening_quota_spend"
    USING ("tenant_id" = current_setting('app.tenant_id', true) OR current_setting('app.cross_tenant', true) = 'on')
    WITH CHECK ("tenant_id" = current_setting('app.tenant_id', true) OR current_setting('app.cross_tenant', true) = 'on');
ALTER TABLE "hardening_quota_reservations" ENABLE ROW LEVEL SECURITY;
ALTER TABLE "hardening_quota_reservations" FORCE ROW LEVEL SECURITY;
CREATE POLICY hardening_tenant_isolation ON "hardening_quota_reservations"
    USING ("tenant_id" = current_setting('app.tenant_id', true) OR current_setting('app.cross_tenant', true) = 'on')
    WITH CHECK ("tenant_id" = current_setting('app.tenant_id', true) OR current_setting('app.cross_tenant', true) = 'on');

-- Every decision of tenancy/postgresstore is one call of one of these
-- functions: one statement, one round trip. They run as the caller (not
-- SECURITY DEFINER), so the policies above apply to them too.

-- hardening_quota_enter scopes the current transaction to p_tenant
-- (app.tenant_id, transaction-local) and, when p_quota is not NULL,
-- serializes the decisions on (tenant, quota) with a transaction-level
-- advisory lock. Its key is derived from current_schema(), so stores in
-- different schemas of one database do not contend. The lock only orders
-- decisions under READ COMMITTED, where every statement after it reads a
-- fresh snapshot, so other isolation levels are refused.
CREATE FUNCTION hardening_quota_enter(p_tenant text, p_quota text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'hardening: the tenancy store needs READ COMMITTED, not %', current_setting('transaction_isolation');
    END IF;
    PERFORM set_config('app.tenant_id', p_tenant, true);
    IF p_quota IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended(
            'hardening_quota' || chr(31) || current_schema() || chr(31) || p_tenant || chr(31) || p_quota, 0));
    END IF;
END $$;

-- hardening_quota_limit is the tenant's override of the quota, else p_default.
-- (PL/pgSQL rather than SQL: it keeps its plan across calls.)
CREATE FUNCTION hardening_quota_limit(p_tenant text, p_quota text, p_default bigint) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v bigint;
BEGIN
    SELECT o.value INTO v FROM hardening_quota_overrides o WHERE o.tenant_id = p_tenant AND o.quota = p_quota;
    RETURN coalesce(v, p_default);
END $$;

-- GCRA, mirroring tenancy.GCRA (times in Unix µs, period in µs, burst <= 0
-- meaning the limit). Returns the limit and, when allowed, the remaining
-- units; when refused, retry_after µs (for a limit of 0 the caller reports
-- the period); reset_after µs either way.
CREATE FUNCTION hardening_quota_take_rate(p_tenant text, p_quota text, p_now bigint, p_default bigint, p_period bigint, p_burst bigint,
    OUT allowed boolean, OUT quota_limit bigint, OUT remaining bigint, OUT retry_after bigint, OUT reset_after bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_burst bigint; v_interval bigint; v_tol bigint; v_tat bigint; v_new bigint; v_diff bigint; v_stored boolean;
BEGIN
    PERFORM hardening_quota_enter(p_tenant, p_quota);
    -- The override and the state in one statement (the hot path).
    SELECT coalesce((SELECT o.value FROM hardening_quota_overrides o WHERE o.tenant_id = p_tenant AND o.quota = p_quota), p_default),
           (SELECT r.tat FROM hardening_quota_rates r WHERE r.tenant_id = p_tenant AND r.quota = p_quota)
        INTO quota_limit, v_tat;
    allowed := quota_limit = -1; remaining := 0; retry_after := 0; reset_after := 0;
    IF quota_limit <= 0 THEN
        RETURN;
    END IF;
    v_burst := CASE WHEN p_burst <= 0 THEN quota_limit ELSE p_burst END;
    v_interval := greatest(p_period / quota_limit, 1);
    v_tol := least(v_burst::numeric * v_interval, 9007199254740991)::bigint;
    v_stored := v_tat IS NOT NULL;
    v_tat := greatest(coalesce(v_tat, p_now), p_now);
    v_new := v_tat + v_interval;
    v_diff := p_now - (v_new - v_tol);
    IF v_diff < 0 THEN
        retry_after := -v_diff;
        reset_after := v_tat - p_now;
        RETURN;
    END IF;
    -- The lock is held: an UPDATE or an INSERT, not the dearer upsert.
    IF v_stored THEN
        UPDATE hardening_quota_rates SET tat = v_new WHERE tenant_id = p_tenant AND quota = p_quota;
    ELSE
        INSERT INTO hardening_quota_rates (tenant_id, quota, tat) VALUES (p_tenant, p_quota, v_new);
    END IF;
    allowed := true;
    remaining := v_diff / v_interval;
    reset_after := v_new - p_now;
END $$;

-- The stored tat (0 when none) and the limit, for tenancy.RateStore.RateUsed.
CREATE FUNCTION hardening_quota_rate_state(p_tenant text, p_quota text, p_default bigint, OUT tat bigint, OUT quota_limit bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hardening_quota_enter(p_tenant, NULL);
    quota_limit := hardening_quota_limit(p_tenant, p_quota, p_default);
    tat := coalesce((SELECT r.tat FROM hardening_quota_rates r WHERE r.tenant_id = p_tenant AND r.quota = p_quota), 0);
END $$;

-- Acquires (or renews) p_holder's slot; leases ending at or before p_now
-- are freed first.
CREATE FUNCTION hardening_quota_acquire_slot(p_tenant text, p_quota text, p_holder text, p_now bigint, p_expires bigint, p_default bigint,
    OUT held boolean, OUT current bigint, OUT quota_limit bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_had boolean;
BEGIN
    PERFORM hardening_quota_enter(p_tenant, p_quota);
    DELETE FROM hardening_quota_slots WHERE tenant_id = p_tenant AND quota = p_quota AND lease_expires_at <= p_now;
    SELECT count(*), coalesce(bool_or(s.holder = p_holder), false),
           coalesce((SELECT o.value FROM hardening_quota_overrides o WHERE o.tenant_id = p_tenant AND o.quota = p_quota), p_default)
        INTO current, v_had, quota_limit
        FROM hardening_quota_slots s WHERE s.tenant_id = p_tenant AND s.quota = p_quota;
    held := v_had OR quota_limit = -1 OR current < quota_limit;
    IF NOT held THEN
        RETURN;
    END IF;
    IF v_had THEN
        UPDATE hardening_quota_slots SET lease_expires_at = p_expires WHERE tenant_id = p_tenant AND quota = p_quota AND holder = p_holder;
    ELSE
        INSERT INTO hardening_quota_slots (tenant_id, quota, holder, lease_expires_at) VALUES (p_tenant, p_quota, p_holder, p_expires);
        current := current + 1;
    END IF;
END $$;

-- Extends p_holder's lease if it still holds its slot.
CREATE FUNCTION hardening_quota_renew_slot(p_tenant text, p_quota text, p_holder text, p_now bigint, p_expires bigint,
    OUT held boolean, OUT current bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hardening_quota_enter(p_tenant, p_quota);
    DELETE FROM hardening_quota_slots WHERE tenant_id = p_tenant AND quota = p_quota AND lease_expires_at <= p_now;
    UPDATE hardening_quota_slots SET lease_expires_at = p_expires WHERE tenant_id = p_tenant AND quota = p_quota AND holder = p_holder;
    held := FOUND;
    SELECT count(*) INTO current FROM hardening_quota_slots WHERE tenant_id = p_tenant AND quota = p_quota;
END $$;

-- Frees p_holder's slot; false when it held none.
CREATE FUNCTION hardening_quota_release_slot(p_tenant text, p_quota text, p_holder text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hardening_quota_enter(p_tenant, NULL);
    DELETE FROM hardening_quota_slots WHERE tenant_id = p_tenant AND quota = p_quota AND holder = p_holder;
    RETURN FOUND;
END $$;

-- The slots whose lease ends after p_now.
CREATE FUNCTION hardening_quota_slots_held(p_tenant text, p_quota text, p_now bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hardening_quota_enter(p_tenant, NULL);
    RETURN (SELECT count(*) FROM hardening_quota_slots WHERE tenant_id = p_tenant AND quota = p_quota AND lease_expires_at > p_now);
END $$;

-- The settled spend of a period and the amount its unexpired reservations hold.
CREATE FUNCTION hardening_quota_budget_usage(p_tenant text, p_quota text, p_period text, p_now bigint, OUT spent bigint, OUT reserved bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hardening_quota_enter(p_tenant, NULL);
    SELECT coalesce((SELECT s.spent FROM hardening_quota_spend s WHERE s.tenant_id = p_tenant AND s.quota = p_quota AND s.period = p_period), 0),
           coalesce((SELECT sum(r.amount) FROM hardening_quota_reservations r
               WHERE r.tenant_id = p_tenant AND r.quota = p_quota AND r.period = p_period AND r.expires_at > p_now), 0)::bigint
        INTO spent, reserved;
END $$;

-- Holds p_amount of the period's budget when spent + reserved + amount <=
-- limit; expired reservations are returned first.
CREATE FUNCTION hardening_quota_reserve(p_tenant text, p_quota text, p_id text, p_period text, p_amount bigint, p_now bigint, p_expires bigint,
    p_default bigint, OUT reserved boolean, OUT quota_limit bigint, OUT spent bigint, OUT outstanding bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hardening_quota_enter(p_tenant, p_quota);
    DELETE FROM hardening_quota_reservations WHERE tenant_id = p_tenant AND quota = p_quota AND expires_at <= p_now;
    SELECT coalesce((SELECT o.value FROM hardening_quota_overrides o WHERE o.tenant_id = p_tenant AND o.quota = p_quota), p_default),
           coalesce((SELECT s.spent FROM hardening_quota_spend s WHERE s.tenant_id = p_tenant AND s.quota = p_quota AND s.period = p_period), 0),
           coalesce((SELECT sum(r.amount) FROM hardening_quota_reservations r
               WHERE r.tenant_id = p_tenant AND r.quota = p_quota AND r.period = p_period), 0)::bigint
        INTO quota_limit, spent, outstanding;
    reserved := quota_limit = -1 OR spent + outstanding + p_amount <= quota_limit;
    IF NOT reserved THEN
        RETURN;
    END IF;
    INSERT INTO hardening_quota_reservations (tenant_id, quota, id, period, amount, expires_at)
        VALUES (p_tenant, p_quota, p_id, p_period, p_amount, p_expires);
    outstanding := outstanding + p_amount;
END $$;

-- Ends a reservation, recording p_actual as spent in its period when it had
-- not expired at p_now. Returns whether it was found and the spend of its
-- period (of p_period when not found).
CREATE FUNCTION hardening_quota_settle(p_tenant text, p_quota text, p_id text, p_actual bigint, p_now bigint, p_period text,
    OUT settled boolean, OUT spent bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_period text; v_expires bigint;
BEGIN
    PERFORM hardening_quota_enter(p_tenant, p_quota);
    DELETE FROM hardening_quota_reservations WHERE tenant_id = p_tenant AND quota = p_quota AND id = p_id
        RETURNING period, expires_at INTO v_period, v_expires;
    settled := v_expires IS NOT NULL AND v_expires > p_now;
    IF settled THEN
        INSERT INTO hardening_quota_spend AS s (tenant_id, quota, period, spent) VALUES (p_tenant, p_quota, v_period, p_actual)
            ON CONFLICT (tenant_id, quota, period) DO UPDATE SET spent = s.spent + excluded.spent
            RETURNING s.spent INTO spent;
        RETURN;
    END IF;
    spent := coalesce((SELECT s.spent FROM hardening_quota_spend s WHERE s.tenant_id = p_tenant AND s.quota = p_quota AND s.period = p_period), 0);
END $$;

-- Ends a reservation without spending; false when it no longer exists.
CREATE FUNCTION hardening_quota_cancel(p_tenant text, p_quota text, p_id text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hardening_quota_enter(p_tenant, NULL);
    DELETE FROM hardening_quota_reservations WHERE tenant_id = p_tenant AND quota = p_quota AND id = p_id;
    RETURN FOUND;
END $$;

-- The tenant's overrides.
CREATE FUNCTION hardening_quota_overrides_of(p_tenant text) RETURNS TABLE (o_quota text, o_value bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hardening_quota_enter(p_tenant, NULL);
    RETURN QUERY SELECT o.quota, o.value FROM hardening_quota_overrides o WHERE o.tenant_id = p_tenant;
END $$;

-- Stores p_values as the overrides of p_quotas (in that order) and writes
-- one audit entry per quota, the old value being the override or else
-- p_defaults' entry; returns the tenant's overrides afterwards. Changes of
-- one tenant's limits are serialized, so every old value is exact.
CREATE FUNCTION hardening_quota_set_limits(p_tenant text, p_quotas text[], p_defaults bigint[], p_values bigint[],
    p_changed_by text, p_reason text, p_now bigint) RETURNS TABLE (o_quota text, o_value bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_old bigint;
BEGIN
    PERFORM hardening_quota_enter(p_tenant, '');
    FOR i IN 1 .. coalesce(array_length(p_quotas, 1), 0) LOOP
        v_old := hardening_quota_limit(p_tenant, p_quotas[i], p_defaults[i]);
        INSERT INTO hardening_quota_overrides AS o (tenant_id, quota, value, updated_at) VALUES (p_tenant, p_quotas[i], p_values[i], p_now)
            ON CONFLICT (tenant_id, quota) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at;
        INSERT INTO hardening_quota_audit (tenant_id, quota, old_value, new_value, changed_by, changed_at, reason)
            VALUES (p_tenant, p_quotas[i], v_old, p_values[i], p_changed_by, p_now, p_reason);
    END LOOP;
    RETURN QUERY SELECT o.quota, o.value FROM hardening_quota_overrides o WHERE o.tenant_id = p_tenant;
END $$;

-- A page of the audit log after entry p_after, oldest first: of p_tenant,
-- or of every tenant when p_tenant is '' (the store's one cross-tenant
-- read, which sets app.cross_tenant for its own statement).
CREATE FUNCTION hardening_quota_audit_page(p_tenant text, p_after bigint, p_since bigint, p_limit int)
RETURNS SETOF hardening_quota_audit
LANGUAGE plpgsql AS $$
BEGIN
    IF p_tenant = '' THEN
        PERFORM set_config('app.cross_tenant', 'on', true);
    ELSE
        PERFORM hardening_quota_enter(p_tenant, NULL);
    END IF;
    RETURN QUERY SELECT * FROM hardening_quota_audit a
        WHERE a.id > p_after AND (p_tenant = '' OR a.tenant_id = p_tenant) AND a.changed_at >= p_since
        ORDER BY a.id LIMIT p_limit;
END $$;
