// @ts-check
/**
 * The client tile cache (docs/protocol.md, "Tile cache"): decoded tiles kept by slot number.
 *
 * The gateway dictates every slot: `CacheStore` fills a slot (replacing its tile), `CacheDraw`
 * draws a slot's tile. The viewer only keeps what it is told, so its slots always hold what the
 * gateway believes they hold. This module has no DOM: the viewer keeps `ImageBitmap`s here, the
 * unit tests keep plain objects. `bascule_display::Canvas` implements the same rules in Rust.
 */

import { MAX_CACHE_TILES } from './protocol.js';

/** A cache message that breaks the rules (a gateway bug): reported, never fatal. */
export class TileCacheError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'TileCacheError';
  }
}

/**
 * @template T
 */
export class TileCache {
  /**
   * @param {(value: T) => void} [dispose] called with every tile the cache lets go of
   *   (replaced, or dropped by `reset`), e.g. `(bitmap) => bitmap.close()`
   */
  constructor(dispose) {
    this.dispose = dispose ?? (() => {});
    /** @type {number | null} the offer made on this connection */
    this.offered = null;
    /** @type {(T | null)[] | null} the agreed slots, null before `CacheAgreed` */
    this.slots = null;
    /** `CacheDraw`s drawn (since the page loaded). */
    this.hits = 0;
    /** `CacheStore`s kept (since the page loaded). */
    this.stores = 0;
  }

  /** Slots agreed on this connection (0 before the agreement). */
  get capacity() {
    return this.slots ? this.slots.length : 0;
  }

  /** Slots holding a tile. */
  get size() {
    return this.slots ? this.slots.reduce((n, v) => n + (v === null ? 0 : 1), 0) : 0;
  }

  /** Records the CacheOffer sent right after the hello. @param {number} tiles */
  offer(tiles) {
    if (!Number.isInteger(tiles) || tiles < 0 || tiles > MAX_CACHE_TILES) {
      throw new RangeError(`tile cache offer out of range: ${tiles}`);
    }
    this.offered = tiles;
  }

  /** CacheAgreed: once per connection, after an offer, for no more than offered. @param {number} tiles */
  agree(tiles) {
    if (this.slots !== null) throw new TileCacheError('a second CacheAgreed');
    if (this.offered === null) throw new TileCacheError('CacheAgreed without a CacheOffer');
    if (tiles > this.offered) throw new TileCacheError(`CacheAgreed of ${tiles} tiles, ${this.offered} offered`);
    this.slots = new Array(tiles).fill(null);
  }

  /**
   * Throws unless `slot` is an agreed slot (what a CacheStore needs before anything is drawn).
   * @param {number} slot
   * @returns {(T | null)[]}
   */
  check(slot) {
    if (this.slots === null) throw new TileCacheError('cache message before CacheAgreed');
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.slots.length) {
      throw new TileCacheError(`slot ${slot} beyond the ${this.slots.length} agreed`);
    }
    return this.slots;
  }

  /** CacheStore: keep `value` in `slot`, letting go of the tile it held. @param {number} slot @param {T} value */
  store(slot, value) {
    const slots = this.check(slot);
    const old = slots[slot];
    slots[slot] = value;
    if (old !== null && old !== value) this.dispose(old);
    this.stores++;
  }

  /** CacheDraw: the tile kept in `slot` (the caller counts the hit once drawn). @param {number} slot @returns {T} */
  get(slot) {
    const value = this.check(slot)[slot];
    if (value === null) throw new TileCacheError(`slot ${slot} is empty`);
    return value;
  }

  /** A new connection: no offer, no agreement, every tile let go of (the counters stay). */
  reset() {
    if (this.slots) for (const value of this.slots) if (value !== null) this.dispose(value);
    this.slots = null;
    this.offered = null;
  }
}
