//! One viewer: a WebSocket between a browser and a live session.

use crate::session::{Input, LiveSession, SessionEvent, SessionState, ViewerRole};
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bascule_proto::{ClientMessage, DecodeError, NoticeLevel, ServerMessage, CODEC_GLYPHS, CODEC_H264, CODEC_JPEG, CODEC_PNG, VERSION, control_state};

/// The codecs this gateway sends, when the viewer decodes them.
const SERVER_CODECS: u32 = CODEC_PNG | CODEC_JPEG | CODEC_GLYPHS | CODEC_H264;

/// How often what a viewer holds lossy is checked for refinement: a still picture becomes exact
/// one to two periods after its last change (`Display::refine`).
const REFINE_PERIOD: Duration = Duration::from_millis(250);
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Why a viewer connection ends.
enum Close {
    /// The browser went away.
    Gone,
    /// Close with this code and reason, after an optional notice.
    With { code: u16, reason: String, notice: Option<(&'static str, String)> },
}

fn bad_message(error: &DecodeError) -> Close {
    Close::With {
        code: error.close_code(),
        reason: error.to_string(),
        notice: Some(("viewer.bad_message", error.to_string())),
    }
}

async fn send(socket: &mut WebSocket, state: &AppState, payload: Vec<u8>) -> Result<(), Close> {
    state.stats.bytes_to_clients.fetch_add(payload.len() as u64, Ordering::Relaxed);
    crate::metrics::bytes_to_client(payload.len());
    socket.send(Message::Binary(payload.into())).await.map_err(|_| Close::Gone)
}

async fn notice(socket: &mut WebSocket, state: &AppState, level: NoticeLevel, code: &str, detail: String) -> Result<(), Close> {
    send(socket, state, ServerMessage::Notice { level, code: code.into(), detail }.encode()).await
}

/// Runs a viewer until it or its session ends.
pub(crate) async fn run_viewer(mut socket: WebSocket, state: AppState, session: Arc<LiveSession>, role: ViewerRole) {
    let outcome = serve_viewer(&mut socket, &state, &session, &role).await;
    if let ViewerRole::Shadow { token, agent_login, .. } = &role {
        // A shadow that leaves gives control back.
        let released = session.lock_control().release_shadow(*token);
        if let Some(id) = released {
            let _ = session.events.send(SessionEvent::ControlState { id, state: control_state::ENDED, shadow: *token });
            state.plane.audit(agent_login, "session.control", &session.id, None, "ended: the shadow left").await;
        }
    }
    if let Close::With { code, reason, notice: note } = outcome {
        if let Some((notice_code, detail)) = note {
            let _ = notice(&mut socket, &state, NoticeLevel::Error, notice_code, detail).await;
        }
        let mut reason = reason;
        // A close reason must fit in a control frame (123 bytes).
        while reason.len() > 120 {
            reason.pop();
        }
        let frame = CloseFrame { code, reason: Utf8Bytes::from(reason) };
        let _ = socket.send(Message::Close(Some(frame))).await;
        // Wait (briefly) for the browser's close reply: dropping the socket while its acks are
        // still unread makes TCP reset the connection, and the browser may then lose the notice
        // and the close frame (it sees 1006 instead of the code above).
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = socket.recv().await {}
        })
        .await;
    }
}

async fn next_client_message(socket: &mut WebSocket, session: &LiveSession) -> Result<Option<ClientMessage>, Close> {
    match socket.recv().await {
        None => Err(Close::Gone),
        // The socket's own limit (above the protocol's) refuses the message before we see it;
        // the protocol still wants 1009 and a reason, not a dropped connection.
        Some(Err(error)) if error.to_string().contains("Message too long") => Err(Close::With {
            code: 1009,
            reason: "message too large".into(),
            notice: Some(("viewer.bad_message", error.to_string())),
        }),
        Some(Err(_)) => Err(Close::Gone),
        Some(Ok(Message::Binary(bytes))) => {
            crate::metrics::bytes_from_client(bytes.len());
            session.lock_stats().bytes_from_client += bytes.len() as u64;
            ClientMessage::decode(&bytes).map(Some).map_err(|e| bad_message(&e))
        }
        Some(Ok(Message::Text(_))) => Err(Close::With {
            code: 1003,
            reason: "text messages are not part of the protocol".into(),
            notice: Some(("viewer.bad_message", "text message".into())),
        }),
        Some(Ok(Message::Close(_))) => Err(Close::Gone),
        Some(Ok(_)) => Ok(None),
    }
}

async fn serve_viewer(socket: &mut WebSocket, state: &AppState, session: &Arc<LiveSession>, role: &ViewerRole) -> Close {
    match serve_viewer_inner(socket, state, session, role).await {
        Ok(never) => match never {},
        Err(close) => close,
    }
}

