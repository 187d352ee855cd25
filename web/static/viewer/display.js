// @ts-check
/**
 * Canvas drawing for the Bascule viewer.
 *
 * The canvas backing store always has the remote desktop's exact size; any
 * scaling is done with CSS by the caller. Updates are applied strictly in
 * message order: PNG and JPEG tiles are decoded in parallel as soon as they
 * arrive, but a tile is drawn only after every earlier update (tile, fill,
 * copy, resize, glyphs) has been drawn, and frame callbacks (FrameAck) run
 * after the draws that precede them.
 *
 * The tile cache (`CacheAgreed`, `CacheStore`, `CacheDraw`) goes through the same
 * queue: a stored tile is decoded like a tile, then drawn and kept in its slot
 * (`this.cache`, an ImageBitmap per slot); a cached draw copies a kept bitmap.
 *
 * So does the glyph cache (`Glyphs`): on arrival the ops are inflated and parsed, the
 * atlas decoded and cut into one ImageBitmap per stored glyph; at its turn the message
 * is checked whole against the slots (`this.glyphCache`) and the canvas, then every record
 * is drawn (and every stored glyph kept), or, if anything is wrong, nothing at all.
 *
 * And so does H.264 video (`Video`, video.js): on arrival a message is checked against the open
 * streams and its access unit given to its stream's decoder; at its turn, once the decoder has
 * given its picture back, the picture is drawn (within its clip rectangles). Stream bookkeeping
 * (which streams are open, the canvas size they are checked against) follows message arrival,
 * which is message order; decoders are closed at the turn of the message that closes them (`END`,
 * `Resize`), after every earlier picture was drawn.
 */

import { CODECS_H264, CODEC_JPEG, CODEC_PNG, GLYPH_OPS_MAX, VIDEO_MAX_STREAMS, decodeGlyphOps } from './protocol.js';
import { GlyphCache, GlyphCacheError, inflateRaw } from './glyphcache.js';
import { TileCache } from './tilecache.js';
import { VIDEO_OUTPUT_TIMEOUT_MS, VideoError, VideoStream, avcCodecString, webCodecsDecoder } from './video.js';

/** @type {ImageBitmapOptions} */
const BITMAP_OPTIONS = { premultiplyAlpha: 'none', colorSpaceConversion: 'none' };

/** The image type of each tile codec. @type {Record<number, string>} */
const TILE_TYPES = { [CODEC_PNG]: 'image/png', [CODEC_JPEG]: 'image/jpeg' };

/**
 * @typedef {{kind: 'tile', x: number, y: number, w: number, h: number, promise: Promise<void>, bitmap: ImageBitmap | null, ready: boolean, slot: number | null}} TileOp
 *   `slot` is null for a Tile, the slot to keep it in for a CacheStore
 * @typedef {{kind: 'fill', x: number, y: number, w: number, h: number, color: string}} FillOp
 * @typedef {{kind: 'copy', sx: number, sy: number, w: number, h: number, dx: number, dy: number}} CopyOp
 * @typedef {{kind: 'resize', w: number, h: number, streams: VideoStream[]}} ResizeOp
 *   `streams`: the video streams the Resize closed, whose decoders close at its turn
 * @typedef {{kind: 'call', fn: () => void}} CallOp
 * @typedef {{kind: 'cacheAgreed', tiles: number}} CacheAgreedOp
 * @typedef {{kind: 'cacheDraw', slot: number, x: number, y: number}} CacheDrawOp
 * @typedef {{kind: 'glyphs', promise: Promise<void>, ready: boolean, decoded: DecodedGlyphs | null, error: unknown}} GlyphsOp
 *   `decoded` once the message is decoded, `error` if it could not be
 * @typedef {{kind: 'video', stream: VideoStream | null, x: number, y: number, w: number, h: number, clips: import('./protocol.js').Rect[], end: boolean, promise: Promise<void>, ready: boolean, frame: VideoFrame | null, failed: boolean, error: unknown}} VideoOp
 *   `stream` null when the message was refused on arrival (`failed`); `frame` once decoded (null: nothing to draw)
 * @typedef {TileOp | FillOp | CopyOp | ResizeOp | CallOp | CacheAgreedOp | CacheDrawOp | GlyphsOp | VideoOp} Op
 *
 * @typedef {object} DecodedGlyphs
 * @property {import('./protocol.js').GlyphRecord[]} records
 * @property {ImageBitmap[]} bitmaps the stored glyphs, in the order of their store records
 */

