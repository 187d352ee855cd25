//! Identifiers.
//!
//! Every identifier is a newtype over a `String`, for three reasons:
//! - the ids come from outside (directory logins, configuration keys such as `bureau-compta`,
//!   the resource id the browser names), so they are stable, readable keys rather than counters;
//! - the domain never allocates an id (that would need state or randomness), the storage layer
//!   does, and a string holds its UUIDs or its integers alike (`TEXT` in SQLite and PostgreSQL);
//! - one representation for all ids keeps conversions at the edge trivial.
//!
//! Each kind of id is its own type, so a `HostId` cannot be passed where a `PoolId` is expected.
//! Ids order as strings; the broker uses that order to break ties deterministically.

use std::fmt;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id read from storage, the configuration or a request.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }
    };
}

string_id! {
    /// A user account, e.g. the directory login's stable identifier.
    UserId
}
string_id! {
    /// A group of users (a directory group or a local one).
    GroupId
}
string_id! {
    /// A session host: one server or machine that runs desktops.
    HostId
}
string_id! {
    /// A pool of interchangeable hosts.
    PoolId
}
string_id! {
    /// A published desktop or application; the only id the browser names.
    ResourceId
}
string_id! {
    /// One session of a user on a resource, allocated by the storage layer.
    SessionId
}
