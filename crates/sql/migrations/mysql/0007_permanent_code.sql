-- A store app's credential for the installing organisation (docs/store-apps.md): WeCom's
-- `permanent_code`, stored like `app_secret` (encrypted `enc:v1:...` or a reference). NULL for
-- every other configuration.
ALTER TABLE unilogin_platform_config
    ADD COLUMN permanent_code LONGTEXT NULL AFTER event_receiver_id;
