//! bascule-rdp against freerdp-shadow-cli (FreeRDP 2.11) sharing an Xvfb desktop on loopback.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bascule_rdp::{CertificatePolicy, Egfx, EndReason, RdpEvent, RdpInput, Security, connect};
use common::{Desktop, Framebuffer, ShadowAuth, config, unique, us_scancode};
use tokio::sync::mpsc;

struct Running {
    events: mpsc::Receiver<RdpEvent>,
    input: mpsc::Sender<RdpInput>,
    task: tokio::task::JoinHandle<Result<EndReason, bascule_rdp::RdpError>>,
}

fn start(conn: bascule_rdp::RdpConnection) -> Running {
    let (ev_tx, ev_rx) = mpsc::channel(1024);
    let (in_tx, in_rx) = mpsc::channel(256);
    let task = tokio::spawn(conn.run(ev_tx, in_rx));
    Running {
        events: ev_rx,
        input: in_tx,
        task,
    }
}

impl Running {
    /// Applies events until `done(fb)` after a FrameEnd, or the deadline.
    async fn pump_until(&mut self, fb: &mut Framebuffer, timeout: Duration, mut done: impl FnMut(&Framebuffer) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => {
                    let end = matches!(ev, RdpEvent::FrameEnd);
                    fb.apply(&ev);
                    if end && done(fb) {
                        return true;
                    }
                }
                Ok(None) | Err(_) => return false,
            }
        }
    }

    /// Applies events until nothing arrived for `quiet`.
    async fn pump_quiet(&mut self, fb: &mut Framebuffer, quiet: Duration, max: Duration) {
        let deadline = Instant::now() + max;
        while Instant::now() < deadline {
            match tokio::time::timeout(quiet, self.events.recv()).await {
                Ok(Some(ev)) => fb.apply(&ev),
                _ => return,
            }
        }
    }

    async fn close(self) -> EndReason {
        drop(self.input);
        let mut events = self.events;
        let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
        let r = tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("run() did not return after the input channel closed")
            .expect("run() panicked");
        drain.abort();
        r.expect("run() failed")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_framebuffer_matches_screenshot() {
    let desktop = Desktop::start(ShadowAuth::TlsNoAuth);
    let mut cfg = config(desktop.port);
    cfg.security = Security::Tls;
    cfg.certificate = CertificatePolicy::AcceptAny;

    let t0 = Instant::now();
    let conn = connect(cfg).await.unwrap_or_else(|e| panic!("connect: {e}; shadow log: {}", desktop.log()));
    let t_connect = t0.elapsed();
    assert_eq!(conn.negotiated_security(), Security::Tls);
    let (w, h) = conn.size();
    assert_eq!((w, h), (1024, 768));
    let mut run = start(conn);
    let mut fb = Framebuffer::new(w, h);
    let got_first = run
        .pump_until(&mut fb, Duration::from_secs(10), |fb| fb.pixel_events > 0)
        .await;
    assert!(got_first, "no frame with pixels within 10 s");
    let t_first = t0.elapsed();
    println!(
        "TIME-TO-FIRST-FRAME (TLS): connect {:.1} ms, first FrameEnd with pixels {:.1} ms",
        t_connect.as_secs_f64() * 1000.0,
        t_first.as_secs_f64() * 1000.0
    );

    // Under load (two tests in parallel on two cores) shadow's polling can be slow; what matters
    // is the coverage reached, checked below, not how fast.
    run.pump_until(&mut fb, Duration::from_secs(30), |fb| fb.coverage() > 0.95).await;
    run.pump_quiet(&mut fb, Duration::from_millis(1500), Duration::from_secs(10)).await;
    let coverage = fb.coverage();
    println!("COVERAGE: {:.1} % in {} frames, {} pixel events", coverage * 100.0, fb.frames, fb.pixel_events);
    assert!(coverage > 0.95, "only {:.1} % of the screen received", coverage * 100.0);

    let shot = desktop.screenshot();
    let diff = fb.mean_abs_diff(&shot);
    println!(
        "FRAMEBUFFER-DIFF mean abs per channel: R {:.3} G {:.3} B {:.3}",
        diff[0], diff[1], diff[2]
    );
    assert!(diff.iter().all(|d| *d < 8.0), "framebuffer differs from the screenshot: {diff:?}");

    assert_eq!(run.close().await, EndReason::InputClosed);
}

/// Default `Egfx::On`: the EGFX channel opens and the caps are confirmed without AVC; FreeRDP
/// 2.11 shadow then still paints with legacy bitmaps (checked by the screenshot test above).
/// `Avc420PassThrough`: shadow confirms 8.1 with AVC420 and sends H.264, which leaves
/// undecoded as `Avc420` events while the session keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egfx_negotiation_and_avc420_pass_through() {
    let desktop = Desktop::start(ShadowAuth::TlsNoAuth);
    for mode in [Egfx::On, Egfx::Avc420PassThrough] {
        let mut cfg = config(desktop.port);
        cfg.security = Security::Tls;
        cfg.egfx = mode;
        let conn = connect(cfg).await.unwrap_or_else(|e| panic!("connect: {e}; shadow log: {}", desktop.log()));
        let (w, h) = conn.size();
        let mut run = start(conn);
        let mut fb = Framebuffer::new(w, h);
        // Shadow sends H.264 only for what changes once AVC is confirmed: on a still screen,
        // a key typed into the xterm now and then makes sure something does.
        let expected = |fb: &Framebuffer| match mode {
            Egfx::Avc420PassThrough => !fb.avc420.is_empty(),
            _ => fb.pixel_events > 0,
        };
        let mut done = false;
        for _ in 0..10 {
            done = run.pump_until(&mut fb, Duration::from_secs(2), expected).await;
            if done {
                break;
            }
            run.input.send(RdpInput::Pointer { x: 200, y: 120, buttons: 0 }).await.unwrap();
            for down in [true, false] {
                run.input.send(RdpInput::Key { down, scancode: 0x39, unicode: None }).await.unwrap();
            }
        }
        // The confirmation may come after the last FrameEnd of a static screen.
        run.pump_quiet(&mut fb, Duration::from_millis(1500), Duration::from_secs(5)).await;
        println!(
            "EGFX {mode:?}: confirmed {:?}, {} pixel events, {} AVC420 events, {} frames",
            fb.egfx.map(|(v, a)| (format!("{v:#x}"), a)),
            fb.pixel_events,
            fb.avc420.len(),
            fb.frames
        );
        assert!(done, "{mode:?}: no expected updates within 20 s");
        match mode {
            Egfx::On => {
                assert_eq!(fb.egfx, Some((0xa0701, false)));
                assert!(fb.avc420.is_empty());
            }
            _ => {
                assert_eq!(fb.egfx, Some((0x80105, true)));
                let RdpEvent::Avc420 { surface_id, output_origin, surface_x, surface_y, width, height, regions, data, frame_id, .. } =
                    &fb.avc420[0]
                else {
                    unreachable!()
                };
                println!(
                    "FIRST-AVC420: frame {frame_id:?} surface {surface_id} at {output_origin:?}, rect {surface_x},{surface_y} {width}x{height}, {} regions, {} bytes, head {}",
                    regions.len(),
                    data.len(),
                    bascule_rdp::hex(&data[..data.len().min(16)])
                );
                assert!(frame_id.is_some());
                assert_eq!(*output_origin, Some((0, 0)));
                assert!(*width > 0 && *height > 0 && surface_x + width <= w && surface_y + height <= h);
                // An H.264 Annex B stream with a sequence parameter set (NAL type 7) and an
                // IDR slice (type 5), as a first picture must have.
                let nal_types: Vec<u8> = data
                    .windows(4)
                    .filter(|w| w[..3] == [0, 0, 1])
                    .map(|w| w[3] & 0x1f)
                    .collect();
                assert!(data.starts_with(&[0, 0, 0, 1]) || data.starts_with(&[0, 0, 1]), "not Annex B");
                assert!(nal_types.contains(&7) && nal_types.contains(&5), "NAL types {nal_types:?}");
            }
        }
        assert_eq!(run.close().await, EndReason::InputClosed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_reaches_the_xterm() {
    let desktop = Desktop::start(ShadowAuth::TlsNoAuth);
    let mut cfg = config(desktop.port);
    cfg.security = Security::Negotiate;
    let conn = connect(cfg).await.unwrap_or_else(|e| panic!("connect: {e}; shadow log: {}", desktop.log()));
    let (w, h) = conn.size();
    let mut run = start(conn);
    let mut fb = Framebuffer::new(w, h);
    assert!(run.pump_until(&mut fb, Duration::from_secs(10), |fb| fb.pixel_events > 0).await);

    // Pointer over the xterm (no window manager: focus follows the pointer).
    run.input.send(RdpInput::Pointer { x: 200, y: 120, buttons: 0 }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let path = std::env::temp_dir().join(format!("{}.txt", unique("bascule-rdp-typed")));
    let _ = std::fs::remove_file(&path);
    let token = format!("tok{}x{}", std::process::id(), Instant::now().elapsed().subsec_nanos() % 100000);
    let line = format!("echo {token} > {}\n", path.display());
    for c in line.chars() {
        let (shift, sc) = us_scancode(c).unwrap_or_else(|| panic!("no scancode for {c:?}"));
        if shift {
            run.input.send(RdpInput::Key { down: true, scancode: 0x2A, unicode: None }).await.unwrap();
        }
        run.input.send(RdpInput::Key { down: true, scancode: sc, unicode: None }).await.unwrap();
        run.input.send(RdpInput::Key { down: false, scancode: sc, unicode: None }).await.unwrap();
        if shift {
            run.input.send(RdpInput::Key { down: false, scancode: 0x2A, unicode: None }).await.unwrap();
        }
        // Keep the event channel drained meanwhile.
        run.pump_quiet(&mut fb, Duration::from_millis(5), Duration::from_millis(20)).await;
    }

    let t = Instant::now();
    let mut content = None;
    while t.elapsed() < Duration::from_secs(10) {
        run.pump_quiet(&mut fb, Duration::from_millis(100), Duration::from_millis(200)).await;
        if let Ok(s) = std::fs::read_to_string(&path)
            && s.contains(&token)
        {
            content = Some(s);
            break;
        }
    }
    let _ = std::fs::remove_file(&path);
    assert!(content.is_some(), "{} did not appear with {token} within 10 s", path.display());
    println!("TYPING: file appeared after {:.0} ms", t.elapsed().as_secs_f64() * 1000.0);
    assert_eq!(run.close().await, EndReason::InputClosed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nla_right_and_wrong_password() {
    let desktop = Desktop::start(ShadowAuth::Nla {
        user: "testuser".into(),
        password: "testpass".into(),
    });

    // Right password.
    let mut cfg = config(desktop.port);
    cfg.security = Security::Nla;
    let t0 = Instant::now();
    let conn = connect(cfg.clone())
        .await
        .unwrap_or_else(|e| panic!("NLA connect: {e}; shadow log: {}", desktop.log()));
    assert_eq!(conn.negotiated_security(), Security::Nla);
    let mut run = start(conn);
    let mut fb = Framebuffer::new(1024, 768);
    assert!(run.pump_until(&mut fb, Duration::from_secs(10), |fb| fb.pixel_events > 0).await);
    println!(
        "TIME-TO-FIRST-FRAME (NLA): {:.1} ms",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(run.close().await, EndReason::InputClosed);

    // Negotiate also ends up on NLA here.
    let mut nego = config(desktop.port);
    nego.security = Security::Negotiate;
    let conn = connect(nego).await.expect("Negotiate against an NLA server");
    assert_eq!(conn.negotiated_security(), Security::Nla);
    drop(conn);

    // Wrong password.
    let mut bad = cfg.clone();
    bad.password = "wrong-password".into();
    let err = connect(bad).await.expect_err("wrong password must fail");
    println!("WRONG-PASSWORD error: code={} message={err}", err.code());
    assert_eq!(err.code(), "auth_failed", "{err}");
    assert!(err.to_string().contains("password"), "message should be clear: {err}");

    // Wrong user.
    let mut bad_user = cfg;
    bad_user.username = "nobody".into();
    let err = connect(bad_user).await.expect_err("unknown user must fail");
    println!("WRONG-USER error: code={} message={err}", err.code());
    assert_eq!(err.code(), "auth_failed", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_policies() {
    let desktop = Desktop::start(ShadowAuth::TlsNoAuth);
    let mut cfg = config(desktop.port);
    cfg.security = Security::Tls;
    cfg.clipboard = false;

    let first = connect(cfg.clone()).await.unwrap_or_else(|e| panic!("connect: {e}; {}", desktop.log()));
    let sha = first.server_certificate_sha256();
    drop(first);
    println!("SERVER-CERT SHA-256: {}", bascule_rdp::hex(&sha));
    if let Some(from_file) = desktop.certificate_sha256_hex() {
        assert_eq!(from_file, bascule_rdp::hex(&sha), "fingerprint differs from the certificate file");
        println!("(matches openssl's fingerprint of the shadow certificate file)");
    }

    // Trust on first use fetches the certificate without logging in: same fingerprint.
    let probed = bascule_rdp::fetch_certificate_sha256("127.0.0.1", desktop.port, Duration::from_secs(5))
        .await
        .expect("the probe reads the certificate");
    assert_eq!(probed, sha, "the probe sees the certificate the session sees");

    let mut pinned = cfg.clone();
    pinned.certificate = CertificatePolicy::Pinned(sha);
    let conn = connect(pinned).await.expect("right pin must connect");
    assert_eq!(conn.server_certificate_sha256(), sha);
    drop(conn);

    let mut wrong = sha;
    wrong[0] ^= 0xff;
    let mut bad_pin = cfg.clone();
    bad_pin.certificate = CertificatePolicy::Pinned(wrong);
    let err = connect(bad_pin).await.expect_err("wrong pin must fail");
    println!("WRONG-PIN error: code={} message={err}", err.code());
    assert_eq!(err.code(), "certificate_mismatch", "{err}");
    match &err {
        bascule_rdp::RdpError::CertificateMismatch { expected, got } => {
            assert_eq!(expected, &bascule_rdp::hex(&wrong));
            assert_eq!(got, &bascule_rdp::hex(&sha));
        }
        other => panic!("unexpected {other:?}"),
    }

    let mut system = cfg;
    system.certificate = CertificatePolicy::System;
    let err = connect(system).await.expect_err("self-signed must not be trusted");
    println!("SYSTEM-ROOTS error: code={} message={err}", err.code());
    assert_eq!(err.code(), "certificate_untrusted", "{err}");
}
