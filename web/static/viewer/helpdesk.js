// @ts-check
/**
 * Helpdesk side of the viewer (docs/protocol.md, "Helpdesk: shadow, control and messages"):
 * read-only shadow viewers, control requests and their answers, and which client messages
 * a viewer may send.
 *
 * Pure state, no DOM: `main.js` renders it, `web/test/helpdesk.test.mjs` tests it.
 * This module must not touch `window` or `document`.
 */

import {
  ClientType,
  ControlState,
  encodeControlRelease,
  encodeControlReply,
  encodeControlRequest,
} from './protocol.js';

/** @typedef {'none' | 'pending' | 'granted' | 'refused'} ControlStatus */
/** @typedef {{readOnly: boolean, shadowOf: string}} ViewMode */
/** @typedef {{id: number, from: string}} ControlRequestInfo */

/**
 * Client message types that act on the remote session (keyboard, pointer, clipboard, desktop
 * size): a read-only viewer never sends them.
 */
export const INPUT_TYPES = /** @type {readonly number[]} */ (Object.freeze([ClientType.Key, ClientType.Pointer, ClientType.Clipboard, ClientType.ResizeRequest]));

/**
 * Whether an encoded client message is input for the remote session.
 * @param {Uint8Array} bytes
 */
export function isInputMessage(bytes) {
  return bytes.length > 0 && INPUT_TYPES.includes(bytes[0]);
}

/**
 * The helpdesk state of one viewer, for one connection at a time.
 *
 * A viewer is either the session **owner**'s (it may receive control requests and answer them)
 * or a **shadow** (the page is a shadow page, or the server sent `ViewMode`): a shadow is
 * read-only unless control is granted to it.
 */
export class HelpdeskState {
  /**
   * @param {{shadow?: boolean}} [options] `shadow`: the page is a shadow page, so the viewer is
   *   read-only from the start, before the server's `ViewMode` arrives.
   */
  constructor(options = {}) {
    this.shadowPage = Boolean(options.shadow);
    /** @type {{from: string, text: string} | null} the last helpdesk message (kept across reconnections) */
    this.lastMessage = null;
    /** @type {ViewMode | null} */
    this.viewMode = null;
    /** Read-only as the server (or the page) says, before any control is granted. */
    this.baseReadOnly = this.shadowPage;
    /** @type {ControlStatus} */
    this.control = 'none';
    /** @type {number | null} the control request the state is about */
    this.controlId = null;
    /** @type {ControlRequestInfo | null} owner side: the question on screen */
    this.controlRequest = null;
    /** @type {Map<number, string>} owner side: who asked, by request id */
    this.requesters = new Map();
    this.reset();
  }

  /** A new connection starts: nothing is known yet but what the page says. */
  reset() {
    this.viewMode = null;
    this.baseReadOnly = this.shadowPage;
    this.control = 'none';
    this.controlId = null;
    this.controlRequest = null;
    this.requesters.clear();
  }

  /** This viewer watches another user's session. */
  get isShadow() {
    return this.shadowPage || this.viewMode !== null;
  }

  /** Input is not sent: a read-only shadow without control. */
  get readOnly() {
    return this.baseReadOnly && this.control !== 'granted';
  }

  /** Name of the watched user (shadow side), '' when unknown. */
  get shadowOf() {
    return this.viewMode ? this.viewMode.shadowOf : '';
  }

  /** Owner side: who has, or asked for, control ('' when unknown). */
  get controller() {
    return this.controlId === null ? '' : (this.requesters.get(this.controlId) ?? '');
  }

  /**
   * Whether the encoded client message may be sent now.
   * @param {Uint8Array} bytes
   */
  maySend(bytes) {
    return !(this.readOnly && isInputMessage(bytes));
  }

  /** @param {string} from @param {string} text */
  onMessage(from, text) {
    this.lastMessage = { from, text };
  }

  /** @param {boolean} readOnly @param {string} shadowOf */
  onViewMode(readOnly, shadowOf) {
    this.viewMode = { readOnly, shadowOf };
    this.baseReadOnly = readOnly;
  }

  /**
   * Owner side: someone asks for control. The latest question replaces an earlier one.
   * @param {number} id @param {string} from
   */
  onControlRequest(id, from) {
    this.requesters.set(id, from);
    this.controlRequest = { id, from };
    this.controlId = id;
    this.control = 'pending';
  }

  /**
   * Both sides: where request `id` stands. A refusal or an end about another request than the
   * current one is stale and ignored (except that it closes its question, if on screen).
   * @param {number} id @param {number} state a {@link ControlState} value
   */
  onControlState(id, state) {
    const current = this.controlId === null || this.controlId === id;
    if (this.controlRequest && this.controlRequest.id === id && state !== ControlState.Pending) {
      this.controlRequest = null;
    }
    switch (state) {
      case ControlState.Pending:
        this.controlId = id;
        this.control = 'pending';
        return;
      case ControlState.Granted:
        this.controlId = id;
        this.control = 'granted';
        return;
      case ControlState.Refused:
        if (!current) return;
        this.controlId = id;
        this.control = 'refused';
        return;
      case ControlState.Ended:
        if (!current) return;
        this.controlId = null;
        this.control = 'none';
        return;
      default:
        // The decoder refuses other values.
        return;
    }
  }

  /**
   * Owner side: answer the question on screen. Returns the message to send, or null when there
   * is no question. The server confirms with a ControlState.
   * @param {boolean} granted
   * @returns {Uint8Array | null}
   */
  reply(granted) {
    const request = this.controlRequest;
    if (!request) return null;
    this.controlRequest = null;
    this.controlId = request.id;
    this.control = granted ? 'granted' : 'refused';
    return encodeControlReply(request.id, granted);
  }

  /** Shadow side: a request may be sent now. */
  get canRequest() {
    return this.isShadow && this.control !== 'pending' && this.control !== 'granted';
  }

  /**
   * Shadow side: ask for control. Returns the message to send, or null when a request is
   * already pending or control is already granted.
   * @returns {Uint8Array | null}
   */
  request() {
    if (!this.canRequest) return null;
    this.control = 'pending';
    this.controlId = null;
    return encodeControlRequest();
  }

  /**
   * Either side: end control (the owner takes it back; the shadow gives it back or cancels its
   * request). Returns the message to send, or null when there is nothing to end.
   * @returns {Uint8Array | null}
   */
  release() {
    const id = this.controlId;
    if (id === null || (this.control !== 'granted' && this.control !== 'pending')) return null;
    if (this.controlRequest && this.controlRequest.id === id) this.controlRequest = null;
    this.controlId = null;
    this.control = 'none';
    return encodeControlRelease(id);
  }
}
