//! One viewer: a WebSocket between a browser and a live session.

use crate::session::{Input, LiveSession, SessionState};
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bascule_proto::{ClientMessage, DecodeError, NoticeLevel, ServerMessage, CODEC_PNG, VERSION};
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
    socket.send(Message::Binary(payload.into())).await.map_err(|_| Close::Gone)
}

async fn notice(socket: &mut WebSocket, state: &AppState, level: NoticeLevel, code: &str, detail: String) -> Result<(), Close> {
    send(socket, state, ServerMessage::Notice { level, code: code.into(), detail }.encode()).await
}

/// Runs a viewer until it or its session ends.
pub(crate) async fn run_viewer(mut socket: WebSocket, state: AppState, session: Arc<LiveSession>) {
    let outcome = serve_viewer(&mut socket, &state, &session).await;
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

async fn next_client_message(socket: &mut WebSocket) -> Result<Option<ClientMessage>, Close> {
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
        Some(Ok(Message::Binary(bytes))) => ClientMessage::decode(&bytes).map(Some).map_err(|e| bad_message(&e)),
        Some(Ok(Message::Text(_))) => Err(Close::With {
            code: 1003,
            reason: "text messages are not part of the protocol".into(),
            notice: Some(("viewer.bad_message", "text message".into())),
        }),
        Some(Ok(Message::Close(_))) => Err(Close::Gone),
        Some(Ok(_)) => Ok(None),
    }
}

async fn serve_viewer(socket: &mut WebSocket, state: &AppState, session: &Arc<LiveSession>) -> Close {
    match serve_viewer_inner(socket, state, session).await {
        Ok(never) => match never {},
        Err(close) => close,
    }
}

async fn serve_viewer_inner(
    socket: &mut WebSocket,
    state: &AppState,
    session: &Arc<LiveSession>,
) -> Result<std::convert::Infallible, Close> {
    // 1. The browser speaks first.
    let hello = tokio::time::timeout(Duration::from_secs(10), next_client_message(socket))
        .await
        .map_err(|_| Close::With { code: 1008, reason: "no hello".into(), notice: None })??;
    match hello {
        Some(ClientMessage::Hello { version, codecs, .. }) => {
            if version != VERSION {
                return Err(Close::With { code: 1002, reason: "unsupported protocol version".into(), notice: None });
            }
            if codecs & CODEC_PNG == 0 {
                return Err(Close::With { code: 1003, reason: "the viewer decodes no codec we send".into(), notice: None });
            }
        }
        _ => {
            let error = DecodeError::InvalidValue("first message must be a hello");
            return Err(bad_message(&error));
        }
    }

    // 2. Wait until the backend is connected.
    let mut states = session.state.subscribe();
    notice(socket, state, NoticeLevel::Info, "session.connecting", String::new()).await?;
    let (width, height) = loop {
        let current = states.borrow_and_update().clone();
        match current {
            SessionState::Active { width, height } => break (width, height),
            SessionState::Ended { code, detail } => {
                return Err(Close::With { code: 1000, reason: code.into(), notice: Some((code, detail)) });
            }
            SessionState::Connecting => {}
        }
        tokio::select! {
            changed = states.changed() => if changed.is_err() { return Err(Close::Gone) },
            message = next_client_message(socket) => { message?; }
        }
    };
    let max_in_flight = state.config.sessions.max_in_flight;
    send(socket, state, ServerMessage::Hello {
        version: VERSION,
        width,
        height,
        codecs: CODEC_PNG,
        max_in_flight,
        name: session.name.clone(),
    }.encode()).await?;

    // 3. Attach to the display and run.
    let viewer = session.lock_display().add_viewer(max_in_flight);
    let guard = ViewerGuard { session: session.clone(), viewer };
    let result = viewer_loop(socket, state, session, guard.viewer, states).await;
    drop(guard);
    result
}

/// Detaches the viewer from the display however the loop ends.
struct ViewerGuard {
    session: Arc<LiveSession>,
    viewer: bascule_display::ViewerId,
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.session.lock_display().remove_viewer(self.viewer);
    }
}

async fn viewer_loop(
    socket: &mut WebSocket,
    state: &AppState,
    session: &Arc<LiveSession>,
    viewer: bascule_display::ViewerId,
    mut states: tokio::sync::watch::Receiver<SessionState>,
) -> Result<std::convert::Infallible, Close> {
    let mut changes = session.changes.subscribe();
    // The resource's clipboard policy, for each direction.
    let clipboard_in = session.target.clipboard_in;
    let clipboard_out = session.target.clipboard_out;
    let mut clipboard = session.clipboard.subscribe();
    clipboard.mark_unchanged();
    let ack_timeout = Duration::from_secs(state.config.sessions.ack_timeout_secs);
    let mut waiting_since: Option<tokio::time::Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        // Send a frame whenever the window allows; plan under the lock, encode outside it.
        let plan = session.lock_display().take_frame(viewer);
        if let Some(plan) = plan {
            let payloads = plan.encode();
            for payload in payloads {
                send(socket, state, payload).await?;
            }
        }
        let in_flight = session.lock_display().viewer_stats(viewer).map_or(0, |s| s.in_flight);
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
            message = next_client_message(socket) => {
                match message? {
                    Some(ClientMessage::FrameAck { seq }) => {
                        session.lock_display().handle_ack(viewer, seq).map_err(|e| Close::With {
                            code: 1007, reason: e.to_string(), notice: Some(("viewer.bad_message", e.to_string())),
                        })?;
                        waiting_since = None;
                    }
                    Some(ClientMessage::Clipboard { .. }) if !clipboard_in => {
                        tracing::debug!(resource = %session.resource, "clipboard to the host refused by policy");
                    }
                    Some(message) => forward_input(session, message).await?,
                    None => {}
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
            _ = tick.tick() => {}
        }
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
