-- Bascule control plane, PostgreSQL dialect. Keep in step with ../sqlite/0001_initial.sql:
-- the two differ only in how the audit id is generated.
-- Times are Unix seconds (BIGINT); booleans are 0/1 (BIGINT) so that one row decoder serves both.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    enabled BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    roles TEXT NOT NULL -- comma-separated: user,helpdesk,admin
);

CREATE TABLE groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE memberships (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
);

CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    protocol TEXT NOT NULL CHECK (protocol IN ('rdp', 'vnc')),
    address TEXT NOT NULL,
    port BIGINT NOT NULL CHECK (port BETWEEN 0 AND 65535),
    max_sessions BIGINT NOT NULL CHECK (max_sessions >= 0),
    draining BIGINT NOT NULL CHECK (draining IN (0, 1)),
    weight BIGINT NOT NULL CHECK (weight >= 0),
    health TEXT NOT NULL CHECK (health IN ('unknown', 'healthy', 'unhealthy')),
    health_since BIGINT,
    health_reason TEXT
);

CREATE TABLE pools (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    balancing TEXT NOT NULL CHECK (balancing IN ('fewest_sessions', 'weighted'))
);

CREATE TABLE pool_hosts (
    pool_id TEXT NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    host_id TEXT NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    PRIMARY KEY (pool_id, host_id)
);

CREATE TABLE resources (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('desktop', 'application')),
    program TEXT,
    name_fr TEXT NOT NULL,
    name_en TEXT NOT NULL,
    pool_id TEXT NOT NULL REFERENCES pools (id)
);

CREATE TABLE entitlements (
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('user', 'group')),
    subject_id TEXT NOT NULL,
    resource_id TEXT NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    PRIMARY KEY (subject_kind, subject_id, resource_id)
);

-- One policy per scope. NULL = not set at this level; for limits -1 = unlimited.
-- allowed_hours: windows separated by ';', each "<weekday bits>:<start minute>-<end minute>"
-- (bit 0 = Monday); the empty string means "never".
CREATE TABLE policies (
    scope_kind TEXT NOT NULL CHECK (scope_kind IN ('group', 'resource')),
    scope_id TEXT NOT NULL,
    clipboard_in BIGINT,
    clipboard_out BIGINT,
    file_transfer BIGINT,
    max_bandwidth_kbps BIGINT,
    idle_timeout_secs BIGINT,
    disconnected_keep_secs BIGINT,
    allowed_hours TEXT,
    PRIMARY KEY (scope_kind, scope_id)
);

-- Sessions are history too: no foreign keys, so that deleting a user or a host keeps its record.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    host_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('starting', 'active', 'disconnected', 'ended', 'failed')),
    state_at BIGINT, -- disconnected since / ended at / failed at
    state_reason TEXT, -- end or fail reason
    started_at BIGINT NOT NULL
);
CREATE INDEX sessions_live_host ON sessions (host_id, state);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE licence_usage (
    at BIGINT NOT NULL,
    in_use BIGINT NOT NULL,
    capacity BIGINT NOT NULL
);
CREATE INDEX licence_usage_at ON licence_usage (at);

CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    address TEXT,
    outcome TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at);

CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
