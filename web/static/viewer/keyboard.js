// @ts-check
/**
 * Keyboard mapping for the Bascule viewer.
 *
 * For every physical key event the viewer sends the X11 keysym of the
 * character the user's layout produced (event.key) and the physical key as a
 * PC/XT set-1 scancode (from event.code). See docs/protocol.md, "Keyboard".
 *
 * Keysym choice for characters: Latin-1 characters use their code point
 * (which is their X11 keysym), everything else uses the Unicode keysym
 * 0x01000000 | code point, except U+20AC (€) which is sent as the legacy
 * X11 keysym EuroSign 0x20AC: every X server and VNC server knows it, while
 * some older servers do not map the Unicode form U+20AC back to a keycode.
 *
 * This module must not touch `window` or `document` at import time.
 */

/** event.code → PC/XT set-1 scancode (0xE0xx for extended keys). */
const SCANCODES = /** @type {Record<string, number>} */ ({
  Escape: 0x01,
  Digit1: 0x02, Digit2: 0x03, Digit3: 0x04, Digit4: 0x05, Digit5: 0x06,
  Digit6: 0x07, Digit7: 0x08, Digit8: 0x09, Digit9: 0x0a, Digit0: 0x0b,
  Minus: 0x0c, Equal: 0x0d, Backspace: 0x0e, Tab: 0x0f,
  KeyQ: 0x10, KeyW: 0x11, KeyE: 0x12, KeyR: 0x13, KeyT: 0x14,
  KeyY: 0x15, KeyU: 0x16, KeyI: 0x17, KeyO: 0x18, KeyP: 0x19,
  BracketLeft: 0x1a, BracketRight: 0x1b, Enter: 0x1c, ControlLeft: 0x1d,
  KeyA: 0x1e, KeyS: 0x1f, KeyD: 0x20, KeyF: 0x21, KeyG: 0x22,
  KeyH: 0x23, KeyJ: 0x24, KeyK: 0x25, KeyL: 0x26,
  Semicolon: 0x27, Quote: 0x28, Backquote: 0x29, ShiftLeft: 0x2a, Backslash: 0x2b,
  KeyZ: 0x2c, KeyX: 0x2d, KeyC: 0x2e, KeyV: 0x2f, KeyB: 0x30, KeyN: 0x31, KeyM: 0x32,
  Comma: 0x33, Period: 0x34, Slash: 0x35, ShiftRight: 0x36,
  NumpadMultiply: 0x37, AltLeft: 0x38, Space: 0x39, CapsLock: 0x3a,
  F1: 0x3b, F2: 0x3c, F3: 0x3d, F4: 0x3e, F5: 0x3f,
  F6: 0x40, F7: 0x41, F8: 0x42, F9: 0x43, F10: 0x44,
  NumLock: 0x45, ScrollLock: 0x46,
  Numpad7: 0x47, Numpad8: 0x48, Numpad9: 0x49, NumpadSubtract: 0x4a,
  Numpad4: 0x4b, Numpad5: 0x4c, Numpad6: 0x4d, NumpadAdd: 0x4e,
  Numpad1: 0x4f, Numpad2: 0x50, Numpad3: 0x51, Numpad0: 0x52, NumpadDecimal: 0x53,
  IntlBackslash: 0x56, F11: 0x57, F12: 0x58, NumpadEqual: 0x59,
  F13: 0x64, F14: 0x65, F15: 0x66, F16: 0x67, F17: 0x68, F18: 0x69,
  F19: 0x6a, F20: 0x6b, F21: 0x6c, F22: 0x6d, F23: 0x6e, F24: 0x76,
  KanaMode: 0x70, IntlRo: 0x73, Convert: 0x79, NonConvert: 0x7b,
  IntlYen: 0x7d, NumpadComma: 0x7e,
  // Extended (E0-prefixed) keys.
  MediaTrackPrevious: 0xe010, MediaTrackNext: 0xe019,
  NumpadEnter: 0xe01c, ControlRight: 0xe01d,
  AudioVolumeMute: 0xe020, LaunchApp2: 0xe021, MediaPlayPause: 0xe022, MediaStop: 0xe024,
  AudioVolumeDown: 0xe02e, AudioVolumeUp: 0xe030, BrowserHome: 0xe032,
  NumpadDivide: 0xe035, PrintScreen: 0xe037, AltRight: 0xe038,
  Pause: 0xe046, Home: 0xe047, ArrowUp: 0xe048, PageUp: 0xe049,
  ArrowLeft: 0xe04b, ArrowRight: 0xe04d, End: 0xe04f,
  ArrowDown: 0xe050, PageDown: 0xe051, Insert: 0xe052, Delete: 0xe053,
  MetaLeft: 0xe05b, MetaRight: 0xe05c, OSLeft: 0xe05b, OSRight: 0xe05c,
  ContextMenu: 0xe05d, Power: 0xe05e, Sleep: 0xe05f, WakeUp: 0xe063,
  BrowserSearch: 0xe065, BrowserFavorites: 0xe066, BrowserRefresh: 0xe067,
  BrowserStop: 0xe068, BrowserForward: 0xe069, BrowserBack: 0xe06a,
  LaunchApp1: 0xe06b, LaunchMail: 0xe06c, MediaSelect: 0xe06d,
});

