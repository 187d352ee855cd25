//! Directory authentication for Bascule: Active Directory or OpenLDAP over LDAP, LDAPS or StartTLS.
//!
//! [`Directory::authenticate`] finds the user's entry with a service account (or anonymously), binds as
//! the user with the given password on a separate short-lived connection, then collects the user's groups
//! (`memberOf` values, or a group search). The service-account connection is kept and reused; it is
//! re-established when it fails. Every network operation is bounded by [`DirectoryConfig::timeout`].

use std::sync::Arc;
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use tokio::sync::Mutex;

/// How a user's groups are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupLookup {
    /// The `memberOf` attribute of the user's entry (Active Directory; OpenLDAP with the memberof overlay).
    MemberOf,
    /// A subtree search under `base_dn` with `filter`, where `{dn}` is replaced by the user's DN and
    /// `{login}` by the login, both escaped for a filter (RFC 4515). Example: `(member={dn})`.
    Search { base_dn: String, filter: String },
}

/// Where and how to reach the directory.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS (refused with `ldaps://`).
    pub starttls: bool,
    /// PEM certificate(s) to trust for LDAPS/StartTLS (a private CA, or the server's self-signed
    /// certificate). `None`: the public web PKI roots (webpki-roots).
    pub ca_certificate_pem: Option<Vec<u8>>,
    /// Service account used for the searches; `None` searches anonymously.
    pub bind_dn: Option<String>,
    pub bind_password: Option<String>,
    /// Where users are searched (subtree).
    pub base_dn: String,
    /// Attribute matched against the login: `uid` (OpenLDAP) or `sAMAccountName` (AD).
    pub login_attribute: String,
    /// Extra filter ANDed with the login match, e.g. `(objectClass=person)`; it must be parenthesised.
    pub user_filter: Option<String>,
    pub groups: GroupLookup,
    /// Bound on each connection attempt and each LDAP operation.
    pub timeout: Duration,
}

/// An authenticated directory user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    pub dn: String,
    /// The value of the login attribute as stored in the directory (or the login given, if absent).
    pub login: String,
    /// `displayName`, else `cn`.
    pub display_name: Option<String>,
    pub mail: Option<String>,
    /// Group DNs.
    pub groups: Vec<String>,
    /// The `cn` of each group, in the same order as `groups` when every group has one.
    pub group_names: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Wrong password, unknown user, empty password or an ambiguous login: deliberately one error.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("directory unreachable: {0}")]
    Unreachable(String),
    #[error("directory timed out")]
    Timeout,
    #[error("TLS failure with the directory: {0}")]
    Tls(String),
    #[error("directory misconfigured: {0}")]
    Misconfigured(String),
    #[error("directory protocol error: {0}")]
    Protocol(String),
}

impl DirectoryError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DirectoryError::InvalidCredentials => "directory.invalid_credentials",
            DirectoryError::Unreachable(_) => "directory.unreachable",
            DirectoryError::Timeout => "directory.timeout",
            DirectoryError::Tls(_) => "directory.tls",
            DirectoryError::Misconfigured(_) => "directory.misconfigured",
            DirectoryError::Protocol(_) => "directory.protocol",
        }
    }

    /// Errors after which a cached connection must not be reused.
    fn is_connection_failure(&self) -> bool {
        matches!(
            self,
            DirectoryError::Unreachable(_) | DirectoryError::Timeout | DirectoryError::Tls(_)
        )
    }
}

const RC_INVALID_CREDENTIALS: u32 = 49;
const RC_NO_SUCH_OBJECT: u32 = 32;

