//! [`Admin`]: every administration operation, authorised against the [`Actor`]'s roles, checked,
//! applied to the store, and audited.
//!
//! Reads need [`Action::ViewConsole`]; hosts, pools and resources need
//! [`Action::ManageInventory`]; users, groups, entitlements, policies and the licence capacity
//! need [`Action::ManageAccess`]; a TOTP reset needs [`Action::ResetTotp`].
//!
//! Every mutating method appends one audit entry (`host.put`, `user.totp_reset`, …) with the
//! outcome `ok` or `refused: <code>` (`error: store` when the database failed). If the audit entry
//! cannot be written after a successful change, the method returns the database error: the change
//! is made, but the caller learns that its trace is missing.
//!
//! The checks and the writes are not one transaction: two administrators changing the same
//! objects at the same moment may interleave (the last write wins). The store's own constraints
//! (foreign keys, unique logins) still hold.

use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bascule_domain::access::{Action, Entitlement, Group, Role, Subject, User, is_entitled};
use bascule_domain::id::{GroupId, HostId, PoolId, ResourceId, UserId};
use bascule_domain::inventory::{Balancing, Health, Host, Pool, Protocol, Resource, ResourceKind};
use bascule_domain::policy::{
    EffectivePolicy, Limit, Policy, PolicyScope, ScopedPolicy, Source, explain_effective_policy,
};
use bascule_domain::session::{SessionRecord, SessionState};
use bascule_domain::time::{AllowedHours, Timestamp};
use bascule_secrets::SecretKey;
use bascule_store::{AuditEntry, AuthSource, Store, StoreError, UserAuth};

use crate::error::{AdminError, Conflict, Kind, Lang, Reason};
use crate::hours::format_window;
use crate::settings::{HostSettings, ResourceSettings};
use crate::spec::{
    EntitlementSpec, GroupSpec, HostSpec, LicenceSpec, PasswordChange, PasswordSpec, PolicySpec,
    PoolSpec, ResourceSpec, SubjectSpec, UserSpec, check_id, protocol_word, role_word,
};
use crate::view::{
    EffectivePolicyView, EntitlementView, Explained, GroupView, HealthView, HostView, LicenceView,
    PolicyView, PoolView, ResourceView, SessionView, UserView,
};

type Result<T, E = AdminError> = std::result::Result<T, E>;

/// Who is asking: the authenticated administrator (or helpdesk agent), as the gateway's
/// middleware or the CLI established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The login, written to the audit log.
    pub login: String,
    /// The roles the actor holds now.
    pub roles: Vec<Role>,
    /// The client's address, for the audit log.
    pub address: Option<String>,
    /// The language of the messages the actor reads.
    pub lang: Lang,
}

impl Actor {
    /// An actor with these roles, no address, French messages.
    pub fn new(login: impl Into<String>, roles: Vec<Role>) -> Actor {
        Actor {
            login: login.into(),
            roles,
            address: None,
            lang: Lang::Fr,
        }
    }

    /// Whether one of the actor's roles allows `action`.
    pub fn can(&self, action: Action) -> bool {
        self.roles.iter().any(|role| role.can(action))
    }
}

/// Receives a copy of every audit entry the service writes (the gateway's audit file).
pub type AuditMirror = Arc<dyn Fn(&AuditEntry) + Send + Sync>;

/// The administration service.
#[derive(Clone)]
pub struct Admin {
    store: Store,
    key: Arc<SecretKey>,
    allow_insecure_certificates: bool,
    defaults: EffectivePolicy,
    mirror: Option<AuditMirror>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("allow_insecure_certificates", &self.allow_insecure_certificates)
            .finish_non_exhaustive()
    }
}

fn now() -> Timestamp {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp::from_unix_seconds(seconds)
}

fn corrupt(table: &'static str, error: serde_json::Error) -> AdminError {
    AdminError::Store(StoreError::Corrupt {
        table,
        detail: format!("settings: {error}"),
    })
}

/// The id of a `PUT`: the URL's (`path`), which the body (`body`) may repeat but not contradict.
fn id_from_path(field: &str, path: Option<&str>, body: &str) -> Result<String> {
    match path {
        None => Ok(body.to_string()),
        Some(path) if body.is_empty() || body == path => Ok(path.to_string()),
        Some(path) => Err(AdminError::invalid(
            field,
            Reason::PathMismatch {
                expected: path.chars().take(80).collect(),
            },
        )),
    }
}

fn not_found(kind: Kind, id: impl Into<String>) -> AdminError {
    AdminError::NotFound {
        kind,
        id: id.into(),
    }
}

fn limit_value(limit: Limit) -> u32 {
    match limit {
        Limit::Unlimited => 0,
        Limit::AtMost(value) => value,
    }
}

fn hours_texts(hours: &AllowedHours) -> Vec<String> {
    hours.windows().iter().map(format_window).collect()
}

fn source_text(source: &Source) -> String {
    match source {
        Source::Default => "default".into(),
        Source::Resource => "resource".into(),
        Source::Group(group) => format!("group:{group}"),
        Source::Groups(groups) => {
            let ids: Vec<&str> = groups.iter().map(GroupId::as_str).collect();
            format!("groups:{}", ids.join(","))
        }
        _ => "other".into(),
    }
}

fn scope_parts(scope: &PolicyScope) -> (&'static str, String) {
    match scope {
        PolicyScope::Group(id) => ("group", id.to_string()),
        PolicyScope::Resource(id) => ("resource", id.to_string()),
        _ => ("other", String::new()),
    }
}

fn policy_view(scoped: &ScopedPolicy) -> PolicyView {
    let (scope, id) = scope_parts(&scoped.scope);
    let policy = &scoped.policy;
    PolicyView {
        scope: scope.into(),
        id,
        clipboard_in: policy.clipboard_in,
        clipboard_out: policy.clipboard_out,
        file_transfer: policy.file_transfer,
        max_bandwidth_kbps: policy.max_bandwidth_kbps.map(limit_value),
        idle_timeout_secs: policy.idle_timeout_secs.map(limit_value),
        disconnected_keep_secs: policy.disconnected_keep_secs,
        allowed_hours: policy.allowed_hours.as_ref().map(hours_texts),
    }
}

fn health_view(health: &Health) -> HealthView {
    match health {
        Health::Healthy => HealthView {
            state: "healthy".into(),
            since: None,
            reason: None,
        },
        Health::Unhealthy { since, reason } => HealthView {
            state: "unhealthy".into(),
            since: Some(since.unix_seconds()),
            reason: Some(reason.clone()),
        },
        _ => HealthView {
            state: "unknown".into(),
            since: None,
            reason: None,
        },
    }
}

