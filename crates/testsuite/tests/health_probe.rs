//! `bascule_health::probe` against real peers: the testbed's x11vnc, TigerVNC, xrdp and
//! freerdp-shadow answer with a valid banner; a closed port, a peer of the other protocol, and
//! small local servers that send garbage, say nothing or hang up fail with the right error and
//! a clear message. The probe closes politely: the peer sees a FIN, not a reset.
//!
//! The testbed's TigerVNC is deliberately not probed: TigerVNC counts every connection that
//! does not log in as a blacklist mark (5 marks block the address for 10 s, doubling at each
//! expiry, until a login succeeds), and it is shared by the other tests.

use crate::support::testbed_env;
use anyhow::{Context, Result, bail};
use bascule_health::{Health, HealthTracker, Phase, ProbeError, ProbeOk, Protocol, probe};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Generous for real peers on a loaded 2-core machine; a healthy probe takes milliseconds.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

/// `host` and `port` of a testbed peer; fails with a clear message when the testbed is down.
fn testbed_addr(key: &str) -> Result<SocketAddr> {
    let env = testbed_env();
    let value =
        env.get(key).with_context(|| format!("{key} missing from the testbed env file: run scripts/testbed.sh up"))?;
    value.parse().with_context(|| format!("{key}={value} is not an address"))
}

/// Probes a testbed peer; an error says which peer and that the testbed may be down.
async fn probe_peer(protocol: Protocol, key: &str) -> Result<ProbeOk> {
    let addr = testbed_addr(key)?;
    probe(protocol, &addr.ip().to_string(), addr.port(), PEER_TIMEOUT).await.map_err(|error| {
        anyhow::anyhow!("{protocol} probe of the testbed's {key} ({addr}) failed: {error} (code {}); is the testbed up (scripts/testbed.sh status)?", error.code())
    })
}

/// How a one-connection fake server saw its client leave.
#[derive(Debug, PartialEq, Eq)]
enum ClientLeft {
    /// A FIN: the read returned 0.
    Closed,
    /// A reset or another read error.
    Error(String),
}