/**
 * PC/XT set-1 scancode of a physical key, 0 when unknown.
 * @param {string} code KeyboardEvent.code
 * @returns {number}
 */
export function codeToScancode(code) {
  return Object.prototype.hasOwnProperty.call(SCANCODES, code) ? SCANCODES[code] : 0;
}

/** Named (non-character) KeyboardEvent.key values → X11 keysym. */
const NAMED_KEYSYMS = /** @type {Record<string, number>} */ ({
  Backspace: 0xff08,
  Tab: 0xff09,
  Clear: 0xff0b,
  Enter: 0xff0d,
  Pause: 0xff13,
  ScrollLock: 0xff14,
  Escape: 0xff1b,
  Compose: 0xff20, // Multi_key
  Home: 0xff50,
  ArrowLeft: 0xff51,
  ArrowUp: 0xff52,
  ArrowRight: 0xff53,
  ArrowDown: 0xff54,
  PageUp: 0xff55,
  PageDown: 0xff56,
  End: 0xff57,
  Select: 0xff60,
  PrintScreen: 0xff61,
  Execute: 0xff62,
  Insert: 0xff63,
  Undo: 0xff65,
  Redo: 0xff66,
  ContextMenu: 0xff67, // Menu
  Find: 0xff68,
  Cancel: 0xff69,
  Help: 0xff6a,
  Break: 0xff6b,
  ModeChange: 0xff7e,
  NumLock: 0xff7f,
  CapsLock: 0xffe5,
  Hyper: 0xffed,
  Delete: 0xffff,
  AltGraph: 0xfe03, // ISO_Level3_Shift (never forwarded by KeyboardHandler)
  // XF86 multimedia keysyms
  AudioVolumeDown: 0x1008ff11,
  AudioVolumeMute: 0x1008ff12,
  AudioVolumeUp: 0x1008ff13,
  MediaPlayPause: 0x1008ff14,
  MediaStop: 0x1008ff15,
  MediaTrackPrevious: 0x1008ff16,
  MediaTrackNext: 0x1008ff17,
  BrowserHome: 0x1008ff18,
  LaunchMail: 0x1008ff19,
  BrowserSearch: 0x1008ff1b,
  BrowserBack: 0x1008ff26,
  BrowserForward: 0x1008ff27,
  BrowserStop: 0x1008ff28,
  BrowserRefresh: 0x1008ff29,
  BrowserFavorites: 0x1008ff30,
  Sleep: 0x1008ff2f,
  WakeUp: 0x1008ff2b,
  Power: 0x1008ff2a,
});