/**
 * @typedef {object} DisplayOptions
 * @property {(width: number, height: number) => void} [onResize]
 * @property {(error: unknown) => void} [onError]
 * @property {import('./video.js').VideoDecoderFactory} [videoDecoderFactory] makes the decoder of
 *   each video stream (default: WebCodecs' `new VideoDecoder(init)`)
 * @property {number} [videoTimeoutMs] how long a video picture may take (default 5 s)
 */

export class Display {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {DisplayOptions} [options]
   */
  constructor(canvas, options = {}) {
    this.canvas = canvas;
    // Default attributes (alpha: true, no colour space tricks): pixels read
    // back with getImageData are exactly the decoded tile pixels.
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('2D canvas context unavailable');
    this.ctx = ctx;
    this.onResize = options.onResize ?? (() => {});
    this.onError = options.onError ?? ((e) => console.error('bascule display:', e));
    /** @type {Op[]} */
    this.queue = [];
    this.head = 0;
    this.running = false;
    /** Bumped by reset(): stale queued work is dropped. */
    this.generation = 0;
    this.width = canvas.width;
    this.height = canvas.height;
    /** @type {TileCache<ImageBitmap>} the tile cache of this connection */
    this.cache = new TileCache((bitmap) => bitmap.close());
    /** @type {GlyphCache<ImageBitmap>} the glyph cache of this connection */
    this.glyphCache = new GlyphCache((bitmap) => bitmap.close());
    /** The codecs announced in this connection's ClientHello (`announceCodecs`). */
    this.codecs = 0;
    this.videoDecoderFactory = options.videoDecoderFactory ?? webCodecsDecoder;
    this.videoTimeoutMs = options.videoTimeoutMs ?? VIDEO_OUTPUT_TIMEOUT_MS;
    /** @type {Map<number, VideoStream>} the open video streams by id, as of the last message received */
    this.openStreams = new Map();
    /** @type {Set<VideoStream>} every stream whose decoder is not closed yet (open, or closing at a later turn) */
    this.liveStreams = new Set();
    /** Video messages whose picture was drawn, since the page loaded. */
    this.videoFrames = 0;
    /** KEY messages accepted (video streams started or restarted), since the page loaded. */
    this.videoStreams = 0;
    /** The canvas size as of the last message received (a Resize sets it on arrival). */
    this.incomingWidth = canvas.width;
    this.incomingHeight = canvas.height;
    this.resetContextState();
  }

  resetContextState() {
    this.ctx.imageSmoothingEnabled = false;
    this.ctx.globalAlpha = 1;
    this.ctx.globalCompositeOperation = 'source-over';
  }

  /** Number of updates not yet drawn. */
  get pending() {
    return this.queue.length - this.head;
  }

  /**
   * Queue a PNG or JPEG tile; decoding starts now, drawing waits for its turn.
   * @param {number} x @param {number} y @param {number} w @param {number} h
   * @param {number} codec
   * @param {Uint8Array} data
   */
  tile(x, y, w, h, codec, data) {
    this.decode(x, y, w, h, codec, data, null);
  }

  /**
   * Queue a CacheStore: a tile to draw and to keep in `slot`.
   * @param {number} slot
   * @param {number} x @param {number} y @param {number} w @param {number} h
   * @param {number} codec
   * @param {Uint8Array} data
   */
  cacheStore(slot, x, y, w, h, codec, data) {
    this.decode(x, y, w, h, codec, data, slot);
  }

