// @ts-check
/**
 * Bascule display protocol, version 0 (see docs/protocol.md).
 *
 * Pure encode/decode functions for every message of both directions.
 * Every WebSocket message is binary and carries exactly one protocol message;
 * the first byte is the type, integers are little-endian.
 *
 * This module must not touch `window` or `document`: it is imported by the
 * Node test runner as well as by the browser viewer.
 */

export const PROTOCOL_VERSION = 0;

/** Codec value of a PNG tile, and the matching bit in a `codecs` set (required). */
export const CODEC_PNG = 1;
export const CODECS_PNG = 1 << 0;

/** Codec value of a JPEG tile (lossy, never kept in the tile cache), and the matching bit. */
export const CODEC_JPEG = 2;
export const CODECS_JPEG = 1 << 1;

/** The bit of a `codecs` set for the glyph cache (`Glyphs` messages; no tile codec value). */
export const CODECS_GLYPHS = 1 << 2;

/** The bit of a `codecs` set for H.264 video (`Video` messages; no tile codec value). */
export const CODECS_H264 = 1 << 3;

/** A client message larger than this closes the WebSocket (1009). */
export const MAX_CLIENT_MESSAGE = 256 * 1024;

/** The longest text of a helpdesk `Message`, in characters (code points). */
export const MAX_MESSAGE_TEXT = 2000;

/** The longest person name (`from`, `shadowOf`) of the helpdesk messages, in characters. */
export const MAX_NAME = 128;

/** The largest side of a tile kept in the tile cache (`CacheStore`): 1 to 64 pixels. */
export const CACHE_TILE = 64;

/** The most tiles a tile cache may have; counts above and slots at or above it are refused. */
export const MAX_CACHE_TILES = 65536;

/** The glyph slots of a viewer that announced `CODECS_GLYPHS`: `0 … GLYPH_SLOTS-1`. */
export const GLYPH_SLOTS = 4096;

/** The widest glyph: 1 to 64 pixels (a short word). */
export const GLYPH_MAX_WIDTH = 64;

/** The tallest glyph: 1 to 32 pixels (a line of text). */
export const GLYPH_MAX_HEIGHT = 32;

/** The most bytes the ops of one `Glyphs` message may inflate to (1 MiB). */
export const GLYPH_OPS_MAX = 1 << 20;

/** `Video` flags bit 0: the data starts a new coded video sequence (SPS, PPS, IDR) for its stream. */
export const VIDEO_KEY = 1 << 0;

/** `Video` flags bit 1: the stream is closed once this message is handled (its data may be empty). */
export const VIDEO_END = 1 << 1;

/** The most video streams a viewer keeps open at once. */
export const VIDEO_MAX_STREAMS = 4;

export const ServerType = Object.freeze({
  ServerHello: 0x01,
  Tile: 0x02,
  Fill: 0x03,
  Copy: 0x04,
  Cursor: 0x05,
  Resize: 0x06,
  EndFrame: 0x07,
  Notice: 0x08,
  Clipboard: 0x09,
  Message: 0x0a,
  ControlRequest: 0x0b,
  ControlState: 0x0c,
  ViewMode: 0x0d,
  CacheAgreed: 0x0e,
  CacheStore: 0x0f,
  CacheDraw: 0x10,
  Glyphs: 0x11,
  Video: 0x12,
});

export const ClientType = Object.freeze({
  ClientHello: 0x81,
  FrameAck: 0x82,
  Key: 0x83,
  Pointer: 0x84,
  ResizeRequest: 0x85,
  Clipboard: 0x86,
  ControlReply: 0x87,
  ControlRequest: 0x88,
  ControlRelease: 0x89,
  CacheOffer: 0x8a,
});

/** The `state` of a ControlState message. */
export const ControlState = Object.freeze({ Pending: 0, Granted: 1, Refused: 2, Ended: 3 });

export const NoticeLevel = Object.freeze({ Info: 0, Warning: 1, Error: 2 });

/** Pointer button mask bits. */
export const Button = Object.freeze({
  Left: 1 << 0,
  Middle: 1 << 1,
  Right: 1 << 2,
  WheelUp: 1 << 3,
  WheelDown: 1 << 4,
  WheelLeft: 1 << 5,
  WheelRight: 1 << 6,
});

