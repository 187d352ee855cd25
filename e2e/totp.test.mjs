// Unit test of the TOTP helper: RFC 6238 appendix B's SHA-1 vectors, last 6 digits (the same
// vectors as bascule-mfa's Rust tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { totpCode, base32Decode } from './totp.mjs';

// ASCII "12345678901234567890" in base32.
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

test('RFC 6238 SHA-1 vectors, truncated to 6 digits', () => {
  /** @type {[number, string][]} */
  const vectors = [
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ];
  for (const [t, eight] of vectors) assert.equal(totpCode(RFC_SECRET, t), eight.slice(2), `T = ${t}`);
  assert.equal(totpCode(RFC_SECRET, 59), '287082');
  assert.equal(totpCode(RFC_SECRET, 59.9), '287082', 'fractions of a second are dropped');
});

test('base32 decoding ignores case, spaces and padding, and refuses other characters', () => {
  assert.equal(base32Decode(RFC_SECRET).toString('ascii'), '12345678901234567890');
  assert.equal(base32Decode('gezd gnbv gy3t qojq gezd gnbv gy3t qojq').toString('ascii'), '12345678901234567890');
  assert.equal(base32Decode('MZXW6===').toString('ascii'), 'foo');
  assert.throws(() => base32Decode('GEZDG1'), /not base32/);
  assert.throws(() => totpCode(''), /empty/);
});

test('the default time is now', () => {
  const now = Date.now() / 1000;
  const code = totpCode(RFC_SECRET);
  // Unless the step changed between the two calls.
  assert.ok([totpCode(RFC_SECRET, now), totpCode(RFC_SECRET, now + 30)].includes(code));
  assert.match(code, /^\d{6}$/);
});
