// @ts-check
/**
 * Bascule browser viewer: entry point.
 *
 * The gateway renders:
 *   <body data-resource="…" data-resource-name="…" data-csrf="…" data-portal-url="/">
 *     <div id="bascule-viewer"></div>
 *     <script type="module" src="/static/viewer/main.js"></script>
 *
 * Flow: POST /api/launch → {ticket, ws} → WebSocket → ClientHello, CacheOffer → ServerHello,
 * CacheAgreed → frames (tiles, cached tiles, glyphs, video … EndFrame → FrameAck). See docs/protocol.md.
 * H.264 video is announced only when the browser's WebCodecs decodes it (checked before the hello).
 *
 * A helpdesk shadow page (`/console/shadow/{sessionId}`) has `data-shadow="{sessionId}"`
 * instead of `data-resource`: the viewer then asks `POST /api/shadow` `{"session": id}` for its
 * ticket, starts read-only, and gets `ViewMode` after `ServerHello` (see helpdesk.js).
 */

import {
  Button,
  CODECS_GLYPHS,
  CODECS_H264,
  CODECS_JPEG,
  CODECS_PNG,
  ControlState,
  NoticeLevel,
  PROTOCOL_VERSION,
  ProtocolError,
  decodeServerMessage,
  encodeCacheOffer,
  encodeClientHello,
  encodeClipboard,
  encodeFrameAck,
  encodeKey,
  encodePointer,
} from './protocol.js';
import { HelpdeskState } from './helpdesk.js';
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
 * @property {{from: string, text: string} | null} lastMessage last helpdesk Message received
 * @property {{id: number, from: string} | null} controlRequest control question on screen (owner side)
 * @property {import('./helpdesk.js').ControlStatus} control
 * @property {boolean} readOnly input is not sent (a shadow without control)
 * @property {import('./helpdesk.js').ViewMode | null} viewMode the ViewMode received, null for an owner's viewer
 * @property {number} inputDropped input messages not sent because the viewer is read-only
 * @property {number} cacheHits tiles drawn from the tile cache (CacheDraw) since the page loaded
 * @property {number} cacheStores tiles drawn and kept in the tile cache (CacheStore) since the page loaded
 * @property {number} cacheTiles slots of the tile cache agreed on this connection (0: none yet)
 * @property {number} glyphDraws glyphs drawn from the glyph cache (draw records) since the page loaded
 * @property {number} glyphStores glyphs drawn and kept in the glyph cache (store records) since the page loaded
 * @property {number} codecs the codecs announced in the last ClientHello (0 before the first one)
 * @property {number} videoFrames Video messages whose picture was drawn since the page loaded
 * @property {number} videoStreams Video KEY messages accepted (streams started) since the page loaded
 * @property {number} drawErrors updates the display refused or failed to draw since the page loaded
 * @property {string | null} lastDrawError the last of them, as text
 */

/**
 * The tile cache the viewer offers: 2048 tiles of at most 64×64 pixels, 32 MiB of RGBA at most.
 * The gateway agrees to the smaller of this and its own limit.
 */
const CACHE_OFFER_TILES = 2048;

/** What the viewer always decodes (ClientHello `codecs`): PNG and JPEG tiles, and the glyph cache. */
const VIEWER_CODECS = CODECS_PNG | CODECS_JPEG | CODECS_GLYPHS;

/** The H.264 configuration the viewer must be able to decode to announce `CODECS_H264` (Constrained Baseline, level 3.1). */
const H264_PROBE = { codec: 'avc1.42E01F', optimizeForLatency: true };

/** How long the H.264 check may take before the viewer goes on without video. */
const H264_PROBE_TIMEOUT_MS = 3000;

/**
 * The codecs to announce: `VIEWER_CODECS`, and H.264 when WebCodecs is there and decodes
 * `H264_PROBE`. Never rejects.
 * @returns {Promise<number>}
 */
