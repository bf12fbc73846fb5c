-- The audit log of every change made through the admin API: who, when, what changed (never a
-- secret value). See docs/configuration.md, "SQL table", and docs/admin-api.md.
CREATE TABLE unilogin_config_audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        BIGINT       NOT NULL,
    actor     VARCHAR(100) NOT NULL,
    tenant_id VARCHAR(64)  NOT NULL,
    platform  VARCHAR(64)  NOT NULL,
    action    VARCHAR(32)  NOT NULL,
    revision  BIGINT       NOT NULL,
    changes   TEXT         NOT NULL
);
CREATE INDEX unilogin_config_audit_tenant ON unilogin_config_audit (tenant_id, id);
