// Unit tests of the viewer keyboard mapping: node --test web/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  KeyboardHandler,
  charToKeysym,
  codeToScancode,
  ctrlAltDelSequence,
  keyEventToKeysym,
} from '../static/viewer/keyboard.js';

test('French AZERTY characters map to their Latin-1 keysyms', () => {
  assert.equal(keyEventToKeysym({ key: 'é', code: 'Digit2' }), 0xe9);
  assert.equal(keyEventToKeysym({ key: 'ç', code: 'Digit9' }), 0xe7);
  assert.equal(keyEventToKeysym({ key: 'è', code: 'Digit7' }), 0xe8);
  assert.equal(keyEventToKeysym({ key: 'à', code: 'Digit0' }), 0xe0);
  assert.equal(keyEventToKeysym({ key: 'ù', code: 'Quote' }), 0xf9);
  assert.equal(keyEventToKeysym({ key: '²', code: 'Backquote' }), 0xb2);
  assert.equal(keyEventToKeysym({ key: 'µ', code: 'Backslash' }), 0xb5);
  assert.equal(keyEventToKeysym({ key: '§', code: 'Slash' }), 0xa7);
  assert.equal(keyEventToKeysym({ key: '<', code: 'IntlBackslash' }), 0x3c);
});

test('euro sign uses the EuroSign keysym', () => {
  assert.equal(keyEventToKeysym({ key: '€', code: 'KeyE' }), 0x20ac);
  assert.equal(charToKeysym('€'), 0x20ac);
});

test('ASCII and non-Latin-1 characters', () => {
  assert.equal(keyEventToKeysym({ key: 'a', code: 'KeyQ' }), 0x61);
  assert.equal(keyEventToKeysym({ key: 'A', code: 'KeyQ' }), 0x41);
  assert.equal(keyEventToKeysym({ key: ' ', code: 'Space' }), 0x20);
  assert.equal(keyEventToKeysym({ key: '~', code: 'Digit2' }), 0x7e);
  assert.equal(keyEventToKeysym({ key: 'œ', code: 'KeyO' }), 0x01000153);
  assert.equal(keyEventToKeysym({ key: 'ж', code: 'Semicolon' }), 0x01000436);
  assert.equal(keyEventToKeysym({ key: '😀', code: '' }), 0x0101f600);
  assert.equal(charToKeysym('\u0007'), null);
  assert.equal(charToKeysym('\u0085'), null);
});

test('named keys', () => {
  assert.equal(keyEventToKeysym({ key: 'Enter', code: 'Enter' }), 0xff0d);
  assert.equal(keyEventToKeysym({ key: 'Backspace', code: 'Backspace' }), 0xff08);
  assert.equal(keyEventToKeysym({ key: 'Tab', code: 'Tab' }), 0xff09);
  assert.equal(keyEventToKeysym({ key: 'Escape', code: 'Escape' }), 0xff1b);
  assert.equal(keyEventToKeysym({ key: 'Delete', code: 'Delete' }), 0xffff);
  assert.equal(keyEventToKeysym({ key: 'ArrowLeft', code: 'ArrowLeft' }), 0xff51);
  assert.equal(keyEventToKeysym({ key: 'Home', code: 'Home' }), 0xff50);
  assert.equal(keyEventToKeysym({ key: 'PageDown', code: 'PageDown' }), 0xff56);
  assert.equal(keyEventToKeysym({ key: 'Insert', code: 'Insert' }), 0xff63);
  assert.equal(keyEventToKeysym({ key: 'F1', code: 'F1' }), 0xffbe);
  assert.equal(keyEventToKeysym({ key: 'F12', code: 'F12' }), 0xffc9);
  assert.equal(keyEventToKeysym({ key: 'Shift', code: 'ShiftLeft', location: 1 }), 0xffe1);
  assert.equal(keyEventToKeysym({ key: 'Shift', code: 'ShiftRight', location: 2 }), 0xffe2);
  assert.equal(keyEventToKeysym({ key: 'Control', code: 'ControlLeft' }), 0xffe3);
  assert.equal(keyEventToKeysym({ key: 'Control', code: 'ControlRight' }), 0xffe4);
  assert.equal(keyEventToKeysym({ key: 'Alt', code: 'AltLeft' }), 0xffe9);
  assert.equal(keyEventToKeysym({ key: 'Meta', code: 'MetaLeft' }), 0xffeb);
  assert.equal(keyEventToKeysym({ key: 'CapsLock', code: 'CapsLock' }), 0xffe5);
  assert.equal(keyEventToKeysym({ key: 'NumLock', code: 'NumLock' }), 0xff7f);
  assert.equal(keyEventToKeysym({ key: 'ContextMenu', code: 'ContextMenu' }), 0xff67);
  assert.equal(keyEventToKeysym({ key: 'Dead', code: 'BracketLeft' }), null);
});

