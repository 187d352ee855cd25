//! Small VNC servers written for the tests: the server side of the RFB 3.8 handshake, a parser of
//! client messages, and Raw updates. Each listens on 127.0.0.1:0 and runs one behaviour per
//! connection.

use anyhow::{Context, Result, bail};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// A listening fake server; stops accepting when dropped.
pub(crate) struct FakeVnc {
    pub(crate) addr: SocketAddr,
    /// Connections accepted so far.
    pub(crate) connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeVnc {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeVnc {
    /// Listens and runs `behaviour` on every connection (errors are printed, not fatal: the
    /// gateway hanging up on a hostile server is expected).
    pub(crate) async fn start<F, Fut>(name: &'static str, behaviour: F) -> Result<FakeVnc>
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding a fake VNC server")?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let behaviour = Arc::new(behaviour);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let behaviour = behaviour.clone();
                tokio::spawn(async move {
                    if let Err(error) = behaviour(stream).await {
                        eprintln!("fake VNC server {name}: {error:#}");
                    }
                });
            }
        });
        Ok(FakeVnc { addr, connections, task })
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Version exchange and security type None (RFC 6143 §7.1), ClientInit, then a ServerInit of
/// `width` x `height` with the 32 bpp true-colour format.
pub(crate) async fn handshake_none(stream: &mut TcpStream, width: u16, height: u16, name: &str) -> Result<()> {
    stream.write_all(b"RFB 003.008\n").await?;
    let mut version = [0u8; 12];
    stream.read_exact(&mut version).await.context("client version")?;
    if &version != b"RFB 003.008\n" {
        bail!("client answered version {:?}", String::from_utf8_lossy(&version));
    }
    stream.write_all(&[1, 1]).await?;
    let chosen = stream.read_u8().await.context("security type choice")?;
    if chosen != 1 {
        bail!("client chose security type {chosen}");
    }
    stream.write_all(&0u32.to_be_bytes()).await?;
    let _shared = stream.read_u8().await.context("ClientInit")?;
    stream.write_all(&server_init(width, height, name)).await?;
    Ok(())
}

/// ServerInit (RFC 6143 §7.3.2): 32 bpp, depth 24, little-endian, red at bit 0.
pub(crate) fn server_init(width: u16, height: u16, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&[32, 24, 0, 1]);
    for max in [255u16, 255, 255] {
        out.extend_from_slice(&max.to_be_bytes());
    }
    out.extend_from_slice(&[0, 8, 16, 0, 0, 0]);
    out.extend_from_slice(&(name.len() as u32).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out
}

/// A message from the client (RFC 6143 §7.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientMsg {
    SetPixelFormat,
    SetEncodings(Vec<i32>),
    UpdateRequest { incremental: bool },
    Key { down: bool, keysym: u32 },
    Pointer,
    CutText(Vec<u8>),
}

/// Reads one client message; `None` when the client closed the connection.
pub(crate) async fn read_client_message(reader: &mut OwnedReadHalf) -> Result<Option<ClientMsg>> {
    let kind = match reader.read_u8().await {
        Ok(kind) => kind,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let message = match kind {
        0 => {
            let mut rest = [0u8; 19];
            reader.read_exact(&mut rest).await?;
            ClientMsg::SetPixelFormat
        }
        2 => {
            let _pad = reader.read_u8().await?;
            let n = reader.read_u16().await?;
            let mut encodings = Vec::new();
            for _ in 0..n {
                encodings.push(reader.read_i32().await?);
            }
            ClientMsg::SetEncodings(encodings)
        }
        3 => {
            let mut rest = [0u8; 9];
            reader.read_exact(&mut rest).await?;
            ClientMsg::UpdateRequest { incremental: rest[0] != 0 }
        }
        4 => {
            let down = reader.read_u8().await? != 0;
            let _pad = reader.read_u16().await?;
            ClientMsg::Key { down, keysym: reader.read_u32().await? }
        }
        5 => {
            let mut rest = [0u8; 5];
            reader.read_exact(&mut rest).await?;
            ClientMsg::Pointer
        }
        6 => {
            let mut pad = [0u8; 3];
            reader.read_exact(&mut pad).await?;
            let len = reader.read_u32().await?;
            if len > 1 << 20 {
                bail!("client cut text of {len} bytes");
            }
            let mut text = vec![0u8; len as usize];
            reader.read_exact(&mut text).await?;
            ClientMsg::CutText(text)
        }
        other => bail!("unknown client message type {other}"),
    };
    Ok(Some(message))
}

/// Reads client messages until the next FramebufferUpdateRequest; `None` if the client left.
pub(crate) async fn next_update_request(reader: &mut OwnedReadHalf) -> Result<Option<bool>> {
    loop {
        match read_client_message(reader).await? {
            None => return Ok(None),
            Some(ClientMsg::UpdateRequest { incremental }) => return Ok(Some(incremental)),
            Some(_) => {}
        }
    }
}

/// Reads and discards until the client closes.
pub(crate) async fn drain(mut reader: OwnedReadHalf) {
    let mut buffer = [0u8; 4096];
    while matches!(reader.read(&mut buffer).await, Ok(n) if n > 0) {}
}

/// A solid rectangle in the wire format (R, G, B, 0 little-endian pixels).
pub(crate) fn raw_rect(x: u16, y: u16, width: u16, height: u16, rgb: [u8; 3]) -> Vec<u8> {
    let mut out = rect_header(x, y, width, height, 0);
    for _ in 0..usize::from(width) * usize::from(height) {
        out.extend_from_slice(&[rgb[0], rgb[1], rgb[2], 0]);
    }
    out
}

/// A rectangle header (RFC 6143 §7.6.1).
pub(crate) fn rect_header(x: u16, y: u16, width: u16, height: u16, encoding: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    for v in [x, y, width, height] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&encoding.to_be_bytes());
    out
}

