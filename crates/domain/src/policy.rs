//! Policies: what a session may do (clipboard, file transfer, bandwidth, timeouts, hours), set per
//! group and per resource, and merged into one [`EffectivePolicy`] for a user on a resource.
//!
//! # Merge rules
//!
//! For each field separately:
//! 1. **Resource level wins.** If a policy scoped to the resource sets the field, its value is
//!    used, whatever the groups say: an administrator can lock down a sensitive resource.
//! 2. **Otherwise the user's groups, most permissive first.** Among the policies of the groups the
//!    user belongs to that set the field:
//!    - a boolean is `true` if any group says `true`;
//!    - a [`Limit`] or a duration takes the largest value, and [`Limit::Unlimited`] beats any number;
//!    - allowed hours are the union of the groups' windows.
//!
//!    Groups that leave the field unset (`None`) take no part; they do not mean "unlimited".
//! 3. **Otherwise the default** given by the caller.
//!
//! If several policies target the same resource (storage should keep one per scope), they merge
//! between themselves like groups do. When groups tie, the source reported is the lowest group id.

use crate::access::User;
use crate::id::{GroupId, ResourceId};
use crate::time::AllowedHours;

/// A cap that may be lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// No cap.
    Unlimited,
    /// At most this much (the unit is the field's: kbit/s, seconds, …).
    AtMost(u32),
}

/// Settings at one level (a group or a resource); `None` means "not set at this level".
///
/// Start from `Policy::default()` (nothing set) and set the fields you need.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Policy {
    /// Clipboard from the browser to the host.
    pub clipboard_in: Option<bool>,
    /// Clipboard from the host to the browser.
    pub clipboard_out: Option<bool>,
    /// File transfer in either direction.
    pub file_transfer: Option<bool>,
    /// Bandwidth cap of one session, in kbit/s.
    pub max_bandwidth_kbps: Option<Limit>,
    /// A session with no input for this many seconds is disconnected; `Unlimited` never.
    pub idle_timeout_secs: Option<Limit>,
    /// A disconnected session is ended after this many seconds. Always finite, because a
    /// disconnected session holds a licence until it ends.
    pub disconnected_keep_secs: Option<u32>,
    /// When sessions may be launched, in the site's local time.
    pub allowed_hours: Option<AllowedHours>,
}

/// What a [`Policy`] applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyScope {
    /// Members of the group, on every resource.
    Group(GroupId),
    /// Everyone, on this resource; overrides group-level values.
    Resource(ResourceId),
}

/// A policy and what it applies to, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedPolicy {
    /// Where it applies.
    pub scope: PolicyScope,
    /// What it sets.
    pub policy: Policy,
}

/// The policy in force for one user on one resource, every field resolved.
///
/// Also the type of the defaults given to [`effective_policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EffectivePolicy {
    /// Clipboard from the browser to the host.
    pub clipboard_in: bool,
    /// Clipboard from the host to the browser.
    pub clipboard_out: bool,
    /// File transfer in either direction.
    pub file_transfer: bool,
    /// Bandwidth cap of one session, in kbit/s.
    pub max_bandwidth_kbps: Limit,
    /// Idle seconds before the session is disconnected.
    pub idle_timeout_secs: Limit,
    /// Seconds a disconnected session is kept before it is ended.
    pub disconnected_keep_secs: u32,
    /// When sessions may be launched.
    pub allowed_hours: AllowedHours,
}

impl Default for EffectivePolicy {
    /// A starting point for the site's defaults: clipboard both ways, no file transfer, no
    /// bandwidth cap, no idle timeout, disconnected sessions kept one hour, any time of day.
    fn default() -> Self {
        Self {
            clipboard_in: true,
            clipboard_out: true,
            file_transfer: false,
            max_bandwidth_kbps: Limit::Unlimited,
            idle_timeout_secs: Limit::Unlimited,
            disconnected_keep_secs: 3600,
            allowed_hours: AllowedHours::always(),
        }
    }
}

/// Where a value of the effective policy came from, for the console.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Source {
    /// Nothing set it: the site's default.
    Default,
    /// A policy of this group (the most permissive among the user's groups).
    Group(GroupId),
    /// The union of these groups' allowed hours (two or more groups, sorted by id).
    Groups(Vec<GroupId>),
    /// The resource's own policy.
    Resource,
}

/// The [`Source`] of each field of an [`EffectivePolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PolicySources {
    /// Source of `clipboard_in`.
    pub clipboard_in: Source,
    /// Source of `clipboard_out`.
    pub clipboard_out: Source,
    /// Source of `file_transfer`.
    pub file_transfer: Source,
    /// Source of `max_bandwidth_kbps`.
    pub max_bandwidth_kbps: Source,
    /// Source of `idle_timeout_secs`.
    pub idle_timeout_secs: Source,
    /// Source of `disconnected_keep_secs`.
    pub disconnected_keep_secs: Source,
    /// Source of `allowed_hours`.
    pub allowed_hours: Source,
}