/** Modifier keys: [left keysym, right keysym]. */
const MODIFIER_KEYSYMS = /** @type {Record<string, [number, number]>} */ ({
  Shift: [0xffe1, 0xffe2],
  Control: [0xffe3, 0xffe4],
  Alt: [0xffe9, 0xffea],
  Meta: [0xffeb, 0xffec], // sent as Super_L / Super_R (the Windows keys)
  OS: [0xffeb, 0xffec],
  Super: [0xffeb, 0xffec],
  Hyper: [0xffed, 0xffee],
});

/** Numpad key values (NumLock on: characters; off: navigation) → KP_* keysyms. */
const NUMPAD_KEYSYMS = /** @type {Record<string, number>} */ ({
  '0': 0xffb0, '1': 0xffb1, '2': 0xffb2, '3': 0xffb3, '4': 0xffb4,
  '5': 0xffb5, '6': 0xffb6, '7': 0xffb7, '8': 0xffb8, '9': 0xffb9,
  '*': 0xffaa, '+': 0xffab, ',': 0xffac, '-': 0xffad, '.': 0xffae, '/': 0xffaf,
  '=': 0xffbd,
  Enter: 0xff8d,
  Home: 0xff95, ArrowLeft: 0xff96, ArrowUp: 0xff97, ArrowRight: 0xff98, ArrowDown: 0xff99,
  PageUp: 0xff9a, PageDown: 0xff9b, End: 0xff9c, Clear: 0xff9d, Insert: 0xff9e, Delete: 0xff9f,
});

/**
 * Fallback when event.key is useless ('Unidentified'): the keysym the key
 * has on a US layout, derived from event.code.
 * @param {string} code
 * @returns {number | null}
 */
function keysymFromCode(code) {
  let m = /^Key([A-Z])$/.exec(code);
  if (m) return m[1].toLowerCase().charCodeAt(0);
  m = /^Digit([0-9])$/.exec(code);
  if (m) return m[1].charCodeAt(0);
  m = /^F([0-9]{1,2})$/.exec(code);
  if (m) return functionKeysym(Number(m[1]));
  /** @type {Record<string, number>} */
  const us = {
    Space: 0x20, Minus: 0x2d, Equal: 0x3d, BracketLeft: 0x5b, BracketRight: 0x5d,
    Backslash: 0x5c, Semicolon: 0x3b, Quote: 0x27, Backquote: 0x60, Comma: 0x2c,
    Period: 0x2e, Slash: 0x2f, IntlBackslash: 0x3c,
    ShiftLeft: 0xffe1, ShiftRight: 0xffe2, ControlLeft: 0xffe3, ControlRight: 0xffe4,
    AltLeft: 0xffe9, AltRight: 0xffea, MetaLeft: 0xffeb, MetaRight: 0xffec,
    OSLeft: 0xffeb, OSRight: 0xffec,
  };
  if (Object.prototype.hasOwnProperty.call(us, code)) return us[code];
  if (Object.prototype.hasOwnProperty.call(NAMED_KEYSYMS, code)) return NAMED_KEYSYMS[code];
  if (code === 'NumpadEnter') return 0xff8d;
  return null;
}

/** @param {number} n 1..35 */
function functionKeysym(n) {
  return n >= 1 && n <= 35 ? 0xffbe + n - 1 : 0;
}

/**
 * X11 keysym of one character (a single Unicode code point), or null for
 * control characters.
 * @param {string} ch
 * @returns {number | null}
 */
export function charToKeysym(ch) {
  const cp = ch.codePointAt(0);
  if (cp === undefined) return null;
  if ((cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xff)) return cp; // Latin-1
  if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return null; // C0/C1 controls
  if (cp >= 0xd800 && cp <= 0xdfff) return null; // lone surrogate
  if (cp === 0x20ac) return 0x20ac; // EuroSign (legacy keysym, see header)
  return 0x01000000 | cp;
}

/**
 * Is `key` a single printable character (exactly one code point)?
 * @param {string} key
 */
