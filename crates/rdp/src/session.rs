//! Active stage: decode server output into RGBA damage events, send input.

use ironrdp_cliprdr::CliprdrClient;
use ironrdp_cliprdr::pdu::{ClipboardFormatId, OwnedFormatDataResponse};
use ironrdp_connector::connection_activation::{ConnectionActivationSequence, ConnectionActivationState};
use ironrdp_graphics::image_processing::PixelFormat;
use ironrdp_pdu::geometry::InclusiveRectangle;
use ironrdp_pdu::input::fast_path::{FastPathInput, FastPathInputEvent};
use ironrdp_pdu::rdp::capability_sets::InputFlags;
use ironrdp_pdu::rdp::headers::ShareDataPdu;
use ironrdp_pdu::rdp::session_info::{LogonErrorNotificationData, LogonErrorNotificationDataErrorCode, LogonErrorNotificationType};
use ironrdp_pdu::{Action, WriteBuf};
use ironrdp_session::image::DecodedImage;
use ironrdp_egfx::client::GraphicsPipelineClient;
use ironrdp_session::{ActiveStage, ActiveStageBuilder, ActiveStageOutput, composite_graphics_pipeline};
use ironrdp_tokio::FramedWrite as _;
use tokio::sync::mpsc::{Receiver, Sender};

use crate::clipboard::{ClipAction, ClipQueue, text_formats};
use crate::connect::{Connected, Framed};
use crate::error::{RdpError, chain, is_eof};
use crate::input::{InputState, to_slow_path};
use crate::egfx::PassThroughChannel;
use crate::{Egfx, EndReason, RdpEvent, RdpInput, ResizeSupport};

/// Most PDUs handled before events are flushed and input gets a turn.
const MAX_BATCH: usize = 128;

struct Session {
    framed: Framed,
    stage: ActiveStage,
    image: DecodedImage,
    events: Sender<RdpEvent>,
    fastpath_input: bool,
    input_state: InputState,
    clipboard: Option<ClipQueue>,
    local_clip: Option<String>,
    resize_support: ResizeSupport,
    resize_ready: Option<bool>,
    damage: Vec<InclusiveRectangle>,
    logon_error: Option<String>,
    activation: ironrdp_connector::connection_activation::ConnectionActivationFactory,
    egfx: Egfx,
    /// Image size last announced (connect or `Resize`); an EGFX ResetGraphics can change it.
    announced_size: (u16, u16),
    egfx_announced: bool,
    /// AVC420 payloads were sent since the last `FrameEnd`.
    avc_sent: bool,
}

/// Internal control flow: keep going, or stop with a normal end.
enum Flow {
    Continue,
    End(EndReason),
}

pub(crate) async fn run(
    connected: Connected,
    resize_support: ResizeSupport,
    events: Sender<RdpEvent>,
    mut input: Receiver<RdpInput>,
) -> Result<EndReason, RdpError> {
    let Connected {
        framed,
        result,
        clipboard,
        egfx,
        ..
    } = connected;
    let fastpath_input = result
        .input_flags
        .intersects(InputFlags::FASTPATH_INPUT | InputFlags::FASTPATH_INPUT_2);
    let image = DecodedImage::new(PixelFormat::RgbA32, result.desktop_size.width, result.desktop_size.height);
    let stage = ActiveStageBuilder {
        static_channels: result.static_channels,
        user_channel_id: result.user_channel_id,
        io_channel_id: result.io_channel_id,
        message_channel_id: result.message_channel_id,
        share_id: result.share_id,
        compression_type: result.compression_type,
        enable_server_pointer: result.enable_server_pointer,
        pointer_software_rendering: result.pointer_software_rendering,
    }
    .build();

    let mut s = Session {
        framed,
        stage,
        image,
        events,
        fastpath_input,
        input_state: InputState::default(),
        clipboard,
        local_clip: None,
        resize_support,
        resize_ready: None,
        damage: Vec::new(),
        logon_error: None,
        activation: result.activation_factory,
        egfx,
        announced_size: (result.desktop_size.width, result.desktop_size.height),
        egfx_announced: false,
        avc_sent: false,
    };

    // Toggle keys off, so that typed letters are lower case.
    let mut sync = Vec::new();
    InputState::sync(&mut sync);
    s.send_input(&sync).await?;

    loop {
        let flow = tokio::select! {
            pdu = s.framed.read_pdu() => s.on_pdu(pdu).await?,
            msg = input.recv() => match msg {
                None => {
                    s.shutdown().await;
                    Flow::End(EndReason::InputClosed)
                }
                Some(msg) => s.on_input(msg).await?,
            },
        };
        if let Flow::End(reason) = flow {
            return Ok(reason);
        }
    }
}

