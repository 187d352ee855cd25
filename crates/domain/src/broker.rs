//! The broker: given a snapshot of the world, where a launch goes, or why it is refused.
//!
//! [`decide_launch`] applies these rules, in order, and the first that answers wins:
//! 1. the user and the resource exist, else [`LaunchRefusal::UnknownUser`] or
//!    [`LaunchRefusal::UnknownResource`];
//! 2. the account is enabled, else [`LaunchRefusal::UserDisabled`];
//! 3. the user is entitled to the resource, directly or through a group, else
//!    [`LaunchRefusal::NotEntitled`];
//! 4. the site's local time is inside the effective policy's allowed hours, else
//!    [`LaunchRefusal::OutsideAllowedHours`] with the next allowed moment;
//! 5. if the user already has a live session on the resource, [`LaunchDecision::Reconnect`] to it:
//!    a disconnected one first, else an active or starting one (the viewer joins it). It already
//!    holds a licence, and its host keeps its sessions even when draining;
//! 6. a licence is free, else [`LaunchRefusal::NoLicence`];
//! 7. a host of the resource's pool is available (not unhealthy, not draining, not full), else
//!    [`LaunchRefusal::NoHostAvailable`] with how many hosts were skipped for each reason;
//!    the pool's [`Balancing`] picks among them, ties going to the lowest host id.
//!
//! The decision is pure and made on a snapshot: the storage layer must re-check the licence
//! capacity and the host's `max_sessions` atomically when it records the session (see the crate
//! documentation). Role checks (`Action::OpenPortal`) belong to the HTTP layer, before this.

use std::cmp::Ordering;
use std::collections::HashMap;

use thiserror::Error;

use crate::access::{Entitlement, Group, User, is_entitled};
use crate::id::{HostId, PoolId, ResourceId, SessionId, UserId};
use crate::inventory::{Balancing, Host, Pool, Resource};
use crate::policy::{EffectivePolicy, ScopedPolicy, effective_policy};
use crate::session::{LicencePool, SessionRecord, SessionState};
use crate::time::{LocalTime, Timestamp};

/// A snapshot of everything the broker looks at, loaded by the caller.
///
/// Build one with [`World::new`] and fill the lists; the struct will grow.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct World {
    /// Accounts.
    pub users: Vec<User>,
    /// Groups.
    pub groups: Vec<Group>,
    /// Session hosts.
    pub hosts: Vec<Host>,
    /// Pools of hosts.
    pub pools: Vec<Pool>,
    /// Published resources.
    pub resources: Vec<Resource>,
    /// Who may open what.
    pub entitlements: Vec<Entitlement>,
    /// Group- and resource-level policies.
    pub policies: Vec<ScopedPolicy>,
    /// Sessions; only the live ones matter, ended and failed ones may be left out.
    pub sessions: Vec<SessionRecord>,
    /// The licences.
    pub licences: LicencePool,
    /// The values used where no policy sets a field.
    pub defaults: EffectivePolicy,
    /// The site's offset from UTC at `now`, in seconds (3600 for Paris in winter, 7200 in summer).
    /// The shell reads it from the time-zone database, so daylight saving is its business.
    pub utc_offset_seconds: i32,
}

impl World {
    /// An empty world with these licences, defaults and UTC offset.
    pub fn new(licences: LicencePool, defaults: EffectivePolicy, utc_offset_seconds: i32) -> Self {
        Self {
            users: Vec::new(),
            groups: Vec::new(),
            hosts: Vec::new(),
            pools: Vec::new(),
            resources: Vec::new(),
            entitlements: Vec::new(),
            policies: Vec::new(),
            sessions: Vec::new(),
            licences,
            defaults,
            utc_offset_seconds,
        }
    }

    /// The user with this id.
    pub fn user(&self, id: &UserId) -> Option<&User> {
        self.users.iter().find(|user| user.id == *id)
    }

    /// The resource with this id.
    pub fn resource(&self, id: &ResourceId) -> Option<&Resource> {
        self.resources.iter().find(|resource| resource.id == *id)
    }