/**
 * @typedef {{type: 'ServerHello', version: number, width: number, height: number, codecs: number, maxInFlight: number, name: string}} ServerHelloMsg
 * @typedef {{type: 'Tile', x: number, y: number, w: number, h: number, codec: number, data: Uint8Array}} TileMsg
 * @typedef {{type: 'Fill', x: number, y: number, w: number, h: number, r: number, g: number, b: number}} FillMsg
 * @typedef {{type: 'Copy', srcX: number, srcY: number, w: number, h: number, dstX: number, dstY: number}} CopyMsg
 * @typedef {{type: 'Cursor', hotX: number, hotY: number, w: number, h: number, data: Uint8Array}} CursorMsg
 * @typedef {{type: 'Resize', width: number, height: number}} ResizeMsg
 * @typedef {{type: 'EndFrame', seq: number}} EndFrameMsg
 * @typedef {{type: 'Notice', level: number, code: string, detail: string}} NoticeMsg
 * @typedef {{type: 'Clipboard', text: string}} ClipboardMsg
 * @typedef {{type: 'Message', from: string, text: string}} MessageMsg
 * @typedef {{type: 'ControlRequest', id: number, from: string}} ControlRequestMsg
 * @typedef {{type: 'ControlState', id: number, state: number}} ControlStateMsg
 * @typedef {{type: 'ViewMode', readOnly: boolean, shadowOf: string}} ViewModeMsg
 * @typedef {{type: 'CacheAgreed', tiles: number}} CacheAgreedMsg
 * @typedef {{type: 'CacheStore', slot: number, x: number, y: number, w: number, h: number, codec: number, data: Uint8Array}} CacheStoreMsg
 * @typedef {{type: 'CacheDraw', slot: number, x: number, y: number}} CacheDrawMsg
 * @typedef {{type: 'Glyphs', atlas: Uint8Array, ops: Uint8Array}} GlyphsMsg
 *   `atlas`: a PNG of the stored glyphs side by side, or empty; `ops`: the records, raw DEFLATE
 *   (inflate them, then `decodeGlyphOps`)
 * @typedef {{type: 'Video', stream: number, key: boolean, end: boolean, x: number, y: number, w: number, h: number, clips: Rect[], data: Uint8Array}} VideoMsg
 *   `key`: flags bit 0 (`VIDEO_KEY`), `end`: flags bit 1 (`VIDEO_END`); (x, y, w, h) is not empty;
 *   `clips`: where to draw, in canvas coordinates, each non-empty and inside (x, y, w, h) (none: the
 *   whole rectangle); `data`: one H.264 access unit, Annex B (empty only with `end`)
 * @typedef {ServerHelloMsg | TileMsg | FillMsg | CopyMsg | CursorMsg | ResizeMsg | EndFrameMsg | NoticeMsg | ClipboardMsg | MessageMsg | ControlRequestMsg | ControlStateMsg | ViewModeMsg | CacheAgreedMsg | CacheStoreMsg | CacheDrawMsg | GlyphsMsg | VideoMsg} ServerMessage
 *
 * @typedef {{x: number, y: number, w: number, h: number}} Rect
 *
 * @typedef {{store: boolean, slot: number, x: number, y: number, w: number, h: number}} GlyphRecord
 *   one record of the ops of a `Glyphs` message, with its absolute top-left corner; `w` and `h`
 *   are the stored glyph's size, 0 for a draw (the glyph kept in `slot` has its own)
 *
 * @typedef {{type: 'ClientHello', version: number, width: number, height: number, codecs: number}} ClientHelloMsg
 * @typedef {{type: 'FrameAck', seq: number}} FrameAckMsg
 * @typedef {{type: 'Key', down: boolean, keysym: number, scancode: number}} KeyMsg
 * @typedef {{type: 'Pointer', x: number, y: number, buttons: number}} PointerMsg
 * @typedef {{type: 'ResizeRequest', width: number, height: number}} ResizeRequestMsg
 * @typedef {{type: 'ControlReply', id: number, granted: boolean}} ControlReplyMsg
 * @typedef {{type: 'ControlRequest'}} ClientControlRequestMsg the shadow's request (empty payload)
 * @typedef {{type: 'ControlRelease', id: number}} ControlReleaseMsg
 * @typedef {{type: 'CacheOffer', tiles: number}} CacheOfferMsg
 * @typedef {ClientHelloMsg | FrameAckMsg | KeyMsg | PointerMsg | ResizeRequestMsg | ClipboardMsg | ControlReplyMsg | ClientControlRequestMsg | ControlReleaseMsg | CacheOfferMsg} ClientMessage
 */

/** Raised for any malformed message: truncated, unknown type, trailing bytes, bad text. */
export class ProtocolError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'ProtocolError';
  }
}

const utf8Decoder = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

/**
 * @param {ArrayBuffer | ArrayBufferView} data
 * @returns {Uint8Array}
 */
function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError('expected an ArrayBuffer or a typed array');
}