/// FramebufferUpdate header for `rects` rectangles.
pub(crate) fn update_header(rects: u16) -> Vec<u8> {
    let mut out = vec![0, 0];
    out.extend_from_slice(&rects.to_be_bytes());
    out
}

/// The picture a [`ticker`] server starts with: four coloured quadrants.
pub(crate) fn ticker_full_frame(width: u16, height: u16) -> Vec<u8> {
    let (hw, hh) = (width / 2, height / 2);
    let mut out = update_header(4);
    out.extend(raw_rect(0, 0, hw, hh, [200, 30, 30]));
    out.extend(raw_rect(hw, 0, width - hw, hh, [30, 200, 30]));
    out.extend(raw_rect(0, hh, hw, height - hh, [30, 30, 200]));
    out.extend(raw_rect(hw, hh, width - hw, height - hh, [220, 220, 220]));
    out
}

/// A well-behaved server whose screen keeps changing: it answers every update request after
/// 50 ms with a small square of a new colour, so its viewers keep receiving frames.
pub(crate) async fn ticker(stream: TcpStream) -> Result<()> {
    const W: u16 = 96;
    const H: u16 = 64;
    let mut stream = stream;
    handshake_none(&mut stream, W, H, "ticker").await?;
    let (mut reader, mut writer): (OwnedReadHalf, OwnedWriteHalf) = stream.into_split();
    let mut step: u16 = 0;
    while let Some(incremental) = next_update_request(&mut reader).await? {
        if incremental {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let x = (step * 16) % W;
            let shade = (step % 200) as u8;
            let mut update = update_header(1);
            update.extend(raw_rect(x, 16, 16, 16, [shade, 255 - shade, 128]));
            writer.write_all(&update).await?;
            step = step.wrapping_add(1);
        } else {
            writer.write_all(&ticker_full_frame(W, H)).await?;
        }
    }
    Ok(())
}

/// A server whose screen changes as fast as its viewer asks, with incompressible noise: a
/// 128x96 rectangle of random pixels every 20 ms (about 2.4 MB/s of raw pixels).
pub(crate) async fn noise(stream: TcpStream) -> Result<()> {
    use rand::RngCore;
    const W: u16 = 256;
    const H: u16 = 192;
    let mut stream = stream;
    handshake_none(&mut stream, W, H, "noise").await?;
    let (mut reader, mut writer): (OwnedReadHalf, OwnedWriteHalf) = stream.into_split();
    let mut step: u16 = 0;
    while let Some(incremental) = next_update_request(&mut reader).await? {
        if incremental {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let (x, y) = ((step * 32) % (W - 128), (step * 24) % (H - 96));
        let mut update = update_header(1);
        update.extend(rect_header(x, y, 128, 96, 0));
        let mut pixels = vec![0u8; 128 * 96 * 4];
        rand::rng().fill_bytes(&mut pixels);
        update.extend(pixels);
        writer.write_all(&update).await?;
        step = step.wrapping_add(1);
    }
    Ok(())
}