export function isPrintableKey(key) {
  if (!key) return false;
  const cp = key.codePointAt(0);
  if (cp === undefined) return false;
  if (key.length !== (cp > 0xffff ? 2 : 1)) return false;
  return charToKeysym(key) !== null;
}

/**
 * @typedef {object} KeyLike
 * @property {string} key KeyboardEvent.key
 * @property {string} code KeyboardEvent.code
 * @property {number} [location] KeyboardEvent.location (1 left, 2 right, 3 numpad)
 */

/**
 * X11 keysym for a key event, or null when nothing should be sent
 * (dead keys, IME processing, unknown keys).
 * @param {KeyLike} ev
 * @returns {number | null}
 */
export function keyEventToKeysym(ev) {
  const key = ev.key || '';
  const code = ev.code || '';
  if (key === 'Dead' || key === 'Process' || (key === 'Unidentified' && !code)) return null;

  // Numpad: KP_* keysyms so the remote side sees keypad keys.
  if ((ev.location === 3 || code.startsWith('Numpad')) &&
      Object.prototype.hasOwnProperty.call(NUMPAD_KEYSYMS, key)) {
    return NUMPAD_KEYSYMS[key];
  }

  if (isPrintableKey(key)) return charToKeysym(key);

  if (Object.prototype.hasOwnProperty.call(MODIFIER_KEYSYMS, key)) {
    const [left, right] = MODIFIER_KEYSYMS[key];
    const isRight = ev.location === 2 || code.endsWith('Right');
    return isRight ? right : left;
  }

  const f = /^F([0-9]{1,2})$/.exec(key);
  if (f) {
    const sym = functionKeysym(Number(f[1]));
    if (sym) return sym;
  }

  if (Object.prototype.hasOwnProperty.call(NAMED_KEYSYMS, key)) return NAMED_KEYSYMS[key];

  // 'Unidentified' or an unknown named key: fall back on the physical key.
  return keysymFromCode(code);
}

/**
 * Key events of Ctrl+Alt+Del (down, down, down, up, up, up).
 * @returns {Array<[boolean, number, number]>} [down, keysym, scancode]
 */
export function ctrlAltDelSequence() {
  const ctrl = /** @type {[number, number]} */ ([0xffe3, 0x1d]);
  const alt = /** @type {[number, number]} */ ([0xffe9, 0x38]);
  const del = /** @type {[number, number]} */ ([0xffff, 0xe053]);
  return [
    [true, ...ctrl], [true, ...alt], [true, ...del],
    [false, ...del], [false, ...alt], [false, ...ctrl],
  ];
}

/**
 * @typedef {object} KeyEventLike
 * @property {string} key
 * @property {string} code
 * @property {number} [location]
 * @property {boolean} [repeat]
 * @property {number} [timeStamp]
 * @property {boolean} [ctrlKey]
 * @property {boolean} [altKey]
 * @property {boolean} [shiftKey]
 * @property {boolean} [metaKey]
 * @property {boolean} [isComposing]
 * @property {(key: string) => boolean} [getModifierState]
 * @property {() => void} [preventDefault]
 */

/**
 * @typedef {object} KeyboardOptions
 * @property {boolean} [windowsAltGr] Detect the fake ControlLeft that Windows
 *   sends before AltRight for AltGr (buffers ControlLeft key-downs briefly).
 * @property {number} [altGrWindowMs] How long a ControlLeft down is held back.
 * @property {boolean} [deferPaste] Hold back the key-down of a paste shortcut
 *   (Ctrl+V, Shift+Insert) until the paste event has been handled.
 * @property {number} [pasteWindowMs] How long that key-down is held back at most.
 * @property {(fn: () => void, ms: number) => unknown} [setTimeout]
 * @property {(id: any) => void} [clearTimeout]
 */

/**
 * @typedef {{keysym: number, scancode: number}} SentKey
 * @typedef {{kind: 'ctrl' | 'paste', id: string, keysym: number, scancode: number, timeStamp: number, timer: unknown}} PendingKey
 */

