#![warn(missing_docs)]
//! The second factor: TOTP (RFC 6238, HMAC-SHA1, 6 digits, 30-second steps), as every
//! authenticator app implements it.
//!
//! - [`TotpSecret`]: 20 random bytes, stored as base32; its `Debug` never shows it.
//! - [`provisioning_uri`] and [`qr_svg`]: the `otpauth://` URI for enrolment, and its QR code
//!   as an inline SVG document (rendered on the server; no script, no external reference).
//! - [`code_at`] and [`verify`]: pure, the time is passed in as unix seconds. [`verify`] accepts
//!   one step of clock skew either way, compares in constant time, and refuses a code whose
//!   step is not after the last one used (replay protection: the caller stores the returned
//!   step).
//!
//! HMAC and truncation come from `totp-rs`; QR encoding from `qrcode`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use std::fmt;

/// Length of a step, in seconds.
pub const STEP_SECONDS: u64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Steps of clock skew accepted either way.
pub const SKEW_STEPS: u64 = 1;
/// Bytes of a generated secret (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;
/// Shortest secret accepted by [`TotpSecret::from_base32`]: 128 bits (RFC 4226 minimum).
const MIN_SECRET_BYTES: usize = 16;
/// Longest secret accepted by [`TotpSecret::from_base32`]: 512 bits.
const MAX_SECRET_BYTES: usize = 64;

/// Why a stored secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Not RFC 4648 base32 (letters A-Z and digits 2-7).
    #[error("the TOTP secret is not valid base32 (letters A-Z and digits 2-7)")]
    NotBase32,
    /// Too short or too long.
    #[error("the TOTP secret is {bits} bits long; it must be from 128 to 512 bits")]
    Length {
        /// The secret's length in bits.
        bits: usize,
    },
}

/// Why a code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not 6 digits (spaces aside).
    #[error("the code must be 6 digits")]
    Malformed,
    /// Not the code of the current step, nor of the step before or after.
    #[error("the code is wrong or has expired")]
    Wrong,
    /// A right code, but of a step already used: each code works once.
    #[error("this code was already used; wait for the next one")]
    Replayed,
}

impl VerifyError {
    /// A stable code for logs and audit: `malformed`, `wrong` or `replayed`.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Malformed => "malformed",
            VerifyError::Wrong => "wrong",
            VerifyError::Replayed => "replayed",
        }
    }
}

/// Why no QR code could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QrError {
    /// The text does not fit in a QR code (about 2,300 bytes at error correction level M).
    #[error("the text ({0} bytes) is too long for a QR code")]
    TooLong(usize),
}

/// A TOTP shared secret. `Debug` prints `TotpSecret(<redacted>)`; equality is constant-time.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(totp_rs::Secret);

impl TotpSecret {
    /// 20 random bytes from the operating system's generator.
    pub fn generate() -> TotpSecret {
        TotpSecret(totp_rs::Secret::generate())
    }

