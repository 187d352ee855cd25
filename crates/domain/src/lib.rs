//! The Bascule control plane's domain logic, pure: who may use what, where each session runs,
//! and that no licence is over-spent.
//!
//! The storage crates (SQLite, PostgreSQL) and the HTTP crates convert their rows and DTOs to and
//! from these types at the edge; this crate knows neither.
//!
//! - [`id`]: the identifiers (`UserId`, `ResourceId`, …).
//! - [`time`]: `Timestamp`, the site's local time, weekday sets and allowed-hours windows.
//! - [`access`]: users, groups, roles and the actions they allow, entitlements.
//! - [`inventory`]: hosts, pools and published resources.
//! - [`policy`]: per-group and per-resource policies and how they merge into an effective policy.
//! - [`session`]: session records, their state machine, and the licence pool.
//! - [`broker`]: [`broker::decide_launch`], which says where a launch goes or why it is refused.
//!
//! **Architecture invariant:** no I/O, no SQL, no HTTP, no serialisation formats, no clock.
//! Every function is a pure function of its arguments: the current time, the site's UTC offset and
//! the state of the world are inputs, so every decision can be replayed in a test.
//!
//! **Concurrency:** a decision is made on a snapshot ([`broker::World`]) and is only advice.
//! Two gateways (or two requests) can decide on the same snapshot; the storage layer must re-check
//! the licence capacity and the host's `max_sessions` atomically when it records the new session
//! (in the same transaction, or with a conditional insert), and refuse it if either is spent.

#![warn(missing_docs)]

pub mod access;
pub mod broker;
pub mod id;
pub mod inventory;
pub mod policy;
pub mod session;
pub mod time;
