//! What the daily report reads and writes (migration 0003): helpdesk incidents, sites (named
//! client-address ranges), per-session statistics written by the gateway, the sessions that
//! overlap a period, and the computed reports themselves.
//!
//! The store keeps these values as given: the CIDRs of a site and the RTT histogram of a
//! session are validated and interpreted by `bascule-report` (and `bascule-admin`).

use bascule_domain::id::{SessionId, UserId};
use bascule_domain::session::SessionRecord;
use bascule_domain::time::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::codec::corrupt;
use crate::{Result, Store, StoreError, session_from_row};

/// A helpdesk incident to record (see [`Store::add_incident`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIncident {
    /// When it happened (or was reported).
    pub at: Timestamp,
    /// Who wrote it (a login).
    pub author: String,
    /// The user it is about, if any.
    pub user: Option<UserId>,
    /// The session it is about, if any.
    pub session: Option<SessionId>,
    /// A short category code chosen by the hotline (`password`, `printer`, `network`, …).
    pub category: String,
    /// What happened, free text.
    pub text: String,
}

/// A recorded helpdesk incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// Its number, given by the database.
    pub id: i64,
    /// When it happened (or was reported).
    pub at: Timestamp,
    /// Who wrote it.
    pub author: String,
    /// The user it is about, if any.
    pub user: Option<UserId>,
    /// The session it is about, if any.
    pub session: Option<SessionId>,
    /// Its category code.
    pub category: String,
    /// What happened.
    pub text: String,
}

/// A site: client-address ranges an administrator names (e.g. "MDS Meaux" = `10.20.0.0/16`).
///
/// The store keeps the ranges as given (no parsing); `bascule-report` validates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// A stable key (`mds-meaux`).
    pub id: String,
    /// The name shown in reports.
    pub name: String,
    /// CIDRs such as `10.20.0.0/16` or `2001:db8::/32`, in the administrator's order. Stored
    /// comma-separated: a range must not contain a comma.
    pub ranges: Vec<String>,
}

/// A session's traffic counters and round-trip-time histogram, written by the gateway while the
/// session runs (each write replaces the previous one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStats {
    /// The session.
    pub session: SessionId,
    /// The client's address as the gateway saw it (an IP address), if known.
    pub client_address: Option<String>,
    /// Bytes sent to the browser since the session started.
    pub bytes_to_client: u64,
    /// Bytes received from the browser since the session started.
    pub bytes_from_client: u64,
    /// Frames sent to the browser.
    pub frames: u64,
    /// The count per bucket of `bascule_report::RttHistogram` (stored as a JSON array).
    pub rtt_buckets: Vec<u64>,
    /// When these counters were taken.
    pub updated_at: Timestamp,
}

/// A computed daily report, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    /// The site-local day, `YYYY-MM-DD`.
    pub day: String,
    /// When it was computed.
    pub computed_at: Timestamp,
    /// The report, as JSON (opaque to the store).
    pub body: String,
}

/// The sessions (alias `s`) that overlap `[$1, $2)`: started before its end, and live or
/// ended (failed) at or after its start.
const OVERLAPS: &str = "s.started_at < $2
    AND (s.state IN ('starting', 'active', 'disconnected') OR s.state_at >= $1)";

const STATS_COLUMNS: &str = "st.session_id, st.client_address, st.bytes_to_client,
    st.bytes_from_client, st.frames, st.rtt_buckets, st.updated_at";

/// At most this many ids in one `IN (…)` list.
const IDS_PER_QUERY: usize = 500;

fn to_db(value: u64, what: &str) -> Result<i64> {
    i64::try_from(value)
        .map_err(|_| StoreError::Unsupported(format!("{what} {value} is larger than i64")))
}

fn from_db(table: &'static str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| corrupt(table, format!("negative counter {value}")))
}

fn incident_from_row(row: &AnyRow) -> Result<Incident> {
    Ok(Incident {
        id: row.try_get("id")?,
        at: Timestamp::from_unix_seconds(row.try_get("at")?),
        author: row.try_get("author")?,
        user: row
            .try_get::<Option<String>, _>("user_id")?
            .map(UserId::new),
        session: row
            .try_get::<Option<String>, _>("session_id")?
            .map(SessionId::new),
        category: row.try_get("category")?,
        text: row.try_get("text")?,
    })
}

