//! Portal sessions, login protection, second-factor steps and launch tickets.
//!
//! These live in the node's memory: a restart signs everybody out (their desktops stay on their
//! hosts, and their session records become *disconnected*). Who the users are, their password
//! hashes and TOTP secrets are in the database (see `control.rs`).

use crate::config::LoginSettings;
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use rand::RngCore;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lifetime of a launch ticket.
pub(crate) const TICKET_LIFETIME: Duration = Duration::from_secs(60);

/// Lifetime of the step between the password and the TOTP code.
pub(crate) const MFA_LIFETIME: Duration = Duration::from_secs(300);

/// A random token, URL-safe.
pub(crate) fn random_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two secrets in constant time.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a password against an argon2 PHC string.
pub(crate) fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Checks a password off the async workers, at most one hash per core at a time: a wave of
/// logins is served first come, first served (argon2id takes ~19 MiB and tens of milliseconds
/// each on purpose; 300 at once would take 6 GB and finish all together at the end).
pub(crate) async fn verify_password_async(hash: String, password: String) -> bool {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let permits = PERMITS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
    });
    let Ok(_permit) = permits.acquire().await else { return false };
    tokio::task::spawn_blocking(move || verify_password(&hash, &password)).await.unwrap_or(false)
}

/// A signed-in user's portal session.
#[derive(Debug, Clone)]
pub(crate) struct PortalSession {
    pub(crate) id: String,
    /// The user's id in the database.
    pub(crate) user: String,
    pub(crate) csrf: String,
    /// The login password, kept in memory only when a host passes it through.
    pub(crate) password: Option<crate::secrets::Secret>,
    last_seen: Instant,
}

/// A user who gave the right password and still has to give a TOTP code.
#[derive(Debug, Clone)]
pub(crate) struct PendingMfa {
    pub(crate) user: String,
    pub(crate) login: String,
    pub(crate) password: Option<crate::secrets::Secret>,
    /// A secret being enrolled (not stored until a first code proves the app has it).
    pub(crate) enrolling: Option<String>,
    pub(crate) csrf: String,
    expires: Instant,
}

/// Whether an attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    Open,
    Locked,
    Throttled,
}

#[derive(Debug, Default)]
struct AccountState {
    failures: u32,
    locked_until: Option<Instant>,
}

#[derive(Debug)]
struct Ticket<T> {
    session_id: String,
    launch: T,
    expires: Instant,
}

#[derive(Debug)]
struct Inner<T> {
    sessions: HashMap<String, PortalSession>,
    pending: HashMap<String, PendingMfa>,
    accounts: HashMap<String, AccountState>,
    addresses: HashMap<IpAddr, Vec<Instant>>,
    tickets: HashMap<String, Ticket<T>>,
    /// Last TOTP time step accepted per user: a code is good once.
    totp_steps: HashMap<String, u64>,
}

impl<T> Default for Inner<T> {
    fn default() -> Self {
        Inner {
            sessions: HashMap::new(),
            pending: HashMap::new(),
            accounts: HashMap::new(),
            addresses: HashMap::new(),
            tickets: HashMap::new(),
            totp_steps: HashMap::new(),
        }
    }
}

/// Authentication state of the gateway; `T` is what a launch ticket carries.
#[derive(Debug)]
pub(crate) struct Auth<T> {
    settings: LoginSettings,
    inner: Mutex<Inner<T>>,
    /// A hash to verify against when the user does not exist, so that timing does not tell.
    pub(crate) dummy_hash: String,
}