/// An effective policy and where each of its values came from, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EffectivePolicyExplained {
    /// The values.
    pub policy: EffectivePolicy,
    /// Their sources.
    pub sources: PolicySources,
}

/// The policy in force for `user` on `resource`, following the module's merge rules.
pub fn effective_policy(
    user: &User,
    resource: &ResourceId,
    policies: &[ScopedPolicy],
    defaults: &EffectivePolicy,
) -> EffectivePolicy {
    explain_effective_policy(user, resource, policies, defaults).policy
}

/// Like [`effective_policy`], with the source of each value.
pub fn explain_effective_policy(
    user: &User,
    resource: &ResourceId,
    policies: &[ScopedPolicy],
    defaults: &EffectivePolicy,
) -> EffectivePolicyExplained {
    let levels = Levels::new(user, resource, policies);
    let (clipboard_in, clipboard_in_source) =
        levels.most_permissive(|policy| policy.clipboard_in, defaults.clipboard_in);
    let (clipboard_out, clipboard_out_source) =
        levels.most_permissive(|policy| policy.clipboard_out, defaults.clipboard_out);
    let (file_transfer, file_transfer_source) =
        levels.most_permissive(|policy| policy.file_transfer, defaults.file_transfer);
    let (max_bandwidth_kbps, max_bandwidth_kbps_source) = levels.most_permissive(
        |policy| policy.max_bandwidth_kbps,
        defaults.max_bandwidth_kbps,
    );
    let (idle_timeout_secs, idle_timeout_secs_source) = levels.most_permissive(
        |policy| policy.idle_timeout_secs,
        defaults.idle_timeout_secs,
    );
    let (disconnected_keep_secs, disconnected_keep_secs_source) = levels.most_permissive(
        |policy| policy.disconnected_keep_secs,
        defaults.disconnected_keep_secs,
    );
    let (allowed_hours, allowed_hours_source) = levels.allowed_hours(&defaults.allowed_hours);
    EffectivePolicyExplained {
        policy: EffectivePolicy {
            clipboard_in,
            clipboard_out,
            file_transfer,
            max_bandwidth_kbps,
            idle_timeout_secs,
            disconnected_keep_secs,
            allowed_hours,
        },
        sources: PolicySources {
            clipboard_in: clipboard_in_source,
            clipboard_out: clipboard_out_source,
            file_transfer: file_transfer_source,
            max_bandwidth_kbps: max_bandwidth_kbps_source,
            idle_timeout_secs: idle_timeout_secs_source,
            disconnected_keep_secs: disconnected_keep_secs_source,
            allowed_hours: allowed_hours_source,
        },
    }
}

/// A value that can be more permissive than another of its kind.
trait Permissive: Copy {
    fn more_permissive_than(self, other: Self) -> bool;
}

impl Permissive for bool {
    fn more_permissive_than(self, other: bool) -> bool {
        self && !other
    }
}

impl Permissive for u32 {
    fn more_permissive_than(self, other: u32) -> bool {
        self > other
    }
}

impl Permissive for Limit {
    fn more_permissive_than(self, other: Limit) -> bool {
        match (self, other) {
            (Limit::Unlimited, Limit::AtMost(_)) => true,
            (Limit::AtMost(mine), Limit::AtMost(theirs)) => mine > theirs,
            (_, Limit::Unlimited) => false,
        }
    }
}

/// The policies that concern one user on one resource, by level.
struct Levels<'a> {
    /// Policies scoped to the resource.
    resource: Vec<&'a Policy>,
    /// Policies of the user's groups, sorted by group id so that ties resolve the same way
    /// whatever the storage order.
    groups: Vec<(&'a GroupId, &'a Policy)>,
}

impl<'a> Levels<'a> {
    fn new(user: &User, resource: &ResourceId, policies: &'a [ScopedPolicy]) -> Self {
        let mut levels = Levels {
            resource: Vec::new(),
            groups: Vec::new(),
        };
        for scoped in policies {
            match &scoped.scope {
                PolicyScope::Resource(id) if id == resource => levels.resource.push(&scoped.policy),
                PolicyScope::Group(group) if user.is_in(group) => {
                    levels.groups.push((group, &scoped.policy))
                }
                _ => {}
            }
        }
        levels.groups.sort_by_key(|(group, _)| *group);
        levels
    }

