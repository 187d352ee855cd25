//! Backups: every table, row by row, values as stored, in a [`Backup`] that serde writes and reads
//! (JSON with [`Backup::to_json`] and [`Backup::from_json`]).
//!
//! A backup does not depend on the backend: one taken from SQLite imports into PostgreSQL and the
//! other way round, which is how a site moves from one to the other. It holds password hashes and
//! sealed TOTP secrets: keep it as carefully as the database.
//!
//! The rows are sorted by their columns (primary key first, byte order, whatever the database's
//! collation), audit lines by their id, so that two exports of the same data are equal. Audit ids
//! are not kept: the target numbers the lines afresh, in the same order. Incidents likewise.
//!
//! The tables of migration 0003 (sites, incidents, session statistics, daily reports) are read
//! with `#[serde(default)]`: a backup written before them imports as having none.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Row};

use crate::{Backend, POSTGRES_MIGRATIONS, Result, SQLITE_MIGRATIONS, Store, StoreError};

/// The tables that must be empty for [`Store::import`]: the configuration and the sessions.
/// Audit lines, licence samples and settings, which a gateway may write as soon as it starts,
/// may be there already: the backup's are added to them.
/// Sites are configuration, incidents and session statistics go with the sessions; daily reports
/// are derived, and the backup's replace those of the same day.
const MUST_BE_EMPTY: [&str; 10] = [
    "users",
    "groups",
    "hosts",
    "pools",
    "resources",
    "policies",
    "sessions",
    "sites",
    "incidents",
    "session_stats",
];

/// At most this many bound values per `INSERT` (SQLite's historical limit is 999).
const MAX_BINDS_PER_INSERT: usize = 900;

/// A whole database, table by table: see [`Store::export`] and [`Store::import`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// Always [`Backup::FORMAT`].
    pub format: String,
    /// The layout of this structure, [`Backup::VERSION`] when written by this version.
    pub version: u32,
    /// The database schema the rows come from: the version of the latest migration.
    pub schema: i64,
    /// When the backup was taken, in Unix seconds.
    pub created_at: i64,
    /// The `users` table.
    pub users: Vec<UserRow>,
    /// The `groups` table.
    pub groups: Vec<GroupRow>,
    /// The `memberships` table.
    pub memberships: Vec<MembershipRow>,
    /// The `hosts` table.
    pub hosts: Vec<HostRow>,
    /// The `pools` table.
    pub pools: Vec<PoolRow>,
    /// The `pool_hosts` table.
    pub pool_hosts: Vec<PoolHostRow>,
    /// The `resources` table.
    pub resources: Vec<ResourceRow>,
    /// The `entitlements` table.
    pub entitlements: Vec<EntitlementRow>,
    /// The `policies` table.
    pub policies: Vec<PolicyRow>,
    /// The `sessions` table.
    pub sessions: Vec<SessionRow>,
    /// The `licence_usage` table.
    pub licence_usage: Vec<LicenceUsageRow>,
    /// The `audit` table, in the order the lines were appended.
    pub audit: Vec<AuditRow>,
    /// The `settings` table.
    pub settings: Vec<SettingRow>,
    /// The `sites` table (schema 3).
    #[serde(default)]
    pub sites: Vec<SiteRow>,
    /// The `incidents` table, in the order they were recorded (schema 3).
    #[serde(default)]
    pub incidents: Vec<IncidentRow>,
    /// The `session_stats` table (schema 3).
    #[serde(default)]
    pub session_stats: Vec<SessionStatsRow>,
    /// The `daily_reports` table (schema 3).
    #[serde(default)]
    pub daily_reports: Vec<DailyReportRow>,
}

impl Backup {
    /// The value of [`Backup::format`].
    pub const FORMAT: &'static str = "bascule-backup";
    /// The version of the layout this version writes and reads.
    pub const VERSION: u32 = 1;

    /// Reads a backup from JSON. A backup of another format or a newer version is refused with
    /// [`StoreError::UnsupportedBackup`] (naming it) before the rest is read; malformed JSON with
    /// [`StoreError::InvalidBackup`].
    pub fn from_json(text: &str) -> Result<Self> {
        #[derive(Deserialize)]
        struct Header {
            format: String,
            version: u32,
        }
        let header: Header = serde_json::from_str(text)
            .map_err(|error| StoreError::InvalidBackup(error.to_string()))?;
        check_format(&header.format, header.version)?;
        let backup: Self = serde_json::from_str(text)
            .map_err(|error| StoreError::InvalidBackup(error.to_string()))?;
        backup.check()?;
        Ok(backup)
    }