/// A server on 127.0.0.1 that accepts one connection, waits `delay`, sends `bytes` (nothing if
/// empty), then reads until the client leaves, or closes at once when `hang_up` is set.
async fn fake_server(bytes: &'static [u8], hang_up: bool) -> Result<(u16, JoinHandle<Result<ClientLeft>>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await.context("binding a local listener")?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.context("accepting the probe")?;
        if !bytes.is_empty() {
            stream.write_all(bytes).await.context("sending to the probe")?;
        }
        if hang_up {
            return Ok(ClientLeft::Closed);
        }
        let mut sink = [0u8; 256];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut sink)).await {
                Err(_) => bail!("the probe did not close the connection within 10 s"),
                Ok(Ok(0)) => return Ok(ClientLeft::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Ok(ClientLeft::Error(error.to_string())),
            }
        }
    });
    Ok((port, task))
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
async fn closed_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await.context("binding a local listener")?;
    Ok(listener.local_addr()?.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testbed_x11vnc_answers_with_rfb_3_8() -> Result<()> {
    let ok = probe_peer(Protocol::Vnc, "TB_X11VNC_ADDR").await?;
    assert_eq!(ok.detail, "RFB 003.008");
    assert!(ok.elapsed < PEER_TIMEOUT, "{ok:?}");
    // By name: "localhost" may resolve to ::1 first, where nothing listens; the probe goes on
    // to 127.0.0.1.
    let addr = testbed_addr("TB_X11VNC_ADDR")?;
    let ok = probe(Protocol::Vnc, "localhost", addr.port(), PEER_TIMEOUT)
        .await
        .map_err(|e| anyhow::anyhow!("probe of localhost:{}: {e}", addr.port()))?;
    assert_eq!(ok.detail, "RFB 003.008");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testbed_rdp_servers_report_the_selected_protocol() -> Result<()> {
    // xrdp and freerdp-shadow without NLA pick TLS; the NLA-only shadow picks CredSSP.
    for (key, expected) in [
        ("TB_XRDP_ADDR", "RDP, TLS selected"),
        ("TB_SHADOW_TLS_ADDR", "RDP, TLS selected"),
        ("TB_SHADOW_NLA_ADDR", "RDP, CredSSP (NLA) selected"),
    ] {
        let ok = probe_peer(Protocol::Rdp, key).await?;
        assert_eq!(ok.detail, expected, "{key}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_a_connect_error() -> Result<()> {
    let port = closed_port().await?;
    for protocol in [Protocol::Vnc, Protocol::Rdp] {
        match probe(protocol, "127.0.0.1", port, Duration::from_secs(5)).await {
            Ok(ok) => bail!("a closed port answered {ok:?}"),
            Err(error @ ProbeError::Connect { .. }) => {
                assert_eq!(error.code(), "connect");
                let message = error.to_string();
                assert!(
                    message.contains(&format!("cannot connect to 127.0.0.1:{port}")) && message.contains("refused"),
                    "{message}"
                );
            }
            Err(other) => bail!("expected a connect error, got {other:?} ({other})"),
        }
    }
    Ok(())
}

/// A VNC server probed as RDP fails with a message that says so. VNC servers speak first, so
/// the reply to the Connection Request is usually their RFB banner (a bad banner, with the hint
/// that it looks like VNC; TigerVNC does so). But x11vnc sniffs what a client sends before its
/// banner: bytes that are neither RFB nor HTTP make it reset the connection, and the reset
/// discards the banner already queued, so that the probe sees a reset after 0 bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vnc_server_probed_as_rdp_is_refused_with_a_clear_message() -> Result<()> {
    let key = "TB_X11VNC_ADDR";
    let addr = testbed_addr(key)?;
    match probe(Protocol::Rdp, &addr.ip().to_string(), addr.port(), Duration::from_secs(3)).await {
        Ok(ok) => bail!("{key} passed as an RDP host: {ok:?}"),
        Err(error @ ProbeError::Banner { .. }) => {
            let message = error.to_string();
            assert_eq!(error.code(), "bad_banner");
            assert!(
                message.contains("its reply is not a valid RDP banner") && message.contains("looks like a VNC server"),
                "{key}: {message}"
            );
        }
        Err(error @ ProbeError::Timeout { phase: Phase::Banner, .. }) => {
            assert!(error.to_string().contains("X.224 Connection Confirm"), "{key}: {error}");
        }
        Err(error @ ProbeError::Closed { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("before a complete RDP banner") && message.contains("is it an RDP server?"),
                "{key}: {message}"
            );
        }
        Err(other) => bail!("{key}: expected a bad banner, a timeout or a reset, got {other:?} ({other})"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rdp_server_probed_as_vnc_times_out_waiting_for_the_banner() -> Result<()> {
    // An RDP server waits for the client to speak first: no RFB banner ever comes.
    let addr = testbed_addr("TB_XRDP_ADDR")?;
    let timeout = Duration::from_millis(700);
    let started = Instant::now();
    match probe(Protocol::Vnc, &addr.ip().to_string(), addr.port(), timeout).await {
        Ok(ok) => bail!("xrdp passed as a VNC host: {ok:?}"),
        Err(error @ ProbeError::Timeout { phase: Phase::Banner, received: 0, .. }) => {
            assert_eq!(error.code(), "timeout");
            let message = error.to_string();
            assert!(message.contains("timed out after 700 ms waiting for the VNC banner"), "{message}");
            assert!(message.contains("is it a VNC server?"), "{message}");
        }
        Err(other) => bail!("expected a timeout waiting for the banner, got {other:?} ({other})"),
    }
    assert!(started.elapsed() < Duration::from_secs(3), "the timeout took {:?}", started.elapsed());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_sending_garbage_is_a_bad_banner_and_closed_politely() -> Result<()> {
    for protocol in [Protocol::Vnc, Protocol::Rdp] {
        let (port, server) = fake_server(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", false).await?;
        match probe(protocol, "127.0.0.1", port, Duration::from_secs(5)).await {
            Ok(ok) => bail!("garbage passed as {protocol}: {ok:?}"),
            Err(error @ ProbeError::Banner { .. }) => {
                let message = error.to_string();
                assert!(
                    message.contains(&format!(
                        "127.0.0.1:{port} answered, but its reply is not a valid {protocol} banner"
                    )),
                    "{message}"
                );
                assert!(message.contains("looks like an HTTP server"), "{message}");
            }
            Err(other) => bail!("expected a bad banner, got {other:?} ({other})"),
        }
        assert_eq!(server.await??, ClientLeft::Closed, "the {protocol} probe must close with a FIN");
    }

    let (port, server) = fake_server(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x13, 0x37], false).await?;
    let error =
        probe(Protocol::Rdp, "127.0.0.1", port, Duration::from_secs(5)).await.err().context("garbage passed")?;
    assert_eq!(error.code(), "bad_banner", "{error}");
    assert!(error.to_string().contains("TPKT header"), "{error}");
    assert_eq!(server.await??, ClientLeft::Closed);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_fake_banner_passes_and_is_closed_politely() -> Result<()> {
    let (port, server) = fake_server(b"RFB 003.007\n", false).await?;
    let ok = probe(Protocol::Vnc, "127.0.0.1", port, Duration::from_secs(5))
        .await
        .map_err(|e| anyhow::anyhow!("fake RFB 3.7 server: {e}"))?;
    assert_eq!(ok.detail, "RFB 003.007");
    assert_eq!(server.await??, ClientLeft::Closed, "the probe must close with a FIN");

    // What TigerVNC sends to an address it blacklisted: a VNC server, but unusable.
    const REFUSAL: &[u8] = b"RFB 003.003\n\0\0\0\0\0\0\0\x1aToo many security failures";
    let (port, server) = fake_server(REFUSAL, false).await?;
    let error = probe(Protocol::Vnc, "127.0.0.1", port, Duration::from_secs(5)).await.err().context("accepted")?;
    assert!(error.to_string().contains("refuses connections: \"Too many security failures\""), "{error}");
    assert_eq!(server.await??, ClientLeft::Closed);

    // A negotiation failure: the host speaks RDP but refuses TLS and CredSSP.
    const FAILURE: &[u8] = &[
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00, 0x02, 0x00, 0x00,
        0x00,
    ];
    let (port, server) = fake_server(FAILURE, false).await?;
    let error = probe(Protocol::Rdp, "127.0.0.1", port, Duration::from_secs(5)).await.err().context("accepted")?;
    assert!(error.to_string().contains("SSL_NOT_ALLOWED_BY_SERVER"), "{error}");
    assert_eq!(server.await??, ClientLeft::Closed);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_times_out_quickly() -> Result<()> {
    for protocol in [Protocol::Vnc, Protocol::Rdp] {
        let (port, server) = fake_server(b"", false).await?;
        let timeout = Duration::from_millis(300);
        let started = Instant::now();
        match probe(protocol, "127.0.0.1", port, timeout).await {
            Ok(ok) => bail!("silence passed as {protocol}: {ok:?}"),
            Err(error @ ProbeError::Timeout { phase: Phase::Banner, received: 0, .. }) => {
                let message = error.to_string();
                assert!(message.starts_with("timed out after 300 ms waiting for the"), "{message}");
                assert!(message.contains(&format!("from 127.0.0.1:{port}")), "{message}");
            }
            Err(other) => bail!("expected a timeout waiting for the banner, got {other:?} ({other})"),
        }
        let took = started.elapsed();
        assert!(took >= timeout && took < Duration::from_millis(1500), "{protocol}: the probe took {took:?}");
        // The probe dropped its socket: the server sees the client leave.
        assert!(matches!(server.await??, ClientLeft::Closed | ClientLeft::Error(_)));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_hanging_up_is_closed() -> Result<()> {
    for (protocol, bytes) in [(Protocol::Vnc, &b"RFB 003"[..]), (Protocol::Rdp, &b""[..]), (Protocol::Vnc, &b""[..])] {
        let (port, server) = fake_server(bytes, true).await?;
        match probe(protocol, "127.0.0.1", port, Duration::from_secs(5)).await {
            Ok(ok) => bail!("a hang-up passed as {protocol}: {ok:?}"),
            Err(error @ ProbeError::Closed { .. }) => {
                assert_eq!(error.code(), "closed");
                let message = error.to_string();
                assert!(
                    message.contains(&format!("after {} bytes, before a complete {protocol} banner", bytes.len())),
                    "{message}"
                );
            }
            Err(other) => bail!("expected closed, got {other:?} ({other})"),
        }
        server.await??;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_host_name_does_not_resolve() -> Result<()> {
    // `.invalid` never resolves (RFC 2606); without a DNS server the lookup may time out instead.
    match probe(Protocol::Vnc, "no-such-host.invalid", 5900, Duration::from_secs(5)).await {
        Ok(ok) => bail!("an .invalid name answered: {ok:?}"),
        Err(error @ ProbeError::Resolve { .. }) => {
            assert_eq!(error.code(), "resolve");
            assert!(
                error.to_string().starts_with("cannot resolve the host name of no-such-host.invalid:5900"),
                "{error}"
            );
        }
        Err(error @ ProbeError::Timeout { phase: Phase::Resolve, .. }) => {
            assert!(error.to_string().contains("resolving the host name"), "{error}");
        }
        Err(other) => bail!("expected a resolve error, got {other:?} ({other})"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracker_follows_real_probes() -> Result<()> {
    let addr = testbed_addr("TB_X11VNC_ADDR")?;
    let up = || probe(Protocol::Vnc, "127.0.0.1", addr.port(), PEER_TIMEOUT);
    let port = closed_port().await?;
    let down = || probe(Protocol::Vnc, "127.0.0.1", port, Duration::from_secs(5));
    let now = SystemTime::now();
    let mut tracker = HealthTracker::new();

    let transition = tracker.record(&up().await, now).context("unknown to healthy")?;
    assert_eq!((transition.from, transition.to), (Health::Unknown, Health::Healthy));
    assert_eq!(tracker.record(&down().await, now), None, "one failure is not an outage");
    let transition = tracker.record(&down().await, now).context("healthy to unhealthy")?;
    assert_eq!((transition.from, transition.to), (Health::Healthy, Health::Unhealthy));
    let reason = transition.reason.context("a reason")?;
    assert!(reason.contains("cannot connect to 127.0.0.1"), "{reason}");
    let transition = tracker.record(&up().await, now).context("unhealthy to healthy")?;
    assert_eq!(transition.to, Health::Healthy);
    Ok(())
}
