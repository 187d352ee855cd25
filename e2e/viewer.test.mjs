// End to end: `bascule demo` + headless Chromium. Log in, open the demo desktop, check that the
// canvas shows exactly what the X server shows, type (AZERTY included) and click.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireTools, startDemo, browser, openDesktop, settle, canvasDiff, waitForFile } from './harness.mjs';

/** @type {Awaited<ReturnType<typeof startDemo>>} */ let demo;
/** @type {import('playwright-core').BrowserContext} */ let context;
/** @type {import('playwright-core').Page} */ let page;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bascule-e2e-files-'));

before(async () => {
  requireTools();
  demo = await startDemo();
  context = await browser();
  page = await context.newPage();
});

after(async () => {
  if (page) {
    const bytes = await page.evaluate(() => window.bascule?.bytesReceived).catch(() => undefined);
    if (bytes !== undefined) console.log(`# figure: the browser received ${bytes} bytes over the scripted session`);
  }
  await context?.close();
  await demo?.stop();
});

/** Types ASCII text through the browser (US events, as Playwright makes them). */
async function typeAscii(text) {
  await page.keyboard.type(text, { delay: 5 });
}

/** Sends one key as a French AZERTY keyboard does: the physical code, and the character it gives. */
async function azerty(cdp, { code, key, keyCode, modifiers = 0 }) {
  const text = key.length === 1 ? key : undefined;
  await cdp.send('Input.dispatchKeyEvent', { type: text ? 'keyDown' : 'rawKeyDown', key, code, text, unmodifiedText: text, windowsVirtualKeyCode: keyCode, modifiers });
  await cdp.send('Input.dispatchKeyEvent', { type: 'keyUp', key, code, windowsVirtualKeyCode: keyCode, modifiers });
}

test('login, open the demo desktop, and the canvas equals the X screen exactly', async () => {
  await openDesktop(page, demo);
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'fr');
  await settle(page);
  const diff = await canvasDiff(page, demo.display);
  assert.equal(diff.differing, 0, `canvas differs from the X screen: ${diff.differing} pixels, ${diff.detail}`);
  // The tile cache was agreed at the handshake, and the text came through the glyph cache
  // (letters sent in an atlas and kept by slot): the exact canvas above proves the glyph path.
  const caches = await page.evaluate(() => ({ tiles: window.bascule.cacheTiles, stores: window.bascule.glyphStores, draws: window.bascule.glyphDraws }));
  assert.ok(caches.tiles > 0, `a tile cache was agreed: ${JSON.stringify(caches)}`);
  assert.ok(caches.stores > 0, `glyphs were kept: ${JSON.stringify(caches)}`);
});

test('a command typed in the browser runs on the desktop', async () => {
  const token = crypto.randomBytes(6).toString('hex');
  const file = path.join(work, 'typed.txt');
  await page.click('canvas', { position: { x: 300, y: 200 } });
  await typeAscii(`echo ${token} > ${file}`);
  await page.keyboard.press('Enter');
  assert.equal((await waitForFile(file)).trim(), token);
});

test('AZERTY characters é ç € and the dead key ^ arrive as typed', async () => {
  const cdp = await context.newCDPSession(page);
  const file = path.join(work, 'azerty.txt');
  await typeAscii(`printf '%s' '`);
  await azerty(cdp, { code: 'Digit2', key: 'é', keyCode: 50 });
  await azerty(cdp, { code: 'Digit9', key: 'ç', keyCode: 57 });
  // AltGr + E gives €: Chromium on Linux reports the AltGr key as AltGraph.
  await cdp.send('Input.dispatchKeyEvent', { type: 'rawKeyDown', key: 'AltGraph', code: 'AltRight', windowsVirtualKeyCode: 225 });
  await azerty(cdp, { code: 'KeyE', key: '€', keyCode: 69 });
  await cdp.send('Input.dispatchKeyEvent', { type: 'keyUp', key: 'AltGraph', code: 'AltRight', windowsVirtualKeyCode: 225 });
  // The dead circumflex, then e: the browser composes ê.
  await cdp.send('Input.dispatchKeyEvent', { type: 'rawKeyDown', key: 'Dead', code: 'BracketLeft', windowsVirtualKeyCode: 221 });
  await cdp.send('Input.dispatchKeyEvent', { type: 'keyUp', key: 'Dead', code: 'BracketLeft', windowsVirtualKeyCode: 221 });
  await azerty(cdp, { code: 'KeyE', key: 'ê', keyCode: 69 });
  await azerty(cdp, { code: 'Digit7', key: 'è', keyCode: 55 });
  await azerty(cdp, { code: 'Digit0', key: 'à', keyCode: 48 });
  await typeAscii(`' > ${file}`);
  await page.keyboard.press('Enter');
  assert.equal(await waitForFile(file), 'éç€êèà');
});

test('a click reaches the desktop at the right place', async () => {
  const file = path.join(work, 'click.txt');
  // Ask xterm to report mouse presses (X10 mode), read one report, and save it.
  await typeAscii(`printf '\\033[?9h'; read -rsn6 c; printf '\\033[?9l'; printf '%s' "$c" | od -An -tu1 > ${file}`);
  await page.keyboard.press('Enter');
  await page.waitForTimeout(500);
  const box = await page.evaluate(() => {
    const r = window.bascule.canvas.getBoundingClientRect();
    return { left: r.left, top: r.top, scale: r.width / window.bascule.canvas.width };
  });
  // Remote pixel (400, 300) is inside the xterm (it spans 40..~1000 x 40..~640).
  await page.mouse.click(box.left + 400 * box.scale, box.top + 300 * box.scale);
  const report = (await waitForFile(file)).trim().split(/\s+/).map(Number);
  assert.deepEqual(report.slice(0, 3), [27, 91, 77], `not a mouse report: ${report}`);
  assert.equal(report[3], 32, 'left button press');
  // Column and row (1-based, + 32) of a click at remote (400, 300) in a 100x30 xterm at (40, 40)
  // with its title bar: they must be inside the window and in the expected area.
  const column = report[4] - 32;
  const row = report[5] - 32;
  assert.ok(column > 20 && column < 60, `column ${column}`);
  assert.ok(row > 8 && row < 20, `row ${row}`);
});
