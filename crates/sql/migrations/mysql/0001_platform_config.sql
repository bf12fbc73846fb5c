-- One row per (tenant, platform): see docs/configuration.md, "SQL table".
-- Identifiers use a binary collation: tenant `Acme` and tenant `acme` are different tenants.
CREATE TABLE unilogin_platform_config (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id     VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    platform      VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    protocol      VARCHAR(32),
    enabled       BIGINT       NOT NULL DEFAULT 1,
    app_key       VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    app_secret    LONGTEXT     NOT NULL,
    corp_id       VARCHAR(128),
    agent_id      VARCHAR(128),
    hosts         LONGTEXT     NOT NULL,
    mapping       LONGTEXT,
    redirect_uris LONGTEXT     NOT NULL,
    options       LONGTEXT     NOT NULL,
    sort          BIGINT       NOT NULL DEFAULT 0,
    deprecated    BIGINT       NOT NULL DEFAULT 0,
    creator       VARCHAR(100) NOT NULL,
    created_at    BIGINT       NOT NULL,
    modifier      VARCHAR(100),
    modified_at   BIGINT       NOT NULL,
    revision      BIGINT       NOT NULL DEFAULT 1,
    deleted_at    BIGINT       NOT NULL DEFAULT 0,
    UNIQUE KEY unilogin_platform_config_live (tenant_id, platform, deleted_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