impl<T: Clone> Auth<T> {
    pub(crate) fn new(settings: LoginSettings) -> Auth<T> {
        Auth { settings, inner: Mutex::new(Inner::default()), dummy_hash: hash_password("not a password") }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `login` may try from `address` now (per-address throttling, per-account lockout).
    pub(crate) fn gate(&self, login: &str, address: IpAddr, now: Instant) -> Gate {
        let mut inner = self.lock();
        let window = Duration::from_secs(self.settings.address_window_secs);
        let recent = inner.addresses.entry(address).or_default();
        recent.retain(|t| now.duration_since(*t) < window);
        if recent.len() >= self.settings.max_failures_per_address as usize {
            return Gate::Throttled;
        }
        if inner.accounts.get(login).is_some_and(|s| s.locked_until.is_some_and(|until| now < until)) {
            return Gate::Locked;
        }
        Gate::Open
    }

    /// Counts a failed password or code; returns `Gate::Locked` when this failure locks the
    /// account.
    pub(crate) fn failure(&self, login: &str, address: IpAddr, now: Instant) -> Gate {
        let mut inner = self.lock();
        inner.addresses.entry(address).or_default().push(now);
        let state = inner.accounts.entry(login.to_owned()).or_default();
        state.failures += 1;
        if state.failures >= self.settings.max_failures {
            state.failures = 0;
            state.locked_until = Some(now + Duration::from_secs(self.settings.lockout_secs));
            return Gate::Locked;
        }
        Gate::Open
    }

    /// Clears the account's failures (after a complete login, or a helpdesk unlock).
    pub(crate) fn unlock(&self, login: &str) {
        self.lock().accounts.remove(login);
    }

    /// Whether the account is locked now.
    pub(crate) fn is_locked(&self, login: &str, now: Instant) -> bool {
        self.lock().accounts.get(login).is_some_and(|s| s.locked_until.is_some_and(|until| now < until))
    }

    /// Opens a portal session.
    pub(crate) fn open_session(&self, user: &str, password: Option<crate::secrets::Secret>, now: Instant) -> PortalSession {
        let session = PortalSession { id: random_token(), user: user.to_owned(), csrf: random_token(), password, last_seen: now };
        self.lock().sessions.insert(session.id.clone(), session.clone());
        session
    }

    /// Starts the TOTP step; returns its token (a cookie).
    pub(crate) fn begin_mfa(
        &self,
        user: &str,
        login: &str,
        password: Option<crate::secrets::Secret>,
        enrolling: Option<String>,
        now: Instant,
    ) -> String {
        let token = random_token();
        let mut inner = self.lock();
        inner.pending.retain(|_, p| p.expires > now);
        inner.pending.insert(
            token.clone(),
            PendingMfa {
                user: user.to_owned(),
                login: login.to_owned(),
                password,
                enrolling,
                csrf: random_token(),
                expires: now + MFA_LIFETIME,
            },
        );
        token
    }

    /// The pending TOTP step of this token, if still fresh.
    pub(crate) fn pending(&self, token: &str, now: Instant) -> Option<PendingMfa> {
        let inner = self.lock();
        inner.pending.get(token).filter(|p| p.expires > now).cloned()
    }

    /// Ends a pending TOTP step.
    pub(crate) fn end_mfa(&self, token: &str) {
        self.lock().pending.remove(token);
    }

    /// The last accepted TOTP step of a user.
    pub(crate) fn last_totp_step(&self, user: &str) -> Option<u64> {
        self.lock().totp_steps.get(user).copied()
    }

    /// Records an accepted TOTP step.
    pub(crate) fn use_totp_step(&self, user: &str, step: u64) {
        self.lock().totp_steps.insert(user.to_owned(), step);
    }

    /// The live portal session with this id, refreshed.
    pub(crate) fn session(&self, id: &str, now: Instant) -> Option<PortalSession> {
        let mut inner = self.lock();
        let idle = Duration::from_secs(self.settings.session_idle_secs);
        let session = inner.sessions.get_mut(id)?;
        if now.duration_since(session.last_seen) > idle {
            inner.sessions.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    pub(crate) fn logout(&self, id: &str) {
        let mut inner = self.lock();
        inner.sessions.remove(id);
        inner.tickets.retain(|_, t| t.session_id != id);
    }

    /// Issues a single-use launch ticket bound to the portal session.
    pub(crate) fn issue_ticket(&self, session: &PortalSession, launch: T, now: Instant) -> String {
        let mut inner = self.lock();
        inner.tickets.retain(|_, t| t.expires > now);
        let ticket = random_token();
        inner.tickets.insert(
            ticket.clone(),
            Ticket { session_id: session.id.clone(), launch, expires: now + TICKET_LIFETIME },
        );
        ticket
    }

    /// Consumes a ticket: it must exist, be fresh, and belong to this portal session.
    pub(crate) fn redeem_ticket(&self, ticket: &str, session_id: &str, now: Instant) -> Option<T> {
        let mut inner = self.lock();
        let found = inner.tickets.remove(ticket)?;
        if found.expires <= now || !same_secret(&found.session_id, session_id) {
            return None;
        }
        Some(found.launch)
    }
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    // INVARIANT: 16 random bytes always make a valid salt, and hashing into a String cannot fail
    // with default parameters; an empty result would only make every login fail.
    let Ok(salt) = SaltString::encode_b64(&salt) else { return String::new() };
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_after_repeated_failures() {
        let auth: Auth<String> = Auth::new(LoginSettings { max_failures: 3, ..LoginSettings::default() });
        let now = Instant::now();
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert_eq!(auth.failure("agent", ip, now), Gate::Open);
        assert_eq!(auth.failure("agent", ip, now), Gate::Open);
        assert_eq!(auth.failure("agent", ip, now), Gate::Locked);
        assert_eq!(auth.gate("agent", ip, now), Gate::Locked);
        assert!(auth.is_locked("agent", now));
        assert_eq!(auth.gate("other", ip, now), Gate::Open);
        let later = now + Duration::from_secs(901);
        assert_eq!(auth.gate("agent", ip, later), Gate::Open);
        auth.failure("agent", ip, now);
        auth.failure("agent", ip, now);
        auth.failure("agent", ip, now);
        auth.unlock("agent");
        assert_eq!(auth.gate("agent", ip, now), Gate::Open, "the helpdesk unlocked it");
    }

    #[test]
    fn one_address_is_throttled() {
        let auth: Auth<String> = Auth::new(LoginSettings { max_failures_per_address: 4, ..LoginSettings::default() });
        let now = Instant::now();
        let ip: IpAddr = [10, 0, 0, 2].into();
        for i in 0..4 {
            auth.failure(&format!("user{i}"), ip, now);
        }
        assert_eq!(auth.gate("agent", ip, now), Gate::Throttled);
        assert_eq!(auth.gate("agent", [10, 0, 0, 3].into(), now), Gate::Open);
    }

    #[test]
    fn tickets_are_single_use_bound_and_short_lived() {
        let auth: Auth<String> = Auth::new(LoginSettings::default());
        let now = Instant::now();
        let session = auth.open_session("agent", None, now);
        let ticket = auth.issue_ticket(&session, "desk".into(), now);
        assert_eq!(auth.redeem_ticket(&ticket, "another session", now), None, "bound to the session");
        let ticket = auth.issue_ticket(&session, "desk".into(), now);
        assert_eq!(auth.redeem_ticket(&ticket, &session.id, now), Some("desk".into()));
        assert_eq!(auth.redeem_ticket(&ticket, &session.id, now), None, "single use");
        let ticket = auth.issue_ticket(&session, "desk".into(), now);
        assert_eq!(auth.redeem_ticket(&ticket, &session.id, now + TICKET_LIFETIME), None, "expired");
        let ticket = auth.issue_ticket(&session, "desk".into(), now);
        auth.logout(&session.id);
        assert_eq!(auth.redeem_ticket(&ticket, &session.id, now), None, "logging out voids tickets");
    }

    #[test]
    fn the_totp_step_expires() {
        let auth: Auth<String> = Auth::new(LoginSettings::default());
        let now = Instant::now();
        let token = auth.begin_mfa("u1", "agent", None, Some("SECRET".into()), now);
        assert_eq!(auth.pending(&token, now).map(|p| p.login), Some("agent".into()));
        assert!(auth.pending(&token, now + MFA_LIFETIME).is_none());
        auth.end_mfa(&token);
        assert!(auth.pending(&token, now).is_none());
    }
}
