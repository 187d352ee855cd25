// Unit tests of the video helpers: the codec string of an H.264 access unit. node --test web/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VideoError, avcCodecString } from '../static/viewer/video.js';

/** NAL units after a 4-byte start code each (the first) or a 3-byte one (the others). */
const annexB = (...nals) => Uint8Array.from(nals.flatMap((nal, i) => [...(i === 0 ? [0, 0, 0, 1] : [0, 0, 1]), ...nal]));

// Constrained Baseline (66, constraint flags 0xc0), level 3.1 (31 = 0x1f); a PPS; an IDR slice.
const SPS = [0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40];
const PPS = [0x68, 0xce, 0x3c, 0x80];
const IDR = [0x65, 0x88, 0x84, 0x00, 0x33];

test('the codec string comes from the profile, constraint flags and level of the SPS', () => {
  assert.equal(avcCodecString(annexB(SPS, PPS, IDR)), 'avc1.42c01f');
  // High profile (100), no constraint flags, level 4.0 (40 = 0x28); the hex is two digits each.
  assert.equal(avcCodecString(annexB([0x67, 0x64, 0x00, 0x28, 0xac], PPS, IDR)), 'avc1.640028');
  // nal_ref_idc does not matter, only the NAL type (the low 5 bits of the header).
  assert.equal(avcCodecString(annexB([0x27, 0x4d, 0x40, 0x0a], IDR)), 'avc1.4d400a');
});

test('3-byte and 4-byte start codes, with an access unit delimiter and SEI first', () => {
  const aud = [0x09, 0xf0];
  const sei = [0x06, 0x05, 0x01, 0x00, 0x80];
  // Only 3-byte start codes.
  const three = Uint8Array.from([0, 0, 1, ...aud, 0, 0, 1, ...sei, 0, 0, 1, ...SPS, 0, 0, 1, ...PPS, 0, 0, 1, ...IDR]);
  assert.equal(avcCodecString(three), 'avc1.42c01f');
  // Only 4-byte start codes.
  const four = Uint8Array.from([0, 0, 0, 1, ...aud, 0, 0, 0, 1, ...SPS, 0, 0, 0, 1, ...PPS, 0, 0, 0, 1, ...IDR]);
  assert.equal(avcCodecString(four), 'avc1.42c01f');
  // The SPS as the very last bytes, after a 3-byte start code.
  assert.equal(avcCodecString(Uint8Array.from([0, 0, 1, ...IDR, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1e])), 'avc1.42e01e');
});

test('just the first SPS counts, and 00 00 03 emulation prevention bytes are skipped', () => {
  const second = [0x67, 0x64, 0x00, 0x33, 0xac];
  assert.equal(avcCodecString(annexB(SPS, second, PPS, IDR)), 'avc1.42c01f');
  assert.equal(avcCodecString(annexB(second, SPS, PPS, IDR)), 'avc1.640033');
  // A start code look-alike inside another NAL is escaped by the encoder (00 00 03 01): not a NAL.
  const escaped = [0x06, 0x05, 0x00, 0x00, 0x03, 0x01, 0x67, 0x11, 0x22, 0x33];
  assert.equal(avcCodecString(annexB(escaped, SPS, IDR)), 'avc1.42c01f');
  // Emulation prevention inside the first SPS bytes (profile 0, constraints 0: a made-up SPS, but
  // the rule is the bitstream's): 67 00 00 03 01 → profile 00, constraints 00, level 01.
  assert.equal(avcCodecString(annexB([0x67, 0x00, 0x00, 0x03, 0x01, 0x80])), 'avc1.000001');
});

test('a KEY without an SPS, or with an SPS cut before its level, is refused', () => {
  assert.throws(() => avcCodecString(annexB(PPS, IDR)), /a KEY message without an SPS/);
  assert.throws(() => avcCodecString(new Uint8Array(0)), VideoError);
  assert.throws(() => avcCodecString(Uint8Array.of(0x67, 0x42, 0xc0, 0x1f)), /without an SPS/, 'no start code');
  assert.throws(() => avcCodecString(Uint8Array.of(0, 0, 1)), /without an SPS/);
  assert.throws(() => avcCodecString(Uint8Array.of(0, 0, 1, 0x67, 0x42, 0xc0)), /the SPS is cut before its level/);
  assert.throws(() => avcCodecString(Uint8Array.of(0, 0, 1, 0x67, 0x42, 0, 0, 1, ...IDR)), /the SPS is cut before its level/);
  // An SPS start code split by a stray byte is not a start code.
  assert.throws(() => avcCodecString(Uint8Array.of(0, 0, 2, 1, 0x67, 0x42, 0xc0, 0x1f)), /without an SPS/);
});