impl Session {
    fn size(&self) -> (u16, u16) {
        (self.image.width(), self.image.height())
    }

    async fn write(&mut self, frame: &[u8]) -> Result<(), RdpError> {
        if frame.is_empty() {
            return Ok(());
        }
        self.framed
            .write_all(frame)
            .await
            .map_err(|e| RdpError::Ended(format!("cannot write to the server: {e}")))
    }

    /// Sends an event; a dropped receiver ends the session like a closed input channel.
    async fn emit(&mut self, event: RdpEvent) -> Result<bool, RdpError> {
        Ok(self.events.send(event).await.is_ok())
    }

    /// Client-side disconnect: MCS Disconnect Provider Ultimatum (user requested), then TLS
    /// close_notify. The remote session keeps running, as when an RDP client window is closed.
    async fn shutdown(&mut self) {
        use ironrdp_pdu::mcs::{DisconnectProviderUltimatum, DisconnectReason, McsMessage};
        use tokio::io::AsyncWriteExt as _;
        let ultimatum = ironrdp_pdu::x224::X224(McsMessage::DisconnectProviderUltimatum(
            DisconnectProviderUltimatum::from_reason(DisconnectReason::UserRequested),
        ));
        let close = async {
            if let Ok(frame) = ironrdp_pdu::encode_vec(&ultimatum) {
                let _ = self.write(&frame).await;
            }
            let _ = self.framed.get_inner_mut().0.shutdown().await;
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), close).await;
    }

    async fn send_input(&mut self, events: &[FastPathInputEvent]) -> Result<(), RdpError> {
        if events.is_empty() {
            return Ok(());
        }
        if self.fastpath_input {
            for chunk in events.chunks(FastPathInput::MAX_EVENTS) {
                let pdu = FastPathInput::new(chunk.to_vec())
                    .map_err(|e| RdpError::Protocol(format!("cannot build input PDU: {e}")))?;
                let frame = ironrdp_pdu::encode_vec(&pdu)
                    .map_err(|e| RdpError::Protocol(format!("cannot encode input PDU: {e}")))?;
                self.write(&frame).await?;
            }
        } else {
            let slow = to_slow_path(events);
            if slow.is_empty() {
                return Ok(());
            }
            let mut buf = WriteBuf::new();
            self.stage
                .encode_static(&mut buf, ShareDataPdu::Input(ironrdp_pdu::input::InputEventPdu(slow)))
                .map_err(|e| RdpError::Protocol(format!("cannot encode input PDU: {}", chain(&e))))?;
            let frame = buf.into_inner();
            self.write(&frame).await?;
        }
        Ok(())
    }

    async fn on_input(&mut self, msg: RdpInput) -> Result<Flow, RdpError> {
        let mut out = Vec::new();
        match msg {
            RdpInput::Key { down, scancode, unicode } => self.input_state.key(down, scancode, unicode, &mut out),
            RdpInput::Pointer { x, y, buttons } => {
                let size = self.size();
                self.input_state.pointer(x, y, buttons, size, &mut out);
            }
            RdpInput::Clipboard(text) => {
                self.local_clip = Some(text);
                self.advertise_clipboard(true).await?;
            }
            RdpInput::Resize { width, height } => self.resize(width, height).await?,
        }
        self.send_input(&out).await?;
        Ok(Flow::Continue)
    }

    async fn resize(&mut self, width: u16, height: u16) -> Result<(), RdpError> {
        let width = u32::from(width.clamp(200, 8192)) & !1;
        let height = u32::from(height.clamp(200, 8192));
        match self.stage.encode_resize(width, height, None, None) {
            Some(Ok(frame)) => self.write(&frame).await?,
            Some(Err(e)) => tracing::warn!(error = %chain(&e), "cannot encode a resize request"),
            None => tracing::debug!("resize ignored: the server has no display control channel"),
        }
        Ok(())
    }

    async fn advertise_clipboard(&mut self, only_if_ready: bool) -> Result<(), RdpError> {
        let formats = text_formats(self.local_clip.is_some());
        let Some(cliprdr) = self.stage.get_svc_processor_mut::<CliprdrClient>() else {
            return Ok(());
        };
        if only_if_ready && !cliprdr.is_ready() {
            return Ok(());
        }
        let messages = match cliprdr.initiate_copy(&formats) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "clipboard: cannot advertise");
                return Ok(());
            }
        };
        self.send_clipboard(messages).await
    }

    /// Encodes clipboard channel messages and writes them to the server.
    async fn send_clipboard(&mut self, messages: ironrdp_cliprdr::CliprdrSvcMessages<ironrdp_cliprdr::Client>) -> Result<(), RdpError> {
        let frame = self
            .stage
            .process_svc_processor_messages(messages)
            .map_err(|e| RdpError::Protocol(format!("clipboard: {}", chain(&e))))?;
        self.write(&frame).await
    }

    /// Acts on what the clipboard backend queued while the stage processed a PDU.
    async fn drain_clipboard(&mut self) -> Result<bool, RdpError> {
        let Some(queue) = self.clipboard.clone() else {
            return Ok(true);
        };
        loop {
            let action = queue.lock().ok().and_then(|mut q| q.pop_front());
            let Some(action) = action else { return Ok(true) };
            match action {
                ClipAction::AdvertiseLocal => self.advertise_clipboard(false).await?,
                ClipAction::Paste(format) => {
                    let Some(cliprdr) = self.stage.get_svc_processor_mut::<CliprdrClient>() else { continue };
                    match cliprdr.initiate_paste(format) {
                        Ok(messages) => {
                            self.send_clipboard(messages).await?;
                        }
                        Err(e) => tracing::warn!(error = %e, "clipboard: cannot paste"),
                    }
                }
                ClipAction::ProvideData(format) => {
                    let response = match (&self.local_clip, format) {
                        (Some(text), ClipboardFormatId::CF_UNICODETEXT) => {
                            OwnedFormatDataResponse::new_unicode_string(text)
                        }
                        (Some(text), ClipboardFormatId::CF_TEXT) => OwnedFormatDataResponse::new_string(text),
                        _ => OwnedFormatDataResponse::new_error(),
                    };
                    let Some(cliprdr) = self.stage.get_svc_processor_mut::<CliprdrClient>() else { continue };
                    match cliprdr.submit_format_data(response) {
                        Ok(messages) => {
                            self.send_clipboard(messages).await?;
                        }
                        Err(e) => tracing::warn!(error = %e, "clipboard: cannot send data"),
                    }
                }
                ClipAction::RemoteText(text) => {
                    if !self.emit(RdpEvent::ClipboardText(text)).await? {
                        return Ok(false);
                    }
                }
                ClipAction::RemoteFailed => {}
            }
        }
    }

    async fn on_pdu(&mut self, first: std::io::Result<(Action, ironrdp_tokio::bytes::BytesMut)>) -> Result<Flow, RdpError> {
        let mut next = Some(first);
        let mut handled = 0usize;
        while let Some(pdu) = next.take() {
            let (action, frame) = match pdu {
                Ok(p) => p,
                Err(e) => return self.read_failed(e),
            };
            handled += 1;
            if let Flow::End(reason) = self.process(action, &frame).await? {
                return Ok(Flow::End(reason));
            }
            // Keep decoding what is already buffered, so that one FrameEnd covers it.
            if handled < MAX_BATCH && complete_pdu_buffered(self.framed.peek()) {
                next = Some(self.framed.read_pdu().await);
            }
        }
        if !self.drain_clipboard().await? {
            return Ok(Flow::End(EndReason::InputClosed));
        }
        self.check_resize_support().await?;
        if !self.check_graphics_pipeline().await? {
            return Ok(Flow::End(EndReason::InputClosed));
        }
        if !self.flush_damage(true).await? {
            return Ok(Flow::End(EndReason::InputClosed));
        }
        Ok(Flow::Continue)
    }

    fn read_failed(&mut self, e: std::io::Error) -> Result<Flow, RdpError> {
        if let Some(logon) = self.logon_error.take() {
            return Err(RdpError::AuthenticationFailed(logon));
        }
        if is_eof(Some(e.kind())) {
            Err(RdpError::Ended(format!("the server closed the connection without a disconnect message ({e})")))
        } else if e.kind() == std::io::ErrorKind::Other || e.kind() == std::io::ErrorKind::InvalidData {
            Err(RdpError::Protocol(format!("invalid data from the server: {}", chain(&e))))
        } else {
            Err(RdpError::Ended(format!("connection lost: {e}")))
        }
    }

    async fn process(&mut self, action: Action, frame: &[u8]) -> Result<Flow, RdpError> {
        let outputs = self
            .stage
            .process(&mut self.image, action, frame, self.framed.last_read_at())
            .map_err(|e| RdpError::Protocol(chain(&e)))?;
        for out in outputs {
            match out {
                ActiveStageOutput::ResponseFrame(frame) => self.write(&frame).await?,
                ActiveStageOutput::GraphicsUpdate(rect) => self.damage.push(rect),
                ActiveStageOutput::PointerDefault => {
                    if !self.emit(RdpEvent::DefaultCursor).await? {
                        return Ok(Flow::End(EndReason::InputClosed));
                    }
                }
                ActiveStageOutput::PointerHidden => {
                    let hidden = RdpEvent::Cursor {
                        hot_x: 0,
                        hot_y: 0,
                        width: 0,
                        height: 0,
                        rgba: Vec::new(),
                    };
                    if !self.emit(hidden).await? {
                        return Ok(Flow::End(EndReason::InputClosed));
                    }
                }
                ActiveStageOutput::PointerBitmap(p) => {
                    let expected = usize::from(p.width) * usize::from(p.height) * 4;
                    if p.bitmap_data.len() == expected && expected > 0 {
                        let cursor = RdpEvent::Cursor {
                            hot_x: p.hotspot_x,
                            hot_y: p.hotspot_y,
                            width: p.width,
                            height: p.height,
                            rgba: p.bitmap_data.clone(),
                        };
                        if !self.emit(cursor).await? {
                            return Ok(Flow::End(EndReason::InputClosed));
                        }
                    }
                }
                ActiveStageOutput::Terminate(reason) => {
                    if let Some(logon) = self.logon_error.take() {
                        return Err(RdpError::AuthenticationFailed(format!("{logon}; server ended the session: {reason}")));
                    }
                    return Ok(Flow::End(EndReason::ServerDisconnect(reason.description())));
                }
                ActiveStageOutput::DeactivateAll => {
                    if !self.reactivate().await? {
                        return Ok(Flow::End(EndReason::InputClosed));
                    }
                }
                ActiveStageOutput::LogonErrors(info) => {
                    let failure = matches!(
                        info.error_type,
                        LogonErrorNotificationType::AccessDenied | LogonErrorNotificationType::NoPermission
                    ) || matches!(
                        info.error_data,
                        LogonErrorNotificationData::ErrorCode(
                            LogonErrorNotificationDataErrorCode::FailedBadPassword
                                | LogonErrorNotificationDataErrorCode::FailedUpdatePassword
                                | LogonErrorNotificationDataErrorCode::FailedOther
                        )
                    );
                    tracing::info!(?info, failure, "logon notification from the server");
                    if failure {
                        self.logon_error = Some(format!(
                            "logon failed ({:?}, {:?})",
                            info.error_type, info.error_data
                        ));
                    }
                }
                ActiveStageOutput::ServerRedirection(_) => {
                    return Err(RdpError::Refused(
                        "server redirected the session (load balancing is not supported)".to_owned(),
                    ));
                }
                other => tracing::trace!(?other, "ignored active stage output"),
            }
        }
        if !self.after_graphics_pipeline().await? {
            return Ok(Flow::End(EndReason::InputClosed));
        }
        Ok(Flow::Continue)
    }

    /// EGFX follow-up after each PDU:
    /// - composites the pass-through channel's decoded output (`ActiveStage` does that itself
    ///   only for a plain `GraphicsPipelineClient`);
    /// - announces a size change made by an EGFX ResetGraphics (with EGFX, that is how a
    ///   host resizes, instead of deactivation-reactivation);
    /// - sends the AVC420 payloads, after the pixels of the damage collected so far.
    async fn after_graphics_pipeline(&mut self) -> Result<bool, RdpError> {
        if self.egfx == Egfx::Off {
            return Ok(true);
        }
        let mut frames = Vec::new();
        if let Some(mut channel) = self.stage.get_dvc_mut::<PassThroughChannel>() {
            let channel = channel.processor_mut();
            let composited = composite_graphics_pipeline(channel.client_mut(), &mut self.image)
                .map_err(|e| RdpError::Protocol(format!("EGFX: {}", chain(&e))))?;
            if composited.reset {
                self.damage.push(full_rect(self.image.width(), self.image.height()));
            }
            self.damage.extend(composited.regions);
            frames = channel.take_frames();
        }
        let size = self.size();
        if size != self.announced_size {
            self.announced_size = size;
            tracing::info!(width = size.0, height = size.1, "EGFX graphics reset to a new size");
            if !self.emit(RdpEvent::Resize { width: size.0, height: size.1 }).await? {
                return Ok(false);
            }
            self.damage.push(full_rect(size.0, size.1));
        }
        if !frames.is_empty() {
            if !self.flush_damage(false).await? {
                return Ok(false);
            }
            self.avc_sent = true;
            for frame in frames {
                if !self.emit(frame.into()).await? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Sends `GraphicsPipeline` once the host has confirmed EGFX capabilities.
    async fn check_graphics_pipeline(&mut self) -> Result<bool, RdpError> {
        if self.egfx_announced {
            return Ok(true);
        }
        let status = |c: &GraphicsPipelineClient| {
            c.is_active().then(|| {
                let version = c.negotiated_capabilities().map_or(0, |caps| caps.version().0);
                (version, c.codec_capabilities().avc420)
            })
        };
        let confirmed = match self.egfx {
            Egfx::Off => None,
            Egfx::On => self
                .stage
                .get_dvc::<GraphicsPipelineClient>()
                .and_then(|c| status(c.processor())),
            Egfx::Avc420PassThrough => self
                .stage
                .get_dvc::<PassThroughChannel>()
                .and_then(|c| status(c.processor().client())),
        };
        let Some((version, avc420)) = confirmed else {
            return Ok(true);
        };
        self.egfx_announced = true;
        tracing::info!(version = format_args!("{version:#x}"), avc420, "EGFX graphics pipeline active");
        self.emit(RdpEvent::GraphicsPipeline { version, avc420 }).await
    }

    /// Deactivation-reactivation sequence (new desktop size, or a server-side reset).
    async fn reactivate(&mut self) -> Result<bool, RdpError> {
        let mut sequence: ConnectionActivationSequence = self.activation.create();
        let mut buf = WriteBuf::new();
        loop {
            let written = ironrdp_tokio::single_sequence_step_read(&mut self.framed, &mut sequence, &mut buf)
                .await
                .map_err(|e| {
                    if is_eof(crate::error::find_io(&e)) {
                        RdpError::Ended(format!("server closed the connection during reactivation: {}", chain(&e)))
                    } else {
                        RdpError::Protocol(format!("reactivation failed: {}", chain(&e)))
                    }
                })?;
            if let Some(len) = written.size() {
                let frame = buf.filled()[..len].to_vec();
                self.write(&frame).await?;
            }
            match sequence.connection_activation_state() {
                ConnectionActivationState::Finalized {
                    desktop_size,
                    share_id,
                    input_flags,
                    static_channel_chunk_size,
                    enable_server_pointer,
                    pointer_software_rendering,
                    ..
                } => {
                    if !self.stage.reactivate(
                        sequence.io_channel_id(),
                        sequence.user_channel_id(),
                        share_id,
                        enable_server_pointer,
                        pointer_software_rendering,
                        static_channel_chunk_size,
                    ) {
                        return Err(RdpError::Protocol("invalid static channel chunk size on reactivation".to_owned()));
                    }
                    self.fastpath_input =
                        input_flags.intersects(InputFlags::FASTPATH_INPUT | InputFlags::FASTPATH_INPUT_2);
                    self.image = DecodedImage::new(PixelFormat::RgbA32, desktop_size.width, desktop_size.height);
                    self.damage.clear();
                    self.announced_size = (desktop_size.width, desktop_size.height);
                    tracing::info!(width = desktop_size.width, height = desktop_size.height, "reactivated");
                    return self
                        .emit(RdpEvent::Resize {
                            width: desktop_size.width,
                            height: desktop_size.height,
                        })
                        .await;
                }
                ConnectionActivationState::Redirected { .. } => {
                    return Err(RdpError::Refused(
                        "server redirected the session (load balancing is not supported)".to_owned(),
                    ));
                }
                _ => {}
            }
        }
    }

    async fn check_resize_support(&mut self) -> Result<(), RdpError> {
        let ready = self.stage.display_control_ready().unwrap_or(false);
        if self.resize_ready != Some(ready) {
            let announce = self.resize_ready.is_some() || ready;
            self.resize_ready = Some(ready);
            self.resize_support.set(ready);
            if announce {
                let _ = self.emit(RdpEvent::ResizeSupported(ready)).await?;
            }
        }
        Ok(())
    }

    /// Copies the damaged rectangles out of the image and, with `frame_end`, ends the frame.
    async fn flush_damage(&mut self, frame_end: bool) -> Result<bool, RdpError> {
        if self.damage.is_empty() {
            // A batch with only AVC420 payloads still ends with a FrameEnd.
            if frame_end && std::mem::take(&mut self.avc_sent) {
                return self.emit(RdpEvent::FrameEnd).await;
            }
            return Ok(true);
        }
        let damage = std::mem::take(&mut self.damage);
        let (w, h) = self.size();
        if w == 0 || h == 0 {
            return Ok(true);
        }
        let mut sent: Vec<(u16, u16, u16, u16)> = Vec::with_capacity(damage.len());
        for r in damage {
            let Some(rect) = clamp_rect(&r, w, h) else { continue };
            if sent
                .iter()
                .any(|s| s.0 <= rect.0 && s.1 <= rect.1 && s.2 >= rect.2 && s.3 >= rect.3)
            {
                continue;
            }
            sent.push(rect);
            let event = copy_rgba(&self.image, rect);
            if !self.emit(event).await? {
                return Ok(false);
            }
        }
        if !frame_end {
            return Ok(true);
        }
        self.avc_sent = false;
        self.emit(RdpEvent::FrameEnd).await
    }
}

/// The whole `w` x `h` image as an inclusive rectangle (clamped away later when empty).
fn full_rect(w: u16, h: u16) -> InclusiveRectangle {
    InclusiveRectangle {
        left: 0,
        top: 0,
        right: w.saturating_sub(1),
        bottom: h.saturating_sub(1),
    }
}

/// Inclusive rectangle clamped to a `w` x `h` image; `None` when nothing is left.
fn clamp_rect(r: &InclusiveRectangle, w: u16, h: u16) -> Option<(u16, u16, u16, u16)> {
    if w == 0 || h == 0 || r.left >= w || r.top >= h {
        return None;
    }
    let right = r.right.min(w - 1);
    let bottom = r.bottom.min(h - 1);
    (right >= r.left && bottom >= r.top).then_some((r.left, r.top, right, bottom))
}

/// Whether `buf` starts with a complete PDU (so that reading it will not block).
fn complete_pdu_buffered(buf: &[u8]) -> bool {
    matches!(ironrdp_pdu::find_size(buf), Ok(Some(info)) if buf.len() >= info.length)
}

/// Copies an inclusive, in-bounds rectangle of the RgbA32 image as RGBA with A = 255.
fn copy_rgba(image: &DecodedImage, (left, top, right, bottom): (u16, u16, u16, u16)) -> RdpEvent {
    let width = right - left + 1;
    let height = bottom - top + 1;
    let stride = image.stride();
    let bpp = image.bytes_per_pixel();
    let data = image.data();
    let row_len = usize::from(width) * bpp;
    let mut rgba = Vec::with_capacity(usize::from(width) * usize::from(height) * 4);
    for y in top..=bottom {
        let start = usize::from(y) * stride + usize::from(left) * bpp;
        let Some(row) = data.get(start..start + row_len) else {
            break;
        };
        for px in row.chunks_exact(bpp) {
            rgba.extend_from_slice(&[px[0], px[1], px[2], 255]);
        }
    }
    // A short image (never expected) is padded rather than trusted.
    rgba.resize(usize::from(width) * usize::from(height) * 4, 0);
    RdpEvent::Pixels {
        x: left,
        y: top,
        width,
        height,
        rgba,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(left: u16, top: u16, right: u16, bottom: u16) -> InclusiveRectangle {
        InclusiveRectangle { left, top, right, bottom }
    }

    #[test]
    fn clamping() {
        assert_eq!(clamp_rect(&rect(0, 0, 9, 9), 4, 3), Some((0, 0, 3, 2)));
        assert_eq!(clamp_rect(&rect(4, 0, 9, 9), 4, 3), None);
        assert_eq!(clamp_rect(&rect(2, 1, 1, 2), 4, 3), None);
        assert_eq!(clamp_rect(&rect(1, 1, 1, 1), 4, 3), Some((1, 1, 1, 1)));
        assert_eq!(clamp_rect(&rect(0, 0, 0, 0), 0, 0), None);
    }

    #[test]
    fn copy_is_rgba_with_opaque_alpha() {
        let image = DecodedImage::new(PixelFormat::RgbA32, 4, 3);
        match copy_rgba(&image, (1, 1, 3, 2)) {
            RdpEvent::Pixels { x, y, width, height, rgba } => {
                assert_eq!((x, y, width, height), (1, 1, 3, 2));
                assert_eq!(rgba.len(), 3 * 2 * 4);
                assert!(rgba.chunks_exact(4).all(|p| p == [0, 0, 0, 255]));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn complete_pdu_detection() {
        assert!(!complete_pdu_buffered(&[]));
        assert!(!complete_pdu_buffered(&[0x03, 0x00, 0x00, 0x10, 0x02]));
        let mut full = vec![0x03, 0x00, 0x00, 0x08];
        full.extend_from_slice(&[0; 4]);
        assert!(complete_pdu_buffered(&full));
    }
}
