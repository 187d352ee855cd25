//! The sans-IO part: what to send, and whether the bytes received so far are a valid banner.

use std::fmt;

/// The remote-desktop protocol a host is expected to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// RDP: the client speaks first (X.224 Connection Request), the server confirms.
    Rdp,
    /// VNC (RFB): the server speaks first with its ProtocolVersion.
    Vnc,
}

impl Protocol {
    /// `"rdp"` or `"vnc"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rdp => "rdp",
            Protocol::Vnc => "vnc",
        }
    }

    /// `"RDP"` or `"VNC"`, for messages.
    fn name(self) -> &'static str {
        match self {
            Protocol::Rdp => "RDP",
            Protocol::Vnc => "VNC",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What [`check_banner`] decided from the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BannerCheck {
    /// The bytes are a valid beginning: read more.
    NeedMore,
    /// A valid banner; the detail says what was found, e.g. `"RFB 003.008"` or
    /// `"RDP, TLS selected"`.
    Ok(String),
    /// Not a valid banner; the reason says why, in plain English.
    Bad(String),
}

/// TPKT header (4) + X.224 Connection Confirm fixed part (LI, code, dst-ref, src-ref, class: 7).
const X224_FIXED: usize = 4 + 7;
/// The longest TPKT an X.224 Connection Confirm can fill: the length indicator is at most 254.
const X224_MAX: usize = 4 + 1 + 254;
/// The RFB ProtocolVersion message: `RFB xxx.yyy\n`.
const RFB_VERSION_LEN: usize = 12;

/// The X.224 Connection Request a probe sends to an RDP host: a TPKT header (`03 00 00 13`),
/// an X.224 CR TPDU (`0E E0`, dst-ref 0, src-ref 0, class 0) without cookie, and an RDP_NEG_REQ
/// (`01 00 08 00`) asking for TLS or CredSSP (requestedProtocols PROTOCOL_SSL | PROTOCOL_HYBRID
/// = 3). It carries no user name and no credential.
const CONNECTION_REQUEST: [u8; 19] = [
    0x03, 0x00, 0x00, 0x13, // TPKT: version 3, reserved, length 19
    0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, // X.224 CR: LI 14, CR, dst-ref, src-ref, class 0
    0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00, // RDP_NEG_REQ: type 1, flags 0, length 8, SSL | HYBRID
];

/// The X.224 Connection Request a probe sends to an RDP host (19 bytes): a TPKT header, an
/// X.224 CR TPDU without cookie, and an RDP_NEG_REQ asking for TLS or CredSSP
/// (PROTOCOL_SSL | PROTOCOL_HYBRID). It carries no user name and no credential.
pub fn rdp_connection_request() -> Vec<u8> {
    CONNECTION_REQUEST.to_vec()
}

/// Decides whether `bytes`, everything received from the host so far, is a valid banner of
/// `protocol`. Returns [`BannerCheck::NeedMore`] only while the bytes are a valid beginning, and
/// never for more than 259 bytes. Never panics, whatever the bytes.
pub fn check_banner(protocol: Protocol, bytes: &[u8]) -> BannerCheck {
    match protocol {
        Protocol::Vnc => check_rfb(bytes),
        Protocol::Rdp => check_x224(bytes),
    }
}

/// `RFB ddd.ddd\n`, byte by byte: a wrong byte is `Bad` as soon as it arrives.
fn check_rfb(bytes: &[u8]) -> BannerCheck {
    for (i, &b) in bytes.iter().take(RFB_VERSION_LEN).enumerate() {
        let ok = match i {
            0 => b == b'R',
            1 => b == b'F',
            2 => b == b'B',
            3 => b == b' ',
            4..=6 | 8..=10 => b.is_ascii_digit(),
            7 => b == b'.',
            _ => b == b'\n',
        };
        if !ok {
            return BannerCheck::Bad(format!(
                "not a VNC server: expected an RFB ProtocolVersion such as \"RFB 003.008\\n\", got {}",
                describe(bytes)
            ));
        }
    }
    if bytes.len() < RFB_VERSION_LEN {
        return BannerCheck::NeedMore;
    }
    // Bytes 4..11 are ASCII digits and a dot (checked above).
    let version = String::from_utf8_lossy(&bytes[4..11]).into_owned();
    if &bytes[4..7] != b"003" {
        return BannerCheck::Bad(format!(
            "unsupported RFB version {version}: the server speaks VNC, but only RFB 3.x (003.003, 003.007, 003.008) is supported"
        ));
    }
    if let Some(reason) = rfb33_refusal(&bytes[RFB_VERSION_LEN..]).filter(|_| version == "003.003") {
        return BannerCheck::Bad(reason);
    }
    BannerCheck::Ok(format!("RFB {version}"))
}

/// An RFB 3.3 server that refuses a connection at once sends, right after its version and in
/// the same segment, security type 0 and a reason: TigerVNC does so for a blacklisted address.
/// `rest` is what followed the version; `None` when it is not such a refusal (usually empty: a
/// server that accepts waits for the client's version).
fn rfb33_refusal(rest: &[u8]) -> Option<String> {
    if rest.get(..4)? != [0, 0, 0, 0] {
        return None;
    }
    let reason = match rest.get(4..8) {
        Some(len) => {
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            let text = &rest[8..];
            let text = text.get(..usize::try_from(len).unwrap_or(usize::MAX)).unwrap_or(text);
            let text = String::from_utf8_lossy(text.get(..200).unwrap_or(text)).into_owned();
            format!("\"{}\"", text.escape_default())
        }
        None => "no reason given".to_owned(),
    };
    let hint = if reason.contains("security failures") {
        " (TigerVNC blacklists an address after 5 connections that did not log in; a successful login clears it)"
    } else {
        ""
    };
    Some(format!("the VNC server refuses connections: {reason}{hint}"))
}

/// TPKT + X.224 Connection Confirm + optional RDP_NEG_RSP / RDP_NEG_FAILURE.
fn check_x224(bytes: &[u8]) -> BannerCheck {
    let not_rdp = |what: &str| BannerCheck::Bad(format!("not an RDP server: {what}; it sent {}", describe(bytes)));
    match bytes.first() {
        None => return BannerCheck::NeedMore,
        Some(0x03) => {}
        Some(_) => return not_rdp("the reply does not start with a TPKT header (03 00)"),
    }
    match bytes.get(1) {
        None => return BannerCheck::NeedMore,
        Some(0x00) => {}
        Some(_) => return not_rdp("the reply does not start with a TPKT header (03 00)"),
    }
    let (Some(&hi), Some(&lo)) = (bytes.get(2), bytes.get(3)) else {
        return BannerCheck::NeedMore;
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    if !(X224_FIXED..=X224_MAX).contains(&len) {
        return not_rdp(&format!(
            "the TPKT length {len} cannot hold an X.224 Connection Confirm ({X224_FIXED} to {X224_MAX} bytes)"
        ));
    }
    let Some(packet) = bytes.get(..len) else {
        return BannerCheck::NeedMore;
    };
    let li = usize::from(packet[4]);
    if li + 5 != len {
        return not_rdp(&format!("the X.224 length indicator {li} does not match the TPKT length {len}"));
    }
    let code = packet[5];
    match code & 0xF0 {
        0xD0 => {}
        0x80 => {
            return BannerCheck::Bad(
                "the RDP server refused the connection with an X.224 Disconnect Request".to_owned(),
            );
        }
        0x70 => {
            return BannerCheck::Bad("the RDP server answered with an X.224 TPDU Error".to_owned());
        }
        _ => {
            return not_rdp(&format!("expected an X.224 Connection Confirm (0xD0), got TPDU code 0x{code:02X}"));
        }
    }
    let neg = &packet[X224_FIXED..];
    if neg.is_empty() {
        // An RDP server that predates negotiation (RDP 5.x): standard RDP security only.
        return BannerCheck::Ok("RDP, standard RDP security (no negotiation response)".to_owned());
    }
    let (Some(&kind), Some(&nl), Some(&nh)) = (neg.first(), neg.get(2), neg.get(3)) else {
        return not_rdp(&format!("the negotiation data after the Connection Confirm is {} bytes long", neg.len()));
    };
    let neg_len = usize::from(u16::from_le_bytes([nl, nh]));
    let Some(value) = neg.get(4..8).filter(|_| neg_len == 8) else {
        return not_rdp(&format!(
            "the negotiation structure is {} bytes long with a length field of {neg_len}, expected 8",
            neg.len()
        ));
    };
    let value = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
    match kind {
        0x02 => BannerCheck::Ok(format!("RDP, {} selected", selected_protocol(value))),
        0x03 => BannerCheck::Bad(format!(
            "the RDP server refused TLS and CredSSP: negotiation failure {} ({value})",
            failure_code(value)
        )),
        other => not_rdp(&format!(
            "the negotiation structure has type 0x{other:02X}, expected a response (0x02) or a failure (0x03)"
        )),
    }
}

/// RDP_NEG_RSP selectedProtocol, in words.
fn selected_protocol(value: u32) -> String {
    match value {
        0x0000_0000 => "standard RDP security".to_owned(),
        0x0000_0001 => "TLS".to_owned(),
        0x0000_0002 => "CredSSP (NLA)".to_owned(),
        0x0000_0004 => "RDSTLS".to_owned(),
        0x0000_0008 => "CredSSP with Early User Authorization (NLA)".to_owned(),
        0x0000_0010 => "RDS AAD authentication".to_owned(),
        0x0000_0020 => "RDS Kerberos-only authentication".to_owned(),
        other => format!("protocol 0x{other:08X}"),
    }
}

/// RDP_NEG_FAILURE failureCode (MS-RDPBCGR 2.2.1.2.2), as its name.
fn failure_code(value: u32) -> &'static str {
    match value {
        1 => "SSL_REQUIRED_BY_SERVER",
        2 => "SSL_NOT_ALLOWED_BY_SERVER (the server only offers standard RDP security)",
        3 => "SSL_CERT_NOT_ON_SERVER (the server has no certificate for TLS)",
        4 => "INCONSISTENT_FLAGS",
        5 => "HYBRID_REQUIRED_BY_SERVER",
        6 => "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER",
        _ => "unknown failure code",
    }
}

/// The received bytes for a message: a guess at what the peer is, and the first bytes escaped.
fn describe(bytes: &[u8]) -> String {
    const SHOWN: usize = 24;
    let guess = if bytes.starts_with(b"RFB ") {
        " (an RFB banner: this looks like a VNC server)"
    } else if bytes.starts_with(&[0x03, 0x00]) {
        " (a TPKT header: this looks like an RDP server)"
    } else if bytes.starts_with(b"SSH-") {
        " (this looks like an SSH server)"
    } else if bytes.starts_with(b"HTTP/") || bytes.starts_with(b"<") {
        " (this looks like an HTTP server)"
    } else if bytes.starts_with(&[0x16, 0x03]) || bytes.starts_with(&[0x15, 0x03]) {
        " (a TLS record: this looks like a TLS server)"
    } else {
        ""
    };
    let shown = bytes.get(..SHOWN).unwrap_or(bytes);
    let more = if bytes.len() > SHOWN { "…" } else { "" };
    format!("{} bytes \"{}{more}\"{guess}", bytes.len(), shown.escape_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What xrdp 0.9 answers: Connection Confirm, RDP_NEG_RSP selecting TLS.
    const XRDP_TLS: [u8; 19] = [
        0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x1f, 0x08, 0x00, 0x01, 0x00, 0x00,
        0x00,
    ];

    fn confirm(neg: &[u8]) -> Vec<u8> {
        let total = 11 + neg.len();
        let mut out = vec![0x03, 0x00, 0x00, total as u8, (total - 5) as u8, 0xd0, 0, 0, 0, 0, 0];
        out.extend_from_slice(neg);
        out
    }

    fn ok(check: BannerCheck) -> String {
        match check {
            BannerCheck::Ok(detail) => detail,
            other => panic!("expected Ok, got {other:?}"),
        }
    }

    fn bad(check: BannerCheck) -> String {
        match check {
            BannerCheck::Bad(reason) => reason,
            other => panic!("expected Bad, got {other:?}"),
        }
    }

    #[test]
    fn the_connection_request_is_the_documented_19_bytes() {
        assert_eq!(
            rdp_connection_request(),
            [
                0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x03, 0x00,
                0x00, 0x00
            ]
        );
    }

    #[test]
    fn rfb_versions_3x_are_accepted_and_reported() {
        for v in ["003.003", "003.007", "003.008", "003.889", "003.005"] {
            let banner = format!("RFB {v}\n");
            assert_eq!(ok(check_banner(Protocol::Vnc, banner.as_bytes())), format!("RFB {v}"));
        }
    }

    #[test]
    fn rfb_prefixes_need_more_and_trailing_bytes_are_ignored() {
        let banner = b"RFB 003.008\n";
        for n in 0..banner.len() {
            assert_eq!(check_banner(Protocol::Vnc, &banner[..n]), BannerCheck::NeedMore, "prefix of {n}");
        }
        // Servers may send the security types right after in the same segment (RFB 3.3).
        assert_eq!(ok(check_banner(Protocol::Vnc, b"RFB 003.003\n\x00\x00\x00\x01")), "RFB 003.003");
    }

    #[test]
    fn an_rfb_3_3_refusal_is_bad_with_its_reason() {
        // What TigerVNC sends to a blacklisted address, in one segment.
        let mut refusal = b"RFB 003.003\n\x00\x00\x00\x00\x00\x00\x00\x1a".to_vec();
        refusal.extend_from_slice(b"Too many security failures");
        let reason = bad(check_banner(Protocol::Vnc, &refusal));
        assert!(reason.starts_with("the VNC server refuses connections: \"Too many security failures\""), "{reason}");
        assert!(reason.contains("TigerVNC blacklists"), "{reason}");
        let reason = bad(check_banner(Protocol::Vnc, &refusal[..28]));
        assert!(reason.ends_with("\"Too many\""), "{reason}");
        let reason = bad(check_banner(Protocol::Vnc, &refusal[..16]));
        assert!(reason.ends_with("no reason given"), "{reason}");
        // Only security type 0 after a 3.3 version is a refusal; 3.8 servers never send it first.
        assert_eq!(ok(check_banner(Protocol::Vnc, &refusal[..15])), "RFB 003.003");
        assert_eq!(ok(check_banner(Protocol::Vnc, b"RFB 003.003\n\x00\x00\x00\x02")), "RFB 003.003");
        assert_eq!(ok(check_banner(Protocol::Vnc, b"RFB 003.008\n\x00\x00\x00\x00")), "RFB 003.008");
    }

    #[test]
    fn rfb_wrong_bytes_are_bad_at_once_with_a_reason() {
        let reason = bad(check_banner(Protocol::Vnc, b"SSH-2.0-OpenSSH_9.2\r\n"));
        assert!(reason.contains("not a VNC server") && reason.contains("SSH server"), "{reason}");
        let reason = bad(check_banner(Protocol::Vnc, b"RFB 003x"));
        assert!(reason.contains("RFB 003x"), "{reason}");
        let reason = bad(check_banner(Protocol::Vnc, b"H"));
        assert!(reason.contains("1 bytes"), "{reason}");
        let reason = bad(check_banner(Protocol::Vnc, b"RFB 004.001\n"));
        assert!(reason.contains("unsupported RFB version 004.001"), "{reason}");
        let reason = bad(check_banner(Protocol::Vnc, b"RFB 003.008\r"));
        assert!(reason.contains("not a VNC server"), "{reason}");
        let reason = bad(check_banner(Protocol::Vnc, &XRDP_TLS));
        assert!(reason.contains("RDP server"), "{reason}");
    }

    #[test]
    fn rdp_responses_report_the_selected_protocol() {
        assert_eq!(ok(check_banner(Protocol::Rdp, &XRDP_TLS)), "RDP, TLS selected");
        assert_eq!(ok(check_banner(Protocol::Rdp, &confirm(&[2, 0, 8, 0, 2, 0, 0, 0]))), "RDP, CredSSP (NLA) selected");
        assert_eq!(
            ok(check_banner(Protocol::Rdp, &confirm(&[2, 0, 8, 0, 0, 0, 0, 0]))),
            "RDP, standard RDP security selected"
        );
        assert_eq!(
            ok(check_banner(Protocol::Rdp, &confirm(&[2, 0, 8, 0, 0, 1, 0, 0]))),
            "RDP, protocol 0x00000100 selected"
        );
        assert_eq!(
            ok(check_banner(Protocol::Rdp, &confirm(&[]))),
            "RDP, standard RDP security (no negotiation response)"
        );
        // Trailing bytes after the TPKT (none expected) do not matter.
        let mut more = XRDP_TLS.to_vec();
        more.extend_from_slice(b"extra");
        assert_eq!(ok(check_banner(Protocol::Rdp, &more)), "RDP, TLS selected");
    }

    #[test]
    fn rdp_negotiation_failures_are_bad_with_the_code() {
        let reason = bad(check_banner(Protocol::Rdp, &confirm(&[3, 0, 8, 0, 2, 0, 0, 0])));
        assert!(reason.contains("SSL_NOT_ALLOWED_BY_SERVER") && reason.contains("(2)"), "{reason}");
        let reason = bad(check_banner(Protocol::Rdp, &confirm(&[3, 0, 8, 0, 99, 0, 0, 0])));
        assert!(reason.contains("unknown failure code (99)"), "{reason}");
    }

    #[test]
    fn rdp_prefixes_need_more() {
        for n in 0..XRDP_TLS.len() {
            assert_eq!(check_banner(Protocol::Rdp, &XRDP_TLS[..n]), BannerCheck::NeedMore, "prefix of {n}");
        }
    }

    #[test]
    fn rdp_malformed_replies_are_bad_with_a_reason() {
        let reason = bad(check_banner(Protocol::Rdp, b"RFB 003.008\n"));
        assert!(reason.contains("not an RDP server") && reason.contains("VNC server"), "{reason}");
        let reason = bad(check_banner(Protocol::Rdp, b"\x03\x01"));
        assert!(reason.contains("TPKT"), "{reason}");
        let reason = bad(check_banner(Protocol::Rdp, b"\x03\x00\x00\x05"));
        assert!(reason.contains("TPKT length 5"), "{reason}");
        let reason = bad(check_banner(Protocol::Rdp, b"\x03\x00\xff\xff"));
        assert!(reason.contains("TPKT length 65535"), "{reason}");
        let mut li = XRDP_TLS;
        li[4] = 0x0d;
        assert!(bad(check_banner(Protocol::Rdp, &li)).contains("length indicator 13"));
        let mut dr = XRDP_TLS;
        dr[5] = 0x80;
        assert!(bad(check_banner(Protocol::Rdp, &dr)).contains("Disconnect Request"));
        let mut cr = XRDP_TLS;
        cr[5] = 0xe0;
        assert!(bad(check_banner(Protocol::Rdp, &cr)).contains("TPDU code 0xE0"));
        let reason = bad(check_banner(Protocol::Rdp, &confirm(&[2, 0, 8])));
        assert!(reason.contains("3 bytes long"), "{reason}");
        let reason = bad(check_banner(Protocol::Rdp, &confirm(&[2, 0, 9, 0, 1, 0, 0, 0])));
        assert!(reason.contains("length field of 9"), "{reason}");
        let reason = bad(check_banner(Protocol::Rdp, &confirm(&[7, 0, 8, 0, 1, 0, 0, 0])));
        assert!(reason.contains("type 0x07"), "{reason}");
    }

    #[test]
    fn long_garbage_is_described_shortly() {
        let garbage = vec![0xffu8; 4000];
        let reason = bad(check_banner(Protocol::Vnc, &garbage));
        assert!(reason.len() < 200 && reason.contains("4000 bytes"), "{reason}");
    }

    /// A small deterministic generator (xorshift64*), so the test needs no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// The invariants that hold for any input: no panic, `NeedMore` only for short inputs, and
    /// the decision is stable once made (more bytes never turn Ok into Bad or the reverse).
    fn check_invariants(bytes: &[u8]) {
        // The one decision that more bytes may change: an RFB 3.3 version alone is Ok, and the
        // same version followed by security type 0 (a refusal) is Bad.
        let rfb33_refusal = bytes.starts_with(b"RFB 003.003\n\0\0\0\0");
        for protocol in [Protocol::Vnc, Protocol::Rdp] {
            let full = check_banner(protocol, bytes);
            if bytes.len() >= X224_MAX {
                assert_ne!(full, BannerCheck::NeedMore, "{protocol} NeedMore for {} bytes", bytes.len());
            }
            if let BannerCheck::Bad(reason) | BannerCheck::Ok(reason) = &full {
                assert!(!reason.is_empty());
            }
            // Every prefix either needs more or already gives the same decision.
            let mut decided = None;
            for n in 0..=bytes.len() {
                let check = check_banner(protocol, &bytes[..n]);
                match (&decided, check) {
                    (_, BannerCheck::NeedMore) => {
                        assert!(decided.is_none(), "{protocol}: NeedMore after a decision on {bytes:?}")
                    }
                    (None, BannerCheck::Ok(_)) => decided = Some(true),
                    (None, BannerCheck::Bad(_)) => decided = Some(false),
                    (Some(d), BannerCheck::Ok(_)) => assert!(*d, "{protocol}: Bad then Ok on {bytes:?}"),
                    (Some(true), BannerCheck::Bad(_)) if protocol == Protocol::Vnc && rfb33_refusal => {
                        decided = Some(false)
                    }
                    (Some(d), BannerCheck::Bad(_)) => assert!(!*d, "{protocol}: Ok then Bad on {bytes:?}"),
                }
            }
        }
    }

    #[test]
    fn random_garbage_and_truncations_never_panic() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..3000 {
            let len = rng.below(300);
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            check_invariants(&bytes);
        }
        // Inputs that start right, so that the deeper branches are reached.
        for _ in 0..3000 {
            let mut bytes = vec![0x03, 0x00, 0x00, rng.below(40) as u8];
            let len = rng.below(40);
            bytes.extend((0..len).map(|_| rng.next() as u8));
            check_invariants(&bytes);
        }
        check_invariants(&[]);
    }

    #[test]
    fn mutations_of_valid_banners_never_panic() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let seeds: Vec<Vec<u8>> = vec![
            b"RFB 003.008\n".to_vec(),
            b"RFB 003.003\n\x00\x00\x00\x01".to_vec(),
            b"RFB 003.003\n\x00\x00\x00\x00\x00\x00\x00\x1aToo many security failures".to_vec(),
            XRDP_TLS.to_vec(),
            confirm(&[3, 0, 8, 0, 1, 0, 0, 0]),
            confirm(&[]),
            rdp_connection_request(),
        ];
        for seed in &seeds {
            // Every single-bit flip, every truncation.
            for i in 0..seed.len() {
                for bit in 0..8 {
                    let mut m = seed.clone();
                    m[i] ^= 1 << bit;
                    check_invariants(&m);
                }
                check_invariants(&seed[..i]);
            }
            // Random multi-byte mutations: overwrite, insert, delete, extend.
            for _ in 0..500 {
                let mut m = seed.clone();
                for _ in 0..1 + rng.below(4) {
                    match rng.below(4) {
                        0 if !m.is_empty() => {
                            let i = rng.below(m.len());
                            m[i] = rng.next() as u8;
                        }
                        1 => {
                            let i = rng.below(m.len() + 1);
                            m.insert(i, rng.next() as u8);
                        }
                        2 if !m.is_empty() => {
                            let i = rng.below(m.len());
                            m.remove(i);
                        }
                        _ => m.extend((0..rng.below(300)).map(|_| rng.next() as u8)),
                    }
                }
                check_invariants(&m);
            }
        }
    }
}