test('numpad keys use KP_ keysyms', () => {
  assert.equal(keyEventToKeysym({ key: '1', code: 'Numpad1', location: 3 }), 0xffb1);
  assert.equal(keyEventToKeysym({ key: 'End', code: 'Numpad1', location: 3 }), 0xff9c);
  assert.equal(keyEventToKeysym({ key: 'Enter', code: 'NumpadEnter', location: 3 }), 0xff8d);
  assert.equal(keyEventToKeysym({ key: '+', code: 'NumpadAdd', location: 3 }), 0xffab);
  assert.equal(keyEventToKeysym({ key: '.', code: 'NumpadDecimal', location: 3 }), 0xffae);
});

test('unidentified keys fall back on the physical key', () => {
  assert.equal(keyEventToKeysym({ key: 'Unidentified', code: 'KeyA' }), 0x61);
  assert.equal(keyEventToKeysym({ key: 'Unidentified', code: 'F5' }), 0xffc2);
  assert.equal(keyEventToKeysym({ key: 'Unidentified', code: '' }), null);
});

test('scancodes (PC/XT set 1)', () => {
  assert.equal(codeToScancode('KeyQ'), 0x10);
  assert.equal(codeToScancode('KeyA'), 0x1e);
  assert.equal(codeToScancode('Digit1'), 0x02);
  assert.equal(codeToScancode('Enter'), 0x1c);
  assert.equal(codeToScancode('ControlRight'), 0xe01d);
  assert.equal(codeToScancode('ArrowUp'), 0xe048);
  assert.equal(codeToScancode('ArrowLeft'), 0xe04b);
  assert.equal(codeToScancode('IntlBackslash'), 0x56);
  assert.equal(codeToScancode('NumpadEnter'), 0xe01c);
  assert.equal(codeToScancode('NumpadDivide'), 0xe035);
  assert.equal(codeToScancode('Numpad0'), 0x52);
  assert.equal(codeToScancode('F1'), 0x3b);
  assert.equal(codeToScancode('F10'), 0x44);
  assert.equal(codeToScancode('F11'), 0x57);
  assert.equal(codeToScancode('F12'), 0x58);
  assert.equal(codeToScancode('MetaLeft'), 0xe05b);
  assert.equal(codeToScancode('AltRight'), 0xe038);
  assert.equal(codeToScancode('Delete'), 0xe053);
  assert.equal(codeToScancode('NoSuchKey'), 0);
  assert.equal(codeToScancode('toString'), 0);
});

// ---------------------------------------------------------------------------
// KeyboardHandler: event sequences

/** Fake timers so the tests are synchronous. */
function harness(options = {}) {
  /** @type {Array<[boolean, number, number]>} */
  const sent = [];
  const timers = new Map();
  let next = 1;
  const kb = new KeyboardHandler((down, keysym, scancode) => sent.push([down, keysym, scancode]), {
    setTimeout: (fn) => {
      const id = next++;
      timers.set(id, fn);
      return id;
    },
    clearTimeout: (id) => timers.delete(id),
    ...options,
  });
  const runTimers = () => {
    const fns = [...timers.values()];
    timers.clear();
    for (const fn of fns) fn();
  };
  return { kb, sent, runTimers };
}

function ev(key, code, extra = {}) {
  let prevented = false;
  return {
    key,
    code,
    timeStamp: 0,
    repeat: false,
    getModifierState: () => false,
    preventDefault() {
      prevented = true;
    },
    get prevented() {
      return prevented;
    },
    ...extra,
  };
}

test('dead key: physical key only (keysym 0), then e sends ê, and the key-up releases ê', () => {
  const { kb, sent } = harness();
  kb.keyDown(ev('Dead', 'BracketLeft'));
  kb.keyUp(ev('Dead', 'BracketLeft'));
  assert.deepEqual(sent, [
    [true, 0, 0x1a],
    [false, 0, 0x1a],
  ]);
  sent.length = 0;
  kb.keyDown(ev('ê', 'KeyE'));
  kb.keyUp(ev('e', 'KeyE'));
  assert.deepEqual(sent, [
    [true, 0xea, 0x12],
    [false, 0xea, 0x12],
  ]);
});

test('Linux AltGr: AltGraph is a physical key only (keysym 0), € carries its keysym', () => {
  const { kb, sent } = harness({ windowsAltGr: false });
  kb.keyDown(ev('AltGraph', 'AltRight', { getModifierState: (m) => m === 'AltGraph' }));
  kb.keyDown(ev('€', 'KeyE', { getModifierState: (m) => m === 'AltGraph' }));
  kb.keyUp(ev('€', 'KeyE'));
  kb.keyUp(ev('AltGraph', 'AltRight'));
  assert.deepEqual(sent, [
    [true, 0, 0xe038],
    [true, 0x20ac, 0x12],
    [false, 0x20ac, 0x12],
    [false, 0, 0xe038],
  ]);
});

