//! Hostile or broken servers: every case ends in a clear `Err`, never a panic or a hang.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bascule_rdp::{RdpConfig, RdpError, connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn cfg(port: u16, timeout: Duration) -> RdpConfig {
    let mut c = RdpConfig::new("127.0.0.1", port, "user", "pass");
    c.connect_timeout = timeout;
    c
}

/// Starts a one-connection-at-a-time server whose behaviour is `f(socket)`.
async fn serve<F, Fut>(f: F) -> u16
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(f(s));
        }
    });
    port
}

async fn read_some(s: &mut tokio::net::TcpStream) {
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
}

fn report(case: &str, r: &Result<bascule_rdp::RdpConnection, RdpError>) -> String {
    match r {
        Ok(_) => panic!("{case}: connect unexpectedly succeeded"),
        Err(e) => {
            println!("{case}: code={} message={e}", e.code());
            e.code().to_owned()
        }
    }
}

#[tokio::test]
async fn closes_immediately() {
    let port = serve(|s| async move { drop(s) }).await;
    let r = connect(cfg(port, Duration::from_secs(5))).await;
    let code = report("accept-and-close", &r);
    assert_eq!(code, "refused");
    assert!(r.unwrap_err().to_string().contains("closed the connection"));
}

#[tokio::test]
async fn closes_after_reading_the_request() {
    let port = serve(|mut s| async move {
        read_some(&mut s).await;
        drop(s)
    })
    .await;
    let r = connect(cfg(port, Duration::from_secs(5))).await;
    assert_eq!(report("read-then-close", &r), "refused");
}

#[tokio::test]
async fn answers_garbage() {
    let port = serve(|mut s| async move {
        read_some(&mut s).await;
        let _ = s
            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    })
    .await;
    let r = connect(cfg(port, Duration::from_secs(5))).await;
    assert_eq!(report("http-garbage", &r), "protocol_error");
}

#[tokio::test]
async fn valid_negotiation_then_garbage_instead_of_tls() {
    // X.224 Connection Confirm selecting PROTOCOL_SSL, then bytes that are not TLS.
    const CONFIRM_SSL: [u8; 19] = [
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00,
        0x00,
    ];
    let port = serve(|mut s| async move {
        read_some(&mut s).await;
        let _ = s.write_all(&CONFIRM_SSL).await;
        read_some(&mut s).await; // ClientHello
        let _ = s.write_all(&[0x42; 300]).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    })
    .await;
    let r = connect(cfg(port, Duration::from_secs(5))).await;
    assert_eq!(report("garbage-instead-of-tls", &r), "protocol_error");

    // Same, but the server hangs up instead of answering the ClientHello.
    let port = serve(|mut s| async move {
        read_some(&mut s).await;
        let _ = s.write_all(&CONFIRM_SSL).await;
        read_some(&mut s).await;
    })
    .await;
    let r = connect(cfg(port, Duration::from_secs(5))).await;
    assert_eq!(report("close-during-tls", &r), "refused");
}

#[tokio::test]
async fn never_answers_times_out() {
    let port = serve(|mut s| async move {
        read_some(&mut s).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(s);
    })
    .await;
    let t = Instant::now();
    let r = connect(cfg(port, Duration::from_secs(2))).await;
    let elapsed = t.elapsed();
    assert_eq!(report("silent", &r), "timeout");
    assert!(matches!(r, Err(RdpError::Timeout)));
    println!("silent server: Timeout after {:.0} ms (connect_timeout 2000 ms)", elapsed.as_secs_f64() * 1000.0);
    assert!(elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_millis(2500), "{elapsed:?}");
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = connect(cfg(port, Duration::from_secs(5))).await;
    assert_eq!(report("closed-port", &r), "unreachable");
}

#[tokio::test]
async fn random_garbage_never_panics() {
    // Deterministic pseudo-random payloads, some starting like TPKT or fast-path headers.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut codes = std::collections::BTreeMap::new();
    for i in 0..40 {
        let len = (next() % 200) as usize + 1;
        let mut payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        match i % 4 {
            0 => payload[0] = 0x03,
            1 => {
                payload.splice(0..0, [0x03, 0x00, 0x00, (len as u8).wrapping_add(4)]);
            }
            _ => {}
        }
        let p = std::sync::Arc::new(payload);
        let port = serve(move |mut s| {
            let p = p.clone();
            async move {
                read_some(&mut s).await;
                let _ = s.write_all(&p).await;
            }
        })
        .await;
        let r = connect(cfg(port, Duration::from_secs(3))).await;
        let e = r.expect_err("garbage must not connect");
        *codes.entry(e.code()).or_insert(0) += 1;
    }
    println!("random garbage outcomes: {codes:?}");
}
