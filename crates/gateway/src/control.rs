//! The control plane as the gateway drives it: the database, the broker, session records,
//! licences, host health, and the seed from the configuration file.
//!
//! The decisions are `bascule_domain`'s (pure); this module loads their inputs from the store,
//! carries out what they decide, and writes the outcome back. Nothing here speaks HTTP.

use crate::config::{Config, CredentialsMode, ResourceConfig};
use crate::secrets::{Secret, SecretKey};
use crate::session::{LiveSession, SessionState as LiveState, Target};
use bascule_admin::{HostSettings, ResourceSettings};
use bascule_domain::access::{Entitlement, Role, Subject, User};
use bascule_domain::broker::{LaunchDecision, LaunchRefusal, LaunchRequest, World, decide_launch};
use bascule_domain::id::{GroupId, HostId, PoolId, ResourceId, SessionId, UserId};
use bascule_domain::inventory::{Balancing, Health, Host, Pool, Protocol, Resource, ResourceKind};
use bascule_domain::policy::{EffectivePolicy, Policy, PolicyScope, ScopedPolicy, effective_policy};
use bascule_domain::session::{EndReason, FailReason, SessionRecord, SessionState};
use bascule_domain::time::Timestamp;
use bascule_store::{AuditEntry, AuthSource, CapacityLimit, LicenceSample, Store, StoreError};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// The current time, in the domain's terms.
pub(crate) fn now() -> Timestamp {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    Timestamp::from_unix_seconds(seconds)
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Invalid(String),
}

/// A launch the broker accepted: where to connect, and under which session record.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub(crate) session: SessionId,
    pub(crate) resource: ResourceId,
    pub(crate) target: Target,
    /// The service account's password, decrypted (or none).
    pub(crate) password: Option<Secret>,
    pub(crate) username: Option<String>,
    pub(crate) passthrough: bool,
    /// Rejoining an existing session rather than starting one.
    pub(crate) rejoin: bool,
}

/// What a launch ticket opens.
#[derive(Debug, Clone)]
pub(crate) enum Ticket {
    /// The user's own session.
    Launch(Box<Launch>),
    /// A helpdesk shadow of someone's live session.
    Shadow { session: String, agent_login: String, agent_name: String, owner_name: String },
}

/// Why a launch did not go ahead: the broker's refusal, or a fault on our side.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LaunchError {
    #[error(transparent)]
    Refused(#[from] LaunchRefusal),
    #[error("the host's settings cannot be used: {0}")]
    BadSettings(String),
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

impl LaunchError {
    /// The stable code used in the audit log and for the UI's translations.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            LaunchError::Refused(refusal) => refusal.code(),
            LaunchError::BadSettings(_) => "host_misconfigured",
            LaunchError::Store(_) => "internal",
        }
    }
}

/// The gateway's handle on the control plane.
pub(crate) struct ControlPlane {
    pub(crate) store: Store,
    pub(crate) key: Arc<SecretKey>,
    pub(crate) admin: Arc<bascule_admin::Admin>,
    pub(crate) directory: Option<bascule_directory::Directory>,
    pub(crate) timezone: jiff::tz::TimeZone,
    pub(crate) defaults: EffectivePolicy,
    pub(crate) config: Arc<Config>,
    /// The audit log file (JSON lines), written alongside the database's audit table.
    pub(crate) file_audit: Arc<crate::audit::AuditLog>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane").field("backend", &self.store.backend()).finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Connects, migrates, applies the seed and the licence setting, and recovers the records of
    /// sessions this node was carrying when it stopped.
    pub(crate) async fn open(
        config: Arc<Config>,
        key: Arc<SecretKey>,
        file_audit: Arc<crate::audit::AuditLog>,
    ) -> Result<ControlPlane, ControlError> {
        let timezone = jiff::tz::TimeZone::get(&config.site.timezone).map_err(|e| {
            ControlError::Invalid(format!("site.timezone {:?} is not a known time zone: {e}", config.site.timezone))
        })?;
        let store = Store::connect(&config.database_url()).await?;
        store.migrate().await?;
        let directory = match &config.directory {
            Some(settings) => Some(open_directory(settings, &key)?),
            None => None,
        };
        let admin = Arc::new(
            bascule_admin::Admin::new(store.clone(), key.clone())
                .allow_insecure_certificates(config.allow_insecure_certificates)
                .with_audit_mirror({
                    let file = file_audit.clone();
                    Arc::new(move |entry: &AuditEntry| {
                        let address = entry.address.as_deref().and_then(|a| a.parse().ok());
                        file.record(&entry.actor, &entry.action, &entry.target, address, &entry.outcome);
                    })
                }),
        );
        let plane = ControlPlane {
            store,
            key,
            admin,
            directory,
            timezone,
            defaults: EffectivePolicy::default(),
            config,
            file_audit,
        };
        plane.apply_seed().await?;
        plane.recover_sessions().await?;
        Ok(plane)
    }

