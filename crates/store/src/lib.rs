//! Bascule's control-plane storage: the inventory, access rules, policies, sessions, licence
//! samples, the audit log and settings, in SQLite (one file, the default) or PostgreSQL (several
//! gateways).
//!
//! One [`Store`] over an [`sqlx::AnyPool`] serves both: the SQL text is shared (numbered `$1`
//! placeholders work in both), the migrations are one folder per dialect, and rows are converted
//! to and from `bascule_domain` types here, at the edge. Queries are built at run time
//! (`sqlx::query` with binds), so compiling needs no database.
//!
//! [`Store::record_session_start`] is where the broker's advice becomes binding: it re-checks the
//! licence capacity and the host's `max_sessions` in one serialised transaction.
//!
//! Beside the domain types, the store keeps what the gateway owns and the domain does not model:
//! how each user logs in ([`UserAuth`]: local password hash or directory, sealed TOTP secret),
//! the connection settings of hosts and resources (opaque JSON documents, e.g.
//! [`Store::set_host_settings`]) and free-form settings ([`Store::set_setting`]).
//!
//! For the daily report (`bascule-report`, module [`reports`]): helpdesk incidents
//! ([`Store::add_incident`]), sites ([`Store::upsert_site`]), per-session traffic and RTT counters
//! ([`Store::upsert_session_stats`]), the sessions that overlap a day
//! ([`Store::sessions_overlapping`]) and the computed reports ([`Store::save_daily_report`]).
//!
//! [`Store::export`] dumps every table into a [`Backup`] (serde, e.g. JSON), and
//! [`Store::import`] loads one into an empty database in one transaction, whatever the backend
//! on either side: that is also how a site moves from SQLite to PostgreSQL.

pub mod backup;
mod codec;
pub mod reports;

use std::sync::Once;

use bascule_domain::access::{Entitlement, Group, Subject, User};
use bascule_domain::broker::World;
use bascule_domain::id::{GroupId, HostId, PoolId, ResourceId, SessionId, UserId};
use bascule_domain::inventory::{Health, Host, Pool, Resource, ResourceKind};
use bascule_domain::policy::{EffectivePolicy, Policy, PolicyScope, ScopedPolicy};
use bascule_domain::session::{LicencePool, SessionRecord, SessionState};
use bascule_domain::time::Timestamp;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};
use thiserror::Error;

pub use backup::Backup;
use codec::*;
pub use reports::{Incident, NewIncident, SessionStats, Site, StoredReport};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// The `settings` key of the licence capacity.
const LICENCE_CAPACITY_KEY: &str = "licence_capacity";

/// What went wrong.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL is neither `sqlite:` nor `postgres:`/`postgresql:`.
    #[error("unsupported database URL (expected sqlite://… or postgres://…)")]
    UnsupportedUrl,
    /// The database failed or refused the statement (constraint, connection, …).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The row to change does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// The kind of row (`host`, `session`, …).
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// A new session was refused: a licence or host limit is reached.
    #[error("capacity exceeded: {0}")]
    CapacityExceeded(CapacityLimit),
    /// A stored value cannot be read back (edited by hand, or written by a newer version).
    #[error("unreadable value in {table}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A domain value this version of the store cannot write.
    #[error("value not supported by the store: {0}")]
    Unsupported(String),
    /// [`Store::import`] was refused: the target database already holds data.
    #[error(
        "import refused: the database is not empty (table {table} has rows); import into a new database"
    )]
    NotEmpty {
        /// The first table found with rows.
        table: &'static str,
    },
    /// A backup this version cannot import (another format, a newer version or schema).
    #[error("unsupported backup: {0}")]
    UnsupportedBackup(String),
    /// A backup that cannot be read (not JSON, or fields missing or mistyped).
    #[error("unreadable backup: {0}")]
    InvalidBackup(String),
}

/// Which limit refused a new session.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CapacityLimit {
    /// Every licence is held by a live session.
    #[error("all {capacity} licences are in use")]
    Licences {
        /// The capacity checked against.
        capacity: u32,
    },
    /// The host carries its `max_sessions` live sessions.
    #[error("host {host} carries its maximum of {max_sessions} sessions")]
    Host {
        /// The full host.
        host: HostId,
        /// Its limit.
        max_sessions: u32,
    },
}

/// The database behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file, in WAL mode.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// One sample of licence usage, for the console's graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LicenceSample {
    /// When.
    pub at: Timestamp,
    /// Live sessions then.
    pub in_use: u32,
    /// The capacity then.
    pub capacity: u32,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// Who did it (a login, or `system`).
    pub actor: String,
    /// What, as a stable code (`login`, `launch`, `host.drain`, …).
    pub action: String,
    /// On what (an id), possibly empty.
    pub target: String,
    /// The client's address, if any.
    pub address: Option<String>,
    /// How it ended (`ok`, or a refusal code).
    pub outcome: String,
}

/// How a user logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSource {
    /// With a password checked against [`UserAuth::password_hash`].
    Local,
    /// Against the LDAP/AD directory; the store keeps no password.
    Directory,
}

/// A user's login material, beside the domain's [`User`] (which never carries it).
///
/// A new user (or one written by [`Store::upsert_user`] only) has the [`Default`]: local, no
/// password, no TOTP. `Debug` shows whether the secrets are set, never their text.
#[derive(Clone, PartialEq, Eq)]
pub struct UserAuth {
    /// Local password or directory.
    pub source: AuthSource,
    /// The argon2 hash of the password, as a PHC string; `None` for directory users, or a local
    /// user who cannot log in with a password yet.
    pub password_hash: Option<String>,
    /// The TOTP secret, sealed by the caller (the store keeps the opaque string as given).
    pub totp_secret: Option<String>,
    /// Whether the user proved a first code, so that TOTP is enforced at login.
    pub totp_confirmed: bool,
}

