//! The relay on real loopback sockets: timing, byte counts, integrity and closes.
//!
//! Lower bounds are strict (the relay can never beat the model: timers never fire early and the
//! clock is monotonic); upper bounds are generous, for a loaded machine.

use bascule_linkemu::{LinkParams, Relay, RelayStats};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LOCALHOST: &str = "127.0.0.1:0";

fn localhost() -> SocketAddr {
    LOCALHOST.parse().expect("a socket address")
}

/// An echo server on a free port: each connection sends back what it reads and closes its
/// write half when the peer closes its own.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind(localhost())
        .await
        .expect("bind the echo server");
    let addr = listener.local_addr().expect("echo server address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                stream.set_nodelay(true).expect("TCP_NODELAY");
                let (mut read, mut write) = stream.split();
                tokio::io::copy(&mut read, &mut write).await.expect("echo");
                write.shutdown().await.expect("echo shutdown");
            });
        }
    });
    addr
}

async fn connect(relay: &Relay) -> TcpStream {
    let stream = TcpStream::connect(relay.local_addr())
        .await
        .expect("connect to the relay");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    stream
}

/// Waits (up to 2 s) for the counters to reach `expected`, then checks they did not pass it.
/// Counters move just after a write completes, so they may trail what a peer has read a little.
async fn assert_stats_reach(relay: &Relay, expected: RelayStats) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while relay.stats() != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(relay.stats(), expected);
}

fn stats(connections: u64, bytes_up: u64, bytes_down: u64) -> RelayStats {
    let mut stats = RelayStats::default();
    stats.connections = connections;
    stats.bytes_up = bytes_up;
    stats.bytes_down = bytes_down;
    stats
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// A one-byte ping-pong across a 512 kbit/s, 80 ms RTT link takes one RTT.
#[tokio::test]
async fn a_ping_takes_one_round_trip() {
    let link = LinkParams::from_rtt(512, 80);
    let relay = Relay::start(localhost(), echo_server().await, link, link)
        .await
        .expect("start");
    let mut stream = connect(&relay).await;
    let mut rtts = Vec::new();
    for i in 0..5u8 {
        let start = Instant::now();
        stream.write_all(&[i]).await.expect("ping");
        let mut pong = [0];
        stream.read_exact(&mut pong).await.expect("pong");
        rtts.push(start.elapsed());
        assert_eq!(pong, [i]);
    }
    println!("ping RTTs at 512 kbit/s, 80 ms: {rtts:?}");
    // Two delays of 40 ms plus two serialisations of one byte (15.6 µs each).
    for rtt in &rtts {
        assert!(
            *rtt >= Duration::from_micros(80_031),
            "a ping beat the link: {rtt:?}"
        );
    }
    rtts.sort();
    assert!(
        rtts[2] <= Duration::from_millis(110),
        "median RTT too slow: {rtts:?}"
    );
    assert_stats_reach(&relay, stats(1, 5, 5)).await;
}

/// 64 KiB up a 512 kbit/s link (echoed down a 1 Mbit/s one) takes the serialisation time of
/// 64 KiB at 512 kbit/s plus one RTT: about 1.1 s.
#[tokio::test]
async fn sixty_four_kib_take_a_second_at_512_kbit() {
    let up = LinkParams::from_rtt(512, 80);
    let down = LinkParams::from_rtt(1_000, 80);
    let relay = Relay::start(localhost(), echo_server().await, up, down)
        .await
        .expect("start");
    let stream = connect(&relay).await;
    let data = pseudo_random(64 * 1024, 7);
    let (mut read, mut write) = stream.into_split();
    let start = Instant::now();
    let writer = {
        let data = data.clone();
        tokio::spawn(async move { write.write_all(&data).await.expect("send") })
    };
    let mut echoed = vec![0; data.len()];
    read.read_exact(&mut echoed).await.expect("echo");
    let elapsed = start.elapsed();
    writer.await.expect("writer");
    let rate_kbps =
        (data.len() * 8) as f64 / (elapsed - Duration::from_millis(80)).as_secs_f64() / 1000.0;
    println!(
        "64 KiB at 512 kbit/s up, 1 Mbit/s down, 80 ms: echoed in {elapsed:?} ({rate_kbps:.0} kbit/s net of the RTT)"
    );
    assert!(echoed == data, "the echo differs from what was sent");
    // 65 536 × 8 / 512 000 = 1.024 s, plus 40 ms each way.
    assert!(
        elapsed >= Duration::from_millis(1104),
        "64 KiB beat the link: {elapsed:?}"
    );
    assert!(
        elapsed <= Duration::from_millis(1400),
        "64 KiB too slow: {elapsed:?}"
    );
    assert_stats_reach(&relay, stats(1, data.len() as u64, data.len() as u64)).await;
}

/// 4 MiB through a fast link with a small queue (so backpressure stops and restarts the
/// sender all the time) arrive intact; the client's half-close reaches the server, whose close
/// comes back.
#[tokio::test]
async fn a_large_transfer_arrives_intact_and_half_close_propagates() {
    let up = LinkParams::from_rtt(100_000, 2).with_queue_limit(32 * 1024);
    let down = LinkParams::from_rtt(100_000, 2);
    let relay = Relay::start(localhost(), echo_server().await, up, down)
        .await
        .expect("start");
    let stream = connect(&relay).await;
    let data = pseudo_random(4 * 1024 * 1024, 11);
    let (mut read, mut write) = stream.into_split();
    let start = Instant::now();
    let writer = {
        let data = data.clone();
        tokio::spawn(async move {
            // Writes of assorted sizes, then the half-close.
            let mut offset = 0;
            let mut size = 1;
            while offset < data.len() {
                let end = (offset + size).min(data.len());
                write.write_all(&data[offset..end]).await.expect("send");
                offset = end;
                size = size * 7 % 100_003 + 1;
            }
            write.shutdown().await.expect("half-close");
        })
    };
    let mut echoed = Vec::with_capacity(data.len());
    // read_to_end returns at the end of stream: the close came back through the relay.
    tokio::time::timeout(Duration::from_secs(5), read.read_to_end(&mut echoed))
        .await
        .expect("the echo ended in time")
        .expect("echo");
    let elapsed = start.elapsed();
    writer.await.expect("writer");
    println!("4 MiB at 100 Mbit/s with a 32 KiB queue: echoed in {elapsed:?}");
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "the echo differs from what was sent");
    // 4 MiB × 8 / 100 Mbit/s = 0.34 s.
    assert!(
        elapsed >= Duration::from_millis(335),
        "4 MiB beat the link: {elapsed:?}"
    );
    assert_stats_reach(&relay, stats(1, data.len() as u64, data.len() as u64)).await;
}

