//! `send_report` against a local SMTP sink written here (a tokio TCP server speaking just enough
//! SMTP), on the loopback interface.
#![allow(clippy::unwrap_used, clippy::panic)]

use bascule_domain::id::{HostId, ResourceId, SessionId, UserId};
use bascule_domain::session::{EndReason, SessionRecord, SessionState};
use bascule_domain::time::Timestamp;
use bascule_report::{
    DailyReport, DayInput, Lang, ReportError, SmtpSecurity, SmtpSettings, compute, send_report,
};
use bascule_store::{AuditEntry, SessionStats};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jiff::tz::TimeZone;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the sink received in one session.
#[derive(Debug, Default)]
struct Received {
    ehlo: String,
    auth: Option<String>,
    mail_from: String,
    rcpt_to: Vec<String>,
    data: String,
}

#[derive(Clone, Copy)]
struct Behaviour {
    offer_auth: bool,
    reject_rcpt: bool,
}

/// Accepts one SMTP session on 127.0.0.1 and returns what it received.
async fn sink(behaviour: Behaviour) -> (u16, JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut received = Received::default();
        write.write_all(b"220 sink.test ESMTP\r\n").await.unwrap();
        while let Some(line) = lines.next_line().await.unwrap() {
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                received.ehlo = line.clone();
                if behaviour.offer_auth {
                    b"250-sink.test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"
                } else {
                    b"250 sink.test\r\n"
                }
            } else if upper.starts_with("AUTH PLAIN") {
                received.auth = Some(line[10..].trim().to_owned());
                b"235 2.7.0 authenticated\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                received.mail_from = line[10..].trim().to_owned();
                b"250 2.1.0 ok\r\n"
            } else if upper.starts_with("RCPT TO:") {
                received.rcpt_to.push(line[8..].trim().to_owned());
                if behaviour.reject_rcpt {
                    b"550 5.1.1 no such user\r\n"
                } else {
                    b"250 2.1.5 ok\r\n"
                }
            } else if upper == "DATA" {
                write
                    .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                    .await
                    .unwrap();
                while let Some(line) = lines.next_line().await.unwrap() {
                    if line == "." {
                        break;
                    }
                    // Undo dot-stuffing.
                    let line = line
                        .strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line);
                    received.data.push_str(line);
                    received.data.push('\n');
                }
                b"250 2.0.0 queued\r\n"
            } else if upper == "QUIT" {
                write.write_all(b"221 2.0.0 bye\r\n").await.unwrap();
                break;
            } else {
                b"250 ok\r\n"
            };
            write.write_all(reply).await.unwrap();
        }
        received
    });
    (port, task)
}

fn settings(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        username: None,
        password: None,
        from: "Bascule <bascule@example.gouv.fr>".into(),
        to: vec![
            "dsi@example.gouv.fr".into(),
            "Hotline <hotline@example.gouv.fr>".into(),
        ],
    }
}

fn at(text: &str) -> Timestamp {
    let at: jiff::Timestamp = text.parse().unwrap();
    Timestamp::from_unix_seconds(at.as_second())
}

/// A small day: two sessions, one refused launch, on 10 March 2026.
fn report() -> DailyReport {
    let tz = TimeZone::get("Europe/Paris").unwrap();
    let mut input = DayInput::new(
        "2026-03-10".parse().unwrap(),
        &tz,
        at("2026-03-11T08:00:00Z"),
    )
    .unwrap();
    for (id, start, end) in [
        ("s1", "2026-03-10T08:00:00Z", "2026-03-10T10:00:00Z"),
        ("s2", "2026-03-10T09:00:00Z", "2026-03-10T09:30:00Z"),
    ] {
        input.sessions.push(SessionRecord::restore(
            SessionId::new(id),
            UserId::new(format!("user-{id}")),
            ResourceId::new("desk"),
            HostId::new("h1"),
            SessionState::Ended {
                at: at(end),
                reason: EndReason::LoggedOff,
            },
            at(start),
        ));
        input.stats.push(SessionStats {
            session: SessionId::new(id),
            client_address: Some("10.20.1.1".into()),
            bytes_to_client: 1_000_000,
            bytes_from_client: 234_567,
            frames: 10,
            rtt_buckets: vec![0; 16],
            updated_at: at(end),
        });
    }
    input.audit.push(AuditEntry {
        at: at("2026-03-10T09:10:00Z"),
        actor: "agent".into(),
        action: "launch".into(),
        target: "desk".into(),
        address: None,
        outcome: "refused: licences_exhausted: all 2 licences are in use".into(),
    });
    compute(&input, &tz)
}

