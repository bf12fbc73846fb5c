-- Session scope rules per (tenant, platform): JSON text, NULL = no scope rules.
-- See docs/configuration.md, "SQL table" and "Scopes".
ALTER TABLE unilogin_platform_config ADD COLUMN session_scopes TEXT;