/// An LDAP directory used to authenticate users.
pub struct Directory {
    config: DirectoryConfig,
    tls: Option<Arc<ClientConfig>>,
    /// The service-account connection, reused across calls (an `Ldap` handle multiplexes requests).
    service: Mutex<Option<Ldap>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

impl Directory {
    /// Checks the configuration; does not connect.
    pub fn new(config: DirectoryConfig) -> Result<Self, DirectoryError> {
        let mis = |m: &str| Err(DirectoryError::Misconfigured(m.to_owned()));
        let lower = config.url.to_ascii_lowercase();
        let ldaps = lower.starts_with("ldaps://");
        if !ldaps && !lower.starts_with("ldap://") {
            return mis("url must start with ldap:// or ldaps://");
        }
        if ldaps && config.starttls {
            return mis("starttls is for ldap:// URLs, not ldaps://");
        }
        if config.timeout.is_zero() {
            return mis("timeout must be positive");
        }
        if config.base_dn.trim().is_empty() {
            return mis("base_dn is empty");
        }
        if config.login_attribute.is_empty()
            || !config
                .login_attribute
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';')
        {
            return mis("login_attribute must be an attribute name");
        }
        if let Some(f) = &config.user_filter
            && !(f.starts_with('(') && f.ends_with(')'))
        {
            return mis("user_filter must be enclosed in parentheses");
        }
        if config.bind_dn.is_some() != config.bind_password.is_some() {
            return mis("bind_dn and bind_password go together");
        }
        if let GroupLookup::Search { base_dn, filter } = &config.groups
            && (base_dn.trim().is_empty() || !filter.starts_with('('))
        {
            return mis("group search needs a base_dn and a parenthesised filter");
        }
        let tls = if ldaps || config.starttls {
            Some(tls_config(config.ca_certificate_pem.as_deref())?)
        } else {
            None
        };
        Ok(Directory {
            config,
            tls,
            service: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &DirectoryConfig {
        &self.config
    }

    /// Authenticates `login` with `password`. Unknown users and wrong passwords give the same
    /// [`DirectoryError::InvalidCredentials`]; an empty password is refused before any network access.
    pub async fn authenticate(
        &self,
        login: &str,
        password: &str,
    ) -> Result<DirectoryUser, DirectoryError> {
        // An empty password would be an "unauthenticated bind" (RFC 4513 §5.1.2), which many servers
        // accept as success: refuse it here, never send it.
        if password.is_empty() || login.is_empty() || login.contains('\0') {
            return Err(DirectoryError::InvalidCredentials);
        }
        let entry = self.find_user(login).await?;
        self.bind_as_user(&entry.dn, password).await?;
        let (groups, group_names) = match &self.config.groups {
            GroupLookup::MemberOf => {
                let groups = attr_values(&entry, "memberOf");
                let names = groups
                    .iter()
                    .filter_map(|dn| first_rdn_value(dn, "cn"))
                    .collect();
                (groups, names)
            }
            GroupLookup::Search { base_dn, filter } => {
                let filter = filter
                    .replace("{dn}", &escape_filter_value(&entry.dn))
                    .replace("{login}", &escape_filter_value(login));
                let base_dn = base_dn.clone();
                let entries = self
                    .with_service(|mut ldap, t| {
                        let (base_dn, filter) = (base_dn.clone(), filter.clone());
                        async move { search(&mut ldap, t, &base_dn, &filter, &["cn"]).await }
                    })
                    .await?;
                let mut groups = Vec::new();
                let mut names = Vec::new();
                for e in entries {
                    if let Some(cn) = attr_values(&e, "cn").into_iter().next() {
                        names.push(cn);
                    }
                    groups.push(e.dn);
                }
                (groups, names)
            }
        };
        let first = |name: &str| attr_values(&entry, name).into_iter().next();
        Ok(DirectoryUser {
            login: first(&self.config.login_attribute).unwrap_or_else(|| login.to_owned()),
            display_name: first("displayName").or_else(|| first("cn")),
            mail: first("mail"),
            dn: entry.dn,
            groups,
            group_names,
        })
    }

    async fn find_user(&self, login: &str) -> Result<SearchEntry, DirectoryError> {
        let m = format!(
            "({}={})",
            self.config.login_attribute,
            escape_filter_value(login)
        );
        let filter = match &self.config.user_filter {
            Some(extra) => format!("(&{m}{extra})"),
            None => m,
        };
        let attrs = [
            self.config.login_attribute.as_str(),
            "cn",
            "displayName",
            "mail",
            "memberOf",
        ];
        let base = self.config.base_dn.clone();
        let mut entries = self
            .with_service(|mut ldap, t| {
                let (base, filter) = (base.clone(), filter.clone());
                let attrs: Vec<String> = attrs.iter().map(|s| s.to_string()).collect();
                async move { search(&mut ldap, t, &base, &filter, &attrs).await }
            })
            .await?;
        match entries.len() {
            1 => Ok(entries.remove(0)),
            0 => Err(DirectoryError::InvalidCredentials),
            n => {
                tracing::warn!(
                    entries = n,
                    "directory login matches several entries; refusing it"
                );
                Err(DirectoryError::InvalidCredentials)
            }
        }
    }

    /// Binds as the user on a fresh connection, then drops it.
    async fn bind_as_user(&self, dn: &str, password: &str) -> Result<(), DirectoryError> {
        debug_assert!(!password.is_empty());
        let t = self.config.timeout;
        let mut ldap = self.connect().await?;
        let res = timed(t, ldap.simple_bind(dn, password)).await;
        // Best effort, not awaited beyond the timeout: the connection is dropped anyway.
        let _ = tokio::time::timeout(t, ldap.unbind()).await;
        match res?.rc {
            0 => Ok(()),
            RC_INVALID_CREDENTIALS => Err(DirectoryError::InvalidCredentials),
            // 53 unwillingToPerform (e.g. AD account disabled), 19 constraintViolation (locked out)...
            rc => {
                tracing::info!(rc, "directory refused the user bind");
                Err(DirectoryError::InvalidCredentials)
            }
        }
    }

    /// Runs `op` on the service connection; on a connection failure, reconnects and retries once.
    async fn with_service<T, F, Fut>(&self, op: F) -> Result<T, DirectoryError>
    where
        F: Fn(Ldap, Duration) -> Fut,
        Fut: Future<Output = Result<T, DirectoryError>>,
    {
        let t = self.config.timeout;
        let mut fresh = false;
        loop {
            let (ldap, is_new) = self.service_handle().await?;
            fresh |= is_new;
            match op(ldap, t).await {
                Err(e) if e.is_connection_failure() => {
                    *self.service.lock().await = None;
                    if fresh {
                        return Err(e);
                    }
                    tracing::debug!(error = %e, "directory service connection failed; reconnecting");
                    fresh = true;
                }
                other => return other,
            }
        }
    }

    /// The cached service connection, or a new one (bound with the service account).
    async fn service_handle(&self) -> Result<(Ldap, bool), DirectoryError> {
        let mut guard = self.service.lock().await;
        if let Some(ldap) = guard.as_mut()
            && !ldap.is_closed()
        {
            return Ok((ldap.clone(), false));
        }
        *guard = None;
        let mut ldap = self.connect().await?;
        if let (Some(dn), Some(pw)) = (&self.config.bind_dn, &self.config.bind_password) {
            if pw.is_empty() {
                return Err(DirectoryError::Misconfigured(
                    "the service account password is empty".into(),
                ));
            }
            let res = timed(self.config.timeout, ldap.simple_bind(dn, pw)).await?;
            match res.rc {
                0 => {}
                RC_INVALID_CREDENTIALS => {
                    return Err(DirectoryError::Misconfigured(
                        "the service account bind was refused".into(),
                    ));
                }
                rc => {
                    return Err(DirectoryError::Protocol(format!(
                        "service account bind: result code {rc}"
                    )));
                }
            }
        }
        *guard = Some(ldap.clone());
        Ok((ldap, true))
    }

    async fn connect(&self) -> Result<Ldap, DirectoryError> {
        let t = self.config.timeout;
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(t)
            .set_starttls(self.config.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, ldap) =
            match tokio::time::timeout(t, LdapConnAsync::with_settings(settings, &self.config.url))
                .await
            {
                Err(_) => return Err(DirectoryError::Timeout),
                Ok(r) => r.map_err(map_ldap_error)?,
            };
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "directory connection ended");
            }
        });
        Ok(ldap)
    }
}