  /**
   * Queue a CacheDraw: the tile kept in `slot`, drawn at (x, y).
   * @param {number} slot @param {number} x @param {number} y
   */
  cacheDraw(slot, x, y) {
    this.push({ kind: 'cacheDraw', slot, x, y });
  }

  /**
   * Record the CacheOffer just sent (a new connection, right after its hello).
   * @param {number} tiles
   */
  offerCache(tiles) {
    this.cache.offer(tiles);
  }

  /**
   * Record the codecs just announced in the ClientHello (a new connection).
   * @param {number} codecs
   */
  announceCodecs(codecs) {
    this.codecs = codecs;
  }

  /** Queue the CacheAgreed answer. @param {number} tiles */
  cacheAgreed(tiles) {
    this.push({ kind: 'cacheAgreed', tiles });
  }

  /**
   * Queue a Glyphs message; inflating and decoding start now, drawing waits for its turn.
   * @param {Uint8Array} atlas a PNG of the stored glyphs side by side, or empty
   * @param {Uint8Array} ops raw DEFLATE of the records
   */
  glyphs(atlas, ops) {
    /** @type {GlyphsOp} */
    const op = { kind: 'glyphs', promise: Promise.resolve(), ready: false, decoded: null, error: null };
    op.promise = decodeGlyphs(atlas, ops).then(
      (decoded) => {
        op.decoded = decoded;
        op.ready = true;
      },
      (err) => {
        op.error = err;
        op.ready = true;
      },
    );
    this.push(op);
  }

  /**
   * Queue a Video message: it is checked against the open streams and the canvas, and its access
   * unit given to the stream's decoder now; its picture is drawn at its turn. A message that breaks
   * a rule is reported at its turn and draws nothing (and opens, closes or decodes nothing); one
   * whose picture fails to decode, or is smaller than its rectangle, also closes its stream.
   * @param {import('./protocol.js').VideoMsg} msg
   */
  video(msg) {
    const { x, y, w, h, clips, end } = msg;
    // An empty END for a stream that is not open (it never got its first picture, or was
    // already closed) has nothing to close: ignored.
    if (end && !msg.key && msg.data.length === 0 && !this.openStreams.has(msg.stream)) return;
    /** @type {VideoOp} */
    const op = { kind: 'video', stream: null, x, y, w, h, clips, end, promise: Promise.resolve(), ready: true, frame: null, failed: false, error: null };
    try {
      const stream = this.videoStream(msg);
      op.stream = stream;
      if (end) this.openStreams.delete(msg.stream); // a KEY for this id now opens a new stream
      if (msg.data.length > 0) {
        op.ready = false;
        op.promise = stream.decode(msg.key, msg.data, end, w, h).then(
          (frame) => {
            op.frame = frame;
            op.ready = true;
          },
          (err) => {
            op.failed = true;
            op.error = err;
            op.ready = true;
          },
        );
      }
    } catch (err) {
      op.failed = true;
      op.error = err;
    }
    this.push(op);
  }

  /**
   * The stream a Video message belongs to, after the checks that need no picture; a KEY opens or
   * reconfigures it.
   * @param {import('./protocol.js').VideoMsg} msg
   * @returns {VideoStream}
   */
  videoStream(msg) {
    const id = msg.stream;
    if ((this.codecs & CODECS_H264) === 0) throw new VideoError('Video: H.264 (codec bit 3) was not announced');
    const { x, y, w, h } = msg;
    if (w === 0 || h === 0) throw new VideoError(`Video: an empty ${w}x${h} rectangle`);
    // Against the canvas of this message's turn, known now: nothing outside it is decoded.
    if (x + w > this.incomingWidth || y + h > this.incomingHeight) {
      throw new VideoError(`Video: a ${w}x${h} rectangle at ${x},${y} outside the ${this.incomingWidth}x${this.incomingHeight} canvas`);
    }
    let stream = this.openStreams.get(id);
    if (!msg.key) {
      if (!stream) throw new VideoError(`Video: stream ${id} is not open`);
      return stream;
    }
    const codec = avcCodecString(msg.data);
    if (!stream) {
      if (this.openStreams.size >= VIDEO_MAX_STREAMS) {
        throw new VideoError(`Video: stream ${id} would be a ${VIDEO_MAX_STREAMS + 1}th open stream`);
      }
      stream = new VideoStream(id, this.videoDecoderFactory, (s) => this.streamClosed(s), this.videoTimeoutMs);
      this.openStreams.set(id, stream);
      this.liveStreams.add(stream);
    }
    stream.configure(codec); // a decoder that fails to configure closes its stream
    this.videoStreams++;
    return stream;
  }

