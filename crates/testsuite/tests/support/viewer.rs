//! A viewer written in Rust: speaks the browser protocol over the gateway's WebSocket, draws
//! into `bascule_display::Canvas` and acknowledges every frame, as the browser does.

use anyhow::{Context, Result, bail};
use bascule_display::Canvas;
use bascule_proto::{ClientMessage, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// TLS to the gateway.
pub(crate) type Tls = tokio_rustls::client::TlsStream<TcpStream>;
/// The viewer WebSocket.
pub(crate) type Ws = WebSocketStream<Tls>;

/// No new message for this long after an `EndFrame`: the picture has settled.
pub(crate) const QUIET: Duration = Duration::from_millis(500);
/// Longest wait for a picture to settle.
pub(crate) const SETTLE_MAX: Duration = Duration::from_secs(10);

/// What the browser decodes without WebCodecs: PNG, JPEG and glyphs.
pub(crate) const BROWSER_CODECS: u32 = bascule_proto::CODEC_PNG | bascule_proto::CODEC_JPEG | bascule_proto::CODEC_GLYPHS;

/// What one read produced.
#[derive(Debug)]
pub(crate) enum Incoming {
    Message(ServerMessage),
    /// The WebSocket is closed (see [`ViewerClient::closed`]).
    Closed,
}

/// A viewer connection and what it has drawn.
pub(crate) struct ViewerClient {
    ws: Ws,
    pub(crate) canvas: Canvas,
    /// `(width, height, name)` of the ServerHello.
    pub(crate) hello: Option<(u16, u16, String)>,
    /// `(code, detail)` of every notice, in order.
    pub(crate) notices: Vec<(String, String)>,
    /// `EndFrame`s received (and acknowledged, unless `acks` is off).
    pub(crate) frames: u32,
    /// Whether frames are acknowledged (on, as the browser does; off: a viewer that stalls).
    pub(crate) acks: bool,
    /// Close code and reason, once closed (`1006` if the connection just ended).
    pub(crate) closed: Option<(u16, String)>,
    /// Payload bytes of the binary messages received.
    pub(crate) bytes_received: u64,
    /// WebSocket pings received (keepalives).
    pub(crate) pings: u32,
    /// Whether the last drawing message was an `EndFrame` (the canvas shows a whole frame).
    frame_complete: bool,
    /// `Video` messages of host streams (passed through), and of the gateway's own streams.
    pub(crate) host_video: u32,
    pub(crate) own_video: u32,
}

impl std::fmt::Debug for ViewerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerClient")
            .field("hello", &self.hello)
            .field("notices", &self.notices)
            .field("frames", &self.frames)
            .field("closed", &self.closed)
            .finish()
    }
}

impl ViewerClient {
    /// Sends the ClientHello (version 0, 1280x800, PNG, JPEG and glyphs).
    pub(crate) async fn start(ws: Ws) -> Result<ViewerClient> {
        ViewerClient::start_with(ws, BROWSER_CODECS).await
    }

    /// Sends the ClientHello (version 0, 1280x800, `codecs`).
    pub(crate) async fn start_with(ws: Ws, codecs: u32) -> Result<ViewerClient> {
        let mut canvas = Canvas::new(0, 0);
        canvas.announce_codecs(codecs);
        let mut viewer = ViewerClient {
            ws,
            canvas,
            hello: None,
            notices: Vec::new(),
            frames: 0,
            acks: true,
            closed: None,
            bytes_received: 0,
            pings: 0,
            frame_complete: false,
            host_video: 0,
            own_video: 0,
        };
        viewer
            .send(ClientMessage::Hello { version: 0, width: 1280, height: 800, codecs })
            .await?;
        Ok(viewer)
    }

    pub(crate) async fn send(&mut self, message: ClientMessage) -> Result<()> {
        self.send_raw(Message::Binary(message.encode().into())).await
    }

    pub(crate) async fn send_raw(&mut self, message: Message) -> Result<()> {
        self.ws.send(message).await.context("sending on the viewer WebSocket")
    }