fn balancing_word(balancing: Balancing) -> &'static str {
    match balancing {
        Balancing::Weighted => "weighted",
        _ => "fewest_sessions",
    }
}

fn resource_view(resource: &Resource, settings: ResourceSettings) -> ResourceView {
    let (kind, program) = match &resource.kind {
        ResourceKind::Application { program } => ("application", Some(program.clone())),
        _ => ("desktop", None),
    };
    ResourceView {
        id: resource.id.to_string(),
        kind: kind.into(),
        program,
        name_fr: resource.name_fr.clone(),
        name_en: resource.name_en.clone(),
        pool: resource.pool.to_string(),
        icon: settings.icon,
        working_dir: settings.working_dir,
    }
}

fn user_view(user: &User, auth: Option<UserAuth>) -> UserView {
    let auth = auth.unwrap_or_default();
    UserView {
        id: user.id.to_string(),
        login: user.login.clone(),
        display_name: user.display_name.clone(),
        roles: user
            .roles
            .iter()
            .map(|&role| role_word(role).into())
            .collect(),
        groups: user.groups.iter().map(ToString::to_string).collect(),
        enabled: user.enabled,
        source: match auth.source {
            AuthSource::Directory => "directory".into(),
            _ => "local".into(),
        },
        password_set: auth.password_hash.is_some(),
        totp_enrolled: auth.totp_secret.is_some() && auth.totp_confirmed,
    }
}

/// The login of `id` among `users`, or the id itself if the account is gone.
fn login_of(users: &[User], id: &UserId) -> String {
    users
        .iter()
        .find(|user| user.id == *id)
        .map_or_else(|| id.to_string(), |user| user.login.clone())
}

fn entitlement_view(entitlement: &Entitlement, users: &[User]) -> EntitlementView {
    let (user, group) = match &entitlement.subject {
        Subject::User(id) => (Some(login_of(users, id)), None),
        Subject::Group(id) => (None, Some(id.to_string())),
        _ => (None, None),
    };
    EntitlementView {
        user,
        group,
        resource: entitlement.resource.to_string(),
    }
}

fn session_view(session: &SessionRecord, users: &[User]) -> SessionView {
    let state = session.state();
    SessionView {
        id: session.id().to_string(),
        user: login_of(users, session.user()),
        resource: session.resource().to_string(),
        host: session.host().to_string(),
        state: state.kind().as_str().into(),
        started_at: session.started_at().unix_seconds(),
        disconnected_since: match state {
            SessionState::Disconnected { since } => Some(since.unix_seconds()),
            _ => None,
        },
    }
}

/// Hashes a password with argon2id (the gateway's parameters) on a blocking thread.
async fn hash_password(password: String) -> Result<String> {
    let hash = tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHasher, SaltString};
        use rand::RngCore;
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).ok()?;
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .ok()
            .map(|hash| hash.to_string())
    })
    .await
    .ok()
    .flatten();
    hash.ok_or_else(|| {
        AdminError::Store(StoreError::Unsupported(
            "the password could not be hashed".into(),
        ))
    })
}

impl Admin {
    /// A service over `store` (migrated), sealing backend passwords with `key`. Insecure
    /// certificate rules are refused and the policy defaults are
    /// [`EffectivePolicy::default`] until set otherwise.
    pub fn new(store: Store, key: Arc<SecretKey>) -> Admin {
        Admin {
            store,
            key,
            allow_insecure_certificates: false,
            defaults: EffectivePolicy::default(),
            mirror: None,
        }
    }

    /// Also hands every audit entry to `mirror` (after it is stored).
    pub fn with_audit_mirror(mut self, mirror: AuditMirror) -> Admin {
        self.mirror = Some(mirror);
        self
    }

    /// Whether hosts may use the `accept-any` certificate rule (demos and tests only).
    pub fn allow_insecure_certificates(mut self, allow: bool) -> Admin {
        self.allow_insecure_certificates = allow;
        self
    }

    /// The site's policy defaults, used by [`Admin::effective_policy`].
    pub fn with_policy_defaults(mut self, defaults: EffectivePolicy) -> Admin {
        self.defaults = defaults;
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The key that seals backend passwords.
    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    fn require(actor: &Actor, action: Action) -> Result<()> {
        if actor.can(action) {
            Ok(())
        } else {
            Err(AdminError::Forbidden)
        }
    }

    /// Runs `work` if `actor` may do `needed`, then appends the audit entry of the outcome.
    async fn audited<T>(
        &self,
        actor: &Actor,
        needed: Action,
        action: &str,
        target: &str,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let result = match Self::require(actor, needed) {
            Ok(()) => work.await,
            Err(error) => Err(error),
        };
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(AdminError::Store(_)) => "error: store".to_string(),
            Err(error) => match error.detail_code() {
                Some(detail) if matches!(error, AdminError::Invalid { .. }) => {
                    format!(
                        "refused: {} ({}: {detail})",
                        error.code(),
                        error.field().unwrap_or("")
                    )
                }
                _ => format!("refused: {}", error.code()),
            },
        };
        if let Err(AdminError::Store(error)) = &result {
            tracing::error!(%error, action, target, "administration request failed in the store");
        }
        let target: String = target.chars().take(200).collect();
        let entry = AuditEntry {
            at: now(),
            actor: actor.login.clone(),
            action: action.to_string(),
            target,
            address: actor.address.clone(),
            outcome,
        };
        if let Some(mirror) = &self.mirror {
            mirror(&entry);
        }
        match self.store.append_audit(&entry).await {
            Ok(()) => result,
            Err(error) => {
                tracing::error!(%error, action, "audit entry could not be written");
                match result {
                    Ok(_) => Err(AdminError::Store(error)),
                    Err(original) => Err(original),
                }
            }
        }
    }

    // ----- hosts -----

    async fn host_settings(&self, id: &HostId) -> Result<HostSettings> {
        match self.store.get_host_settings(id).await? {
            None => Ok(HostSettings::default()),
            Some(text) => HostSettings::from_json(&text).map_err(|error| corrupt("hosts", error)),
        }
    }