impl Default for UserAuth {
    fn default() -> Self {
        Self {
            source: AuthSource::Local,
            password_hash: None,
            totp_secret: None,
            totp_confirmed: false,
        }
    }
}

impl std::fmt::Debug for UserAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |value: &Option<String>| value.as_ref().map(|_| "<redacted>");
        f.debug_struct("UserAuth")
            .field("source", &self.source)
            .field("password_hash", &redacted(&self.password_hash))
            .field("totp_secret", &redacted(&self.totp_secret))
            .field("totp_confirmed", &self.totp_confirmed)
            .finish()
    }
}

/// An audit row selected as `at, actor, action, target, address, outcome`.
fn audit_from_row(row: &sqlx::any::AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        at: Timestamp::from_unix_seconds(row.try_get(0)?),
        actor: row.try_get(1)?,
        action: row.try_get(2)?,
        target: row.try_get(3)?,
        address: row.try_get(4)?,
        outcome: row.try_get(5)?,
    })
}

/// What [`Store::audit_recent`] selects; `None` fields do not filter.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditFilter<'a> {
    /// Lines by this actor.
    pub actor: Option<&'a str>,
    /// Lines about this target.
    pub target: Option<&'a str>,
    /// Lines whose action starts with this (`login`, `host.`).
    pub action_prefix: Option<&'a str>,
}

/// The control plane's database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

fn install_drivers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

