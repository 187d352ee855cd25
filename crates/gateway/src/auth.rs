//! Local accounts, portal sessions, login protection and launch tickets.
//!
//! Everything here is in memory: a gateway restart signs everybody out, which is acceptable until
//! the control plane (with its database) arrives.

use crate::config::{Config, LoginSettings};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use rand::RngCore;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lifetime of a launch ticket.
pub(crate) const TICKET_LIFETIME: Duration = Duration::from_secs(60);

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

/// A signed-in user's portal session.
#[derive(Debug, Clone)]
pub(crate) struct PortalSession {
    pub(crate) id: String,
    pub(crate) user: String,
    pub(crate) csrf: String,
    /// The login password, kept in memory only when a resource passes it through to its host.
    pub(crate) password: Option<crate::secrets::Secret>,
    last_seen: Instant,
}

/// The outcome of a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LoginOutcome {
    Success { session_id: String },
    WrongCredentials,
    Locked,
    Throttled,
}

#[derive(Debug, Default)]
struct AccountState {
    failures: u32,
    locked_until: Option<Instant>,
}

#[derive(Debug)]
struct Ticket {
    session_id: String,
    user: String,
    resource: String,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<String, PortalSession>,
    accounts: HashMap<String, AccountState>,
    addresses: HashMap<IpAddr, Vec<Instant>>,
    tickets: HashMap<String, Ticket>,
}

/// Authentication state of the gateway.
#[derive(Debug)]
pub(crate) struct Auth {
    settings: LoginSettings,
    inner: Mutex<Inner>,
    /// A hash to verify against when the user does not exist, so that timing does not tell.
    dummy_hash: String,
}

impl Auth {
    pub(crate) fn new(settings: LoginSettings) -> Auth {
        Auth { settings, inner: Mutex::new(Inner::default()), dummy_hash: hash_password("not a password") }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks a password, applying per-address throttling and per-account lockout.
    pub(crate) fn login(&self, config: &Config, user: &str, password: &str, address: IpAddr, now: Instant) -> LoginOutcome {
        {
            let mut inner = self.lock();
            let window = Duration::from_secs(self.settings.address_window_secs);
            let recent = inner.addresses.entry(address).or_default();
            recent.retain(|t| now.duration_since(*t) < window);
            if recent.len() >= self.settings.max_failures_per_address as usize {
                return LoginOutcome::Throttled;
            }
            if let Some(state) = inner.accounts.get(user) {
                if state.locked_until.is_some_and(|until| now < until) {
                    return LoginOutcome::Locked;
                }
            }
        }
        // Verify outside the lock: argon2 takes tens of milliseconds on purpose.
        let hash = config.user(user).map(|u| u.password_hash.as_str()).unwrap_or(&self.dummy_hash);
        let verified = PasswordHash::new(hash)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok());
        let valid = verified && config.user(user).is_some();
        let mut inner = self.lock();
        if valid {
            inner.accounts.remove(user);
            let password = config.needs_login_passwords().then(|| crate::secrets::Secret::new(password.to_owned()));
            let session =
                PortalSession { id: random_token(), user: user.to_owned(), csrf: random_token(), password, last_seen: now };
            let session_id = session.id.clone();
            inner.sessions.insert(session_id.clone(), session);
            LoginOutcome::Success { session_id }
        } else {
            inner.addresses.entry(address).or_default().push(now);
            let state = inner.accounts.entry(user.to_owned()).or_default();
            state.failures += 1;
            if state.failures >= self.settings.max_failures {
                state.failures = 0;
                state.locked_until = Some(now + Duration::from_secs(self.settings.lockout_secs));
                return LoginOutcome::Locked;
            }
            LoginOutcome::WrongCredentials
        }
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
    pub(crate) fn issue_ticket(&self, session: &PortalSession, resource: &str, now: Instant) -> String {
        let mut inner = self.lock();
        inner.tickets.retain(|_, t| t.expires > now);
        let ticket = random_token();
        inner.tickets.insert(
            ticket.clone(),
            Ticket {
                session_id: session.id.clone(),
                user: session.user.clone(),
                resource: resource.to_owned(),
                expires: now + TICKET_LIFETIME,
            },
        );
        ticket
    }

    /// Consumes a ticket: it must exist, be fresh, and belong to this portal session.
    /// Returns (user, resource id).
    pub(crate) fn redeem_ticket(&self, ticket: &str, session_id: &str, now: Instant) -> Option<(String, String)> {
        let mut inner = self.lock();
        let found = inner.tickets.remove(ticket)?;
        if found.expires <= now || !same_secret(&found.session_id, session_id) {
            return None;
        }
        Some((found.user, found.resource))
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

    fn config() -> Config {
        let hash = hash_password("right");
        Config::from_toml(&format!("[[user]]\nname = \"agent\"\npassword_hash = \"{hash}\"\n")).expect("config")
    }

    #[test]
    fn lockout_after_repeated_failures_even_with_the_right_password() {
        let config = config();
        let auth = Auth::new(LoginSettings { max_failures: 3, ..LoginSettings::default() });
        let now = Instant::now();
        let ip: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..2 {
            assert_eq!(auth.login(&config, "agent", "wrong", ip, now), LoginOutcome::WrongCredentials);
        }
        assert_eq!(auth.login(&config, "agent", "wrong", ip, now), LoginOutcome::Locked);
        assert_eq!(auth.login(&config, "agent", "right", ip, now), LoginOutcome::Locked);
        let later = now + Duration::from_secs(901);
        assert!(matches!(auth.login(&config, "agent", "right", ip, later), LoginOutcome::Success { .. }));
    }

    #[test]
    fn one_address_is_throttled() {
        let config = config();
        let auth = Auth::new(LoginSettings { max_failures_per_address: 4, ..LoginSettings::default() });
        let now = Instant::now();
        let ip: IpAddr = [10, 0, 0, 2].into();
        for i in 0..4 {
            assert_eq!(auth.login(&config, &format!("user{i}"), "x", ip, now), LoginOutcome::WrongCredentials);
        }
        assert_eq!(auth.login(&config, "agent", "right", ip, now), LoginOutcome::Throttled);
        let other: IpAddr = [10, 0, 0, 3].into();
        assert!(matches!(auth.login(&config, "agent", "right", other, now), LoginOutcome::Success { .. }));
    }

    #[test]
    fn tickets_are_single_use_bound_and_short_lived() {
        let config = config();
        let auth = Auth::new(LoginSettings::default());
        let now = Instant::now();
        let ip: IpAddr = [127, 0, 0, 1].into();
        let LoginOutcome::Success { session_id } = auth.login(&config, "agent", "right", ip, now) else { panic!() };
        let session = auth.session(&session_id, now).expect("session");
        let ticket = auth.issue_ticket(&session, "desk", now);
        assert_eq!(auth.redeem_ticket(&ticket, "another session", now), None, "bound to the session");
        let ticket = auth.issue_ticket(&session, "desk", now);
        assert_eq!(auth.redeem_ticket(&ticket, &session_id, now), Some(("agent".into(), "desk".into())));
        assert_eq!(auth.redeem_ticket(&ticket, &session_id, now), None, "single use");
        let ticket = auth.issue_ticket(&session, "desk", now);
        assert_eq!(auth.redeem_ticket(&ticket, &session_id, now + TICKET_LIFETIME), None, "expired");
    }
}
