// Unit tests of the display protocol codec: node --test web/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync } from 'node:zlib';
import {
  CACHE_TILE,
  CODEC_JPEG,
  CODEC_PNG,
  CODECS_GLYPHS,
  CODECS_H264,
  CODECS_JPEG,
  CODECS_PNG,
  ControlState,
  GLYPH_MAX_WIDTH,
  GLYPH_MAX_HEIGHT,
  GLYPH_OPS_MAX,
  GLYPH_SLOTS,
  MAX_CACHE_TILES,
  MAX_CLIENT_MESSAGE,
  MAX_MESSAGE_TEXT,
  MAX_NAME,
  ProtocolError,
  VIDEO_END,
  VIDEO_KEY,
  VIDEO_MAX_STREAMS,
  decodeClientMessage,
  decodeGlyphOps,
  decodeServerMessage,
  encodeCacheOffer,
  encodeClientHello,
  encodeClientMessage,
  encodeClipboard,
  encodeControlRelease,
  encodeControlReply,
  encodeControlRequest,
  encodeFrameAck,
  encodeGlyphOps,
  encodeKey,
  encodePointer,
  encodeServerMessage,
} from '../static/viewer/protocol.js';
import { inflateRaw } from '../static/viewer/glyphcache.js';

const png = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);

const serverMessages = [
  { type: 'ServerHello', version: 0, width: 1920, height: 1080, codecs: 1, maxInFlight: 2, name: 'Bureau de démonstration' },
  { type: 'ServerHello', version: 0, width: 1, height: 1, codecs: 0xffffffff, maxInFlight: 255, name: '' },
  { type: 'Tile', x: 64, y: 128, w: 64, h: 64, codec: 1, data: png },
  { type: 'Tile', x: 0, y: 0, w: 0, h: 0, codec: 1, data: new Uint8Array(0) },
  { type: 'Fill', x: 1, y: 2, w: 300, h: 400, r: 255, g: 128, b: 0 },
  { type: 'Copy', srcX: 10, srcY: 20, w: 30, h: 40, dstX: 65535, dstY: 0 },
  { type: 'Cursor', hotX: 3, hotY: 4, w: 16, h: 16, data: png },
  { type: 'Cursor', hotX: 0, hotY: 0, w: 0, h: 0, data: new Uint8Array(0) },
  { type: 'Resize', width: 1280, height: 800 },
  { type: 'EndFrame', seq: 0xfffffffe },
  { type: 'Notice', level: 2, code: 'session.unreachable', detail: 'connect 10.0.0.5:5900: délai dépassé' },
  { type: 'Clipboard', text: 'copié € ✓' },
  { type: 'Message', from: 'Aïcha (assistance)', text: 'Je redémarre votre session à midi.\nMerci !' },
  { type: 'Message', from: '', text: '' },
  { type: 'ControlRequest', id: 0x01020304, from: 'Zoé' },
  { type: 'ControlState', id: 7, state: 0 },
  { type: 'ControlState', id: 7, state: 1 },
  { type: 'ControlState', id: 7, state: 2 },
  { type: 'ControlState', id: 0xffffffff, state: 3 },
  { type: 'ViewMode', readOnly: true, shadowOf: 'Jérôme Martin' },
  { type: 'ViewMode', readOnly: false, shadowOf: '' },
  { type: 'CacheAgreed', tiles: 2048 },
  { type: 'CacheAgreed', tiles: 0 },
  { type: 'CacheAgreed', tiles: MAX_CACHE_TILES },
  { type: 'CacheStore', slot: 7, x: 1216, y: 768, w: 64, h: 32, codec: 1, data: png },
  { type: 'CacheStore', slot: MAX_CACHE_TILES - 1, x: 0, y: 0, w: 1, h: 1, codec: 1, data: new Uint8Array(0) },
  { type: 'CacheDraw', slot: 0, x: 64, y: 128 },
  { type: 'CacheDraw', slot: MAX_CACHE_TILES - 1, x: 65535, y: 65535 },
  { type: 'Tile', x: 16, y: 32, w: 64, h: 48, codec: 2, data: Uint8Array.of(0xff, 0xd8, 0xff, 0xd9) },
  { type: 'Glyphs', atlas: png, ops: Uint8Array.of(0x63, 0x60, 0, 0) },
  { type: 'Glyphs', atlas: new Uint8Array(0), ops: Uint8Array.of(3, 0) },
  { type: 'Glyphs', atlas: new Uint8Array(0), ops: new Uint8Array(0) },
  { type: 'Video', stream: 0, key: true, end: false, x: 0, y: 0, w: 480, h: 272, clips: [], data: Uint8Array.of(0, 0, 0, 1, 0x67, 0x42) },
  { type: 'Video', stream: 0xffff, key: false, end: false, x: 10, y: 20, w: 64, h: 48, clips: [{ x: 10, y: 20, w: 16, h: 16 }, { x: 58, y: 52, w: 16, h: 16 }], data: Uint8Array.of(0, 0, 1, 0x41) },
  { type: 'Video', stream: 3, key: false, end: true, x: 1, y: 2, w: 3, h: 4, clips: [], data: new Uint8Array(0) },
  { type: 'Video', stream: 3, key: true, end: true, x: 65535, y: 65535, w: 65535, h: 65535, clips: [{ x: 65535, y: 65535, w: 1, h: 1 }], data: Uint8Array.of(1) },
];

