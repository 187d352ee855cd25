// Unit tests of the helpdesk state (shadow, control, messages) and of input gating: node --test web/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HelpdeskState, isInputMessage } from '../static/viewer/helpdesk.js';
import { KeyboardHandler } from '../static/viewer/keyboard.js';
import {
  ControlState,
  decodeClientMessage,
  encodeClientHello,
  encodeClipboard,
  encodeFrameAck,
  encodeKey,
  encodePointer,
  encodeResizeRequest,
} from '../static/viewer/protocol.js';

/** A fake socket behind the same gate as Viewer.send: what was sent, and how much was dropped. */
function gatedSocket(state) {
  const sent = [];
  let dropped = 0;
  return {
    send(bytes) {
      if (!state.maySend(bytes)) {
        dropped++;
        return;
      }
      sent.push(decodeClientMessage(bytes));
    },
    get sent() {
      return sent;
    },
    get dropped() {
      return dropped;
    },
  };
}

const inputs = () => [encodeKey(true, 0x61, 0x1e), encodePointer(10, 20, 1), encodeClipboard('secret'), encodeResizeRequest(800, 600)];

test('input messages are keys, pointer, clipboard and resize', () => {
  for (const bytes of inputs()) assert.equal(isInputMessage(bytes), true);
  assert.equal(isInputMessage(encodeFrameAck(1)), false);
  assert.equal(isInputMessage(encodeClientHello(800, 600)), false);
  assert.equal(isInputMessage(new Uint8Array(0)), false);
});

test('an owner viewer sends input; nothing is read-only without a ViewMode', () => {
  const state = new HelpdeskState();
  assert.equal(state.isShadow, false);
  assert.equal(state.readOnly, false);
  assert.equal(state.viewMode, null);
  const socket = gatedSocket(state);
  for (const bytes of inputs()) socket.send(bytes);
  assert.equal(socket.sent.length, 4);
  assert.equal(socket.dropped, 0);
});

test('a shadow page is read-only from the start and drops every input, but not acks', () => {
  const state = new HelpdeskState({ shadow: true });
  assert.equal(state.isShadow, true);
  assert.equal(state.readOnly, true, 'read-only before ViewMode arrives');
  const socket = gatedSocket(state);
  socket.send(encodeClientHello(800, 600));
  for (const bytes of inputs()) socket.send(bytes);
  socket.send(encodeFrameAck(3));
  assert.deepEqual(socket.sent.map((m) => m.type), ['ClientHello', 'FrameAck']);
  assert.equal(socket.dropped, 4);
});

test('the keyboard of a read-only viewer sends nothing, even Ctrl+Alt+Del', () => {
  const state = new HelpdeskState();
  state.onViewMode(true, 'Jérôme');
  const socket = gatedSocket(state);
  const keyboard = new KeyboardHandler((down, keysym, scancode) => socket.send(encodeKey(down, keysym, scancode)));
  const ev = (type, key, code) => ({ type, key, code, location: 0, repeat: false, ctrlKey: false, altKey: false, shiftKey: false, metaKey: false, getModifierState: () => false, preventDefault() {}, stopPropagation() {} });
  keyboard.keyDown(ev('keydown', 'a', 'KeyQ'));
  keyboard.keyUp(ev('keyup', 'a', 'KeyQ'));
  keyboard.releaseAll();
  assert.equal(socket.sent.length, 0);
  assert.ok(socket.dropped >= 1, `dropped ${socket.dropped}`);
});

test('shadow: request, pending, granted enables input, ended goes back to read-only', () => {
  const state = new HelpdeskState({ shadow: true });
  state.onViewMode(true, 'Jérôme');
  assert.deepEqual(state.viewMode, { readOnly: true, shadowOf: 'Jérôme' });
  assert.equal(state.shadowOf, 'Jérôme');
  const socket = gatedSocket(state);

  const request = state.request();
  assert.deepEqual([...request], [0x88]);
  socket.send(request);
  assert.equal(state.control, 'pending');
  assert.equal(state.request(), null, 'one request at a time');
  assert.equal(state.release(), null, 'no id to cancel yet');

  state.onControlState(4, ControlState.Pending);
  assert.equal(state.controlId, 4);
  assert.equal(state.readOnly, true);
  socket.send(encodeKey(true, 0x61, 0x1e));
  assert.equal(socket.dropped, 1);

  state.onControlState(4, ControlState.Granted);
  assert.equal(state.control, 'granted');
  assert.equal(state.readOnly, false);
  for (const bytes of inputs()) socket.send(bytes);
  assert.deepEqual(socket.sent.map((m) => m.type), ['ControlRequest', 'Key', 'Pointer', 'Clipboard', 'ResizeRequest']);

  state.onControlState(4, ControlState.Ended);
  assert.equal(state.control, 'none');
  assert.equal(state.readOnly, true);
  socket.send(encodePointer(1, 1, 0));
  assert.equal(socket.dropped, 2);
  assert.equal(state.canRequest, true);
});

