//! Sessions, their state machine, and the licence pool they draw from.
//!
//! | method         | from                          | to             |
//! |----------------|-------------------------------|----------------|
//! | `activate`     | Starting                      | Active         |
//! | `disconnect`   | Active                        | Disconnected   |
//! | `reconnect`    | Disconnected                  | Active         |
//! | `end`          | Starting, Active, Disconnected| Ended          |
//! | `fail`         | Starting                      | Failed         |
//!
//! `Ended` and `Failed` are final. A live session (starting, active or disconnected) holds one
//! licence and one place on its host.

use thiserror::Error;

use crate::id::{HostId, ResourceId, SessionId, UserId};
use crate::time::Timestamp;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// The user logged off or closed the application.
    LoggedOff,
    /// The idle timeout of the effective policy elapsed.
    IdleTimeout,
    /// The session stayed disconnected longer than the policy keeps it.
    DisconnectedTimeout,
    /// An administrator or the helpdesk ended it.
    EndedByStaff,
    /// The host went away.
    HostLost,
}

/// Why a session failed to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailReason {
    /// The host could not be reached.
    HostUnreachable,
    /// The host refused the credentials.
    AuthenticationFailed,
    /// The host's certificate was not accepted.
    CertificateRejected,
    /// The host did not answer in time.
    TimedOut,
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionState {
    /// Decided and being connected; holds a licence already.
    Starting,
    /// A viewer is attached.
    Active,
    /// No viewer; the desktop keeps running on the host, and the licence stays held.
    Disconnected {
        /// When the last viewer left.
        since: Timestamp,
    },
    /// Over; final.
    Ended {
        /// When.
        at: Timestamp,
        /// Why.
        reason: EndReason,
    },
    /// Never started; final.
    Failed {
        /// When.
        at: Timestamp,
        /// Why.
        reason: FailReason,
    },
}

impl SessionState {
    /// Whether the session is starting, active or disconnected: it holds a licence and a place
    /// on its host.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            SessionState::Starting | SessionState::Active | SessionState::Disconnected { .. }
        )
    }

    /// The state without its data, for messages.
    pub fn kind(self) -> SessionStateKind {
        match self {
            SessionState::Starting => SessionStateKind::Starting,
            SessionState::Active => SessionStateKind::Active,
            SessionState::Disconnected { .. } => SessionStateKind::Disconnected,
            SessionState::Ended { .. } => SessionStateKind::Ended,
            SessionState::Failed { .. } => SessionStateKind::Failed,
        }
    }
}

/// The name of a [`SessionState`], without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionStateKind {
    /// [`SessionState::Starting`].
    Starting,
    /// [`SessionState::Active`].
    Active,
    /// [`SessionState::Disconnected`].
    Disconnected,
    /// [`SessionState::Ended`].
    Ended,
    /// [`SessionState::Failed`].
    Failed,
}

impl SessionStateKind {
    /// A stable lowercase name, for logs and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStateKind::Starting => "starting",
            SessionStateKind::Active => "active",
            SessionStateKind::Disconnected => "disconnected",
            SessionStateKind::Ended => "ended",
            SessionStateKind::Failed => "failed",
        }
    }
}

/// A transition the state machine does not allow; the session is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("session cannot go from {} to {}", from.as_str(), to.as_str())]
pub struct TransitionError {
    /// The state the session is in.
    pub from: SessionStateKind,
    /// The state that was asked for.
    pub to: SessionStateKind,
}

/// One session of a user on a resource, on a host.
///
/// The state changes only through the transition methods, which refuse what the state machine
/// (see the module documentation) does not allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    id: SessionId,
    user: UserId,
    resource: ResourceId,
    host: HostId,
    state: SessionState,
    started_at: Timestamp,
}

impl SessionRecord {
    /// A new session, `Starting` at `now`, on the host the broker chose.
    pub fn start(
        id: SessionId,
        user: UserId,
        resource: ResourceId,
        host: HostId,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            user,
            resource,
            host,
            state: SessionState::Starting,
            started_at: now,
        }
    }

    /// A session read back from storage, in whatever state it was saved.
    pub fn restore(
        id: SessionId,
        user: UserId,
        resource: ResourceId,
        host: HostId,
        state: SessionState,
        started_at: Timestamp,
    ) -> Self {
        Self {
            id,
            user,
            resource,
            host,
            state,
            started_at,
        }
    }

    /// The session's id.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// Whose session it is.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// The resource it opens.
    pub fn resource(&self) -> &ResourceId {
        &self.resource
    }

    /// The host it runs on.
    pub fn host(&self) -> &HostId {
        &self.host
    }

    /// Where it is in its life.
    pub fn state(&self) -> SessionState {
        self.state
    }

    /// When it was started.
    pub fn started_at(&self) -> Timestamp {
        self.started_at
    }

    /// Whether it holds a licence and a place on its host.
    pub fn is_live(&self) -> bool {
        self.state.is_live()
    }

    /// Starting → Active: the first viewer is attached.
    pub fn activate(&mut self) -> Result<(), TransitionError> {
        self.move_to(SessionState::Active, |from| {
            matches!(from, SessionState::Starting)
        })
    }

    /// Active → Disconnected: the last viewer left at `now`.
    pub fn disconnect(&mut self, now: Timestamp) -> Result<(), TransitionError> {
        self.move_to(SessionState::Disconnected { since: now }, |from| {
            matches!(from, SessionState::Active)
        })
    }

    /// Disconnected → Active: a viewer came back.
    pub fn reconnect(&mut self) -> Result<(), TransitionError> {
        self.move_to(SessionState::Active, |from| {
            matches!(from, SessionState::Disconnected { .. })
        })
    }

    /// Any live state → Ended: the licence and the host's place are released.
    pub fn end(&mut self, now: Timestamp, reason: EndReason) -> Result<(), TransitionError> {
        self.move_to(
            SessionState::Ended { at: now, reason },
            SessionState::is_live,
        )
    }

    /// Starting → Failed: the session never came up.
    pub fn fail(&mut self, now: Timestamp, reason: FailReason) -> Result<(), TransitionError> {
        self.move_to(SessionState::Failed { at: now, reason }, |from| {
            matches!(from, SessionState::Starting)
        })
    }

    fn move_to(
        &mut self,
        to: SessionState,
        allowed_from: impl Fn(SessionState) -> bool,
    ) -> Result<(), TransitionError> {
        if !allowed_from(self.state) {
            return Err(TransitionError {
                from: self.state.kind(),
                to: to.kind(),
            });
        }
        self.state = to;
        Ok(())
    }
}