const clientMessages = [
  { type: 'ClientHello', version: 0, width: 1366, height: 700, codecs: 1 },
  { type: 'FrameAck', seq: 42 },
  { type: 'Key', down: true, keysym: 0x20ac, scancode: 0x12 },
  { type: 'Key', down: false, keysym: 0x0100_0153, scancode: 0xe04b },
  { type: 'Pointer', x: 1919, y: 1079, buttons: 0b101 },
  { type: 'ResizeRequest', width: 1600, height: 900 },
  { type: 'Clipboard', text: 'collé ê' },
  { type: 'ControlReply', id: 9, granted: true },
  { type: 'ControlReply', id: 0xffffffff, granted: false },
  { type: 'ControlRequest' },
  { type: 'ControlRelease', id: 0x0a0b0c0d },
  { type: 'CacheOffer', tiles: 2048 },
  { type: 'CacheOffer', tiles: 0 },
  { type: 'CacheOffer', tiles: MAX_CACHE_TILES },
];

/** Compare with Uint8Array fields turned into plain arrays. */
function plain(msg) {
  const out = {};
  for (const [k, v] of Object.entries(msg)) out[k] = v instanceof Uint8Array ? [...v] : v;
  return out;
}

test('server messages round-trip', () => {
  for (const msg of serverMessages) {
    const bytes = encodeServerMessage(msg);
    assert.deepEqual(plain(decodeServerMessage(bytes)), plain(msg), msg.type);
    // Also from an ArrayBuffer, as WebSocket delivers it.
    const copy = bytes.slice().buffer;
    assert.deepEqual(plain(decodeServerMessage(copy)), plain(msg), msg.type);
  }
});

test('client messages round-trip', () => {
  for (const msg of clientMessages) {
    const bytes = encodeClientMessage(msg);
    assert.deepEqual(decodeClientMessage(bytes), msg, msg.type);
  }
});

test('exact wire layout (little-endian)', () => {
  assert.deepEqual([...encodeClientHello(0x0102, 0x0304, 1)], [0x81, 0, 0, 0x02, 0x01, 0x04, 0x03, 1, 0, 0, 0]);
  assert.deepEqual([...encodeFrameAck(0x01020304)], [0x82, 0x04, 0x03, 0x02, 0x01]);
  assert.deepEqual([...encodeKey(true, 0x20ac, 0xe048)], [0x83, 1, 0xac, 0x20, 0, 0, 0x48, 0xe0]);
  assert.deepEqual([...encodePointer(0x0102, 0x0304, 4)], [0x84, 0x02, 0x01, 0x04, 0x03, 4]);
  assert.deepEqual([...encodeClipboard('é')], [0x86, 0xc3, 0xa9]);

  const hello = Uint8Array.from([0x01, 0, 0, 0x80, 0x07, 0x38, 0x04, 1, 0, 0, 0, 3, 2, 0, 0x68, 0x69]);
  assert.deepEqual(decodeServerMessage(hello), {
    type: 'ServerHello', version: 0, width: 1920, height: 1080, codecs: 1, maxInFlight: 3, name: 'hi',
  });
  const fill = Uint8Array.from([0x03, 1, 0, 2, 0, 3, 0, 4, 0, 10, 20, 30]);
  assert.deepEqual(decodeServerMessage(fill), { type: 'Fill', x: 1, y: 2, w: 3, h: 4, r: 10, g: 20, b: 30 });
  assert.deepEqual(decodeServerMessage(Uint8Array.from([0x07, 1, 0, 0, 0])), { type: 'EndFrame', seq: 1 });
});

