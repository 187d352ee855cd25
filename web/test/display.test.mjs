// Unit tests of the viewer's drawing queue with the tile cache, the glyph cache and JPEG tiles,
// on a stub canvas: node --test web/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync } from 'node:zlib';
import { Display } from '../static/viewer/display.js';
import { CODECS_GLYPHS, CODECS_H264, CODECS_JPEG, CODECS_PNG, CODEC_JPEG, CODEC_PNG, GLYPH_OPS_MAX, VIDEO_MAX_STREAMS, encodeGlyphOps } from '../static/viewer/protocol.js';

/**
 * A stub of the browser's createImageBitmap: the "PNG" bytes are [width, height, id], and a
 * decode takes a few event-loop turns (so that the queue's ordering is exercised). From a bitmap
 * (`createImageBitmap(bitmap, sx, sy, sw, sh, options)`), it cuts a bitmap whose id tells where
 * it comes from: `${id}@${sx},${sy} ${sw}x${sh}`.
 */
const bitmaps = [];
/** Every decode asked for, when it was asked: {type, options} of a Blob, {crop, options} of a cut. */
const decodes = [];
const OPTIONS = { premultiplyAlpha: 'none', colorSpaceConversion: 'none' };
globalThis.createImageBitmap = async (source, ...args) => {
  if (!(source instanceof Blob)) return cut(source, ...args);
  decodes.push({ type: source.type, options: args[0] });
  const bytes = new Uint8Array(await source.arrayBuffer());
  if (bytes.length < 3) throw new Error('the source image cannot be decoded');
  const [width, height, id] = bytes;
  await new Promise((resolve) => setTimeout(resolve, (id * 7) % 5));
  return newBitmap(width, height, id);
};

async function cut(source, sx, sy, sw, sh, options) {
  assert.equal(source.closed, false, 'a cut from a closed bitmap');
  assert.ok(sx >= 0 && sy >= 0 && sx + sw <= source.width && sy + sh <= source.height, 'a cut inside its source');
  const id = `${source.id}@${sx},${sy} ${sw}x${sh}`;
  decodes.push({ crop: id, options });
  await new Promise((resolve) => setTimeout(resolve, 1));
  return newBitmap(sw, sh, id);
}

function newBitmap(width, height, id) {
  const bitmap = { width, height, id, closed: false, close() { this.closed = true; } };
  bitmaps.push(bitmap);
  return bitmap;
}

const bitmap = (id) => bitmaps.find((b) => b.id === id);

/**
 * A stub canvas whose context records every drawImage of a bitmap (not of the canvas): `draws`
 * with the destination corner, `calls` with every argument after the image.
 */
function stubCanvas(width, height) {
  const draws = [];
  const calls = [];
  const ctx = {
    drawImage(image, ...args) {
      if (image.id === undefined) return;
      draws.push({ id: image.id, at: args.length === 2 ? args : args.slice(4, 6) });
      calls.push({ id: image.id, args });
    },
    fillRect() {},
  };
  return { canvas: { width, height, getContext: () => ctx }, draws, calls };
}

function newDisplay(width = 100, height = 100, options = {}) {
  const { canvas, draws, calls } = stubCanvas(width, height);
  const errors = [];
  const display = new Display(/** @type {any} */ (canvas), { onError: (e) => errors.push(String(e)), ...options });
  const drained = () => new Promise((resolve) => display.after(resolve));
  return { display, draws, calls, errors, drained };
}

const png = (w, h, id) => Uint8Array.of(w, h, id);

test('a stored tile is drawn and kept, and drawn again from its slot, in message order', async () => {
  const { display, draws, errors, drained } = newDisplay();
  display.offerCache(4);
  display.cacheAgreed(4);
  display.tile(0, 0, 5, 5, 1, png(5, 5, 1));
  display.cacheStore(1, 10, 20, 3, 2, 1, png(3, 2, 2));
  display.cacheDraw(1, 50, 60);
  display.cacheStore(2, 0, 0, 4, 4, 1, png(4, 4, 3));
  display.cacheDraw(2, 90, 90);
  display.cacheDraw(1, 0, 98);
  await drained();
  assert.deepEqual(errors, []);
  assert.deepEqual(draws, [
    { id: 1, at: [0, 0] },
    { id: 2, at: [10, 20] },
    { id: 2, at: [50, 60] },
    { id: 3, at: [0, 0] },
    { id: 3, at: [90, 90] },
    { id: 2, at: [0, 98] },
  ]);
  assert.deepEqual([display.cache.hits, display.cache.stores, display.cache.size], [3, 2, 2]);
  const kept = bitmaps.filter((b) => b.id === 2 || b.id === 3);
  assert.ok(kept.every((b) => !b.closed), 'kept tiles stay open');
  assert.ok(bitmaps.find((b) => b.id === 1)?.closed, 'a plain tile is closed once drawn');
});

test('a slot reused by the server lets go of its old tile', async () => {
  const { display, draws, drained } = newDisplay();
  display.offerCache(1);
  display.cacheAgreed(1);
  display.cacheStore(0, 0, 0, 2, 2, 1, png(2, 2, 10));
  display.cacheStore(0, 4, 4, 2, 2, 1, png(2, 2, 11));
  display.cacheDraw(0, 8, 8);
  await drained();
  assert.deepEqual(draws.map((d) => d.id), [10, 11, 11]);
  assert.ok(bitmaps.find((b) => b.id === 10)?.closed);
  assert.ok(!bitmaps.find((b) => b.id === 11)?.closed);
});

