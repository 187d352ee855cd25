-- Bascule control plane, SQLite dialect. Keep in step with ../postgres/0003_reports.sql: the two
-- differ only in how the incident id is generated. Never edit a migration once released.
-- What the daily report (bascule-report) reads and writes.

-- Helpdesk incidents: a note by the hotline, about a user and/or a session, in a category.
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    author TEXT NOT NULL,
    user_id TEXT, -- no foreign key: incidents are history, like sessions
    session_id TEXT,
    category TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX incidents_at ON incidents (at);
CREATE INDEX incidents_user ON incidents (user_id, at);

-- Sites: client-address ranges an administrator names. ranges: comma-separated CIDRs, stored
-- as given (bascule-report and bascule-admin validate them).
CREATE TABLE sites (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    ranges TEXT NOT NULL
);

-- Per-session counters written by the gateway (replaced as the session goes on).
-- rtt_buckets: a JSON array of counts, one per bucket of bascule-report's RTT histogram.
CREATE TABLE session_stats (
    session_id TEXT PRIMARY KEY, -- no foreign key: written beside the session record
    client_address TEXT,
    bytes_to_client BIGINT NOT NULL CHECK (bytes_to_client >= 0),
    bytes_from_client BIGINT NOT NULL CHECK (bytes_from_client >= 0),
    frames BIGINT NOT NULL CHECK (frames >= 0),
    rtt_buckets TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Daily reports, computed once a day (or on demand). day: the site-local date 'YYYY-MM-DD';
-- body: the report as JSON.
CREATE TABLE daily_reports (
    day TEXT PRIMARY KEY,
    computed_at BIGINT NOT NULL,
    body TEXT NOT NULL
);

-- The sessions that overlap a period: those that ended (or failed) after its start.
CREATE INDEX sessions_state_at ON sessions (state_at);
