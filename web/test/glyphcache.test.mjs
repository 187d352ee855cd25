// Unit tests of the glyph cache's slot store and of the ops' inflation: node --test web/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { GlyphCache, GlyphCacheError, inflateRaw } from '../static/viewer/glyphcache.js';
import { GLYPH_OPS_MAX, GLYPH_SLOTS } from '../static/viewer/protocol.js';

/** A fake ImageBitmap: it records whether it was closed. */
function bitmap(name) {
  return { name, closed: false };
}

function newCache() {
  return new GlyphCache((b) => {
    assert.equal(b.closed, false, `${b.name} closed twice`);
    b.closed = true;
  });
}

test('4,096 slots, empty at first; stores replace and let go; only filled slots draw', () => {
  const cache = newCache();
  assert.equal(cache.slots.length, GLYPH_SLOTS);
  assert.equal(cache.size, 0);
  assert.throws(() => cache.get(0), /glyph slot 0 is empty/);
  assert.equal(cache.peek(0), null);
  const [a, b, c] = [bitmap('a'), bitmap('b'), bitmap('c')];
  cache.store(0, a);
  cache.store(GLYPH_SLOTS - 1, b);
  assert.equal(cache.get(0), a);
  assert.equal(cache.get(GLYPH_SLOTS - 1), b);
  cache.store(0, c);
  assert.equal(a.closed, true);
  assert.equal(c.closed, false);
  assert.equal(cache.get(0), c);
  assert.deepEqual([cache.size, cache.stores], [2, 3]);
  for (const slot of [GLYPH_SLOTS, -1, 1.5]) {
    assert.throws(() => cache.get(slot), GlyphCacheError, String(slot));
    assert.throws(() => cache.store(slot, bitmap('x')), /is not below 4096/, String(slot));
  }
  assert.equal(cache.stores, 3, 'refused stores are not counted');
});

test('a new connection lets go of every glyph; the counters stay', () => {
  const cache = newCache();
  const glyphs = [bitmap('a'), bitmap('b'), bitmap('c')];
  cache.store(1, glyphs[0]);
  cache.store(200, glyphs[1]);
  cache.store(4095, glyphs[2]);
  cache.draws = 5;
  cache.reset();
  assert.ok(glyphs.every((g) => g.closed));
  assert.equal(cache.size, 0);
  assert.throws(() => cache.get(200), /slot 200 is empty/);
  assert.deepEqual([cache.stores, cache.draws], [3, 5]);
  cache.reset(); // nothing left to let go of (the dispose above asserts no double close)
});

test('inflateRaw: raw DEFLATE of any size up to the cap, in one piece', async () => {
  for (const size of [0, 1, 6, 70_000, GLYPH_OPS_MAX]) {
    const data = Uint8Array.from({ length: size }, (_, i) => (i * 31 + (i >> 9)) & 0xff);
    const out = await inflateRaw(new Uint8Array(deflateRawSync(data)), GLYPH_OPS_MAX);
    assert.equal(out.length, size);
    assert.ok(Buffer.from(out).equals(Buffer.from(data)), `${size} bytes`);
  }
});

test('inflateRaw: beyond the cap, not DEFLATE, cut, or with a zlib or gzip header are errors', async () => {
  const big = new Uint8Array(deflateRawSync(new Uint8Array(GLYPH_OPS_MAX + 1)));
  assert.ok(big.length < 2000, 'a small message');
  await assert.rejects(inflateRaw(big, GLYPH_OPS_MAX), /glyph ops inflate to more than 1048576 bytes/);
  await assert.rejects(inflateRaw(new Uint8Array(deflateRawSync(new Uint8Array(11))), 10), /more than 10 bytes/);
  const ok = new Uint8Array(deflateRawSync(Uint8Array.of(1, 2, 3, 4, 5, 6)));
  for (const [name, bytes] of [
    ['empty', new Uint8Array(0)],
    ['garbage', Uint8Array.of(0xff, 0xff, 0xff)],
    ['cut', ok.subarray(0, ok.length - 2)],
    ['zlib', new Uint8Array(deflateSync(Uint8Array.of(1, 2, 3)))],
    ['gzip', new Uint8Array(gzipSync(Uint8Array.of(1, 2, 3)))],
  ]) {
    await assert.rejects(inflateRaw(bytes, GLYPH_OPS_MAX), /glyph ops do not inflate/, name);
  }
});