/** Little-endian cursor over one message, positioned after the type byte. */
class Reader {
  /**
   * @param {Uint8Array} bytes
   * @param {string} name message name, for error messages
   */
  constructor(bytes, name) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 1;
    this.name = name;
  }

  /** @param {number} n @param {string} field */
  need(n, field) {
    if (this.pos + n > this.bytes.length) {
      throw new ProtocolError(
        `truncated ${this.name}: ${field} needs ${n} byte(s) at offset ${this.pos}, message has ${this.bytes.length}`,
      );
    }
  }

  /** @param {string} field */
  u8(field) {
    this.need(1, field);
    return this.view.getUint8(this.pos++);
  }

  /** @param {string} field */
  u16(field) {
    this.need(2, field);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  /** @param {string} field */
  u32(field) {
    this.need(4, field);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** @param {number} n @param {string} field */
  take(n, field) {
    this.need(n, field);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A 0/1 byte. @param {string} field */
  flag(field) {
    const v = this.u8(field);
    if (v > 1) throw new ProtocolError(`${this.name}: ${field} must be 0 or 1`);
    return v === 1;
  }

  /**
   * A `u16` length then UTF-8 text of at most `maxChars` characters.
   * @param {string} field @param {number} maxChars
   */
  boundedText(field, maxChars) {
    const len = this.u16(`${field}_len`);
    const text = utf8(this.take(len, field));
    if (codePoints(text) > maxChars) {
      throw new ProtocolError(`${this.name}: ${field} is longer than ${maxChars} characters`);
    }
    return text;
  }

  /** A number of cache tiles, at most `MAX_CACHE_TILES`. @param {string} field */
  cacheTiles(field) {
    const v = this.u32(field);
    if (v > MAX_CACHE_TILES) throw new ProtocolError(`${this.name}: ${field} ${v} is above ${MAX_CACHE_TILES}`);
    return v;
  }

  /** A cache slot, below `MAX_CACHE_TILES`. */
  slot() {
    const v = this.u32('slot');
    if (v >= MAX_CACHE_TILES) throw new ProtocolError(`${this.name}: slot ${v} is not below ${MAX_CACHE_TILES}`);
    return v;
  }

  /** The rest of the message (may be empty). */
  rest() {
    const out = this.bytes.subarray(this.pos);
    this.pos = this.bytes.length;
    return out;
  }

  /** Fixed-layout messages must not carry trailing bytes. */
  end() {
    if (this.pos !== this.bytes.length) {
      throw new ProtocolError(`${this.name}: ${this.bytes.length - this.pos} trailing byte(s)`);
    }
  }
}

/** @param {Uint8Array} bytes @param {string} field */
function ascii(bytes, field) {
  let s = '';
  for (const b of bytes) {
    if (b > 0x7f) throw new ProtocolError(`${field} is not ASCII`);
    s += String.fromCharCode(b);
  }
  return s;
}

/** @param {Uint8Array} bytes */
function utf8(bytes) {
  return utf8Decoder.decode(bytes);
}

/** Number of code points (what Rust calls chars) of `text`. @param {string} text */
function codePoints(text) {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * `text` cut to at most `max` code points, as the gateway's encoder does.
 * @param {string} text @param {number} max
 */
export function cutText(text, max) {
  if (text.length <= max) return text;
  let out = '';
  let n = 0;
  for (const c of text) {
    if (n++ === max) break;
    out += c;
  }
  return out;
}

/**
 * Decode one server → client message.
 * The returned `data` fields are views into the input buffer (no copy).
 * @param {ArrayBuffer | ArrayBufferView} data
 * @returns {ServerMessage}
 * @throws {ProtocolError}
 */
export function decodeServerMessage(data) {
  const bytes = toBytes(data);
  if (bytes.length === 0) throw new ProtocolError('empty message');
  const type = bytes[0];
  switch (type) {
    case ServerType.ServerHello: {
      const r = new Reader(bytes, 'ServerHello');
      const version = r.u16('version');
      const width = r.u16('width');
      const height = r.u16('height');
      const codecs = r.u32('codecs');
      const maxInFlight = r.u8('max_in_flight');
      const nameLen = r.u16('name_len');
      const name = utf8(r.take(nameLen, 'name'));
      r.end();
      return { type: 'ServerHello', version, width, height, codecs, maxInFlight, name };
    }
    case ServerType.Tile: {
      const r = new Reader(bytes, 'Tile');
      const x = r.u16('x');
      const y = r.u16('y');
      const w = r.u16('w');
      const h = r.u16('h');
      const codec = r.u8('codec');
      return { type: 'Tile', x, y, w, h, codec, data: r.rest() };
    }
    case ServerType.Fill: {
      const r = new Reader(bytes, 'Fill');
      const msg = {
        type: /** @type {const} */ ('Fill'),
        x: r.u16('x'),
        y: r.u16('y'),
        w: r.u16('w'),
        h: r.u16('h'),
        r: r.u8('r'),
        g: r.u8('g'),
        b: r.u8('b'),
      };
      r.end();
      return msg;
    }
    case ServerType.Copy: {
      const r = new Reader(bytes, 'Copy');
      const msg = {
        type: /** @type {const} */ ('Copy'),
        srcX: r.u16('src_x'),
        srcY: r.u16('src_y'),
        w: r.u16('w'),
        h: r.u16('h'),
        dstX: r.u16('dst_x'),
        dstY: r.u16('dst_y'),
      };
      r.end();
      return msg;
    }
    case ServerType.Cursor: {
      const r = new Reader(bytes, 'Cursor');
      const hotX = r.u16('hot_x');
      const hotY = r.u16('hot_y');
      const w = r.u16('w');
      const h = r.u16('h');
      return { type: 'Cursor', hotX, hotY, w, h, data: r.rest() };
    }
    case ServerType.Resize: {
      const r = new Reader(bytes, 'Resize');
      const width = r.u16('width');
      const height = r.u16('height');
      r.end();
      return { type: 'Resize', width, height };
    }
    case ServerType.EndFrame: {
      const r = new Reader(bytes, 'EndFrame');
      const seq = r.u32('seq');
      r.end();
      return { type: 'EndFrame', seq };
    }
    case ServerType.Notice: {
      const r = new Reader(bytes, 'Notice');
      const level = r.u8('level');
      const codeLen = r.u16('code_len');
      const code = ascii(r.take(codeLen, 'code'), 'code');
      const detailLen = r.u16('detail_len');
      const detail = utf8(r.take(detailLen, 'detail'));
      r.end();
      return { type: 'Notice', level, code, detail };
    }
    case ServerType.Clipboard: {
      const r = new Reader(bytes, 'Clipboard');
      return { type: 'Clipboard', text: utf8(r.rest()) };
    }
    case ServerType.Message: {
      const r = new Reader(bytes, 'Message');
      const from = r.boundedText('from', MAX_NAME);
      const text = r.boundedText('text', MAX_MESSAGE_TEXT);
      r.end();
      return { type: 'Message', from, text };
    }
    case ServerType.ControlRequest: {
      const r = new Reader(bytes, 'ControlRequest');
      const id = r.u32('id');
      const from = r.boundedText('from', MAX_NAME);
      r.end();
      return { type: 'ControlRequest', id, from };
    }
    case ServerType.ControlState: {
      const r = new Reader(bytes, 'ControlState');
      const id = r.u32('id');
      const state = r.u8('state');
      if (state > ControlState.Ended) throw new ProtocolError(`ControlState: unknown state ${state}`);
      r.end();
      return { type: 'ControlState', id, state };
    }
    case ServerType.ViewMode: {
      const r = new Reader(bytes, 'ViewMode');
      const readOnly = r.flag('read_only');
      const shadowOf = r.boundedText('shadow_of', MAX_NAME);
      r.end();
      return { type: 'ViewMode', readOnly, shadowOf };
    }
    case ServerType.CacheAgreed: {
      const r = new Reader(bytes, 'CacheAgreed');
      const tiles = r.cacheTiles('tiles');
      r.end();
      return { type: 'CacheAgreed', tiles };
    }
    case ServerType.CacheStore: {
      const r = new Reader(bytes, 'CacheStore');
      // Read every fixed field first: a cut message is "truncated" before anything else.
      r.need(13, 'slot, x, y, w, h, codec');
      const slot = r.slot();
      const x = r.u16('x');
      const y = r.u16('y');
      const w = r.u16('w');
      const h = r.u16('h');
      const codec = r.u8('codec');
      if (w < 1 || w > CACHE_TILE || h < 1 || h > CACHE_TILE) {
        throw new ProtocolError(`CacheStore: a ${w}x${h} tile (1 to ${CACHE_TILE} pixels a side)`);
      }
      // A lossy tile is never kept: the cache holds exact content only.
      if (codec === CODEC_JPEG) throw new ProtocolError(`CacheStore: codec ${codec} (JPEG) is never cached`);
      if (codec !== CODEC_PNG) throw new ProtocolError(`CacheStore: unknown codec ${codec}`);
      return { type: 'CacheStore', slot, x, y, w, h, codec, data: r.rest() };
    }
    case ServerType.CacheDraw: {
      const r = new Reader(bytes, 'CacheDraw');
      r.need(8, 'slot, x, y');
      const slot = r.slot();
      const x = r.u16('x');
      const y = r.u16('y');
      r.end();
      return { type: 'CacheDraw', slot, x, y };
    }
    case ServerType.Glyphs: {
      const r = new Reader(bytes, 'Glyphs');
      const atlasLen = r.u32('atlas_len');
      const atlas = r.take(atlasLen, 'atlas');
      return { type: 'Glyphs', atlas, ops: r.rest() };
    }
    case ServerType.Video: {
      const r = new Reader(bytes, 'Video');
      // Read the fixed fields and the clips first: a cut message is "truncated" before anything else.
      r.need(12, 'stream, flags, x, y, w, h, clip_count');
      const stream = r.u16('stream');
      const flags = r.u8('flags');
      const x = r.u16('x');
      const y = r.u16('y');
      const w = r.u16('w');
      const h = r.u16('h');
      const count = r.u8('clip_count');
      r.need(8 * count, 'clips');
      /** @type {Rect[]} */
      const clips = [];
      for (let i = 0; i < count; i++) clips.push({ x: r.u16('clip x'), y: r.u16('clip y'), w: r.u16('clip w'), h: r.u16('clip h') });
      if ((flags & ~(VIDEO_KEY | VIDEO_END)) !== 0) {
        throw new ProtocolError(`Video: unknown flags 0x${flags.toString(16).padStart(2, '0')}`);
      }
      if (w === 0 || h === 0) throw new ProtocolError(`Video: an empty ${w}x${h} rectangle`);
      for (const c of clips) {
        if (c.w === 0 || c.h === 0) throw new ProtocolError(`Video: an empty ${c.w}x${c.h} clip at ${c.x},${c.y}`);
        if (c.x < x || c.y < y || c.x + c.w > x + w || c.y + c.h > y + h) {
          throw new ProtocolError(`Video: clip ${c.w}x${c.h} at ${c.x},${c.y} outside the ${w}x${h} rectangle at ${x},${y}`);
        }
      }
      const key = (flags & VIDEO_KEY) !== 0;
      const end = (flags & VIDEO_END) !== 0;
      const data = r.rest();
      if (data.length === 0 && !end) throw new ProtocolError('Video: empty data without END');
      return { type: 'Video', stream, key, end, x, y, w, h, clips, data };
    }
    default:
      throw new ProtocolError(`unknown server message type 0x${type.toString(16).padStart(2, '0')}`);
  }
}

/**
 * Decode the inflated ops of a `Glyphs` message (docs/protocol.md, "Glyph cache"): records of
 * `u16 slot` (bit 15: store), `u16 dx`, `u16 dy`, and for a store `u8 w`, `u8 h`. Each corner is
 * the previous one plus (dx, dy) modulo 65,536, from (0, 0).
 *
 * Refuses what is wrong in the ops alone: a record cut short, a slot ≥ `GLYPH_SLOTS`, a stored side
 * of 0, a width above `GLYPH_MAX_WIDTH` or a height above `GLYPH_MAX_HEIGHT`. Whether a drawn slot holds a glyph, the atlas is large enough and
 * the glyphs fit the canvas is for the display to check.
 * @param {Uint8Array} ops
 * @returns {GlyphRecord[]}
 * @throws {ProtocolError}
 */
export function decodeGlyphOps(ops) {
  const view = new DataView(ops.buffer, ops.byteOffset, ops.byteLength);
  /** @type {GlyphRecord[]} */
  const records = [];
  let x = 0;
  let y = 0;
  let pos = 0;
  while (pos < ops.length) {
    if (pos + 6 > ops.length) throw new ProtocolError(`Glyphs: ops end inside the record at offset ${pos}`);
    const word = view.getUint16(pos, true);
    const store = (word & 0x8000) !== 0;
    const slot = word & 0x7fff;
    if (slot >= GLYPH_SLOTS) throw new ProtocolError(`Glyphs: slot ${slot} is not below ${GLYPH_SLOTS}`);
    x = (x + view.getUint16(pos + 2, true)) & 0xffff;
    y = (y + view.getUint16(pos + 4, true)) & 0xffff;
    let w = 0;
    let h = 0;
    if (store) {
      if (pos + 8 > ops.length) throw new ProtocolError(`Glyphs: ops end inside the record at offset ${pos}`);
      w = ops[pos + 6];
      h = ops[pos + 7];
      if (w < 1 || w > GLYPH_MAX_WIDTH || h < 1 || h > GLYPH_MAX_HEIGHT) {
        throw new ProtocolError(`Glyphs: a ${w}x${h} glyph stored in slot ${slot} (1 to ${GLYPH_MAX_WIDTH} pixels wide, 1 to ${GLYPH_MAX_HEIGHT} high)`);
      }
      pos += 8;
    } else {
      pos += 6;
    }
    records.push({ store, slot, x, y, w, h });
  }
  return records;
}

/**
 * Encode the ops of a `Glyphs` message, before DEFLATE (used by tests and mock servers).
 * @param {GlyphRecord[]} records absolute corners; `w` and `h` are written for stores only
 * @returns {Uint8Array}
 */
export function encodeGlyphOps(records) {
  let size = 0;
  for (const rec of records) size += rec.store ? 8 : 6;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let x = 0;
  let y = 0;
  let pos = 0;
  for (const rec of records) {
    checkUint(rec.slot, GLYPH_SLOTS - 1, 'slot');
    checkUint(rec.x, 0xffff, 'x');
    checkUint(rec.y, 0xffff, 'y');
    view.setUint16(pos, rec.slot | (rec.store ? 0x8000 : 0), true);
    view.setUint16(pos + 2, (rec.x - x) & 0xffff, true);
    view.setUint16(pos + 4, (rec.y - y) & 0xffff, true);
    [x, y] = [rec.x, rec.y];
    if (rec.store) {
      checkUint(rec.w, GLYPH_MAX_WIDTH, 'w');
      checkUint(rec.h, GLYPH_MAX_HEIGHT, 'h');
      if (rec.w === 0 || rec.h === 0) throw new RangeError(`an empty glyph: ${rec.w}x${rec.h}`);
      bytes[pos + 6] = rec.w;
      bytes[pos + 7] = rec.h;
      pos += 8;
    } else {
      pos += 6;
    }
  }
  return bytes;
}

/**
 * Decode one client → server message (used by tests and mock servers).
 * @param {ArrayBuffer | ArrayBufferView} data
 * @returns {ClientMessage}
 * @throws {ProtocolError}
 */
export function decodeClientMessage(data) {
  const bytes = toBytes(data);
  if (bytes.length === 0) throw new ProtocolError('empty message');
  if (bytes.length > MAX_CLIENT_MESSAGE) throw new ProtocolError('client message too large');
  const type = bytes[0];
  switch (type) {
    case ClientType.ClientHello: {
      const r = new Reader(bytes, 'ClientHello');
      const version = r.u16('version');
      const width = r.u16('width');
      const height = r.u16('height');
      const codecs = r.u32('codecs');
      r.end();
      return { type: 'ClientHello', version, width, height, codecs };
    }
    case ClientType.FrameAck: {
      const r = new Reader(bytes, 'FrameAck');
      const seq = r.u32('seq');
      r.end();
      return { type: 'FrameAck', seq };
    }
    case ClientType.Key: {
      const r = new Reader(bytes, 'Key');
      const down = r.u8('down');
      if (down > 1) throw new ProtocolError('Key: down must be 0 or 1');
      const keysym = r.u32('keysym');
      const scancode = r.u16('scancode');
      r.end();
      return { type: 'Key', down: down === 1, keysym, scancode };
    }
    case ClientType.Pointer: {
      const r = new Reader(bytes, 'Pointer');
      const x = r.u16('x');
      const y = r.u16('y');
      const buttons = r.u8('buttons');
      r.end();
      return { type: 'Pointer', x, y, buttons };
    }
    case ClientType.ResizeRequest: {
      const r = new Reader(bytes, 'ResizeRequest');
      const width = r.u16('width');
      const height = r.u16('height');
      r.end();
      return { type: 'ResizeRequest', width, height };
    }
    case ClientType.Clipboard: {
      const r = new Reader(bytes, 'Clipboard');
      return { type: 'Clipboard', text: utf8(r.rest()) };
    }
    case ClientType.ControlReply: {
      const r = new Reader(bytes, 'ControlReply');
      const id = r.u32('id');
      const granted = r.flag('granted');
      r.end();
      return { type: 'ControlReply', id, granted };
    }
    case ClientType.ControlRequest: {
      new Reader(bytes, 'ControlRequest').end();
      return { type: 'ControlRequest' };
    }
    case ClientType.ControlRelease: {
      const r = new Reader(bytes, 'ControlRelease');
      const id = r.u32('id');
      r.end();
      return { type: 'ControlRelease', id };
    }
    case ClientType.CacheOffer: {
      const r = new Reader(bytes, 'CacheOffer');
      const tiles = r.cacheTiles('tiles');
      r.end();
      return { type: 'CacheOffer', tiles };
    }
    default:
      throw new ProtocolError(`unknown client message type 0x${type.toString(16).padStart(2, '0')}`);
  }
}

// ---------------------------------------------------------------------------
// Encoding

/** @param {number} v @param {number} max @param {string} field */
function checkUint(v, max, field) {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`${field} out of range: ${v}`);
  }
}

/** Little-endian writer over a buffer of known size. */
class Writer {
  /** @param {number} type @param {number} size total size including the type byte */
  constructor(type, size) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
    this.bytes[0] = type;
    this.pos = 1;
  }

  /** @param {number} v @param {string} field */
  u8(v, field) {
    checkUint(v, 0xff, field);
    this.view.setUint8(this.pos, v);
    this.pos += 1;
    return this;
  }

  /** @param {number} v @param {string} field */
  u16(v, field) {
    checkUint(v, 0xffff, field);
    this.view.setUint16(this.pos, v, true);
    this.pos += 2;
    return this;
  }

  /** @param {number} v @param {string} field */
  u32(v, field) {
    checkUint(v, 0xffffffff, field);
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
    return this;
  }

  /** @param {Uint8Array} b */
  raw(b) {
    this.bytes.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  done() {
    if (this.pos !== this.bytes.length) throw new Error('internal: message size mismatch');
    return this.bytes;
  }
}

/** @param {string} s @param {string} field */
function asciiBytes(s, field) {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) throw new RangeError(`${field} must be ASCII`);
    out[i] = c;
  }
  return out;
}

