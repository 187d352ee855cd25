// @ts-check
/**
 * Bascule browser viewer: entry point.
 *
 * The gateway renders:
 *   <body data-resource="…" data-resource-name="…" data-csrf="…" data-portal-url="/">
 *     <div id="bascule-viewer"></div>
 *     <script type="module" src="/static/viewer/main.js"></script>
 *
 * Flow: POST /api/launch → {ticket, ws} → WebSocket → ClientHello → ServerHello
 * → frames (tiles … EndFrame → FrameAck). See docs/protocol.md.
 */

import {
  Button,
  CODECS_PNG,
  NoticeLevel,
  PROTOCOL_VERSION,
  ProtocolError,
  decodeServerMessage,
  encodeClientHello,
  encodeClipboard,
  encodeFrameAck,
  encodeKey,
  encodePointer,
} from './protocol.js';
import { Display, cursorCss } from './display.js';
import { KeyboardHandler, ctrlAltDelSequence } from './keyboard.js';
import { noticeText, pageLang, t } from './i18n.js';

/** @typedef {'connecting' | 'connected' | 'reconnecting' | 'ended' | 'error'} ViewerState */
/** @typedef {'fit' | 'actual'} ScaleMode */

/**
 * Test hooks, kept up to date on `window.bascule`.
 * @typedef {object} BasculeHooks
 * @property {ViewerState} state
 * @property {number} bytesReceived sum of the byteLength of every WebSocket message
 * @property {number} messagesReceived
 * @property {number} framesAcked number of FrameAck messages sent
 * @property {number | null} lastAckedSeq
 * @property {number} width remote desktop width
 * @property {number} height remote desktop height
 * @property {HTMLCanvasElement} canvas
 * @property {string} clipboard last remote clipboard text
 * @property {{level: number, code: string, detail: string} | null} notice last Notice received
 * @property {ScaleMode} scaleMode
 */

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Language-neutral toolbar icons (24×24, stroked). */
const ICONS = {
  back: ['M15 18l-6-6 6-6', 'M9 12h11'],
  keyboard: ['M3 6h18v12H3z', 'M6 9h1', 'M9 9h1', 'M12 9h1', 'M15 9h1', 'M18 9h0', 'M6 12h1', 'M9 12h1', 'M12 12h1', 'M15 12h1', 'M8 15h8'],
  fit: ['M4 9V4h5', 'M20 9V4h-5', 'M4 15v5h5', 'M20 15v5h-5', 'M9 9l-4-4', 'M15 9l4-4', 'M9 15l-4 4', 'M15 15l4 4'],
  actual: ['M3 5h18v14H3z', 'M8 10v5', 'M7 10h1', 'M12 10.5v0', 'M12 14.5v0', 'M16 10v5', 'M15 10h1'],
  fullscreen: ['M4 9V4h5', 'M20 9V4h-5', 'M4 15v5h5', 'M20 15v5h-5'],
  exitFullscreen: ['M9 4v5H4', 'M15 4v5h5', 'M9 20v-5H4', 'M15 20v-5h5'],
};

/** @param {readonly string[]} paths */
function icon(paths) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '20');
  svg.setAttribute('height', '20');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const d of paths) {
    const p = document.createElementNS(SVG_NS, 'path');
    p.setAttribute('d', d);
    svg.appendChild(p);
  }
  return svg;
}

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {Record<string, string>} [attrs]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, className, attrs) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (attrs) for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

/** Make sure viewer.css is loaded (the page only includes the script). */
function ensureStylesheet() {
  const href = new URL('./viewer.css', import.meta.url).href;
  for (const link of document.querySelectorAll('link[rel="stylesheet"]')) {
    if (/** @type {HTMLLinkElement} */ (link).href === href) return;
  }
  const link = el('link', '', { rel: 'stylesheet', href });
  document.head.appendChild(link);
}

/** @param {number} v */
function clampU16(v) {
  return Math.max(0, Math.min(0xffff, Math.round(v) || 0));
}