test('shadow: refused stays read-only and may ask again; giving control back sends ControlRelease', () => {
  const state = new HelpdeskState({ shadow: true });
  state.onViewMode(true, 'Zoé');
  state.request();
  state.onControlState(8, ControlState.Refused);
  assert.equal(state.control, 'refused');
  assert.equal(state.readOnly, true);
  assert.ok(state.request(), 'may ask again after a refusal');
  state.onControlState(9, ControlState.Pending);
  state.onControlState(9, ControlState.Granted);
  const release = state.release();
  assert.deepEqual(decodeClientMessage(release), { type: 'ControlRelease', id: 9 });
  assert.equal(state.control, 'none');
  assert.equal(state.readOnly, true);
});

test('a ViewMode that is not read-only lets input through', () => {
  const state = new HelpdeskState({ shadow: true });
  state.onViewMode(false, 'Zoé');
  assert.equal(state.readOnly, false);
  assert.equal(state.maySend(encodeKey(true, 0x61, 0x1e)), true);
});

test('owner: a request shows a question; accepting sends ControlReply and grants', () => {
  const state = new HelpdeskState();
  state.onControlRequest(3, 'Aïcha');
  assert.deepEqual(state.controlRequest, { id: 3, from: 'Aïcha' });
  assert.equal(state.control, 'pending');
  assert.equal(state.controller, 'Aïcha');

  const reply = state.reply(true);
  assert.deepEqual(decodeClientMessage(reply), { type: 'ControlReply', id: 3, granted: true });
  assert.equal(state.controlRequest, null);
  assert.equal(state.control, 'granted');
  assert.equal(state.reply(true), null, 'nothing left to answer');
  state.onControlState(3, ControlState.Granted);
  assert.equal(state.control, 'granted');
  assert.equal(state.readOnly, false, 'the owner keeps its input');

  // "Reprendre la main".
  const release = state.release();
  assert.deepEqual(decodeClientMessage(release), { type: 'ControlRelease', id: 3 });
  assert.equal(state.control, 'none');
  state.onControlState(3, ControlState.Ended);
  assert.equal(state.control, 'none');
});

test('owner: refusing, and a question answered elsewhere or withdrawn closes', () => {
  const state = new HelpdeskState();
  state.onControlRequest(1, 'Aïcha');
  assert.deepEqual(decodeClientMessage(state.reply(false)), { type: 'ControlReply', id: 1, granted: false });
  assert.equal(state.control, 'refused');

  // Another viewer of the owner answered: the ControlState closes this one's question.
  state.onControlRequest(2, 'Aïcha');
  state.onControlState(2, ControlState.Granted);
  assert.equal(state.controlRequest, null);
  assert.equal(state.control, 'granted');
  assert.equal(state.controller, 'Aïcha');

  // The shadow left.
  state.onControlState(2, ControlState.Ended);
  assert.equal(state.control, 'none');

  // A request withdrawn before the answer.
  state.onControlRequest(5, 'Bob');
  state.onControlState(5, ControlState.Ended);
  assert.equal(state.controlRequest, null);
  assert.equal(state.control, 'none');
});

test('stale refusals and ends about another request are ignored', () => {
  const state = new HelpdeskState();
  state.onControlRequest(1, 'A');
  state.reply(true);
  state.onControlState(1, ControlState.Granted);
  state.onControlState(7, ControlState.Ended);
  state.onControlState(7, ControlState.Refused);
  assert.equal(state.control, 'granted');
  assert.equal(state.controlId, 1);
});

test('a new connection forgets control but keeps the page kind and the last message', () => {
  const state = new HelpdeskState({ shadow: true });
  state.onViewMode(true, 'Zoé');
  state.onMessage('Aïcha', 'Bonjour');
  state.request();
  state.onControlState(2, ControlState.Granted);
  assert.equal(state.readOnly, false);
  state.reset();
  assert.equal(state.viewMode, null);
  assert.equal(state.control, 'none');
  assert.equal(state.readOnly, true);
  assert.deepEqual(state.lastMessage, { from: 'Aïcha', text: 'Bonjour' });
});