    /// The resources `user` may open, for the portal, in the world's order.
    pub fn entitled_resources(&self, user: &User) -> Vec<&Resource> {
        self.resources
            .iter()
            .filter(|resource| is_entitled(user, &resource.id, &self.entitlements))
            .collect()
    }
}

/// A user asks to open a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRequest {
    /// Who (authenticated by the caller).
    pub user: UserId,
    /// What.
    pub resource: ResourceId,
}

/// What to do with an accepted launch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaunchDecision {
    /// Start a new session on `host`; the caller records it (re-checking the licences) and
    /// connects.
    Start {
        /// The chosen host.
        host: HostId,
        /// The policy the session runs under.
        policy: EffectivePolicy,
    },
    /// Attach to the user's existing session; no new licence is used.
    Reconnect {
        /// The session to attach to.
        session: SessionId,
        /// Where it runs.
        host: HostId,
        /// The policy the session runs under.
        policy: EffectivePolicy,
    },
}

/// Why a launch is refused. [`LaunchRefusal::code`] gives a stable code for the UI to translate.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LaunchRefusal {
    /// No such user.
    #[error("unknown user")]
    UnknownUser,
    /// No such resource. The UI may show it like `NotEntitled`, so as not to reveal which
    /// resources exist.
    #[error("unknown resource")]
    UnknownResource,
    /// The account is disabled.
    #[error("user account is disabled")]
    UserDisabled,
    /// Neither the user nor one of its groups is entitled to the resource.
    #[error("user is not entitled to this resource")]
    NotEntitled,
    /// The site's local time is outside the allowed hours.
    #[error("outside the allowed hours")]
    OutsideAllowedHours {
        /// The next moment launches are allowed, or `None` if the hours allow none.
        next_allowed: Option<Timestamp>,
    },
    /// Every licence is held by a live session.
    #[error("all {capacity} licences are in use")]
    NoLicence {
        /// The licence pool's capacity.
        capacity: u32,
    },
    /// The resource names a pool that does not exist (an inventory error).
    #[error("resource's pool {pool} does not exist")]
    UnknownPool {
        /// The missing pool.
        pool: PoolId,
    },
    /// No host of the pool can take a new session.
    #[error(
        "no host available ({unhealthy} unhealthy, {draining} draining, {full} full, {missing} missing)"
    )]
    NoHostAvailable {
        /// Hosts skipped as unhealthy.
        unhealthy: u32,
        /// Healthy hosts skipped as draining.
        draining: u32,
        /// Healthy, not draining hosts skipped as full.
        full: u32,
        /// Ids in the pool that are not in the inventory.
        missing: u32,
    },
}

impl LaunchRefusal {
    /// A stable code for the UI's translations and the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            LaunchRefusal::UnknownUser => "unknown_user",
            LaunchRefusal::UnknownResource => "unknown_resource",
            LaunchRefusal::UserDisabled => "user_disabled",
            LaunchRefusal::NotEntitled => "not_entitled",
            LaunchRefusal::OutsideAllowedHours { .. } => "outside_allowed_hours",
            LaunchRefusal::NoLicence { .. } => "no_licence",
            LaunchRefusal::UnknownPool { .. } => "unknown_pool",
            LaunchRefusal::NoHostAvailable { .. } => "no_host_available",
        }
    }
}

/// Decides where `request` goes, following the module's rules, at `now`.
pub fn decide_launch(
    request: &LaunchRequest,
    world: &World,
    now: Timestamp,
) -> Result<LaunchDecision, LaunchRefusal> {
    let user = world
        .user(&request.user)
        .ok_or(LaunchRefusal::UnknownUser)?;
    let resource = world
        .resource(&request.resource)
        .ok_or(LaunchRefusal::UnknownResource)?;
    if !user.enabled {
        return Err(LaunchRefusal::UserDisabled);
    }
    if !is_entitled(user, &resource.id, &world.entitlements) {
        return Err(LaunchRefusal::NotEntitled);
    }

    let policy = effective_policy(user, &resource.id, &world.policies, &world.defaults);
    if !policy
        .allowed_hours
        .contains(LocalTime::at(now, world.utc_offset_seconds))
    {
        let next_allowed = policy
            .allowed_hours
            .next_allowed(now, world.utc_offset_seconds);
        return Err(LaunchRefusal::OutsideAllowedHours { next_allowed });
    }

    if let Some(session) = session_to_rejoin(&world.sessions, &user.id, &resource.id) {
        return Ok(LaunchDecision::Reconnect {
            session: session.id().clone(),
            host: session.host().clone(),
            policy,
        });
    }

    if !world.licences.has_room(&world.sessions) {
        return Err(LaunchRefusal::NoLicence {
            capacity: world.licences.capacity,
        });
    }

    let pool = world
        .pools
        .iter()
        .find(|pool| pool.id == resource.pool)
        .ok_or_else(|| LaunchRefusal::UnknownPool {
            pool: resource.pool.clone(),
        })?;
    let host = choose_host(pool, &world.hosts, &world.sessions)?;
    Ok(LaunchDecision::Start { host, policy })
}

