//! The RDP backend task: connects with `bascule-rdp`, and moves its events into the session's
//! display and the viewers' input into it.

use crate::config::{CertificateRule, RdpSecurity, SessionSettings};
use crate::session::{BackendError, Credentials, Input, LiveSession, SessionState, Target};
use bascule_display::{CursorShape, Update};
use bascule_proto::Rect;
use bascule_rdp::{CertificatePolicy, RdpConfig, RdpEvent, RdpInput, Security};
use std::time::Duration;
use tokio::sync::mpsc;

/// The desktop size asked of RDP hosts (they may choose another).
const DEFAULT_SIZE: (u16, u16) = (1280, 800);

/// The character an X11 keysym stands for, for the Unicode fallback of keys without a scancode.
pub(crate) fn keysym_to_char(keysym: u32) -> Option<char> {
    match keysym {
        0x20..=0x7e | 0xa0..=0xff => char::from_u32(keysym),
        0x0100_0000..=0x0110_ffff => char::from_u32(keysym - 0x0100_0000),
        0x20ac => Some('€'),
        _ => None,
    }
}

/// Chooses the certificate policy; under trust-on-first-use, an unapproved certificate is
/// recorded as pending and the connection refused before any credential is sent.
async fn certificate_policy(
    target: &Target,
    credentials: &Credentials,
    timeout: Duration,
) -> Result<CertificatePolicy, BackendError> {
    match &target.certificate {
        CertificateRule::Pinned(fingerprint) => Ok(CertificatePolicy::Pinned(*fingerprint)),
        CertificateRule::System => Ok(CertificatePolicy::System),
        CertificateRule::AcceptAny => Ok(CertificatePolicy::AcceptAny),
        CertificateRule::TrustOnFirstUse => {
            if let Some(approved) = credentials.certificates.approved(&target.host_id)?.last() {
                return Ok(CertificatePolicy::Pinned(*approved));
            }
            let seen = bascule_rdp::fetch_certificate_sha256(&target.address, target.port, timeout).await?;
            credentials.certificates.record_pending(&target.host_id, &seen)?;
            Err(BackendError::CertificatePending {
                resource: target.host_id.clone(),
                fingerprint: crate::config::format_fingerprint(&seen),
            })
        }
    }
}

/// Drives one RDP connection until it ends. `Ok` carries a normal end's notice code and detail.
pub(crate) async fn run_rdp(
    session: &LiveSession,
    target: &Target,
    credentials: Credentials,
    settings: &SessionSettings,
    mut input: mpsc::Receiver<Input>,
) -> Result<(&'static str, String), BackendError> {
    let timeout = Duration::from_secs(settings.connect_timeout_secs);
    let certificate = certificate_policy(target, &credentials, timeout).await?;
    let (Some(username), Some(password)) = (credentials.username.clone(), credentials.password.clone()) else {
        return Err(BackendError::NoCredentials);
    };
    let config = RdpConfig {
        host: target.address.clone(),
        port: target.port,
        username,
        password: password.expose().to_owned(),
        domain: target.domain.clone(),
        security: match target.security {
            RdpSecurity::Negotiate => Security::Negotiate,
            RdpSecurity::Tls => Security::Tls,
            RdpSecurity::Nla => Security::Nla,
        },
        certificate,
        width: DEFAULT_SIZE.0,
        height: DEFAULT_SIZE.1,
        alternate_shell: target.application.clone(),
        working_dir: target.working_dir.clone(),
        keyboard_layout: target.keyboard_layout,
        clipboard: target.clipboard_in || target.clipboard_out,
        connect_timeout: timeout,
        // EGFX: by default without H.264 (hosts send lossless codecs that IronRDP composites
        // into our framebuffer); with the host's `h264` setting, AVC420, which the display
        // decodes into the framebuffer and passes on as it came to browsers that decode it.
        egfx: if target.h264 { bascule_rdp::Egfx::Avc420PassThrough } else { bascule_rdp::Egfx::On },
    };
    let connection = bascule_rdp::connect(config).await?;
    let (width, height) = connection.size();
    session.lock_display().apply(Update::Resize { width, height })?;
    tracing::info!(host = %target.host_id, width, height, "rdp connected");

    let (event_tx, mut events) = mpsc::channel::<RdpEvent>(256);
    let (rdp_input, input_rx) = mpsc::channel::<RdpInput>(512);
    let mut run = tokio::spawn(connection.run(event_tx, input_rx));
    let reconnect_window = Duration::from_secs(settings.reconnect_window_secs);
    let mut alone_since: Option<std::time::Instant> = None;
    let mut painted = false;
    let first_picture_deadline = tokio::time::Instant::now() + timeout;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            Some(event) = events.recv() => handle_event(session, event, &mut painted)?,
            Some(event) = input.recv() => {
                let translated = match event {
                    Input::Key { down, keysym, scancode } => {
                        let unicode = if scancode == 0 { keysym_to_char(keysym) } else { None };
                        RdpInput::Key { down, scancode, unicode }
                    }
                    Input::Pointer { x, y, buttons } => RdpInput::Pointer { x, y, buttons },
                    Input::Clipboard(text) => RdpInput::Clipboard(text),
                    Input::Resize { width, height } => RdpInput::Resize { width, height },
                };
                // The run task has ended if this fails; its result says why, below.
                let _ = rdp_input.send(translated).await;
            }
            result = &mut run => {
                // Drain what the session produced before it ended.
                while let Ok(event) = events.try_recv() {
                    handle_event(session, event, &mut painted)?;
                }
                return match result {
                    Ok(Ok(bascule_rdp::EndReason::ServerDisconnect(reason))) => Ok(("session.ended", reason)),
                    Ok(Ok(bascule_rdp::EndReason::InputClosed)) => Ok(("session.ended", "the session was closed".into())),
                    Ok(Err(error)) => Err(error.into()),
                    Err(join) => Err(BackendError::Io(std::io::Error::other(join.to_string()))),
                };
            }
            _ = tick.tick() => {
                let active = matches!(*session.state.borrow(), SessionState::Active { .. });
                if !active && tokio::time::Instant::now() > first_picture_deadline {
                    run.abort();
                    return Err(BackendError::Timeout {
                        address: format!("{}:{}", target.address, target.port),
                        seconds: settings.connect_timeout_secs,
                    });
                }
                if matches!(*session.state.borrow(), SessionState::Ended { .. }) {
                    run.abort();
                    return Ok(("gateway.shutdown", String::new()));
                }
                // Viewers attach once the first picture is there: the reconnect window only
                // counts from then on.
                if !active || session.lock_display().viewer_count() > 0 {
                    alone_since = None;
                } else if alone_since.get_or_insert_with(std::time::Instant::now).elapsed() > reconnect_window {
                    // Dropping the connection disconnects; the host keeps its own session.
                    run.abort();
                    return Ok(("session.released", "no viewer reconnected within the reconnect window; the desktop stays on its host".into()));
                }
            }
        }
    }
}