/**
 * UTF-8 bytes of `text`, cut to at most `max` bytes on a code point boundary.
 * @param {string} text
 * @param {number} max
 */
export function utf8Truncated(text, max) {
  const bytes = utf8Encoder.encode(text);
  if (bytes.length <= max) return bytes;
  let end = max;
  // Never cut inside a multi-byte sequence: back off over continuation bytes.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end);
}

/**
 * Encode one client → server message.
 * @param {ClientMessage} msg
 * @returns {Uint8Array}
 */
export function encodeClientMessage(msg) {
  switch (msg.type) {
    case 'ClientHello':
      return new Writer(ClientType.ClientHello, 11)
        .u16(msg.version, 'version')
        .u16(msg.width, 'width')
        .u16(msg.height, 'height')
        .u32(msg.codecs, 'codecs')
        .done();
    case 'FrameAck':
      return new Writer(ClientType.FrameAck, 5).u32(msg.seq, 'seq').done();
    case 'Key':
      return new Writer(ClientType.Key, 8)
        .u8(msg.down ? 1 : 0, 'down')
        .u32(msg.keysym, 'keysym')
        .u16(msg.scancode, 'scancode')
        .done();
    case 'Pointer':
      return new Writer(ClientType.Pointer, 6)
        .u16(msg.x, 'x')
        .u16(msg.y, 'y')
        .u8(msg.buttons, 'buttons')
        .done();
    case 'ResizeRequest':
      return new Writer(ClientType.ResizeRequest, 5)
        .u16(msg.width, 'width')
        .u16(msg.height, 'height')
        .done();
    case 'Clipboard': {
      // Stay under the 256 KiB limit: a longer clipboard is truncated, not fatal.
      const text = utf8Truncated(msg.text, MAX_CLIENT_MESSAGE - 1);
      return new Writer(ClientType.Clipboard, 1 + text.length).raw(text).done();
    }
    case 'ControlReply':
      return new Writer(ClientType.ControlReply, 6).u32(msg.id, 'id').u8(msg.granted ? 1 : 0, 'granted').done();
    case 'ControlRequest':
      return new Writer(ClientType.ControlRequest, 1).done();
    case 'ControlRelease':
      return new Writer(ClientType.ControlRelease, 5).u32(msg.id, 'id').done();
    case 'CacheOffer':
      checkUint(msg.tiles, MAX_CACHE_TILES, 'tiles');
      return new Writer(ClientType.CacheOffer, 5).u32(msg.tiles, 'tiles').done();
    default:
      throw new TypeError(`unknown client message ${/** @type {{type: string}} */ (msg).type}`);
  }
}

