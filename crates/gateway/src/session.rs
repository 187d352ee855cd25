//! Live sessions: one backend connection per session record, shared by that session's viewers.
//!
//! The backend task owns the protocol client and writes into the session's [`Display`]; each
//! viewer task (see `ws.rs`) takes its own frames from the same display when its window allows.

use crate::config::{CertificateRule, KeyboardMode, RdpSecurity, SessionSettings};
use bascule_display::{CursorShape, Display, Update};
use bascule_proto::Rect;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

/// Where a session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionState {
    Connecting,
    Active { width: u16, height: u16 },
    /// `code` is a notice code of `docs/protocol.md`; `detail` is the technical cause.
    Ended { code: &'static str, detail: String },
}

/// Input from a viewer, already checked.
#[derive(Debug, Clone)]
pub(crate) enum Input {
    Key { down: bool, keysym: u32, scancode: u16 },
    Pointer { x: u16, y: u16, buttons: u8 },
    Clipboard(String),
    Resize { width: u16, height: u16 },
}

/// Where and how to connect, resolved by the broker from the host, the resource and the
/// effective policy. Never built from anything the browser sent.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) host_id: String,
    pub(crate) protocol: bascule_domain::inventory::Protocol,
    pub(crate) address: String,
    pub(crate) port: u16,
    pub(crate) keyboard: KeyboardMode,
    pub(crate) security: RdpSecurity,
    pub(crate) certificate: CertificateRule,
    pub(crate) domain: Option<String>,
    /// A published application (RDP alternate shell) instead of the desktop.
    pub(crate) application: Option<String>,
    pub(crate) working_dir: Option<String>,
    pub(crate) keyboard_layout: u32,
    /// RDP: ask for H.264 (AVC420) and pass it through.
    pub(crate) h264: bool,
    pub(crate) clipboard_in: bool,
    pub(crate) clipboard_out: bool,
    /// End the session after this long without input from any viewer (the effective policy).
    pub(crate) idle_timeout: Option<Duration>,
    /// The most the session may send to browsers, in kbit/s (the effective policy).
    pub(crate) max_kbit_per_s: Option<u32>,
}

/// What the console shows of a live session, and what its record keeps at the end.
#[derive(Debug, Default)]
pub(crate) struct LiveStats {
    /// The browser's address (the latest viewer's).
    pub(crate) client_address: Option<std::net::IpAddr>,
    pub(crate) bytes_to_client: u64,
    pub(crate) bytes_from_client: u64,
    pub(crate) frames: u64,
    /// The last frame's round trip.
    pub(crate) rtt_last: Option<Duration>,
    /// Every round trip, in milliseconds, bucketed (`bascule_report::RttHistogram`).
    pub(crate) rtt: bascule_report::RttHistogram,
    /// A session-level error worth showing to the helpdesk (the end's cause).
    pub(crate) last_error: Option<String>,
    /// When the last frame was sent to a viewer.
    pub(crate) last_sent: Option<Instant>,
    /// (when, bytes to client so far), about one per second, for the current rate.
    rate: std::collections::VecDeque<(Instant, u64)>,
    /// When recent frames were sent, for the frame rate.
    frame_times: std::collections::VecDeque<Instant>,
}

impl LiveStats {
    pub(crate) fn frame_sent(&mut self, at: Instant) {
        self.frames += 1;
        self.last_sent = Some(at);
        self.frame_times.push_back(at);
        while self.frame_times.front().is_some_and(|t| at.duration_since(*t) > Duration::from_secs(5)) {
            self.frame_times.pop_front();
        }
        let due = self.rate.back().is_none_or(|(t, _)| at.duration_since(*t) >= Duration::from_secs(1));
        if due {
            self.rate.push_back((at, self.bytes_to_client));
            while self.rate.len() > 11 {
                self.rate.pop_front();
            }
        }
    }