test('cache rule breaks are reported and change nothing', async () => {
  const { display, draws, errors, drained } = newDisplay(20, 20);
  display.cacheDraw(0, 0, 0); // before any agreement
  display.offerCache(2);
  display.cacheAgreed(3); // more than offered
  display.cacheAgreed(2);
  display.cacheDraw(0, 0, 0); // empty slot
  display.cacheStore(5, 0, 0, 2, 2, 1, png(2, 2, 20)); // beyond the agreed slots
  display.cacheStore(0, 0, 0, 3, 3, 1, png(2, 2, 21)); // not the announced size
  display.cacheStore(1, 19, 19, 2, 2, 1, png(2, 2, 22)); // outside the canvas
  display.cacheStore(1, 18, 18, 2, 2, 1, png(2, 2, 23));
  display.cacheDraw(1, 19, 0); // outside the canvas
  display.cacheDraw(1, 18, 0);
  await drained();
  assert.equal(errors.length, 7, errors.join('\n'));
  assert.deepEqual(draws, [{ id: 23, at: [18, 18] }, { id: 23, at: [18, 0] }]);
  assert.deepEqual([display.cache.hits, display.cache.stores], [1, 1]);
  for (const id of [20, 21, 22]) assert.ok(bitmaps.find((b) => b.id === id)?.closed, `refused tile ${id} closed`);
});

test('a new connection drops the queue and lets go of every kept tile', async () => {
  const { display, drained } = newDisplay();
  display.offerCache(4);
  display.cacheAgreed(4);
  display.cacheStore(3, 0, 0, 2, 2, 1, png(2, 2, 30));
  await drained();
  display.cacheStore(2, 0, 0, 2, 2, 1, png(2, 2, 31)); // still decoding
  display.reset();
  assert.ok(bitmaps.find((b) => b.id === 30)?.closed);
  assert.equal(display.cache.capacity, 0);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(bitmaps.find((b) => b.id === 31)?.closed, 'a tile decoded after the reset is closed');
  display.offerCache(4);
  display.cacheAgreed(2);
  await drained();
  assert.equal(display.cache.capacity, 2);
});

test('JPEG tiles are decoded as image/jpeg with the PNG options, in queue order; other codecs are refused', async () => {
  const { display, draws, errors, drained } = newDisplay();
  const before = decodes.length;
  display.tile(0, 0, 4, 4, CODEC_JPEG, png(4, 4, 2)); // the slowest decode of the stub
  display.tile(4, 0, 4, 4, CODEC_PNG, png(4, 4, 5)); // the fastest
  display.tile(8, 0, 4, 4, 3, png(4, 4, 6));
  await drained();
  assert.deepEqual(decodes.slice(before), [
    { type: 'image/jpeg', options: OPTIONS },
    { type: 'image/png', options: OPTIONS },
  ]);
  assert.deepEqual(draws, [{ id: 2, at: [0, 0] }, { id: 5, at: [4, 0] }]);
  assert.deepEqual(errors, ['Error: unsupported tile codec 3']);
});

// ---------------------------------------------------------------------------
// The glyph cache

const store = (slot, x, y, w, h) => ({ store: true, slot, x, y, w, h });
const draw = (slot, x, y) => ({ store: false, slot, x, y, w: 0, h: 0 });
const deflate = (bytes) => new Uint8Array(deflateRawSync(Uint8Array.from(bytes)));
/** The ops of a Glyphs message, deflated. */
const ops = (...records) => deflate(encodeGlyphOps(records));
/** One record written by hand (what the encoder refuses to write). */
const le16 = (v) => [v & 0xff, (v >> 8) & 0xff];
const rawRecord = (word, dx, dy, ...wh) => [...le16(word), ...le16(dx), ...le16(dy), ...wh];
/** The id of a glyph cut from atlas `atlas` at x = `sx`. */
const glyph = (atlas, sx, w, h) => `${atlas}@${sx},0 ${w}x${h}`;

test('the example of docs/protocol.md: a glyph stored from the atlas, drawn again, and an older one drawn', async () => {
  const { display, draws, errors, drained } = newDisplay(200, 100);
  display.glyphs(png(7, 6, 40), ops(store(7, 0, 0, 7, 6))); // slot 7, from an earlier message
  const docOps = [
    0x03, 0x80, 0x64, 0x00, 0x28, 0x00, 0x05, 0x09, // store slot 3, dx 100, dy 40, w 5, h 9
    0x03, 0x00, 0x09, 0x00, 0x00, 0x00, //             draw  slot 3, dx 9, dy 0
    0x07, 0x00, 0xee, 0xff, 0x11, 0x00, //             draw  slot 7, dx -18, dy 17
  ];
  display.glyphs(png(5, 9, 41), deflate(docOps));
  await drained();
  assert.deepEqual(errors, []);
  assert.deepEqual(draws, [
    { id: glyph(40, 0, 7, 6), at: [0, 0] },
    { id: glyph(41, 0, 5, 9), at: [100, 40] },
    { id: glyph(41, 0, 5, 9), at: [109, 40] },
    { id: glyph(40, 0, 7, 6), at: [91, 57] },
  ]);
  assert.deepEqual([display.glyphCache.stores, display.glyphCache.draws, display.glyphCache.size], [2, 2, 2]);
  assert.equal(display.glyphCache.get(3), bitmap(glyph(41, 0, 5, 9)));
  assert.ok(bitmap(40).closed && bitmap(41).closed, 'an atlas is let go of once cut');
  assert.ok(!bitmap(glyph(40, 0, 7, 6)).closed && !bitmap(glyph(41, 0, 5, 9)).closed, 'kept glyphs stay open');
});