test('truncated messages are errors', () => {
  for (const msg of serverMessages) {
    const bytes = encodeServerMessage(msg);
    const fixedPart = {
      ServerHello: 14, Tile: 10, Fill: 12, Copy: 13, Cursor: 9, Resize: 5, EndFrame: 5, Notice: 6, Clipboard: 1,
      // No "rest of the message" field: every cut is an error.
      Message: bytes.length, ControlRequest: bytes.length, ControlState: bytes.length, ViewMode: bytes.length,
      CacheAgreed: bytes.length, CacheDraw: bytes.length, CacheStore: 14,
      // atlas_len, then the atlas it announces; the ops are the rest.
      Glyphs: 5 + (msg.atlas ?? []).length,
      // The fixed part and the clips; without END, a cut that leaves no data is an error too.
      Video: 13 + 8 * (msg.clips ?? []).length + (msg.end ? 0 : 1),
    }[msg.type];
    assert.ok(fixedPart !== undefined, msg.type);
    for (let n = 1; n < Math.min(bytes.length, fixedPart); n++) {
      assert.throws(() => decodeServerMessage(bytes.subarray(0, n)), ProtocolError, `${msg.type} cut at ${n}`);
    }
  }
  // Length-prefixed fields cut short.
  const notice = encodeServerMessage({ type: 'Notice', level: 0, code: 'session.connecting', detail: 'x' });
  assert.throws(() => decodeServerMessage(notice.subarray(0, notice.length - 1)), ProtocolError);
  const hello = encodeServerMessage(serverMessages[0]);
  assert.throws(() => decodeServerMessage(hello.subarray(0, hello.length - 3)), /truncated ServerHello/);

  for (const msg of clientMessages) {
    if (msg.type === 'Clipboard') continue;
    const bytes = encodeClientMessage(msg);
    assert.throws(() => decodeClientMessage(bytes.subarray(0, bytes.length - 1)), ProtocolError, msg.type);
  }
});

test('empty, unknown and over-long messages are errors', () => {
  assert.throws(() => decodeServerMessage(new Uint8Array(0)), ProtocolError);
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x42)), /unknown server message type 0x42/);
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x81, 0, 0)), ProtocolError);
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x06, 1, 0, 1, 0, 9)), /trailing/);
  assert.throws(() => decodeClientMessage(Uint8Array.of(0x01)), ProtocolError);
  assert.throws(() => decodeClientMessage(Uint8Array.of(0x83, 2, 0, 0, 0, 0, 0, 0)), ProtocolError);
  const nonAscii = Uint8Array.of(0x08, 2, 1, 0, 0xe9, 0, 0);
  assert.throws(() => decodeServerMessage(nonAscii), /ASCII/);
});

test('encoders validate ranges', () => {
  assert.throws(() => encodePointer(70000, 0, 0), RangeError);
  assert.throws(() => encodeKey(true, -1, 0), RangeError);
  assert.throws(() => encodeFrameAck(2 ** 32), RangeError);
});

test('a huge clipboard is truncated below the 256 KiB limit on a character boundary', () => {
  const text = 'é'.repeat(MAX_CLIENT_MESSAGE); // 2 bytes each
  const bytes = encodeClipboard(text);
  assert.ok(bytes.length <= MAX_CLIENT_MESSAGE);
  const back = decodeClientMessage(bytes);
  assert.equal(back.type, 'Clipboard');
  assert.match(back.text, /^é+$/);
});

test('helpdesk messages: exact wire layout, as in docs/protocol.md and the Rust tests', () => {
  assert.deepEqual([...encodeServerMessage({ type: 'Message', from: 'Lé', text: 'ok' })], [0x0a, 3, 0, 0x4c, 0xc3, 0xa9, 2, 0, 0x6f, 0x6b]);
  assert.deepEqual([...encodeServerMessage({ type: 'ControlRequest', id: 0x01020304, from: 'A' })], [0x0b, 4, 3, 2, 1, 1, 0, 0x41]);
  assert.deepEqual([...encodeServerMessage({ type: 'ControlState', id: 5, state: ControlState.Refused })], [0x0c, 5, 0, 0, 0, 2]);
  assert.deepEqual([...encodeServerMessage({ type: 'ViewMode', readOnly: true, shadowOf: 'Bo' })], [0x0d, 1, 2, 0, 0x42, 0x6f]);
  assert.deepEqual([...encodeControlReply(0x01020304, true)], [0x87, 4, 3, 2, 1, 1]);
  assert.deepEqual([...encodeControlRequest()], [0x88]);
  assert.deepEqual([...encodeControlRelease(6)], [0x89, 6, 0, 0, 0]);

  assert.deepEqual(decodeServerMessage(Uint8Array.of(0x0a, 1, 0, 0x58, 2, 0, 0x68, 0x69)), { type: 'Message', from: 'X', text: 'hi' });
  assert.deepEqual(decodeServerMessage(Uint8Array.of(0x0b, 1, 0, 0, 0, 0, 0)), { type: 'ControlRequest', id: 1, from: '' });
  assert.deepEqual(decodeServerMessage(Uint8Array.of(0x0c, 2, 0, 0, 0, 1)), { type: 'ControlState', id: 2, state: 1 });
  assert.deepEqual(decodeServerMessage(Uint8Array.of(0x0d, 0, 0, 0)), { type: 'ViewMode', readOnly: false, shadowOf: '' });
  assert.deepEqual(decodeClientMessage(Uint8Array.of(0x87, 1, 0, 0, 0, 0)), { type: 'ControlReply', id: 1, granted: false });
  assert.deepEqual(decodeClientMessage(Uint8Array.of(0x88)), { type: 'ControlRequest' });
  assert.deepEqual(decodeClientMessage(Uint8Array.of(0x89, 1, 0, 0, 0)), { type: 'ControlRelease', id: 1 });
});