/** DOM `buttons` (1 left, 2 right, 4 middle) → protocol mask (1 left, 2 middle, 4 right). */
/** @param {number} buttons */
function domButtonsToMask(buttons) {
  let mask = 0;
  if (buttons & 1) mask |= Button.Left;
  if (buttons & 2) mask |= Button.Right;
  if (buttons & 4) mask |= Button.Middle;
  return mask;
}

export class Viewer {
  /**
   * @param {HTMLElement} root
   * @param {DOMStringMap} data body dataset
   */
  constructor(root, data) {
    this.root = root;
    this.lang = pageLang();
    this.resource = data.resource ?? '';
    this.resourceName = data.resourceName ?? '';
    this.resourceIcon = data.resourceIcon ?? '';
    this.csrf = data.csrf ?? '';
    this.portalUrl = data.portalUrl || '/';

    /** @type {WebSocket | null} */
    this.ws = null;
    this.helloSent = false;
    this.connected = false;
    this.everConnected = false;
    /** @type {{code: string, detail: string} | null} a fatal Notice received on this connection */
    this.fatal = null;
    /** @type {ScaleMode} */
    this.scaleMode = this.loadScaleMode();

    // Pointer state.
    this.pointerX = 0;
    this.pointerY = 0;
    this.sentMask = 0;
    this.sentX = -1;
    this.sentY = -1;
    /** @type {{x: number, y: number} | null} */
    this.pendingMove = null;
    this.moveFrame = 0;
    this.wheelAccX = 0;
    this.wheelAccY = 0;
    this.lastWheel = 0;

    /** @type {number | undefined} */
    this.toastTimer = undefined;

    const ui = this.buildDom();
    this.canvas = ui.canvas;
    this.screen = ui.screen;
    this.statusEl = ui.statusEl;
    this.statusText = ui.statusText;
    this.cadButton = ui.cadButton;
    this.scaleButton = ui.scaleButton;
    this.fullscreenButton = ui.fullscreenButton;
    this.overlay = ui.overlay;
    this.dialogTitle = ui.dialogTitle;
    this.dialogMessage = ui.dialogMessage;
    this.details = ui.details;
    this.detailText = ui.detailText;
    this.reconnectButton = ui.reconnectButton;
    this.backLink = ui.backLink;
    this.dismissButton = ui.dismissButton;
    this.toast = ui.toast;

    const display = new Display(this.canvas, {
      onResize: (w, h) => this.onDisplayResize(w, h),
      onError: (e) => console.warn('bascule: draw error', e),
    });
    this.display = display;

    const isWindows = /Win/i.test(navigator.platform || navigator.userAgent);
    this.keyboard = new KeyboardHandler((down, keysym, scancode) => this.sendKey(down, keysym, scancode), {
      windowsAltGr: isWindows,
    });

    /** @type {BasculeHooks} */
    this.hooks = {
      state: 'connecting',
      bytesReceived: 0,
      messagesReceived: 0,
      framesAcked: 0,
      lastAckedSeq: null,
      width: 0,
      height: 0,
      canvas: this.canvas,
      clipboard: '',
      notice: null,
      scaleMode: this.scaleMode,
    };
    /** @type {any} */ (window).bascule = this.hooks;

    this.bindEvents();
    this.applyScaleMode();
    this.setState('connecting');
  }

  // -------------------------------------------------------------------------
  // DOM

