-- The OpenID Provider's relying-party clients (docs/oidc-provider.md): one row per client id
-- with the client document as JSON text (without `client_id`; a client secret only as its
-- SHA-256), audit columns, a revision counter and soft delete (`deleted_at`). Changes are
-- recorded in the audit log, whose new `client_id` column names the client.
-- Client ids use a binary collation: `Grafana` and `grafana` are different clients.
CREATE TABLE unilogin_oidc_client (
    client_id   VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    body        LONGTEXT     NOT NULL,
    enabled     BIGINT       NOT NULL DEFAULT 1,
    revision    BIGINT       NOT NULL DEFAULT 1,
    creator     VARCHAR(100) NOT NULL,
    created_at  BIGINT       NOT NULL,
    modifier    VARCHAR(100),
    modified_at BIGINT       NOT NULL,
    deleted_at  BIGINT       NOT NULL DEFAULT 0
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
ALTER TABLE unilogin_config_audit
    ADD COLUMN client_id VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