  /** @param {VideoStream} stream */
  streamClosed(stream) {
    this.liveStreams.delete(stream);
    if (this.openStreams.get(stream.id) === stream) this.openStreams.delete(stream.id);
  }

  /**
   * @param {number} x @param {number} y @param {number} w @param {number} h
   * @param {number} codec
   * @param {Uint8Array} data
   * @param {number | null} slot
   */
  decode(x, y, w, h, codec, data, slot) {
    const type = TILE_TYPES[codec];
    if (type === undefined) {
      this.onError(new Error(`unsupported tile codec ${codec}`));
      return;
    }
    /** @type {TileOp} */
    const op = { kind: 'tile', x, y, w, h, promise: Promise.resolve(), bitmap: null, ready: false, slot };
    const blob = new Blob([/** @type {Uint8Array<ArrayBuffer>} */ (data)], { type });
    op.promise = createImageBitmap(blob, BITMAP_OPTIONS).then(
      (bitmap) => {
        op.bitmap = bitmap;
        op.ready = true;
      },
      (err) => {
        op.ready = true;
        this.onError(err);
      },
    );
    this.push(op);
  }

  /**
   * @param {number} x @param {number} y @param {number} w @param {number} h
   * @param {number} r @param {number} g @param {number} b
   */
  fill(x, y, w, h, r, g, b) {
    this.push({ kind: 'fill', x, y, w, h, color: `rgb(${r}, ${g}, ${b})` });
  }

  /**
   * @param {number} sx @param {number} sy @param {number} w @param {number} h
   * @param {number} dx @param {number} dy
   */
  copy(sx, sy, w, h, dx, dy) {
    this.push({ kind: 'copy', sx, sy, w, h, dx, dy });
  }

  /**
   * Set the canvas size (this clears it). Every open video stream is closed: from now on, only a
   * KEY opens one; their decoders close at the Resize's turn, once their pictures are drawn.
   * @param {number} w @param {number} h
   */
  resize(w, h) {
    this.incomingWidth = w;
    this.incomingHeight = h;
    const streams = [...this.openStreams.values()];
    this.openStreams.clear();
    this.push({ kind: 'resize', w, h, streams });
  }

  /** Run `fn` once every update queued before it has been drawn. @param {() => void} fn */
  after(fn) {
    this.push({ kind: 'call', fn });
  }

  /** Drop every queued update, the tile cache, the glyph cache and the video streams (new connection). */
  reset() {
    this.cache.reset();
    this.glyphCache.reset();
    this.codecs = 0;
    this.generation++;
    // Pictures still awaited resolve to null now: nothing waits on a decoder that is gone.
    for (const stream of [...this.liveStreams]) stream.close();
    this.openStreams.clear();
    this.liveStreams.clear();
    for (let i = this.head; i < this.queue.length; i++) {
      const op = this.queue[i];
      if (op.kind === 'tile') {
        if (op.bitmap) op.bitmap.close();
        else op.promise.then(() => op.bitmap && op.bitmap.close());
      } else if (op.kind === 'glyphs') {
        if (op.ready) closeDecoded(op);
        else op.promise.then(() => closeDecoded(op));
      } else if (op.kind === 'video') {
        const drop = () => {
          if (op.frame) op.frame.close();
          op.frame = null;
        };
        if (op.ready) drop();
        else op.promise.then(drop);
      }
    }
    this.queue = [];
    this.head = 0;
  }

  /** @param {Op} op */
  push(op) {
    this.queue.push(op);
    if (!this.running) void this.pump();
  }