    /// Kilobits per second to the browser over the last ten seconds or so.
    pub(crate) fn kbit_per_s(&self, now: Instant) -> f64 {
        match self.rate.front() {
            Some((t, bytes)) if now.duration_since(*t) > Duration::from_millis(500) => {
                (self.bytes_to_client - bytes) as f64 * 8.0 / 1000.0 / now.duration_since(*t).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Frames per second over the last five seconds.
    pub(crate) fn fps(&self, now: Instant) -> f64 {
        let recent = self.frame_times.iter().filter(|t| now.duration_since(**t) <= Duration::from_secs(5)).count();
        recent as f64 / 5.0
    }
}

/// Something the helpdesk does to a session, fanned out to its viewers (`ws.rs` decides who
/// sees what).
#[derive(Debug, Clone)]
pub(crate) enum SessionEvent {
    /// A message for the session's owner.
    Message { from: String, text: String },
    /// A shadow asks the owner for control.
    ControlRequest { id: u32, from: String },
    /// Where control request `id` (of the shadow viewer `shadow`) stands.
    ControlState { id: u32, state: u8, shadow: u64 },
    /// The helpdesk disconnects the owner's viewers (the session stays, disconnected).
    DisconnectOwners,
}

/// Who is looking at a session through one viewer.
#[derive(Debug, Clone)]
pub(crate) enum ViewerRole {
    /// The session's own user.
    Owner,
    /// A helpdesk agent, read-only unless the owner grants control.
    Shadow { token: u64, agent_login: String, agent_name: String, owner_name: String },
}

/// The control request of a session: at most one at a time.
#[derive(Debug, Default)]
pub(crate) struct Control {
    next_id: u32,
    /// (request id, shadow viewer token, granted).
    current: Option<(u32, u64, bool)>,
}

impl Control {
    /// A new request by shadow `token`; `None` while another is pending or granted.
    pub(crate) fn request(&mut self, token: u64) -> Option<u32> {
        if self.current.is_some() {
            return None;
        }
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.current = Some((self.next_id, token, false));
        Some(self.next_id)
    }

    /// The owner's answer; returns the shadow concerned when `id` is the pending request.
    pub(crate) fn answer(&mut self, id: u32, granted: bool) -> Option<u64> {
        match self.current {
            Some((current, token, false)) if current == id => {
                self.current = if granted { Some((current, token, true)) } else { None };
                Some(token)
            }
            _ => None,
        }
    }

    /// Ends request `id` (released by either side); returns the shadow concerned.
    pub(crate) fn release(&mut self, id: u32) -> Option<u64> {
        match self.current {
            Some((current, token, _)) if current == id => {
                self.current = None;
                Some(token)
            }
            _ => None,
        }
    }

    /// Ends whatever request shadow `token` holds (it left); returns the request id.
    pub(crate) fn release_shadow(&mut self, token: u64) -> Option<u32> {
        match self.current {
            Some((id, holder, _)) if holder == token => {
                self.current = None;
                Some(id)
            }
            _ => None,
        }
    }

    /// Whether shadow `token` holds control now.
    pub(crate) fn granted_to(&self, token: u64) -> bool {
        matches!(self.current, Some((_, holder, true)) if holder == token)
    }
}

/// One backend connection and its display.
#[derive(Debug)]
pub(crate) struct LiveSession {
    /// The session record's id.
    pub(crate) id: String,
    pub(crate) user: String,
    pub(crate) resource: String,
    pub(crate) name: String,
    pub(crate) display: Mutex<Display>,
    pub(crate) state: watch::Sender<SessionState>,
    /// Bumped whenever the display has something new for viewers.
    pub(crate) changes: watch::Sender<u64>,
    /// Remote clipboard text, with a counter so viewers see each change once.
    pub(crate) clipboard: watch::Sender<(u64, String)>,
    pub(crate) input: mpsc::Sender<Input>,
    pub(crate) target: Target,
    /// When a viewer last sent a key, a pointer event or a clipboard (for the idle timeout).
    pub(crate) last_input: Mutex<Instant>,
    /// Traffic, round trips and frame rate.
    pub(crate) stats: Mutex<LiveStats>,
    /// The helpdesk's messages and control requests, to the viewers.
    pub(crate) events: tokio::sync::broadcast::Sender<SessionEvent>,
    /// The control request, if any.
    pub(crate) control: Mutex<Control>,
    /// Viewers of the session's own user (shadows excluded): the record is *active* while
    /// there is one.
    pub(crate) owner_viewers: std::sync::atomic::AtomicUsize,
    /// The bandwidth cap, shared by the session's viewers.
    pub(crate) pace: Option<Mutex<crate::pace::Pace>>,
}

impl LiveSession {
    pub(crate) fn lock_display(&self) -> std::sync::MutexGuard<'_, Display> {
        self.display.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lock_control(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lock_stats(&self) -> std::sync::MutexGuard<'_, LiveStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one frame's round trip.
    pub(crate) fn record_rtt(&self, rtt: Duration) {
        let mut stats = self.lock_stats();
        stats.rtt_last = Some(rtt);
        stats.rtt.record(u32::try_from(rtt.as_millis()).unwrap_or(u32::MAX));
    }

    pub(crate) fn bump(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Ends the session with a notice code; the first reason given is the one kept.
    pub(crate) fn end(&self, code: &'static str, detail: String) {
        self.state.send_if_modified(|state| {
            if matches!(state, SessionState::Ended { .. }) {
                return false;
            }
            *state = SessionState::Ended { code, detail };
            true
        });
        self.bump();
    }
}

/// What a backend needs to log in to its host; resolved by the gateway, never from the browser.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    /// The account name (RDP: the service account, or the portal user for pass-through).
    pub(crate) username: Option<String>,
    /// The password (VNC password, service account password, or the user's own).
    pub(crate) password: Option<crate::secrets::Secret>,
    /// Where trust-on-first-use certificates are recorded.
    pub(crate) certificates: crate::certstore::CertificateStore,
}

/// All live sessions of the gateway.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<String, Arc<LiveSession>>>,
}

/// Who opens a session, on what, and where.
#[derive(Debug, Clone)]
pub(crate) struct Opening {
    pub(crate) session_id: String,
    pub(crate) user: String,
    pub(crate) resource: String,
    pub(crate) display_name: String,
    pub(crate) target: Target,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveSession>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live connection of this session record, if any.
    pub(crate) fn live(&self, session_id: &str) -> Option<Arc<LiveSession>> {
        self.lock().get(session_id).filter(|s| !matches!(*s.state.borrow(), SessionState::Ended { .. })).cloned()
    }

    /// Sends a helpdesk message to the session's viewers; false when it has none here.
    pub(crate) fn send_message(&self, session_id: &str, from: &str, text: &str) -> bool {
        match self.live(session_id) {
            Some(session) => {
                session.events.send(SessionEvent::Message { from: from.to_owned(), text: text.to_owned() }).is_ok()
            }
            None => false,
        }
    }

    /// Closes the owner's viewers (the session itself stays); false when it has none here.
    pub(crate) fn disconnect_viewers(&self, session_id: &str) -> bool {
        match self.live(session_id) {
            Some(session) => session.events.send(SessionEvent::DisconnectOwners).is_ok(),
            None => false,
        }
    }

    /// Whether this session record has a live connection on this node.
    pub(crate) fn is_live(&self, session_id: &str) -> bool {
        self.lock().get(session_id).is_some_and(|s| !matches!(*s.state.borrow(), SessionState::Ended { .. }))
    }

    /// Ends the sessions whose viewers sent no input for longer than their idle timeout; returns
    /// their session ids.
    pub(crate) fn end_idle(&self, now: Instant) -> Vec<String> {
        let live = self.lock();
        let mut ended = Vec::new();
        for session in live.values() {
            let Some(limit) = session.target.idle_timeout else { continue };
            let last = *session.last_input.lock().unwrap_or_else(|e| e.into_inner());
            if now.duration_since(last) > limit && !matches!(*session.state.borrow(), SessionState::Ended { .. }) {
                session.end("session.idle_timeout", format!("no input for {} s", limit.as_secs()));
                ended.push(session.id.clone());
            }
        }
        ended
    }

    /// Ends a session's live connection, if it has one, with a notice to its viewers.
    pub(crate) fn end_session(&self, session_id: &str, code: &'static str) -> bool {
        match self.lock().get(session_id) {
            Some(session) => {
                session.end(code, String::new());
                true
            }
            None => false,
        }
    }

    /// The session record's live connection, or a new one (which starts connecting). The bool
    /// says whether it is new.
    pub(crate) fn attach(
        self: &Arc<Self>,
        opening: Opening,
        credentials: Credentials,
        settings: &SessionSettings,
    ) -> (Arc<LiveSession>, bool) {
        let key = opening.session_id.clone();
        let mut live = self.lock();
        if let Some(existing) = live.get(&key)
            && !matches!(*existing.state.borrow(), SessionState::Ended { .. }) {
                return (existing.clone(), false);
            }
        let (input_tx, input_rx) = mpsc::channel(512);
        let session = Arc::new(LiveSession {
            id: opening.session_id.clone(),
            user: opening.user.clone(),
            resource: opening.resource.clone(),
            name: opening.display_name.clone(),
            target: opening.target.clone(),
            last_input: Mutex::new(Instant::now()),
            stats: Mutex::new(LiveStats::default()),
            events: tokio::sync::broadcast::Sender::new(32),
            control: Mutex::new(Control::default()),
            owner_viewers: std::sync::atomic::AtomicUsize::new(0),
            pace: opening.target.max_kbit_per_s.map(|kbps| Mutex::new(crate::pace::Pace::new(kbps, Instant::now()))),
            display: Mutex::new(Display::new(0, 0)),
            state: watch::Sender::new(SessionState::Connecting),
            changes: watch::Sender::new(0),
            clipboard: watch::Sender::new((0, String::new())),
            input: input_tx,
        });
        live.insert(key.clone(), session.clone());
        let sessions = self.clone();
        let task_session = session.clone();
        let target = opening.target;
        let settings = settings.clone();
        tokio::spawn(async move {
            let outcome = match target.protocol {
                bascule_domain::inventory::Protocol::Rdp => {
                    crate::rdp_backend::run_rdp(&task_session, &target, credentials, &settings, input_rx).await
                }
                _ => run_vnc(&task_session, &target, credentials.password, &settings, input_rx).await,
            };
            let (code, detail) = match outcome {
                Ok(reason) => reason,
                Err(error) => (error.notice_code(), error.to_string()),
            };
            tracing::info!(session = %task_session.id, user = %task_session.user, resource = %task_session.resource, %code, %detail, "session ended");
task_session.end(code, detail);
            let mut live = sessions.lock();
            if live.get(&key).is_some_and(|s| Arc::ptr_eq(s, &task_session)) {
                live.remove(&key);
            }
        });
        (session, true)
    }

    pub(crate) fn count(&self) -> usize {
        self.lock().len()
    }

    /// Ends every session (gateway shutdown).
    pub(crate) fn end_all(&self, code: &'static str) {
        for session in self.lock().values() {
            session.end(code, String::new());
        }
    }
}

/// Why a backend connection ended abnormally.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BackendError {
    #[error("cannot reach {address}: {source}")]
    Unreachable { address: String, source: std::io::Error },
    #[error("no answer from {address} within {seconds} s")]
    Timeout { address: String, seconds: u64 },
    #[error("connection to the host failed: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Rfb(#[from] bascule_rfb::Error),
    #[error("the host sent an invalid update: {0}")]
    Display(#[from] bascule_display::UpdateError),
    #[error(transparent)]
    Rdp(#[from] bascule_rdp::RdpError),
    #[error("the host's certificate {fingerprint} is not approved yet; an admin approves it with: bascule host approve {resource} {fingerprint}")]
    CertificatePending { resource: String, fingerprint: String },
    #[error("cannot read the approved host certificates: {0}")]
    CertificateStore(#[from] crate::certstore::StoreError),
    #[error("the resource has no credentials for its host")]
    NoCredentials,
}

impl BackendError {
    pub(crate) fn notice_code(&self) -> &'static str {
        match self {
            BackendError::Unreachable { .. } | BackendError::Timeout { .. } => "session.unreachable",
            BackendError::Io(_) => "session.ended",
            BackendError::Rfb(error) => match error.code() {
                "auth_failed" => "session.auth_failed",
                "too_large" => "session.too_large",
                _ => "session.protocol_error",
            },
            BackendError::Display(_) => "session.protocol_error",
            BackendError::Rdp(error) => match error.code() {
                "auth_failed" => "session.auth_failed",
                "unreachable" | "timeout" => "session.unreachable",
                "certificate_mismatch" => "session.certificate_mismatch",
                "certificate_untrusted" => "session.certificate_untrusted",
                "refused" => "session.refused",
                "ended" => "session.ended",
                _ => "session.protocol_error",
            },
            BackendError::CertificatePending { .. } | BackendError::CertificateStore(_) => "session.certificate_untrusted",
            BackendError::NoCredentials => "session.auth_failed",
        }
    }
}

/// Drives one VNC connection until it ends. `Ok` carries a normal end's notice code and detail.
async fn run_vnc(
    session: &LiveSession,
    target: &Target,
    password: Option<crate::secrets::Secret>,
    settings: &SessionSettings,
    mut input: mpsc::Receiver<Input>,
) -> Result<(&'static str, String), BackendError> {
    let address = format!("{}:{}", target.address, target.port);
    let connect_timeout = Duration::from_secs(settings.connect_timeout_secs);
    let stream = tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(&address))
        .await
        .map_err(|_| BackendError::Timeout { address: address.clone(), seconds: settings.connect_timeout_secs })?
        .map_err(|source| BackendError::Unreachable { address: address.clone(), source })?;
    stream.set_nodelay(true)?;
    let (mut reader, mut writer) = stream.into_split();
    let mut client = bascule_rfb::Client::new(bascule_rfb::Config {
        password: password.map(|p| p.expose().to_owned()),
        use_qemu_key_events: target.keyboard == KeyboardMode::Scancode,
        ..bascule_rfb::Config::default()
    });
    let handshake_deadline = tokio::time::Instant::now() + connect_timeout;
    let reconnect_window = Duration::from_secs(settings.reconnect_window_secs);
    let mut alone_since: Option<Instant> = None;
    let mut painted = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        while let Some(bytes) = client.poll_transmit() {
            writer.write_all(&bytes).await?;
        }
        tokio::select! {
            read = reader.read(&mut buffer) => {
                let n = read?;
                if n == 0 {
                    return Ok(("session.ended", "the host closed the connection".into()));
                }
                client.handle_input(&buffer[..n])?;
                drain_events(session, &mut client, &mut painted)?;
            }
            Some(event) = input.recv() => apply_input(&mut client, event),
            _ = tick.tick() => {
                let active = matches!(*session.state.borrow(), SessionState::Active { .. });
                if !active && tokio::time::Instant::now() > handshake_deadline {
                    return Err(BackendError::Timeout { address, seconds: settings.connect_timeout_secs });
                }
                if matches!(*session.state.borrow(), SessionState::Ended { .. }) {
                    return Ok(("gateway.shutdown", String::new()));
                }
                // Viewers attach once the first picture is there: the reconnect window only
                // counts from then on.
                if !active || session.lock_display().viewer_count() > 0 {
                    alone_since = None;
                } else if alone_since.get_or_insert_with(Instant::now).elapsed() > reconnect_window {
                    return Ok(("session.released", "no viewer reconnected within the reconnect window; the desktop stays on its host".into()));
                }
            }
        }
    }
}

fn apply_input(client: &mut bascule_rfb::Client, event: Input) {
    match event {
        // Keysym 0 is a key that gives no character by itself (dead key, AltGr): VNC servers
        // receive the composed character instead.
        Input::Key { keysym: 0, .. } => {}
        Input::Key { down, keysym, scancode } => client.send_key(down, keysym, scancode),
        Input::Pointer { x, y, buttons } => client.send_pointer(x, y, buttons),
        Input::Clipboard(text) => client.send_cut_text(&text),
        Input::Resize { width, height } => {
            client.request_desktop_size(width, height);
        }
    }
}

/// Moves every pending protocol event into the display; tells viewers at the end of each update.
/// `painted` records that the host has drawn something since the connection opened.
fn drain_events(session: &LiveSession, client: &mut bascule_rfb::Client, painted: &mut bool) -> Result<(), BackendError> {
    use bascule_rfb::Event;
    let mut changed = false;
    let mut display = session.lock_display();
    while let Some(event) = client.poll_event() {
        match event {
            Event::Connected { width, height, .. } => {
                display.apply(Update::Resize { width, height })?;
                changed = true;
            }
            Event::Resize { width, height } => {
                display.apply(Update::Resize { width, height })?;
                if matches!(*session.state.borrow(), SessionState::Active { .. }) {
                    session.state.send_replace(SessionState::Active { width, height });
                }
                changed = true;
            }
            Event::Pixels { x, y, width, height, rgba } => {
                display.apply(Update::Pixels { rect: Rect { x, y, width, height }, rgba })?;
                *painted = true;
            }
            Event::Fill { x, y, width, height, rgb } => {
                display.apply(Update::Fill { rect: Rect { x, y, width, height }, rgb })?;
                *painted = true;
            }
            Event::Copy { src_x, src_y, x, y, width, height } => {
                display.apply(Update::Copy { src_x, src_y, dst: Rect { x, y, width, height } })?;
                *painted = true;
            }
            Event::Cursor { hotspot_x, hotspot_y, width, height, rgba } => {
                display.apply(Update::Cursor(CursorShape { hot_x: hotspot_x, hot_y: hotspot_y, width, height, rgba }))?;
                changed = true;
            }
            Event::UpdateEnd => {
                client.request_update(true);
                // Viewers are let in once the first picture is complete, so that nobody is
                // shown a black screen while the host draws its first frame.
                if *painted && matches!(*session.state.borrow(), SessionState::Connecting) {
                    let (width, height) = display.framebuffer().size();
                    session.state.send_replace(SessionState::Active { width, height });
                }
                changed = true;
            }
            Event::ServerCutText(text) => {
                session.clipboard.send_modify(|(n, current)| {
                    *n += 1;
                    *current = text;
                });
            }
            _ => {}
        }
    }
    drop(display);
    if changed {
        session.bump();
    }
    Ok(())
}

#[cfg(test)]
mod control_tests {
    use super::Control;

    #[test]
    fn one_request_at_a_time_and_only_the_owner_of_the_request_is_answered() {
        let mut control = Control::default();
        let id = control.request(7).expect("first request");
        assert_eq!(control.request(8), None, "another shadow waits");
        assert!(!control.granted_to(7), "pending is not granted");
        assert_eq!(control.answer(id + 1, true), None, "a wrong id changes nothing");
        assert_eq!(control.answer(id, true), Some(7));
        assert!(control.granted_to(7) && !control.granted_to(8));
        assert_eq!(control.answer(id, false), None, "already answered");
        assert_eq!(control.release_shadow(8), None);
        assert_eq!(control.release_shadow(7), Some(id), "the shadow left");
        assert!(!control.granted_to(7));
        let again = control.request(8).expect("free again");
        assert_ne!(again, id);
        assert_eq!(control.answer(again, false), Some(8));
        assert!(!control.granted_to(8), "refused");
        assert!(control.request(8).is_some(), "a refused request can be asked again");
    }
}