    /// The site's UTC offset now, in seconds.
    fn utc_offset_seconds(&self, at: Timestamp) -> i32 {
        jiff::Timestamp::from_second(at.unix_seconds())
            .map(|t| self.timezone.to_offset(t).seconds())
            .unwrap_or_default()
    }

    /// A snapshot for the broker and the portal.
    pub(crate) async fn world(&self) -> Result<World, StoreError> {
        self.store.load_world(self.defaults.clone(), self.utc_offset_seconds(now())).await
    }

    /// Writes the configuration's `[[user]]` and `[[resource]]` seed into the database, and the
    /// licence capacity.
    async fn apply_seed(&self) -> Result<(), ControlError> {
        let store = &self.store;
        match self.config.site.licences {
            Some(capacity) => store.set_licence_capacity(capacity).await?,
            None => bascule_admin::ensure_licence_capacity(store).await?,
        }
        for resource in &self.config.resources {
            self.seed_resource(resource).await?;
        }
        for seed in &self.config.users {
            let id = UserId::new(&seed.name);
            let mut user = store.get_user(&id).await?.unwrap_or_else(|| {
                User::new(id.clone(), &seed.name, seed.display_name.clone().unwrap_or_else(|| seed.name.clone()))
            });
            if let Some(name) = &seed.display_name {
                user.display_name = name.clone();
            }
            if !seed.roles.is_empty() {
                user.roles = seed.roles.iter().filter_map(|r| parse_role(r)).collect();
            }
            store.upsert_user(&user).await?;
            let mut auth = store.get_user_auth(&id).await?.unwrap_or_default();
            auth.source = AuthSource::Local;
            auth.password_hash = Some(seed.password_hash.clone());
            store.set_user_auth(&id, &auth).await?;
            let existing = store.list_entitlements().await?;
            for resource in &seed.resources {
                let entitlement = Entitlement { subject: Subject::User(id.clone()), resource: ResourceId::new(resource) };
                if !existing.contains(&entitlement) {
                    store.add_entitlement(&entitlement).await?;
                }
            }
        }
        Ok(())
    }

    /// A `[[resource]]` of the configuration: a host, a pool and a resource of the same id, and
    /// its clipboard policy.
    async fn seed_resource(&self, seed: &ResourceConfig) -> Result<(), ControlError> {
        let store = &self.store;
        let protocol = if seed.protocol == "rdp" { Protocol::Rdp } else { Protocol::Vnc };
        let host_id = HostId::new(&seed.id);
        let mut host = store
            .get_host(&host_id)
            .await?
            .unwrap_or_else(|| Host::new(host_id.clone(), &seed.id, protocol, &seed.host, seed.port, 1000));
        host.protocol = protocol;
        host.address = seed.host.clone();
        host.port = seed.port;
        store.upsert_host(&host).await?;
        let settings = HostSettings {
            certificate: seed.certificate.clone(),
            credentials: seed.credentials,
            username: seed.username.clone(),
            domain: seed.domain.clone(),
            password: seed.password.clone(),
            security: seed.security,
            keyboard: seed.keyboard,
            keyboard_layout: seed.keyboard_layout,
            h264: seed.h264,
        };
        let json = serde_json::to_string(&settings).map_err(|e| ControlError::Invalid(e.to_string()))?;
        store.set_host_settings(&host_id, &json).await?;
        let pool_id = PoolId::new(&seed.id);
        store.upsert_pool(&Pool::new(pool_id.clone(), &seed.id, vec![host_id], Balancing::FewestSessions)).await?;
        let kind = match (&seed.kind, &seed.application) {
            (crate::config::ResourceKind::Application, Some(program)) => {
                ResourceKind::Application { program: program.clone() }
            }
            _ => ResourceKind::Desktop,
        };
        let resource_id = ResourceId::new(&seed.id);
        store.upsert_resource(&Resource::new(resource_id.clone(), kind, &seed.name_fr, &seed.name_en, pool_id)).await?;
        let icon = match &seed.icon {
            Some(path) => {
                use base64::Engine;
                let (mime, bytes) = crate::load_icon(path)
                    .map_err(|e| ControlError::Invalid(format!("resource {:?}: icon {}: {e}", seed.id, path.display())))?;
                Some(bascule_admin::Icon {
                    mime: mime.into(),
                    data: base64::engine::general_purpose::STANDARD.encode(bytes),
                })
            }
            None => None,
        };
        let settings = ResourceSettings { icon, working_dir: seed.working_dir.clone() };
        let json = serde_json::to_string(&settings).map_err(|e| ControlError::Invalid(e.to_string()))?;
        store.set_resource_settings(&resource_id, &json).await?;
        let mut policy = Policy::default();
        policy.clipboard_in = Some(seed.clipboard_in);
        policy.clipboard_out = Some(seed.clipboard_out);
        store.upsert_policy(&ScopedPolicy { scope: PolicyScope::Resource(resource_id), policy }).await?;
        Ok(())
    }