    async fn host_view(
        &self,
        host: &Host,
        pools: &[Pool],
        counts: &[(HostId, u32)],
    ) -> Result<HostView> {
        let settings = self.host_settings(&host.id).await?;
        Ok(HostView {
            id: host.id.to_string(),
            name: host.name.clone(),
            protocol: protocol_word(host.protocol).into(),
            address: host.address.clone(),
            port: host.port,
            max_sessions: host.max_sessions,
            weight: host.weight,
            draining: host.draining,
            health: health_view(&host.health),
            certificate: settings.certificate,
            credentials: settings.credentials,
            username: settings.username,
            domain: settings.domain,
            password_set: settings.password.is_some(),
            security: settings.security,
            keyboard: settings.keyboard,
            keyboard_layout: settings.keyboard_layout,
            h264: settings.h264,
            live_sessions: counts
                .iter()
                .find(|(id, _)| *id == host.id)
                .map_or(0, |(_, count)| *count),
            pools: pools
                .iter()
                .filter(|pool| pool.hosts.contains(&host.id))
                .map(|pool| pool.id.to_string())
                .collect(),
        })
    }

    async fn host_view_by_id(&self, id: &HostId) -> Result<HostView> {
        let host = self
            .store
            .get_host(id)
            .await?
            .ok_or_else(|| not_found(Kind::Host, id.as_str()))?;
        let pools = self.store.list_pools().await?;
        let counts = self.store.session_count_by_host().await?;
        self.host_view(&host, &pools, &counts).await
    }

    /// Every host, by id.
    pub async fn list_hosts(&self, actor: &Actor) -> Result<Vec<HostView>> {
        Self::require(actor, Action::ViewConsole)?;
        let hosts = self.store.list_hosts().await?;
        let pools = self.store.list_pools().await?;
        let counts = self.store.session_count_by_host().await?;
        let mut views = Vec::with_capacity(hosts.len());
        for host in &hosts {
            views.push(self.host_view(host, &pools, &counts).await?);
        }
        Ok(views)
    }

    /// One host.
    pub async fn get_host(&self, actor: &Actor, id: &str) -> Result<HostView> {
        Self::require(actor, Action::ViewConsole)?;
        self.host_view_by_id(&HostId::new(id)).await
    }

    /// Creates or replaces the host `id` (`host.put`); `spec.id` must be empty or equal to it.
    /// An absent password keeps the stored one.
    pub async fn put_host(&self, actor: &Actor, id: &str, spec: &HostSpec) -> Result<HostView> {
        self.audited(
            actor,
            Action::ManageInventory,
            "host.put",
            id,
            self.save_host(Some(id), spec, false),
        )
        .await
    }

    /// Creates a host, refused if it exists (`host.create`).
    pub async fn create_host(&self, actor: &Actor, spec: &HostSpec) -> Result<HostView> {
        self.audited(
            actor,
            Action::ManageInventory,
            "host.create",
            &spec.id,
            self.save_host(None, spec, true),
        )
        .await
    }

    async fn save_host(&self, id: Option<&str>, spec: &HostSpec, create: bool) -> Result<HostView> {
        let mut spec = spec.clone();
        spec.id = id_from_path("id", id, &spec.id)?;
        let valid = spec.validate(self.allow_insecure_certificates)?;
        let mut host = valid.host;
        let existing = self.store.get_host(&host.id).await?;
        let old_password = match &existing {
            Some(_) if create => {
                return Err(AdminError::Conflict(Conflict::Exists {
                    kind: Kind::Host,
                    id: host.id.to_string(),
                }));
            }
            Some(old) => {
                host.health = old.health.clone();
                self.host_settings(&host.id).await?.password
            }
            None => None,
        };
        let mut settings = valid.settings;
        settings.password = match valid.password {
            PasswordChange::Keep => old_password,
            PasswordChange::Clear => None,
            PasswordChange::Set(password) => Some(self.key.encrypt(&password)),
        };
        if host.protocol == Protocol::Rdp
            && settings.credentials == crate::settings::CredentialsMode::Service
            && settings.password.is_none()
        {
            return Err(AdminError::invalid(
                "password",
                Reason::ServiceCredentialsNeeded,
            ));
        }
        // The pools this host is in must stay of one protocol, and RDP if they publish applications.
        let pools = self.store.list_pools().await?;
        let hosts = self.store.list_hosts().await?;
        let resources = self.store.list_resources().await?;
        for pool in pools.iter().filter(|pool| pool.hosts.contains(&host.id)) {
            let other = pool
                .hosts
                .iter()
                .filter(|id| **id != host.id)
                .filter_map(|id| hosts.iter().find(|candidate| candidate.id == *id))
                .find(|other| other.protocol != host.protocol);
            if let Some(other) = other {
                return Err(AdminError::invalid(
                    "protocol",
                    Reason::MixedProtocols {
                        pool: pool.id.to_string(),
                        host: host.id.to_string(),
                        protocol: host.protocol,
                        other: other.id.to_string(),
                        other_protocol: other.protocol,
                    },
                ));
            }
            if host.protocol == Protocol::Vnc {
                self.check_pool_takes_vnc(pool, &resources, "protocol")
                    .await?;
            }
        }
        self.store.upsert_host(&host).await?;
        self.store
            .set_host_settings(&host.id, &settings.to_json())
            .await?;
        self.host_view_by_id(&host.id).await
    }

    /// Refuses VNC hosts in a pool that publishes an application or a working directory.
    async fn check_pool_takes_vnc(
        &self,
        pool: &Pool,
        resources: &[Resource],
        field: &str,
    ) -> Result<()> {
        for resource in resources.iter().filter(|resource| resource.pool == pool.id) {
            let rdp_only = matches!(resource.kind, ResourceKind::Application { .. })
                || self
                    .resource_settings(&resource.id)
                    .await?
                    .working_dir
                    .is_some();
            if rdp_only {
                return Err(AdminError::invalid(
                    field,
                    Reason::PublishesApplication {
                        pool: pool.id.to_string(),
                        resource: resource.id.to_string(),
                    },
                ));
            }
        }
        Ok(())
    }

    /// Deletes a host (`host.delete`); refused while it has live sessions or is in a pool.
    pub async fn delete_host(&self, actor: &Actor, id: &str) -> Result<()> {
        self.audited(actor, Action::ManageInventory, "host.delete", id, async {
            let id = HostId::new(id);
            if self.store.get_host(&id).await?.is_none() {
                return Err(not_found(Kind::Host, id.as_str()));
            }
            let count = self
                .store
                .session_count_by_host()
                .await?
                .into_iter()
                .find(|(host, _)| *host == id)
                .map_or(0, |(_, count)| count);
            if count > 0 {
                return Err(AdminError::Conflict(Conflict::HostHasSessions {
                    host: id.to_string(),
                    count,
                }));
            }
            let pools: Vec<String> = self
                .store
                .list_pools()
                .await?
                .into_iter()
                .filter(|pool| pool.hosts.contains(&id))
                .map(|pool| pool.id.to_string())
                .collect();
            if !pools.is_empty() {
                return Err(AdminError::Conflict(Conflict::HostInPools {
                    host: id.to_string(),
                    pools,
                }));
            }
            self.store.delete_host(&id).await?;
            Ok(())
        })
        .await
    }