  buildDom() {
    const root = this.root;
    root.classList.add('bv-root');
    root.replaceChildren();

    const toolbar = el('div', 'bv-toolbar', { role: 'toolbar', 'aria-label': this.t('toolbar.label') });

    const back = el('a', 'bv-btn bv-back', { href: this.portalUrl, title: this.t('toolbar.back'), 'aria-label': this.t('toolbar.back') });
    back.appendChild(icon(ICONS.back));

    const title = el('span', 'bv-title');
    if (this.resourceIcon) {
      const image = el('img', 'bv-resource-icon', { src: this.resourceIcon, alt: '', width: '20', height: '20' });
      title.appendChild(image);
    }
    title.appendChild(document.createTextNode(this.resourceName || this.resource));

    const status = el('span', 'bv-status', { role: 'status', 'aria-live': 'polite', title: this.t('toolbar.status') });
    const dot = el('span', 'bv-dot', { 'aria-hidden': 'true' });
    const statusText = el('span', 'bv-status-text');
    status.append(dot, statusText);

    const spacer = el('span', 'bv-spacer');

    const cad = el('button', 'bv-btn', { type: 'button', title: this.t('toolbar.cad'), 'aria-label': this.t('toolbar.cad') });
    cad.appendChild(icon(ICONS.keyboard));

    const scale = el('button', 'bv-btn', { type: 'button' });
    const fullscreen = el('button', 'bv-btn', { type: 'button' });

    toolbar.append(back, title, status, spacer, cad, scale, fullscreen);

    const screen = el('div', 'bv-screen');
    const canvas = el('canvas', 'bv-canvas', {
      tabindex: '0',
      role: 'img',
      'aria-roledescription': 'remote desktop',
      'aria-label': this.resourceName
        ? this.t('canvas.label', { name: this.resourceName })
        : this.t('canvas.labelNoName'),
    });
    canvas.width = 0;
    canvas.height = 0;
    screen.appendChild(canvas);

    const overlay = el('div', 'bv-overlay', { hidden: '' });
    const dialog = el('div', 'bv-dialog', { role: 'alertdialog', 'aria-labelledby': 'bv-dialog-title', 'aria-describedby': 'bv-dialog-message' });
    const dTitle = el('h2', 'bv-dialog-title', { id: 'bv-dialog-title' });
    const dMessage = el('p', 'bv-dialog-message', { id: 'bv-dialog-message' });
    const details = el('details', 'bv-details');
    const summary = el('summary');
    summary.textContent = this.t('overlay.details');
    const detailText = el('pre', 'bv-detail-text');
    details.append(summary, detailText);
    const actions = el('div', 'bv-actions');
    const reconnect = el('button', 'bv-action bv-action-primary', { type: 'button' });
    reconnect.textContent = this.t('overlay.reconnect');
    const backLink = el('a', 'bv-action', { href: this.portalUrl });
    backLink.textContent = this.t('overlay.back');
    const dismiss = el('button', 'bv-action', { type: 'button' });
    dismiss.textContent = this.t('overlay.dismiss');
    actions.append(reconnect, backLink, dismiss);
    dialog.append(dTitle, dMessage, details, actions);
    overlay.appendChild(dialog);

    const toast = el('div', 'bv-toast', { role: 'status', 'aria-live': 'polite', hidden: '' });

    root.append(toolbar, screen, overlay, toast);

    return {
      canvas: canvas,
      screen: screen,
      statusEl: status,
      statusText: statusText,
      cadButton: cad,
      scaleButton: scale,
      fullscreenButton: fullscreen,
      overlay: overlay,
      dialogTitle: dTitle,
      dialogMessage: dMessage,
      details: details,
      detailText: detailText,
      reconnectButton: reconnect,
      backLink: backLink,
      dismissButton: dismiss,
      toast: toast,
    };
  }

  /** @param {string} key @param {Record<string, string | number>} [vars] */
  t(key, vars) {
    return t(key, this.lang, vars);
  }

  /** @param {ViewerState} state @param {string} [text] */
  setState(state, text) {
    this.state = state;
    this.hooks.state = state;
    this.statusEl.dataset.state = state;
    this.root.dataset.state = state;
    this.statusText.textContent = text ?? this.t(`state.${state}`);
  }