async fn serve_viewer_inner(
    socket: &mut WebSocket,
    state: &AppState,
    session: &Arc<LiveSession>,
    role: &ViewerRole,
) -> Result<std::convert::Infallible, Close> {
    // 1. The browser speaks first.
    let hello = tokio::time::timeout(Duration::from_secs(10), next_client_message(socket, session))
        .await
        .map_err(|_| Close::With { code: 1008, reason: "no hello".into(), notice: None })??;
    let codecs = match hello {
        Some(ClientMessage::Hello { version, codecs, .. }) => {
            if version != VERSION {
                return Err(Close::With { code: 1002, reason: "unsupported protocol version".into(), notice: None });
            }
            if codecs & CODEC_PNG == 0 {
                return Err(Close::With { code: 1003, reason: "the viewer decodes no codec we send".into(), notice: None });
            }
            codecs & SERVER_CODECS
        }
        _ => {
            let error = DecodeError::InvalidValue("first message must be a hello");
            return Err(bad_message(&error));
        }
    };

    // 2. Wait until the backend is connected.
    let mut states = session.state.subscribe();
    notice(socket, state, NoticeLevel::Info, "session.connecting", String::new()).await?;
    // The browser sends its CacheOffer right after its hello: kept if it comes before the viewer
    // is attached (a later one is answered in viewer_loop, from the next frame on).
    let mut cache_offer = None;
    let (width, height) = loop {
        let current = states.borrow_and_update().clone();
        match current {
            SessionState::Active { width, height } => {
                if cache_offer.is_none()
                    && let Ok(message) = tokio::time::timeout(Duration::ZERO, next_client_message(socket, session)).await
                    && let Some(ClientMessage::CacheOffer { tiles }) = message?
                {
                    cache_offer = Some(tiles);
                }
                break (width, height);
            }
            SessionState::Ended { code, detail } => {
                return Err(Close::With { code: 1000, reason: code.into(), notice: Some((code, detail)) });
            }
            SessionState::Connecting => {}
        }
        tokio::select! {
            changed = states.changed() => if changed.is_err() { return Err(Close::Gone) },
            message = next_client_message(socket, session) => {
                if let Some(ClientMessage::CacheOffer { tiles }) = message? { cache_offer = Some(tiles) }
            }
        }
    };
    let max_in_flight = state.config.sessions.max_in_flight;
    send(socket, state, ServerMessage::Hello {
        version: VERSION,
        width,
        height,
        codecs,
        max_in_flight,
        name: session.name.clone(),
    }.encode()).await?;

    if let ViewerRole::Shadow { owner_name, .. } = role {
        send(socket, state, ServerMessage::ViewMode { read_only: true, shadow_of: owner_name.clone() }.encode()).await?;
    }

    // 3. Attach to the display and run.
    let viewer = {
        let mut display = session.lock_display();
        let viewer = display.add_viewer(max_in_flight);
        display.set_codecs(viewer, codecs);
        viewer
    };
    let owner = matches!(role, ViewerRole::Owner);
    if owner {
        session.owner_viewers.fetch_add(1, Ordering::Relaxed);
    }
    let guard = ViewerGuard { session: session.clone(), viewer, owner };
    let result = viewer_loop(socket, state, session, guard.viewer, states, role, cache_offer).await;
    drop(guard);
    result
}

