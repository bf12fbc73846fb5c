-- Who logged in (docs/configuration.md, "Identities and accounts"): the identity policy of a
-- (tenant, platform) configuration, and the identity store's accounts and identities.
-- Identifiers use a binary collation: `Acme` and `acme`, `U1` and `u1` are different.
ALTER TABLE unilogin_platform_config ADD COLUMN identity_policy LONGTEXT NULL AFTER session_scopes;
-- One stable account per person and tenant.
CREATE TABLE unilogin_account (
    id         VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    tenant_id  VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_at BIGINT      NOT NULL,
    KEY unilogin_account_tenant (tenant_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
-- One row per identity (tenant, platform, subject kind, subject): its account, and the
-- contact values vouched for under the tenant's linking rules (matching forms), NULL if none.
CREATE TABLE unilogin_identity (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    tenant_id     VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    platform      VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    subject_kind  VARCHAR(16)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    subject       VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    account_id    VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    email_key     VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    mobile_key    VARCHAR(64)  CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    linked_by     VARCHAR(16)  NOT NULL,
    linked_at     BIGINT       NOT NULL,
    last_login_at BIGINT       NOT NULL,
    UNIQUE KEY unilogin_identity_key (tenant_id, platform, subject_kind, subject),
    KEY unilogin_identity_email (tenant_id, email_key),
    KEY unilogin_identity_mobile (tenant_id, mobile_key),
    KEY unilogin_identity_account (account_id),
    CONSTRAINT unilogin_identity_account_fk FOREIGN KEY (account_id) REFERENCES unilogin_account (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
