// Unit tests of the viewer's drawing queue with the tile cache, the glyph cache and JPEG tiles,
// on a stub canvas: node --test web/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync } from 'node:zlib';
import { Display } from '../static/viewer/display.js';
import { CODEC_JPEG, CODEC_PNG, GLYPH_OPS_MAX, encodeGlyphOps } from '../static/viewer/protocol.js';

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

/** A stub canvas whose context records every drawImage of a bitmap (not of the canvas). */
function stubCanvas(width, height) {
  const draws = [];
  const ctx = {
    drawImage(image, ...args) {
      if (image.id !== undefined) draws.push({ id: image.id, at: args.length === 2 ? args : args.slice(4, 6) });
    },
    fillRect() {},
  };
  return { canvas: { width, height, getContext: () => ctx }, draws };
}

function newDisplay(width = 100, height = 100) {
  const { canvas, draws } = stubCanvas(width, height);
  const errors = [];
  const display = new Display(/** @type {any} */ (canvas), { onError: (e) => errors.push(String(e)) });
  const drained = () => new Promise((resolve) => display.after(resolve));
  return { display, draws, errors, drained };
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