/**
 * Encode one server → client message (used by tests and mock servers).
 * @param {ServerMessage} msg
 * @returns {Uint8Array}
 */
export function encodeServerMessage(msg) {
  switch (msg.type) {
    case 'ServerHello': {
      const name = utf8Encoder.encode(msg.name);
      checkUint(name.length, 0xffff, 'name length');
      return new Writer(ServerType.ServerHello, 1 + 2 + 2 + 2 + 4 + 1 + 2 + name.length)
        .u16(msg.version, 'version')
        .u16(msg.width, 'width')
        .u16(msg.height, 'height')
        .u32(msg.codecs, 'codecs')
        .u8(msg.maxInFlight, 'max_in_flight')
        .u16(name.length, 'name_len')
        .raw(name)
        .done();
    }
    case 'Tile':
      return new Writer(ServerType.Tile, 10 + msg.data.length)
        .u16(msg.x, 'x')
        .u16(msg.y, 'y')
        .u16(msg.w, 'w')
        .u16(msg.h, 'h')
        .u8(msg.codec, 'codec')
        .raw(msg.data)
        .done();
    case 'Fill':
      return new Writer(ServerType.Fill, 12)
        .u16(msg.x, 'x')
        .u16(msg.y, 'y')
        .u16(msg.w, 'w')
        .u16(msg.h, 'h')
        .u8(msg.r, 'r')
        .u8(msg.g, 'g')
        .u8(msg.b, 'b')
        .done();
    case 'Copy':
      return new Writer(ServerType.Copy, 13)
        .u16(msg.srcX, 'src_x')
        .u16(msg.srcY, 'src_y')
        .u16(msg.w, 'w')
        .u16(msg.h, 'h')
        .u16(msg.dstX, 'dst_x')
        .u16(msg.dstY, 'dst_y')
        .done();
    case 'Cursor':
      return new Writer(ServerType.Cursor, 9 + msg.data.length)
        .u16(msg.hotX, 'hot_x')
        .u16(msg.hotY, 'hot_y')
        .u16(msg.w, 'w')
        .u16(msg.h, 'h')
        .raw(msg.data)
        .done();
    case 'Resize':
      return new Writer(ServerType.Resize, 5).u16(msg.width, 'width').u16(msg.height, 'height').done();
    case 'EndFrame':
      return new Writer(ServerType.EndFrame, 5).u32(msg.seq, 'seq').done();
    case 'Notice': {
      const code = asciiBytes(msg.code, 'code');
      const detail = utf8Encoder.encode(msg.detail);
      checkUint(code.length, 0xffff, 'code length');
      checkUint(detail.length, 0xffff, 'detail length');
      return new Writer(ServerType.Notice, 1 + 1 + 2 + code.length + 2 + detail.length)
        .u8(msg.level, 'level')
        .u16(code.length, 'code_len')
        .raw(code)
        .u16(detail.length, 'detail_len')
        .raw(detail)
        .done();
    }
    case 'Clipboard': {
      const text = utf8Encoder.encode(msg.text);
      return new Writer(ServerType.Clipboard, 1 + text.length).raw(text).done();
    }
    case 'Message': {
      const from = utf8Encoder.encode(cutText(msg.from, MAX_NAME));
      const text = utf8Encoder.encode(cutText(msg.text, MAX_MESSAGE_TEXT));
      return new Writer(ServerType.Message, 1 + 2 + from.length + 2 + text.length)
        .u16(from.length, 'from_len')
        .raw(from)
        .u16(text.length, 'text_len')
        .raw(text)
        .done();
    }
    case 'ControlRequest': {
      const from = utf8Encoder.encode(cutText(msg.from, MAX_NAME));
      return new Writer(ServerType.ControlRequest, 1 + 4 + 2 + from.length)
        .u32(msg.id, 'id')
        .u16(from.length, 'from_len')
        .raw(from)
        .done();
    }
    case 'ControlState':
      checkUint(msg.state, ControlState.Ended, 'state');
      return new Writer(ServerType.ControlState, 6).u32(msg.id, 'id').u8(msg.state, 'state').done();
    case 'ViewMode': {
      const name = utf8Encoder.encode(cutText(msg.shadowOf, MAX_NAME));
      return new Writer(ServerType.ViewMode, 1 + 1 + 2 + name.length)
        .u8(msg.readOnly ? 1 : 0, 'read_only')
        .u16(name.length, 'shadow_of_len')
        .raw(name)
        .done();
    }
    case 'CacheAgreed':
      checkUint(msg.tiles, MAX_CACHE_TILES, 'tiles');
      return new Writer(ServerType.CacheAgreed, 5).u32(msg.tiles, 'tiles').done();
    case 'CacheStore':
      checkUint(msg.slot, MAX_CACHE_TILES - 1, 'slot');
      return new Writer(ServerType.CacheStore, 14 + msg.data.length)
        .u32(msg.slot, 'slot')
        .u16(msg.x, 'x')
        .u16(msg.y, 'y')
        .u16(msg.w, 'w')
        .u16(msg.h, 'h')
        .u8(msg.codec, 'codec')
        .raw(msg.data)
        .done();
    case 'CacheDraw':
      checkUint(msg.slot, MAX_CACHE_TILES - 1, 'slot');
      return new Writer(ServerType.CacheDraw, 9).u32(msg.slot, 'slot').u16(msg.x, 'x').u16(msg.y, 'y').done();
    case 'Glyphs':
      return new Writer(ServerType.Glyphs, 5 + msg.atlas.length + msg.ops.length)
        .u32(msg.atlas.length, 'atlas_len')
        .raw(msg.atlas)
        .raw(msg.ops)
        .done();
    case 'Video': {
      checkUint(msg.clips.length, 0xff, 'clip_count');
      const w = new Writer(ServerType.Video, 13 + 8 * msg.clips.length + msg.data.length)
        .u16(msg.stream, 'stream')
        .u8((msg.key ? VIDEO_KEY : 0) | (msg.end ? VIDEO_END : 0), 'flags')
        .u16(msg.x, 'x')
        .u16(msg.y, 'y')
        .u16(msg.w, 'w')
        .u16(msg.h, 'h')
        .u8(msg.clips.length, 'clip_count');
      for (const c of msg.clips) w.u16(c.x, 'clip x').u16(c.y, 'clip y').u16(c.w, 'clip w').u16(c.h, 'clip h');
      return w.raw(msg.data).done();
    }
    default:
      throw new TypeError(`unknown server message ${/** @type {{type: string}} */ (msg).type}`);
  }
}

