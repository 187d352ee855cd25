-- Bascule control plane, SQLite dialect. Keep in step with ../postgres/0002_auth_settings.sql
-- (the two are identical). Never edit a migration once released: add the next one.

-- How a user logs in. source: 'local' (password_hash checked here) or 'directory' (LDAP/AD,
-- password_hash NULL). password_hash: an argon2 PHC string. totp_secret: opaque, sealed by the
-- caller (never the plain secret). totp_confirmed: 0/1, whether the user proved a first code.
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local'
    CHECK (source IN ('local', 'directory'));
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_confirmed BIGINT NOT NULL DEFAULT 0
    CHECK (totp_confirmed IN (0, 1));

-- Connection settings of a host and of a resource: a JSON document owned by the gateway, opaque
-- to the store.
ALTER TABLE hosts ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE resources ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';

-- Sessions by start time (the console's history, backups).
CREATE INDEX sessions_started_at ON sessions (started_at);