async fn timed<T>(
    t: Duration,
    fut: impl Future<Output = Result<T, LdapError>>,
) -> Result<T, DirectoryError> {
    match tokio::time::timeout(t, fut).await {
        Err(_) => Err(DirectoryError::Timeout),
        Ok(r) => r.map_err(map_ldap_error),
    }
}

async fn search<S: AsRef<str> + Send + Sync>(
    ldap: &mut Ldap,
    t: Duration,
    base: &str,
    filter: &str,
    attrs: &[S],
) -> Result<Vec<SearchEntry>, DirectoryError> {
    let res = timed(t, ldap.search(base, Scope::Subtree, filter, attrs)).await?;
    match res.1.rc {
        // 0, or partial results / size limit with entries: take what came
        0 | 4 | 9 | 10 => {}
        RC_NO_SUCH_OBJECT => {
            return Err(DirectoryError::Misconfigured(format!(
                "search base {base:?} does not exist"
            )));
        }
        50 => {
            return Err(DirectoryError::Misconfigured(
                "the service account may not search".into(),
            ));
        }
        rc => {
            return Err(DirectoryError::Protocol(format!(
                "search: result code {rc} {}",
                res.1.text
            )));
        }
    }
    // Search references (AD referrals) are skipped.
    Ok(res
        .0
        .into_iter()
        .filter(|e| !e.is_ref())
        .map(SearchEntry::construct)
        .collect())
}