  async pump() {
    if (this.running) return;
    this.running = true;
    const gen = this.generation;
    try {
      while (gen === this.generation && this.head < this.queue.length) {
        const op = this.queue[this.head];
        if ((op.kind === 'tile' || op.kind === 'glyphs' || op.kind === 'video') && !op.ready) {
          await op.promise;
          continue; // re-check generation and head
        }
        this.queue[this.head] = /** @type {any} */ (undefined);
        this.head++;
        if (this.head > 1024 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        try {
          this.apply(op);
        } catch (err) {
          this.onError(err);
        }
      }
    } finally {
      this.running = false;
    }
    // reset() happened while we were waiting: serve the new queue.
    if (gen !== this.generation && this.head < this.queue.length) void this.pump();
  }

  /** @param {Op} op */
  apply(op) {
    const ctx = this.ctx;
    switch (op.kind) {
      case 'tile': {
        const bmp = op.bitmap;
        if (!bmp) return;
        if (op.slot !== null) {
          this.applyCacheStore(op, op.slot, bmp);
          return;
        }
        const w = Math.min(op.w, bmp.width);
        const h = Math.min(op.h, bmp.height);
        if (w > 0 && h > 0 && this.width > 0 && this.height > 0) {
          // Source rect == destination size: a 1:1 pixel copy, never scaled.
          ctx.drawImage(bmp, 0, 0, w, h, op.x, op.y, w, h);
        }
        bmp.close();
        op.bitmap = null;
        return;
      }
      case 'fill':
        if (op.w > 0 && op.h > 0) {
          ctx.fillStyle = op.color;
          ctx.fillRect(op.x, op.y, op.w, op.h);
        }
        return;
      case 'copy': {
        if (op.w === 0 || op.h === 0 || this.width === 0 || this.height === 0) return;
        // Clip the source to the canvas (drawImage would otherwise throw or
        // scale); the destination moves by the same amount.
        let { sx, sy, w, h, dx, dy } = op;
        if (sx >= this.width || sy >= this.height) return;
        w = Math.min(w, this.width - sx);
        h = Math.min(h, this.height - sy);
        if (w <= 0 || h <= 0) return;
        // Drawing a canvas onto itself copies the source first (HTML spec),
        // so overlapping rectangles behave as if through a temporary.
        ctx.drawImage(this.canvas, sx, sy, w, h, dx, dy, w, h);
        return;
      }
      case 'resize':
        this.canvas.width = op.w;
        this.canvas.height = op.h;
        this.width = op.w;
        this.height = op.h;
        this.resetContextState();
        for (const stream of op.streams) stream.close();
        this.onResize(op.w, op.h);
        return;
      case 'call':
        op.fn();
        return;
      case 'cacheAgreed':
        this.cache.agree(op.tiles);
        return;
      case 'cacheDraw': {
        const bmp = this.cache.get(op.slot);
        this.checkInside(op.x, op.y, bmp.width, bmp.height);
        ctx.drawImage(bmp, op.x, op.y);
        this.cache.hits++;
        return;
      }
      case 'glyphs':
        this.applyGlyphs(op);
        return;
      case 'video':
        this.applyVideo(op);
        return;
    }
  }

  /**
   * Draw the picture of a Video message: its top-left w × h pixels at (x, y), within its clip
   * rectangles (or all of it without clips), 1:1. A message refused on arrival, or whose picture
   * did not come (a decoder error, a picture smaller than w × h), is reported and draws nothing.
   * An END message closes its stream's decoder, whatever happened to its picture.
   * @param {VideoOp} op
   */
  applyVideo(op) {
    const frame = op.frame;
    op.frame = null;
    try {
      if (op.failed) throw op.error;
      if (!frame) return; // no data (an END alone), or a stream closed by a new connection
      const { x, y, w, h } = op;
      // Checked on arrival (video()) and by the decoder's stream (VideoStream.output); kept as a
      // guard, since drawImage would otherwise scale or draw out of place.
      if (x + w > this.width || y + h > this.height || frame.displayWidth < w || frame.displayHeight < h) {
        throw new VideoError(`Video: a ${frame.displayWidth}x${frame.displayHeight} picture for a ${w}x${h} rectangle at ${x},${y} on the ${this.width}x${this.height} canvas`);
      }
      const ctx = this.ctx;
      if (op.clips.length === 0) {
        ctx.drawImage(frame, 0, 0, w, h, x, y, w, h);
      } else {
        // Each clip is a part of the picture drawn 1:1 where it belongs (clips lie inside the rectangle).
        for (const c of op.clips) {
          if (c.w > 0 && c.h > 0) ctx.drawImage(frame, c.x - x, c.y - y, c.w, c.h, c.x, c.y, c.w, c.h);
        }
      }
      this.videoFrames++;
    } finally {
      if (frame) frame.close();
      if (op.end && op.stream) op.stream.close();
    }
  }

  /**
   * Draw a decoded Glyphs message, as `bascule_display::Canvas` does: every record is checked
   * first (a drawn slot holds a glyph, by this message's earlier stores or by the cache; each
   * glyph lies inside the canvas), then all are drawn in order and the stored glyphs kept.
   * A message that fails to decode or to check draws and keeps nothing.
   * @param {GlyphsOp} op
   */
  applyGlyphs(op) {
    const decoded = op.decoded;
    op.decoded = null;
    if (!decoded) throw op.error;
    const { records, bitmaps } = decoded;
    try {
      this.checkGlyphs(records);
    } catch (err) {
      for (const bmp of bitmaps) bmp.close();
      throw err;
    }
    const ctx = this.ctx;
    const slots = this.glyphCache.slots;
    let stored = 0;
    for (let i = 0; i < records.length; i++) {
      const rec = records[i];
      if (rec.store) {
        const bmp = bitmaps[stored++];
        ctx.drawImage(bmp, rec.x, rec.y);
        this.glyphCache.store(rec.slot, bmp);
      } else {
        ctx.drawImage(/** @type {ImageBitmap} */ (slots[rec.slot]), rec.x, rec.y);
      }
    }
    this.glyphCache.draws += records.length - stored;
  }

  /**
   * Throws unless every record of a Glyphs message can be drawn, without changing anything.
   * @param {import('./protocol.js').GlyphRecord[]} records
   */
  checkGlyphs(records) {
    /** @type {Map<number, {width: number, height: number}>} the slots this message stores, so far */
    const stored = new Map();
    for (const rec of records) {
      let w = rec.w;
      let h = rec.h;
      if (rec.store) {
        stored.set(rec.slot, { width: w, height: h });
      } else {
        const glyph = stored.get(rec.slot) ?? this.glyphCache.get(rec.slot);
        w = glyph.width;
        h = glyph.height;
      }
      if (rec.x + w > this.width || rec.y + h > this.height) {
        throw new GlyphCacheError(`glyph ${w}x${h} at ${rec.x},${rec.y} outside the ${this.width}x${this.height} canvas`);
      }
    }
  }

  /**
   * Draw a decoded CacheStore tile and keep it, as `bascule_display::Canvas` does: the slot must be
   * agreed, the image the announced size, and the rectangle inside the canvas; otherwise the tile
   * is neither drawn nor kept.
   * @param {TileOp} op
   * @param {number} slot
   * @param {ImageBitmap} bmp
   */
  applyCacheStore(op, slot, bmp) {
    op.bitmap = null;
    try {
      this.cache.check(slot);
      if (bmp.width !== op.w || bmp.height !== op.h) {
        throw new Error(`CacheStore: a ${bmp.width}x${bmp.height} image for a ${op.w}x${op.h} tile`);
      }
      this.checkInside(op.x, op.y, op.w, op.h);
    } catch (err) {
      bmp.close();
      throw err;
    }
    this.ctx.drawImage(bmp, op.x, op.y);
    this.cache.store(slot, bmp);
  }

  /** @param {number} x @param {number} y @param {number} w @param {number} h */
  checkInside(x, y, w, h) {
    if (x + w > this.width || y + h > this.height) {
      throw new Error(`cached tile ${w}x${h} at ${x},${y} outside the ${this.width}x${this.height} canvas`);
    }
  }
}

/**
 * Inflate and parse the ops of a Glyphs message and cut its atlas into one bitmap per stored
 * glyph (left to right, top-aligned). Throws if the ops do not inflate (or go beyond
 * `GLYPH_OPS_MAX`), break a record rule, or need more atlas than there is.
 * @param {Uint8Array} atlas
 * @param {Uint8Array} ops
 * @returns {Promise<DecodedGlyphs>}
 */
async function decodeGlyphs(atlas, ops) {
  // Both start now; the atlas is let go of whatever happens to the ops.
  const atlasPromise = atlas.length === 0 ? Promise.resolve(null) : decodeAtlas(atlas);
  const dropAtlas = () => atlasPromise.then((bmp) => bmp && bmp.close(), () => {});
  atlasPromise.catch(() => {}); // awaited below, or dropped
  /** @type {import('./protocol.js').GlyphRecord[]} */
  let records;
  try {
    records = decodeGlyphOps(await inflateRaw(ops, GLYPH_OPS_MAX));
  } catch (err) {
    dropAtlas();
    throw err;
  }
  let width = 0;
  let height = 0;
  for (const rec of records) {
    if (rec.store) {
      width += rec.w;
      height = Math.max(height, rec.h);
    }
  }
  if (width === 0) {
    // Nothing stored: the atlas (which the gateway leaves empty then) is not used.
    dropAtlas();
    return { records, bitmaps: [] };
  }
  const sheet = await atlasPromise;
  try {
    if (!sheet || sheet.width < width || sheet.height < height) {
      const have = sheet ? `a ${sheet.width}x${sheet.height}` : 'no';
      throw new GlyphCacheError(`the stored glyphs need a ${width}x${height} atlas, the message has ${have} atlas`);
    }
    /** @type {Promise<ImageBitmap>[]} */
    const crops = [];
    let x = 0;
    for (const rec of records) {
      if (rec.store) {
        crops.push(createImageBitmap(sheet, x, 0, rec.w, rec.h, BITMAP_OPTIONS));
        x += rec.w;
      }
    }
    const settled = await Promise.allSettled(crops);
    const bitmaps = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) {
      for (const bmp of bitmaps) bmp.close();
      throw failed.reason;
    }
    return { records, bitmaps };
  } finally {
    if (sheet) sheet.close();
  }
}