  /**
   * @param {object} o
   * @param {string} o.title
   * @param {string} o.message
   * @param {string} [o.detail]
   * @param {boolean} [o.reconnect]
   * @param {boolean} [o.dismiss]
   * @param {'error' | 'warning' | 'ended'} [o.tone]
   */
  showOverlay(o) {
    this.dialogTitle.textContent = o.title;
    this.dialogMessage.textContent = o.message;
    this.detailText.textContent = o.detail ?? '';
    this.details.hidden = !o.detail;
    this.details.open = false;
    this.reconnectButton.hidden = !o.reconnect;
    this.dismissButton.hidden = !o.dismiss;
    this.overlay.dataset.tone = o.tone ?? 'error';
    this.overlay.hidden = false;
    const focusTarget = o.reconnect ? this.reconnectButton : this.backLink;
    focusTarget.focus({ preventScroll: true });
  }

  hideOverlay() {
    this.overlay.hidden = true;
  }

  /** @param {string} text */
  showToast(text) {
    this.toast.textContent = text;
    this.toast.hidden = false;
    window.clearTimeout(this.toastTimer);
    this.toastTimer = window.setTimeout(() => {
      this.toast.hidden = true;
    }, 3000);
  }

  // -------------------------------------------------------------------------
  // Scaling and layout

  /** @returns {ScaleMode} */
  loadScaleMode() {
    try {
      return localStorage.getItem('bascule.scaleMode') === 'actual' ? 'actual' : 'fit';
    } catch {
      return 'fit';
    }
  }

  toggleScaleMode() {
    this.scaleMode = this.scaleMode === 'fit' ? 'actual' : 'fit';
    try {
      localStorage.setItem('bascule.scaleMode', this.scaleMode);
    } catch {
      // storage disabled: the choice lasts for this page only
    }
    this.applyScaleMode();
  }

  applyScaleMode() {
    const fit = this.scaleMode === 'fit';
    this.hooks.scaleMode = this.scaleMode;
    this.screen.classList.toggle('bv-fit', fit);
    this.screen.classList.toggle('bv-actual', !fit);
    // The button shows the mode it switches to.
    const label = this.t(fit ? 'toolbar.scaleActual' : 'toolbar.scaleFit');
    this.scaleButton.replaceChildren(icon(fit ? ICONS.actual : ICONS.fit));
    this.scaleButton.title = label;
    this.scaleButton.setAttribute('aria-label', label);
    this.scaleButton.setAttribute('aria-pressed', String(!fit));
    this.layout();
  }

  layout() {
    const w = this.display ? this.display.width : 0;
    const h = this.display ? this.display.height : 0;
    const style = this.canvas.style;
    if (!w || !h) {
      style.width = '0px';
      style.height = '0px';
      return;
    }
    if (this.scaleMode === 'actual') {
      style.width = `${w}px`;
      style.height = `${h}px`;
      return;
    }
    const aw = this.screen.clientWidth;
    const ah = this.screen.clientHeight;
    if (!aw || !ah) return;
    const s = Math.min(aw / w, ah / h);
    style.width = `${Math.max(1, Math.floor(w * s))}px`;
    style.height = `${Math.max(1, Math.floor(h * s))}px`;
  }

  updateFullscreenButton() {
    const active = document.fullscreenElement === this.root;
    const label = this.t(active ? 'toolbar.exitFullscreen' : 'toolbar.fullscreen');
    this.fullscreenButton.replaceChildren(icon(active ? ICONS.exitFullscreen : ICONS.fullscreen));
    this.fullscreenButton.title = label;
    this.fullscreenButton.setAttribute('aria-label', label);
    this.fullscreenButton.setAttribute('aria-pressed', String(active));
    this.fullscreenButton.hidden = !document.fullscreenEnabled;
  }

  async toggleFullscreen() {
    /** @type {any} */
    const nav = navigator;
    try {
      if (document.fullscreenElement) {
        await document.exitFullscreen();
      } else {
        await this.root.requestFullscreen();
        // In full screen, capture system keys (Escape, Alt+Tab…) where supported.
        if (nav.keyboard && typeof nav.keyboard.lock === 'function') {
          nav.keyboard.lock().catch(() => {});
        }
      }
    } catch (err) {
      console.warn('bascule: full screen refused', err);
    }
    this.canvas.focus({ preventScroll: true });
  }