/// Detaches the viewer from the display however the loop ends.
struct ViewerGuard {
    session: Arc<LiveSession>,
    viewer: bascule_display::ViewerId,
    owner: bool,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.session.lock_display().remove_viewer(self.viewer);
        if self.owner {
            self.session.owner_viewers.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

async fn viewer_loop(
    socket: &mut WebSocket,
    state: &AppState,
    session: &Arc<LiveSession>,
    viewer: bascule_display::ViewerId,
    mut states: tokio::sync::watch::Receiver<SessionState>,
    role: &ViewerRole,
    cache_offer: Option<u32>,
) -> Result<std::convert::Infallible, Close> {
    if let Some(tiles) = cache_offer {
        agree_cache(socket, state, session, viewer, tiles).await?;
    }
    let mut changes = session.changes.subscribe();
    let mut events = session.events.subscribe();
    let shadow_token = match role {
        ViewerRole::Shadow { token, .. } => Some(*token),
        ViewerRole::Owner => None,
    };
    // The resource's clipboard policy, for each direction.
    let clipboard_in = session.target.clipboard_in;
    let clipboard_out = session.target.clipboard_out;
    let mut clipboard = session.clipboard.subscribe();
    clipboard.mark_unchanged();
    let ack_timeout = Duration::from_secs(state.config.sessions.ack_timeout_secs);
    let mut waiting_since: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_ping = std::time::Instant::now();
    let keepalive = Duration::from_secs(state.config.sessions.keepalive_secs.max(1));
    // Bytes in flight to this browser, its round trips and delivery rate.
    let mut flow = crate::flow::Flow::default();
    let mut refine = tokio::time::interval(REFINE_PERIOD);
    refine.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Send a frame whenever the window and the bandwidth cap allow; plan under the lock,
        // encode outside it. A capped viewer waits while damage coalesces in the display.
        let paced = session
            .pace
            .as_ref()
            .map_or(Duration::ZERO, |pace| pace.lock().unwrap_or_else(|e| e.into_inner()).wait(std::time::Instant::now()));
        let plan = if paced.is_zero() && flow.may_send() { session.lock_display().take_frame(viewer) } else { None };
        if let Some(plan) = plan {
            let encode_started = std::time::Instant::now();
            let seq = plan.seq();
            let payloads = plan.encode();
            crate::metrics::encode(encode_started.elapsed().as_secs_f64());
            session.lock_stats().frame_sent(encode_started);
            let frame_bytes: usize = payloads.iter().map(Vec::len).sum();
            flow.on_send(seq, frame_bytes, std::time::Instant::now());
            if let Some(pace) = &session.pace {
                pace.lock().unwrap_or_else(|e| e.into_inner()).charge(frame_bytes, std::time::Instant::now());
            }
            for payload in payloads {
                session.lock_stats().bytes_to_client += payload.len() as u64;
                send(socket, state, payload).await?;
            }
        }
        let (in_flight, lossy) = session.lock_display().viewer_stats(viewer).map_or((0, false), |s| (s.in_flight, s.lossy_cells > 0 || s.video_open));
        if in_flight == 0 {
            waiting_since = None;
        } else {
            let since = *waiting_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() > ack_timeout {
                return Err(Close::With {
                    code: 1008,
                    reason: "viewer.timeout".into(),
                    notice: Some(("viewer.timeout", format!("no frame acknowledged for {} s", ack_timeout.as_secs()))),
                });
            }
        }
        tokio::select! {
            message = next_client_message(socket, session) => {
                match message? {
                    Some(ClientMessage::FrameAck { seq }) => {
                        session.lock_display().handle_ack(viewer, seq).map_err(|e| Close::With {
                            code: 1007, reason: e.to_string(), notice: Some(("viewer.bad_message", e.to_string())),
                        })?;
                        waiting_since = None;
                        if let Some(rtt) = flow.on_ack(seq, std::time::Instant::now()) {
                            crate::metrics::rtt(rtt.as_secs_f64());
                            session.record_rtt(rtt);
                        }
                        let mut display = session.lock_display();
                        display.set_quality(viewer, flow.jpeg_quality());
                        display.set_video_bitrate(viewer, flow.video_bitrate());
                    }
                    Some(ClientMessage::ControlReply { id, granted }) if shadow_token.is_none() => {
                        let answered = session.lock_control().answer(id, granted);
                        if let Some(shadow) = answered {
                            let state_code = if granted { control_state::GRANTED } else { control_state::REFUSED };
                            let _ = session.events.send(SessionEvent::ControlState { id, state: state_code, shadow });
                            let outcome = if granted { "granted by the user" } else { "refused by the user" };
                            state.plane.audit(&session.user, "session.control", &session.id, None, outcome).await;
                        }
                    }
                    Some(ClientMessage::ControlRequest) => {
                        if let ViewerRole::Shadow { token, agent_login, agent_name, .. } = role {
                            let requested = session.lock_control().request(*token);
                            match requested {
                                Some(id) => {
                                    let _ = session.events.send(SessionEvent::ControlRequest { id, from: agent_name.clone() });
                                    let _ = session.events.send(SessionEvent::ControlState { id, state: control_state::PENDING, shadow: *token });
                                    state.plane.audit(agent_login, "session.control", &session.id, None, "requested").await;
                                }
                                None => {
                                    notice(socket, state, NoticeLevel::Warning, "control.busy", String::new()).await?;
                                }
                            }
                        }
                    }
                    Some(ClientMessage::ControlRelease { id }) => {
                        let released = match shadow_token {
                            // A shadow may only give back its own request.
                            Some(token) => {
                                let mut control = session.lock_control();
                                if control.release_shadow(token) == Some(id) { Some(token) } else { None }
                            }
                            None => session.lock_control().release(id),
                        };
                        if let Some(shadow) = released {
                            let _ = session.events.send(SessionEvent::ControlState { id, state: control_state::ENDED, shadow });
                            let who = match role { ViewerRole::Shadow { agent_login, .. } => agent_login.as_str(), ViewerRole::Owner => session.user.as_str() };
                            state.plane.audit(who, "session.control", &session.id, None, "ended").await;
                        }
                    }
                    Some(ClientMessage::CacheOffer { tiles }) => agree_cache(socket, state, session, viewer, tiles).await?,
                    Some(ClientMessage::Clipboard { .. }) if !clipboard_in => {
                        tracing::debug!(resource = %session.resource, "clipboard to the host refused by policy");
                    }
                    // A shadow's input is dropped unless the owner granted it control.
                    Some(message) if shadow_token.is_some_and(|token| !session.lock_control().granted_to(token))
                        && !matches!(message, ClientMessage::Hello { .. }) => {
                            tracing::debug!(session = %session.id, "input from a read-only shadow dropped");
                        }
                    Some(message) => forward_input(session, message).await?,
                    None => {}
                }
            }
            event = events.recv() => {
                match event {
                    Ok(SessionEvent::Message { from, text }) if shadow_token.is_none() => {
                        send(socket, state, ServerMessage::Message { from, text }.encode()).await?;
                    }
                    Ok(SessionEvent::ControlRequest { id, from }) if shadow_token.is_none() => {
                        send(socket, state, ServerMessage::ControlRequest { id, from }.encode()).await?;
                    }
                    Ok(SessionEvent::ControlState { id, state: code, shadow }) => {
                        if shadow_token.is_none() || shadow_token == Some(shadow) {
                            send(socket, state, ServerMessage::ControlState { id, state: code }.encode()).await?;
                        }
                    }
                    Ok(SessionEvent::DisconnectOwners) if shadow_token.is_none() => {
                        return Err(Close::With {
                            code: 1000,
                            reason: "session.disconnected_by_staff".into(),
                            notice: Some(("session.disconnected_by_staff", String::new())),
                        });
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Err(Close::Gone),
                }
            }
            changed = changes.changed() => if changed.is_err() { return Err(Close::Gone) },
            changed = states.changed() => {
                if changed.is_err() { return Err(Close::Gone) }
                if let SessionState::Ended { code, detail } = states.borrow_and_update().clone() {
                    return Err(Close::With { code: 1000, reason: code.into(), notice: Some((code, detail)) });
                }
                if let SessionState::Active { width, height } = *states.borrow() {
                    tracing::debug!(width, height, "desktop resized");
                }
            }
            changed = clipboard.changed() => {
                if changed.is_err() { return Err(Close::Gone) }
                let text = clipboard.borrow_and_update().1.clone();
                if clipboard_out {
                    send(socket, state, ServerMessage::Clipboard { text }.encode()).await?;
                }
            }
            _ = tick.tick() => {
                // Nothing changes, nothing is sent: only a WebSocket ping now and then, so that
                // proxies and NATs keep the idle connection open.
                let idle = session.lock_stats().last_sent.is_none_or(|at| at.elapsed() >= keepalive);
                if idle && last_ping.elapsed() >= keepalive {
                    socket.send(Message::Ping(Vec::new().into())).await.map_err(|_| Close::Gone)?;
                    last_ping = std::time::Instant::now();
                }
            }
            _ = tokio::time::sleep(paced), if !paced.is_zero() => {}
            // Refinement only when the link has room: fresh updates go first.
            _ = refine.tick(), if lossy && flow.may_send() => {
                session.lock_display().refine(viewer, flow.refine_cells());
            }
        }
    }
}

/// Answers the viewer's first CacheOffer with CacheAgreed, before any frame uses the cache.
async fn agree_cache(socket: &mut WebSocket, state: &AppState, session: &LiveSession, viewer: bascule_display::ViewerId, tiles: u32) -> Result<(), Close> {
    let agreed = session.lock_display().offer_cache(viewer, tiles);
    match agreed {
        Some(tiles) => send(socket, state, ServerMessage::CacheAgreed { tiles }.encode()).await,
        None => Ok(()),
    }
}

async fn forward_input(session: &LiveSession, message: ClientMessage) -> Result<(), Close> {
    *session.last_input.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
    let input = match message {
        ClientMessage::Key { down, keysym, scancode } => Input::Key { down, keysym, scancode },
        ClientMessage::Pointer { x, y, buttons } => Input::Pointer { x, y, buttons },
        ClientMessage::Clipboard { text } => Input::Clipboard(text),
        ClientMessage::ResizeRequest { width, height } => Input::Resize { width, height },
        ClientMessage::Hello { .. } => {
            return Err(bad_message(&DecodeError::InvalidValue("second hello")));
        }
        _ => return Ok(()),
    };
    // The backend has ended if the channel is closed; the state watch will say why.
    let _ = session.input.send(input).await;
    Ok(())
}