/// When the server writes and closes, the client gets the bytes one delay later, then the end
/// of the stream.
#[tokio::test]
async fn a_server_close_reaches_the_client() {
    let listener = TcpListener::bind(localhost()).await.expect("bind");
    let target = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        stream.write_all(b"bye").await.expect("write");
        // Dropping the stream closes it.
    });
    let link = LinkParams::from_rtt(512, 80);
    let relay = Relay::start(localhost(), target, link, link)
        .await
        .expect("start");
    let start = Instant::now();
    let mut stream = connect(&relay).await;
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut received))
        .await
        .expect("the close arrived in time")
        .expect("read");
    let elapsed = start.elapsed();
    assert_eq!(received, b"bye");
    assert!(
        elapsed >= Duration::from_millis(40),
        "the bytes beat the link: {elapsed:?}"
    );
    assert_stats_reach(&relay, stats(1, 0, 3)).await;
}

/// When the client writes and closes, the server gets the bytes, then the end of the stream.
#[tokio::test]
async fn a_client_close_reaches_the_server() {
    let listener = TcpListener::bind(localhost()).await.expect("bind");
    let target = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut received = Vec::new();
        stream.read_to_end(&mut received).await.expect("read");
        received
    });
    let link = LinkParams::from_rtt(512, 80);
    let relay = Relay::start(localhost(), target, link, link)
        .await
        .expect("start");
    let mut stream = connect(&relay).await;
    stream.write_all(b"hello").await.expect("write");
    drop(stream);
    let received = tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .expect("the close arrived in time")
        .expect("server task");
    assert_eq!(received, b"hello");
    assert_stats_reach(&relay, stats(1, 5, 0)).await;
}

/// A client whose target refuses the connection is closed at once.
#[tokio::test]
async fn an_unreachable_target_closes_the_client() {
    let target = {
        let listener = TcpListener::bind(localhost()).await.expect("bind");
        listener.local_addr().expect("address")
        // The listener is dropped here: the port refuses connections.
    };
    let link = LinkParams::from_rtt(512, 80);
    let relay = Relay::start(localhost(), target, link, link)
        .await
        .expect("start");
    let mut stream = connect(&relay).await;
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut received))
        .await
        .expect("the client was closed in time");
    // A close or a reset, depending on timing; either way nothing was relayed.
    assert!(read.is_err() || received.is_empty());
    assert_stats_reach(&relay, stats(1, 0, 0)).await;
}

/// After shutdown the relay no longer listens and its connections are closed.
#[tokio::test]
async fn shutdown_closes_everything() {
    let link = LinkParams::from_rtt(512, 80);
    let relay = Relay::start(localhost(), echo_server().await, link, link)
        .await
        .expect("start");
    let addr = relay.local_addr();
    let mut stream = connect(&relay).await;
    // Make sure the connection is being relayed before shutting down.
    stream.write_all(b"x").await.expect("ping");
    let mut pong = [0];
    stream.read_exact(&mut pong).await.expect("pong");
    relay.shutdown().await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest))
        .await
        .expect("the connection was closed in time");
    assert!(read.is_err() || rest.is_empty());
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the relay still listens"
    );
}