  /** @param {number} w @param {number} h */
  onDisplayResize(w, h) {
    this.hooks.width = w;
    this.hooks.height = h;
    this.layout();
  }

  // -------------------------------------------------------------------------
  // Events

  bindEvents() {
    const c = this.canvas;

    this.cadButton.addEventListener('click', () => {
      for (const [down, keysym, scancode] of ctrlAltDelSequence()) this.sendKey(down, keysym, scancode);
      c.focus({ preventScroll: true });
    });
    this.scaleButton.addEventListener('click', () => {
      this.toggleScaleMode();
      c.focus({ preventScroll: true });
    });
    this.fullscreenButton.addEventListener('click', () => void this.toggleFullscreen());
    document.addEventListener('fullscreenchange', () => {
      /** @type {any} */
      const nav = navigator;
      if (!document.fullscreenElement && nav.keyboard && typeof nav.keyboard.unlock === 'function') {
        nav.keyboard.unlock();
      }
      this.updateFullscreenButton();
      this.layout();
    });
    this.updateFullscreenButton();

    this.reconnectButton.addEventListener('click', () => void this.launch());
    this.dismissButton.addEventListener('click', () => {
      this.hideOverlay();
      c.focus({ preventScroll: true });
    });

    new ResizeObserver(() => this.layout()).observe(this.screen);

    // Pointer
    c.addEventListener('pointerdown', (ev) => {
      c.focus({ preventScroll: true });
      ev.preventDefault();
      try {
        c.setPointerCapture(ev.pointerId);
      } catch {
        // not capturable (synthetic event): fine
      }
      this.onPointer(ev);
    });
    c.addEventListener('pointermove', (ev) => this.onPointer(ev));
    c.addEventListener('pointerup', (ev) => {
      ev.preventDefault();
      this.onPointer(ev);
    });
    c.addEventListener('pointercancel', (ev) => this.onPointer(ev, 0));
    c.addEventListener('wheel', (ev) => this.onWheel(ev), { passive: false });
    c.addEventListener('contextmenu', (ev) => ev.preventDefault());

    // Keyboard
    c.addEventListener('keydown', (ev) => {
      if (!this.connected) return;
      this.keyboard.keyDown(ev);
    });
    c.addEventListener('keyup', (ev) => {
      if (!this.connected) return;
      this.keyboard.keyUp(ev);
    });
    c.addEventListener('blur', () => this.releaseInput());
    window.addEventListener('blur', () => this.releaseInput());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'hidden') this.releaseInput();
    });

    // Clipboard: Ctrl+V in the viewer sends the text before the keys.
    document.addEventListener('paste', (ev) => {
      if (document.activeElement !== c && !this.keyboard.hasPendingPaste()) return;
      ev.preventDefault();
      const text = ev.clipboardData ? ev.clipboardData.getData('text/plain') : '';
      if (text && this.canSend()) this.send(encodeClipboard(text));
      this.keyboard.flushPending();
    });
  }

  releaseInput() {
    this.keyboard.releaseAll();
    if (this.sentMask !== 0 && this.canSend()) {
      this.sentMask = 0;
      this.send(encodePointer(this.pointerX, this.pointerY, 0));
    }
  }

  /**
   * Map a pointer event from CSS pixels to remote pixels.
   * @param {MouseEvent} ev
   * @returns {{x: number, y: number} | null}
   */
  toRemote(ev) {
    const w = this.display.width;
    const h = this.display.height;
    if (!w || !h) return null;
    const r = this.canvas.getBoundingClientRect();
    if (!r.width || !r.height) return null;
    const x = Math.floor(((ev.clientX - r.left) * w) / r.width);
    const y = Math.floor(((ev.clientY - r.top) * h) / r.height);
    return { x: Math.max(0, Math.min(w - 1, x)), y: Math.max(0, Math.min(h - 1, y)) };
  }

  /**
   * @param {PointerEvent} ev
   * @param {number} [forceButtons]
   */
  onPointer(ev, forceButtons) {
    if (!this.connected) return;
    const pos = this.toRemote(ev);
    if (!pos) return;
    this.pointerX = pos.x;
    this.pointerY = pos.y;
    const mask = forceButtons ?? domButtonsToMask(ev.buttons);
    if (mask !== this.sentMask) {
      // Button changes are never coalesced away: send now, with the position.
      this.pendingMove = null;
      this.sendPointer(pos.x, pos.y, mask);
      return;
    }
    this.pendingMove = pos;
    if (!this.moveFrame) {
      this.moveFrame = requestAnimationFrame(() => {
        this.moveFrame = 0;
        const p = this.pendingMove;
        this.pendingMove = null;
        if (p && (p.x !== this.sentX || p.y !== this.sentY)) this.sendPointer(p.x, p.y, this.sentMask);
      });
    }
  }

  /** @param {number} x @param {number} y @param {number} mask */
  sendPointer(x, y, mask) {
    if (!this.canSend()) return;
    this.sentX = x;
    this.sentY = y;
    this.sentMask = mask;
    this.send(encodePointer(clampU16(x), clampU16(y), mask));
  }

  /** @param {WheelEvent} ev */
  onWheel(ev) {
    ev.preventDefault();
    if (!this.connected) return;
    const pos = this.toRemote(ev);
    if (pos) {
      this.pointerX = pos.x;
      this.pointerY = pos.y;
    }
    // Normalise to pixels; one wheel "click" per 100 px (a mouse notch),
    // and the first event of a gesture always scrolls at least one click.
    const unit = ev.deltaMode === 1 ? 40 : ev.deltaMode === 2 ? 400 : 1;
    const now = performance.now();
    const fresh = now - this.lastWheel > 250;
    this.lastWheel = now;
    if (fresh) {
      this.wheelAccX = 0;
      this.wheelAccY = 0;
    }
    this.wheelAccX += ev.deltaX * unit;
    this.wheelAccY += ev.deltaY * unit;
    const STEP = 100;
    /** @param {number} acc @param {number} neg @param {number} posBit @returns {[number, number]} */
    const clicks = (acc, neg, posBit) => {
      let n = Math.trunc(acc / STEP);
      if (n === 0 && fresh && Math.abs(acc) >= 1) n = Math.sign(acc);
      return [n, n < 0 ? neg : posBit];
    };
    const [ny, bitY] = clicks(this.wheelAccY, Button.WheelUp, Button.WheelDown);
    const [nx, bitX] = clicks(this.wheelAccX, Button.WheelLeft, Button.WheelRight);
    this.wheelAccY -= ny * STEP;
    this.wheelAccX -= nx * STEP;
    if (fresh) {
      if (ny !== 0 && Math.abs(this.wheelAccY) < STEP) this.wheelAccY = 0;
      if (nx !== 0 && Math.abs(this.wheelAccX) < STEP) this.wheelAccX = 0;
    }
    const x = this.pointerX;
    const y = this.pointerY;
    const base = this.sentMask;
    for (let i = 0; i < Math.min(Math.abs(ny), 10); i++) {
      this.sendPointer(x, y, base | bitY);
      this.sendPointer(x, y, base);
    }
    for (let i = 0; i < Math.min(Math.abs(nx), 10); i++) {
      this.sendPointer(x, y, base | bitX);
      this.sendPointer(x, y, base);
    }
  }

  /** @param {boolean} down @param {number} keysym @param {number} scancode */
  sendKey(down, keysym, scancode) {
    if (!this.canSend()) return;
    this.send(encodeKey(down, keysym >>> 0, scancode & 0xffff));
  }

  // -------------------------------------------------------------------------
  // Connection

  canSend() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.helloSent;
  }

  /** @param {Uint8Array} bytes */
  send(bytes) {
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(bytes);
  }

  /** Ask for a ticket, then open the WebSocket. */
  async launch() {
    this.closeSocket();
    this.hideOverlay();
    this.setState(this.everConnected ? 'reconnecting' : 'connecting');
    if (!this.resource) {
      this.fail('error', this.t('title.launch'), this.t('error.noResource'), '', false);
      return;
    }
    if (typeof WebSocket === 'undefined') {
      this.fail('error', this.t('title.launch'), this.t('error.websocket'), '', false);
      return;
    }

    /** @type {Response} */
    let resp;
    try {
      resp = await fetch('/api/launch', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': this.csrf },
        body: JSON.stringify({ resource: this.resource }),
      });
    } catch (err) {
      this.fail('error', this.t('title.launch'), this.t('error.network'), String(err), true);
      return;
    }

    /** @type {any} */
    let body = null;
    try {
      body = await resp.json();
    } catch {
      body = null;
    }
    if (!resp.ok || !body || typeof body.ticket !== 'string' || typeof body.ws !== 'string') {
      const message =
        body && typeof body.message === 'string' && body.message
          ? body.message
          : resp.ok
            ? this.t('error.badResponse')
            : this.t('error.http', { status: resp.status });
      const code = body && typeof body.error === 'string' ? body.error : '';
      const detail = `POST /api/launch → HTTP ${resp.status}${code ? ` (${code})` : ''}`;
      this.fail('error', this.t('title.launch'), message, detail, true);
      return;
    }
    this.connect(body.ws);
  }

  /** @param {string} path the `ws` field of the launch answer */
  connect(path) {
    const url = /^wss?:\/\//i.test(path)
      ? path
      : (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
    this.display.reset();
    this.keyboard.reset();
    this.fatal = null;
    this.helloSent = false;
    this.connected = false;
    this.sentMask = 0;
    this.sentX = this.sentY = -1;

    /** @type {WebSocket} */
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      this.fail('error', this.t('title.lost'), this.t('error.network'), String(err), true);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;

    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      const w = clampU16(this.screen.clientWidth || window.innerWidth);
      const h = clampU16(this.screen.clientHeight || window.innerHeight);
      ws.send(encodeClientHello(w, h, CODECS_PNG));
      this.helloSent = true;
    });
    ws.addEventListener('message', (ev) => {
      if (this.ws !== ws) return;
      this.onMessage(ws, ev.data);
    });
    ws.addEventListener('close', (ev) => {
      if (this.ws !== ws) return;
      this.onClose(ev);
    });
  }

  closeSocket() {
    const ws = this.ws;
    this.ws = null;
    this.connected = false;
    this.helloSent = false;
    if (ws && ws.readyState <= WebSocket.OPEN) {
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
  }

  /**
   * @param {WebSocket} ws
   * @param {unknown} data
   */
  onMessage(ws, data) {
    if (!(data instanceof ArrayBuffer)) {
      this.protocolFailure('text WebSocket message');
      return;
    }
    this.hooks.bytesReceived += data.byteLength;
    this.hooks.messagesReceived++;

    let msg;
    try {
      msg = decodeServerMessage(data);
    } catch (err) {
      this.protocolFailure(err instanceof ProtocolError ? err.message : String(err));
      return;
    }

    switch (msg.type) {
      case 'ServerHello':
        if (msg.version !== PROTOCOL_VERSION) {
          this.fatal = { code: 'viewer.version', detail: `server protocol version ${msg.version}` };
          this.fail('error', this.t('title.error'), this.t('error.version'), this.fatal.detail, false);
          this.closeSocket();
          return;
        }
        this.display.resize(msg.width, msg.height);
        this.connected = true;
        this.everConnected = true;
        this.hideOverlay();
        this.setState('connected');
        this.canvas.focus({ preventScroll: true });
        return;
      case 'Tile':
        this.display.tile(msg.x, msg.y, msg.w, msg.h, msg.codec, msg.data);
        return;
      case 'Fill':
        this.display.fill(msg.x, msg.y, msg.w, msg.h, msg.r, msg.g, msg.b);
        return;
      case 'Copy':
        this.display.copy(msg.srcX, msg.srcY, msg.w, msg.h, msg.dstX, msg.dstY);
        return;
      case 'Cursor':
        this.canvas.style.cursor = cursorCss(msg.hotX, msg.hotY, msg.w, msg.h, msg.data);
        return;
      case 'Resize':
        this.display.resize(msg.width, msg.height);
        return;
      case 'EndFrame': {
        const seq = msg.seq;
        this.display.after(() => {
          if (this.ws !== ws || ws.readyState !== WebSocket.OPEN) return;
          ws.send(encodeFrameAck(seq));
          this.hooks.framesAcked++;
          this.hooks.lastAckedSeq = seq;
        });
        return;
      }
      case 'Notice':
        this.onNotice(msg.level, msg.code, msg.detail);
        return;
      case 'Clipboard':
        this.hooks.clipboard = msg.text;
        if (navigator.clipboard && typeof navigator.clipboard.writeText === 'function') {
          navigator.clipboard.writeText(msg.text).catch(() => {});
        }
        this.showToast(this.t('toast.clipboard'));
        return;
    }
  }

  /**
   * @param {number} level
   * @param {string} code
   * @param {string} detail
   */
  onNotice(level, code, detail) {
    this.hooks.notice = { level, code, detail };
    const text = noticeText(code, this.lang) ?? this.t('notice.unknown', { code });
    if (level >= NoticeLevel.Error) {
      this.fatal = { code, detail };
      const ended = ['session.ended', 'session.logged_off', 'session.ended_by_staff', 'session.disconnected_timeout', 'session.idle_timeout'].includes(code);
      this.connected = false;
      this.keyboard.reset();
      this.setState(ended ? 'ended' : 'error');
      this.showOverlay({
        title: this.t(ended ? 'title.ended' : 'title.error'),
        message: text,
        detail: `${code}${detail ? `\n${detail}` : ''}`,
        reconnect: true,
        tone: ended ? 'ended' : 'error',
      });
      return;
    }
    if (code === 'session.connecting') {
      if (!this.connected) this.statusText.textContent = this.t('status.hostConnecting');
      return;
    }
    this.showToast(text);
  }

  /** @param {string} detail */
  protocolFailure(detail) {
    this.fatal = { code: 'viewer.protocol', detail };
    this.fail('error', this.t('title.error'), this.t('error.protocol'), detail, true);
    this.closeSocket();
  }

  /** @param {CloseEvent} ev */
  onClose(ev) {
    this.ws = null;
    this.connected = false;
    this.helloSent = false;
    this.keyboard.reset();
    if (this.fatal) return; // the Notice stays displayed
    const detail = `WebSocket close ${ev.code}${ev.reason ? `: ${ev.reason}` : ''}`;
    const message = ev.code === 1002 && /version/i.test(ev.reason) ? this.t('error.version') : this.t('error.lost');
    this.fail('error', this.t('title.lost'), message, detail, true);
  }

  /**
   * @param {ViewerState} state
   * @param {string} title
   * @param {string} message
   * @param {string} detail
   * @param {boolean} reconnect
   */
  fail(state, title, message, detail, reconnect) {
    this.connected = false;
    this.setState(state);
    this.showOverlay({ title, message, detail, reconnect, tone: state === 'ended' ? 'ended' : 'error' });
  }
}

function start() {
  const root = document.getElementById('bascule-viewer');
  if (!root) return;
  ensureStylesheet();
  const viewer = new Viewer(root, document.body.dataset);
  void viewer.launch();
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', start, { once: true });
} else {
  start();
}
