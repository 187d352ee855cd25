// @ts-check
/**
 * H.264 video streams of the viewer (docs/protocol.md, `Video`): one WebCodecs `VideoDecoder` per
 * open stream, fed every access unit of the stream as it arrives (in message order).
 *
 * A `KEY` message configures the stream's decoder from the SPS of its data (the codec string
 * `avc1.PPCCLL`, Annex B input, so no `description`), then decodes its chunk as a key chunk; the
 * other messages of the stream are delta chunks. The decoder gives its pictures back in decode
 * order (the gateway sends no B-frames); each chunk has a timestamp of its own (a counter of the
 * stream), so every picture goes to the promise of the message it was decoded from.
 * `decoder.flush()` is never called per frame (after a flush, WebCodecs wants a key chunk): only for
 * the last message of a stream (`END`), whose picture must come out before the decoder is closed.
 *
 * A decoder error, a chunk the decoder refuses, a picture smaller than its message's rectangle, or
 * a picture that does not come within `timeoutMs` closes the stream and rejects every message of it
 * still waiting for its picture.
 *
 * This module has no DOM: the decoder comes from a factory (WebCodecs in the browser, a fake in
 * the unit tests), and so does `EncodedVideoChunk` (a global).
 */

/** A `Video` message that breaks the rules, or a stream whose decoder failed: reported, never fatal. */
export class VideoError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'VideoError';
  }
}

/** How long a decoder may take to give back the picture of a chunk before its stream is closed. */
export const VIDEO_OUTPUT_TIMEOUT_MS = 5000;

/** @typedef {(init: VideoDecoderInit) => VideoDecoder} VideoDecoderFactory */

/** WebCodecs' own decoder. @type {VideoDecoderFactory} */
export const webCodecsDecoder = (init) => new VideoDecoder(init);

/**
 * The WebCodecs codec string of an H.264 access unit in Annex B format (start codes `00 00 01` or
 * `00 00 00 01`): `avc1.` and the profile_idc, constraint flags and level_idc of its first SPS
 * (NAL unit type 7), two lower-case hex digits each. Emulation prevention bytes (`00 00 03`) are
 * skipped, as an H.264 decoder does.
 * @param {Uint8Array} data
 * @returns {string}
 * @throws {VideoError} when the data holds no SPS, or an SPS cut before its level
 */
export function avcCodecString(data) {
  for (let i = 0; i + 3 <= data.length; i++) {
    if (data[i] !== 0 || data[i + 1] !== 0 || data[i + 2] !== 1) continue;
    const start = i + 3; // the NAL header byte
    if (start < data.length && (data[start] & 0x1f) === 7) {
      // The SPS ends where 00 00 00, 00 00 01 or 00 00 02 starts (never inside a NAL unit).
      let end = start + 1;
      while (end < data.length && !(end + 2 < data.length && data[end] === 0 && data[end + 1] === 0 && data[end + 2] <= 2)) end++;
      /** @type {number[]} */
      const bytes = [];
      let zeros = 0;
      for (let j = start + 1; j < end && bytes.length < 3; j++) {
        const b = data[j];
        if (zeros >= 2 && b === 3) {
          zeros = 0; // an emulation prevention byte
          continue;
        }
        zeros = b === 0 ? zeros + 1 : 0;
        bytes.push(b);
      }
      if (bytes.length < 3) throw new VideoError('Video: the SPS is cut before its level');
      return `avc1.${bytes.map((b) => b.toString(16).padStart(2, '0')).join('')}`;
    }
    i += 2;
  }
  throw new VideoError('Video: a KEY message without an SPS');
}

/**
 * @typedef {object} PendingPicture a chunk given to the decoder, waiting for its picture
 * @property {number} timestamp
 * @property {number} width the least width of its picture (its message's rectangle)
 * @property {number} height the least height
 * @property {(frame: VideoFrame | null) => void} resolve
 * @property {(error: unknown) => void} reject
 * @property {ReturnType<typeof setTimeout>} timer
 */

/** One open video stream: its decoder and the chunks waiting for their pictures. */
export class VideoStream {
  /**
   * @param {number} id the stream id of the messages
   * @param {VideoDecoderFactory} factory
   * @param {(stream: VideoStream) => void} onClosed called once, when the stream closes (whatever the cause)
   * @param {number} [timeoutMs]
   */
  constructor(id, factory, onClosed, timeoutMs = VIDEO_OUTPUT_TIMEOUT_MS) {
    this.id = id;
    this.factory = factory;
    this.onClosed = onClosed;
    this.timeoutMs = timeoutMs;
    /** @type {VideoDecoder | null} */
    this.decoder = null;
    /** @type {PendingPicture[]} in decode order */
    this.pending = [];
    /** The timestamp of the next chunk. */
    this.timestamp = 0;
    this.closed = false;
  }

