// @ts-check
/**
 * The client glyph cache (docs/protocol.md, "Glyph cache"): small decoded bitmaps kept by slot.
 *
 * Like the tile cache (tilecache.js), the gateway dictates every slot: a `store` record of a
 * `Glyphs` message fills a slot (replacing its glyph), a `draw` record draws a slot's glyph. There
 * is no negotiation: a viewer that announces `CODECS_GLYPHS` has `GLYPH_SLOTS` slots, empty at
 * first, for the life of its WebSocket. This module has no DOM: the viewer keeps `ImageBitmap`s
 * here, the unit tests keep plain objects. It also inflates the ops (raw DEFLATE, with the
 * browser's `DecompressionStream`, which Node has too).
 */

import { GLYPH_SLOTS } from './protocol.js';

/** A `Glyphs` message that breaks the rules (a gateway bug): reported, never fatal. */
export class GlyphCacheError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'GlyphCacheError';
  }
}

/**
 * @template T
 */
export class GlyphCache {
  /**
   * @param {(value: T) => void} [dispose] called with every glyph the cache lets go of
   *   (replaced, or dropped by `reset`), e.g. `(bitmap) => bitmap.close()`
   */
  constructor(dispose) {
    this.dispose = dispose ?? (() => {});
    /** @type {(T | null)[]} */
    this.slots = new Array(GLYPH_SLOTS).fill(null);
    /** Glyphs drawn from a slot (draw records, since the page loaded). */
    this.draws = 0;
    /** Glyphs drawn and kept (store records, since the page loaded). */
    this.stores = 0;
  }

  /** Slots holding a glyph. */
  get size() {
    return this.slots.reduce((n, v) => n + (v === null ? 0 : 1), 0);
  }

  /**
   * The glyph kept in `slot`, or null when it is empty.
   * @param {number} slot
   * @returns {T | null}
   */
  peek(slot) {
    if (!Number.isInteger(slot) || slot < 0 || slot >= GLYPH_SLOTS) {
      throw new GlyphCacheError(`glyph slot ${slot} is not below ${GLYPH_SLOTS}`);
    }
    return this.slots[slot];
  }

  /** The glyph kept in `slot`. @param {number} slot @returns {T} */
  get(slot) {
    const value = this.peek(slot);
    if (value === null) throw new GlyphCacheError(`glyph slot ${slot} is empty`);
    return value;
  }

  /** Keep `value` in `slot`, letting go of the glyph it held. @param {number} slot @param {T} value */
  store(slot, value) {
    const old = this.peek(slot);
    this.slots[slot] = value;
    if (old !== null && old !== value) this.dispose(old);
    this.stores++;
  }

  /** A new connection: every glyph let go of (the counters stay). */
  reset() {
    for (let slot = 0; slot < this.slots.length; slot++) {
      const value = this.slots[slot];
      if (value !== null) {
        this.slots[slot] = null;
        this.dispose(value);
      }
    }
  }
}

/**
 * Inflate a raw DEFLATE stream (RFC 1951), refusing more than `max` bytes of output: the
 * decompression is cancelled as soon as it goes beyond, so a small message cannot make the viewer
 * hold a large buffer.
 * @param {Uint8Array} bytes
 * @param {number} max
 * @returns {Promise<Uint8Array>}
 * @throws {GlyphCacheError} when the bytes do not inflate or inflate to more than `max`
 */
export async function inflateRaw(bytes, max) {
  const blob = new Blob([/** @type {Uint8Array<ArrayBuffer>} */ (bytes)]);
  const reader = blob.stream().pipeThrough(new DecompressionStream('deflate-raw')).getReader();
  /** @type {Uint8Array[]} */
  const chunks = [];
  let total = 0;
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (err) {
      throw new GlyphCacheError(`glyph ops do not inflate: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (chunk.done) break;
    total += chunk.value.length;
    if (total > max) {
      reader.cancel().catch(() => {});
      throw new GlyphCacheError(`glyph ops inflate to more than ${max} bytes`);
    }
    chunks.push(chunk.value);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}