    /// Sessions this database lists as connected when the gateway starts have lost their backend
    /// connection: the desktops still run on their hosts, so they become disconnected (and can be
    /// rejoined); those that were still starting failed.
    async fn recover_sessions(&self) -> Result<(), StoreError> {
        let at = now();
        for record in self.store.live_sessions().await? {
            let state = match record.state() {
                SessionState::Starting => SessionState::Failed { at, reason: FailReason::HostUnreachable },
                SessionState::Active => SessionState::Disconnected { since: at },
                _ => continue,
            };
            self.store.update_session_state(record.id(), state).await?;
        }
        Ok(())
    }

    /// Decides a launch, records the new session (re-checking licences and host capacity
    /// atomically), and resolves where and how to connect.
    pub(crate) async fn launch(&self, user: &UserId, resource: &ResourceId) -> Result<Launch, LaunchError> {
        // Two tries: a concurrent launch may fill the chosen host between the snapshot and the
        // insert; the second snapshot sees it and picks another host.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let world = self.world().await?;
            let at = now();
            let request = LaunchRequest { user: user.clone(), resource: resource.clone() };
            let decision = decide_launch(&request, &world, at)?;
            let (session, host, policy, rejoin) = match decision {
                LaunchDecision::Start { host, policy } => {
                    let id = SessionId::new(crate::auth::random_token());
                    let record = SessionRecord::start(id.clone(), user.clone(), resource.clone(), host.clone(), at);
                    match self.store.record_session_start(&record, world.licences.capacity).await {
                        Ok(()) => {}
                        Err(StoreError::CapacityExceeded(CapacityLimit::Licences { capacity })) => {
                            return Err(LaunchRefusal::NoLicence { capacity }.into());
                        }
                        Err(StoreError::CapacityExceeded(CapacityLimit::Host { .. })) if attempt < 2 => continue,
                        Err(StoreError::CapacityExceeded(CapacityLimit::Host { .. })) => {
                            return Err(
                                LaunchRefusal::NoHostAvailable { unhealthy: 0, draining: 0, full: 1, missing: 0 }.into()
                            );
                        }
                        Err(error) => return Err(error.into()),
                    }
                    (id, host, policy, false)
                }
                LaunchDecision::Reconnect { session, host, policy } => (session, host, policy, true),
                _ => return Err(LaunchError::BadSettings("unknown broker decision".into())),
            };
            let Some(host_row) = world.hosts.iter().find(|h| h.id == host) else {
                return Err(LaunchError::BadSettings(format!("host {host} vanished")));
            };
            let resource_row = world.resource(resource).ok_or(LaunchRefusal::UnknownResource)?;
            let launch = self.resolve(session.clone(), host_row, resource_row, policy, rejoin).await;
            if launch.is_err() && !rejoin {
                // Nothing will connect: give the licence back at once.
                let failed = SessionState::Failed { at, reason: FailReason::HostUnreachable };
                let _ = self.store.update_session_state(&session, failed).await;
            }
            return launch;
        }
    }

    async fn resolve(
        &self,
        session: SessionId,
        host: &Host,
        resource: &Resource,
        policy: EffectivePolicy,
        rejoin: bool,
    ) -> Result<Launch, LaunchError> {
        let settings: HostSettings = match self.store.get_host_settings(&host.id).await? {
            Some(json) => serde_json::from_str(&json).map_err(|e| LaunchError::BadSettings(e.to_string()))?,
            None => HostSettings::default(),
        };
        let extras: ResourceSettings = match self.store.get_resource_settings(&resource.id).await? {
            Some(json) => serde_json::from_str(&json).map_err(|e| LaunchError::BadSettings(e.to_string()))?,
            None => ResourceSettings::default(),
        };
        let certificate = settings
            .parse_certificate()
            .ok_or_else(|| LaunchError::BadSettings(format!("certificate {:?}", settings.certificate)))?;
        let password = match &settings.password {
            Some(sealed) => Some(self.key.decrypt(sealed).map_err(|e| LaunchError::BadSettings(e.to_string()))?),
            None => None,
        };
        let passthrough = host.protocol == Protocol::Rdp && settings.credentials == CredentialsMode::Passthrough;
        let application = match &resource.kind {
            ResourceKind::Application { program } => Some(program.clone()),
            _ => None,
        };
        let target = Target {
            host_id: host.id.to_string(),
            protocol: host.protocol,
            address: host.address.clone(),
            port: host.port,
            keyboard: settings.keyboard,
            security: settings.security,
            certificate,
            domain: settings.domain.clone(),
            application,
            working_dir: extras.working_dir.clone(),
            keyboard_layout: settings.keyboard_layout,
            h264: settings.h264,
            clipboard_in: policy.clipboard_in,
            clipboard_out: policy.clipboard_out,
            idle_timeout: match policy.idle_timeout_secs {
                bascule_domain::policy::Limit::AtMost(seconds) => Some(Duration::from_secs(u64::from(seconds))),
                _ => None,
            },
            max_kbit_per_s: match policy.max_bandwidth_kbps {
                bascule_domain::policy::Limit::AtMost(kbps) if kbps > 0 => Some(kbps),
                _ => None,
            },
        };
        Ok(Launch {
            session,
            resource: resource.id.clone(),
            target,
            password: if passthrough { None } else { password },
            username: if passthrough { None } else { settings.username.clone() },
            passthrough,
            rejoin,
        })
    }

    /// The resource's own icon as stored, if it has one.
    async fn stored_icon(&self, resource: &ResourceId) -> Option<bascule_admin::Icon> {
        let json = self.store.get_resource_settings(resource).await.ok()??;
        serde_json::from_str::<ResourceSettings>(&json).ok()?.icon
    }

    /// Whether the resource has its own icon (without decoding it: the portal asks per resource).
    pub(crate) async fn has_icon(&self, resource: &ResourceId) -> bool {
        self.stored_icon(resource).await.is_some()
    }

    /// The resource's icon (MIME type and bytes), if it has its own.
    pub(crate) async fn icon(&self, resource: &ResourceId) -> Option<(String, Vec<u8>)> {
        use base64::Engine;
        let icon = self.stored_icon(resource).await?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(icon.data).ok()?;
        Some((icon.mime, bytes))
    }

    /// Records an audit entry; a failure to write it is logged, never fatal to the request.
    pub(crate) async fn audit(&self, actor: &str, action: &str, target: &str, address: Option<IpAddr>, outcome: &str) {
        self.file_audit.record(actor, action, target, address, outcome);
        let entry = AuditEntry {
            at: now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            address: address.map(|a| a.to_string()),
            outcome: outcome.to_owned(),
        };
        if let Err(error) = self.store.append_audit(&entry).await {
            tracing::error!(%error, actor, action, target, outcome, "cannot write the audit entry to the database");
        }
    }

    /// Writes a session record's new state, unless the transition is not allowed from the stored
    /// state (for example a record ended by the portal's Log off while its backend was closing).
    pub(crate) async fn transition(
        &self,
        id: &SessionId,
        change: impl FnOnce(&mut SessionRecord, Timestamp) -> Result<(), bascule_domain::session::TransitionError>,
    ) -> bool {
        let Ok(Some(mut record)) = self.store.get_session(id).await else { return false };
        if change(&mut record, now()).is_err() {
            return false;
        }
        match self.store.update_session_state(id, record.state()).await {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(%error, session = %id, "cannot record the session state");
                false
            }
        }
    }

    /// Ends the disconnected sessions kept longer than their effective policy allows.
    pub(crate) async fn end_expired_disconnected(&self) -> Result<Vec<SessionRecord>, StoreError> {
        let world = self.world().await?;
        let at = now();
        let mut ended = Vec::new();
        for record in &world.sessions {
            let SessionState::Disconnected { since } = record.state() else { continue };
            let Some(user) = world.user(record.user()) else { continue };
            let policy = effective_policy(user, record.resource(), &world.policies, &world.defaults);
            if at.unix_seconds() - since.unix_seconds() >= i64::from(policy.disconnected_keep_secs) {
                let reason = EndReason::DisconnectedTimeout;
                if self.transition(record.id(), |r, at| r.end(at, reason)).await {
                    ended.push(record.clone());
                }
            }
        }
        Ok(ended)
    }

    /// Fails the sessions still *starting* long after their ticket expired with no connection
    /// on this node (the browser never came), so that they give their licence back.
    pub(crate) async fn fail_abandoned_starts(&self, sessions: &crate::session::Sessions) -> Result<u32, StoreError> {
        let at = now();
        let limit = (crate::auth::TICKET_LIFETIME.as_secs() + self.config.sessions.connect_timeout_secs + 30) as i64;
        let mut failed = 0;
        for record in self.store.live_sessions().await? {
            if record.state() == SessionState::Starting
                && at.unix_seconds() - record.started_at().unix_seconds() > limit
                && !sessions.is_live(record.id().as_str())
                && self.transition(record.id(), |r, at| r.fail(at, FailReason::TimedOut)).await
            {
                self.audit("system", "session.fail", record.id().as_str(), None, "timed_out: no viewer came").await;
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// Samples licence usage.
    pub(crate) async fn sample_licences(&self) -> Result<(), StoreError> {
        let capacity = self.store.licence_capacity().await?;
        let in_use = u32::try_from(self.store.live_sessions().await?.len()).unwrap_or(u32::MAX);
        self.store.record_licence_sample(LicenceSample { at: now(), in_use, capacity }).await
    }

    /// Authenticates a directory user and mirrors them (display name, groups that exist in
    /// Bascule, roles from the configured groups) into the database.
    pub(crate) async fn directory_login(&self, login: &str, password: &str) -> Result<Option<User>, String> {
        let Some(directory) = &self.directory else { return Ok(None) };
        let found = match directory.authenticate(login, password).await {
            Ok(found) => found,
            Err(bascule_directory::DirectoryError::InvalidCredentials) => return Ok(None),
            Err(error) => return Err(error.to_string()),
        };
        let settings = self.config.directory.as_ref();
        let id = UserId::new(found.login.to_lowercase());
        let existing = self.store.get_user(&id).await.map_err(|e| e.to_string())?;
        if let Some(auth) = self.store.get_user_auth(&id).await.map_err(|e| e.to_string())?
            && auth.source == AuthSource::Local && existing.is_some() {
                // A local account of the same name: the directory must not take it over.
                return Ok(None);
            }
        let display = found.display_name.clone().unwrap_or_else(|| found.login.clone());
        let mut user = existing.unwrap_or_else(|| User::new(id.clone(), found.login.to_lowercase(), &display));
        user.display_name = display;
        let is_in = |group: &Option<String>| {
            group.as_ref().is_some_and(|g| found.group_names.iter().any(|n| n.eq_ignore_ascii_case(g)))
        };
        let mut roles = vec![Role::User];
        if settings.is_some_and(|s| is_in(&s.helpdesk_group)) {
            roles.push(Role::Helpdesk);
        }
        if settings.is_some_and(|s| is_in(&s.admin_group)) {
            roles.push(Role::Admin);
        }
        user.roles = roles;
        self.store.upsert_user(&user).await.map_err(|e| e.to_string())?;
        let mut auth = self.store.get_user_auth(&id).await.map_err(|e| e.to_string())?.unwrap_or_default();
        auth.source = AuthSource::Directory;
        auth.password_hash = None;
        self.store.set_user_auth(&id, &auth).await.map_err(|e| e.to_string())?;
        let known: Vec<GroupId> = self.store.list_groups().await.map_err(|e| e.to_string())?.into_iter().map(|g| g.id).collect();
        let groups: Vec<GroupId> = found
            .group_names
            .iter()
            .filter_map(|name| known.iter().find(|id| id.as_str().eq_ignore_ascii_case(name)).cloned())
            .collect();
        self.store.set_memberships(&id, &groups).await.map_err(|e| e.to_string())?;
        self.store.get_user(&id).await.map_err(|e| e.to_string())
    }
}

fn parse_role(text: &str) -> Option<Role> {
    match text {
        "user" => Some(Role::User),
        "helpdesk" => Some(Role::Helpdesk),
        "admin" => Some(Role::Admin),
        _ => None,
    }
}

fn open_directory(
    settings: &crate::config::DirectorySettings,
    key: &SecretKey,
) -> Result<bascule_directory::Directory, ControlError> {
    let invalid = |what: String| ControlError::Invalid(format!("directory: {what}"));
    let bind_password = match &settings.bind_password {
        Some(sealed) => Some(key.decrypt(sealed).map_err(|e| invalid(format!("bind_password: {e}")))?.expose().to_owned()),
        None => None,
    };
    let ca_certificate_pem = match &settings.ca_certificate {
        Some(path) => Some(std::fs::read(path).map_err(|e| invalid(format!("ca_certificate {}: {e}", path.display())))?),
        None => None,
    };
    let groups = match &settings.group_base_dn {
        Some(base_dn) => bascule_directory::GroupLookup::Search {
            base_dn: base_dn.clone(),
            filter: settings.group_filter.clone().unwrap_or_else(|| "(member={dn})".into()),
        },
        None => bascule_directory::GroupLookup::MemberOf,
    };
    bascule_directory::Directory::new(bascule_directory::DirectoryConfig {
        url: settings.url.clone(),
        starttls: settings.starttls,
        ca_certificate_pem,
        bind_dn: settings.bind_dn.clone(),
        bind_password,
        base_dn: settings.base_dn.clone(),
        login_attribute: settings.login_attribute.clone(),
        user_filter: settings.user_filter.clone(),
        groups,
        timeout: Duration::from_secs(settings.timeout_secs),
    })
    .map_err(|e| invalid(e.to_string()))
}

/// Keeps a session record in step with its live connection: active while a viewer is attached,
/// disconnected when none is, ended or failed when the backend stops.
pub(crate) async fn record_session(plane: Arc<ControlPlane>, live: Arc<LiveSession>, id: SessionId) {
    let mut states = live.state.subscribe();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut recorded_active = false;
    let mut had_viewer = false;
    let mut ticks: u32 = 0;
    loop {
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(20) {
            save_stats(&plane, &live, &id).await;
        }
        let state = states.borrow_and_update().clone();
        match state {
            LiveState::Ended { code, detail } => {
                let at_code = code;
                if !detail.is_empty() {
                    live.lock_stats().last_error = Some(format!("{code}: {detail}"));
                }
                save_stats(&plane, &live, &id).await;
                crate::metrics::session_end(at_code);
                let outcome = end_of(at_code, recorded_active || had_viewer);
                let ok = match outcome {
                    Outcome::Keep => {
                        // The host keeps the desktop: the record stays (or becomes) disconnected.
                        plane.transition(&id, |r, at| r.disconnect(at)).await
                    }
                    Outcome::End(reason) => plane.transition(&id, |r, at| r.end(at, reason)).await,
                    Outcome::Fail(reason) => {
                        if plane.transition(&id, |r, at| r.fail(at, reason)).await {
                            true
                        } else {
                            plane.transition(&id, |r, at| r.end(at, EndReason::HostLost)).await
                        }
                    }
                };
                tracing::debug!(session = %id, code = at_code, %detail, recorded = ok, "session record after the backend ended");
                // The technical cause goes to the audit log, for the helpdesk.
                let outcome = if detail.is_empty() { at_code.to_owned() } else { format!("{at_code}: {detail}") };
                let target = format!("{} {}", live.resource, id);
                plane.audit(&live.user, "session.end", &target, None, &outcome).await;
                return;
            }
            LiveState::Active { .. } => {
                // Only the user's own viewers count: a helpdesk shadow does not make it active.
                let viewers = live.owner_viewers.load(std::sync::atomic::Ordering::Relaxed);
                if viewers > 0 {
                    had_viewer = true;
                }
                if viewers > 0 && !recorded_active {
                    recorded_active = plane
                        .transition(&id, |r, _| match r.state() {
                            SessionState::Disconnected { .. } => r.reconnect(),
                            SessionState::Starting => r.activate(),
                            _ => Ok(()),
                        })
                        .await;
                } else if viewers == 0 && recorded_active {
                    plane.transition(&id, |r, at| r.disconnect(at)).await;
                    recorded_active = false;
                }
            }
            LiveState::Connecting => {}
        }
        tokio::select! {
            changed = states.changed() => if changed.is_err() { return },
            _ = tick.tick() => {}
        }
    }
}

enum Outcome {
    Keep,
    End(EndReason),
    Fail(FailReason),
}

/// What a backend's end means for its record. `started`: the user had the desktop at some point.
fn end_of(code: &str, started: bool) -> Outcome {
    match code {
        // Released after the reconnect window, or the gateway stopping: the desktop lives on.
        "session.released" | "gateway.shutdown" => Outcome::Keep,
        "session.logged_off" => Outcome::End(EndReason::LoggedOff),
        "session.ended_by_staff" => Outcome::End(EndReason::EndedByStaff),
        "session.idle_timeout" => Outcome::End(EndReason::IdleTimeout),
        "session.auth_failed" if !started => Outcome::Fail(FailReason::AuthenticationFailed),
        "session.certificate_untrusted" | "session.certificate_mismatch" if !started => {
            Outcome::Fail(FailReason::CertificateRejected)
        }
        "session.unreachable" if !started => Outcome::Fail(FailReason::HostUnreachable),
        _ if !started => Outcome::Fail(FailReason::HostUnreachable),
        "session.ended" => Outcome::End(EndReason::LoggedOff),
        _ => Outcome::End(EndReason::HostLost),
    }
}

/// The periodic work of the control plane: host health, disconnected-session expiry, licence
/// samples. Runs until the gateway stops.
pub(crate) async fn housekeeping(state: crate::state::AppState) {
    let plane = state.plane.clone();
    let sessions = state.sessions.clone();
    let mut health = tokio::time::interval(Duration::from_secs(plane.config.health.interval_secs));
    let mut expiry = tokio::time::interval(Duration::from_secs(plane.config.site.housekeeping_secs.max(1)));
    let mut samples = tokio::time::interval(Duration::from_secs(plane.config.site.licence_sample_secs.max(1)));
    let mut trackers: std::collections::HashMap<HostId, bascule_health::HealthTracker> = Default::default();
    loop {
        tokio::select! {
            _ = health.tick() => {
                if plane.config.health.enabled {
                    check_hosts(&plane, &mut trackers).await;
                }
                state.refresh_needs_passwords().await;
            }
            _ = expiry.tick() => {
                // Idle sessions end through their live connection; the recorder ends the record.
                sessions.end_idle(std::time::Instant::now());
                if let Err(error) = plane.fail_abandoned_starts(&sessions).await {
                    tracing::warn!(%error, "cannot fail abandoned session starts");
                }
                match plane.end_expired_disconnected().await {
                    Ok(ended) => {
                        for record in ended {
                            sessions.end_session(record.id().as_str(), "session.disconnected_timeout");
                            plane.audit("system", "session.end", record.id().as_str(), None, "disconnected_timeout").await;
                        }
                    }
                    Err(error) => tracing::warn!(%error, "cannot end expired disconnected sessions"),
                }
            }
            _ = samples.tick() => if let Err(error) = plane.sample_licences().await {
                tracing::warn!(%error, "cannot sample licence usage");
            },
        }
    }
}

async fn check_hosts(plane: &ControlPlane, trackers: &mut std::collections::HashMap<HostId, bascule_health::HealthTracker>) {
    let hosts = match plane.store.list_hosts().await {
        Ok(hosts) => hosts,
        Err(error) => {
            tracing::warn!(%error, "cannot list hosts for health checks");
            return;
        }
    };
    let timeout = Duration::from_secs(plane.config.health.timeout_secs);
    let probes = hosts.iter().map(|host| async move {
        let result = match host.protocol {
            Protocol::Rdp => bascule_health::probe(bascule_health::Protocol::Rdp, &host.address, host.port, timeout)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            // VNC servers count a connection that does not log in as a failed login (TigerVNC
            // blacklists the address after five): the probe logs in with the host's password.
            _ => {
                let password = match plane.store.get_host_settings(&host.id).await {
                    Ok(Some(json)) => HostSettings::from_json(&json)
                        .ok()
                        .and_then(|s| s.password)
                        .and_then(|sealed| plane.key.decrypt(&sealed).ok()),
                    _ => None,
                };
                vnc_login_probe(&host.address, host.port, password, timeout).await
            }
        };
        (host, result)
    });
    let results = futures_util::future::join_all(probes).await;
    trackers.retain(|id, _| hosts.iter().any(|h| h.id == *id));
    for (host, result) in results {
        let tracker = trackers
            .entry(host.id.clone())
            .or_insert_with(|| bascule_health::HealthTracker::with_failure_threshold(plane.config.health.failures));
        let transition = tracker.record(&result, std::time::SystemTime::now());
        let new = match tracker.state() {
            bascule_health::Health::Healthy => Health::Healthy,
            bascule_health::Health::Unhealthy => Health::Unhealthy {
                since: now(),
                reason: tracker.last_error().unwrap_or_default().to_owned(),
            },
            _ => continue,
        };
        let _ = transition;
        let changed = !matches!(
            (&host.health, &new),
            (Health::Healthy, Health::Healthy) | (Health::Unhealthy { .. }, Health::Unhealthy { .. })
        );
        if changed {
            if let Err(error) = plane.store.set_host_health(&host.id, &new).await {
                tracing::warn!(%error, host = %host.id, "cannot record host health");
                continue;
            }
            let outcome = match &new {
                Health::Unhealthy { reason, .. } => format!("unhealthy: {reason}"),
                _ => "healthy".into(),
            };
            tracing::info!(host = %host.id, %outcome, "host health changed");
            plane.audit("system", "host.health", host.id.as_str(), None, &outcome).await;
        }
    }
}

impl ControlPlane {
    /// Whether some host passes the user's own login through to the host (RDP single sign-on).
    pub(crate) async fn needs_login_passwords(&self) -> bool {
        let Ok(hosts) = self.store.list_hosts().await else { return false };
        for host in hosts.iter().filter(|h| h.protocol == Protocol::Rdp) {
            if let Ok(Some(json)) = self.store.get_host_settings(&host.id).await
                && serde_json::from_str::<HostSettings>(&json).is_ok_and(|s| s.credentials == CredentialsMode::Passthrough) {
                    return true;
                }
        }
        false
    }
}

/// Connects to a VNC host and logs in (VncAuth with `password` when it asks), up to the server's
/// first message: the host answers, speaks RFB and accepts the gateway's credentials.
async fn vnc_login_probe(address: &str, port: u16, password: Option<Secret>, timeout: Duration) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target = format!("{address}:{port}");
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(&target).await.map_err(|e| format!("cannot connect to {target}: {e}"))?;
        let mut client = bascule_rfb::Client::new(bascule_rfb::Config {
            password: password.map(|p| p.expose().to_owned()),
            ..bascule_rfb::Config::default()
        });
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            while let Some(bytes) = client.poll_transmit() {
                stream.write_all(&bytes).await.map_err(|e| format!("{target}: {e}"))?;
            }
            while let Some(event) = client.poll_event() {
                if let bascule_rfb::Event::Connected { .. } = event {
                    let _ = stream.shutdown().await;
                    return Ok(());
                }
            }
            let n = stream.read(&mut buffer).await.map_err(|e| format!("{target}: {e}"))?;
            if n == 0 {
                return Err(format!("{target} closed the connection during the RFB handshake"));
            }
            client.handle_input(&buffer[..n]).map_err(|e| format!("{target}: {e}"))?;
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| format!("{target}: no RFB login within {} s", timeout.as_secs()))?
}