    /// Parses a base32 secret (RFC 4648; case, spaces, dashes and `=` padding ignored) of 128 to
    /// 512 bits.
    pub fn from_base32(text: &str) -> Result<TotpSecret, SecretError> {
        let cleaned: String =
            text.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
        let cleaned = cleaned.trim_end_matches('=');
        if cleaned.is_empty() || !cleaned.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)) {
            return Err(SecretError::NotBase32);
        }
        let secret = totp_rs::Secret::try_from_base32(cleaned).map_err(|_| SecretError::NotBase32)?;
        let len = secret.as_ref().len();
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&len) {
            return Err(SecretError::Length { bits: len * 8 });
        }
        Ok(TotpSecret(secret))
    }

    /// The secret as unpadded upper-case base32, as authenticator apps and
    /// [`TotpSecret::from_base32`] take it.
    pub fn to_base32(&self) -> String {
        self.0.to_base32()
    }

    /// The `totp-rs` generator for this secret: SHA-1, 6 digits, 30 s, no skew (the skew is
    /// handled by [`verify`], step by step).
    fn totp(&self) -> totp_rs::Totp {
        // The secret's length was checked, and these parameters are RFC-compliant, so
        // `build_noncompliant` builds what `build` would, without a Result to unwrap.
        totp_rs::Builder::new()
            .with_algorithm(totp_rs::Algorithm::SHA1)
            .with_digits(DIGITS as u8)
            .with_step_duration(STEP_SECONDS)
            .with_skew(0)
            .with_secret(self.0.clone())
            .build_noncompliant()
    }
}

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// Characters left as they are in the URI: RFC 3986 unreserved ones; everything else
/// (`@`, space, `:`, `&`, non-ASCII…) is percent-encoded as UTF-8.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The `otpauth://` URI an authenticator app enrols from:
/// `otpauth://totp/Issuer:account?secret=…&issuer=Issuer&algorithm=SHA1&digits=6&period=30`,
/// with issuer and account percent-encoded (a `:` inside either becomes `%3A`). An empty
/// issuer is left out.
pub fn provisioning_uri(secret: &TotpSecret, issuer: &str, account: &str) -> String {
    let account = utf8_percent_encode(account, URI_COMPONENT);
    let secret = secret.to_base32();
    let tail = format!("algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}");
    if issuer.is_empty() {
        format!("otpauth://totp/{account}?secret={secret}&{tail}")
    } else {
        let issuer = utf8_percent_encode(issuer, URI_COMPONENT);
        format!("otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&{tail}")
    }
}

/// The QR code of `uri` as an SVG document to inline in a page: at least 200 px square, with
/// the standard 4-module quiet zone, black modules on white, error correction level M. It has
/// no XML prolog, no script, no style and no external reference: one `<rect>` and one `<path>`
/// with presentation attributes.
pub fn qr_svg(uri: &str) -> Result<String, QrError> {
    let code =
        QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::M).map_err(|_| QrError::TooLong(uri.len()))?;
    let document = code
        .render::<svg::Color<'_>>()
        .quiet_zone(true)
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // qrcode writes an XML declaration first: useless (and a bogus comment) inside HTML.
    let start = document.find("<svg").unwrap_or(0);
    Ok(document[start..].replacen("<svg ", "<svg role=\"img\" aria-label=\"QR code\" ", 1))
}

/// The 6-digit code of `secret` at `unix_seconds`.
pub fn code_at(secret: &TotpSecret, unix_seconds: u64) -> String {
    secret.totp().generate(unix_seconds).to_string()
}