test('stored glyphs are cut left to right, top-aligned, with the PNG options; the atlas decode starts on arrival', async () => {
  const { display, draws, errors, drained } = newDisplay();
  display.tile(0, 0, 2, 2, CODEC_PNG, png(2, 2, 2)); // decodes slower than the atlas
  const before = decodes.length;
  display.glyphs(png(20, 8, 45), ops(store(0, 10, 10, 3, 8), store(1, 20, 10, 5, 2), draw(0, 30, 10), store(2, 40, 10, 1, 1)));
  assert.deepEqual(decodes.slice(before), [{ type: 'image/png', options: OPTIONS }], 'decoding started before its turn');
  display.fill(0, 0, 1, 1, 0, 0, 0);
  await drained();
  assert.deepEqual(errors, []);
  assert.deepEqual(decodes.slice(before + 1), [
    { crop: glyph(45, 0, 3, 8), options: OPTIONS },
    { crop: glyph(45, 3, 5, 2), options: OPTIONS },
    { crop: glyph(45, 8, 1, 1), options: OPTIONS },
  ]);
  assert.deepEqual(draws, [
    { id: 2, at: [0, 0] }, // the earlier tile first, though it decoded last
    { id: glyph(45, 0, 3, 8), at: [10, 10] },
    { id: glyph(45, 3, 5, 2), at: [20, 10] },
    { id: glyph(45, 0, 3, 8), at: [30, 10] },
    { id: glyph(45, 8, 1, 1), at: [40, 10] },
  ]);
});

test('a page of text: 2,000 draws in one message land where their deltas say', async () => {
  const { display, draws, errors, drained } = newDisplay(640, 490);
  // 26 glyphs of 7 × 12, then 40 lines of 50 characters (each line starts left: a wrapping dx).
  display.glyphs(png(26 * 7, 12, 46), ops(...Array.from({ length: 26 }, (_, i) => store(i, i * 7, 0, 7, 12))));
  const page = [];
  for (let line = 0; line < 40; line++) {
    for (let col = 0; col < 50; col++) page.push(draw((line * 7 + col * 3) % 26, 4 + col * 8, 2 + line * 12));
  }
  display.glyphs(new Uint8Array(0), ops(...page));
  await drained();
  assert.deepEqual(errors, []);
  assert.equal(draws.length, 26 + 2000);
  assert.deepEqual(
    draws.slice(26),
    page.map((d) => ({ id: glyph(46, d.slot * 7, 7, 12), at: [d.x, d.y] })),
  );
  assert.deepEqual([display.glyphCache.stores, display.glyphCache.draws], [26, 2000]);
});

test('a slot stored again lets go of its old glyph, within a message and across messages', async () => {
  const { display, draws, errors, drained } = newDisplay();
  display.glyphs(png(2, 2, 50), ops(store(5, 0, 0, 2, 2), draw(5, 2, 0)));
  display.glyphs(png(7, 3, 51), ops(store(5, 4, 0, 3, 3), draw(5, 7, 0), store(5, 10, 0, 4, 1), draw(5, 14, 0)));
  await drained();
  assert.deepEqual(errors, []);
  assert.deepEqual(draws.map((d) => [d.id, ...d.at]), [
    [glyph(50, 0, 2, 2), 0, 0],
    [glyph(50, 0, 2, 2), 2, 0],
    [glyph(51, 0, 3, 3), 4, 0],
    [glyph(51, 0, 3, 3), 7, 0],
    [glyph(51, 3, 4, 1), 10, 0],
    [glyph(51, 3, 4, 1), 14, 0],
  ]);
  assert.ok(bitmap(glyph(50, 0, 2, 2)).closed);
  assert.ok(bitmap(glyph(51, 0, 3, 3)).closed);
  assert.equal(display.glyphCache.get(5), bitmap(glyph(51, 3, 4, 1)));
  assert.ok(!bitmap(glyph(51, 3, 4, 1)).closed);
  assert.equal(display.glyphCache.size, 1);
});