  /**
   * Configure the decoder for a new coded video sequence (a KEY message): the first one creates
   * it, the next ones reconfigure it (the chunks already given still come out, in order).
   * @param {string} codec
   */
  configure(codec) {
    if (this.closed) throw new VideoError(`Video: stream ${this.id} is closed`);
    if (!this.decoder) {
      /** @type {VideoDecoder} */
      const decoder = this.factory({
        output: (frame) => {
          if (this.decoder === decoder) this.output(frame);
          else frame.close();
        },
        error: (error) => {
          if (this.decoder === decoder) this.fail(error);
        },
      });
      this.decoder = decoder;
    }
    try {
      this.decoder.configure({ codec, optimizeForLatency: true });
    } catch (err) {
      this.fail(err);
      throw err;
    }
  }

  /**
   * Give one access unit to the decoder; resolves with its picture (which the caller closes), or
   * with null when the stream was closed before the picture came (nothing to draw, no error).
   * @param {boolean} key
   * @param {Uint8Array} data
   * @param {boolean} last the stream ends with this chunk: flush the decoder
   * @param {number} width @param {number} height the least size of the picture
   * @returns {Promise<VideoFrame | null>}
   */
  decode(key, data, last, width, height) {
    const decoder = this.decoder;
    if (this.closed || !decoder) return Promise.reject(new VideoError(`Video: stream ${this.id} is closed`));
    const timestamp = this.timestamp++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new VideoError(`Video: no picture from the decoder of stream ${this.id} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.push({ timestamp, width, height, resolve, reject, timer });
      try {
        decoder.decode(new EncodedVideoChunk({ type: key ? 'key' : 'delta', timestamp, data }));
        if (last) decoder.flush().catch(() => {}); // a failed flush is reported by the error callback
      } catch (err) {
        this.fail(err);
      }
    });
  }

  /**
   * A picture from the decoder: it belongs to the chunk of its timestamp; earlier chunks still
   * waiting got no picture (they are errors).
   * @param {VideoFrame} frame
   */
  output(frame) {
    const timestamp = frame.timestamp;
    while (this.pending.length > 0 && this.pending[0].timestamp < timestamp) {
      const skipped = /** @type {PendingPicture} */ (this.pending.shift());
      clearTimeout(skipped.timer);
      skipped.reject(new VideoError(`Video: the decoder of stream ${this.id} gave no picture for chunk ${skipped.timestamp}`));
    }
    const head = this.pending[0];
    if (head && head.timestamp === timestamp) {
      if (frame.displayWidth < head.width || frame.displayHeight < head.height) {
        const size = `${frame.displayWidth}x${frame.displayHeight}`;
        frame.close();
        this.fail(new VideoError(`Video: a ${size} picture for a ${head.width}x${head.height} rectangle (stream ${this.id} closed)`));
        return;
      }
      this.pending.shift();
      clearTimeout(head.timer);
      head.resolve(frame);
    } else {
      frame.close(); // not asked for
    }
  }

  /**
   * The decoder failed (or gave nothing in time): close the stream, and every chunk still waiting
   * is an error.
   * @param {unknown} error
   */
  fail(error) {
    if (this.closed) return;
    const pending = this.shutdown();
    const reason = error instanceof VideoError ? error : new VideoError(`Video: the decoder of stream ${this.id} failed: ${String(error)}`);
    for (const p of pending) p.reject(reason);
    this.onClosed(this);
  }

  /** Close the stream (END, Resize, a new connection): chunks still waiting draw nothing. */
  close() {
    if (this.closed) return;
    const pending = this.shutdown();
    for (const p of pending) p.resolve(null);
    this.onClosed(this);
  }

  /** @returns {PendingPicture[]} the chunks that were waiting */
  shutdown() {
    this.closed = true;
    const decoder = this.decoder;
    this.decoder = null;
    if (decoder && decoder.state !== 'closed') {
      try {
        decoder.close();
      } catch {
        // already closed
      }
    }
    const pending = this.pending;
    this.pending = [];
    for (const p of pending) clearTimeout(p.timer);
    return pending;
  }
}
