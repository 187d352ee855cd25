//! VNC Authentication (RFC 6143 §7.2.2).

use des::Des;
use des::cipher::{BlockEncrypt, KeyInit};

/// The 16-byte response to a VNC Authentication challenge: the challenge
/// encrypted with DES-ECB, keyed by the password truncated / zero-padded to
/// 8 bytes with the bits of each byte reversed (the historical VNC quirk).
pub(crate) fn vnc_auth_response(password: &str, challenge: &[u8; 16]) -> [u8; 16] {
    let mut key = [0u8; 8];
    for (k, b) in key.iter_mut().zip(password.as_bytes()) {
        *k = b.reverse_bits();
    }
    let cipher = Des::new(&key.into());
    let mut out = *challenge;
    for block in out.chunks_exact_mut(8) {
        cipher.encrypt_block(block.into());
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn matches_openssl_vector() {
        // Computed independently with `openssl enc -des-ecb -K 0e86ceceeef64e26 -nopad`
        // over the bytes 0..16 (key = "password" with bits reversed).
        let challenge: [u8; 16] = core::array::from_fn(|i| i as u8);
        let expected = [
            0xb8, 0x66, 0x92, 0x41, 0x25, 0xc8, 0xee, 0xbb, 0x9d, 0xeb, 0xc1, 0xdb, 0x61, 0xc5,
            0x38, 0xe2,
        ];
        assert_eq!(vnc_auth_response("password", &challenge), expected);
        // Only the first 8 bytes count.
        assert_eq!(vnc_auth_response("password123", &challenge), expected);
    }
}
