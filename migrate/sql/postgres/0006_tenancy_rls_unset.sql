-- The tenant policies of 0002 compared each row's tenant with
-- current_setting('app.tenant_id', true). Once a pooled connection has run
-- one transaction that set it, Postgres keeps app.tenant_id defined for the
-- session as '' (not NULL) after that transaction ends, so code with no
-- tenant set could write and read rows whose tenant is ''. The policies now
-- read an empty setting as no tenant (tenancy.RowLevelSecuritySQL's
-- condition): no row, no write.
ALTER POLICY hardening_tenant_isolation ON "hardening_quota_overrides"
    USING ("tenant_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on')
    WITH CHECK ("tenant_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on');
ALTER POLICY hardening_tenant_isolation ON "hardening_quota_audit"
    USING ("tenant_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on')
    WITH CHECK ("tenant_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on');
ALTER POLICY hardening_tenant_isolation ON "hardening_quota_slots"
    USING ("tenant_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on')
    WITH CHECK ("tenant_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on');
ALTER POLICY hardening_tenant_isolation ON "hardening_quota_rates"
    USING ("tenant_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on')
    WITH CHECK ("tenant_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on');
ALTER POLICY hardening_tenant_isolation ON "hardening_quota_spend"
    USING ("tenant_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on')
    WITH CHECK ("tenant_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on');
ALTER POLICY hardening_tenant_isolation ON "hardening_quota_reservations"
    USING ("tenant_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on')
    WITH CHECK ("tenant_id" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on');
