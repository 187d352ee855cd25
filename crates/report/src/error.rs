//! What can go wrong, with a message in French or English for a person ([`ReportError::message`]).

use bascule_store::StoreError;
use thiserror::Error;

use crate::Lang;

/// What went wrong while computing, exporting, drawing or sending a report.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// A site range is not an IPv4 or IPv6 CIDR.
    #[error(
        "invalid address range {range:?}: expected a CIDR such as 10.20.0.0/16 or 2001:db8::/32"
    )]
    InvalidRange {
        /// The range as written.
        range: String,
    },
    /// A stored RTT histogram does not have [`crate::RTT_BUCKETS`] counts.
    #[error("RTT histogram with {found} buckets, expected {expected}")]
    HistogramShape {
        /// The number of counts found.
        found: usize,
        /// [`crate::RTT_BUCKETS`].
        expected: usize,
    },
    /// A date or time computation failed (a day out of range, a time zone without that day).
    #[error("time: {0}")]
    Time(String),
    /// A stored report cannot be read back, or a report cannot be written as JSON.
    #[error("report JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A chart could not be drawn.
    #[error("chart: {0}")]
    Chart(String),
    /// The mail settings are wrong (an address, no recipient).
    #[error("mail settings: {0}")]
    MailSettings(String),
    /// The mail could not be built or sent.
    #[error("mail: {0}")]
    Mail(String),
    /// The schedule is not a valid cron expression, or never fires.
    #[error("schedule {pattern:?}: {detail}")]
    Schedule {
        /// The cron expression.
        pattern: String,
        /// What is wrong.
        detail: String,
    },
}

impl ReportError {
    /// The message for a person, in `lang` (technical details stay in English).
    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (_, Lang::En) => self.to_string(),
            (ReportError::Store(error), Lang::Fr) => format!("base de données : {error}"),
            (ReportError::InvalidRange { range }, Lang::Fr) => format!(
                "plage d'adresses {range:?} invalide : un CIDR est attendu, par exemple 10.20.0.0/16 ou 2001:db8::/32"
            ),
            (ReportError::HistogramShape { found, expected }, Lang::Fr) => {
                format!("histogramme de RTT à {found} classes au lieu de {expected}")
            }
            (ReportError::Time(detail), Lang::Fr) => format!("date ou heure : {detail}"),
            (ReportError::Json(error), Lang::Fr) => format!("rapport JSON : {error}"),
            (ReportError::Chart(detail), Lang::Fr) => format!("graphique : {detail}"),
            (ReportError::MailSettings(detail), Lang::Fr) => {
                format!("paramètres de messagerie : {detail}")
            }
            (ReportError::Mail(detail), Lang::Fr) => format!("envoi du courriel : {detail}"),
            (ReportError::Schedule { pattern, detail }, Lang::Fr) => {
                format!("planification {pattern:?} : {detail}")
            }
        }
    }
}

pub(crate) fn time_error(error: impl std::fmt::Display) -> ReportError {
    ReportError::Time(error.to_string())
}