    fn most_permissive<T: Permissive>(
        &self,
        field: impl Fn(&Policy) -> Option<T>,
        default: T,
    ) -> (T, Source) {
        let from_resource = self
            .resource
            .iter()
            .filter_map(|policy| field(policy))
            .reduce(|best, value| {
                if value.more_permissive_than(best) {
                    value
                } else {
                    best
                }
            });
        if let Some(value) = from_resource {
            return (value, Source::Resource);
        }
        // Strictly more permissive only: on a tie the first (lowest) group id stays.
        let from_groups = self
            .groups
            .iter()
            .filter_map(|(group, policy)| field(policy).map(|value| (value, *group)))
            .reduce(|best, candidate| {
                if candidate.0.more_permissive_than(best.0) {
                    candidate
                } else {
                    best
                }
            });
        match from_groups {
            Some((value, group)) => (value, Source::Group(group.clone())),
            None => (default, Source::Default),
        }
    }

    fn allowed_hours(&self, default: &AllowedHours) -> (AllowedHours, Source) {
        let from_resource = self
            .resource
            .iter()
            .filter_map(|policy| policy.allowed_hours.as_ref())
            .fold(None, |union: Option<AllowedHours>, hours| {
                Some(union.map_or_else(|| hours.clone(), |union| union.union(hours)))
            });
        if let Some(hours) = from_resource {
            return (hours, Source::Resource);
        }
        let mut union: Option<AllowedHours> = None;
        let mut contributors: Vec<GroupId> = Vec::new();
        for (group, policy) in &self.groups {
            if let Some(hours) = &policy.allowed_hours {
                union = Some(union.map_or_else(|| hours.clone(), |union| union.union(hours)));
                if !contributors.contains(group) {
                    contributors.push((*group).clone());
                }
            }
        }
        match union {
            None => (default.clone(), Source::Default),
            Some(hours) => match <[GroupId; 1]>::try_from(contributors) {
                Ok([group]) => (hours, Source::Group(group)),
                Err(contributors) => (hours, Source::Groups(contributors)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::id::UserId;
    use crate::time::{LocalTime, TimeWindow, Weekday, WeekdaySet};

    fn user_in(groups: &[&str]) -> User {
        let mut user = User::new(UserId::new("u1"), "alice", "Alice");
        user.groups = groups.iter().map(|&group| GroupId::new(group)).collect();
        user
    }

    fn for_group(group: &str, policy: Policy) -> ScopedPolicy {
        ScopedPolicy {
            scope: PolicyScope::Group(GroupId::new(group)),
            policy,
        }
    }

    fn for_resource(resource: &str, policy: Policy) -> ScopedPolicy {
        ScopedPolicy {
            scope: PolicyScope::Resource(ResourceId::new(resource)),
            policy,
        }
    }

    fn hours(days: WeekdaySet, start: u16, end: u16) -> AllowedHours {
        AllowedHours::new(vec![TimeWindow::new(days, start, end).unwrap()])
    }

    fn desktop() -> ResourceId {
        ResourceId::new("desktop")
    }

    #[test]
    fn nothing_set_gives_the_defaults() {
        let explained = explain_effective_policy(
            &user_in(&["staff"]),
            &desktop(),
            &[],
            &EffectivePolicy::default(),
        );
        assert_eq!(explained.policy, EffectivePolicy::default());
        assert_eq!(explained.sources.clipboard_in, Source::Default);
        assert_eq!(explained.sources.allowed_hours, Source::Default);
        // A policy of a group the user is not in, or of another resource, changes nothing.
        let closed = Policy {
            clipboard_in: Some(false),
            ..Policy::default()
        };
        let policies = [
            for_group("finance", closed.clone()),
            for_resource("other", closed),
        ];
        let policy = effective_policy(
            &user_in(&["staff"]),
            &desktop(),
            &policies,
            &EffectivePolicy::default(),
        );
        assert_eq!(policy, EffectivePolicy::default());
    }

    #[test]
    fn two_groups_merge_to_the_most_permissive() {
        let strict = Policy {
            clipboard_out: Some(false),
            file_transfer: Some(false),
            max_bandwidth_kbps: Some(Limit::AtMost(2_000)),
            idle_timeout_secs: Some(Limit::AtMost(900)),
            disconnected_keep_secs: Some(600),
            allowed_hours: Some(hours(WeekdaySet::working_days(), 8 * 60, 18 * 60)),
            ..Policy::default()
        };
        let loose = Policy {
            clipboard_out: Some(true),
            file_transfer: Some(false),
            max_bandwidth_kbps: Some(Limit::Unlimited),
            idle_timeout_secs: Some(Limit::AtMost(1_800)),
            disconnected_keep_secs: Some(300),
            allowed_hours: Some(hours(WeekdaySet::of(&[Weekday::Saturday]), 9 * 60, 12 * 60)),
            ..Policy::default()
        };
        let policies = [for_group("b-loose", loose), for_group("a-strict", strict)];
        let defaults = EffectivePolicy {
            file_transfer: true,
            ..EffectivePolicy::default()
        };
        let explained = explain_effective_policy(
            &user_in(&["a-strict", "b-loose"]),
            &desktop(),
            &policies,
            &defaults,
        );
        let policy = &explained.policy;
        let sources = &explained.sources;

        assert!(policy.clipboard_out);
        assert_eq!(
            sources.clipboard_out,
            Source::Group(GroupId::new("b-loose"))
        );
        // Both groups say false: false, though the default says true; the tie goes to the lowest id.
        assert!(!policy.file_transfer);
        assert_eq!(
            sources.file_transfer,
            Source::Group(GroupId::new("a-strict"))
        );
        assert_eq!(policy.max_bandwidth_kbps, Limit::Unlimited);
        assert_eq!(
            sources.max_bandwidth_kbps,
            Source::Group(GroupId::new("b-loose"))
        );
        assert_eq!(policy.idle_timeout_secs, Limit::AtMost(1_800));
        assert_eq!(policy.disconnected_keep_secs, 600);
        assert_eq!(
            sources.disconnected_keep_secs,
            Source::Group(GroupId::new("a-strict"))
        );
        // Unset by both groups: the default.
        assert!(policy.clipboard_in);
        assert_eq!(sources.clipboard_in, Source::Default);
        // Hours: the union of weekdays 8–18 and Saturday 9–12.
        let monday_9 = LocalTime::new(Weekday::Monday, 9 * 60).unwrap();
        let saturday_10 = LocalTime::new(Weekday::Saturday, 10 * 60).unwrap();
        let saturday_14 = LocalTime::new(Weekday::Saturday, 14 * 60).unwrap();
        assert!(policy.allowed_hours.contains(monday_9));
        assert!(policy.allowed_hours.contains(saturday_10));
        assert!(!policy.allowed_hours.contains(saturday_14));
        assert_eq!(
            sources.allowed_hours,
            Source::Groups(vec![GroupId::new("a-strict"), GroupId::new("b-loose")])
        );
    }

    #[test]
    fn bandwidth_unlimited_beats_any_number_and_the_largest_number_wins() {
        let small = Policy {
            max_bandwidth_kbps: Some(Limit::AtMost(1_000)),
            ..Policy::default()
        };
        let large = Policy {
            max_bandwidth_kbps: Some(Limit::AtMost(8_000)),
            ..Policy::default()
        };
        let unset = Policy {
            clipboard_in: Some(true),
            ..Policy::default()
        };
        let defaults = EffectivePolicy {
            max_bandwidth_kbps: Limit::AtMost(500),
            ..EffectivePolicy::default()
        };
        let user = user_in(&["g1", "g2", "g3"]);
        let policies = [
            for_group("g1", small.clone()),
            for_group("g2", large),
            for_group("g3", unset),
        ];
        let policy = effective_policy(&user, &desktop(), &policies, &defaults);
        // A group that leaves the field unset does not count as unlimited.
        assert_eq!(policy.max_bandwidth_kbps, Limit::AtMost(8_000));
        let unlimited = Policy {
            max_bandwidth_kbps: Some(Limit::Unlimited),
            ..Policy::default()
        };
        let policies = [for_group("g1", small), for_group("g3", unlimited)];
        assert_eq!(
            effective_policy(&user, &desktop(), &policies, &defaults).max_bandwidth_kbps,
            Limit::Unlimited
        );
    }

    #[test]
    fn resource_level_overrides_groups_field_by_field() {
        let group = Policy {
            clipboard_in: Some(true),
            clipboard_out: Some(true),
            max_bandwidth_kbps: Some(Limit::Unlimited),
            allowed_hours: Some(AllowedHours::always()),
            ..Policy::default()
        };
        let locked = Policy {
            clipboard_out: Some(false),
            max_bandwidth_kbps: Some(Limit::AtMost(1_500)),
            allowed_hours: Some(hours(WeekdaySet::working_days(), 7 * 60, 20 * 60)),
            ..Policy::default()
        };
        let policies = [for_group("staff", group), for_resource("desktop", locked)];
        let explained = explain_effective_policy(
            &user_in(&["staff"]),
            &desktop(),
            &policies,
            &EffectivePolicy::default(),
        );
        assert!(!explained.policy.clipboard_out);
        assert_eq!(explained.sources.clipboard_out, Source::Resource);
        assert_eq!(explained.policy.max_bandwidth_kbps, Limit::AtMost(1_500));
        assert_eq!(explained.sources.allowed_hours, Source::Resource);
        assert!(
            !explained
                .policy
                .allowed_hours
                .contains(LocalTime::new(Weekday::Sunday, 600).unwrap())
        );
        // The resource does not set clipboard_in: the group's value stays.
        assert!(explained.policy.clipboard_in);
        assert_eq!(
            explained.sources.clipboard_in,
            Source::Group(GroupId::new("staff"))
        );
        assert_eq!(explained.sources.file_transfer, Source::Default);
    }
}
