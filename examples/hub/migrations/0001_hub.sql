-- The reference service's own tables, tracked as migration set "hub" beside
-- the kit's set "kit": one startup check covers both.

-- Small key/value settings, e.g. the development auth secret used when
-- HUB_AUTH_SECRET is unset.
CREATE TABLE hub_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Previews created through POST /api/v1/previews. Times are Unix ms.
CREATE TABLE hub_previews (
    preview_id    TEXT    PRIMARY KEY,
    tenant_id     TEXT    NOT NULL,
    system_id     TEXT    NOT NULL,
    device_preset TEXT    NOT NULL,
    created_by    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX hub_previews_tenant ON hub_previews (tenant_id);