async function viewerCodecs() {
  if (typeof VideoDecoder !== 'function' || typeof EncodedVideoChunk !== 'function') return VIEWER_CODECS;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  try {
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve({ supported: false }), H264_PROBE_TIMEOUT_MS);
    });
    const support = /** @type {VideoDecoderSupport} */ (await Promise.race([VideoDecoder.isConfigSupported(H264_PROBE), timeout]));
    return support.supported ? VIEWER_CODECS | CODECS_H264 : VIEWER_CODECS;
  } catch {
    return VIEWER_CODECS;
  } finally {
    clearTimeout(timer);
  }
}

/** The Notice codes after which the session is over (rather than broken). */
const ENDED_CODES = [
  'session.ended',
  'session.logged_off',
  'session.ended_by_staff',
  'session.disconnected_by_staff',
  'session.disconnected_timeout',
  'session.idle_timeout',
];

/** At most this many helpdesk messages stay on screen; older ones go first. */
const MAX_MESSAGES_SHOWN = 5;

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
    /** Session id of a helpdesk shadow page, '' for a user's viewer. */
    this.shadow = data.shadow ?? '';
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

    this.helpdesk = new HelpdeskState({ shadow: this.shadow !== '' });

    /** The codecs to announce, once the H.264 check is done (started now, awaited before the hello). */
    this.codecsReady = viewerCodecs();

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
    this.titleText = ui.titleText;
    this.shadowBar = ui.shadowBar;
    this.shadowText = ui.shadowText;
    this.shadowButton = ui.shadowButton;
    this.controlBar = ui.controlBar;
    this.controlText = ui.controlText;
    this.controlButton = ui.controlButton;
    this.messages = ui.messages;
    this.askOverlay = ui.askOverlay;
    this.askMessage = ui.askMessage;
    this.acceptButton = ui.acceptButton;
    this.refuseButton = ui.refuseButton;

    const display = new Display(this.canvas, {
      onResize: (w, h) => this.onDisplayResize(w, h),
      onError: (e) => {
        this.hooks.drawErrors++;
        this.hooks.lastDrawError = String(e);
        console.warn('bascule: draw error', e);
      },
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
      lastMessage: null,
      controlRequest: null,
      control: 'none',
      readOnly: this.helpdesk.readOnly,
      viewMode: null,
      inputDropped: 0,
      get cacheHits() {
        return display.cache.hits;
      },
      get cacheStores() {
        return display.cache.stores;
      },
      get cacheTiles() {
        return display.cache.capacity;
      },
      get glyphDraws() {
        return display.glyphCache.draws;
      },
      get glyphStores() {
        return display.glyphCache.stores;
      },
      codecs: 0,
      get videoFrames() {
        return display.videoFrames;
      },
      get videoStreams() {
        return display.videoStreams;
      },
      drawErrors: 0,
      lastDrawError: null,
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
    const titleText = document.createTextNode(this.resourceName || this.resource);
    title.appendChild(titleText);

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

    // Shadow side: what this viewer may do, and the button to ask for (or give back) control.
    const shadowBar = el('div', 'bv-bar bv-shadow-bar', { role: 'status', hidden: '' });
    const shadowText = el('span', 'bv-bar-text');
    const shadowButton = el('button', 'bv-action bv-bar-action', { type: 'button' });
    shadowBar.append(shadowText, shadowButton);

    // Owner side: who has control, and the button to take it back.
    const controlBar = el('div', 'bv-bar bv-control-bar', { role: 'status', hidden: '' });
    const controlText = el('span', 'bv-bar-text');
    const controlSep = el('span', 'bv-bar-sep', { 'aria-hidden': 'true' });
    controlSep.textContent = '—';
    const controlButton = el('button', 'bv-action bv-bar-action', { type: 'button' });
    controlButton.textContent = this.t('control.takeBack');
    controlBar.append(controlText, controlSep, controlButton);

    // Helpdesk messages, each kept until dismissed.
    const messages = el('div', 'bv-messages');

    // Owner side: the control question.
    const askOverlay = el('div', 'bv-overlay bv-ask-overlay', { hidden: '' });
    const ask = el('div', 'bv-dialog bv-ask', {
      role: 'alertdialog',
      'aria-modal': 'true',
      'aria-labelledby': 'bv-ask-title',
      'aria-describedby': 'bv-ask-message',
    });
    const askTitle = el('h2', 'bv-dialog-title', { id: 'bv-ask-title' });
    askTitle.textContent = this.t('control.askTitle');
    const askMessage = el('p', 'bv-dialog-message', { id: 'bv-ask-message' });
    const askActions = el('div', 'bv-actions');
    const accept = el('button', 'bv-action bv-action-primary', { type: 'button' });
    accept.textContent = this.t('control.accept');
    const refuse = el('button', 'bv-action', { type: 'button' });
    refuse.textContent = this.t('control.refuse');
    askActions.append(accept, refuse);
    ask.append(askTitle, askMessage, askActions);
    askOverlay.appendChild(ask);

    screen.appendChild(messages);
    root.append(toolbar, shadowBar, controlBar, screen, overlay, askOverlay, toast);

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
      titleText: titleText,
      shadowBar: shadowBar,
      shadowText: shadowText,
      shadowButton: shadowButton,
      controlBar: controlBar,
      controlText: controlText,
      controlButton: controlButton,
      messages: messages,
      askOverlay: askOverlay,
      askMessage: askMessage,
      acceptButton: accept,
      refuseButton: refuse,
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
    this.renderHelpdesk();
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
  // Helpdesk: messages, control requests, shadow mode

  /**
   * `name`, or "the helpdesk" / "the user" when it is empty.
   * @param {string} name
   * @param {'helpdesk.someone' | 'helpdesk.user'} fallback
   */
  nameOr(name, fallback) {
    return name || this.t(fallback);
  }

  /** Bring the DOM and the test hooks in line with the helpdesk state. */
  renderHelpdesk() {
    const h = this.helpdesk;
    this.hooks.control = h.control;
    this.hooks.readOnly = h.readOnly;
    this.hooks.viewMode = h.viewMode ? { ...h.viewMode } : null;
    this.hooks.controlRequest = h.controlRequest ? { ...h.controlRequest } : null;
    this.root.dataset.readOnly = String(h.readOnly);

    // Shadow bar.
    this.shadowBar.hidden = !h.isShadow;
    if (h.isShadow) {
      const name = this.nameOr(h.shadowOf, 'helpdesk.user');
      let text;
      let action = 'shadow.request';
      if (h.control === 'granted') {
        text = this.t('shadow.granted', { name });
        action = 'shadow.release';
      } else if (h.control === 'pending') {
        text = this.t('shadow.pending', { name });
        action = 'shadow.cancel';
      } else if (h.control === 'refused') {
        text = this.t('shadow.refused', { name });
      } else {
        text = this.t(h.readOnly ? 'shadow.readOnly' : 'shadow.watching', { name });
      }
      this.shadowText.textContent = text;
      this.shadowButton.textContent = this.t(action);
      this.shadowButton.dataset.action = action;
      // Cancelling needs the request's id, which the server's ControlState brings.
      this.shadowButton.disabled = !this.connected || (action === 'shadow.cancel' && h.controlId === null);
      this.shadowBar.dataset.control = h.control;
    }

    // Owner's control bar.
    const ownerGranted = !h.isShadow && h.control === 'granted' && this.connected;
    this.controlBar.hidden = !ownerGranted;
    if (ownerGranted) {
      this.controlText.textContent = this.t('control.granted', { name: this.nameOr(h.controller, 'helpdesk.someone') });
    }

    // Owner's question.
    // A question is moot once the connection is gone.
    const request = this.connected ? h.controlRequest : null;
    const wasHidden = this.askOverlay.hidden;
    this.askOverlay.hidden = !request;
    if (request) {
      this.askMessage.textContent = this.t('control.ask', { name: this.nameOr(request.from, 'helpdesk.someone') });
      // Focus the harmless answer first, as for any alert dialog.
      if (wasHidden) this.refuseButton.focus({ preventScroll: true });
    } else if (!wasHidden && this.askOverlay.contains(document.activeElement)) {
      this.canvas.focus({ preventScroll: true });
    }

    // No Ctrl+Alt+Del from a read-only viewer.
    this.cadButton.disabled = h.readOnly;
  }

  /** @param {string} from @param {string} text */
  showMessage(from, text) {
    this.helpdesk.onMessage(from, text);
    this.hooks.lastMessage = { from, text };
    const banner = el('div', 'bv-message', { role: 'alert' });
    const body = el('p', 'bv-message-body');
    const label = el('strong', 'bv-message-from');
    label.textContent = from ? this.t('message.from', { name: from }) : this.t('message.fromHelpdesk');
    const content = el('span', 'bv-message-text');
    content.textContent = text;
    body.append(label, document.createTextNode(' '), content);
    const close = el('button', 'bv-action bv-message-close', { type: 'button', 'aria-label': this.t('message.dismissLabel') });
    close.textContent = this.t('message.dismiss');
    close.addEventListener('click', () => {
      banner.remove();
      this.canvas.focus({ preventScroll: true });
    });
    banner.append(body, close);
    this.messages.appendChild(banner);
    while (this.messages.childElementCount > MAX_MESSAGES_SHOWN) this.messages.firstElementChild?.remove();
  }

  /** Owner side: answer the question on screen. @param {boolean} granted */
  answerControl(granted) {
    const bytes = this.helpdesk.reply(granted);
    if (bytes) this.send(bytes);
    this.renderHelpdesk();
    this.canvas.focus({ preventScroll: true });
  }

  /** Shadow side: the bar's button (ask, cancel, or give back). */
  onShadowAction() {
    const h = this.helpdesk;
    const bytes = h.control === 'granted' || h.control === 'pending' ? this.releaseControl() : h.request();
    if (bytes) this.send(bytes);
    this.renderHelpdesk();
  }

  /** Ending control: let go of held keys and buttons while they may still be sent. */
  releaseControl() {
    this.releaseInput();
    return this.helpdesk.release();
  }

  /**
   * Applies a ControlState; a viewer that becomes read-only first releases its keys and buttons.
   * @param {number} id @param {number} state
   */
  onControlState(id, state) {
    if (this.helpdesk.isShadow && state !== ControlState.Granted) this.releaseInput();
    const before = this.helpdesk.control;
    this.helpdesk.onControlState(id, state);
    const after = this.helpdesk.control;
    if (before === 'granted' && after === 'none') this.showToast(this.t('control.endedToast'));
    this.renderHelpdesk();
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

    this.acceptButton.addEventListener('click', () => this.answerControl(true));
    this.refuseButton.addEventListener('click', () => this.answerControl(false));
    this.askOverlay.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') {
        ev.preventDefault();
        this.answerControl(false);
      } else if (ev.key === 'Tab') {
        // Keep the focus in the dialog (two buttons).
        ev.preventDefault();
        const next = document.activeElement === this.acceptButton ? this.refuseButton : this.acceptButton;
        next.focus();
      }
    });
    this.shadowButton.addEventListener('click', () => this.onShadowAction());
    this.controlButton.addEventListener('click', () => {
      const bytes = this.helpdesk.release();
      if (bytes) this.send(bytes);
      this.renderHelpdesk();
      this.canvas.focus({ preventScroll: true });
    });
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
      // Read-only: the keys stay the browser's (Tab, shortcuts) and nothing is sent.
      if (!this.connected || this.helpdesk.readOnly) return;
      this.keyboard.keyDown(ev);
    });
    c.addEventListener('keyup', (ev) => {
      if (!this.connected || this.helpdesk.readOnly) return;
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
      if (this.helpdesk.readOnly) return;
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
    if (!this.connected || this.helpdesk.readOnly) return;
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
    // Read-only: the wheel scrolls the page (actual-size mode) and nothing is sent.
    if (this.helpdesk.readOnly) return;
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

  /**
   * Sends one client message. A read-only viewer never sends input (keys, pointer, clipboard,
   * resize): the message is dropped here, whichever path produced it.
   * @param {Uint8Array} bytes
   */
  send(bytes) {
    if (!this.helpdesk.maySend(bytes)) {
      this.hooks.inputDropped++;
      return;
    }
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(bytes);
  }

  /** Ask for a ticket, then open the WebSocket. */
  async launch() {
    this.closeSocket();
    this.hideOverlay();
    this.setState(this.everConnected ? 'reconnecting' : 'connecting');
    if (!this.resource && !this.shadow) {
      this.fail('error', this.t('title.launch'), this.t('error.noResource'), '', false);
      return;
    }
    if (typeof WebSocket === 'undefined') {
      this.fail('error', this.t('title.launch'), this.t('error.websocket'), '', false);
      return;
    }

    // A shadow page asks for a ticket to watch a session; a user's viewer launches its resource.
    const endpoint = this.shadow ? '/api/shadow' : '/api/launch';
    const request = this.shadow ? { session: this.shadow } : { resource: this.resource };
    /** @type {Response} */
    let resp;
    try {
      resp = await fetch(endpoint, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': this.csrf },
        body: JSON.stringify(request),
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
      const detail = `POST ${endpoint} → HTTP ${resp.status}${code ? ` (${code})` : ''}`;
      this.fail('error', this.t('title.launch'), message, detail, true);
      return;
    }
    // The H.264 check ran meanwhile; the hello must say what it found.
    const codecs = await this.codecsReady;
    this.connect(body.ws, codecs);
  }

  /**
   * @param {string} path the `ws` field of the launch answer
   * @param {number} codecs what to announce in the ClientHello
   */
  connect(path, codecs) {
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
    this.helpdesk.reset();
    this.renderHelpdesk();

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
      ws.send(encodeClientHello(w, h, codecs));
      this.display.announceCodecs(codecs);
      this.hooks.codecs = codecs;
      ws.send(encodeCacheOffer(CACHE_OFFER_TILES));
      this.display.offerCache(CACHE_OFFER_TILES);
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
      case 'CacheAgreed':
        this.display.cacheAgreed(msg.tiles);
        return;
      case 'CacheStore':
        this.display.cacheStore(msg.slot, msg.x, msg.y, msg.w, msg.h, msg.codec, msg.data);
        return;
      case 'CacheDraw':
        this.display.cacheDraw(msg.slot, msg.x, msg.y);
        return;
      case 'Glyphs':
        this.display.glyphs(msg.atlas, msg.ops);
        return;
      case 'Video':
        this.display.video(msg);
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
      case 'Message':
        this.showMessage(msg.from, msg.text);
        return;
      case 'ControlRequest':
        this.helpdesk.onControlRequest(msg.id, msg.from);
        this.renderHelpdesk();
        return;
      case 'ControlState':
        this.onControlState(msg.id, msg.state);
        return;
      case 'ViewMode':
        if (msg.readOnly) this.releaseInput();
        this.helpdesk.onViewMode(msg.readOnly, msg.shadowOf);
        if (!this.resourceName && msg.shadowOf) {
          this.titleText.textContent = this.t('shadow.title', { name: msg.shadowOf });
        }
        this.renderHelpdesk();
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
      const ended = ENDED_CODES.includes(code);
      this.connected = false;
      this.keyboard.reset();
      this.setState(ended ? 'ended' : 'error');
      const title = code === 'session.disconnected_by_staff' ? 'title.disconnected' : ended ? 'title.ended' : 'title.error';
      this.showOverlay({
        title: this.t(title),
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
