-- The OpenID Provider's relying-party clients (docs/oidc-provider.md): one row per client id
-- with the client document as JSON text (without `client_id`; a client secret only as its
-- SHA-256), audit columns, a revision counter and soft delete (`deleted_at`). Changes are
-- recorded in the audit log, whose new `client_id` column names the client.
CREATE TABLE unilogin_oidc_client (
    client_id   VARCHAR(128) NOT NULL PRIMARY KEY,
    body        TEXT         NOT NULL,
    enabled     BIGINT       NOT NULL DEFAULT 1,
    revision    BIGINT       NOT NULL DEFAULT 1,
    creator     VARCHAR(100) NOT NULL,
    created_at  BIGINT       NOT NULL,
    modifier    VARCHAR(100),
    modified_at BIGINT       NOT NULL,
    deleted_at  BIGINT       NOT NULL DEFAULT 0
);
ALTER TABLE unilogin_config_audit ADD COLUMN client_id VARCHAR(128);
