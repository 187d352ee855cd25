//! Bascule's administration service: the one place where the inventory (hosts, pools,
//! resources), the access rules (users, groups, entitlements, policies) and the licence capacity
//! are changed.
//!
//! The REST API ([`http::router`], nested by the gateway under `/api/v1`) and the `bascule` CLI
//! both call [`Admin`], so both refuse bad input with the same reasons, in French and in English
//! ([`AdminError::message`]), and both leave the same audit trail.
//!
//! - [`settings`]: the JSON documents kept in the store's opaque settings columns
//!   ([`HostSettings`], [`ResourceSettings`]); the gateway reads them to connect.
//! - [`spec`]: what a client sends ([`HostSpec`], [`UserSpec`], …), checked field by field.
//! - [`view`]: what a client gets back ([`HostView`], …); never a password nor a TOTP secret.
//! - [`service`]: [`Admin`], its authorisation ([`Actor`]) and its audit.
//! - [`error`]: [`AdminError`], its stable codes, HTTP statuses and bilingual messages.
//! - [`hours`]: allowed-hours windows as text (`mon-fri 07:00-19:00`).
//! - [`http`]: the axum router.
//!
//! **Invariants:** every mutating call is authorised against the actor's roles and appends one
//! audit entry, whether it succeeds or is refused; backend passwords are sealed (`enc:v1:`) before
//! they reach the store; user passwords are stored as argon2id hashes only.

#![warn(missing_docs)]

pub mod error;
pub mod hours;
pub mod http;
pub mod service;
pub mod settings;
pub mod spec;
pub mod view;

pub use error::{AdminError, Conflict, Kind, Lang, Reason};
pub use http::{ROUTES, router};
pub use service::{Actor, Admin};
pub use settings::{
    CertificateRule, CredentialsMode, HostSettings, Icon, KeyboardMode, RdpSecurity,
    ResourceSettings,
};
pub use spec::{
    DrainSpec, EntitlementSpec, GroupSpec, HostSpec, LicenceSpec, PasswordSpec, PolicySpec,
    PoolSpec, ResourceSpec, UserSpec,
};
pub use view::{
    EffectivePolicyView, EntitlementView, GroupView, HostView, LicenceView, PolicyView, PoolView,
    ResourceView, SessionView, UserView,
};

/// The licence capacity of a new database (the reference site's), until an admin sets another.
pub const DEFAULT_LICENCES: u32 = 1200;

/// Gives a new database its default licence capacity; leaves a set one alone.
pub async fn ensure_licence_capacity(store: &bascule_store::Store) -> Result<(), bascule_store::StoreError> {
    if store.get_setting("licence_capacity").await?.is_none() {
        store.set_licence_capacity(DEFAULT_LICENCES).await?;
    }
    Ok(())
}