    /// Writes the backup as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|error| StoreError::InvalidBackup(error.to_string()))
    }

    /// Whether this version can import the backup: its format, version and schema.
    fn check(&self) -> Result<()> {
        check_format(&self.format, self.version)?;
        let latest = latest_schema();
        if self.schema > latest {
            return Err(StoreError::UnsupportedBackup(format!(
                "database schema {} is newer than this version's {latest}: import it with a newer Bascule",
                self.schema
            )));
        }
        Ok(())
    }
}

fn check_format(format: &str, version: u32) -> Result<()> {
    if format != Backup::FORMAT {
        return Err(StoreError::UnsupportedBackup(format!(
            "format {format:?} is not {:?}",
            Backup::FORMAT
        )));
    }
    if version != Backup::VERSION {
        return Err(StoreError::UnsupportedBackup(format!(
            "version {version} (this version of Bascule reads {} version {})",
            Backup::FORMAT,
            Backup::VERSION
        )));
    }
    Ok(())
}

/// The version of the latest embedded migration (the same in both dialects).
pub(crate) fn latest_schema() -> i64 {
    SQLITE_MIGRATIONS
        .iter()
        .chain(POSTGRES_MIGRATIONS.iter())
        .map(|migration| migration.version)
        .max()
        .unwrap_or(0)
}

type AnyQuery<'q> = Query<'q, Any, AnyArguments>;

/// One table's row type: its name, its columns, and how to read and bind a row.
trait TableRow: Sized {
    const TABLE: &'static str;
    const COLUMNS: &'static [&'static str];
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error>;
    fn bind_to<'q>(&self, query: AnyQuery<'q>) -> AnyQuery<'q>;
}

/// Declares row structs whose field names are the table's column names, in the table's order.
macro_rules! rows {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident in $table:literal {
            $( $(#[doc = $field_doc:literal])+ $field:ident: $ty:ty, )+
        }
    )+) => {$(
        $(#[doc = $doc])+
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name {
            $( $(#[doc = $field_doc])+ pub $field: $ty, )+
        }

        impl TableRow for $name {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),+];

            fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
                Ok(Self { $( $field: row.try_get(stringify!($field))?, )+ })
            }

            fn bind_to<'q>(&self, query: AnyQuery<'q>) -> AnyQuery<'q> {
                query $( .bind(self.$field.clone()) )+
            }
        }
    )+};
}