fn site_from_row(row: &AnyRow) -> Result<Site> {
    let ranges: String = row.try_get("ranges")?;
    Ok(Site {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        ranges: ranges
            .split(',')
            .map(str::trim)
            .filter(|range| !range.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

fn stats_from_row(row: &AnyRow) -> Result<SessionStats> {
    let buckets: String = row.try_get("rtt_buckets")?;
    let rtt_buckets = serde_json::from_str(&buckets)
        .map_err(|error| corrupt("session_stats", format!("rtt_buckets {buckets:?}: {error}")))?;
    Ok(SessionStats {
        session: SessionId::new(row.try_get::<String, _>("session_id")?),
        client_address: row.try_get("client_address")?,
        bytes_to_client: from_db("session_stats", row.try_get("bytes_to_client")?)?,
        bytes_from_client: from_db("session_stats", row.try_get("bytes_from_client")?)?,
        frames: from_db("session_stats", row.try_get("frames")?)?,
        rtt_buckets,
        updated_at: Timestamp::from_unix_seconds(row.try_get("updated_at")?),
    })
}

fn report_from_row(row: &AnyRow) -> Result<StoredReport> {
    Ok(StoredReport {
        day: row.try_get("day")?,
        computed_at: Timestamp::from_unix_seconds(row.try_get("computed_at")?),
        body: row.try_get("body")?,
    })
}

impl Store {
    // ----- incidents -----

    /// Records a helpdesk incident and returns its number.
    pub async fn add_incident(&self, incident: &NewIncident) -> Result<i64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO incidents (at, author, user_id, session_id, category, text)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(incident.at.unix_seconds())
        .bind(incident.author.as_str())
        .bind(incident.user.as_ref().map(|id| id.as_str().to_owned()))
        .bind(incident.session.as_ref().map(|id| id.as_str().to_owned()))
        .bind(incident.category.as_str())
        .bind(incident.text.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// The incidents in `[from, to)`, oldest first (then by number).
    pub async fn incidents_between(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Incident>> {
        let rows = sqlx::query(
            "SELECT id, at, author, user_id, session_id, category, text FROM incidents
             WHERE at >= $1 AND at < $2 ORDER BY at, id",
        )
        .bind(from.unix_seconds())
        .bind(to.unix_seconds())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(incident_from_row).collect()
    }

    /// The last `limit` incidents about `user`, newest first.
    pub async fn incidents_of_user(&self, user: &UserId, limit: u32) -> Result<Vec<Incident>> {
        let rows = sqlx::query(
            "SELECT id, at, author, user_id, session_id, category, text FROM incidents
             WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(user.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(incident_from_row).collect()
    }

    // ----- sites -----

    /// Inserts or replaces a site. The ranges are stored as given, comma-separated.
    pub async fn upsert_site(&self, site: &Site) -> Result<()> {
        if let Some(range) = site.ranges.iter().find(|range| range.contains(',')) {
            return Err(StoreError::Unsupported(format!(
                "site range {range:?} contains a comma"
            )));
        }
        sqlx::query(
            "INSERT INTO sites (id, name, ranges) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, ranges = excluded.ranges",
        )
        .bind(site.id.as_str())
        .bind(site.name.as_str())
        .bind(site.ranges.join(","))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The site with this id.
    pub async fn get_site(&self, id: &str) -> Result<Option<Site>> {
        let row = sqlx::query("SELECT id, name, ranges FROM sites WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(site_from_row).transpose()
    }

    /// Every site, by id.
    pub async fn list_sites(&self) -> Result<Vec<Site>> {
        let rows = sqlx::query("SELECT id, name, ranges FROM sites ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(site_from_row).collect()
    }

    /// Deletes a site; `false` if there was none.
    pub async fn delete_site(&self, id: &str) -> Result<bool> {
        self.delete("DELETE FROM sites WHERE id = $1", id).await
    }

    // ----- session statistics -----

    /// Writes a session's counters, replacing those written before.
    pub async fn upsert_session_stats(&self, stats: &SessionStats) -> Result<()> {
        let buckets = serde_json::to_string(&stats.rtt_buckets)
            .map_err(|error| StoreError::Unsupported(error.to_string()))?;
        sqlx::query(
            "INSERT INTO session_stats (session_id, client_address, bytes_to_client,
                                        bytes_from_client, frames, rtt_buckets, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (session_id) DO UPDATE SET client_address = excluded.client_address,
               bytes_to_client = excluded.bytes_to_client,
               bytes_from_client = excluded.bytes_from_client, frames = excluded.frames,
               rtt_buckets = excluded.rtt_buckets, updated_at = excluded.updated_at",
        )
        .bind(stats.session.as_str())
        .bind(stats.client_address.clone())
        .bind(to_db(stats.bytes_to_client, "bytes_to_client")?)
        .bind(to_db(stats.bytes_from_client, "bytes_from_client")?)
        .bind(to_db(stats.frames, "frames")?)
        .bind(buckets)
        .bind(stats.updated_at.unix_seconds())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The counters of the session with this id, if written.
    pub async fn get_session_stats(&self, id: &SessionId) -> Result<Option<SessionStats>> {
        let sql = format!("SELECT {STATS_COLUMNS} FROM session_stats st WHERE st.session_id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(stats_from_row).transpose()
    }

    /// The counters of these sessions (those written), by session id.
    pub async fn session_stats_of(&self, ids: &[SessionId]) -> Result<Vec<SessionStats>> {
        let mut all = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "SELECT {STATS_COLUMNS} FROM session_stats st WHERE st.session_id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(&self.pool).await? {
                all.push(stats_from_row(&row)?);
            }
        }
        all.sort_by(|a, b| a.session.cmp(&b.session));
        Ok(all)
    }

    /// The counters of the sessions that overlap `[from, to)` (see
    /// [`Store::sessions_overlapping`]), by session id.
    pub async fn session_stats_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SessionStats>> {
        let sql = format!(
            "SELECT {STATS_COLUMNS} FROM session_stats st JOIN sessions s ON s.id = st.session_id
             WHERE {OVERLAPS} ORDER BY st.session_id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(from.unix_seconds())
            .bind(to.unix_seconds())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stats_from_row).collect()
    }

    /// The sessions that overlap `[from, to)`: started before `to`, and still live or ended
    /// (failed) at or after `from`; oldest first.
    pub async fn sessions_overlapping(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT s.id, s.user_id, s.resource_id, s.host_id, s.state, s.state_at,
                    s.state_reason, s.started_at
             FROM sessions s WHERE {OVERLAPS} ORDER BY s.started_at, s.id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(from.unix_seconds())
            .bind(to.unix_seconds())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(session_from_row).collect()
    }

    // ----- daily reports -----

    /// Saves (inserts or replaces) the report of `day` (`YYYY-MM-DD`, site-local).
    pub async fn save_daily_report(
        &self,
        day: &str,
        computed_at: Timestamp,
        body: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO daily_reports (day, computed_at, body) VALUES ($1, $2, $3)
             ON CONFLICT (day) DO UPDATE SET computed_at = excluded.computed_at,
               body = excluded.body",
        )
        .bind(day)
        .bind(computed_at.unix_seconds())
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The saved report of `day`, if any.
    pub async fn get_daily_report(&self, day: &str) -> Result<Option<StoredReport>> {
        let row = sqlx::query("SELECT day, computed_at, body FROM daily_reports WHERE day = $1")
            .bind(day)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(report_from_row).transpose()
    }

    /// The saved reports from `from_day` to `to_day`, both included (`YYYY-MM-DD`), by day.
    pub async fn daily_reports_between(
        &self,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<StoredReport>> {
        let rows = sqlx::query(
            "SELECT day, computed_at, body FROM daily_reports
             WHERE day >= $1 AND day <= $2 ORDER BY day",
        )
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(report_from_row).collect()
    }
}