/// The user's live session on the resource to rejoin: disconnected first, then active, then
/// starting; among equals the lowest session id.
fn session_to_rejoin<'a>(
    sessions: &'a [SessionRecord],
    user: &UserId,
    resource: &ResourceId,
) -> Option<&'a SessionRecord> {
    let preference = |session: &SessionRecord| match session.state() {
        SessionState::Disconnected { .. } => 0,
        SessionState::Active => 1,
        _ => 2,
    };
    sessions
        .iter()
        .filter(|session| {
            session.is_live() && session.user() == user && session.resource() == resource
        })
        .min_by(|left, right| {
            preference(left)
                .cmp(&preference(right))
                .then_with(|| left.id().cmp(right.id()))
        })
}

/// A host that can take one more session, with its live sessions.
struct Candidate<'a> {
    host: &'a Host,
    sessions: u32,
}

fn choose_host(
    pool: &Pool,
    hosts: &[Host],
    sessions: &[SessionRecord],
) -> Result<HostId, LaunchRefusal> {
    let mut live_by_host: HashMap<&HostId, u32> = HashMap::new();
    for session in sessions.iter().filter(|session| session.is_live()) {
        *live_by_host.entry(session.host()).or_default() += 1;
    }

    let (mut unhealthy, mut draining, mut full, mut missing) = (0, 0, 0, 0);
    let mut candidates = Vec::new();
    for id in &pool.hosts {
        let Some(host) = hosts.iter().find(|host| host.id == *id) else {
            missing += 1;
            continue;
        };
        let live = live_by_host.get(&host.id).copied().unwrap_or(0);
        if host.is_unhealthy() {
            unhealthy += 1;
        } else if host.draining {
            draining += 1;
        } else if live >= host.max_sessions {
            full += 1;
        } else {
            candidates.push(Candidate {
                host,
                sessions: live,
            });
        }
    }

    let order = match pool.balancing {
        Balancing::FewestSessions => fewer_sessions,
        Balancing::Weighted => lower_load,
    };
    candidates
        .into_iter()
        .min_by(|left, right| order(left, right).then_with(|| left.host.id.cmp(&right.host.id)))
        .map(|candidate| candidate.host.id.clone())
        .ok_or(LaunchRefusal::NoHostAvailable {
            unhealthy,
            draining,
            full,
            missing,
        })
}

fn fewer_sessions(left: &Candidate<'_>, right: &Candidate<'_>) -> Ordering {
    left.sessions.cmp(&right.sessions)
}