test('helpdesk messages: truncated, trailing, out of range and unknown are errors', () => {
  for (const bytes of [[0x87, 1, 0, 0, 0], [0x87], [0x89, 1, 0, 0], [0x89]]) {
    assert.throws(() => decodeClientMessage(Uint8Array.from(bytes)), /truncated/, String(bytes));
  }
  for (const msg of clientMessages.filter((m) => m.type.startsWith('Control'))) {
    const bytes = encodeClientMessage(msg);
    for (let n = 1; n < bytes.length; n++) {
      assert.throws(() => decodeClientMessage(bytes.subarray(0, n)), ProtocolError, `${msg.type} cut at ${n}`);
    }
  }
  assert.throws(() => decodeClientMessage(Uint8Array.of(0x88, 0x7b, 0x7d)), /trailing/);
  assert.throws(() => decodeClientMessage(Uint8Array.of(0x89, 1, 0, 0, 0, 0)), /trailing/);
  assert.throws(() => decodeClientMessage(Uint8Array.of(0x87, 1, 0, 0, 0, 2)), /granted must be 0 or 1/);
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x0c, 1, 0, 0, 0, 4)), /unknown state 4/);
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x0c, 1, 0, 0, 0, 1, 0)), /trailing/);
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x0d, 2, 0, 0)), /read_only must be 0 or 1/);
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x0a, 0, 0, 0, 0, 9)), /trailing/);
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x0a, 0, 0, 5, 0, 0x61)), /truncated Message/);
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x13)), /unknown server message type 0x13/);
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x88)), /unknown server message type 0x88/);
  assert.throws(() => decodeClientMessage(Uint8Array.of(0x8b)), /unknown client message type 0x8b/);
  assert.throws(() => decodeClientMessage(Uint8Array.of(0x0b)), /unknown client message type 0x0b/);
  assert.throws(() => encodeServerMessage({ type: 'ControlState', id: 1, state: 4 }), RangeError);
  assert.throws(() => encodeControlRelease(-1), RangeError);
});

/** A Message written by hand: `from` and `text` as given, without the encoder's cut. */
function rawMessage(from, text) {
  const f = new TextEncoder().encode(from);
  const t = new TextEncoder().encode(text);
  return Uint8Array.from([0x0a, f.length & 0xff, f.length >> 8, ...f, t.length & 0xff, t.length >> 8, ...t]);
}

test('helpdesk texts are bounded in characters: decoding refuses more, encoding cuts', () => {
  for (const c of ['a', 'é', '€', '😀']) {
    const msg = decodeServerMessage(rawMessage(c.repeat(MAX_NAME), c.repeat(MAX_MESSAGE_TEXT)));
    assert.equal(msg.type, 'Message');
    assert.equal([...msg.from].length, MAX_NAME);
    assert.equal([...msg.text].length, MAX_MESSAGE_TEXT);
  }
  assert.throws(() => decodeServerMessage(rawMessage('', '😀'.repeat(MAX_MESSAGE_TEXT + 1))), /text is longer than 2000 characters/);
  assert.throws(() => decodeServerMessage(rawMessage('x'.repeat(MAX_NAME + 1), '')), /from is longer than 128 characters/);
  const longName = new TextEncoder().encode('é'.repeat(MAX_NAME + 1));
  assert.throws(
    () => decodeServerMessage(Uint8Array.from([0x0d, 1, longName.length & 0xff, longName.length >> 8, ...longName])),
    /shadow_of is longer than 128/,
  );

  const cut = decodeServerMessage(encodeServerMessage({ type: 'Message', from: 'ß'.repeat(500), text: '😀'.repeat(5000) }));
  assert.deepEqual(cut, { type: 'Message', from: 'ß'.repeat(MAX_NAME), text: '😀'.repeat(MAX_MESSAGE_TEXT) });
  const request = decodeServerMessage(encodeServerMessage({ type: 'ControlRequest', id: 1, from: 'é'.repeat(200) }));
  assert.deepEqual(request, { type: 'ControlRequest', id: 1, from: 'é'.repeat(MAX_NAME) });
});