rows! {
    /// A row of `users`.
    UserRow in "users" {
        /// The user id.
        id: String,
        /// The login.
        login: String,
        /// The display name.
        display_name: String,
        /// 0 or 1.
        enabled: i64,
        /// Comma-separated roles (`user`, `helpdesk`, `admin`).
        roles: String,
        /// `local` or `directory`.
        source: String,
        /// The argon2 PHC string, if any.
        password_hash: Option<String>,
        /// The sealed TOTP secret, if any.
        totp_secret: Option<String>,
        /// 0 or 1.
        totp_confirmed: i64,
    }

    /// A row of `groups`.
    GroupRow in "groups" {
        /// The group id.
        id: String,
        /// Its name.
        name: String,
    }

    /// A row of `memberships`.
    MembershipRow in "memberships" {
        /// The member.
        user_id: String,
        /// The group.
        group_id: String,
    }

    /// A row of `hosts`.
    HostRow in "hosts" {
        /// The host id.
        id: String,
        /// Its name.
        name: String,
        /// `rdp` or `vnc`.
        protocol: String,
        /// Its address.
        address: String,
        /// Its port.
        port: i64,
        /// Its session limit.
        max_sessions: i64,
        /// 0 or 1.
        draining: i64,
        /// Its balancing weight.
        weight: i64,
        /// `unknown`, `healthy` or `unhealthy`.
        health: String,
        /// Unhealthy since (Unix seconds).
        health_since: Option<i64>,
        /// Why unhealthy.
        health_reason: Option<String>,
        /// The connection settings (JSON text, as stored).
        settings: String,
    }

    /// A row of `pools`.
    PoolRow in "pools" {
        /// The pool id.
        id: String,
        /// Its name.
        name: String,
        /// `fewest_sessions` or `weighted`.
        balancing: String,
    }

    /// A row of `pool_hosts`.
    PoolHostRow in "pool_hosts" {
        /// The pool.
        pool_id: String,
        /// One of its hosts.
        host_id: String,
        /// The host's rank in the pool.
        position: i64,
    }

    /// A row of `resources`.
    ResourceRow in "resources" {
        /// The resource id.
        id: String,
        /// `desktop` or `application`.
        kind: String,
        /// The application's program.
        program: Option<String>,
        /// The French name.
        name_fr: String,
        /// The English name.
        name_en: String,
        /// Its pool.
        pool_id: String,
        /// The connection settings (JSON text, as stored).
        settings: String,
    }

    /// A row of `entitlements`.
    EntitlementRow in "entitlements" {
        /// `user` or `group`.
        subject_kind: String,
        /// The user or group id.
        subject_id: String,
        /// The resource.
        resource_id: String,
    }

    /// A row of `policies` (`NULL`: not set at this level; limits: -1 is unlimited).
    PolicyRow in "policies" {
        /// `group` or `resource`.
        scope_kind: String,
        /// The group or resource id.
        scope_id: String,
        /// 0 or 1.
        clipboard_in: Option<i64>,
        /// 0 or 1.
        clipboard_out: Option<i64>,
        /// 0 or 1.
        file_transfer: Option<i64>,
        /// A limit.
        max_bandwidth_kbps: Option<i64>,
        /// A limit.
        idle_timeout_secs: Option<i64>,
        /// Seconds.
        disconnected_keep_secs: Option<i64>,
        /// Windows `"<weekday bits>:<start>-<end>"` joined by `;`.
        allowed_hours: Option<String>,
    }

    /// A row of `sessions`.
    SessionRow in "sessions" {
        /// The session id.
        id: String,
        /// Its user.
        user_id: String,
        /// Its resource.
        resource_id: String,
        /// Its host.
        host_id: String,
        /// `starting`, `active`, `disconnected`, `ended` or `failed`.
        state: String,
        /// Disconnected since, ended at or failed at (Unix seconds).
        state_at: Option<i64>,
        /// The end or fail reason.
        state_reason: Option<String>,
        /// Started at (Unix seconds).
        started_at: i64,
    }

    /// A row of `licence_usage`.
    LicenceUsageRow in "licence_usage" {
        /// When (Unix seconds).
        at: i64,
        /// Live sessions then.
        in_use: i64,
        /// The capacity then.
        capacity: i64,
    }

    /// A row of `audit`, without its id.
    AuditRow in "audit" {
        /// When (Unix seconds).
        at: i64,
        /// Who.
        actor: String,
        /// What.
        action: String,
        /// On what.
        target: String,
        /// The client's address.
        address: Option<String>,
        /// How it ended.
        outcome: String,
    }

    /// A row of `settings`.
    SettingRow in "settings" {
        /// The key.
        key: String,
        /// The value.
        value: String,
    }

    /// A row of `sites`.
    SiteRow in "sites" {
        /// The site id.
        id: String,
        /// Its name.
        name: String,
        /// Comma-separated CIDRs, as given.
        ranges: String,
    }

    /// A row of `incidents`, without its id.
    IncidentRow in "incidents" {
        /// When (Unix seconds).
        at: i64,
        /// Who wrote it.
        author: String,
        /// The user it is about.
        user_id: Option<String>,
        /// The session it is about.
        session_id: Option<String>,
        /// Its category.
        category: String,
        /// What happened.
        text: String,
    }

    /// A row of `session_stats`.
    SessionStatsRow in "session_stats" {
        /// The session.
        session_id: String,
        /// The client's address.
        client_address: Option<String>,
        /// Bytes sent to the client.
        bytes_to_client: i64,
        /// Bytes received from the client.
        bytes_from_client: i64,
        /// Frames sent.
        frames: i64,
        /// The RTT histogram, a JSON array of counts.
        rtt_buckets: String,
        /// When the counters were taken (Unix seconds).
        updated_at: i64,
    }

    /// A row of `daily_reports`.
    DailyReportRow in "daily_reports" {
        /// The site-local day, `YYYY-MM-DD`.
        day: String,
        /// When it was computed (Unix seconds).
        computed_at: i64,
        /// The report, as JSON.
        body: String,
    }
}

/// Every row of `T`'s table: sorted by its columns, or in `order_by` order if given.
async fn read_table<T: TableRow + Ord>(
    connection: &mut AnyConnection,
    order_by: Option<&str>,
) -> Result<Vec<T>> {
    let mut sql = format!("SELECT {} FROM {}", T::COLUMNS.join(", "), T::TABLE);
    if let Some(order_by) = order_by {
        sql.push_str(" ORDER BY ");
        sql.push_str(order_by);
    }
    let rows = sqlx::query(AssertSqlSafe(sql))
        .fetch_all(&mut *connection)
        .await?;
    let mut rows = rows
        .iter()
        .map(T::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    if order_by.is_none() {
        rows.sort();
    }
    Ok(rows)
}

/// Inserts `rows` in their order, several per statement.
async fn insert_rows<T: TableRow>(connection: &mut AnyConnection, rows: &[T]) -> Result<()> {
    let columns = T::COLUMNS.len();
    let per_statement = (MAX_BINDS_PER_INSERT / columns).max(1);
    for chunk in rows.chunks(per_statement) {
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            T::TABLE,
            T::COLUMNS.join(", ")
        );
        for (index, _) in chunk.iter().enumerate() {
            if index > 0 {
                sql.push_str(", ");
            }
            let placeholders: Vec<String> = (1..=columns)
                .map(|column| format!("${}", index * columns + column))
                .collect();
            sql.push('(');
            sql.push_str(&placeholders.join(", "));
            sql.push(')');
        }
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in chunk {
            query = row.bind_to(query);
        }
        query.execute(&mut *connection).await?;
    }
    Ok(())
}