fn map_ldap_error(e: LdapError) -> DirectoryError {
    use std::io::ErrorKind as K;
    match e {
        LdapError::Timeout { .. } => DirectoryError::Timeout,
        LdapError::Io { source } => {
            if let Some(inner) = source.get_ref()
                && let Some(tls) = inner.downcast_ref::<rustls::Error>()
            {
                return DirectoryError::Tls(tls.to_string());
            }
            match source.kind() {
                K::TimedOut => DirectoryError::Timeout,
                K::ConnectionRefused
                | K::ConnectionReset
                | K::ConnectionAborted
                | K::NotConnected
                | K::BrokenPipe
                | K::UnexpectedEof
                | K::AddrNotAvailable
                | K::HostUnreachable
                | K::NetworkUnreachable
                | K::NetworkDown
                | K::NotFound => DirectoryError::Unreachable(source.to_string()),
                _ => DirectoryError::Protocol(source.to_string()),
            }
        }
        LdapError::Rustls { source } => DirectoryError::Tls(source.to_string()),
        LdapError::DNSName { source } => DirectoryError::Tls(source.to_string()),
        LdapError::UrlParsing { source } => DirectoryError::Misconfigured(format!("url: {source}")),
        LdapError::UnknownScheme(s) => {
            DirectoryError::Misconfigured(format!("unknown URL scheme {s}"))
        }
        LdapError::OpSend { .. } | LdapError::ResultRecv { .. } | LdapError::EndOfStream => {
            DirectoryError::Unreachable("the connection was closed".into())
        }
        LdapError::LdapResult { result } if result.rc == RC_INVALID_CREDENTIALS => {
            DirectoryError::InvalidCredentials
        }
        // A refused StartTLS (e.g. the server has no certificate) is a TLS failure.
        LdapError::LdapResult { result } if result.rc == 2 || result.rc == 52 => {
            DirectoryError::Tls(format!(
                "StartTLS refused: result code {} {}",
                result.rc, result.text
            ))
        }
        other => DirectoryError::Protocol(other.to_string()),
    }
}