test('every rule break is reported and draws and keeps nothing of its message', async () => {
  const { display, draws, errors, drained } = newDisplay(100, 100);
  display.glyphs(png(4, 4, 60), ops(store(1, 0, 0, 4, 4))); // slot 1: a 4 × 4 glyph
  await drained();
  assert.deepEqual(errors, []);
  const kept = display.glyphCache.get(1);
  draws.length = 0;
  const none = new Uint8Array(0);
  const cases = [
    ['draw of an empty slot (after a store)', png(3, 3, 61), ops(store(2, 0, 0, 3, 3), draw(2, 10, 10), draw(9, 20, 20)), /slot 9 is empty/],
    ['draw of slot 4096', none, deflate(rawRecord(4096, 0, 0)), /slot 4096 is not below 4096/],
    ['store in slot 5000', png(2, 2, 62), deflate(rawRecord(0x8000 | 5000, 0, 0, 2, 2)), /slot 5000 is not below 4096/],
    ['store of a side 0', png(2, 5, 63), deflate(rawRecord(0x8002, 0, 0, 0, 5)), /a 0x5 glyph/],
    ['store 65 wide', png(65, 1, 64), deflate(rawRecord(0x8002, 0, 0, 65, 1)), /a 65x1 glyph/],
    ['store 33 high', png(1, 33, 64), deflate(rawRecord(0x8002, 0, 0, 1, 33)), /a 1x33 glyph/],
    ['atlas too narrow', png(6, 3, 65), ops(store(2, 0, 0, 3, 3), store(3, 5, 0, 4, 3)), /need a 7x3 atlas, the message has a 6x3 atlas/],
    ['atlas too short', png(10, 4, 66), ops(store(2, 0, 0, 3, 5)), /need a 3x5 atlas, the message has a 10x4 atlas/],
    ['an atlas that does not decode', Uint8Array.of(3), ops(store(2, 0, 0, 1, 1)), /cannot be decoded/],
    ['stores without an atlas', none, ops(draw(1, 0, 0), store(2, 8, 0, 1, 1)), /need a 1x1 atlas, the message has no atlas/],
    ['ops ending inside a draw', none, deflate([...encodeGlyphOps([draw(1, 0, 0)]), 1, 0, 0]), /end inside the record at offset 6/],
    ['ops ending inside a store', png(1, 1, 67), deflate([...encodeGlyphOps([draw(1, 0, 0)]), ...rawRecord(0x8002, 1, 1)]), /end inside the record at offset 6/],
    ['ops that do not inflate', none, Uint8Array.of(0xff, 0xff, 0xff), /do not inflate/],
    ['no ops at all', none, none, /do not inflate/],
    ['ops inflating beyond 1 MiB', none, deflate(new Uint8Array(GLYPH_OPS_MAX + 6)), /inflate to more than 1048576 bytes/],
    ['a store outside the canvas', png(3, 3, 68), ops(store(2, 98, 0, 3, 3)), /glyph 3x3 at 98,0 outside the 100x100 canvas/],
    ['a draw outside, after good records', png(3, 3, 69), ops(store(2, 0, 0, 3, 3), draw(1, 50, 50), draw(1, 10, 97)), /glyph 4x4 at 10,97 outside/],
    ['a draw moved left beyond 0 (wraps)', none, ops(draw(1, 10, 10), draw(1, 65526, 10)), /at 65526,10 outside/],
  ];
  for (const [, atlas, bytes] of cases) display.glyphs(atlas, bytes);
  display.glyphs(none, ops(draw(1, 96, 96))); // still usable afterwards
  await drained();
  assert.equal(errors.length, cases.length, errors.join('\n'));
  cases.forEach(([name, , , pattern], i) => assert.match(errors[i], pattern, name));
  assert.deepEqual(draws, [{ id: kept.id, at: [96, 96] }], 'nothing of a refused message is drawn');
  assert.equal(display.glyphCache.size, 1, 'nothing of a refused message is kept');
  assert.equal(display.glyphCache.get(1), kept);
  assert.ok(!kept.closed);
  assert.deepEqual([display.glyphCache.stores, display.glyphCache.draws], [1, 1]);
  const refused = bitmaps.filter((b) => /^6[1-9]/.test(String(b.id)));
  assert.ok(refused.length >= 8, 'the refused messages had atlases and glyphs');
  assert.ok(refused.every((b) => b.closed), 'every bitmap of a refused message is let go of');
});

test('ops of exactly 1 MiB are accepted', async () => {
  const { display, draws, errors, drained } = newDisplay(10, 10);
  // 2 stores (16 bytes) and 174,760 draws (6 bytes each): 1,048,576 bytes.
  const records = [store(0, 0, 0, 1, 1), store(1, 1, 0, 1, 1), ...new Array(174760).fill(draw(1, 1, 0))];
  const bytes = encodeGlyphOps(records);
  assert.equal(bytes.length, GLYPH_OPS_MAX);
  display.glyphs(png(2, 1, 70), deflate(bytes));
  await drained();
  assert.deepEqual(errors, []);
  assert.equal(draws.length, records.length);
});

test('Resize keeps the glyphs; a new connection lets go of every one, even of a message still decoding', async () => {
  const { display, draws, errors, drained } = newDisplay(50, 50);
  display.glyphs(png(5, 2, 80), ops(store(0, 0, 0, 2, 2), store(4095, 2, 0, 3, 1)));
  display.resize(20, 20);
  display.glyphs(new Uint8Array(0), ops(draw(4095, 17, 19), draw(0, 0, 0)));
  await drained();
  assert.deepEqual(errors, []);
  assert.deepEqual(draws.slice(2).map((d) => d.at), [[17, 19], [0, 0]]);
  assert.equal(display.glyphCache.size, 2);

  display.glyphs(png(1, 1, 81), ops(store(7, 0, 0, 1, 1))); // still decoding
  display.reset();
  assert.equal(display.glyphCache.size, 0);
  assert.ok(bitmap(glyph(80, 0, 2, 2)).closed && bitmap(glyph(80, 2, 3, 1)).closed);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(bitmap(glyph(81, 0, 1, 1))?.closed, 'a glyph cut after the reset is let go of');
  assert.equal(display.glyphCache.size, 0);

  draws.length = 0;
  display.glyphs(new Uint8Array(0), ops(draw(0, 0, 0)));
  await drained();
  assert.deepEqual(draws, []);
  assert.match(errors.at(-1), /slot 0 is empty/);
});

