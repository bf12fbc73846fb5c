-- Who logged in (docs/configuration.md, "Identities and accounts"): the identity policy of a
-- (tenant, platform) configuration, and the identity store's accounts and identities.
ALTER TABLE unilogin_platform_config ADD COLUMN identity_policy TEXT;
-- One stable account per person and tenant.
CREATE TABLE unilogin_account (
    id         VARCHAR(64) NOT NULL PRIMARY KEY,
    tenant_id  VARCHAR(64) NOT NULL,
    created_at BIGINT      NOT NULL
);
CREATE INDEX unilogin_account_tenant ON unilogin_account (tenant_id);
-- One row per identity (tenant, platform, subject kind, subject): its account, and the
-- contact values vouched for under the tenant's linking rules (matching forms), NULL if none.
CREATE TABLE unilogin_identity (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     VARCHAR(64)  NOT NULL,
    platform      VARCHAR(64)  NOT NULL,
    subject_kind  VARCHAR(16)  NOT NULL,
    subject       VARCHAR(255) NOT NULL,
    account_id    VARCHAR(64)  NOT NULL REFERENCES unilogin_account (id),
    email_key     VARCHAR(320),
    mobile_key    VARCHAR(64),
    linked_by     VARCHAR(16)  NOT NULL,
    linked_at     BIGINT       NOT NULL,
    last_login_at BIGINT       NOT NULL
);
CREATE UNIQUE INDEX unilogin_identity_key
    ON unilogin_identity (tenant_id, platform, subject_kind, subject);
CREATE INDEX unilogin_identity_email ON unilogin_identity (tenant_id, email_key);
CREATE INDEX unilogin_identity_mobile ON unilogin_identity (tenant_id, mobile_key);
CREATE INDEX unilogin_identity_account ON unilogin_identity (account_id);