test('tile cache messages: exact wire layout, as in docs/protocol.md and the Rust tests', () => {
  assert.deepEqual([...encodeCacheOffer(0xff02)], [0x8a, 2, 0xff, 0, 0]);
  assert.deepEqual([...encodeServerMessage({ type: 'CacheAgreed', tiles: 2048 })], [0x0e, 0, 8, 0, 0]);
  const store = { type: 'CacheStore', slot: 0xff01, x: 0x0506, y: 0x0708, w: 64, h: 32, codec: 1, data: Uint8Array.of(0xaa, 0xbb) };
  assert.deepEqual([...encodeServerMessage(store)], [0x0f, 1, 0xff, 0, 0, 6, 5, 8, 7, 64, 0, 32, 0, 1, 0xaa, 0xbb]);
  assert.deepEqual([...encodeServerMessage({ type: 'CacheDraw', slot: 0xff01, x: 0x0506, y: 0x0708 })], [0x10, 1, 0xff, 0, 0, 6, 5, 8, 7]);

  assert.deepEqual(decodeClientMessage(Uint8Array.of(0x8a, 0, 8, 0, 0)), { type: 'CacheOffer', tiles: 2048 });
  assert.deepEqual(decodeServerMessage(Uint8Array.of(0x0e, 5, 0, 0, 0)), { type: 'CacheAgreed', tiles: 5 });
  assert.deepEqual(decodeServerMessage(Uint8Array.of(0x10, 1, 0, 0, 0, 64, 0, 128, 0)), { type: 'CacheDraw', slot: 1, x: 64, y: 128 });
  const decoded = decodeServerMessage(Uint8Array.of(0x0f, 2, 0, 0, 0, 0, 1, 0, 2, 3, 0, 4, 0, 1, 9));
  assert.deepEqual(plain(decoded), { type: 'CacheStore', slot: 2, x: 256, y: 512, w: 3, h: 4, codec: 1, data: [9] });
});

test('tile cache messages: bounds, truncation, trailing bytes and unknown codecs are errors', () => {
  const le32 = (v) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
  // Counts above MAX_CACHE_TILES, slots at or above it.
  assert.throws(() => decodeClientMessage(Uint8Array.from([0x8a, ...le32(MAX_CACHE_TILES + 1)])), /above 65536/);
  assert.throws(() => decodeClientMessage(Uint8Array.from([0x8a, ...le32(0xffffffff)])), ProtocolError);
  assert.throws(() => decodeServerMessage(Uint8Array.from([0x0e, ...le32(MAX_CACHE_TILES + 1)])), /above 65536/);
  assert.throws(() => decodeServerMessage(Uint8Array.from([0x10, ...le32(MAX_CACHE_TILES), 0, 0, 0, 0])), /slot 65536/);
  /** @param {number} slot @param {number} w @param {number} h @param {number} codec */
  const store = (slot, w, h, codec) =>
    decodeServerMessage(Uint8Array.from([0x0f, ...le32(slot), 0, 0, 0, 0, w & 0xff, w >> 8, h & 0xff, h >> 8, codec, 1, 2]));
  assert.equal(store(0, CACHE_TILE, CACHE_TILE, 1).type, 'CacheStore');
  assert.equal(store(0, 1, 1, 1).type, 'CacheStore');
  assert.throws(() => store(MAX_CACHE_TILES, 8, 8, 1), /slot 65536/);
  for (const [w, h] of [[65, 64], [64, 65], [0, 8], [8, 0], [65535, 65535]]) {
    assert.throws(() => store(0, w, h, 1), /CacheStore: a \d+x\d+ tile/, `${w}x${h}`);
  }
  assert.throws(() => store(0, 8, 8, CODEC_JPEG), /CacheStore: codec 2 \(JPEG\) is never cached/);
  assert.throws(() => store(0, 8, 8, 3), /unknown codec 3/);
  assert.throws(() => store(0, 8, 8, 0), /unknown codec 0/);
  // Every cut of the fixed part is "truncated", whatever the values before the cut.
  for (const bytes of [
    encodeServerMessage({ type: 'CacheStore', slot: 3, x: 1, y: 2, w: 3, h: 4, codec: 1, data: Uint8Array.of(1) }),
    Uint8Array.from([0x0f, ...le32(MAX_CACHE_TILES), 0, 0, 0, 0, 99, 0, 99, 0, 7]),
    encodeServerMessage({ type: 'CacheDraw', slot: 3, x: 1, y: 2 }),
    encodeServerMessage({ type: 'CacheAgreed', tiles: 3 }),
    encodeCacheOffer(3),
  ]) {
    const fixed = bytes[0] === 0x0f ? 14 : bytes.length;
    const decode = bytes[0] === 0x8a ? decodeClientMessage : decodeServerMessage;
    for (let n = 1; n < fixed; n++) {
      assert.throws(() => decode(bytes.subarray(0, n)), /truncated/, `type ${bytes[0]} cut at ${n}`);
    }
  }
  assert.throws(() => decodeClientMessage(Uint8Array.of(0x8a, 1, 0, 0, 0, 0)), /trailing/);
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x0e, 1, 0, 0, 0, 0)), /trailing/);
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0)), /trailing/);
  // A client type is not a server type and back; the next codes are still unknown.
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x8a, 1, 0, 0, 0)), /unknown server message type 0x8a/);
  assert.throws(() => decodeClientMessage(Uint8Array.of(0x0e, 1, 0, 0, 0)), /unknown client message type 0x0e/);
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x13)), /unknown server message type 0x13/);
  assert.throws(() => decodeClientMessage(Uint8Array.of(0x8b)), /unknown client message type 0x8b/);
  // Encoders refuse what decoders would.
  assert.throws(() => encodeCacheOffer(MAX_CACHE_TILES + 1), RangeError);
  assert.throws(() => encodeCacheOffer(-1), RangeError);
  assert.throws(() => encodeServerMessage({ type: 'CacheDraw', slot: MAX_CACHE_TILES, x: 0, y: 0 }), RangeError);
});