test('a message that stores nothing does not use its atlas', async () => {
  const { display, draws, errors, drained } = newDisplay();
  display.glyphs(png(2, 2, 90), ops(store(0, 0, 0, 2, 2)));
  display.glyphs(png(9, 9, 91), ops(draw(0, 5, 5))); // decoded on arrival, then let go of
  display.glyphs(Uint8Array.of(9), ops(draw(0, 7, 7))); // not an image: nothing to cut from it
  await drained();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(errors, []);
  assert.deepEqual(draws.map((d) => d.at), [[0, 0], [5, 5], [7, 7]]);
  assert.ok(bitmap(91).closed);
  assert.ok(!decodes.some((d) => d.crop?.startsWith('91@')), 'nothing cut from it');
});

// ---------------------------------------------------------------------------
// H.264 video, with a fake WebCodecs decoder (Node has no WebCodecs)

/** Node has no EncodedVideoChunk either: a plain record of its init. */
globalThis.EncodedVideoChunk ??= class {
  constructor({ type, timestamp, data }) {
    Object.assign(this, { type, timestamp, data: Uint8Array.from(data), byteLength: data.length });
  }
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The fake "H.264": an access unit ends with 4 bytes [tag, width, height, delay]; the decoder gives
 * back a picture `v${tag}` of that size `delay` ms after the previous one (pictures come out in
 * decode order, as from a real decoder). Tag ERROR makes the decoder fail on that chunk, delay
 * NEVER makes it hang: no picture for that chunk or any later one.
 */
const ERROR = 0xee;
const NEVER = 0xff;
const SPS = [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0x8c, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80];
const keyUnit = (tag, w = 16, h = 16, delay = 0) => Uint8Array.of(...SPS, 0, 0, 1, 0x65, tag, w, h, delay);
const deltaUnit = (tag, w = 16, h = 16, delay = 0) => Uint8Array.of(0, 0, 1, 0x41, tag, w, h, delay);

/** Every picture the fake decoders made. */
const frames = [];

class FakeDecoder {
  constructor(init, log) {
    this.init = init;
    this.log = log;
    this.state = 'unconfigured';
    this.configs = [];
    this.chunks = [];
    this.flushes = 0;
    this.chain = Promise.resolve();
    log.push(this);
  }

  configure(config) {
    if (this.state === 'closed') throw new Error('InvalidStateError: configure on a closed decoder');
    this.configs.push(config);
    this.state = 'configured';
  }

  decode(chunk) {
    if (this.state !== 'configured') throw new Error(`InvalidStateError: decode on a ${this.state} decoder`);
    this.chunks.push(`${chunk.type} ${chunk.timestamp}`);
    const [tag, width, height, delay] = chunk.data.slice(-4);
    this.chain = this.chain.then(async () => {
      await sleep(delay === NEVER ? 0 : delay);
      if (delay === NEVER) this.stuck = true;
      if (this.state === 'closed' || this.stuck) return;
      if (tag === ERROR) {
        this.state = 'closed';
        this.init.error(new Error('EncodingError: the fake decoder failed'));
        return;
      }
      const frame = { id: `v${tag}`, timestamp: chunk.timestamp, displayWidth: width, displayHeight: height, codedWidth: width, codedHeight: height, closed: false, close() { this.closed = true; } };
      frames.push(frame);
      this.init.output(frame);
    });
  }

  flush() {
    this.flushes++;
    return this.chain;
  }

  close() {
    this.state = 'closed';
  }
}

/** A display that announced H.264, with fake decoders (`decoders`, in creation order). */
function videoDisplay(width = 100, height = 100, options = {}) {
  const decoders = [];
  const d = newDisplay(width, height, { videoDecoderFactory: (init) => new FakeDecoder(init, decoders), ...options });
  d.display.announceCodecs(CODECS_PNG | CODECS_H264);
  return { ...d, decoders };
}

/** A Video message (what decodeServerMessage returns). */
const video = (stream, flags, x, y, w, h, data, clips = []) => ({
  type: 'Video', stream, key: (flags & 1) !== 0, end: (flags & 2) !== 0, x, y, w, h, clips, data,
});
const KEY = 1;
const END = 2;
const frame = (tag) => frames.find((f) => f.id === `v${tag}`);

test('video: pictures are drawn in message order, however late the decoder gives them back', async () => {
  const { display, draws, calls, errors, drained, decoders } = videoDisplay();
  display.video(video(1, KEY, 0, 0, 16, 16, keyUnit(1, 16, 16, 30))); // stream 1 is slow to start
  display.tile(20, 0, 2, 2, CODEC_PNG, png(2, 2, 2)); // a quick tile in between
  display.video(video(2, KEY, 40, 0, 10, 8, keyUnit(3, 10, 8, 0))); // stream 2 decodes at once
  display.video(video(1, 0, 0, 0, 16, 16, deltaUnit(4, 16, 16, 0)));
  display.video(video(2, 0, 40, 0, 10, 8, deltaUnit(5, 10, 8, 5)));
  display.fill(0, 0, 1, 1, 0, 0, 0);
  await drained();
  assert.deepEqual(errors, []);
  assert.deepEqual(draws.map((d) => d.id), ['v1', 2, 'v3', 'v4', 'v5']);
  // Without clips: the w × h top-left of the picture, 1:1 at (x, y).
  assert.deepEqual(calls.find((c) => c.id === 'v3').args, [0, 0, 10, 8, 40, 0, 10, 8]);
  assert.equal(decoders.length, 2);
  assert.deepEqual(decoders[0].configs, [{ codec: 'avc1.42c01f', optimizeForLatency: true }]);
  assert.deepEqual(decoders[0].chunks, ['key 0', 'delta 1']);
  assert.deepEqual(decoders[1].chunks, ['key 0', 'delta 1']);
  assert.deepEqual(decoders.map((d) => d.flushes), [0, 0], 'never flushed while the stream goes on');
  assert.deepEqual([display.videoFrames, display.videoStreams], [4, 2]);
  for (const tag of [1, 3, 4, 5]) assert.ok(frame(tag).closed, `picture v${tag} closed once drawn`);
  assert.deepEqual(decoders.map((d) => d.state), ['configured', 'configured'], 'the streams stay open');
});

test('video: the clips are the parts of the picture drawn, each 1:1 where it lies', async () => {
  const { display, calls, errors, drained } = videoDisplay(200, 200);
  const clips = [{ x: 50, y: 60, w: 16, h: 16 }, { x: 90, y: 84, w: 30, h: 6 }];
  display.video(video(9, KEY, 50, 60, 70, 30, keyUnit(10, 80, 32), clips));
  await drained();
  assert.deepEqual(errors, []);
  assert.deepEqual(calls.map((c) => [c.id, ...c.args]), [
    ['v10', 0, 0, 16, 16, 50, 60, 16, 16],
    ['v10', 40, 24, 30, 6, 90, 84, 30, 6],
  ]);
  assert.equal(display.videoFrames, 1);
});

test('video: rule breaks are reported at their turn and draw, open and decode nothing', async () => {
  const { display, draws, errors, drained, decoders } = videoDisplay(100, 100);
  display.video(video(1, 0, 0, 0, 16, 16, deltaUnit(20))); // stream 1 is not open
  display.video(video(1, KEY, 0, 0, 16, 16, Uint8Array.of(0, 0, 1, 0x65, 21, 16, 16, 0))); // no SPS
  display.video(video(1, KEY, 0, 0, 0, 16, keyUnit(22))); // an empty rectangle
  for (let id = 1; id <= VIDEO_MAX_STREAMS; id++) display.video(video(id, KEY, 0, 0, 16, 16, keyUnit(30 + id)));
  display.video(video(7, KEY, 0, 0, 16, 16, keyUnit(23))); // a 5th stream
  display.video(video(1, KEY, 0, 0, 16, 16, keyUnit(35))); // a KEY for an open stream is fine with 4 open
  display.video(video(2, 0, 90, 0, 16, 16, deltaUnit(24))); // outside the canvas
  display.video(video(3, 0, 0, 90, 16, 16, deltaUnit(25))); // outside the canvas
  display.resize(200, 100);
  display.video(video(6, KEY, 90, 0, 16, 16, keyUnit(36))); // inside the canvas of its turn
  display.video(video(6, 0, 90, 90, 16, 16, deltaUnit(26))); // outside it
  display.video(video(6, 0, 184, 84, 16, 16, deltaUnit(37))); // still usable afterwards
  await drained();
  const expected = [
    /stream 1 is not open/,
    /a KEY message without an SPS/,
    /an empty 0x16 rectangle/,
    /stream 7 would be a 5th open stream/,
    /a 16x16 rectangle at 90,0 outside the 100x100 canvas/,
    /a 16x16 rectangle at 0,90 outside the 100x100 canvas/,
    /a 16x16 rectangle at 90,90 outside the 200x100 canvas/,
  ];
  assert.equal(errors.length, expected.length, errors.join('\n'));
  expected.forEach((pattern, i) => assert.match(errors[i], pattern));
  assert.deepEqual(draws.map((d) => d.id), ['v31', 'v32', 'v33', 'v34', 'v35', 'v36', 'v37']);
  assert.equal(decoders.length, VIDEO_MAX_STREAMS + 1, 'no decoder for a refused KEY');
  assert.deepEqual(decoders[0].configs.length, 2, 'a KEY on an open stream reconfigures its decoder');
  assert.deepEqual(decoders[0].chunks, ['key 0', 'key 1']);
  assert.deepEqual(decoders[4].chunks, ['key 0', 'delta 1'], 'nothing decoded for a message outside the canvas');
  assert.deepEqual([display.videoFrames, display.videoStreams], [7, 6]);
  assert.ok(!frames.some((f) => ['v20', 'v21', 'v22', 'v23', 'v24', 'v25', 'v26'].includes(f.id)), 'nothing decoded for a message refused on arrival');
});

test('video: a picture smaller than its rectangle is refused and closes its stream until a KEY', async () => {
  const { display, draws, errors, drained, decoders } = videoDisplay();
  display.video(video(4, KEY, 0, 0, 16, 16, keyUnit(100)));
  display.video(video(4, 0, 0, 0, 16, 16, deltaUnit(101, 16, 15))); // too short
  display.video(video(4, 0, 0, 0, 16, 16, deltaUnit(102))); // already given to the stream
  await sleep(20);
  display.video(video(4, 0, 0, 0, 16, 16, deltaUnit(103))); // the stream is closed
  display.video(video(4, KEY, 0, 0, 16, 16, keyUnit(104, 17, 16)));
  display.video(video(4, 0, 0, 0, 16, 16, deltaUnit(105, 15, 16))); // too narrow
  await drained();
  assert.equal(errors.length, 4, errors.join('\n'));
  assert.match(errors[0], /a 16x15 picture for a 16x16 rectangle \(stream 4 closed\)/);
  assert.match(errors[1], /a 16x15 picture for a 16x16 rectangle/);
  assert.match(errors[2], /stream 4 is not open/);
  assert.match(errors[3], /a 15x16 picture for a 16x16 rectangle/);
  assert.deepEqual(draws.map((d) => d.id), ['v100', 'v104'], 'a larger picture is fine: its top-left is drawn');
  for (const tag of [101, 102, 105]) assert.ok(!frame(tag) || frame(tag).closed, `picture v${tag} let go of`);
  assert.deepEqual(decoders.map((d) => d.state), ['closed', 'closed']);
  assert.equal(display.openStreams.size, 0);
});

test('video: without H.264 announced, a Video message is refused and no decoder is made', async () => {
  const decoders = [];
  const { display, draws, errors, drained } = newDisplay(100, 100, { videoDecoderFactory: (init) => new FakeDecoder(init, decoders) });
  display.announceCodecs(CODECS_PNG | CODECS_JPEG | CODECS_GLYPHS);
  display.video(video(1, KEY, 0, 0, 16, 16, keyUnit(40)));
  await drained();
  assert.deepEqual(draws, []);
  assert.equal(errors.length, 1);
  assert.match(errors[0], /H.264 \(codec bit 3\) was not announced/);
  assert.equal(decoders.length, 0);
});

test('video: END draws its picture (flushing the decoder), then closes the stream; END alone draws nothing', async () => {
  const { display, draws, errors, drained, decoders } = videoDisplay();
  display.video(video(1, KEY, 0, 0, 16, 16, keyUnit(50)));
  display.video(video(1, END, 0, 0, 16, 16, deltaUnit(51, 16, 16, 10)));
  display.video(video(1, 0, 0, 0, 16, 16, deltaUnit(52))); // the stream is closed
  display.video(video(2, KEY, 0, 0, 16, 16, keyUnit(53)));
  display.video(video(2, END, 0, 0, 16, 16, new Uint8Array(0)));
  display.video(video(2, KEY | END, 0, 0, 16, 16, keyUnit(54))); // a one-picture stream
  await drained();
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0], /stream 1 is not open/);
  assert.deepEqual(draws.map((d) => d.id), ['v50', 'v51', 'v53', 'v54']);
  assert.equal(decoders.length, 3);
  assert.deepEqual(decoders.map((d) => d.state), ['closed', 'closed', 'closed']);
  assert.deepEqual(decoders.map((d) => d.flushes), [1, 0, 1], 'flushed only for the last picture of a stream');
  assert.equal(display.openStreams.size, 0);
  assert.equal(display.liveStreams.size, 0);
  assert.deepEqual([display.videoFrames, display.videoStreams], [4, 3]);
});