/** @param {Uint8Array} png */
function decodeAtlas(png) {
  return createImageBitmap(new Blob([/** @type {Uint8Array<ArrayBuffer>} */ (png)], { type: 'image/png' }), BITMAP_OPTIONS);
}

/** Let go of the bitmaps of a Glyphs message that will not be drawn. @param {GlyphsOp} op */
function closeDecoded(op) {
  if (op.decoded) for (const bmp of op.decoded.bitmaps) bmp.close();
  op.decoded = null;
}

/**
 * CSS `cursor` value for a Cursor message: the PNG as a data URL with its
 * hot spot, or 'default' when the remote cursor is hidden (w = h = 0).
 * @param {number} hotX @param {number} hotY @param {number} w @param {number} h
 * @param {Uint8Array} png
 * @returns {string}
 */
export function cursorCss(hotX, hotY, w, h, png) {
  if (w === 0 || h === 0 || png.length === 0) return 'default';
  const hx = Math.max(0, Math.min(hotX, w - 1));
  const hy = Math.max(0, Math.min(hotY, h - 1));
  return `url("data:image/png;base64,${base64(png)}") ${hx} ${hy}, auto`;
}

/** @param {Uint8Array} bytes */
export function base64(bytes) {
  let s = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    s += String.fromCharCode.apply(null, /** @type {number[]} */ (/** @type {unknown} */ (bytes.subarray(i, i + chunk))));
  }
  return btoa(s);
}