test('codecs: the tile codec values and the ClientHello bits of docs/protocol.md', () => {
  assert.deepEqual([CODEC_PNG, CODEC_JPEG], [1, 2]);
  assert.deepEqual([CODECS_PNG, CODECS_JPEG, CODECS_GLYPHS], [1, 2, 4]);
  const hello = encodeClientHello(1280, 800, CODECS_PNG | CODECS_JPEG | CODECS_GLYPHS);
  assert.deepEqual([...hello], [0x81, 0, 0, 0x00, 0x05, 0x20, 0x03, 7, 0, 0, 0]);
  assert.equal(decodeClientMessage(hello).codecs, 7);
  // A JPEG tile is a Tile like any other; its codec byte is 2.
  const tile = decodeServerMessage(Uint8Array.of(0x02, 1, 0, 2, 0, 3, 0, 4, 0, 2, 0xff, 0xd8));
  assert.deepEqual(plain(tile), { type: 'Tile', x: 1, y: 2, w: 3, h: 4, codec: CODEC_JPEG, data: [0xff, 0xd8] });
});

test('Glyphs: exact wire layout, as in the Rust tests; the atlas may be empty; a cut atlas is truncated', () => {
  const bytes = encodeServerMessage({ type: 'Glyphs', atlas: Uint8Array.of(0xaa, 0xbb), ops: Uint8Array.of(0xcc) });
  assert.deepEqual([...bytes], [0x11, 2, 0, 0, 0, 0xaa, 0xbb, 0xcc]);
  assert.deepEqual(plain(decodeServerMessage(bytes)), { type: 'Glyphs', atlas: [0xaa, 0xbb], ops: [0xcc] });
  assert.deepEqual(plain(decodeServerMessage(Uint8Array.of(0x11, 0, 0, 0, 0, 3, 0))), { type: 'Glyphs', atlas: [], ops: [3, 0] });
  assert.deepEqual(plain(decodeServerMessage(Uint8Array.of(0x11, 2, 0, 0, 0, 1, 2))), { type: 'Glyphs', atlas: [1, 2], ops: [] });
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x11, 3, 0, 0, 0, 0xaa, 0xbb)), /truncated Glyphs: atlas/);
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x11, 0xff, 0xff, 0xff, 0xff, 1)), /truncated Glyphs: atlas/);
  for (let n = 1; n < 5; n++) {
    assert.throws(() => decodeServerMessage(bytes.subarray(0, n)), /truncated Glyphs: atlas_len/, `cut at ${n}`);
  }
});

/** The ops of the example of docs/protocol.md, before DEFLATE. */
const DOC_OPS = Uint8Array.of(
  0x03, 0x80, 0x64, 0x00, 0x28, 0x00, 0x05, 0x09, // store slot 3, dx 100, dy 40, w 5, h 9
  0x03, 0x00, 0x09, 0x00, 0x00, 0x00, //             draw  slot 3, dx 9,   dy 0
  0x07, 0x00, 0xee, 0xff, 0x11, 0x00, //             draw  slot 7, dx -18 (0xffee), dy 17
);
const DOC_RECORDS = [
  { store: true, slot: 3, x: 100, y: 40, w: 5, h: 9 },
  { store: false, slot: 3, x: 109, y: 40, w: 0, h: 0 },
  { store: false, slot: 7, x: 91, y: 57, w: 0, h: 0 },
];

test('glyph ops: the example of docs/protocol.md, both ways', async () => {
  assert.deepEqual(decodeGlyphOps(DOC_OPS), DOC_RECORDS);
  assert.deepEqual([...encodeGlyphOps(DOC_RECORDS)], [...DOC_OPS]);
  // Deflated as the gateway sends it, inflated as the browser does (Node has DecompressionStream).
  const inflated = await inflateRaw(new Uint8Array(deflateRawSync(DOC_OPS)), GLYPH_OPS_MAX);
  assert.deepEqual(decodeGlyphOps(inflated), DOC_RECORDS);
  assert.deepEqual(decodeGlyphOps(new Uint8Array(0)), []);
});

test('glyph ops: corners are cumulative modulo 65,536 and start at (0, 0) for each message', () => {
  const records = [
    { store: false, slot: 0, x: 65535, y: 0, w: 0, h: 0 },
    { store: false, slot: 1, x: 0, y: 65535, w: 0, h: 0 },
    { store: true, slot: GLYPH_SLOTS - 1, x: 10, y: 20, w: GLYPH_MAX_WIDTH, h: GLYPH_MAX_HEIGHT },
    { store: false, slot: 2, x: 5, y: 20, w: 0, h: 0 },
  ];
  const bytes = encodeGlyphOps(records);
  const le16 = (pos) => bytes[pos] | (bytes[pos + 1] << 8);
  assert.deepEqual([le16(2), le16(4), le16(8), le16(10), le16(14), le16(16), le16(22), le16(24)], [65535, 0, 1, 65535, 10, 21, 65531, 0]);
  assert.equal(le16(12), 0x8000 | 4095);
  assert.deepEqual(decodeGlyphOps(bytes), records);
});