fn handle_event(session: &LiveSession, event: RdpEvent, painted: &mut bool) -> Result<(), BackendError> {
    let mut display = session.lock_display();
    match event {
        RdpEvent::Pixels { x, y, width, height, rgba } => {
            display.apply(Update::Pixels { rect: Rect { x, y, width, height }, rgba })?;
            *painted = true;
        }
        RdpEvent::Cursor { hot_x, hot_y, width, height, rgba } => {
            display.apply(Update::Cursor(CursorShape { hot_x, hot_y, width, height, rgba }))?;
            drop(display);
            session.bump();
        }
        RdpEvent::DefaultCursor => {
            display.apply(Update::Cursor(CursorShape { hot_x: 0, hot_y: 0, width: 0, height: 0, rgba: Vec::new() }))?;
            drop(display);
            session.bump();
        }
        RdpEvent::Resize { width, height } => {
            display.apply(Update::Resize { width, height })?;
            drop(display);
            if matches!(*session.state.borrow(), SessionState::Active { .. }) {
                session.state.send_replace(SessionState::Active { width, height });
            }
            session.bump();
        }
        RdpEvent::ClipboardText(text) => {
            drop(display);
            session.clipboard.send_modify(|(n, current)| {
                *n += 1;
                *current = text;
            });
        }
        RdpEvent::Avc420 { surface_id, output_origin, surface_x, surface_y, width, height, regions, data, .. } => {
            let Some((origin_x, origin_y)) = output_origin else {
                tracing::debug!(surface_id, "AVC420 for a surface not mapped to the desktop: ignored");
                return Ok(());
            };
            // Surface coordinates to desktop ones; anything that does not fit is refused below.
            let at = |x: u32, y: u32, w: u32, h: u32| {
                let fit = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
                Rect { x: fit(origin_x + x), y: fit(origin_y + y), width: fit(w), height: fit(h) }
            };
            let rect = at(surface_x.into(), surface_y.into(), width.into(), height.into());
            let regions = regions
                .iter()
                .map(|&(l, t, r, b)| at(l.into(), t.into(), r.saturating_sub(l).into(), b.saturating_sub(t).into()))
                .filter(|r| r.width > 0 && r.height > 0)
                .collect();
            // A picture that does not decode is lost (its area keeps its previous content until
            // the host's next IDR); the session goes on.
            match display.apply(Update::Video { stream: surface_id, rect, regions, data }) {
                Ok(()) => *painted = true,
                Err(error) => tracing::warn!(surface_id, %error, "AVC420 picture refused"),
            }
        }
        RdpEvent::FrameEnd => {
            let (width, height) = display.framebuffer().size();
            drop(display);
            if *painted && matches!(*session.state.borrow(), SessionState::Connecting) {
                session.state.send_replace(SessionState::Active { width, height });
            }
            session.bump();
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keysyms_become_characters() {
        assert_eq!(keysym_to_char(0x61), Some('a'));
        assert_eq!(keysym_to_char(0xe9), Some('é'));
        assert_eq!(keysym_to_char(0x20ac), Some('€'));
        assert_eq!(keysym_to_char(0x0100_0153), Some('œ'));
        assert_eq!(keysym_to_char(0xff0d), None);
    }
}