impl Store {
    /// Opens `sqlite://path?mode=rwc` (WAL, foreign keys on, 10 s busy timeout) or
    /// `postgres://user@host:port/db` (PostgreSQL's `options` URL parameter, e.g.
    /// `options=-c%20search_path%3Dother`, selects a schema). Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        install_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let options = AnyPoolOptions::new().max_connections(8);
        let pool = match backend {
            Backend::Sqlite => {
                options
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            for pragma in [
                                "PRAGMA busy_timeout = 10000",
                                "PRAGMA journal_mode = WAL",
                                "PRAGMA foreign_keys = ON",
                                "PRAGMA synchronous = NORMAL",
                            ] {
                                sqlx::query(pragma).execute(&mut *connection).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Postgres => options.connect(url).await?,
        };
        Ok(Self { pool, backend })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the embedded migrations that are not applied yet (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ----- users, groups, memberships -----

    /// Inserts or replaces a user, and replaces its memberships with `user.groups`.
    ///
    /// A new user gets the default [`UserAuth`]; an existing one keeps its own (see
    /// [`Store::set_user_auth`]).
    pub async fn upsert_user(&self, user: &User) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO users (id, login, display_name, enabled, roles) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET login = excluded.login,
               display_name = excluded.display_name, enabled = excluded.enabled, roles = excluded.roles",
        )
        .bind(user.id.as_str())
        .bind(user.login.as_str())
        .bind(user.display_name.as_str())
        .bind(bool_to_db(user.enabled))
        .bind(roles_to_db(&user.roles)?)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM memberships WHERE user_id = $1")
            .bind(user.id.as_str())
            .execute(&mut *tx)
            .await?;
        for group in &user.groups {
            sqlx::query("INSERT INTO memberships (user_id, group_id) VALUES ($1, $2)")
                .bind(user.id.as_str())
                .bind(group.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The user with this id, with its groups.
    pub async fn get_user(&self, id: &UserId) -> Result<Option<User>> {
        let row =
            sqlx::query("SELECT id, login, display_name, enabled, roles FROM users WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let mut user = user_from_row(&row)?;
        user.groups =
            sqlx::query("SELECT group_id FROM memberships WHERE user_id = $1 ORDER BY group_id")
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|row| row.try_get::<String, _>(0).map(GroupId::new))
                .collect::<Result<_, _>>()?;
        Ok(Some(user))
    }

    /// The user who logs in as `login`.
    pub async fn get_user_by_login(&self, login: &str) -> Result<Option<User>> {
        let id: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE login = $1")
            .bind(login)
            .fetch_optional(&self.pool)
            .await?;
        match id {
            Some(id) => self.get_user(&UserId::new(id)).await,
            None => Ok(None),
        }
    }

    /// Every user, by id, with their groups.
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows =
            sqlx::query("SELECT id, login, display_name, enabled, roles FROM users ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        let mut users = rows.iter().map(user_from_row).collect::<Result<Vec<_>>>()?;
        let memberships =
            sqlx::query("SELECT user_id, group_id FROM memberships ORDER BY user_id, group_id")
                .fetch_all(&self.pool)
                .await?;
        attach_children(
            &mut users,
            &memberships,
            |user| user.id.as_str(),
            |user, id| user.groups.push(GroupId::new(id)),
        )?;
        Ok(users)
    }

    /// Deletes a user and its memberships; `false` if there was none.
    pub async fn delete_user(&self, id: &UserId) -> Result<bool> {
        self.delete("DELETE FROM users WHERE id = $1", id.as_str())
            .await
    }

    /// Inserts or renames a group.
    pub async fn upsert_group(&self, group: &Group) -> Result<()> {
        sqlx::query(
            "INSERT INTO groups (id, name) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name",
        )
        .bind(group.id.as_str())
        .bind(group.name.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The group with this id.
    pub async fn get_group(&self, id: &GroupId) -> Result<Option<Group>> {
        let row = sqlx::query("SELECT id, name FROM groups WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(group_from_row).transpose()
    }

    /// Every group, by id.
    pub async fn list_groups(&self) -> Result<Vec<Group>> {
        let rows = sqlx::query("SELECT id, name FROM groups ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(group_from_row).collect()
    }

    /// Deletes a group (its memberships go with it); `false` if there was none.
    pub async fn delete_group(&self, id: &GroupId) -> Result<bool> {
        self.delete("DELETE FROM groups WHERE id = $1", id.as_str())
            .await
    }

    /// Puts `user` in `group` (no-op if already there).
    pub async fn add_membership(&self, user: &UserId, group: &GroupId) -> Result<()> {
        sqlx::query(
            "INSERT INTO memberships (user_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(user.as_str())
        .bind(group.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes `user` out of `group`; `false` if it was not in it.
    pub async fn remove_membership(&self, user: &UserId, group: &GroupId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM memberships WHERE user_id = $1 AND group_id = $2")
            .bind(user.as_str())
            .bind(group.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The members of `group`, by id.
    pub async fn members_of(&self, group: &GroupId) -> Result<Vec<UserId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT user_id FROM memberships WHERE group_id = $1 ORDER BY user_id",
        )
        .bind(group.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(UserId::new).collect())
    }

    /// Replaces the groups of `user` with `groups` (duplicates count once), in one transaction.
    ///
    /// [`StoreError::NotFound`] (kind `user` or `group`, the first missing one) if the user or one
    /// of the groups does not exist; then nothing changes.
    pub async fn set_memberships(&self, user: &UserId, groups: &[GroupId]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let found = sqlx::query("SELECT id FROM users WHERE id = $1")
            .bind(user.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(StoreError::NotFound {
                kind: "user",
                id: user.to_string(),
            });
        }
        for group in groups {
            let found = sqlx::query("SELECT id FROM groups WHERE id = $1")
                .bind(group.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(StoreError::NotFound {
                    kind: "group",
                    id: group.to_string(),
                });
            }
        }
        sqlx::query("DELETE FROM memberships WHERE user_id = $1")
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        for group in groups {
            sqlx::query(
                "INSERT INTO memberships (user_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(user.as_str())
            .bind(group.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// How the user with this id logs in; `None` if there is no such user.
    pub async fn get_user_auth(&self, id: &UserId) -> Result<Option<UserAuth>> {
        let row = sqlx::query(
            "SELECT source, password_hash, totp_secret, totp_confirmed FROM users WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(UserAuth {
            source: auth_source_from_db(&row.try_get::<String, _>("source")?)?,
            password_hash: row.try_get("password_hash")?,
            totp_secret: row.try_get("totp_secret")?,
            totp_confirmed: bool_from_db("users", row.try_get("totp_confirmed")?)?,
        }))
    }

    /// Replaces how the user with this id logs in; [`StoreError::NotFound`] if there is none.
    pub async fn set_user_auth(&self, id: &UserId, auth: &UserAuth) -> Result<()> {
        let done = sqlx::query(
            "UPDATE users SET source = $2, password_hash = $3, totp_secret = $4,
               totp_confirmed = $5 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(auth_source_to_db(&auth.source))
        .bind(auth.password_hash.clone())
        .bind(auth.totp_secret.clone())
        .bind(bool_to_db(auth.totp_confirmed))
        .execute(&self.pool)
        .await?;
        found_or(done.rows_affected(), "user", id.as_str())
    }

    // ----- hosts, pools, resources -----

    /// Inserts or replaces a host, health included. A new host gets the settings `{}`; an
    /// existing one keeps its own (see [`Store::set_host_settings`]).
    pub async fn upsert_host(&self, host: &Host) -> Result<()> {
        let (health, since, reason) = health_to_db(&host.health)?;
        sqlx::query(
            "INSERT INTO hosts (id, name, protocol, address, port, max_sessions, draining, weight,
                                health, health_since, health_reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, protocol = excluded.protocol,
               address = excluded.address, port = excluded.port,
               max_sessions = excluded.max_sessions, draining = excluded.draining,
               weight = excluded.weight, health = excluded.health,
               health_since = excluded.health_since, health_reason = excluded.health_reason",
        )
        .bind(host.id.as_str())
        .bind(host.name.as_str())
        .bind(protocol_to_db(host.protocol)?)
        .bind(host.address.as_str())
        .bind(i64::from(host.port))
        .bind(i64::from(host.max_sessions))
        .bind(bool_to_db(host.draining))
        .bind(i64::from(host.weight))
        .bind(health)
        .bind(since)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The host with this id.
    pub async fn get_host(&self, id: &HostId) -> Result<Option<Host>> {
        let row = sqlx::query(HOST_COLUMNS_BY_ID)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(host_from_row).transpose()
    }

    /// Every host, by id.
    pub async fn list_hosts(&self) -> Result<Vec<Host>> {
        let rows = sqlx::query(HOST_COLUMNS_ALL).fetch_all(&self.pool).await?;
        rows.iter().map(host_from_row).collect()
    }

    /// Deletes a host (it leaves its pools; its sessions' records stay); `false` if there was none.
    pub async fn delete_host(&self, id: &HostId) -> Result<bool> {
        self.delete("DELETE FROM hosts WHERE id = $1", id.as_str())
            .await
    }

    /// Writes the health of the host with this id (a probe's result), and nothing else;
    /// [`StoreError::NotFound`] if there is none.
    pub async fn set_host_health(&self, id: &HostId, health: &Health) -> Result<()> {
        let (health, since, reason) = health_to_db(health)?;
        let done = sqlx::query(
            "UPDATE hosts SET health = $2, health_since = $3, health_reason = $4 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(health)
        .bind(since)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        found_or(done.rows_affected(), "host", id.as_str())
    }

    /// The connection settings of the host with this id (a JSON document owned by the gateway,
    /// `{}` until set); `None` if there is no such host.
    pub async fn get_host_settings(&self, id: &HostId) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT settings FROM hosts WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Replaces the connection settings of the host with this id, stored as given (the store
    /// does not parse them); [`StoreError::NotFound`] if there is no such host.
    pub async fn set_host_settings(&self, id: &HostId, settings: &str) -> Result<()> {
        let done = sqlx::query("UPDATE hosts SET settings = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(settings)
            .execute(&self.pool)
            .await?;
        found_or(done.rows_affected(), "host", id.as_str())
    }

    /// Inserts or replaces a pool and its member list (in order).
    pub async fn upsert_pool(&self, pool: &Pool) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO pools (id, name, balancing) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, balancing = excluded.balancing",
        )
        .bind(pool.id.as_str())
        .bind(pool.name.as_str())
        .bind(balancing_to_db(pool.balancing)?)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM pool_hosts WHERE pool_id = $1")
            .bind(pool.id.as_str())
            .execute(&mut *tx)
            .await?;
        for (position, host) in (0_i64..).zip(&pool.hosts) {
            sqlx::query("INSERT INTO pool_hosts (pool_id, host_id, position) VALUES ($1, $2, $3)")
                .bind(pool.id.as_str())
                .bind(host.as_str())
                .bind(position)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The pool with this id, with its hosts.
    pub async fn get_pool(&self, id: &PoolId) -> Result<Option<Pool>> {
        Ok(self
            .list_pools()
            .await?
            .into_iter()
            .find(|pool| pool.id == *id))
    }

    /// Every pool, by id, with its hosts in order.
    pub async fn list_pools(&self) -> Result<Vec<Pool>> {
        let rows = sqlx::query("SELECT id, name, balancing FROM pools ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        let mut pools = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.try_get("id")?;
            let name: String = row.try_get("name")?;
            let balancing: String = row.try_get("balancing")?;
            pools.push(Pool::new(
                PoolId::new(id),
                name,
                Vec::new(),
                balancing_from_db(&balancing)?,
            ));
        }
        let members =
            sqlx::query("SELECT pool_id, host_id FROM pool_hosts ORDER BY pool_id, position")
                .fetch_all(&self.pool)
                .await?;
        attach_children(
            &mut pools,
            &members,
            |pool| pool.id.as_str(),
            |pool, id| pool.hosts.push(HostId::new(id)),
        )?;
        Ok(pools)
    }

    /// Deletes a pool; refused by the database while resources use it. `false` if there was none.
    pub async fn delete_pool(&self, id: &PoolId) -> Result<bool> {
        self.delete("DELETE FROM pools WHERE id = $1", id.as_str())
            .await
    }

    /// Inserts or replaces a resource. A new resource gets the settings `{}`; an existing one
    /// keeps its own (see [`Store::set_resource_settings`]).
    pub async fn upsert_resource(&self, resource: &Resource) -> Result<()> {
        let (kind, program) = match &resource.kind {
            ResourceKind::Desktop => ("desktop", None),
            ResourceKind::Application { program } => ("application", Some(program.clone())),
            other => return Err(unsupported(other)),
        };
        sqlx::query(
            "INSERT INTO resources (id, kind, program, name_fr, name_en, pool_id)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, program = excluded.program,
               name_fr = excluded.name_fr, name_en = excluded.name_en, pool_id = excluded.pool_id",
        )
        .bind(resource.id.as_str())
        .bind(kind)
        .bind(program)
        .bind(resource.name_fr.as_str())
        .bind(resource.name_en.as_str())
        .bind(resource.pool.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The resource with this id.
    pub async fn get_resource(&self, id: &ResourceId) -> Result<Option<Resource>> {
        let row = sqlx::query(
            "SELECT id, kind, program, name_fr, name_en, pool_id FROM resources WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(resource_from_row).transpose()
    }

    /// Every resource, by id.
    pub async fn list_resources(&self) -> Result<Vec<Resource>> {
        let rows = sqlx::query(
            "SELECT id, kind, program, name_fr, name_en, pool_id FROM resources ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(resource_from_row).collect()
    }

    /// Deletes a resource and its entitlements; `false` if there was none.
    pub async fn delete_resource(&self, id: &ResourceId) -> Result<bool> {
        self.delete("DELETE FROM resources WHERE id = $1", id.as_str())
            .await
    }

    /// The connection settings of the resource with this id (a JSON document owned by the
    /// gateway, `{}` until set); `None` if there is no such resource.
    pub async fn get_resource_settings(&self, id: &ResourceId) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT settings FROM resources WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Replaces the connection settings of the resource with this id, stored as given (the store
    /// does not parse them); [`StoreError::NotFound`] if there is no such resource.
    pub async fn set_resource_settings(&self, id: &ResourceId, settings: &str) -> Result<()> {
        let done = sqlx::query("UPDATE resources SET settings = $2 WHERE id = $1")
            .bind(id.as_str())
            .bind(settings)
            .execute(&self.pool)
            .await?;
        found_or(done.rows_affected(), "resource", id.as_str())
    }

    // ----- entitlements, policies -----

    /// Grants an entitlement (no-op if already granted).
    pub async fn add_entitlement(&self, entitlement: &Entitlement) -> Result<()> {
        let (kind, id) = subject_to_db(&entitlement.subject)?;
        sqlx::query(
            "INSERT INTO entitlements (subject_kind, subject_id, resource_id) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(kind)
        .bind(id)
        .bind(entitlement.resource.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every entitlement, by subject then resource.
    pub async fn list_entitlements(&self) -> Result<Vec<Entitlement>> {
        let rows = sqlx::query(
            "SELECT subject_kind, subject_id, resource_id FROM entitlements
             ORDER BY subject_kind, subject_id, resource_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let kind: String = row.try_get(0)?;
                let id: String = row.try_get(1)?;
                let resource: String = row.try_get(2)?;
                Ok(Entitlement {
                    subject: subject_from_db(&kind, id)?,
                    resource: ResourceId::new(resource),
                })
            })
            .collect()
    }

    /// Revokes an entitlement; `false` if it was not granted.
    pub async fn delete_entitlement(&self, entitlement: &Entitlement) -> Result<bool> {
        let (kind, id) = subject_to_db(&entitlement.subject)?;
        let done = sqlx::query(
            "DELETE FROM entitlements WHERE subject_kind = $1 AND subject_id = $2 AND resource_id = $3",
        )
        .bind(kind)
        .bind(id)
        .bind(entitlement.resource.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Inserts or replaces the policy of its scope (one per scope).
    pub async fn upsert_policy(&self, scoped: &ScopedPolicy) -> Result<()> {
        let (kind, id) = scope_to_db(&scoped.scope)?;
        let policy = &scoped.policy;
        sqlx::query(
            "INSERT INTO policies (scope_kind, scope_id, clipboard_in, clipboard_out, file_transfer,
                                   max_bandwidth_kbps, idle_timeout_secs, disconnected_keep_secs,
                                   allowed_hours)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (scope_kind, scope_id) DO UPDATE SET
               clipboard_in = excluded.clipboard_in, clipboard_out = excluded.clipboard_out,
               file_transfer = excluded.file_transfer,
               max_bandwidth_kbps = excluded.max_bandwidth_kbps,
               idle_timeout_secs = excluded.idle_timeout_secs,
               disconnected_keep_secs = excluded.disconnected_keep_secs,
               allowed_hours = excluded.allowed_hours",
        )
        .bind(kind)
        .bind(id)
        .bind(policy.clipboard_in.map(bool_to_db))
        .bind(policy.clipboard_out.map(bool_to_db))
        .bind(policy.file_transfer.map(bool_to_db))
        .bind(policy.max_bandwidth_kbps.map(limit_to_db))
        .bind(policy.idle_timeout_secs.map(limit_to_db))
        .bind(policy.disconnected_keep_secs.map(i64::from))
        .bind(policy.allowed_hours.as_ref().map(hours_to_db))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The policy of `scope`, if one is set.
    pub async fn get_policy(&self, scope: &PolicyScope) -> Result<Option<ScopedPolicy>> {
        let (kind, id) = scope_to_db(scope)?;
        let row = sqlx::query(
            "SELECT scope_kind, scope_id, clipboard_in, clipboard_out, file_transfer,
                    max_bandwidth_kbps, idle_timeout_secs, disconnected_keep_secs, allowed_hours
             FROM policies WHERE scope_kind = $1 AND scope_id = $2",
        )
        .bind(kind)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(policy_from_row).transpose()
    }

    /// Every policy, by scope.
    pub async fn list_policies(&self) -> Result<Vec<ScopedPolicy>> {
        let rows = sqlx::query(
            "SELECT scope_kind, scope_id, clipboard_in, clipboard_out, file_transfer,
                    max_bandwidth_kbps, idle_timeout_secs, disconnected_keep_secs, allowed_hours
             FROM policies ORDER BY scope_kind, scope_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(policy_from_row).collect()
    }

    /// Deletes the policy of `scope`; `false` if there was none.
    pub async fn delete_policy(&self, scope: &PolicyScope) -> Result<bool> {
        let (kind, id) = scope_to_db(scope)?;
        let done = sqlx::query("DELETE FROM policies WHERE scope_kind = $1 AND scope_id = $2")
            .bind(kind)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    // ----- settings, world -----

    /// The value of the setting `key`, if set.
    pub async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Sets (inserts or replaces) the setting `key`. The key `licence_capacity` belongs to
    /// [`Store::set_licence_capacity`].
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets the licence capacity that [`Store::load_world`] reports.
    pub async fn set_licence_capacity(&self, capacity: u32) -> Result<()> {
        self.set_setting(LICENCE_CAPACITY_KEY, &capacity.to_string())
            .await
    }

    /// The licence capacity; 0 (no launch) until set.
    pub async fn licence_capacity(&self) -> Result<u32> {
        match self.get_setting(LICENCE_CAPACITY_KEY).await? {
            None => Ok(0),
            Some(text) => text
                .parse()
                .map_err(|_| corrupt("settings", format!("licence capacity {text:?}"))),
        }
    }

    /// The snapshot [`bascule_domain::broker::decide_launch`] needs: the whole inventory and access
    /// rules, the live sessions and the licence capacity, with the caller's defaults and offset.
    ///
    /// The reads are not one transaction: the snapshot is advice, and
    /// [`Store::record_session_start`] re-checks the limits atomically.
    pub async fn load_world(
        &self,
        defaults: EffectivePolicy,
        utc_offset_seconds: i32,
    ) -> Result<World> {
        let capacity = self.licence_capacity().await?;
        let mut world = World::new(LicencePool::new(capacity), defaults, utc_offset_seconds);
        world.users = self.list_users().await?;
        world.groups = self.list_groups().await?;
        world.hosts = self.list_hosts().await?;
        world.pools = self.list_pools().await?;
        world.resources = self.list_resources().await?;
        world.entitlements = self.list_entitlements().await?;
        world.policies = self.list_policies().await?;
        world.sessions = self.live_sessions().await?;
        Ok(world)
    }

    // ----- sessions -----

    /// Records a new session, unless `capacity` live sessions exist already or its host carries
    /// its `max_sessions` live ones: then [`StoreError::CapacityExceeded`] and nothing is written.
    ///
    /// The check and the insert are one serialised transaction (`BEGIN IMMEDIATE` on SQLite; on
    /// PostgreSQL a self-conflicting lock on `sessions` plus `FOR UPDATE` on the host row), so
    /// concurrent starts from several gateways never over-spend.
    pub async fn record_session_start(&self, record: &SessionRecord, capacity: u32) -> Result<()> {
        let mut tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("LOCK TABLE sessions IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        };
        let host_sql = match self.backend {
            Backend::Sqlite => "SELECT max_sessions FROM hosts WHERE id = $1",
            Backend::Postgres => "SELECT max_sessions FROM hosts WHERE id = $1 FOR UPDATE",
        };
        let max_sessions: Option<i64> = sqlx::query_scalar(host_sql)
            .bind(record.host().as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(max_sessions) = max_sessions else {
            return Err(StoreError::NotFound {
                kind: "host",
                id: record.host().to_string(),
            });
        };
        let max_sessions = u32_from_db("hosts", max_sessions)?;
        let live_total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE state IN ('starting', 'active', 'disconnected')",
        )
        .fetch_one(&mut *tx)
        .await?;
        let live_on_host: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions
             WHERE host_id = $1 AND state IN ('starting', 'active', 'disconnected')",
        )
        .bind(record.host().as_str())
        .fetch_one(&mut *tx)
        .await?;
        let is_live = record.is_live();
        if is_live && live_total >= i64::from(capacity) {
            return Err(StoreError::CapacityExceeded(CapacityLimit::Licences {
                capacity,
            }));
        }
        if is_live && live_on_host >= i64::from(max_sessions) {
            return Err(StoreError::CapacityExceeded(CapacityLimit::Host {
                host: record.host().clone(),
                max_sessions,
            }));
        }
        let (state, state_at, reason) = state_to_db(record.state())?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, resource_id, host_id, state, state_at, state_reason,
                                   started_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(record.id().as_str())
        .bind(record.user().as_str())
        .bind(record.resource().as_str())
        .bind(record.host().as_str())
        .bind(state)
        .bind(state_at)
        .bind(reason)
        .bind(record.started_at().unix_seconds())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Writes a session's new state (the caller ran the domain's transition).
    pub async fn update_session_state(&self, id: &SessionId, state: SessionState) -> Result<()> {
        let (kind, at, reason) = state_to_db(state)?;
        let done = sqlx::query(
            "UPDATE sessions SET state = $2, state_at = $3, state_reason = $4 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(kind)
        .bind(at)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "session",
                id: id.to_string(),
            });
        }
        Ok(())
    }

    /// The session with this id.
    pub async fn get_session(&self, id: &SessionId) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT id, user_id, resource_id, host_id, state, state_at, state_reason, started_at
             FROM sessions WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// The live sessions (starting, active, disconnected), oldest first.
    pub async fn live_sessions(&self) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(
            "SELECT id, user_id, resource_id, host_id, state, state_at, state_reason, started_at
             FROM sessions WHERE state IN ('starting', 'active', 'disconnected')
             ORDER BY started_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    /// Every session of `user`, live or not, oldest first.
    pub async fn sessions_of_user(&self, user: &UserId) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(
            "SELECT id, user_id, resource_id, host_id, state, state_at, state_reason, started_at
             FROM sessions WHERE user_id = $1 ORDER BY started_at, id",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    /// The sessions started in `[from, to)`, live or not, newest first.
    pub async fn sessions_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<SessionRecord>> {
        let rows = sqlx::query(
            "SELECT id, user_id, resource_id, host_id, state, state_at, state_reason, started_at
             FROM sessions WHERE started_at >= $1 AND started_at < $2
             ORDER BY started_at DESC, id DESC",
        )
        .bind(from.unix_seconds())
        .bind(to.unix_seconds())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    /// The number of live sessions (starting, active, disconnected) per host, by host id; hosts
    /// without live sessions are absent. A host's sessions count even once the host is deleted.
    pub async fn session_count_by_host(&self) -> Result<Vec<(HostId, u32)>> {
        let rows = sqlx::query(
            "SELECT host_id, COUNT(*) FROM sessions
             WHERE state IN ('starting', 'active', 'disconnected')
             GROUP BY host_id ORDER BY host_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let host: String = row.try_get(0)?;
                Ok((HostId::new(host), u32_from_db("sessions", row.try_get(1)?)?))
            })
            .collect()
    }

    // ----- licence samples, audit -----

    /// Records one licence-usage sample.
    pub async fn record_licence_sample(&self, sample: LicenceSample) -> Result<()> {
        sqlx::query("INSERT INTO licence_usage (at, in_use, capacity) VALUES ($1, $2, $3)")
            .bind(sample.at.unix_seconds())
            .bind(i64::from(sample.in_use))
            .bind(i64::from(sample.capacity))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The samples taken in `[from, to)`, oldest first.
    pub async fn licence_samples_between(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<LicenceSample>> {
        let rows = sqlx::query(
            "SELECT at, in_use, capacity FROM licence_usage WHERE at >= $1 AND at < $2 ORDER BY at",
        )
        .bind(from.unix_seconds())
        .bind(to.unix_seconds())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LicenceSample {
                    at: Timestamp::from_unix_seconds(row.try_get(0)?),
                    in_use: u32_from_db("licence_usage", row.try_get(1)?)?,
                    capacity: u32_from_db("licence_usage", row.try_get(2)?)?,
                })
            })
            .collect()
    }

    /// Appends one line to the audit log.
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit (at, actor, action, target, address, outcome)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(entry.at.unix_seconds())
        .bind(entry.actor.as_str())
        .bind(entry.action.as_str())
        .bind(entry.target.as_str())
        .bind(entry.address.clone())
        .bind(entry.outcome.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The audit lines in `[from, to)`, in the order they were appended.
    pub async fn audit_between(&self, from: Timestamp, to: Timestamp) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at, actor, action, target, address, outcome FROM audit
             WHERE at >= $1 AND at < $2 ORDER BY at, id",
        )
        .bind(from.unix_seconds())
        .bind(to.unix_seconds())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    /// The newest audit lines at or after `from`, by `actor` and/or about `target` (either or
    /// both; an action prefix narrows further), at most `limit`, newest first. Indexed: it serves
    /// the console's user and host pages on a site with months of audit.
    pub async fn audit_recent(&self, filter: &AuditFilter<'_>, from: Timestamp, limit: u32) -> Result<Vec<AuditEntry>> {
        let mut sql = String::from("SELECT at, actor, action, target, address, outcome FROM audit WHERE at >= $1");
        let mut binds: Vec<String> = Vec::new();
        if let Some(actor) = filter.actor {
            binds.push(actor.to_owned());
            sql.push_str(&format!(" AND actor = ${}", binds.len() + 1));
        }
        if let Some(target) = filter.target {
            binds.push(target.to_owned());
            sql.push_str(&format!(" AND target = ${}", binds.len() + 1));
        }
        if let Some(prefix) = filter.action_prefix {
            // LIKE with the prefix's own wildcards escaped.
            let escaped = prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            binds.push(format!("{escaped}%"));
            sql.push_str(&format!(" AND action LIKE ${} ESCAPE '\\'", binds.len() + 1));
        }
        sql.push_str(&format!(" ORDER BY at DESC, id DESC LIMIT {limit}"));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(from.unix_seconds());
        for bind in &binds {
            query = query.bind(bind.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn delete(&self, sql: &'static str, id: &str) -> Result<bool> {
        let done = sqlx::query(sql).bind(id).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    /// A transaction that will write after reading: `BEGIN IMMEDIATE` on SQLite, so that it
    /// waits for the write lock up front instead of failing to upgrade a read snapshot.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

/// `Ok` if an update by id changed a row, [`StoreError::NotFound`] otherwise.
fn found_or(rows_affected: u64, kind: &'static str, id: &str) -> Result<()> {
    if rows_affected == 0 {
        return Err(StoreError::NotFound {
            kind,
            id: id.to_owned(),
        });
    }
    Ok(())
}

fn health_to_db(health: &Health) -> Result<(&'static str, Option<i64>, Option<String>)> {
    Ok(match health {
        Health::Unknown => ("unknown", None, None),
        Health::Healthy => ("healthy", None, None),
        Health::Unhealthy { since, reason } => (
            "unhealthy",
            Some(since.unix_seconds()),
            Some(reason.clone()),
        ),
        other => return Err(unsupported(other)),
    })
}

const HOST_COLUMNS_BY_ID: &str = "SELECT id, name, protocol, address, port, max_sessions, draining,
    weight, health, health_since, health_reason FROM hosts WHERE id = $1";
const HOST_COLUMNS_ALL: &str = "SELECT id, name, protocol, address, port, max_sessions, draining,
    weight, health, health_since, health_reason FROM hosts ORDER BY id";

fn user_from_row(row: &AnyRow) -> Result<User> {
    let id: String = row.try_get("id")?;
    let login: String = row.try_get("login")?;
    let display_name: String = row.try_get("display_name")?;
    let mut user = User::new(UserId::new(id), login, display_name);
    user.enabled = bool_from_db("users", row.try_get("enabled")?)?;
    user.roles = roles_from_db(&row.try_get::<String, _>("roles")?)?;
    Ok(user)
}

fn group_from_row(row: &AnyRow) -> Result<Group> {
    let id: String = row.try_get("id")?;
    let name: String = row.try_get("name")?;
    Ok(Group::new(GroupId::new(id), name))
}

fn host_from_row(row: &AnyRow) -> Result<Host> {
    let id: String = row.try_get("id")?;
    let port: i64 = row.try_get("port")?;
    let port = u16::try_from(port).map_err(|_| corrupt("hosts", format!("port {port}")))?;
    let mut host = Host::new(
        HostId::new(id),
        row.try_get::<String, _>("name")?,
        protocol_from_db(&row.try_get::<String, _>("protocol")?)?,
        row.try_get::<String, _>("address")?,
        port,
        u32_from_db("hosts", row.try_get("max_sessions")?)?,
    );
    host.draining = bool_from_db("hosts", row.try_get("draining")?)?;
    host.weight = u32_from_db("hosts", row.try_get("weight")?)?;
    let health: String = row.try_get("health")?;
    host.health = match health.as_str() {
        "unknown" => Health::Unknown,
        "healthy" => Health::Healthy,
        "unhealthy" => {
            let since: Option<i64> = row.try_get("health_since")?;
            let reason: Option<String> = row.try_get("health_reason")?;
            Health::Unhealthy {
                since: Timestamp::from_unix_seconds(
                    since.ok_or_else(|| corrupt("hosts", "unhealthy without health_since"))?,
                ),
                reason: reason.unwrap_or_default(),
            }
        }
        other => return Err(corrupt("hosts", format!("health {other:?}"))),
    };
    Ok(host)
}

fn resource_from_row(row: &AnyRow) -> Result<Resource> {
    let id: String = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    let program: Option<String> = row.try_get("program")?;
    let kind = match (kind.as_str(), program) {
        ("desktop", _) => ResourceKind::Desktop,
        ("application", Some(program)) => ResourceKind::Application { program },
        (other, _) => return Err(corrupt("resources", format!("kind {other:?}"))),
    };
    let pool: String = row.try_get("pool_id")?;
    Ok(Resource::new(
        ResourceId::new(id),
        kind,
        row.try_get::<String, _>("name_fr")?,
        row.try_get::<String, _>("name_en")?,
        PoolId::new(pool),
    ))
}

fn subject_to_db(subject: &Subject) -> Result<(&'static str, &str)> {
    match subject {
        Subject::User(id) => Ok(("user", id.as_str())),
        Subject::Group(id) => Ok(("group", id.as_str())),
        other => Err(unsupported(other)),
    }
}

fn subject_from_db(kind: &str, id: String) -> Result<Subject> {
    match kind {
        "user" => Ok(Subject::User(UserId::new(id))),
        "group" => Ok(Subject::Group(GroupId::new(id))),
        other => Err(corrupt("entitlements", format!("subject kind {other:?}"))),
    }
}

fn scope_to_db(scope: &PolicyScope) -> Result<(&'static str, &str)> {
    match scope {
        PolicyScope::Group(id) => Ok(("group", id.as_str())),
        PolicyScope::Resource(id) => Ok(("resource", id.as_str())),
        other => Err(unsupported(other)),
    }
}

fn policy_from_row(row: &AnyRow) -> Result<ScopedPolicy> {
    let kind: String = row.try_get("scope_kind")?;
    let id: String = row.try_get("scope_id")?;
    let scope = match kind.as_str() {
        "group" => PolicyScope::Group(GroupId::new(id)),
        "resource" => PolicyScope::Resource(ResourceId::new(id)),
        other => return Err(corrupt("policies", format!("scope kind {other:?}"))),
    };
    let flag = |column: &str| -> Result<Option<bool>> {
        row.try_get::<Option<i64>, _>(column)?
            .map(|value| bool_from_db("policies", value))
            .transpose()
    };
    let limit = |column: &str| -> Result<_> {
        row.try_get::<Option<i64>, _>(column)?
            .map(limit_from_db)
            .transpose()
    };
    let mut policy = Policy::default();
    policy.clipboard_in = flag("clipboard_in")?;
    policy.clipboard_out = flag("clipboard_out")?;
    policy.file_transfer = flag("file_transfer")?;
    policy.max_bandwidth_kbps = limit("max_bandwidth_kbps")?;
    policy.idle_timeout_secs = limit("idle_timeout_secs")?;
    policy.disconnected_keep_secs = row
        .try_get::<Option<i64>, _>("disconnected_keep_secs")?
        .map(|value| u32_from_db("policies", value))
        .transpose()?;
    policy.allowed_hours = row
        .try_get::<Option<String>, _>("allowed_hours")?
        .map(|text| hours_from_db(&text))
        .transpose()?;
    Ok(ScopedPolicy { scope, policy })
}

fn state_to_db(state: SessionState) -> Result<(&'static str, Option<i64>, Option<&'static str>)> {
    Ok(match state {
        SessionState::Starting => ("starting", None, None),
        SessionState::Active => ("active", None, None),
        SessionState::Disconnected { since } => ("disconnected", Some(since.unix_seconds()), None),
        SessionState::Ended { at, reason } => (
            "ended",
            Some(at.unix_seconds()),
            Some(end_reason_to_db(reason)?),
        ),
        SessionState::Failed { at, reason } => (
            "failed",
            Some(at.unix_seconds()),
            Some(fail_reason_to_db(reason)?),
        ),
        other => return Err(unsupported(other)),
    })
}

fn session_from_row(row: &AnyRow) -> Result<SessionRecord> {
    let state: String = row.try_get("state")?;
    let at: Option<i64> = row.try_get("state_at")?;
    let reason: Option<String> = row.try_get("state_reason")?;
    let at = || {
        at.map(Timestamp::from_unix_seconds)
            .ok_or_else(|| corrupt("sessions", format!("{state} without state_at")))
    };
    let reason = || {
        reason
            .clone()
            .ok_or_else(|| corrupt("sessions", format!("{state} without state_reason")))
    };
    let state = match state.as_str() {
        "starting" => SessionState::Starting,
        "active" => SessionState::Active,
        "disconnected" => SessionState::Disconnected { since: at()? },
        "ended" => SessionState::Ended {
            at: at()?,
            reason: end_reason_from_db(&reason()?)?,
        },
        "failed" => SessionState::Failed {
            at: at()?,
            reason: fail_reason_from_db(&reason()?)?,
        },
        other => return Err(corrupt("sessions", format!("state {other:?}"))),
    };
    Ok(SessionRecord::restore(
        SessionId::new(row.try_get::<String, _>("id")?),
        UserId::new(row.try_get::<String, _>("user_id")?),
        ResourceId::new(row.try_get::<String, _>("resource_id")?),
        HostId::new(row.try_get::<String, _>("host_id")?),
        state,
        Timestamp::from_unix_seconds(row.try_get("started_at")?),
    ))
}

/// Adds, to each parent, the child ids of `(parent id, child id)` rows, in row order
/// (group memberships of users, hosts of pools).
fn attach_children<P>(
    parents: &mut [P],
    rows: &[sqlx::any::AnyRow],
    id_of: impl Fn(&P) -> &str,
    mut attach: impl FnMut(&mut P, String),
) -> Result<()> {
    for row in rows {
        let parent: String = row.try_get(0)?;
        let child: String = row.try_get(1)?;
        if let Some(found) = parents.iter_mut().find(|p| id_of(p) == parent) {
            attach(found, child);
        }
    }
    Ok(())
}