    /// Presses and releases each keysym.
    pub(crate) async fn type_keysyms(&mut self, keysyms: &[u32]) -> Result<()> {
        for &keysym in keysyms {
            self.send(ClientMessage::Key { down: true, keysym, scancode: 0 }).await?;
            self.send(ClientMessage::Key { down: false, keysym, scancode: 0 }).await?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Types `text` with US scancodes (and keysyms), Shift around shifted characters, as a
    /// browser with a US keyboard does.
    pub(crate) async fn type_us(&mut self, text: &str) -> Result<()> {
        for (down, keysym, scancode) in super::keyboard::us_key_events(text) {
            self.send(ClientMessage::Key { down, keysym, scancode }).await?;
            if !down {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        Ok(())
    }

    /// Control + `c` (a US letter).
    pub(crate) async fn control(&mut self, c: char) -> Result<()> {
        let (scancode, _) = super::keyboard::us_scancode(c).context("no US key")?;
        let (ctrl_sym, ctrl_code) = super::keyboard::CONTROL;
        self.send(ClientMessage::Key { down: true, keysym: ctrl_sym, scancode: ctrl_code }).await?;
        self.send(ClientMessage::Key { down: true, keysym: u32::from(c), scancode }).await?;
        self.send(ClientMessage::Key { down: false, keysym: u32::from(c), scancode }).await?;
        self.send(ClientMessage::Key { down: false, keysym: ctrl_sym, scancode: ctrl_code }).await?;
        Ok(())
    }

    /// Moves the pointer to `(x, y)` and clicks the left button there.
    pub(crate) async fn click(&mut self, x: u16, y: u16) -> Result<()> {
        self.send(ClientMessage::Pointer { x, y, buttons: 0 }).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.send(ClientMessage::Pointer { x, y, buttons: 1 }).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.send(ClientMessage::Pointer { x, y, buttons: 0 }).await
    }

    /// Reads (drawing and acknowledging) whatever arrives for `duration`; fails if the socket
    /// closes.
    pub(crate) async fn pump(&mut self, duration: Duration) -> Result<()> {
        let deadline = Instant::now() + duration;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            if let Some(Incoming::Closed) = self.recv(left).await? {
                bail!("the WebSocket closed ({self:?})");
            }
        }
    }

    /// Reads one message (drawing it and acknowledging frames); `None` when `timeout` passes.
    pub(crate) async fn recv(&mut self, timeout: Duration) -> Result<Option<Incoming>> {
        if self.closed.is_some() {
            return Ok(Some(Incoming::Closed));
        }
        loop {
            let next = match tokio::time::timeout(timeout, self.ws.next()).await {
                Err(_) => return Ok(None),
                Ok(next) => next,
            };
            let message = match next {
                None | Some(Err(_)) => {
                    self.closed.get_or_insert((1006, "connection ended without a close frame".into()));
                    return Ok(Some(Incoming::Closed));
                }
                Some(Ok(message)) => message,
            };
            match message {
                Message::Binary(bytes) => {
                    self.bytes_received += bytes.len() as u64;
                    let decoded = ServerMessage::decode(&bytes).context("the gateway sent an undecodable message")?;
                    self.handle(&decoded).await?;
                    return Ok(Some(Incoming::Message(decoded)));
                }
                Message::Close(frame) => {
                    let closed = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                    self.closed = Some(closed);
                    return Ok(Some(Incoming::Closed));
                }
                Message::Text(text) => bail!("the gateway sent a text message: {text:?}"),
                Message::Ping(_) => self.pings += 1,
                _ => {}
            }
        }
    }

    async fn handle(&mut self, message: &ServerMessage) -> Result<()> {
        self.canvas.apply(message).with_context(|| format!("drawing {}", describe(message)))?;
        match message {
            ServerMessage::Video { stream, data, .. } if !data.is_empty() => {
                if stream & 0x8000 != 0 {
                    self.host_video += 1;
                } else {
                    self.own_video += 1;
                }
            }
            ServerMessage::Hello { width, height, name, .. } => {
                self.hello = Some((*width, *height, name.clone()));
                self.frame_complete = false;
            }
            ServerMessage::EndFrame { seq } => {
                self.frames += 1;
                self.frame_complete = true;
                if self.acks {
                    self.send(ClientMessage::FrameAck { seq: *seq }).await?;
                }
            }
            ServerMessage::Notice { code, detail, .. } => self.notices.push((code.clone(), detail.clone())),
            ServerMessage::Tile { .. } | ServerMessage::Fill { .. } | ServerMessage::Copy { .. } => {
                self.frame_complete = false;
            }
            ServerMessage::Resize { .. } => self.frame_complete = false,
            _ => {}
        }
        Ok(())
    }

    /// Waits for the ServerHello.
    pub(crate) async fn wait_hello(&mut self, timeout: Duration) -> Result<(u16, u16, String)> {
        let deadline = Instant::now() + timeout;
        while self.hello.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await? {
                None => bail!("no ServerHello within {timeout:?} ({self:?})"),
                Some(Incoming::Closed) => bail!("the WebSocket closed before the ServerHello ({self:?})"),
                Some(Incoming::Message(_)) => {}
            }
        }
        self.hello.clone().context("hello")
    }

    /// Reads until at least `min_frames` frames arrived and nothing came for [`QUIET`] after an
    /// `EndFrame`; fails after [`SETTLE_MAX`].
    pub(crate) async fn settle(&mut self, min_frames: u32) -> Result<()> {
        let deadline = Instant::now() + SETTLE_MAX;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("the picture did not settle within {SETTLE_MAX:?} ({self:?})");
            }
            match self.recv(QUIET.min(left)).await? {
                None if self.frames >= min_frames && self.frame_complete => return Ok(()),
                None => {}
                Some(Incoming::Closed) => bail!("the WebSocket closed while waiting for frames ({self:?})"),
                Some(Incoming::Message(_)) => {}
            }
        }
    }