/// Compares `sessions / weight` without division; weight 0 is an infinite load (last resort),
/// and among those fewer sessions come first.
fn lower_load(left: &Candidate<'_>, right: &Candidate<'_>) -> Ordering {
    match (left.host.weight, right.host.weight) {
        (0, 0) => fewer_sessions(left, right),
        (0, _) => Ordering::Greater,
        (_, 0) => Ordering::Less,
        (left_weight, right_weight) => {
            let left_load = u64::from(left.sessions) * u64::from(right_weight);
            let right_load = u64::from(right.sessions) * u64::from(left_weight);
            left_load.cmp(&right_load)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::access::Subject;
    use crate::id::GroupId;
    use crate::inventory::{Health, Protocol, ResourceKind};
    use crate::policy::{Policy, PolicyScope};
    use crate::session::EndReason;
    use crate::time::{AllowedHours, TimeWindow, Weekday, WeekdaySet};

    /// Monday 2026-03-02 10:00:00 UTC.
    const MONDAY_10H: Timestamp = Timestamp::from_unix_seconds(1_772_445_600);
    const HOUR: i64 = 3_600;
    const DAY: i64 = 24 * HOUR;

    fn host(id: &str, max_sessions: u32) -> Host {
        Host::new(
            HostId::new(id),
            id,
            Protocol::Rdp,
            format!("{id}.example.org"),
            3389,
            max_sessions,
        )
    }

    fn desktop() -> ResourceId {
        ResourceId::new("desktop")
    }

    fn request(user: &str) -> LaunchRequest {
        LaunchRequest {
            user: UserId::new(user),
            resource: desktop(),
        }
    }

    /// A world with a "desktop" resource on pool "main" made of `hosts`, entitled to group
    /// "staff"; users: alice (staff), bob (entitled directly), carol (staff, disabled),
    /// dave (no entitlement), and `u0`…`u1499` (staff).
    fn world(hosts: Vec<Host>, balancing: Balancing, capacity: u32) -> World {
        let mut world = World::new(LicencePool::new(capacity), EffectivePolicy::default(), 0);
        let staff = GroupId::new("staff");
        world.groups.push(Group::new(staff.clone(), "Staff"));
        let mut add_user = |id: &str, in_staff: bool, enabled: bool| {
            let mut user = User::new(UserId::new(id), id, id);
            if in_staff {
                user.groups.push(staff.clone());
            }
            user.enabled = enabled;
            world.users.push(user);
        };
        add_user("alice", true, true);
        add_user("bob", false, true);
        add_user("carol", true, false);
        add_user("dave", false, true);
        for index in 0..1_500 {
            add_user(&format!("u{index}"), true, true);
        }
        let pool_hosts = hosts.iter().map(|host| host.id.clone()).collect();
        world.hosts = hosts;
        world.pools.push(Pool::new(
            PoolId::new("main"),
            "Main",
            pool_hosts,
            balancing,
        ));
        world.resources.push(Resource::new(
            desktop(),
            ResourceKind::Desktop,
            "Bureau",
            "Desktop",
            PoolId::new("main"),
        ));
        world.entitlements.push(Entitlement {
            subject: Subject::Group(staff),
            resource: desktop(),
        });
        world.entitlements.push(Entitlement {
            subject: Subject::User(UserId::new("bob")),
            resource: desktop(),
        });
        world
    }

    /// Adds an active session of `user` on `host`.
    fn add_session(world: &mut World, user: &str, host: &str) -> SessionId {
        let id = SessionId::new(format!("s{:05}", world.sessions.len()));
        let mut session = SessionRecord::start(
            id.clone(),
            UserId::new(user),
            desktop(),
            HostId::new(host),
            MONDAY_10H,
        );
        session.activate().unwrap();
        world.sessions.push(session);
        id
    }

    fn chosen_host(result: Result<LaunchDecision, LaunchRefusal>) -> HostId {
        match result {
            Ok(LaunchDecision::Start { host, .. }) => host,
            other => panic!("expected a new session, got {other:?}"),
        }
    }

    /// Decides for `user` and records the new session where the broker said.
    fn launch(world: &mut World, user: &str) -> HostId {
        let host = chosen_host(decide_launch(&request(user), world, MONDAY_10H));
        add_session(world, user, host.as_str());
        host
    }

    fn live_on(world: &World, host: &str) -> usize {
        world
            .sessions
            .iter()
            .filter(|session| session.is_live() && session.host().as_str() == host)
            .count()
    }

    #[test]
    fn who_may_launch() {
        let world = world(vec![host("h1", 10)], Balancing::FewestSessions, 10);
        let refusal = |user: &str| decide_launch(&request(user), &world, MONDAY_10H).unwrap_err();
        assert_eq!(refusal("nobody"), LaunchRefusal::UnknownUser);
        assert_eq!(refusal("carol"), LaunchRefusal::UserDisabled);
        assert_eq!(refusal("dave"), LaunchRefusal::NotEntitled);
        let unknown_resource = LaunchRequest {
            user: UserId::new("alice"),
            resource: ResourceId::new("nope"),
        };
        assert_eq!(
            decide_launch(&unknown_resource, &world, MONDAY_10H),
            Err(LaunchRefusal::UnknownResource)
        );
        // Through the group, and directly.
        assert_eq!(
            chosen_host(decide_launch(&request("alice"), &world, MONDAY_10H)),
            HostId::new("h1")
        );
        assert_eq!(
            chosen_host(decide_launch(&request("bob"), &world, MONDAY_10H)),
            HostId::new("h1")
        );
        assert_eq!(world.entitled_resources(&world.users[0]).len(), 1);
        assert!(world.entitled_resources(&world.users[3]).is_empty());
    }

    #[test]
    fn refusal_codes_are_stable() {
        let codes = [
            (LaunchRefusal::UnknownUser, "unknown_user"),
            (LaunchRefusal::UnknownResource, "unknown_resource"),
            (LaunchRefusal::UserDisabled, "user_disabled"),
            (LaunchRefusal::NotEntitled, "not_entitled"),
            (
                LaunchRefusal::OutsideAllowedHours { next_allowed: None },
                "outside_allowed_hours",
            ),
            (LaunchRefusal::NoLicence { capacity: 1 }, "no_licence"),
            (
                LaunchRefusal::UnknownPool {
                    pool: PoolId::new("p"),
                },
                "unknown_pool",
            ),
            (
                LaunchRefusal::NoHostAvailable {
                    unhealthy: 0,
                    draining: 0,
                    full: 0,
                    missing: 0,
                },
                "no_host_available",
            ),
        ];
        for (refusal, code) in codes {
            assert_eq!(refusal.code(), code);
        }
        assert_eq!(
            LaunchRefusal::NoLicence { capacity: 1_200 }.to_string(),
            "all 1200 licences are in use"
        );
    }

    #[test]
    fn allowed_hours_with_a_window_crossing_midnight() {
        let mut world = world(vec![host("h1", 10)], Balancing::FewestSessions, 10);
        // Paris in winter; staff may work on weekdays 07:00–20:00, and nights from Friday
        // 22:00 to Saturday 06:00.
        world.utc_offset_seconds = 3_600;
        let staff = Policy {
            allowed_hours: Some(AllowedHours::new(vec![
                TimeWindow::new(WeekdaySet::working_days(), 7 * 60, 20 * 60).unwrap(),
                TimeWindow::new(WeekdaySet::of(&[Weekday::Friday]), 22 * 60, 6 * 60).unwrap(),
            ])),
            ..Policy::default()
        };
        world.policies.push(ScopedPolicy {
            scope: PolicyScope::Group(GroupId::new("staff")),
            policy: staff,
        });

        // Monday 10:00 UTC is 11:00 in Paris: inside.
        assert!(decide_launch(&request("alice"), &world, MONDAY_10H).is_ok());
        // Saturday 04:59 UTC is 05:59 in Paris: inside Friday's night window.
        let saturday_0559 = MONDAY_10H.plus_seconds(5 * DAY - 5 * HOUR - 60);
        assert!(decide_launch(&request("alice"), &world, saturday_0559).is_ok());
        // Saturday 06:00 Paris: outside; next is Monday 07:00 Paris = 06:00 UTC.
        let saturday_0600 = saturday_0559.plus_seconds(60);
        let monday_0700 = MONDAY_10H.plus_seconds(7 * DAY - 4 * HOUR);
        assert_eq!(
            decide_launch(&request("alice"), &world, saturday_0600),
            Err(LaunchRefusal::OutsideAllowedHours {
                next_allowed: Some(monday_0700)
            })
        );
        // Friday 21:30 Paris: outside, opens at 22:00.
        let friday_2130 = MONDAY_10H.plus_seconds(4 * DAY + 10 * HOUR + 30 * 60);
        assert_eq!(
            decide_launch(&request("alice"), &world, friday_2130),
            Err(LaunchRefusal::OutsideAllowedHours {
                next_allowed: Some(friday_2130.plus_seconds(30 * 60))
            })
        );
        // Bob is not in staff: the default (any time) applies to him.
        assert!(decide_launch(&request("bob"), &world, saturday_0600).is_ok());
        // A resource policy allowing no window at all: never.
        let closed = Policy {
            allowed_hours: Some(AllowedHours::new(Vec::new())),
            ..Policy::default()
        };
        world.policies.push(ScopedPolicy {
            scope: PolicyScope::Resource(desktop()),
            policy: closed,
        });
        assert_eq!(
            decide_launch(&request("bob"), &world, MONDAY_10H),
            Err(LaunchRefusal::OutsideAllowedHours { next_allowed: None })
        );
    }

    #[test]
    fn reconnect_is_preferred_and_needs_no_new_licence() {
        let mut world = world(
            vec![host("h1", 10), host("h2", 10)],
            Balancing::FewestSessions,
            3,
        );
        add_session(&mut world, "u1", "h2");
        let alices = add_session(&mut world, "alice", "h2");
        world.sessions[1].disconnect(MONDAY_10H).unwrap();
        add_session(&mut world, "u2", "h2");
        // Every licence is held, h1 is empty, yet alice goes back to her session on h2.
        assert!(!world.licences.has_room(&world.sessions));
        let decision = decide_launch(&request("alice"), &world, MONDAY_10H).unwrap();
        let LaunchDecision::Reconnect {
            session,
            host,
            policy,
        } = decision
        else {
            panic!("{decision:?}")
        };
        assert_eq!((session, host), (alices, HostId::new("h2")));
        assert_eq!(policy, EffectivePolicy::default());
        assert_eq!(
            decide_launch(&request("bob"), &world, MONDAY_10H),
            Err(LaunchRefusal::NoLicence { capacity: 3 })
        );
        // An active session is joined rather than doubled; an ended one is not.
        world.sessions[1].reconnect().unwrap();
        assert!(matches!(
            decide_launch(&request("alice"), &world, MONDAY_10H),
            Ok(LaunchDecision::Reconnect { .. })
        ));
        world.sessions[1]
            .end(MONDAY_10H, EndReason::LoggedOff)
            .unwrap();
        assert_eq!(
            chosen_host(decide_launch(&request("alice"), &world, MONDAY_10H)),
            HostId::new("h1")
        );
    }

    #[test]
    fn licence_pool_of_1200() {
        let hosts = (1..=6)
            .map(|index| host(&format!("h{index}"), 250))
            .collect();
        let mut world = world(hosts, Balancing::FewestSessions, 1_200);
        for index in 0..1_199 {
            launch(&mut world, &format!("u{index}"));
        }
        assert_eq!(world.licences.in_use(&world.sessions), 1_199);
        launch(&mut world, "alice");
        assert_eq!(world.licences.in_use(&world.sessions), 1_200);
        assert_eq!(
            decide_launch(&request("bob"), &world, MONDAY_10H),
            Err(LaunchRefusal::NoLicence { capacity: 1_200 })
        );
        // Disconnected sessions still hold their licence; an ended one frees it.
        world.sessions[0].disconnect(MONDAY_10H).unwrap();
        assert!(decide_launch(&request("bob"), &world, MONDAY_10H).is_err());
        world.sessions[0]
            .end(MONDAY_10H, EndReason::DisconnectedTimeout)
            .unwrap();
        assert!(decide_launch(&request("bob"), &world, MONDAY_10H).is_ok());
    }

    #[test]
    fn fewest_sessions_alternates_between_two_hosts() {
        let mut world = world(
            vec![host("h2", 100), host("h1", 100)],
            Balancing::FewestSessions,
            100,
        );
        let chosen: Vec<String> = (0..10)
            .map(|index| launch(&mut world, &format!("u{index}")).as_str().to_owned())
            .collect();
        // Ties go to the lowest id, whatever the pool's order.
        assert_eq!(
            chosen,
            ["h1", "h2", "h1", "h2", "h1", "h2", "h1", "h2", "h1", "h2"]
        );
        assert_eq!((live_on(&world, "h1"), live_on(&world, "h2")), (5, 5));
    }

    #[test]
    fn weighted_follows_the_weights() {
        let mut small = host("h1", 100);
        small.weight = 1;
        let mut large = host("h2", 100);
        large.weight = 3;
        let mut world = world(vec![small, large], Balancing::Weighted, 100);
        for index in 0..40 {
            launch(&mut world, &format!("u{index}"));
        }
        assert_eq!((live_on(&world, "h1"), live_on(&world, "h2")), (10, 30));
        // Weight 0 is a last resort: used only when the others are full.
        let mut spare = host("h0", 100);
        spare.weight = 0;
        world.hosts.push(spare);
        world.pools[0].hosts.push(HostId::new("h0"));
        world.hosts[0].max_sessions = 10;
        world.hosts[1].max_sessions = 31;
        assert_eq!(launch(&mut world, "u40"), HostId::new("h2"));
        assert_eq!(launch(&mut world, "u41"), HostId::new("h0"));
    }

    #[test]
    fn draining_host_gets_nothing_new_but_keeps_its_sessions() {
        let mut world = world(
            vec![host("h1", 100), host("h2", 100)],
            Balancing::FewestSessions,
            100,
        );
        let alices = add_session(&mut world, "alice", "h1");
        for index in 0..5 {
            add_session(&mut world, &format!("u{index}"), "h2");
        }
        world.hosts[0].draining = true;
        for index in 10..15 {
            assert_eq!(launch(&mut world, &format!("u{index}")), HostId::new("h2"));
        }
        assert_eq!(live_on(&world, "h1"), 1);
        // Alice disconnects and comes back: to the draining host, where her session is.
        world.sessions[0].disconnect(MONDAY_10H).unwrap();
        assert!(matches!(
            decide_launch(&request("alice"), &world, MONDAY_10H),
            Ok(LaunchDecision::Reconnect { session, host, .. }) if session == alices && host == HostId::new("h1")
        ));
    }

    #[test]
    fn unhealthy_and_full_hosts_are_skipped_unknown_health_is_used() {
        let mut world = world(
            vec![host("h1", 100), host("h2", 2), host("h3", 100)],
            Balancing::FewestSessions,
            100,
        );
        world.hosts[0].health = Health::Unhealthy {
            since: MONDAY_10H,
            reason: "connection refused".into(),
        };
        world.hosts[1].health = Health::Healthy;
        for index in 0..3 {
            add_session(&mut world, &format!("u{index}"), "h3");
        }
        // h1 is empty but unhealthy; h2 has fewer sessions than h3 until it is full.
        assert_eq!(launch(&mut world, "u10"), HostId::new("h2"));
        assert_eq!(launch(&mut world, "u11"), HostId::new("h2"));
        assert_eq!(launch(&mut world, "u12"), HostId::new("h3"));
        assert_eq!(live_on(&world, "h2"), 2);
        assert_eq!(live_on(&world, "h1"), 0);
    }

    #[test]
    fn no_host_available_counts_the_reasons() {
        let mut world = world(
            vec![
                host("h1", 10),
                host("h2", 10),
                host("h3", 1),
                host("h4", 10),
            ],
            Balancing::FewestSessions,
            100,
        );
        world.hosts[0].health = Health::Unhealthy {
            since: MONDAY_10H,
            reason: "timeout".into(),
        };
        world.hosts[1].draining = true;
        // Unhealthy and draining counts as unhealthy.
        world.hosts[3].draining = true;
        world.hosts[3].health = world.hosts[0].health.clone();
        add_session(&mut world, "u1", "h3");
        world.pools[0].hosts.push(HostId::new("h9"));
        let refusal = decide_launch(&request("alice"), &world, MONDAY_10H).unwrap_err();
        assert_eq!(
            refusal,
            LaunchRefusal::NoHostAvailable {
                unhealthy: 2,
                draining: 1,
                full: 1,
                missing: 1
            }
        );
        assert_eq!(refusal.code(), "no_host_available");
        world.resources[0].pool = PoolId::new("gone");
        assert_eq!(
            decide_launch(&request("alice"), &world, MONDAY_10H),
            Err(LaunchRefusal::UnknownPool {
                pool: PoolId::new("gone")
            })
        );
    }

    /// A small deterministic generator (SplitMix64), so that a failure replays exactly.
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut mixed = self.0;
            mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            mixed ^ (mixed >> 31)
        }

        fn below(&mut self, bound: usize) -> usize {
            (self.next() % bound as u64) as usize
        }
    }

    #[test]
    fn random_launches_never_overspend_licences_nor_hosts() {
        // 1,650 places in all, so that both the licences (1,200) and single hosts run out.
        let maxima = [400, 350, 300, 250, 200, 150];
        let hosts = maxima
            .iter()
            .enumerate()
            .map(|(index, &max)| host(&format!("h{index}"), max))
            .collect();
        let mut world = world(hosts, Balancing::FewestSessions, 1_200);
        // A published application beside the desktop: 1,500 users can then want 3,000 sessions.
        let erp = ResourceId::new("erp");
        let program = String::from("erp.exe");
        world.resources.push(Resource::new(
            erp.clone(),
            ResourceKind::Application { program },
            "PGI",
            "ERP",
            PoolId::new("main"),
        ));
        world.entitlements.push(Entitlement {
            subject: Subject::Group(GroupId::new("staff")),
            resource: erp.clone(),
        });
        let resources = [desktop(), erp];
        let mut random = SplitMix(0x0B45_C01E);
        let mut now = MONDAY_10H;
        let mut next_session = 0_u32;
        let mut outcomes: HashMap<&'static str, u32> = HashMap::new();
        let mut a_host_was_full = false;

        for step in 0..10_000 {
            now = now.plus_seconds(1);
            let roll = random.below(100);
            if roll < 70 {
                let user = UserId::new(format!("u{}", random.below(1_500)));
                let resource = resources[random.below(resources.len())].clone();
                let request = LaunchRequest {
                    user: user.clone(),
                    resource: resource.clone(),
                };
                let outcome = match decide_launch(&request, &world, now) {
                    Ok(LaunchDecision::Start { host, .. }) => {
                        next_session += 1;
                        let id = SessionId::new(format!("s{next_session}"));
                        let mut session = SessionRecord::start(id, user, resource, host, now);
                        if random.below(4) != 0 {
                            session.activate().unwrap();
                        }
                        world.sessions.push(session);
                        "start"
                    }
                    Ok(LaunchDecision::Reconnect { session, .. }) => {
                        let record = world
                            .sessions
                            .iter_mut()
                            .find(|record| *record.id() == session)
                            .unwrap();
                        if let SessionState::Disconnected { .. } = record.state() {
                            record.reconnect().unwrap();
                        }
                        "reconnect"
                    }
                    Err(refusal) => refusal.code(),
                };
                *outcomes.entry(outcome).or_default() += 1;
            } else if !world.sessions.is_empty() && roll < 99 {
                let index = random.below(world.sessions.len());
                let session = &mut world.sessions[index];
                match (roll < 85, session.state()) {
                    (true, SessionState::Active) => session.disconnect(now).unwrap(),
                    (true, SessionState::Starting) => session.activate().unwrap(),
                    (_, state) if state.is_live() => {
                        session.end(now, EndReason::LoggedOff).unwrap()
                    }
                    _ => {}
                }
            } else {
                // A host goes down, is drained, or comes back in service.
                let host = &mut world.hosts[random.below(maxima.len())];
                let change = random.below(4);
                host.draining = change == 1;
                host.health = if change == 0 {
                    Health::Unhealthy {
                        since: now,
                        reason: "probe failed".into(),
                    }
                } else {
                    Health::Healthy
                };
            }

            let live = world.licences.in_use(&world.sessions);
            assert!(live <= 1_200, "step {step}: {live} live sessions");
            for host in &world.hosts {
                let on_host = live_on(&world, host.id.as_str());
                assert!(
                    on_host <= host.max_sessions as usize,
                    "step {step}: {} has {on_host}",
                    host.id
                );
                a_host_was_full |= on_host == host.max_sessions as usize;
            }
            if step % 500 == 0 {
                world.sessions.retain(SessionRecord::is_live);
            }
        }
        // The walk went through every path that matters, and reached both limits.
        assert!(a_host_was_full);
        for outcome in ["start", "reconnect", "no_licence", "no_host_available"] {
            assert!(
                outcomes.get(outcome).copied().unwrap_or(0) > 0,
                "never saw {outcome}: {outcomes:?}"
            );
        }
    }
}