impl ControlPlane {
    /// The named sites, ready to place addresses (the report's own rules).
    pub(crate) async fn sites(&self) -> bascule_report::SiteMap {
        bascule_report::SiteMap::new(&self.store.list_sites().await.unwrap_or_default())
    }
}

/// The name of the site whose ranges contain `address`, or "".
pub(crate) fn site_of(sites: &bascule_report::SiteMap, address: IpAddr) -> String {
    sites.site_of(address).and_then(|i| sites.sites().get(i)).map(|(_, name)| name.clone()).unwrap_or_default()
}

/// Writes a live session's counters and round-trip histogram to its record's statistics.
pub(crate) async fn save_stats(plane: &ControlPlane, live: &LiveSession, id: &SessionId) {
    let stats = {
        let s = live.lock_stats();
        bascule_store::SessionStats {
            session: id.clone(),
            client_address: s.client_address.map(|a| a.to_string()),
            bytes_to_client: s.bytes_to_client,
            bytes_from_client: s.bytes_from_client,
            frames: s.frames,
            rtt_buckets: s.rtt.to_counts(),
            updated_at: now(),
        }
    };
    if let Err(error) = plane.store.upsert_session_stats(&stats).await {
        tracing::warn!(%error, session = %id, "cannot save the session's statistics");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn plane(dir: &std::path::Path) -> ControlPlane {
        let text = format!(
            "data_dir = \"{}\"\n[[resource]]\nid = \"desk\"\nname_fr = \"B\"\nname_en = \"D\"\nhost = \"127.0.0.1\"\nport = 9\n[[user]]\nname = \"agent\"\npassword_hash = \"{}\"\nresources = [\"desk\"]\n",
            dir.display(),
            crate::auth::hash_password("x"),
        );
        let config = Arc::new(Config::from_toml(&text).expect("config"));
        let key = Arc::new(SecretKey::load_or_create(dir).expect("key"));
        let audit = Arc::new(crate::audit::AuditLog::open(dir.join("audit.log")).expect("audit"));
        ControlPlane::open(config, key, audit).await.expect("control plane")
    }

    #[tokio::test]
    async fn abandoned_starts_give_their_licence_back_and_launches_rejoin_live_ones() {
        let dir = std::env::temp_dir().join(format!("bascule-control-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let plane = plane(&dir).await;
        let (user, desk) = (UserId::new("agent"), ResourceId::new("desk"));
        let first = plane.launch(&user, &desk).await.expect("launch");
        assert!(!first.rejoin);
        let again = plane.launch(&user, &desk).await.expect("second launch");
        assert!(again.rejoin, "the user's live session is rejoined, no second licence");
        assert_eq!(again.session, first.session);
        assert_eq!(plane.store.live_sessions().await.expect("live").len(), 1);
        let sessions = crate::session::Sessions::default();
        assert_eq!(plane.fail_abandoned_starts(&sessions).await.expect("sweep"), 0, "too recent to give up on");
        // The browser never came: once the ticket and the connect timeout are long past, the
        // record fails and the licence is free.
        let old = SessionRecord::start(SessionId::new("old"), user.clone(), desk.clone(), HostId::new("desk"), now().plus_seconds(-1000));
        plane.store.update_session_state(&first.session, SessionState::Failed { at: now(), reason: FailReason::TimedOut }).await.expect("reset");
        plane.store.record_session_start(&old, 10).await.expect("old start");
        assert_eq!(plane.fail_abandoned_starts(&sessions).await.expect("sweep"), 1);
        let record = plane.store.get_session(&SessionId::new("old")).await.expect("read").expect("record");
        assert!(matches!(record.state(), SessionState::Failed { reason: FailReason::TimedOut, .. }));
        assert!(plane.store.live_sessions().await.expect("live").is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