/// Checks `code` (spaces ignored) against the steps around `unix_seconds`: the current one and
/// one on either side. Returns the matched step (`unix_seconds / 30` ± 1), which the caller
/// stores and passes back as `last_used_step`: a code whose step is not after it is
/// [`VerifyError::Replayed`]. The comparison is constant-time, and every candidate step is
/// compared, whatever matched first.
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    unix_seconds: u64,
    last_used_step: Option<u64>,
) -> Result<u64, VerifyError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::Malformed);
    }
    let totp = secret.totp();
    let current = unix_seconds / STEP_SECONDS;
    let mut fresh = None;
    let mut replayed = false;
    for step in current.saturating_sub(SKEW_STEPS)..=current.saturating_add(SKEW_STEPS) {
        let Some(time) = step.checked_mul(STEP_SECONDS) else { continue };
        if totp.check(&code, time).is_some() {
            if last_used_step.is_some_and(|last| step <= last) {
                replayed = true;
            } else if fresh.is_none() {
                fresh = Some(step);
            }
        }
    }
    match (fresh, replayed) {
        (Some(step), _) => Ok(step),
        (None, true) => Err(VerifyError::Replayed),
        (None, false) => Err(VerifyError::Wrong),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret: ASCII "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").expect("the RFC secret")
    }

    /// RFC 6238 appendix B, SHA-1: (T, 8-digit TOTP). The 6-digit code is the last 6 digits.
    const RFC_VECTORS: [(u64, &str); 6] = [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ];

    #[test]
    fn rfc_secret_is_the_ascii_digits() {
        assert_eq!(rfc_secret(), TotpSecret(totp_rs::Secret::from(b"12345678901234567890".to_vec())));
    }

    #[test]
    fn rfc6238_sha1_vectors_truncated_to_6_digits() {
        let secret = rfc_secret();
        for (t, eight) in RFC_VECTORS {
            assert_eq!(code_at(&secret, t), eight[2..], "T = {t}");
            assert_eq!(verify(&secret, &eight[2..], t, None), Ok(t / 30), "T = {t}");
        }
        assert_eq!(code_at(&secret, 59), "287082");
    }

    #[test]
    fn one_step_of_skew_is_accepted_either_way() {
        let secret = rfc_secret();
        let now = 1_111_111_111; // step 37037037
        let step = now / 30;
        let previous = code_at(&secret, now - 30);
        let next = code_at(&secret, now + 30);
        assert_eq!(verify(&secret, &previous, now, None), Ok(step - 1));
        assert_eq!(verify(&secret, &next, now, None), Ok(step + 1));
        assert_eq!(verify(&secret, &code_at(&secret, now), now, None), Ok(step));
    }

    #[test]
    fn two_steps_off_is_refused() {
        let secret = rfc_secret();
        let now = 1_111_111_111;
        assert_eq!(verify(&secret, &code_at(&secret, now - 60), now, None), Err(VerifyError::Wrong));
        assert_eq!(verify(&secret, &code_at(&secret, now + 60), now, None), Err(VerifyError::Wrong));
    }

    #[test]
    fn a_wrong_code_is_refused() {
        let secret = rfc_secret();
        let right = code_at(&secret, 59);
        let wrong = if right == "000000" { "000001" } else { "000000" };
        assert_eq!(verify(&secret, wrong, 59, None), Err(VerifyError::Wrong));
        let other = TotpSecret::generate();
        assert!(other != secret);
    }

    #[test]
    fn a_code_is_accepted_once() {
        let secret = rfc_secret();
        let now = 1_234_567_890;
        let code = code_at(&secret, now);
        let step = verify(&secret, &code, now, None).expect("first use");
        assert_eq!(verify(&secret, &code, now, Some(step)), Err(VerifyError::Replayed));
        assert_eq!(verify(&secret, &code, now + 20, Some(step)), Err(VerifyError::Replayed), "within skew");
        // An older code after a newer one was used is a replay too.
        let previous = code_at(&secret, now - 30);
        assert_eq!(verify(&secret, &previous, now, Some(step)), Err(VerifyError::Replayed));
        // The next step's code is fresh.
        let next = code_at(&secret, now + 30);
        assert_eq!(verify(&secret, &next, now + 30, Some(step)), Ok(step + 1));
    }

    #[test]
    fn malformed_codes_are_refused_and_spaces_ignored() {
        let secret = rfc_secret();
        for code in ["", "12345", "1234567", "12a456", "+12345", "-12345", "12345６", "２８７０８２", "94287082"]
        {
            assert_eq!(verify(&secret, code, 59, None), Err(VerifyError::Malformed), "{code:?}");
        }
        assert_eq!(verify(&secret, " 287 082 ", 59, None), Ok(1));
        assert_eq!(verify(&secret, "287\t082\n", 59, None), Ok(1));
    }

    #[test]
    fn times_at_the_edges_do_not_panic() {
        let secret = rfc_secret();
        assert!(matches!(verify(&secret, "123456", 0, None), Ok(0) | Err(VerifyError::Wrong)));
        assert!(matches!(
            verify(&secret, "123456", u64::MAX, Some(u64::MAX)),
            Err(VerifyError::Wrong | VerifyError::Replayed)
        ));
        assert_eq!(verify(&secret, &code_at(&secret, 0), 0, None), Ok(0));
        assert_eq!(code_at(&secret, u64::MAX).len(), 6);
    }

    #[test]
    fn base32_round_trip_and_leniency() {
        let secret = TotpSecret::generate();
        let text = secret.to_base32();
        assert_eq!(text.len(), 32, "20 bytes are 32 base32 characters");
        assert_eq!(TotpSecret::from_base32(&text), Ok(secret.clone()));
        let grouped: String =
            text.to_lowercase().as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c) + " ").collect();
        assert_eq!(TotpSecret::from_base32(&grouped), Ok(secret.clone()));
        assert_eq!(TotpSecret::from_base32(&format!("{text}====")), Ok(secret));
        assert_ne!(TotpSecret::generate().to_base32(), text, "two generated secrets differ");
    }

    #[test]
    fn bad_base32_is_refused() {
        assert_eq!(TotpSecret::from_base32(""), Err(SecretError::NotBase32));
        assert_eq!(TotpSecret::from_base32("GEZDGNBVGY3TQOJ1"), Err(SecretError::NotBase32), "1 is not base32");
        assert_eq!(TotpSecret::from_base32("GEZDGNBVGY3TQOJQ!"), Err(SecretError::NotBase32));
        assert_eq!(TotpSecret::from_base32("GEZDGNBVGY3TQOJQ"), Err(SecretError::Length { bits: 80 }));
        assert_eq!(TotpSecret::from_base32(&"A".repeat(200)), Err(SecretError::Length { bits: 1000 }));
    }

    #[test]
    fn debug_does_not_print_the_secret() {
        let secret = rfc_secret();
        let debug = format!("{secret:?} {:?}", Some(&secret));
        assert!(!debug.contains("GEZDG") && !debug.contains("12345") && !debug.contains("49"), "{debug}");
        assert!(debug.contains("redacted"));
    }

    #[test]
    fn provisioning_uri_is_percent_encoded() {
        let secret = rfc_secret();
        let uri = provisioning_uri(&secret, "Bascule Gateway", "jane doe@example.com");
        assert_eq!(
            uri,
            "otpauth://totp/Bascule%20Gateway:jane%20doe%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Bascule%20Gateway&algorithm=SHA1&digits=6&period=30"
        );
        let uri = provisioning_uri(&secret, "Acme & Co", "dom\\al:ice");
        assert!(uri.starts_with("otpauth://totp/Acme%20%26%20Co:dom%5Cal%3Aice?"), "{uri}");
        assert!(uri.contains("&issuer=Acme%20%26%20Co&"), "{uri}");
        assert_eq!(
            provisioning_uri(&secret, "", "bob"),
            "otpauth://totp/bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=SHA1&digits=6&period=30"
        );
        assert!(provisioning_uri(&secret, "B", "é").contains("/B:%C3%A9?"));
    }

    #[test]
    fn provisioning_uri_parses_back_with_totp_rs() {
        let secret = TotpSecret::generate();
        let uri = provisioning_uri(&secret, "Bascule", "jane doe@example.com");
        let parsed = totp_rs::Totp::from_url(&uri).expect("totp-rs parses the URI");
        assert_eq!(parsed.account_name(), "jane doe@example.com");
        assert_eq!(parsed.issuer(), Some("Bascule"));
        assert_eq!(parsed.digits(), 6);
        assert_eq!(parsed.step(), 30);
        assert_eq!(parsed.secret().to_base32(), secret.to_base32());
        assert_eq!(parsed.generate(1_700_000_000).to_string(), code_at(&secret, 1_700_000_000));
    }

    #[test]
    fn qr_svg_is_a_self_contained_svg() {
        let uri = provisioning_uri(&rfc_secret(), "Bascule", "jane doe@example.com");
        let svg = qr_svg(&uri).expect("a QR code");
        assert!(svg.starts_with("<svg "), "{}", &svg[..60]);
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("<path") && svg.contains("<rect"));
        assert!(svg.contains("fill=\"#000000\"") && svg.contains("fill=\"#ffffff\""));
        assert!(svg.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        for forbidden in ["<script", "style=", "href", "<?xml", "url(", "<image", "on"] {
            let found = if forbidden == "on" { svg.contains(" on") } else { svg.contains(forbidden) };
            assert!(!found, "{forbidden} in the SVG");
        }
        let width: u32 = svg
            .split("width=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .and_then(|w| w.parse().ok())
            .expect("a width");
        assert!((200..=320).contains(&width), "width {width}");
    }

    #[test]
    fn qr_svg_refuses_too_long_text() {
        assert_eq!(qr_svg(&"x".repeat(5000)), Err(QrError::TooLong(5000)));
    }
}
