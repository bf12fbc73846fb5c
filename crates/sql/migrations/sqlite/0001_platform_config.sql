-- One row per (tenant, platform): see docs/configuration.md, "SQL table".
CREATE TABLE unilogin_platform_config (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     VARCHAR(64)  NOT NULL,
    platform      VARCHAR(64)  NOT NULL,
    protocol      VARCHAR(32),
    enabled       BIGINT       NOT NULL DEFAULT 1,
    app_key       VARCHAR(128) NOT NULL,
    app_secret    TEXT         NOT NULL,
    corp_id       VARCHAR(128),
    agent_id      VARCHAR(128),
    hosts         TEXT         NOT NULL,
    mapping       TEXT,
    redirect_uris TEXT         NOT NULL,
    options       TEXT         NOT NULL,
    sort          BIGINT       NOT NULL DEFAULT 0,
    deprecated    BIGINT       NOT NULL DEFAULT 0,
    creator       VARCHAR(100) NOT NULL,
    created_at    BIGINT       NOT NULL,
    modifier      VARCHAR(100),
    modified_at   BIGINT       NOT NULL,
    revision      BIGINT       NOT NULL DEFAULT 1,
    deleted_at    BIGINT       NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX unilogin_platform_config_live
    ON unilogin_platform_config (tenant_id, platform, deleted_at);