    /// Drains a host (`host.drain`: it keeps its sessions and takes no new one) or resumes it
    /// (`host.undrain`).
    pub async fn set_draining(&self, actor: &Actor, id: &str, draining: bool) -> Result<HostView> {
        let action = if draining {
            "host.drain"
        } else {
            "host.undrain"
        };
        self.audited(actor, Action::ManageInventory, action, id, async {
            let id = HostId::new(id);
            let mut host = self
                .store
                .get_host(&id)
                .await?
                .ok_or_else(|| not_found(Kind::Host, id.as_str()))?;
            host.draining = draining;
            self.store.upsert_host(&host).await?;
            self.host_view_by_id(&id).await
        })
        .await
    }

    // ----- pools -----

    fn pool_view(pool: &Pool, hosts: &[Host], resources: &[Resource]) -> PoolView {
        PoolView {
            id: pool.id.to_string(),
            name: pool.name.clone(),
            hosts: pool.hosts.iter().map(ToString::to_string).collect(),
            balancing: balancing_word(pool.balancing).into(),
            protocol: pool
                .hosts
                .iter()
                .find_map(|id| hosts.iter().find(|host| host.id == *id))
                .map(|host| protocol_word(host.protocol).to_string()),
            resources: resources
                .iter()
                .filter(|resource| resource.pool == pool.id)
                .map(|resource| resource.id.to_string())
                .collect(),
        }
    }

    /// Every pool, by id.
    pub async fn list_pools(&self, actor: &Actor) -> Result<Vec<PoolView>> {
        Self::require(actor, Action::ViewConsole)?;
        let hosts = self.store.list_hosts().await?;
        let resources = self.store.list_resources().await?;
        Ok(self
            .store
            .list_pools()
            .await?
            .iter()
            .map(|pool| Self::pool_view(pool, &hosts, &resources))
            .collect())
    }

    /// One pool.
    pub async fn get_pool(&self, actor: &Actor, id: &str) -> Result<PoolView> {
        Self::require(actor, Action::ViewConsole)?;
        self.pool_view_by_id(&PoolId::new(id)).await
    }

    async fn pool_view_by_id(&self, id: &PoolId) -> Result<PoolView> {
        let pool = self
            .store
            .get_pool(id)
            .await?
            .ok_or_else(|| not_found(Kind::Pool, id.as_str()))?;
        let hosts = self.store.list_hosts().await?;
        let resources = self.store.list_resources().await?;
        Ok(Self::pool_view(&pool, &hosts, &resources))
    }

    /// Creates or replaces the pool `id` (`pool.put`); `spec.id` must be empty or equal to it.
    pub async fn put_pool(&self, actor: &Actor, id: &str, spec: &PoolSpec) -> Result<PoolView> {
        self.audited(
            actor,
            Action::ManageInventory,
            "pool.put",
            id,
            self.save_pool(Some(id), spec, false),
        )
        .await
    }

    /// Creates a pool, refused if it exists (`pool.create`).
    pub async fn create_pool(&self, actor: &Actor, spec: &PoolSpec) -> Result<PoolView> {
        self.audited(
            actor,
            Action::ManageInventory,
            "pool.create",
            &spec.id,
            self.save_pool(None, spec, true),
        )
        .await
    }

    async fn save_pool(&self, id: Option<&str>, spec: &PoolSpec, create: bool) -> Result<PoolView> {
        let mut spec = spec.clone();
        spec.id = id_from_path("id", id, &spec.id)?;
        let pool = spec.validate()?;
        if create && self.store.get_pool(&pool.id).await?.is_some() {
            return Err(AdminError::Conflict(Conflict::Exists {
                kind: Kind::Pool,
                id: pool.id.to_string(),
            }));
        }
        let hosts = self.store.list_hosts().await?;
        let mut first: Option<&Host> = None;
        let mut first_vnc: Option<usize> = None;
        for (index, id) in pool.hosts.iter().enumerate() {
            let field = format!("hosts[{index}]");
            let Some(host) = hosts.iter().find(|host| host.id == *id) else {
                return Err(AdminError::invalid(
                    field,
                    Reason::UnknownReference {
                        kind: Kind::Host,
                        id: id.to_string(),
                    },
                ));
            };
            match first {
                None => first = Some(host),
                Some(first) if first.protocol != host.protocol => {
                    return Err(AdminError::invalid(
                        field,
                        Reason::MixedProtocols {
                            pool: pool.id.to_string(),
                            host: first.id.to_string(),
                            protocol: first.protocol,
                            other: host.id.to_string(),
                            other_protocol: host.protocol,
                        },
                    ));
                }
                Some(_) => {}
            }
            if host.protocol == Protocol::Vnc && first_vnc.is_none() {
                first_vnc = Some(index);
            }
        }
        if let Some(index) = first_vnc {
            let resources = self.store.list_resources().await?;
            self.check_pool_takes_vnc(&pool, &resources, &format!("hosts[{index}]"))
                .await?;
        }
        self.store.upsert_pool(&pool).await?;
        self.pool_view_by_id(&pool.id).await
    }

    /// Deletes a pool (`pool.delete`); refused while resources use it.
    pub async fn delete_pool(&self, actor: &Actor, id: &str) -> Result<()> {
        self.audited(actor, Action::ManageInventory, "pool.delete", id, async {
            let id = PoolId::new(id);
            if self.store.get_pool(&id).await?.is_none() {
                return Err(not_found(Kind::Pool, id.as_str()));
            }
            let resources: Vec<String> = self
                .store
                .list_resources()
                .await?
                .into_iter()
                .filter(|resource| resource.pool == id)
                .map(|resource| resource.id.to_string())
                .collect();
            if !resources.is_empty() {
                return Err(AdminError::Conflict(Conflict::PoolUsed {
                    pool: id.to_string(),
                    resources,
                }));
            }
            self.store.delete_pool(&id).await?;
            Ok(())
        })
        .await
    }

    // ----- resources -----

    async fn resource_settings(&self, id: &ResourceId) -> Result<ResourceSettings> {
        match self.store.get_resource_settings(id).await? {
            None => Ok(ResourceSettings::default()),
            Some(text) => {
                ResourceSettings::from_json(&text).map_err(|error| corrupt("resources", error))
            }
        }
    }