test('video: an empty END for a stream that is not open does nothing, and is no error', async () => {
  const { display, draws, errors, drained, decoders } = videoDisplay();
  display.video(video(9, END, 0, 0, 16, 16, new Uint8Array(0))); // never opened
  display.video(video(1, KEY, 0, 0, 16, 16, keyUnit(60)));
  display.video(video(1, END, 0, 0, 16, 16, new Uint8Array(0)));
  display.video(video(1, END, 0, 0, 16, 16, new Uint8Array(0))); // already closed
  display.video(video(9, END, 0, 0, 16, 16, deltaUnit(61))); // an END with data still needs its stream
  await drained();
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0], /stream 9 is not open/);
  assert.deepEqual(draws.map((d) => d.id), ['v60']);
  assert.equal(decoders.length, 1);
  assert.equal(display.openStreams.size, 0);
});

test('video: a stream may be reopened by a KEY right after its END, before the END is drawn', async () => {
  const { display, draws, errors, drained, decoders } = videoDisplay();
  display.video(video(5, KEY, 0, 0, 16, 16, keyUnit(55, 16, 16, 20)));
  display.video(video(5, END, 0, 0, 16, 16, new Uint8Array(0)));
  display.video(video(5, KEY, 20, 0, 16, 16, keyUnit(56)));
  display.video(video(5, 0, 20, 0, 16, 16, deltaUnit(57)));
  await drained();
  assert.deepEqual(errors, []);
  assert.deepEqual(draws.map((d) => d.id), ['v55', 'v56', 'v57']);
  assert.deepEqual(decoders.map((d) => d.state), ['closed', 'configured']);
});

