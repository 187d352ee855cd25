// TOTP codes (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps) for the end-to-end tests that log
// in with a second factor; the same algorithm as bascule-mfa and every authenticator app.
import crypto from 'node:crypto';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * Decodes RFC 4648 base32; case, spaces, dashes and `=` padding are ignored.
 * @param {string} text
 * @returns {Buffer}
 */
export function base32Decode(text) {
  const clean = text.replace(/[\s-]/g, '').replace(/=+$/, '').toUpperCase();
  /** @type {number[]} */ const bytes = [];
  let bits = 0;
  let value = 0;
  for (const char of clean) {
    const index = BASE32.indexOf(char);
    if (index < 0) throw new Error(`not base32: ${JSON.stringify(char)} in the secret`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

/**
 * The 6-digit TOTP code of a base32 secret at a time in unix seconds (default: now).
 * @param {string} base32Secret the secret as shown at enrolment (`TotpSecret::to_base32`)
 * @param {number} [unixSeconds] seconds since 1970-01-01 UTC; fractions are dropped
 * @returns {string} 6 digits, zero-padded
 */
export function totpCode(base32Secret, unixSeconds = Date.now() / 1000) {
  const key = base32Decode(base32Secret);
  if (key.length === 0) throw new Error('empty TOTP secret');
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Math.floor(unixSeconds) / 30)));
  const mac = crypto.createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 1_000_000).padStart(6, '0');
}