/// The decoded bodies of the base64 parts of a MIME message, with their headers.
fn base64_parts(data: &str) -> Vec<(String, String)> {
    let mut parts = Vec::new();
    let mut lines = data.lines().peekable();
    while lines.peek().is_some() {
        // Headers of a part, up to the blank line.
        let mut headers = String::new();
        for line in lines.by_ref() {
            if line.is_empty() {
                break;
            }
            headers.push_str(line);
            headers.push('\n');
        }
        let mut body = String::new();
        while let Some(line) = lines.peek() {
            if line.starts_with("--") {
                lines.next();
                break;
            }
            body.push_str(line.trim());
            lines.next();
        }
        if headers
            .to_ascii_lowercase()
            .contains("content-transfer-encoding: base64")
        {
            let bytes = STANDARD.decode(body.as_bytes()).unwrap();
            parts.push((headers, String::from_utf8(bytes).unwrap()));
        }
    }
    parts
}

#[tokio::test]
async fn the_report_arrives_with_its_csv() {
    let report = report();
    assert_eq!(report.peak_concurrent_sessions, 2);
    let (port, received) = sink(Behaviour {
        offer_auth: false,
        reject_rcpt: false,
    })
    .await;
    send_report(&settings(port), &report, Lang::Fr)
        .await
        .unwrap();
    let received = received.await.unwrap();

    assert!(received.ehlo.starts_with("EHLO "), "{}", received.ehlo);
    assert_eq!(received.auth, None);
    assert!(received.mail_from.contains("<bascule@example.gouv.fr>"));
    assert_eq!(
        received.rcpt_to,
        ["<dsi@example.gouv.fr>", "<hotline@example.gouv.fr>"]
    );
    let data = &received.data;
    assert!(data.contains("Subject: "), "{data}");
    assert!(data.contains("multipart/mixed"), "{data}");
    assert!(data.contains("bascule-2026-03-10.csv"), "{data}");

    let parts = base64_parts(data);
    assert_eq!(parts.len(), 2, "{data}");
    let (text_headers, text) = &parts[0];
    assert!(
        text_headers.to_ascii_lowercase().contains("text/plain"),
        "{text_headers}"
    );
    assert!(
        text.starts_with("Bascule — indicateurs du 2026-03-10 (Europe/Paris)"),
        "{text}"
    );
    for expected in [
        "Utilisateurs distincts                   2",
        "Pic de sessions simultanées              2 à 10:00",
        "Sessions ouvertes                        2",
        "Lancements refusés                       1",
        "  licences_exhausted                     1",
        "Bande passante                           2,5 Mo (2\u{202f}469\u{202f}134 octets)",
        "  autre                                  2,5 Mo — 2 sessions, 2 utilisateurs",
    ] {
        assert!(text.contains(expected), "{expected:?} not in\n{text}");
    }
    let (csv_headers, csv) = &parts[1];
    assert!(csv_headers.contains("text/csv"), "{csv_headers}");
    assert!(csv_headers.contains("attachment"), "{csv_headers}");
    assert!(
        csv.starts_with("indicator;value\nday;2026-03-10\n"),
        "{csv}"
    );
    for expected in [
        "\nbandwidth_bytes;2469134\n",
        "\npeak_concurrent_sessions;2\n",
        "\npeak_concurrent_at;2026-03-10T10:00:00+01:00\n",
        "\nfailed_launches.reason.licences_exhausted;1\n",
    ] {
        assert!(csv.contains(expected), "{expected:?} not in\n{csv}");
    }
}