    /// Every resource, by id.
    pub async fn list_resources(&self, actor: &Actor) -> Result<Vec<ResourceView>> {
        Self::require(actor, Action::ViewConsole)?;
        let resources = self.store.list_resources().await?;
        let mut views = Vec::with_capacity(resources.len());
        for resource in &resources {
            let settings = self.resource_settings(&resource.id).await?;
            views.push(resource_view(resource, settings));
        }
        Ok(views)
    }

    /// One resource.
    pub async fn get_resource(&self, actor: &Actor, id: &str) -> Result<ResourceView> {
        Self::require(actor, Action::ViewConsole)?;
        self.resource_view_by_id(&ResourceId::new(id)).await
    }

    async fn resource_view_by_id(&self, id: &ResourceId) -> Result<ResourceView> {
        let resource = self
            .store
            .get_resource(id)
            .await?
            .ok_or_else(|| not_found(Kind::Resource, id.as_str()))?;
        let settings = self.resource_settings(id).await?;
        Ok(resource_view(&resource, settings))
    }

    /// Creates or replaces the resource `id` (`resource.put`); `spec.id` must be empty or equal
    /// to it.
    pub async fn put_resource(
        &self,
        actor: &Actor,
        id: &str,
        spec: &ResourceSpec,
    ) -> Result<ResourceView> {
        self.audited(
            actor,
            Action::ManageInventory,
            "resource.put",
            id,
            self.save_resource(Some(id), spec, false),
        )
        .await
    }

    /// Creates a resource, refused if it exists (`resource.create`).
    pub async fn create_resource(
        &self,
        actor: &Actor,
        spec: &ResourceSpec,
    ) -> Result<ResourceView> {
        self.audited(
            actor,
            Action::ManageInventory,
            "resource.create",
            &spec.id,
            self.save_resource(None, spec, true),
        )
        .await
    }

    async fn save_resource(
        &self,
        id: Option<&str>,
        spec: &ResourceSpec,
        create: bool,
    ) -> Result<ResourceView> {
        let mut spec = spec.clone();
        spec.id = id_from_path("id", id, &spec.id)?;
        let valid = spec.validate()?;
        if create && self.store.get_resource(&valid.id).await?.is_some() {
            return Err(AdminError::Conflict(Conflict::Exists {
                kind: Kind::Resource,
                id: valid.id.to_string(),
            }));
        }
        let Some(pool) = self.store.get_pool(&valid.pool).await? else {
            return Err(AdminError::invalid(
                "pool",
                Reason::UnknownReference {
                    kind: Kind::Pool,
                    id: valid.pool.to_string(),
                },
            ));
        };
        let hosts = self.store.list_hosts().await?;
        let vnc = pool.hosts.iter().any(|id| {
            hosts
                .iter()
                .any(|host| host.id == *id && host.protocol == Protocol::Vnc)
        });
        if vnc {
            let rdp_field = if matches!(valid.kind, ResourceKind::Application { .. }) {
                Some("program")
            } else if valid.working_dir.is_some() {
                Some("working_dir")
            } else {
                None
            };
            if let Some(field) = rdp_field {
                return Err(AdminError::invalid(
                    field,
                    Reason::NeedsRdpPool {
                        pool: pool.id.to_string(),
                    },
                ));
            }
        }
        let resource = Resource::new(
            valid.id.clone(),
            valid.kind,
            valid.name_fr,
            valid.name_en,
            valid.pool,
        );
        self.store.upsert_resource(&resource).await?;
        let settings = ResourceSettings {
            icon: valid.icon,
            working_dir: valid.working_dir,
        };
        self.store
            .set_resource_settings(&valid.id, &settings.to_json())
            .await?;
        self.resource_view_by_id(&valid.id).await
    }

    /// Deletes a resource (`resource.delete`) with its entitlements and its own policy; refused
    /// while live sessions use it.
    pub async fn delete_resource(&self, actor: &Actor, id: &str) -> Result<()> {
        self.audited(
            actor,
            Action::ManageInventory,
            "resource.delete",
            id,
            async {
                let id = ResourceId::new(id);
                if self.store.get_resource(&id).await?.is_none() {
                    return Err(not_found(Kind::Resource, id.as_str()));
                }
                let count = self
                    .store
                    .live_sessions()
                    .await?
                    .iter()
                    .filter(|session| *session.resource() == id)
                    .count();
                if count > 0 {
                    return Err(AdminError::Conflict(Conflict::ResourceHasSessions {
                        resource: id.to_string(),
                        count: u32::try_from(count).unwrap_or(u32::MAX),
                    }));
                }
                self.store
                    .delete_policy(&PolicyScope::Resource(id.clone()))
                    .await?;
                self.store.delete_resource(&id).await?;
                Ok(())
            },
        )
        .await
    }

    // ----- users -----

    async fn user_by_login(&self, login: &str) -> Result<User> {
        self.store
            .get_user_by_login(login)
            .await?
            .ok_or_else(|| not_found(Kind::User, login))
    }

    async fn user_view_of(&self, user: &User) -> Result<UserView> {
        let auth = self.store.get_user_auth(&user.id).await?;
        Ok(user_view(user, auth))
    }

    /// Every user, by id.
    pub async fn list_users(&self, actor: &Actor) -> Result<Vec<UserView>> {
        Self::require(actor, Action::ViewConsole)?;
        let users = self.store.list_users().await?;
        let mut views = Vec::with_capacity(users.len());
        for user in &users {
            views.push(self.user_view_of(user).await?);
        }
        Ok(views)
    }

    /// One user, by login.
    pub async fn get_user(&self, actor: &Actor, login: &str) -> Result<UserView> {
        Self::require(actor, Action::ViewConsole)?;
        let user = self.user_by_login(login).await?;
        self.user_view_of(&user).await
    }

    /// Creates a user, refused if the login exists (`user.create`).
    pub async fn create_user(&self, actor: &Actor, spec: &UserSpec) -> Result<UserView> {
        self.audited(
            actor,
            Action::ManageAccess,
            "user.create",
            &spec.login,
            self.save_user(actor, None, spec, true),
        )
        .await
    }

    /// Creates or replaces the user `login` (`user.put`); `spec.login` must be empty or equal
    /// to it. An absent password keeps the current one.
    pub async fn put_user(&self, actor: &Actor, login: &str, spec: &UserSpec) -> Result<UserView> {
        self.audited(
            actor,
            Action::ManageAccess,
            "user.put",
            login,
            self.save_user(actor, Some(login), spec, false),
        )
        .await
    }

