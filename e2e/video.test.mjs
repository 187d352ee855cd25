// End to end: H.264 video. `bascule demo` + headless Chromium: a photo-like animation plays on the
// demo desktop (ImageMagick's `animate`), the viewer announces H.264 (WebCodecs) and draws Video
// messages; once the animation stops, and once it is closed, the canvas equals the X screen exactly
// (the gateway refines the lossy video area with exact tiles).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireTools, startDemo, browser, openDesktop, settle, canvasDiff } from './harness.mjs';

const CONVERT = '/usr/bin/convert';
const ANIMATE = '/usr/bin/animate';
const XWININFO = '/usr/bin/xwininfo';
const TITLE = 'bascule-video';
/** The ClientHello bit of H.264 (docs/protocol.md, Codecs). */
const CODECS_H264 = 8;

/** @type {Awaited<ReturnType<typeof startDemo>>} */ let demo;
/** @type {import('playwright-core').BrowserContext} */ let context;
/** @type {import('playwright-core').Page} */ let page;
/** @type {import('node:child_process').ChildProcess | null} */ let animation = null;
let animationLog = '';
/** What the page reported as errors: console warnings of the display, uncaught exceptions. */
const pageErrors = [];
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bascule-e2e-video-'));

before(async () => {
  requireTools();
  for (const [file, hint] of [[ANIMATE, 'apt-get install imagemagick'], [XWININFO, 'apt-get install x11-utils']]) {
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: ${hint}`);
  }
  demo = await startDemo();
  context = await browser();
  page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.text().startsWith('bascule: draw error')) pageErrors.push(msg.text());
  });
  page.on('pageerror', (err) => pageErrors.push(`page error: ${err.message}`));
});

after(async () => {
  stopAnimation();
  await context?.close();
  await demo?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

function stopAnimation() {
  const child = animation;
  animation = null;
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
}

/**
 * ~30 frames of a photo-like 480 × 272 picture that moves: one plasma fractal (fixed seed, so every
 * run plays the same film), rolled 16 pixels further right in each frame.
 * @returns {string[]} the PNG files, in order
 */
function makeFrames() {
  const base = path.join(work, 'base.png');
  execFileSync(CONVERT, ['-size', '480x272', '-seed', '4242', 'plasma:fractal', '-depth', '8', base]);
  const files = [];
  for (let i = 0; i < 30; i++) {
    const file = path.join(work, `frame-${String(i).padStart(2, '0')}.png`);
    execFileSync(CONVERT, [base, '-roll', `+${16 * i}+0`, file]);
    files.push(file);
  }
  return files;
}

/** Waits until the animation's window is on the X screen. */
async function waitForWindow(timeoutMs = 20000) {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (animation && animation.exitCode !== null) throw new Error(`animate exited (${animation.exitCode}):\n${animationLog}`);
    try {
      const info = execFileSync(XWININFO, ['-display', demo.display, '-name', TITLE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      if (/Map State: IsViewable/.test(info)) return;
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the ${TITLE} window did not appear on ${demo.display} within ${timeoutMs} ms:\n${animationLog}`);
}

/** Polls until the canvas equals the X screen exactly; fails with the last difference. */
async function waitForExactCanvas(what, timeoutMs = 30000) {
  const start = Date.now();
  let diff = { differing: -1, detail: 'not compared yet' };
  while (Date.now() - start < timeoutMs) {
    await settle(page, 700, timeoutMs);
    diff = await canvasDiff(page, demo.display);
    if (diff.differing === 0) return Date.now() - start;
    await page.waitForTimeout(500);
  }
  assert.fail(`${what}: the canvas still differs from the X screen after ${timeoutMs} ms: ${diff.differing} pixels, ${diff.detail}`);
}

/** The viewer's counters. */
const counters = () =>
  page.evaluate(() => {
    const b = window.bascule;
    return { state: b.state, codecs: b.codecs, videoStreams: b.videoStreams, videoFrames: b.videoFrames, drawErrors: b.drawErrors, lastDrawError: b.lastDrawError, bytes: b.bytesReceived };
  });

test('the viewer announces H.264 when WebCodecs decodes it', async () => {
  await openDesktop(page, demo);
  const c = await counters();
  assert.equal(typeof c.codecs, 'number', 'window.bascule.codecs is exposed');
  assert.ok((c.codecs & CODECS_H264) !== 0, `H.264 (bit 3) announced: codecs = ${c.codecs}`);
  assert.equal(c.videoStreams, 0, 'no video before anything moves');
  await settle(page);
});

test('a moving picture on the desktop comes as H.264 video, drawn without errors', async () => {
  const frames = makeFrames();
  const before = await counters();
  animation = spawn(ANIMATE, ['-delay', '4', '-loop', '0', '-title', TITLE, '-geometry', '+600+300', ...frames], {
    env: { ...process.env, DISPLAY: demo.display },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collect = (/** @type {Buffer} */ chunk) => { animationLog += chunk.toString(); };
  animation.stdout?.on('data', collect);
  animation.stderr?.on('data', collect);
  await waitForWindow();
  const started = Date.now();
  // Let it play ~6 s (150 frames at 25 per second).
  await page.waitForTimeout(6000);
  assert.equal(animation.exitCode, null, `animate is still playing:\n${animationLog}`);
  const c = await counters();
  const seconds = (Date.now() - started) / 1000;
  console.log(`# figure: ${c.videoFrames - before.videoFrames} video pictures in ${c.videoStreams - before.videoStreams} stream(s) and ${c.bytes - before.bytes} bytes over ${seconds.toFixed(1)} s of a 480x272 animation at 25 fps`);
  assert.equal(c.state, 'connected');
  assert.ok(c.videoStreams - before.videoStreams >= 1, `a video stream was started: ${JSON.stringify(c)}`);
  assert.ok(c.videoFrames - before.videoFrames >= 10, `video pictures were drawn: ${JSON.stringify(c)}`);
  assert.equal(c.drawErrors, 0, `no display error: ${c.lastDrawError}`);
  assert.deepEqual(pageErrors, [], 'no error reported in the page');
});

test('once the picture stops moving, the lossy video area is refined: the canvas equals the X screen exactly', async () => {
  assert.ok(animation, 'the animation is running');
  // Freeze the animation where it is: its window stays on screen, its last frame no longer changes.
  animation.kill('SIGSTOP');
  const ms = await waitForExactCanvas('animation frozen');
  console.log(`# figure: the frozen video area was exact ${ms} ms after it stopped changing (within settle/poll steps)`);
  const c = await counters();
  assert.equal(c.drawErrors, 0, `no display error: ${c.lastDrawError}`);
});

test('once the animation is closed, the canvas equals the X screen exactly', async () => {
  stopAnimation();
  await waitForExactCanvas('animation closed');
  const c = await counters();
  assert.equal(c.state, 'connected');
  assert.equal(c.drawErrors, 0, `no display error: ${c.lastDrawError}`);
  assert.deepEqual(pageErrors, [], 'no error reported in the page');
});