fn tls_config(pem: Option<&[u8]>) -> Result<Arc<ClientConfig>, DirectoryError> {
    let mut roots = RootCertStore::empty();
    match pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| {
                    DirectoryError::Misconfigured(format!("ca_certificate_pem: {e}"))
                })?;
                roots.add(cert).map_err(|e| {
                    DirectoryError::Misconfigured(format!("ca_certificate_pem: {e}"))
                })?;
            }
            if roots.is_empty() {
                return Err(DirectoryError::Misconfigured(
                    "ca_certificate_pem holds no certificate".into(),
                ));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| DirectoryError::Misconfigured(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Escapes a value for an LDAP search filter (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL become `\XX`.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Values of `name` in `entry`, attribute names compared case-insensitively.
fn attr_values(entry: &SearchEntry, name: &str) -> Vec<String> {
    entry
        .attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.iter().cloned())
        .collect()
}

/// The value of the first RDN of `dn` if its type is `attr` (`cn=Domain Admins,ou=...` → `Domain Admins`),
/// with RFC 4514 escapes (`\,` and `\2C`) undone.
fn first_rdn_value(dn: &str, attr: &str) -> Option<String> {
    let (ty, rest) = dn.split_once('=')?;
    if !ty.trim().eq_ignore_ascii_case(attr) {
        return None;
    }
    let mut out: Vec<u8> = Vec::new();
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b',' | b'+' => break,
            b'\\' if i + 1 < bytes.len() => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(b);
                    i += 3;
                } else {
                    out.push(bytes[i + 1]);
                    i += 2;
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(|s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_filter_metacharacters() {
        assert_eq!(escape_filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(escape_filter_value("a\\b\0"), "a\\5cb\\00");
        assert_eq!(escape_filter_value("jean-éric"), "jean-éric");
    }

    #[test]
    fn group_names_from_dns() {
        assert_eq!(
            first_rdn_value("cn=admins,ou=groups,dc=example,dc=org", "cn").as_deref(),
            Some("admins")
        );
        assert_eq!(
            first_rdn_value("CN=Smith\\, John,OU=x", "cn").as_deref(),
            Some("Smith, John")
        );
        assert_eq!(
            first_rdn_value("CN=a\\2Cb,OU=x", "cn").as_deref(),
            Some("a,b")
        );
        assert_eq!(first_rdn_value("ou=x,dc=y", "cn"), None);
    }

    fn config(url: &str) -> DirectoryConfig {
        DirectoryConfig {
            url: url.into(),
            starttls: false,
            ca_certificate_pem: None,
            bind_dn: None,
            bind_password: None,
            base_dn: "dc=example,dc=org".into(),
            login_attribute: "uid".into(),
            user_filter: None,
            groups: GroupLookup::MemberOf,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn rejects_bad_configuration() {
        let bad =
            |c: DirectoryConfig| matches!(Directory::new(c), Err(DirectoryError::Misconfigured(_)));
        assert!(bad(config("http://x")));
        assert!(bad(DirectoryConfig {
            starttls: true,
            ..config("ldaps://x")
        }));
        assert!(bad(DirectoryConfig {
            timeout: Duration::ZERO,
            ..config("ldap://x")
        }));
        assert!(bad(DirectoryConfig {
            login_attribute: "uid)(x".into(),
            ..config("ldap://x")
        }));
        assert!(bad(DirectoryConfig {
            ca_certificate_pem: Some(b"nope".to_vec()),
            ..config("ldaps://x")
        }));
        assert!(Directory::new(config("ldaps://x")).is_ok());
    }

    #[tokio::test]
    async fn empty_password_is_refused_before_connecting() {
        // Nothing listens on port 1: a connection attempt would give Unreachable.
        let d = Directory::new(config("ldap://127.0.0.1:1")).expect("config");
        assert!(matches!(
            d.authenticate("alice", "").await,
            Err(DirectoryError::InvalidCredentials)
        ));
        assert!(matches!(
            d.authenticate("alice", "x").await,
            Err(DirectoryError::Unreachable(_))
        ));
    }
}