    async fn save_user(
        &self,
        actor: &Actor,
        login: Option<&str>,
        spec: &UserSpec,
        create: bool,
    ) -> Result<UserView> {
        let mut spec = spec.clone();
        spec.login = id_from_path("login", login, &spec.login)?;
        let valid = spec.validate()?;
        let existing = self.store.get_user_by_login(&valid.login).await?;
        if create && existing.is_some() {
            return Err(AdminError::Conflict(Conflict::Exists {
                kind: Kind::User,
                id: valid.login,
            }));
        }
        let groups = self.store.list_groups().await?;
        for (index, group) in valid.groups.iter().enumerate() {
            if !groups.iter().any(|known| known.id == *group) {
                return Err(AdminError::invalid(
                    format!("groups[{index}]"),
                    Reason::UnknownReference {
                        kind: Kind::Group,
                        id: group.to_string(),
                    },
                ));
            }
        }
        if valid.login == actor.login
            && actor.roles.contains(&Role::Admin)
            && (!valid.enabled || !valid.roles.contains(&Role::Admin))
        {
            return Err(AdminError::Conflict(Conflict::OwnAccount));
        }
        let id = existing
            .as_ref()
            .map_or_else(|| UserId::new(valid.login.clone()), |user| user.id.clone());
        let auth = match &existing {
            Some(user) => self
                .store
                .get_user_auth(&user.id)
                .await?
                .unwrap_or_default(),
            None => UserAuth::default(),
        };
        if valid.password.is_some() && auth.source == AuthSource::Directory {
            return Err(AdminError::invalid("password", Reason::DirectoryAccount));
        }
        let hash = match valid.password {
            Some(password) => Some(hash_password(password).await?),
            None => None,
        };
        let mut user = User::new(id, valid.login, valid.display_name);
        user.roles = valid.roles;
        user.groups = valid.groups;
        user.enabled = valid.enabled;
        self.store.upsert_user(&user).await?;
        if let Some(hash) = hash {
            let mut auth = auth;
            auth.password_hash = Some(hash);
            self.store.set_user_auth(&user.id, &auth).await?;
        }
        self.user_view_of(&user).await
    }

    /// Deletes a user and its own entitlements (`user.delete`); one's own account is refused.
    pub async fn delete_user(&self, actor: &Actor, login: &str) -> Result<()> {
        self.audited(actor, Action::ManageAccess, "user.delete", login, async {
            if login == actor.login {
                return Err(AdminError::Conflict(Conflict::OwnAccount));
            }
            let user = self.user_by_login(login).await?;
            for entitlement in self.store.list_entitlements().await? {
                if entitlement.subject == Subject::User(user.id.clone()) {
                    self.store.delete_entitlement(&entitlement).await?;
                }
            }
            self.store.delete_user(&user.id).await?;
            Ok(())
        })
        .await
    }

    /// Sets a local user's password (`user.password`).
    pub async fn set_user_password(
        &self,
        actor: &Actor,
        login: &str,
        spec: &PasswordSpec,
    ) -> Result<()> {
        self.audited(actor, Action::ManageAccess, "user.password", login, async {
            spec.validate()?;
            let user = self.user_by_login(login).await?;
            let mut auth = self
                .store
                .get_user_auth(&user.id)
                .await?
                .unwrap_or_default();
            if auth.source == AuthSource::Directory {
                return Err(AdminError::invalid("password", Reason::DirectoryAccount));
            }
            auth.password_hash = Some(hash_password(spec.password.clone()).await?);
            self.store.set_user_auth(&user.id, &auth).await?;
            Ok(())
        })
        .await
    }

    /// Forgets a user's TOTP secret (`user.totp_reset`): the next login enrols a new one.
    pub async fn reset_totp(&self, actor: &Actor, login: &str) -> Result<UserView> {
        self.audited(actor, Action::ResetTotp, "user.totp_reset", login, async {
            let user = self.user_by_login(login).await?;
            let mut auth = self
                .store
                .get_user_auth(&user.id)
                .await?
                .unwrap_or_default();
            auth.totp_secret = None;
            auth.totp_confirmed = false;
            self.store.set_user_auth(&user.id, &auth).await?;
            self.user_view_of(&user).await
        })
        .await
    }

    /// Enables (`user.enable`) or disables (`user.disable`) an account; one's own cannot be
    /// disabled.
    pub async fn set_user_enabled(
        &self,
        actor: &Actor,
        login: &str,
        enabled: bool,
    ) -> Result<UserView> {
        let action = if enabled {
            "user.enable"
        } else {
            "user.disable"
        };
        self.audited(actor, Action::ManageAccess, action, login, async {
            if !enabled && login == actor.login {
                return Err(AdminError::Conflict(Conflict::OwnAccount));
            }
            let mut user = self.user_by_login(login).await?;
            user.enabled = enabled;
            self.store.upsert_user(&user).await?;
            self.user_view_of(&user).await
        })
        .await
    }

    // ----- groups -----

    async fn group_view(&self, group: &Group, users: &[User]) -> Result<GroupView> {
        let members = self.store.members_of(&group.id).await?;
        Ok(GroupView {
            id: group.id.to_string(),
            name: group.name.clone(),
            members: members.iter().map(|id| login_of(users, id)).collect(),
        })
    }

    async fn group_view_by_id(&self, id: &GroupId) -> Result<GroupView> {
        let group = self
            .store
            .get_group(id)
            .await?
            .ok_or_else(|| not_found(Kind::Group, id.as_str()))?;
        let users = self.store.list_users().await?;
        self.group_view(&group, &users).await
    }

    /// Every group, by id, with its members.
    pub async fn list_groups(&self, actor: &Actor) -> Result<Vec<GroupView>> {
        Self::require(actor, Action::ViewConsole)?;
        let users = self.store.list_users().await?;
        let groups = self.store.list_groups().await?;
        let mut views = Vec::with_capacity(groups.len());
        for group in &groups {
            views.push(self.group_view(group, &users).await?);
        }
        Ok(views)
    }

    /// One group.
    pub async fn get_group(&self, actor: &Actor, id: &str) -> Result<GroupView> {
        Self::require(actor, Action::ViewConsole)?;
        self.group_view_by_id(&GroupId::new(id)).await
    }

    /// Creates a group, refused if it exists (`group.create`).
    pub async fn create_group(&self, actor: &Actor, spec: &GroupSpec) -> Result<GroupView> {
        self.audited(
            actor,
            Action::ManageAccess,
            "group.create",
            &spec.id,
            self.save_group(None, spec, true),
        )
        .await
    }

