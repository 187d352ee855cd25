//! Users, groups, roles and entitlements: who may do what, and who may open which resource.

use crate::id::{GroupId, ResourceId, UserId};

/// Something a person can do in Bascule; [`Role::can`] says who may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Log in to the portal and open the resources one is entitled to.
    OpenPortal,
    /// See the administration console: hosts, sessions, audit.
    ViewConsole,
    /// Disconnect, end or message other users' sessions.
    ManageSessions,
    /// Reset another user's TOTP second factor.
    ResetTotp,
    /// Unlock an account locked after failed logins.
    UnlockAccount,
    /// Add, change or remove hosts, pools and resources, drain hosts.
    ManageInventory,
    /// Change entitlements, policies, the licence capacity and roles.
    ManageAccess,
}

/// A role granted to a user.
///
/// Roles are levels: each includes everything the one below it may do
/// (user ⊂ helpdesk ⊂ admin), so the helpdesk can also open the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Role {
    /// A teleworker: opens the portal, nothing else.
    User,
    /// Support staff: the console, others' sessions, TOTP resets and unlocks,
    /// but not the inventory nor access rules.
    Helpdesk,
    /// Everything.
    Admin,
}

impl Role {
    /// Whether this role allows `action`.
    pub fn can(self, action: Action) -> bool {
        match self {
            Role::User => matches!(action, Action::OpenPortal),
            Role::Helpdesk => matches!(
                action,
                Action::OpenPortal
                    | Action::ViewConsole
                    | Action::ManageSessions
                    | Action::ResetTotp
                    | Action::UnlockAccount
            ),
            Role::Admin => true,
        }
    }
}

/// A person who can log in.
///
/// Build one with [`User::new`] and set the other fields; the struct will grow.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct User {
    /// Stable id.
    pub id: UserId,
    /// What the person types to log in.
    pub login: String,
    /// Name shown in the portal and the console.
    pub display_name: String,
    /// Groups the user belongs to; entitlements and policies of these groups apply.
    pub groups: Vec<GroupId>,
    /// Roles granted; none means the account can do nothing.
    pub roles: Vec<Role>,
    /// A disabled account can neither log in nor launch anything; its data is kept.
    pub enabled: bool,
}

impl User {
    /// An enabled user with the `User` role and no group.
    pub fn new(id: UserId, login: impl Into<String>, display_name: impl Into<String>) -> Self {
        Self {
            id,
            login: login.into(),
            display_name: display_name.into(),
            groups: Vec::new(),
            roles: vec![Role::User],
            enabled: true,
        }
    }

    /// Whether the user may do `action`: the account is enabled and one of its roles allows it.
    pub fn can(&self, action: Action) -> bool {
        self.enabled && self.roles.iter().any(|role| role.can(action))
    }

    /// Whether the user belongs to `group`.
    pub fn is_in(&self, group: &GroupId) -> bool {
        self.groups.contains(group)
    }
}

/// A group of users.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Group {
    /// Stable id.
    pub id: GroupId,
    /// Name shown in the console.
    pub name: String,
}

impl Group {
    /// A group.
    pub fn new(id: GroupId, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
        }
    }
}

/// Who an entitlement or a policy is given to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Subject {
    /// One user.
    User(UserId),
    /// Every member of a group.
    Group(GroupId),
}

impl Subject {
    /// Whether `user` is this subject or a member of it.
    pub fn includes(&self, user: &User) -> bool {
        match self {
            Subject::User(id) => *id == user.id,
            Subject::Group(group) => user.is_in(group),
        }
    }
}

/// The right of a subject to open a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entitlement {
    /// Who.
    pub subject: Subject,
    /// What.
    pub resource: ResourceId,
}

/// Whether `user` may open `resource`, directly or through one of its groups.
///
/// This says nothing of the account being enabled nor of the hours; [`crate::broker::decide_launch`]
/// checks those.
pub fn is_entitled(user: &User, resource: &ResourceId, entitlements: &[Entitlement]) -> bool {
    entitlements
        .iter()
        .any(|entitlement| entitlement.resource == *resource && entitlement.subject.includes(user))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const ACTIONS: [Action; 7] = [
        Action::OpenPortal,
        Action::ViewConsole,
        Action::ManageSessions,
        Action::ResetTotp,
        Action::UnlockAccount,
        Action::ManageInventory,
        Action::ManageAccess,
    ];

    #[test]
    fn roles_matrix() {
        // One row per role, one column per action, in the order of `ACTIONS`.
        let expected = [
            (Role::User, [true, false, false, false, false, false, false]),
            (Role::Helpdesk, [true, true, true, true, true, false, false]),
            (Role::Admin, [true, true, true, true, true, true, true]),
        ];
        for (role, row) in expected {
            for (action, allowed) in ACTIONS.into_iter().zip(row) {
                assert_eq!(role.can(action), allowed, "{role:?} {action:?}");
            }
        }
    }

    #[test]
    fn user_permissions_combine_roles_and_need_an_enabled_account() {
        let mut user = User::new(UserId::new("u1"), "alice", "Alice");
        assert!(user.can(Action::OpenPortal));
        assert!(!user.can(Action::ViewConsole));
        user.roles.push(Role::Helpdesk);
        assert!(user.can(Action::ResetTotp));
        assert!(!user.can(Action::ManageInventory));
        user.enabled = false;
        assert!(ACTIONS.iter().all(|&action| !user.can(action)));
        user.roles.clear();
        user.enabled = true;
        assert!(!user.can(Action::OpenPortal));
    }

    #[test]
    fn entitlement_directly_or_through_a_group() {
        let mut user = User::new(UserId::new("u1"), "alice", "Alice");
        let desktop = ResourceId::new("desktop");
        let accounting = ResourceId::new("accounting");
        let entitlements = [
            Entitlement {
                subject: Subject::User(UserId::new("u1")),
                resource: desktop.clone(),
            },
            Entitlement {
                subject: Subject::Group(GroupId::new("finance")),
                resource: accounting.clone(),
            },
        ];
        assert!(is_entitled(&user, &desktop, &entitlements));
        assert!(!is_entitled(&user, &accounting, &entitlements));
        user.groups.push(GroupId::new("finance"));
        assert!(is_entitled(&user, &accounting, &entitlements));
        let other = User::new(UserId::new("u2"), "bob", "Bob");
        assert!(!is_entitled(&other, &desktop, &entitlements));
    }
}