    /// Reads until `count` more frames arrived.
    pub(crate) async fn wait_frames(&mut self, count: u32, timeout: Duration) -> Result<()> {
        let target = self.frames + count;
        let deadline = Instant::now() + timeout;
        while self.frames < target {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await? {
                None => {
                    bail!("only {} of {count} new frames within {timeout:?} ({self:?})", count + self.frames - target)
                }
                Some(Incoming::Closed) => bail!("the WebSocket closed while waiting for frames ({self:?})"),
                Some(Incoming::Message(_)) => {}
            }
        }
        Ok(())
    }

    /// Waits for the first notice other than `session.connecting`; returns `(code, detail)`.
    pub(crate) async fn wait_notice(&mut self, timeout: Duration) -> Result<(String, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(notice) = self.notices.iter().find(|(code, _)| code != "session.connecting") {
                return Ok(notice.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await? {
                None => bail!("no notice within {timeout:?} ({self:?})"),
                Some(Incoming::Closed) => {
                    if let Some(notice) = self.notices.iter().find(|(code, _)| code != "session.connecting") {
                        return Ok(notice.clone());
                    }
                    bail!("the WebSocket closed without a notice ({self:?})");
                }
                Some(Incoming::Message(_)) => {}
            }
        }
    }

    /// Reads until the WebSocket closes; returns the close code and reason.
    /// Reads until a message that `matches` arrives (frames are drawn and acknowledged meanwhile).
    pub(crate) async fn wait_message(
        &mut self,
        timeout: Duration,
        what: &str,
        mut matches: impl FnMut(&ServerMessage) -> bool,
    ) -> Result<ServerMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("no {what} within {timeout:?} ({self:?})");
            }
            match self.recv(left).await? {
                Some(Incoming::Message(message)) if matches(&message) => return Ok(message),
                Some(Incoming::Closed) => bail!("the WebSocket closed while waiting for {what} ({self:?})"),
                _ => {}
            }
        }
    }

    pub(crate) async fn wait_closed(&mut self, timeout: Duration) -> Result<(u16, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await? {
                None => bail!("the WebSocket did not close within {timeout:?} ({self:?})"),
                Some(Incoming::Closed) => return self.closed.clone().context("closed"),
                Some(Incoming::Message(_)) => {}
            }
        }
    }

    /// Closes the WebSocket as a browser leaving the page would.
    pub(crate) async fn close(mut self) -> Result<()> {
        self.ws.close(None).await.context("closing the viewer WebSocket")?;
        // Read until the close handshake completes.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(1), self.ws.next()).await {
                Ok(None) | Ok(Some(Err(_))) => break,
                _ => {}
            }
        }
        Ok(())
    }

    /// The canvas as `(width, height, rgba)`.
    pub(crate) fn picture(&self) -> (u32, u32, &[u8]) {
        let (w, h) = self.canvas.framebuffer().size();
        (u32::from(w), u32::from(h), self.canvas.framebuffer().rgba())
    }
}

fn describe(message: &ServerMessage) -> String {
    match message {
        ServerMessage::Tile { rect, .. } => format!("tile {rect:?}"),
        ServerMessage::Fill { rect, .. } => format!("fill {rect:?}"),
        ServerMessage::Copy { src_x, src_y, dst } => format!("copy ({src_x}, {src_y}) to {dst:?}"),
        other => format!("{other:?}"),
    }
}