    /// Creates or renames the group `id` (`group.put`); `spec.id` must be empty or equal to it.
    pub async fn put_group(&self, actor: &Actor, id: &str, spec: &GroupSpec) -> Result<GroupView> {
        self.audited(
            actor,
            Action::ManageAccess,
            "group.put",
            id,
            self.save_group(Some(id), spec, false),
        )
        .await
    }

    async fn save_group(
        &self,
        id: Option<&str>,
        spec: &GroupSpec,
        create: bool,
    ) -> Result<GroupView> {
        let mut spec = spec.clone();
        spec.id = id_from_path("id", id, &spec.id)?;
        let (id, name) = spec.validate()?;
        if create && self.store.get_group(&id).await?.is_some() {
            return Err(AdminError::Conflict(Conflict::Exists {
                kind: Kind::Group,
                id: id.to_string(),
            }));
        }
        self.store
            .upsert_group(&Group::new(id.clone(), name))
            .await?;
        self.group_view_by_id(&id).await
    }

    /// Deletes a group (`group.delete`); its memberships go with it. Refused while entitlements
    /// or a policy name it.
    pub async fn delete_group(&self, actor: &Actor, id: &str) -> Result<()> {
        self.audited(actor, Action::ManageAccess, "group.delete", id, async {
            let id = GroupId::new(id);
            if self.store.get_group(&id).await?.is_none() {
                return Err(not_found(Kind::Group, id.as_str()));
            }
            let entitlements = self
                .store
                .list_entitlements()
                .await?
                .iter()
                .filter(|entitlement| entitlement.subject == Subject::Group(id.clone()))
                .count();
            let policy = self
                .store
                .get_policy(&PolicyScope::Group(id.clone()))
                .await?
                .is_some();
            if entitlements > 0 || policy {
                return Err(AdminError::Conflict(Conflict::GroupUsed {
                    group: id.to_string(),
                    entitlements,
                    policy,
                }));
            }
            self.store.delete_group(&id).await?;
            Ok(())
        })
        .await
    }

    /// Puts a user in a group (`group.member_add`; no-op if already a member).
    pub async fn add_member(&self, actor: &Actor, group: &str, login: &str) -> Result<GroupView> {
        let target = format!("{group}/{login}");
        self.audited(
            actor,
            Action::ManageAccess,
            "group.member_add",
            &target,
            async {
                let group = GroupId::new(group);
                if self.store.get_group(&group).await?.is_none() {
                    return Err(not_found(Kind::Group, group.as_str()));
                }
                let user = self.user_by_login(login).await?;
                self.store.add_membership(&user.id, &group).await?;
                self.group_view_by_id(&group).await
            },
        )
        .await
    }

    /// Takes a user out of a group (`group.member_remove`).
    pub async fn remove_member(
        &self,
        actor: &Actor,
        group: &str,
        login: &str,
    ) -> Result<GroupView> {
        let target = format!("{group}/{login}");
        self.audited(
            actor,
            Action::ManageAccess,
            "group.member_remove",
            &target,
            async {
                let group = GroupId::new(group);
                if self.store.get_group(&group).await?.is_none() {
                    return Err(not_found(Kind::Group, group.as_str()));
                }
                let user = self.user_by_login(login).await?;
                if !self.store.remove_membership(&user.id, &group).await? {
                    return Err(not_found(Kind::Membership, login));
                }
                self.group_view_by_id(&group).await
            },
        )
        .await
    }

    // ----- entitlements -----

    /// Every entitlement.
    pub async fn list_entitlements(&self, actor: &Actor) -> Result<Vec<EntitlementView>> {
        Self::require(actor, Action::ViewConsole)?;
        let users = self.store.list_users().await?;
        Ok(self
            .store
            .list_entitlements()
            .await?
            .iter()
            .map(|entitlement| entitlement_view(entitlement, &users))
            .collect())
    }

    async fn entitlement_of(&self, spec: &EntitlementSpec) -> Result<Entitlement> {
        let (subject, resource) = spec.validate()?;
        let subject = match subject {
            SubjectSpec::User(login) => match self.store.get_user_by_login(&login).await? {
                Some(user) => Subject::User(user.id),
                None => {
                    return Err(AdminError::invalid(
                        "user",
                        Reason::UnknownReference {
                            kind: Kind::User,
                            id: login,
                        },
                    ));
                }
            },
            SubjectSpec::Group(group) => {
                if self.store.get_group(&group).await?.is_none() {
                    return Err(AdminError::invalid(
                        "group",
                        Reason::UnknownReference {
                            kind: Kind::Group,
                            id: group.to_string(),
                        },
                    ));
                }
                Subject::Group(group)
            }
        };
        if self.store.get_resource(&resource).await?.is_none() {
            return Err(AdminError::invalid(
                "resource",
                Reason::UnknownReference {
                    kind: Kind::Resource,
                    id: resource.to_string(),
                },
            ));
        }
        Ok(Entitlement { subject, resource })
    }

    fn entitlement_target(spec: &EntitlementSpec) -> String {
        match (&spec.user, &spec.group) {
            (Some(user), _) => format!("user:{user}/{}", spec.resource),
            (None, Some(group)) => format!("group:{group}/{}", spec.resource),
            (None, None) => format!("?/{}", spec.resource),
        }
    }

    /// Lets a user or a group open a resource (`entitlement.grant`; no-op if already granted).
    pub async fn grant(&self, actor: &Actor, spec: &EntitlementSpec) -> Result<EntitlementView> {
        let target = Self::entitlement_target(spec);
        self.audited(
            actor,
            Action::ManageAccess,
            "entitlement.grant",
            &target,
            async {
                let entitlement = self.entitlement_of(spec).await?;
                self.store.add_entitlement(&entitlement).await?;
                let users = self.store.list_users().await?;
                Ok(entitlement_view(&entitlement, &users))
            },
        )
        .await
    }

    /// Takes an entitlement back (`entitlement.revoke`).
    pub async fn revoke(&self, actor: &Actor, spec: &EntitlementSpec) -> Result<()> {
        let target = Self::entitlement_target(spec);
        self.audited(
            actor,
            Action::ManageAccess,
            "entitlement.revoke",
            &target,
            async {
                let entitlement = self.entitlement_of(spec).await?;
                if !self.store.delete_entitlement(&entitlement).await? {
                    return Err(not_found(Kind::Entitlement, target.clone()));
                }
                Ok(())
            },
        )
        .await
    }

    // ----- policies -----

