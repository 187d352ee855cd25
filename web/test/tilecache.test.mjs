// Unit tests of the tile cache's slot store: node --test web/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TileCache, TileCacheError } from '../static/viewer/tilecache.js';
import { MAX_CACHE_TILES } from '../static/viewer/protocol.js';

/** A fake ImageBitmap: it records whether it was closed. */
function bitmap(name) {
  return { name, closed: false };
}

function newCache() {
  return new TileCache((b) => {
    assert.equal(b.closed, false, `${b.name} closed twice`);
    b.closed = true;
  });
}

test('nothing is kept or drawn before the agreement, and no agreement without an offer', () => {
  const cache = newCache();
  assert.equal(cache.capacity, 0);
  assert.throws(() => cache.store(0, bitmap('a')), /before CacheAgreed/);
  assert.throws(() => cache.get(0), /before CacheAgreed/);
  assert.throws(() => cache.agree(4), /without a CacheOffer/);
  cache.offer(4);
  assert.throws(() => cache.agree(5), /5 tiles, 4 offered/);
  cache.agree(4);
  assert.equal(cache.capacity, 4);
  assert.throws(() => cache.agree(4), TileCacheError);
  assert.deepEqual([cache.hits, cache.stores, cache.size], [0, 0, 0]);
});

test('slots are filled by stores, replaced tiles are closed, and only filled slots draw', () => {
  const cache = newCache();
  cache.offer(2048);
  cache.agree(3);
  const [a, b, c] = [bitmap('a'), bitmap('b'), bitmap('c')];
  assert.throws(() => cache.get(1), /slot 1 is empty/);
  cache.store(1, a);
  cache.store(2, b);
  assert.equal(cache.get(1), a);
  assert.equal(cache.size, 2);
  // The server reuses slot 1 (its least recently used): the old tile is let go of.
  cache.store(1, c);
  assert.equal(a.closed, true);
  assert.equal(cache.get(1), c);
  assert.equal(c.closed, false);
  assert.throws(() => cache.store(3, bitmap('d')), /slot 3 beyond the 3 agreed/);
  assert.throws(() => cache.get(-1), /beyond/);
  assert.throws(() => cache.get(1.5), /beyond/);
  assert.equal(cache.stores, 3, 'refused stores are not counted');
  assert.equal(cache.hits, 0, 'the display counts hits once drawn');
});

test('an agreement of 0 tiles keeps nothing', () => {
  const cache = newCache();
  cache.offer(2048);
  cache.agree(0);
  assert.throws(() => cache.store(0, bitmap('a')), /slot 0 beyond the 0 agreed/);
});

test('a new connection lets go of every tile and needs a new offer; the counters stay', () => {
  const cache = newCache();
  cache.offer(8);
  cache.agree(8);
  const tiles = [bitmap('a'), bitmap('b')];
  cache.store(0, tiles[0]);
  cache.store(5, tiles[1]);
  cache.reset();
  assert.ok(tiles.every((t) => t.closed));
  assert.equal(cache.capacity, 0);
  assert.throws(() => cache.get(0), /before CacheAgreed/);
  assert.throws(() => cache.agree(8), /without a CacheOffer/);
  cache.offer(8);
  cache.agree(2);
  assert.equal(cache.stores, 2);
});

test('offers are checked against the protocol bound', () => {
  const cache = newCache();
  assert.throws(() => cache.offer(MAX_CACHE_TILES + 1), RangeError);
  assert.throws(() => cache.offer(-1), RangeError);
  cache.offer(MAX_CACHE_TILES);
});

test('a long run against a model of the server: the client keeps exactly what it was told', () => {
  // The server side, as in bascule-display: slots filled in order, then the least recently used.
  const capacity = 8;
  const cache = newCache();
  cache.offer(2048);
  cache.agree(capacity);
  /** @type {Map<number, number>} content → slot */
  const slotOf = new Map();
  /** @type {number[]} slots from least to most recently used */
  const lru = [];
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
  for (let i = 0; i < 5000; i++) {
    const content = (next() >>> 16) % 20;
    const slot = slotOf.get(content);
    if (slot !== undefined) {
      lru.splice(lru.indexOf(slot), 1);
      lru.push(slot);
      assert.equal(cache.get(slot).name, `content ${content}`);
      cache.hits++;
    } else {
      const target = lru.length < capacity ? lru.length : lru.shift();
      for (const [k, v] of slotOf) if (v === target) slotOf.delete(k);
      slotOf.set(content, target);
      lru.push(target);
      cache.store(target, bitmap(`content ${content}`));
    }
  }
  assert.equal(cache.hits + cache.stores, 5000);
  assert.ok(cache.stores > capacity * 10, 'many evictions');
  assert.equal(cache.size, capacity);
});