impl Store {
    /// Reads every table into a [`Backup`], from one consistent snapshot (a read transaction;
    /// repeatable read on PostgreSQL).
    pub async fn export(&self) -> Result<Backup> {
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .await?
            }
        };
        let created_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        let backup = Backup {
            format: Backup::FORMAT.to_owned(),
            version: Backup::VERSION,
            schema: latest_schema(),
            created_at,
            users: read_table(&mut tx, None).await?,
            groups: read_table(&mut tx, None).await?,
            memberships: read_table(&mut tx, None).await?,
            hosts: read_table(&mut tx, None).await?,
            pools: read_table(&mut tx, None).await?,
            pool_hosts: read_table(&mut tx, None).await?,
            resources: read_table(&mut tx, None).await?,
            entitlements: read_table(&mut tx, None).await?,
            policies: read_table(&mut tx, None).await?,
            sessions: read_table(&mut tx, None).await?,
            licence_usage: read_table(&mut tx, None).await?,
            audit: read_table(&mut tx, Some("id")).await?,
            settings: read_table(&mut tx, None).await?,
            sites: read_table(&mut tx, None).await?,
            incidents: read_table(&mut tx, Some("id")).await?,
            session_stats: read_table(&mut tx, None).await?,
            daily_reports: read_table(&mut tx, None).await?,
        };
        tx.commit().await?;
        Ok(backup)
    }

    /// Loads a [`Backup`] into this database, which must be migrated and empty: no users,
    /// groups, hosts, pools, resources, policies, sessions, sites, incidents or session
    /// statistics, else [`StoreError::NotEmpty`]. Audit lines and licence samples already there
    /// stay (the backup's are added, audit lines after them), and the backup's settings and
    /// daily reports replace those with the same key or day.
    ///
    /// A backup of another format or version, or from a newer schema, is refused with
    /// [`StoreError::UnsupportedBackup`]. Everything is inserted in one transaction, parents
    /// before children: on any error (a foreign key, a check) nothing is written.
    pub async fn import(&self, backup: &Backup) -> Result<()> {
        backup.check()?;
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Keeps the emptiness check true until the commit (self-conflicting: one import at
            // a time; readers are not blocked).
            sqlx::query(
                "LOCK TABLE users, groups, hosts, pools, resources, policies, sessions
                 IN SHARE ROW EXCLUSIVE MODE",
            )
            .execute(&mut *tx)
            .await?;
        }
        for table in MUST_BE_EMPTY {
            let any = sqlx::query(AssertSqlSafe(format!("SELECT 1 FROM {table} LIMIT 1")))
                .fetch_optional(&mut *tx)
                .await?;
            if any.is_some() {
                return Err(StoreError::NotEmpty { table });
            }
        }
        insert_rows(&mut tx, &backup.users).await?;
        insert_rows(&mut tx, &backup.groups).await?;
        insert_rows(&mut tx, &backup.memberships).await?;
        insert_rows(&mut tx, &backup.hosts).await?;
        insert_rows(&mut tx, &backup.pools).await?;
        insert_rows(&mut tx, &backup.pool_hosts).await?;
        insert_rows(&mut tx, &backup.resources).await?;
        insert_rows(&mut tx, &backup.entitlements).await?;
        insert_rows(&mut tx, &backup.policies).await?;
        insert_rows(&mut tx, &backup.sessions).await?;
        insert_rows(&mut tx, &backup.licence_usage).await?;
        insert_rows(&mut tx, &backup.audit).await?;
        for setting in &backup.settings {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(setting.key.as_str())
            .bind(setting.value.as_str())
            .execute(&mut *tx)
            .await?;
        }
        insert_rows(&mut tx, &backup.sites).await?;
        insert_rows(&mut tx, &backup.incidents).await?;
        insert_rows(&mut tx, &backup.session_stats).await?;
        for report in &backup.daily_reports {
            sqlx::query(
                "INSERT INTO daily_reports (day, computed_at, body) VALUES ($1, $2, $3)
                 ON CONFLICT (day) DO UPDATE SET computed_at = excluded.computed_at,
                   body = excluded.body",
            )
            .bind(report.day.as_str())
            .bind(report.computed_at)
            .bind(report.body.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_have_the_same_migrations() {
        let versions = |migrator: &sqlx::migrate::Migrator| {
            migrator
                .iter()
                .map(|migration| (migration.version, migration.description.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(versions(&SQLITE_MIGRATIONS), versions(&POSTGRES_MIGRATIONS));
        assert_eq!(latest_schema(), 4);
    }
}