/**
 * Turns DOM keyboard events into Key(down, keysym, scancode) messages.
 *
 * - Dead keys and AltGr (key 'AltGraph', or AltRight after the fake ControlLeft
 *   that Windows sends for AltGr) produce no character themselves: they are sent
 *   as physical keys only (keysym 0 with their scancode). Keysym backends (VNC)
 *   ignore them and receive the composed character (ê, €) on the next key-down;
 *   scancode backends (RDP) forward them so that the host composes with its
 *   own layout. The fake ControlLeft is swallowed with its key-up.
 * - The keysym sent on key-down is remembered per physical key (event.code)
 *   so the key-up releases the same keysym even if event.key changed.
 */
export class KeyboardHandler {
  /**
   * @param {(down: boolean, keysym: number, scancode: number) => void} send
   * @param {KeyboardOptions} [options]
   */
  constructor(send, options = {}) {
    this.send = send;
    this.windowsAltGr = options.windowsAltGr ?? true;
    this.altGrWindowMs = options.altGrWindowMs ?? 50;
    this.deferPaste = options.deferPaste ?? true;
    this.pasteWindowMs = options.pasteWindowMs ?? 100;
    this.setTimer = options.setTimeout ?? ((fn, ms) => globalThis.setTimeout(fn, ms));
    this.clearTimer = options.clearTimeout ?? ((id) => globalThis.clearTimeout(id));
    /**
     * Keys currently down, by event.code: what was sent on key-down, or null
     * when the key-down was swallowed (dead key, AltGr, fake Ctrl).
     * @type {Map<string, SentKey | null>}
     */
    this.down = new Map();
    /** @type {PendingKey | null} */
    this.pending = null;
  }

  /** @param {KeyEventLike} ev */
  static id(ev) {
    return ev.code || `key:${ev.key}`;
  }

  /**
   * Sends a key that gives no character by itself (dead key, AltGr) as its
   * physical key only: keysym 0 and its scancode.
   * @param {string} id
   * @param {string} code
   */
  sendPhysical(id, code) {
    const scancode = codeToScancode(code);
    if (!scancode) {
      this.down.set(id, null);
      return;
    }
    const sent = { keysym: 0, scancode };
    this.down.set(id, sent);
    this.send(true, 0, scancode);
  }

  /** Is a paste shortcut waiting for its paste event? */
  hasPendingPaste() {
    return this.pending !== null && this.pending.kind === 'paste';
  }

  /** Send the held-back key-down, if any. */
  flushPending() {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    this.clearTimer(p.timer);
    this.down.set(p.id, { keysym: p.keysym, scancode: p.scancode });
    this.send(true, p.keysym, p.scancode);
  }

  /** Forget the held-back key-down without sending it. */
  dropPending() {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    this.clearTimer(p.timer);
  }

  /**
   * @param {PendingKey['kind']} kind
   * @param {string} id
   * @param {number} keysym
   * @param {number} scancode
   * @param {number} timeStamp
   * @param {number} ms
   */
  hold(kind, id, keysym, scancode, timeStamp, ms) {
    this.flushPending();
    /** @type {PendingKey} */
    const p = { kind, id, keysym, scancode, timeStamp, timer: null };
    p.timer = this.setTimer(() => {
      if (this.pending === p) this.flushPending();
    }, ms);
    this.pending = p;
  }