test('glyph ops: a record cut short, a slot ≥ 4096 and a stored side of 0, wider than 64 or taller than 32 are errors', () => {
  // Every cut that is not on a record boundary.
  for (let n = 1; n < DOC_OPS.length; n++) {
    if (n === 8 || n === 14) {
      assert.equal(decodeGlyphOps(DOC_OPS.subarray(0, n)).length, n === 8 ? 1 : 2);
    } else {
      assert.throws(() => decodeGlyphOps(DOC_OPS.subarray(0, n)), /Glyphs: ops end inside the record at offset (0|8|14)/, `cut at ${n}`);
    }
  }
  assert.throws(() => decodeGlyphOps(Uint8Array.of(0x00, 0x10, 0, 0, 0, 0)), /slot 4096 is not below 4096/);
  assert.throws(() => decodeGlyphOps(Uint8Array.of(0xff, 0xff, 0, 0, 0, 0, 1, 1)), /slot 32767 is not below 4096/);
  assert.deepEqual(decodeGlyphOps(Uint8Array.of(0xff, 0x0f, 0, 0, 0, 0)), [{ store: false, slot: 4095, x: 0, y: 0, w: 0, h: 0 }]);
  for (const [w, h] of [[0, 5], [5, 0], [65, 1], [1, 33], [255, 255]]) {
    assert.throws(() => decodeGlyphOps(Uint8Array.of(0x01, 0x80, 0, 0, 0, 0, w, h)), new RegExp(`a ${w}x${h} glyph stored in slot 1`));
  }
  assert.equal(decodeGlyphOps(Uint8Array.of(0x01, 0x80, 0, 0, 0, 0, 32, 32))[0].w, 32);
  // The encoder refuses what the decoder would.
  assert.throws(() => encodeGlyphOps([{ store: false, slot: GLYPH_SLOTS, x: 0, y: 0, w: 0, h: 0 }]), RangeError);
  assert.throws(() => encodeGlyphOps([{ store: true, slot: 0, x: 0, y: 0, w: 0, h: 1 }]), RangeError);
  assert.throws(() => encodeGlyphOps([{ store: true, slot: 0, x: 0, y: 0, w: 1, h: GLYPH_MAX_HEIGHT + 1 }]), RangeError);
  assert.throws(() => encodeGlyphOps([{ store: true, slot: 0, x: 0, y: 0, w: GLYPH_MAX_WIDTH + 1, h: 1 }]), RangeError);
  assert.throws(() => encodeGlyphOps([{ store: false, slot: 0, x: 65536, y: 0, w: 0, h: 0 }]), RangeError);
  assert.equal(GLYPH_OPS_MAX, 1 << 20);
});

// ---------------------------------------------------------------------------
// Video (0x12): H.264 access units

/** The example of the brief: stream 0x0102, KEY, (0x0506, 0x0708) 320 × 180, one 16 × 16 clip, data aa bb. */
const VIDEO_EXAMPLE = Uint8Array.of(
  0x12, 0x02, 0x01, 0x01, 0x06, 0x05, 0x08, 0x07, 0x40, 0x01, 0xb4, 0x00, // type, stream, flags, x, y, w, h
  0x01, 0x06, 0x05, 0x08, 0x07, 0x10, 0x00, 0x10, 0x00, //                   clip_count, clip x, y, w, h
  0xaa, 0xbb, //                                                             data
);

test('Video: the codec bit, the flags and the stream limit', () => {
  assert.equal(CODECS_H264, 8);
  assert.deepEqual([VIDEO_KEY, VIDEO_END, VIDEO_MAX_STREAMS], [1, 2, 4]);
  const hello = encodeClientHello(1280, 800, CODECS_PNG | CODECS_JPEG | CODECS_GLYPHS | CODECS_H264);
  assert.deepEqual([...hello], [0x81, 0, 0, 0x00, 0x05, 0x20, 0x03, 15, 0, 0, 0]);
});

