-- The event subscription of a (tenant, platform) configuration (docs/configuration.md, "SQL
-- table", and docs/events.md): the callback token and encryption key, each stored like
-- `app_secret` (encrypted `enc:v1:...` or a reference), and the receiver id. All NULL = the
-- configuration receives no events.
ALTER TABLE unilogin_platform_config ADD COLUMN event_token TEXT;
ALTER TABLE unilogin_platform_config ADD COLUMN event_key TEXT;
ALTER TABLE unilogin_platform_config ADD COLUMN event_receiver_id VARCHAR(128);
