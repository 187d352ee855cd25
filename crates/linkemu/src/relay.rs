//! The tokio shell: a TCP relay that carries each connection's two directions through a
//! [`Direction`] each.

use crate::link::{Direction, LinkParams};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// At most this many bytes are read from a socket at once (less when the link's queue has less
/// room).
const READ_CHUNK: usize = 16 * 1024;

/// A running link emulator: it accepts TCP connections and relays each one to the target
/// through an emulated link.
///
/// Each accepted connection opens its own connection to the target.
/// Client-to-server bytes go through an `up` [`Direction`], server-to-client bytes through a
/// `down` one, each with its own queue, serialiser and delay.
/// When one side closes its write half, the rest of its bytes are delivered, then the relay
/// closes its write half towards the other side; a connection ends when both directions have,
/// or at the first I/O error, which closes both sockets.
///
/// What the emulation leaves out: the TCP handshake is not delayed (the target is dialled as
/// soon as a client is accepted), and the kernel's socket buffers on both sides of the relay
/// add buffering of their own in front of and behind the emulated queue.
/// Deliveries are never early but can be late by tokio's timer resolution (1 ms) plus
/// scheduling: a one-byte ping on an 80 ms RTT link measures about 82 ms.
///
/// Dropping a `Relay` stops it as [`shutdown`](Relay::shutdown) does, without waiting.
#[derive(Debug)]
pub struct Relay {
    local_addr: SocketAddr,
    counters: Arc<Counters>,
    /// The accept loop; it owns the connections' tasks, so aborting it ends them too.
    accept_task: JoinHandle<()>,
}

/// A snapshot of a [`Relay`]'s counters, summed over all its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RelayStats {
    /// Client connections accepted, including any whose connection to the target failed.
    pub connections: u64,
    /// Client-to-server bytes written to the target.
    pub bytes_up: u64,
    /// Server-to-client bytes written to the clients.
    pub bytes_down: u64,
}

/// The counters behind [`RelayStats`], shared by the accept loop and every connection.
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

impl Relay {
    /// Listens on `listen` (port 0 picks a free port) and relays every accepted connection to
    /// `target` through a link shaped by `up` (client to server) and `down` (server to client).
    ///
    /// Must be called within a tokio runtime.
    pub async fn start(
        listen: SocketAddr,
        target: SocketAddr,
        up: LinkParams,
        down: LinkParams,
    ) -> io::Result<Relay> {
        let listener = TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let accept_task = tokio::spawn(accept_loop(
            listener,
            target,
            up,
            down,
            Arc::clone(&counters),
        ));
        Ok(Relay {
            local_addr,
            counters,
            accept_task,
        })
    }

    /// The address the relay listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The byte and connection counters so far.
    pub fn stats(&self) -> RelayStats {
        RelayStats {
            connections: self.counters.connections.load(Ordering::Relaxed),
            bytes_up: self.counters.bytes_up.load(Ordering::Relaxed),
            bytes_down: self.counters.bytes_down.load(Ordering::Relaxed),
        }
    }

    /// Stops listening and closes every relayed connection (bytes still in the emulated link
    /// are lost), then returns once the relay's tasks have ended.
    pub async fn shutdown(mut self) {
        self.accept_task.abort();
        // The task was aborted: the result can only be the cancellation.
        let _ = (&mut self.accept_task).await;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    up: LinkParams,
    down: LinkParams,
    counters: Arc<Counters>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    counters.connections.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(relay_connection(client, peer, target, up, down, Arc::clone(&counters)));
                }
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a little rather than spin.
                    tracing::warn!(%error, "linkemu: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn relay_connection(
    client: TcpStream,
    peer: SocketAddr,
    target: SocketAddr,
    up: LinkParams,
    down: LinkParams,
    counters: Arc<Counters>,
) {
    let server = match TcpStream::connect(target).await {
        Ok(server) => server,
        Err(error) => {
            tracing::warn!(%peer, %target, %error, "linkemu: cannot connect to the target");
            return;
        }
    };
    // The emulated link does the delaying: the kernel must not add Nagle's on top.
    for socket in [&client, &server] {
        if let Err(error) = socket.set_nodelay(true) {
            tracing::warn!(%peer, %error, "linkemu: cannot set TCP_NODELAY");
        }
    }
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let result = tokio::try_join!(
        pump(
            client_read,
            server_write,
            Direction::new(up),
            &counters.bytes_up
        ),
        pump(
            server_read,
            client_write,
            Direction::new(down),
            &counters.bytes_down
        ),
    );
    match result {
        Ok(_) => tracing::debug!(%peer, "linkemu: connection closed"),
        // Returning drops both sockets, which closes them towards both peers.
        Err(error) => tracing::debug!(%peer, %error, "linkemu: connection ended"),
    }
}

/// Carries one direction: reads `source` while the link has room, writes to `sink` what the
/// link delivers, and once `source` has ended and everything is delivered, shuts `sink`'s write
/// half down.
async fn pump<R, W>(
    mut source: R,
    mut sink: W,
    mut link: Direction,
    delivered: &AtomicU64,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut read_buf = vec![0; READ_CHUNK];
    // Bytes the link has delivered that `sink` has not taken yet; `pending[written..]` is left.
    let mut pending: Vec<u8> = Vec::new();
    let mut written = 0;
    let mut source_open = true;
    loop {
        if let Some(bytes) = link.poll_deliverable(Instant::now()) {
            pending.extend(bytes);
        }
        let unwritten = pending.len() - written;
        if !source_open && link.is_empty() && unwritten == 0 {
            return sink.shutdown().await;
        }
        // Bytes stuck behind a slow reader still count against the queue, so a reader that
        // stops reading stops the sender, as a closed TCP window would.
        let room = link.room().saturating_sub(unwritten).min(READ_CHUNK);
        let wakeup = link.next_wakeup();
        tokio::select! {
            // Both `read` and `write` are cancel-safe: a branch that loses the race has moved
            // no bytes.
            read = source.read(&mut read_buf[..room]), if source_open && room > 0 => {
                let n = read?;
                if n == 0 {
                    source_open = false;
                } else {
                    let accepted = link.offer(Instant::now(), &read_buf[..n]);
                    debug_assert_eq!(accepted, n, "the read was limited to the link's room");
                }
            }
            wrote = sink.write(&pending[written..]), if unwritten > 0 => {
                let n = wrote?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                written += n;
                delivered.fetch_add(n as u64, Ordering::Relaxed);
                if written == pending.len() {
                    pending.clear();
                    written = 0;
                } else if written >= READ_CHUNK {
                    // A reader taking a little at a time: drop what it took.
                    pending.drain(..written);
                    written = 0;
                }
            }
            () = sleep_until(wakeup) => {}
        }
    }
}

/// Sleeps until `wakeup`, or forever if there is none.
async fn sleep_until(wakeup: Option<Instant>) {
    match wakeup {
        Some(wakeup) => tokio::time::sleep_until(wakeup.into()).await,
        None => std::future::pending().await,
    }
}