test('video: Resize closes every open stream, at its turn', async () => {
  const { display, draws, errors, drained, decoders } = videoDisplay();
  display.video(video(1, KEY, 0, 0, 16, 16, keyUnit(60, 16, 16, 15)));
  display.video(video(2, KEY, 20, 0, 16, 16, keyUnit(61)));
  display.resize(80, 60);
  assert.equal(display.openStreams.size, 0, 'closed as of the Resize message');
  assert.deepEqual(decoders.map((d) => d.state), ['configured', 'configured'], 'decoders close at the Resize turn');
  display.video(video(1, 0, 0, 0, 16, 16, deltaUnit(62))); // stream 1 was closed by the Resize
  display.video(video(1, KEY, 0, 0, 16, 16, keyUnit(63)));
  await drained();
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0], /stream 1 is not open/);
  assert.deepEqual(draws.map((d) => d.id), ['v60', 'v61', 'v63']);
  assert.deepEqual(decoders.map((d) => d.state), ['closed', 'closed', 'configured']);
});

test('video: a decoder error fails the pictures still awaited and closes the stream until a KEY', async () => {
  const { display, draws, errors, drained, decoders } = videoDisplay();
  display.video(video(1, KEY, 0, 0, 16, 16, keyUnit(70)));
  display.video(video(1, 0, 0, 0, 16, 16, deltaUnit(ERROR, 16, 16, 5)));
  display.video(video(1, 0, 0, 0, 16, 16, deltaUnit(71))); // already given to the failing decoder
  await sleep(30);
  display.video(video(1, 0, 0, 0, 16, 16, deltaUnit(72))); // after the error: the stream is closed
  display.video(video(1, KEY, 0, 0, 16, 16, keyUnit(73)));
  display.video(video(1, 0, 0, 0, 16, 16, deltaUnit(74)));
  await drained();
  assert.equal(errors.length, 3, errors.join('\n'));
  assert.match(errors[0], /the decoder of stream 1 failed: Error: EncodingError/);
  assert.match(errors[1], /the decoder of stream 1 failed/);
  assert.match(errors[2], /stream 1 is not open/);
  assert.deepEqual(draws.map((d) => d.id), ['v70', 'v73', 'v74']);
  assert.deepEqual(decoders.map((d) => d.state), ['closed', 'configured']);
  assert.deepEqual(decoders[1].chunks, ['key 0', 'delta 1']);
});

