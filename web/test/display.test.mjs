// Unit tests of the viewer's drawing queue with the tile cache, on a stub canvas: node --test web/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Display } from '../static/viewer/display.js';

/**
 * A stub of the browser's createImageBitmap: the "PNG" bytes are [width, height, id], and a
 * decode takes a few event-loop turns (so that the queue's ordering is exercised).
 */
const bitmaps = [];
globalThis.createImageBitmap = async (blob) => {
  const [width, height, id] = new Uint8Array(await blob.arrayBuffer());
  await new Promise((resolve) => setTimeout(resolve, (id * 7) % 5));
  const bitmap = { width, height, id, closed: false, close() { this.closed = true; } };
  bitmaps.push(bitmap);
  return bitmap;
};

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