  /**
   * Handle a keydown. Returns true when the event was consumed.
   * @param {KeyEventLike} ev
   * @returns {boolean}
   */
  keyDown(ev) {
    if (ev.isComposing || ev.key === 'Process') return false;
    const id = KeyboardHandler.id(ev);
    const code = ev.code || '';
    const key = ev.key || '';
    const now = ev.timeStamp ?? 0;
    const prevent = () => ev.preventDefault && ev.preventDefault();

    if (this.pending) {
      const p = this.pending;
      const isAltGr = code === 'AltRight' || key === 'AltGraph';
      if (p.kind === 'ctrl' && isAltGr && Math.abs(now - p.timeStamp) <= this.altGrWindowMs) {
        // Windows AltGr: the pending ControlLeft was fake. Swallow it (and its
        // key-up), and treat this AltRight as AltGr whatever its key value.
        this.dropPending();
        this.down.set(p.id, null);
        this.sendPhysical(id, code);
        prevent();
        return true;
      }
      if (ev.repeat && p.id === id) {
        // Auto-repeat of the held-back key itself: keep waiting.
        if (p.kind === 'ctrl') prevent();
        return true;
      }
      this.flushPending();
    }

    // Auto-repeat of a swallowed key: still swallowed.
    if (ev.repeat && this.down.get(id) === null) {
      if (key !== 'Dead') prevent();
      return true;
    }

    if (key === 'Dead') {
      // Let the browser compose (no preventDefault); the next key-down carries the result.
      this.sendPhysical(id, code);
      return true;
    }

    if (key === 'AltGraph') {
      this.sendPhysical(id, code);
      prevent();
      return true;
    }

    const keysym = keyEventToKeysym(ev);
    const scancode = codeToScancode(code);
    if (keysym === null) return false;

    if (code === 'ControlLeft' && key === 'Control' && !ev.repeat && this.windowsAltGr) {
      if (ev.getModifierState && ev.getModifierState('AltGraph')) {
        this.down.set(id, null);
      } else {
        this.hold('ctrl', id, keysym, scancode, now, this.altGrWindowMs);
      }
      prevent();
      return true;
    }

    if (this.deferPaste && !ev.repeat && isPasteShortcut(ev)) {
      // No preventDefault: the browser must run its paste command so that the
      // paste event fires; the key-down goes out after the clipboard text.
      this.hold('paste', id, keysym, scancode, now, this.pasteWindowMs);
      return true;
    }

    // Repeats re-send what the first key-down sent.
    const previous = this.down.get(id);
    const sent = ev.repeat && previous ? previous : { keysym, scancode };
    if (!ev.repeat && previous) {
      // A key-down without key-up (lost event): release the old keysym first.
      this.send(false, previous.keysym, previous.scancode);
    }
    this.down.set(id, sent);
    this.send(true, sent.keysym, sent.scancode);
    prevent();
    return true;
  }

  /**
   * Handle a keyup. Returns true when the event was consumed.
   * @param {KeyEventLike} ev
   * @returns {boolean}
   */
  keyUp(ev) {
    const id = KeyboardHandler.id(ev);
    const prevent = () => ev.preventDefault && ev.preventDefault();
    if (this.pending) this.flushPending();

    const entry = this.down.get(id);
    if (entry === undefined) {
      // Windows only reports key-up for PrintScreen: send a full press.
      if (ev.code === 'PrintScreen') {
        const keysym = keyEventToKeysym(ev) ?? 0xff61;
        const scancode = codeToScancode(ev.code);
        this.send(true, keysym, scancode);
        this.send(false, keysym, scancode);
        prevent();
        return true;
      }
      return false; // never saw its key-down (focus arrived while held)
    }
    this.down.delete(id);
    if (entry === null) {
      if (ev.key !== 'Dead') prevent();
      return true;
    }
    this.send(false, entry.keysym, entry.scancode);
    if (ev.key !== 'Dead') prevent();
    return true;
  }

  /** Release every key still down (focus lost, page hidden). */
  releaseAll() {
    this.dropPending();
    const entries = [...this.down.values()].reverse();
    this.down.clear();
    for (const e of entries) {
      if (e) this.send(false, e.keysym, e.scancode);
    }
  }

  /** Forget all state without sending anything (connection closed). */
  reset() {
    this.dropPending();
    this.down.clear();
  }
}

/** @param {KeyEventLike} ev */
function isPasteShortcut(ev) {
  const key = ev.key || '';
  if ((ev.ctrlKey || ev.metaKey) && !ev.altKey && (key === 'v' || key === 'V')) return true;
  return Boolean(ev.shiftKey && !ev.ctrlKey && !ev.altKey && key === 'Insert' && ev.code === 'Insert');
}