test('video: a decoder that never gives a picture back cannot stall the queue', async () => {
  const { display, draws, errors, drained, decoders } = videoDisplay(100, 100, { videoTimeoutMs: 40 });
  display.video(video(1, KEY, 0, 0, 16, 16, keyUnit(80)));
  display.video(video(1, 0, 0, 0, 16, 16, deltaUnit(81, 16, 16, NEVER)));
  display.video(video(1, 0, 0, 0, 16, 16, deltaUnit(82)));
  display.tile(50, 50, 2, 2, CODEC_PNG, png(2, 2, 3));
  await drained();
  assert.equal(errors.length, 2, errors.join('\n'));
  for (const e of errors) assert.match(e, /no picture from the decoder of stream 1 within 40 ms/);
  assert.deepEqual(draws.map((d) => d.id), ['v80', 3]);
  assert.equal(decoders[0].state, 'closed');
  assert.equal(display.openStreams.size, 0);
});

test('video: a picture the decoder skips is an error; later pictures still go to their own messages', async () => {
  const { display, draws, errors, drained, decoders } = videoDisplay();
  display.video(video(1, KEY, 0, 0, 16, 16, keyUnit(85)));
  await drained();
  // The decoder drops chunk 1 (a real decoder may, on corrupt data) and gives chunk 2 back.
  const decoder = decoders[0];
  const real = decoder.decode.bind(decoder);
  decoder.decode = (chunk) => {
    if (chunk.timestamp === 1) {
      decoder.chunks.push(`dropped ${chunk.timestamp}`);
      return;
    }
    real(chunk);
  };
  display.video(video(1, 0, 0, 0, 16, 16, deltaUnit(86)));
  display.video(video(1, 0, 20, 0, 16, 16, deltaUnit(87)));
  await drained();
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0], /gave no picture for chunk 1/);
  assert.deepEqual(draws.map((d) => d.id), ['v85', 'v87']);
});

test('video: a new connection closes every decoder, and pictures still awaited do not stall the new queue', async () => {
  const { display, draws, errors, drained, decoders } = videoDisplay();
  display.video(video(1, KEY, 0, 0, 16, 16, keyUnit(90, 16, 16, NEVER)));
  display.video(video(2, KEY, 0, 0, 16, 16, keyUnit(91, 16, 16, 10)));
  await sleep(1);
  display.reset();
  assert.deepEqual(decoders.map((d) => d.state), ['closed', 'closed']);
  assert.equal(display.codecs, 0, 'the codecs are announced again by the next hello');
  display.announceCodecs(CODECS_PNG | CODECS_H264);
  display.video(video(1, 0, 0, 0, 16, 16, deltaUnit(92))); // not open on this connection
  display.video(video(1, KEY, 0, 0, 16, 16, keyUnit(93)));
  await drained();
  await sleep(20);
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0], /stream 1 is not open/);
  assert.deepEqual(draws.map((d) => d.id), ['v93']);
  assert.ok(!frames.some((f) => f.id === 'v91' && !f.closed), 'a picture of the old connection is let go of');
  assert.equal(display.liveStreams.size, 1);
});