    fn scope_of(scope: &str, id: &str) -> Result<PolicyScope> {
        let scope = match scope {
            "group" => PolicyScope::Group(GroupId::new(id)),
            "resource" => PolicyScope::Resource(ResourceId::new(id)),
            other => {
                return Err(AdminError::invalid(
                    "scope",
                    Reason::NotOneOf {
                        value: other.chars().take(80).collect(),
                        allowed: &["group", "resource"],
                    },
                ));
            }
        };
        check_id("id", id)?;
        Ok(scope)
    }

    /// Every policy, by scope.
    pub async fn list_policies(&self, actor: &Actor) -> Result<Vec<PolicyView>> {
        Self::require(actor, Action::ViewConsole)?;
        Ok(self
            .store
            .list_policies()
            .await?
            .iter()
            .map(policy_view)
            .collect())
    }

    /// The policy of a group (`scope` = `group`) or a resource (`resource`).
    pub async fn get_policy(&self, actor: &Actor, scope: &str, id: &str) -> Result<PolicyView> {
        Self::require(actor, Action::ViewConsole)?;
        let scope = Self::scope_of(scope, id)?;
        self.store
            .get_policy(&scope)
            .await?
            .map(|scoped| policy_view(&scoped))
            .ok_or_else(|| not_found(Kind::Policy, format!("{}/{id}", scope_parts(&scope).0)))
    }

    /// Sets the policy of a group or a resource (`policy.put`), replacing the previous one.
    pub async fn put_policy(
        &self,
        actor: &Actor,
        scope: &str,
        id: &str,
        spec: &PolicySpec,
    ) -> Result<PolicyView> {
        let target = format!("{scope}/{id}");
        self.audited(actor, Action::ManageAccess, "policy.put", &target, async {
            let scope = Self::scope_of(scope, id)?;
            let policy: Policy = spec.validate()?;
            let exists = match &scope {
                PolicyScope::Group(group) => self.store.get_group(group).await?.is_some(),
                PolicyScope::Resource(resource) => {
                    self.store.get_resource(resource).await?.is_some()
                }
                _ => false,
            };
            if !exists {
                let kind = match scope {
                    PolicyScope::Group(_) => Kind::Group,
                    _ => Kind::Resource,
                };
                return Err(not_found(kind, id));
            }
            let scoped = ScopedPolicy { scope, policy };
            self.store.upsert_policy(&scoped).await?;
            Ok(policy_view(&scoped))
        })
        .await
    }

    /// Deletes the policy of a group or a resource (`policy.delete`).
    pub async fn delete_policy(&self, actor: &Actor, scope: &str, id: &str) -> Result<()> {
        let target = format!("{scope}/{id}");
        self.audited(
            actor,
            Action::ManageAccess,
            "policy.delete",
            &target,
            async {
                let scope = Self::scope_of(scope, id)?;
                if !self.store.delete_policy(&scope).await? {
                    return Err(not_found(Kind::Policy, target.clone()));
                }
                Ok(())
            },
        )
        .await
    }

    /// The policy in force for the user `login` on `resource`, each value with its source.
    pub async fn effective_policy(
        &self,
        actor: &Actor,
        login: &str,
        resource: &str,
    ) -> Result<EffectivePolicyView> {
        Self::require(actor, Action::ViewConsole)?;
        if login.is_empty() {
            return Err(AdminError::invalid("user", Reason::Required));
        }
        if resource.is_empty() {
            return Err(AdminError::invalid("resource", Reason::Required));
        }
        let user = self.user_by_login(login).await?;
        let resource_id = ResourceId::new(resource);
        if self.store.get_resource(&resource_id).await?.is_none() {
            return Err(not_found(Kind::Resource, resource));
        }
        let policies = self.store.list_policies().await?;
        let entitlements = self.store.list_entitlements().await?;
        let explained = explain_effective_policy(&user, &resource_id, &policies, &self.defaults);
        let (policy, sources) = (&explained.policy, &explained.sources);
        Ok(EffectivePolicyView {
            user: user.login.clone(),
            resource: resource.to_string(),
            entitled: is_entitled(&user, &resource_id, &entitlements),
            clipboard_in: Explained {
                value: policy.clipboard_in,
                source: source_text(&sources.clipboard_in),
            },
            clipboard_out: Explained {
                value: policy.clipboard_out,
                source: source_text(&sources.clipboard_out),
            },
            file_transfer: Explained {
                value: policy.file_transfer,
                source: source_text(&sources.file_transfer),
            },
            max_bandwidth_kbps: Explained {
                value: limit_value(policy.max_bandwidth_kbps),
                source: source_text(&sources.max_bandwidth_kbps),
            },
            idle_timeout_secs: Explained {
                value: limit_value(policy.idle_timeout_secs),
                source: source_text(&sources.idle_timeout_secs),
            },
            disconnected_keep_secs: Explained {
                value: policy.disconnected_keep_secs,
                source: source_text(&sources.disconnected_keep_secs),
            },
            allowed_hours: Explained {
                value: hours_texts(&policy.allowed_hours),
                source: source_text(&sources.allowed_hours),
            },
        })
    }

    // ----- licences, sessions -----

    /// The licence capacity and how many are in use.
    pub async fn licences(&self, actor: &Actor) -> Result<LicenceView> {
        Self::require(actor, Action::ViewConsole)?;
        self.licence_view().await
    }

    async fn licence_view(&self) -> Result<LicenceView> {
        let capacity = self.store.licence_capacity().await?;
        let in_use = u32::try_from(self.store.live_sessions().await?.len()).unwrap_or(u32::MAX);
        Ok(LicenceView {
            capacity,
            in_use,
            available: capacity.saturating_sub(in_use),
        })
    }

    /// Sets the licence capacity (`licence.set`). A capacity below the sessions in use ends
    /// none of them; it refuses new ones until enough have ended.
    pub async fn set_licence_capacity(
        &self,
        actor: &Actor,
        spec: &LicenceSpec,
    ) -> Result<LicenceView> {
        let target = spec
            .capacity
            .map(|capacity| capacity.to_string())
            .unwrap_or_default();
        self.audited(actor, Action::ManageAccess, "licence.set", &target, async {
            let capacity = spec.validate()?;
            self.store.set_licence_capacity(capacity).await?;
            self.licence_view().await
        })
        .await
    }

    /// The live sessions, oldest first.
    pub async fn list_sessions(&self, actor: &Actor) -> Result<Vec<SessionView>> {
        Self::require(actor, Action::ViewConsole)?;
        let users = self.store.list_users().await?;
        Ok(self
            .store
            .live_sessions()
            .await?
            .iter()
            .map(|session| session_view(session, &users))
            .collect())
    }
}