/// The site's licences: at most `capacity` live sessions at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LicencePool {
    /// How many live sessions the licences cover.
    pub capacity: u32,
}

impl LicencePool {
    /// A pool of `capacity` licences.
    pub fn new(capacity: u32) -> Self {
        Self { capacity }
    }

    /// Licences in use: the live sessions (starting, active or disconnected) among `sessions`.
    pub fn in_use(&self, sessions: &[SessionRecord]) -> u32 {
        let live = sessions.iter().filter(|session| session.is_live()).count();
        u32::try_from(live).unwrap_or(u32::MAX)
    }

    /// Whether one more session fits.
    pub fn has_room(&self, sessions: &[SessionRecord]) -> bool {
        self.in_use(sessions) < self.capacity
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn session() -> SessionRecord {
        SessionRecord::start(
            SessionId::new("s1"),
            UserId::new("u1"),
            ResourceId::new("desktop"),
            HostId::new("h1"),
            Timestamp::from_unix_seconds(1_000),
        )
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_seconds(seconds)
    }

    #[test]
    fn a_normal_life() {
        let mut session = session();
        assert!(session.is_live());
        session.activate().unwrap();
        session.disconnect(at(2_000)).unwrap();
        assert_eq!(
            session.state(),
            SessionState::Disconnected { since: at(2_000) }
        );
        assert!(session.is_live());
        session.reconnect().unwrap();
        session.end(at(3_000), EndReason::LoggedOff).unwrap();
        assert!(!session.is_live());
        assert_eq!(
            session.state(),
            SessionState::Ended {
                at: at(3_000),
                reason: EndReason::LoggedOff
            }
        );
    }

    #[test]
    fn invalid_transitions_are_refused_and_change_nothing() {
        let mut ended = session();
        ended.end(at(1_500), EndReason::EndedByStaff).unwrap();
        let before = ended.clone();
        let error = ended.activate().unwrap_err();
        assert_eq!(
            error,
            TransitionError {
                from: SessionStateKind::Ended,
                to: SessionStateKind::Active
            }
        );
        assert_eq!(error.to_string(), "session cannot go from ended to active");
        assert!(ended.reconnect().is_err());
        assert!(ended.disconnect(at(1_600)).is_err());
        assert!(ended.end(at(1_600), EndReason::LoggedOff).is_err());
        assert!(ended.fail(at(1_600), FailReason::TimedOut).is_err());
        assert_eq!(ended, before);

        let mut starting = session();
        assert_eq!(
            starting.disconnect(at(1_100)).unwrap_err().from,
            SessionStateKind::Starting
        );
        assert!(starting.reconnect().is_err());
        let mut active = session();
        active.activate().unwrap();
        assert!(active.activate().is_err());
        assert!(active.reconnect().is_err());
        assert_eq!(
            active
                .fail(at(1_100), FailReason::HostUnreachable)
                .unwrap_err()
                .to,
            SessionStateKind::Failed
        );
        active.disconnect(at(1_200)).unwrap();
        assert!(active.disconnect(at(1_300)).is_err());

        starting
            .fail(at(1_100), FailReason::AuthenticationFailed)
            .unwrap();
        assert!(!starting.is_live());
        assert!(starting.activate().is_err());
        assert!(starting.end(at(1_200), EndReason::LoggedOff).is_err());
    }

    #[test]
    fn licences_count_live_sessions_only() {
        let pool = LicencePool::new(2);
        let mut sessions = vec![session(), session(), session()];
        assert_eq!(pool.in_use(&sessions), 3);
        assert!(!pool.has_room(&sessions));
        sessions[0].fail(at(1_100), FailReason::TimedOut).unwrap();
        sessions[1].activate().unwrap();
        sessions[1].disconnect(at(1_200)).unwrap();
        assert_eq!(pool.in_use(&sessions), 2);
        sessions[2].end(at(1_300), EndReason::LoggedOff).unwrap();
        assert_eq!(pool.in_use(&sessions), 1);
        assert!(pool.has_room(&sessions));
    }
}