test('Windows AltGr: the fake ControlLeft is swallowed with its key-up', () => {
  const { kb, sent, runTimers } = harness({ windowsAltGr: true });
  const mods = { ctrlKey: true, altKey: true, timeStamp: 1000 };
  kb.keyDown(ev('Control', 'ControlLeft', { ctrlKey: true, timeStamp: 1000 }));
  kb.keyDown(ev('AltGraph', 'AltRight', mods));
  kb.keyDown(ev('@', 'Digit0', mods));
  kb.keyUp(ev('@', 'Digit0', mods));
  kb.keyUp(ev('Control', 'ControlLeft', mods));
  kb.keyUp(ev('AltGraph', 'AltRight'));
  runTimers();
  assert.deepEqual(sent, [
    [true, 0, 0xe038],
    [true, 0x40, 0x0b],
    [false, 0x40, 0x0b],
    [false, 0, 0xe038],
  ]);
});

test('a real Ctrl+C is forwarded (after the AltGr detection delay)', () => {
  const { kb, sent, runTimers } = harness({ windowsAltGr: true });
  const down = ev('Control', 'ControlLeft', { ctrlKey: true, timeStamp: 10 });
  kb.keyDown(down);
  assert.equal(down.prevented, true);
  assert.deepEqual(sent, []);
  runTimers();
  assert.deepEqual(sent, [[true, 0xffe3, 0x1d]]);
  kb.keyDown(ev('c', 'KeyC', { ctrlKey: true, timeStamp: 200 }));
  kb.keyUp(ev('c', 'KeyC', { ctrlKey: true }));
  kb.keyUp(ev('Control', 'ControlLeft'));
  assert.deepEqual(sent, [
    [true, 0xffe3, 0x1d],
    [true, 0x63, 0x2e],
    [false, 0x63, 0x2e],
    [false, 0xffe3, 0x1d],
  ]);
});

test('Ctrl held then another key flushes the pending Ctrl first', () => {
  const { kb, sent } = harness({ windowsAltGr: true });
  kb.keyDown(ev('Control', 'ControlLeft', { timeStamp: 10 }));
  kb.keyDown(ev('l', 'KeyL', { ctrlKey: true, timeStamp: 12 }));
  assert.deepEqual(sent, [
    [true, 0xffe3, 0x1d],
    [true, 0x6c, 0x26],
  ]);
});

test('key-up sends the keysym of the key-down even if the key value changed', () => {
  const { kb, sent } = harness();
  kb.keyDown(ev('Shift', 'ShiftLeft'));
  kb.keyDown(ev('A', 'KeyQ', { shiftKey: true }));
  kb.keyUp(ev('Shift', 'ShiftLeft'));
  kb.keyUp(ev('a', 'KeyQ'));
  assert.deepEqual(sent, [
    [true, 0xffe1, 0x2a],
    [true, 0x41, 0x10],
    [false, 0xffe1, 0x2a],
    [false, 0x41, 0x10],
  ]);
});

test('auto-repeat re-sends the key-down; handled keys are prevented', () => {
  const { kb, sent } = harness();
  const d = ev('ArrowLeft', 'ArrowLeft');
  kb.keyDown(d);
  kb.keyDown(ev('ArrowLeft', 'ArrowLeft', { repeat: true }));
  kb.keyUp(ev('ArrowLeft', 'ArrowLeft'));
  assert.equal(d.prevented, true);
  assert.deepEqual(sent, [
    [true, 0xff51, 0xe04b],
    [true, 0xff51, 0xe04b],
    [false, 0xff51, 0xe04b],
  ]);
});

test('releaseAll sends key-up for every key still down', () => {
  const { kb, sent } = harness({ windowsAltGr: false });
  kb.keyDown(ev('Control', 'ControlLeft'));
  kb.keyDown(ev('Alt', 'AltLeft'));
  sent.length = 0;
  kb.releaseAll();
  assert.deepEqual(sent, [
    [false, 0xffe9, 0x38],
    [false, 0xffe3, 0x1d],
  ]);
  kb.releaseAll();
  assert.equal(sent.length, 2);
});

test('Ctrl+V is held back (not prevented) until the paste event', () => {
  const { kb, sent, runTimers } = harness({ windowsAltGr: false });
  kb.keyDown(ev('Control', 'ControlLeft', { ctrlKey: true }));
  const v = ev('v', 'KeyV', { ctrlKey: true });
  kb.keyDown(v);
  assert.equal(v.prevented, false);
  assert.equal(kb.hasPendingPaste(), true);
  assert.deepEqual(sent, [[true, 0xffe3, 0x1d]]);
  sent.push(['clipboard']); // what main.js does on the paste event
  kb.flushPending();
  kb.keyUp(ev('v', 'KeyV', { ctrlKey: true }));
  runTimers();
  assert.deepEqual(sent, [
    [true, 0xffe3, 0x1d],
    ['clipboard'],
    [true, 0x76, 0x2f],
    [false, 0x76, 0x2f],
  ]);
});

test('Ctrl+Alt+Del sequence', () => {
  assert.deepEqual(ctrlAltDelSequence(), [
    [true, 0xffe3, 0x1d],
    [true, 0xffe9, 0x38],
    [true, 0xffff, 0xe053],
    [false, 0xffff, 0xe053],
    [false, 0xffe9, 0x38],
    [false, 0xffe3, 0x1d],
  ]);
});