#[tokio::test]
async fn in_english_with_a_login() {
    let report = report();
    let (port, received) = sink(Behaviour {
        offer_auth: true,
        reject_rcpt: false,
    })
    .await;
    let mut smtp = settings(port);
    smtp.to = vec!["dsi@example.gouv.fr".into()];
    smtp.username = Some("bascule".into());
    smtp.password = Some("s3cret".into());
    assert!(!format!("{smtp:?}").contains("s3cret"));
    send_report(&smtp, &report, Lang::En).await.unwrap();
    let received = received.await.unwrap();
    let auth = STANDARD.decode(received.auth.unwrap()).unwrap();
    assert_eq!(auth, b"\0bascule\0s3cret");
    let parts = base64_parts(&received.data);
    assert!(
        parts[0].1.starts_with("Bascule — indicators of 2026-03-10"),
        "{}",
        parts[0].1
    );
    assert!(
        parts[0]
            .1
            .contains("Peak concurrent sessions                 2 at 10:00")
    );
    assert!(
        parts[0]
            .1
            .contains("  other                                  2.5 MB — 2 sessions, 2 users")
    );
}

#[tokio::test]
async fn refusals() {
    let report = report();
    // A recipient refused by the server.
    let (port, received) = sink(Behaviour {
        offer_auth: false,
        reject_rcpt: true,
    })
    .await;
    let error = send_report(&settings(port), &report, Lang::Fr)
        .await
        .unwrap_err();
    assert!(matches!(error, ReportError::Mail(_)), "{error:?}");
    assert!(
        error.message(Lang::Fr).starts_with("envoi du courriel"),
        "{error}"
    );
    received.abort();

    // Settings checked before connecting (port 9 would not answer anyway).
    let mut smtp = settings(9);
    smtp.to.clear();
    assert!(matches!(
        send_report(&smtp, &report, Lang::Fr).await,
        Err(ReportError::MailSettings(_))
    ));
    let mut smtp = settings(9);
    smtp.to = vec!["not an address".into()];
    let error = send_report(&smtp, &report, Lang::Fr).await.unwrap_err();
    assert!(
        matches!(error, ReportError::MailSettings(ref text) if text.contains("not an address")),
        "{error:?}"
    );
    let mut smtp = settings(9);
    smtp.username = Some("bascule".into());
    assert!(matches!(
        send_report(&smtp, &report, Lang::Fr).await,
        Err(ReportError::MailSettings(_))
    ));
    // No password in clear across the network.
    let mut smtp = settings(9);
    smtp.host = "smtp.example.gouv.fr".into();
    smtp.username = Some("bascule".into());
    smtp.password = Some("s3cret".into());
    let error = send_report(&smtp, &report, Lang::En).await.unwrap_err();
    assert!(
        matches!(error, ReportError::MailSettings(ref text) if text.contains("in clear")),
        "{error:?}"
    );
    // Nothing listens: an error, not a hang.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap().port();
    drop(listener);
    assert!(matches!(
        send_report(&settings(closed), &report, Lang::Fr).await,
        Err(ReportError::Mail(_))
    ));
}

#[test]
fn settings_from_configuration() {
    let smtp: SmtpSettings = serde_json::from_str(
        r#"{"host":"smtp.example.gouv.fr","port":587,"from":"bascule@example.gouv.fr","to":["dsi@example.gouv.fr"]}"#,
    )
    .unwrap();
    assert_eq!(smtp.security, SmtpSecurity::Starttls);
    assert_eq!(smtp.username, None);
    let tls: SmtpSecurity = serde_json::from_str("\"tls\"").unwrap();
    assert_eq!(tls, SmtpSecurity::Tls);
}
