-- The reference service's own tables on PostgreSQL, tracked as migration
-- set "hub" beside the kit's set "kit": one startup check covers both. The
-- twin of migrations/0001_hub.sql (SQLite); the tables live in the schema
-- the connection's search_path names first.

-- Small key/value settings, e.g. the development auth secret used when
-- HUB_AUTH_SECRET is unset.
CREATE TABLE hub_settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- Previews created through POST /api/v1/previews. Times are Unix ms.
CREATE TABLE hub_previews (
    preview_id    text   PRIMARY KEY,
    tenant_id     text   NOT NULL,
    system_id     text   NOT NULL,
    device_preset text   NOT NULL,
    created_by    text   NOT NULL,
    created_at    bigint NOT NULL
);
CREATE INDEX hub_previews_tenant ON hub_previews (tenant_id);