// Convenience encoders for the viewer.

/** @param {number} width @param {number} height @param {number} [codecs] */
export function encodeClientHello(width, height, codecs = CODECS_PNG) {
  return encodeClientMessage({ type: 'ClientHello', version: PROTOCOL_VERSION, width, height, codecs });
}

/** @param {number} seq */
export function encodeFrameAck(seq) {
  return encodeClientMessage({ type: 'FrameAck', seq });
}

/** @param {boolean} down @param {number} keysym @param {number} scancode */
export function encodeKey(down, keysym, scancode) {
  return encodeClientMessage({ type: 'Key', down, keysym, scancode });
}

/** @param {number} x @param {number} y @param {number} buttons */
export function encodePointer(x, y, buttons) {
  return encodeClientMessage({ type: 'Pointer', x, y, buttons });
}

/** @param {number} width @param {number} height */
export function encodeResizeRequest(width, height) {
  return encodeClientMessage({ type: 'ResizeRequest', width, height });
}

/** @param {string} text */
export function encodeClipboard(text) {
  return encodeClientMessage({ type: 'Clipboard', text });
}

/** The session owner's answer to control request `id`. @param {number} id @param {boolean} granted */
export function encodeControlReply(id, granted) {
  return encodeClientMessage({ type: 'ControlReply', id, granted });
}

/** A shadow viewer asks for control. */
export function encodeControlRequest() {
  return encodeClientMessage({ type: 'ControlRequest' });
}

/** The owner takes control back, or the shadow gives it back. @param {number} id */
export function encodeControlRelease(id) {
  return encodeClientMessage({ type: 'ControlRelease', id });
}

/** The tile cache the viewer offers to keep, sent right after the hello. @param {number} tiles */
export function encodeCacheOffer(tiles) {
  return encodeClientMessage({ type: 'CacheOffer', tiles });
}
