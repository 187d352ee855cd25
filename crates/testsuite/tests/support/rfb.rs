//! Drives a `bascule_rfb::Client` over a tokio `TcpStream` and keeps a framebuffer of what the
//! server drew.

use anyhow::{Context, Result, bail};
use bascule_display::{Display, Framebuffer, Update};
use bascule_proto::Rect;
use bascule_rfb::{Client, Config, Event};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one read from the server may take.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// A connected RFB session and the framebuffer rebuilt from its updates.
pub(crate) struct RfbSession {
    stream: TcpStream,
    client: Client,
    display: Display,
    /// The desktop name from ServerInit.
    pub(crate) name: String,
    /// FramebufferUpdates completed so far.
    pub(crate) updates: usize,
    /// Which pixels some update has drawn since the connection (or the last resize).
    painted: Vec<bool>,
    /// How many entries of `painted` are set.
    painted_count: usize,
    /// Whether an update ended with every pixel drawn.
    full_frame: bool,
}

impl std::fmt::Debug for RfbSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RfbSession").field("name", &self.name).field("updates", &self.updates).finish()
    }
}

impl RfbSession {
    /// Connects and runs the handshake until `Connected`. The inner `Err` is the client's own
    /// verdict (such as `auth_failed`); the outer one is an I/O problem or a timeout.
    pub(crate) async fn connect(
        addr: SocketAddr,
        password: Option<&str>,
    ) -> Result<Result<RfbSession, bascule_rfb::Error>> {
        let stream = tokio::time::timeout(READ_TIMEOUT, TcpStream::connect(addr))
            .await
            .with_context(|| format!("timed out connecting to {addr}"))?
            .with_context(|| format!("cannot connect to {addr}"))?;
        let client = Client::new(Config { password: password.map(str::to_owned), ..Config::default() });
        let mut session = RfbSession {
            stream,
            client,
            display: Display::new(0, 0),
            name: String::new(),
            updates: 0,
            painted: Vec::new(),
            painted_count: 0,
            full_frame: false,
        };
        loop {
            if let Err(error) = session.pump().await? {
                return Ok(Err(error));
            }
            if session.client.is_connected() {
                return Ok(Ok(session));
            }
        }
    }

    /// Writes what the client has to send, reads once, and applies the resulting events.
    async fn pump(&mut self) -> Result<Result<(), bascule_rfb::Error>> {
        self.flush().await?;
        let mut buffer = vec![0u8; 256 * 1024];
        let n = tokio::time::timeout(READ_TIMEOUT, self.stream.read(&mut buffer))
            .await
            .context("the VNC server sent nothing for 20 s")?
            .context("reading from the VNC server")?;
        if n == 0 {
            bail!("the VNC server closed the connection ({:?})", self.client);
        }
        if let Err(error) = self.client.handle_input(&buffer[..n]) {
            return Ok(Err(error));
        }
        while let Some(event) = self.client.poll_event() {
            self.apply(event)?;
        }
        self.flush().await?;
        Ok(Ok(()))
    }

    async fn flush(&mut self) -> Result<()> {
        while let Some(bytes) = self.client.poll_transmit() {
            self.stream.write_all(&bytes).await.context("writing to the VNC server")?;
        }
        Ok(())
    }

    fn apply(&mut self, event: Event) -> Result<()> {
        match &event {
            Event::Connected { width, height, .. } | Event::Resize { width, height } => {
                self.painted = vec![false; usize::from(*width) * usize::from(*height)];
                self.painted_count = 0;
            }
            Event::Pixels { x, y, width, height, .. }
            | Event::Fill { x, y, width, height, .. }
            | Event::Copy { x, y, width, height, .. } => self.mark_painted(*x, *y, *width, *height),
            _ => {}
        }
        let update = match event {
            Event::Connected { width, height, name } => {
                self.name = name;
                Update::Resize { width, height }
            }
            Event::Resize { width, height } => Update::Resize { width, height },
            Event::Pixels { x, y, width, height, rgba } => Update::Pixels { rect: Rect { x, y, width, height }, rgba },
            Event::Fill { x, y, width, height, rgb } => Update::Fill { rect: Rect { x, y, width, height }, rgb },
            Event::Copy { src_x, src_y, x, y, width, height } => {
                Update::Copy { src_x, src_y, dst: Rect { x, y, width, height } }
            }
            Event::UpdateEnd => {
                self.updates += 1;
                if !self.painted.is_empty() && self.painted_count == self.painted.len() {
                    self.full_frame = true;
                } else {
                    // Incremental: TigerVNC answers every non-incremental request with an
                    // ExtendedDesktopSize rectangle first, and the pixels on the next request.
                    self.client.request_update(true);
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        self.display.apply(update).context("the server's update does not fit the framebuffer")
    }

    fn mark_painted(&mut self, x: u16, y: u16, width: u16, height: u16) {
        let stride = usize::from(self.display.framebuffer().size().0);
        for row in usize::from(y)..usize::from(y) + usize::from(height) {
            for col in usize::from(x)..usize::from(x) + usize::from(width) {
                if let Some(cell) = self.painted.get_mut(row * stride + col)
                    && !*cell
                {
                    *cell = true;
                    self.painted_count += 1;
                }
            }
        }
    }

    /// Reads until the end of the first FramebufferUpdate after which every pixel has been
    /// drawn. Servers may answer the first request with pseudo-rectangles only (x11vnc sends the
    /// cursor shape first, TigerVNC the ExtendedDesktopSize); until the screen is fully drawn,
    /// every update end is followed by a new request, as a viewer does.
    pub(crate) async fn wait_full_frame(&mut self) -> Result<()> {
        while !self.full_frame {
            if self.updates > 20 {
                bail!(
                    "20 updates and the screen is still not fully drawn ({} of {} pixels)",
                    self.painted_count,
                    self.painted.len()
                );
            }
            if let Err(error) = self.pump().await? {
                bail!("RFB error while waiting for a full frame: {error}");
            }
        }
        Ok(())
    }

    /// Reads until `count` FramebufferUpdates are complete (the client asked for the first one
    /// itself, right after ServerInit).
    pub(crate) async fn wait_updates(&mut self, count: usize) -> Result<()> {
        while self.updates < count {
            if let Err(error) = self.pump().await? {
                bail!("RFB error while waiting for an update: {error}");
            }
        }
        Ok(())
    }

    /// The framebuffer as drawn so far.
    pub(crate) fn framebuffer(&self) -> &Framebuffer {
        self.display.framebuffer()
    }

    /// A PointerEvent (no button pressed).
    pub(crate) async fn send_pointer(&mut self, x: u16, y: u16) -> Result<()> {
        self.client.send_pointer(x, y, 0);
        self.flush().await
    }

    /// Presses and releases each keysym in turn.
    pub(crate) async fn type_keysyms(&mut self, keysyms: &[u32]) -> Result<()> {
        for &keysym in keysyms {
            self.client.send_key(true, keysym, 0);
            self.client.send_key(false, keysym, 0);
            self.flush().await?;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }
}