test('Video: exact wire layout, both ways', () => {
  const msg = {
    type: 'Video', stream: 0x0102, key: true, end: false, x: 0x0506, y: 0x0708, w: 320, h: 180,
    clips: [{ x: 0x0506, y: 0x0708, w: 16, h: 16 }], data: Uint8Array.of(0xaa, 0xbb),
  };
  assert.deepEqual(plain(decodeServerMessage(VIDEO_EXAMPLE)), { ...msg, data: [0xaa, 0xbb] });
  assert.deepEqual([...encodeServerMessage(msg)], [...VIDEO_EXAMPLE]);
  // END alone: flags 2, no clips, no data.
  const end = Uint8Array.of(0x12, 7, 0, 2, 0, 0, 0, 0, 1, 0, 1, 0, 0);
  assert.deepEqual(plain(decodeServerMessage(end)), { type: 'Video', stream: 7, key: false, end: true, x: 0, y: 0, w: 1, h: 1, clips: [], data: [] });
  // KEY and END together (flags 3), data kept whole.
  const both = decodeServerMessage(Uint8Array.of(0x12, 7, 0, 3, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0x67));
  assert.deepEqual(plain(both), { type: 'Video', stream: 7, key: true, end: true, x: 0, y: 0, w: 1, h: 1, clips: [], data: [0, 0, 1, 0x67] });
});

test('Video: every cut of the fixed part and the clips is truncated; a cut to no data without END is an error', () => {
  for (let n = 1; n < 21; n++) {
    assert.throws(() => decodeServerMessage(VIDEO_EXAMPLE.subarray(0, n)), /truncated Video/, `cut at ${n}`);
  }
  assert.throws(() => decodeServerMessage(VIDEO_EXAMPLE.subarray(0, 21)), /Video: empty data without END/);
  // A clip count beyond the message: truncated, whatever the flags and the rectangle.
  assert.throws(() => decodeServerMessage(Uint8Array.of(0x12, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0)), /truncated Video: clips/);
});

test('Video: unknown flag bits, empty data without END, an empty rectangle or clip, and clips outside the rectangle are errors', () => {
  const withFlags = (flags) => Uint8Array.from([0x12, 1, 0, flags, ...VIDEO_EXAMPLE.subarray(4)]);
  for (const flags of [0, 1, 2, 3]) assert.equal(decodeServerMessage(withFlags(flags)).type, 'Video', `flags ${flags}`);
  for (const flags of [4, 5, 8, 0x80, 0xff]) {
    assert.throws(() => decodeServerMessage(withFlags(flags)), /Video: unknown flags/, `flags ${flags}`);
  }
  for (const flags of [0, 1]) {
    assert.throws(() => decodeServerMessage(withFlags(flags).subarray(0, 21)), /Video: empty data without END/, `flags ${flags}`);
  }
  assert.equal(decodeServerMessage(withFlags(2).subarray(0, 21)).type, 'Video', 'END may come without data');

  /** A Video message of the rectangle (100, 50) 64 × 32 with one clip. */
  const clipped = (cx, cy, cw, ch) =>
    encodeServerMessage({ type: 'Video', stream: 0, key: false, end: false, x: 100, y: 50, w: 64, h: 32, clips: [{ x: cx, y: cy, w: cw, h: ch }], data: Uint8Array.of(1) });
  for (const [cx, cy, cw, ch] of [[100, 50, 64, 32], [100, 50, 1, 1], [163, 81, 1, 1], [120, 60, 10, 10]]) {
    assert.equal(decodeServerMessage(clipped(cx, cy, cw, ch)).type, 'Video', `clip ${cx},${cy} ${cw}x${ch}`);
  }
  for (const [cx, cy, cw, ch] of [[99, 50, 1, 1], [100, 49, 1, 1], [100, 50, 65, 32], [100, 50, 64, 33], [164, 50, 1, 1], [150, 70, 16, 16], [0, 0, 16, 16]]) {
    assert.throws(() => decodeServerMessage(clipped(cx, cy, cw, ch)), /Video: clip .* outside the 64x32 rectangle at 100,50/, `clip ${cx},${cy} ${cw}x${ch}`);
  }
  for (const [cw, ch] of [[0, 1], [1, 0], [0, 0]]) {
    assert.throws(() => decodeServerMessage(clipped(110, 60, cw, ch)), new RegExp(`Video: an empty ${cw}x${ch} clip at 110,60`));
  }
  const flat = (w, h) => encodeServerMessage({ type: 'Video', stream: 0, key: false, end: true, x: 5, y: 5, w, h, clips: [], data: new Uint8Array(0) });
  assert.throws(() => decodeServerMessage(flat(0, 16)), /Video: an empty 0x16 rectangle/);
  assert.throws(() => decodeServerMessage(flat(16, 0)), /Video: an empty 16x0 rectangle/);
  // The clips are checked in absolute coordinates, without wrapping at 65,536.
  const edge = encodeServerMessage({ type: 'Video', stream: 0, key: false, end: false, x: 65530, y: 0, w: 6, h: 1, clips: [{ x: 65535, y: 0, w: 2, h: 1 }], data: Uint8Array.of(1) });
  assert.throws(() => decodeServerMessage(edge), /Video: clip 2x1 at 65535,0 outside/);
  assert.throws(() => encodeServerMessage({ type: 'Video', stream: 0, key: false, end: false, x: 0, y: 0, w: 1, h: 1, clips: new Array(256).fill({ x: 0, y: 0, w: 1, h: 1 }), data: Uint8Array.of(1) }), RangeError);
});
