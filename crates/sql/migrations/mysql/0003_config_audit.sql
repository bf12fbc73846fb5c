-- The audit log of every change made through the admin API: who, when, what changed (never a
-- secret value). See docs/configuration.md, "SQL table", and docs/admin-api.md.
CREATE TABLE unilogin_config_audit (
    id        BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at        BIGINT       NOT NULL,
    actor     VARCHAR(100) NOT NULL,
    tenant_id VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    platform  VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    action    VARCHAR(32)  NOT NULL,
    revision  BIGINT       NOT NULL,
    changes   LONGTEXT     NOT NULL,
    KEY unilogin_config_audit_tenant (tenant_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
