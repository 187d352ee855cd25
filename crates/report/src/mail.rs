//! Mailing the report: the readable summary in the body, the CSV attached.
//!
//! SMTP with lettre on tokio; TLS (implicit or STARTTLS) with rustls on the ring provider, the
//! server's certificate checked against the system's trust store (`/etc/ssl/certs`, where an
//! administration installs its own CA).

use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use crate::compute::DailyReport;
use crate::export::{text_summary, to_csv};
use crate::{Lang, ReportError, Result};

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, required (usually port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
    /// No encryption (a relay on the same host or network only). A login and password are
    /// refused with it unless the server is on this machine (loopback).
    None,
}

/// Where and how to send the report. The password is given in clear by the caller (which
/// decrypts it from the configuration); `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpSettings {
    /// The SMTP server's name (also the name its certificate must carry).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is protected.
    #[serde(default)]
    pub security: SmtpSecurity,
    /// The login, if the server wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// The password, with `username`.
    #[serde(default)]
    pub password: Option<String>,
    /// The sender, e.g. `Bascule <bascule@example.gouv.fr>`.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

/// How long one SMTP command may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

fn mailbox(text: &str) -> Result<Mailbox> {
    text.trim()
        .parse()
        .map_err(|error| ReportError::MailSettings(format!("address {text:?}: {error}")))
}

fn mail_error(error: impl std::fmt::Display) -> ReportError {
    ReportError::Mail(error.to_string())
}

/// The subject of the report's mail.
fn subject(report: &DailyReport, lang: Lang) -> String {
    let partial = if report.complete {
        ""
    } else {
        lang.pick(" (journée en cours)", " (day in progress)")
    };
    match lang {
        Lang::Fr => format!("Bascule — indicateurs du {}{partial}", report.day),
        Lang::En => format!("Bascule — indicators of {}{partial}", report.day),
    }
}

/// Builds the message: the summary in `lang` as text, the CSV attached
/// (`bascule-<day>.csv`), both UTF-8 in base64.
pub(crate) fn build_message(
    smtp: &SmtpSettings,
    report: &DailyReport,
    lang: Lang,
) -> Result<Message> {
    if smtp.to.is_empty() {
        return Err(ReportError::MailSettings("no recipient".into()));
    }
    let mut builder = Message::builder()
        .from(mailbox(&smtp.from)?)
        .subject(subject(report, lang));
    for to in &smtp.to {
        builder = builder.to(mailbox(to)?);
    }
    let text = Body::new_with_encoding(text_summary(report, lang), ContentTransferEncoding::Base64)
        .map_err(|_| mail_error("cannot encode the text"))?;
    let csv = Body::new_with_encoding(to_csv(report).into_bytes(), ContentTransferEncoding::Base64)
        .map_err(|_| mail_error("cannot encode the CSV"))?;
    let csv_type = ContentType::parse("text/csv; charset=utf-8").map_err(mail_error)?;
    builder
        .multipart(
            MultiPart::mixed()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    Attachment::new(format!("bascule-{}.csv", report.day)).body(csv, csv_type),
                ),
        )
        .map_err(mail_error)
}

/// Whether `host` names this machine (`localhost`, 127.0.0.0/8, `::1`).
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Sends the report to `smtp.to`: the summary in `lang`, the CSV attached.
pub async fn send_report(smtp: &SmtpSettings, report: &DailyReport, lang: Lang) -> Result<()> {
    let message = build_message(smtp, report, lang)?;
    let builder = match smtp.security {
        SmtpSecurity::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).map_err(mail_error)?
        }
        SmtpSecurity::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(mail_error)?
        }
        SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
    };
    let mut builder = builder.port(smtp.port).timeout(Some(SMTP_TIMEOUT));
    match (&smtp.username, &smtp.password) {
        (Some(_), Some(_)) if smtp.security == SmtpSecurity::None && !is_loopback(&smtp.host) => {
            return Err(ReportError::MailSettings(format!(
                "a password would cross the network in clear to {}: use starttls or tls",
                smtp.host
            )));
        }
        (Some(username), Some(password)) => {
            builder = builder.credentials(Credentials::new(username.clone(), password.clone()));
        }
        (None, None) => {}
        _ => {
            return Err(ReportError::MailSettings(
                "a username needs a password and the other way round".into(),
            ));
        }
    }
    builder.build().send(message).await.map_err(mail_error)?;
    Ok(())
}
