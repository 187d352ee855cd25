// Shared helpers of the end-to-end tests: start `bascule demo`, drive Chromium, read the X screen.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
export const binary = process.env.BASCULE_BIN ?? path.join(root, 'target', 'debug', 'bascule');
export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Fails loudly when something the tests need is missing. */
export function requireTools() {
  for (const [file, hint] of [
    [binary, 'build it first: cargo build -p bascule'],
    [chromiumPath, 'apt-get install chromium'],
    ['/usr/bin/xwd', 'apt-get install x11-apps'],
    ['/usr/bin/convert', 'apt-get install imagemagick'],
  ]) {
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: ${hint}`);
  }
}

/**
 * Runs `bascule ARGS` in the background and resolves when `ready(output)` returns a value.
 * @template T
 * @param {string[]} args
 * @param {(output: string) => T | undefined} ready
 * @param {string} what
 * @returns {Promise<T & {stop: () => Promise<void>, output: () => string}>}
 */
function spawnBascule(args, ready, what) {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BASCULE_LOG: 'info' } });
  let out = '';
  const collect = (/** @type {Buffer} */ chunk) => { out += chunk.toString(); };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(undefined);
    child.on('exit', () => resolve(undefined));
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10000).unref();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 60 s:\n${out}`)), 60000);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited (${code}):\n${out}`)); });
    const poll = setInterval(() => {
      // Strip the colour codes tracing may add before matching.
      const value = ready(out.replace(/\x1b\[[0-9;]*m/g, ''));
      if (value) {
        clearInterval(poll);
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ ...value, stop, output: () => out });
      }
    }, 100);
  });
}

/** Starts `bascule demo` on a free port and resolves when it prints its URL and login. */
export function startDemo() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bascule-e2e-'));
  return spawnBascule(['demo', '--listen', '127.0.0.1:0', '--data-dir', dataDir], (out) => {
    const url = out.match(/URL:\s+(https:\/\/\S+)/)?.[1];
    const password = out.match(/Password:\s+(\S+)/)?.[1];
    const display = out.match(/desktop (:\d+) served by/)?.[1];
    return url && password && display ? { url, user: 'demo', password, display } : undefined;
  }, 'bascule demo');
}

/** Launches headless Chromium with its own profile. */
export async function browser() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-udd-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    ignoreHTTPSErrors: true,
    viewport: { width: 1400, height: 900 },
    locale: 'fr-FR',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // The profile goes with the browser (each run would otherwise leave one in /tmp): removed once
  // the browser has exited; a failure to remove it is not the test's failure.
  const close = context.close.bind(context);
  context.close = async (options) => {
    await close(options);
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    } catch (error) {
      console.warn(`could not remove the browser profile ${profile}: ${error}`);
    }
  };
  return context;
}

/** The X server's screen as raw RGBA (exact pixels, no cursor). */
export function screenRgba(display) {
  const xwd = execFileSync('/usr/bin/xwd', ['-root', '-silent', '-display', display], { maxBuffer: 64 << 20 });
  return execFileSync('/usr/bin/convert', ['xwd:-', '-depth', '8', 'rgba:-'], { input: xwd, maxBuffer: 64 << 20 });
}

/** Logs in and opens the first resource; resolves when the viewer says it is connected. */
export async function openDesktop(page, demo) {
  await page.goto(demo.url + 'login');
  await page.fill('input[name=username]', demo.user);
  await page.fill('input[name=password]', demo.password);
  await page.click('button[type=submit]');
  await page.waitForSelector('.resource a');
  await page.click('.resource a');
  await page.waitForFunction(() => window.bascule?.state === 'connected', null, { timeout: 20000 });
}

/** Waits until no frame has arrived for `quietMs`. */
export async function settle(page, quietMs = 700, timeoutMs = 15000) {
  const start = Date.now();
  let last = -1;
  let stableSince = Date.now();
  while (Date.now() - start < timeoutMs) {
    const acked = await page.evaluate(() => window.bascule.messagesReceived);
    if (acked !== last) { last = acked; stableSince = Date.now(); }
    else if (Date.now() - stableSince >= quietMs) return;
    await page.waitForTimeout(100);
  }
  throw new Error('the display did not settle');
}

/**
 * A canvas of the page as raw RGBA: the viewer's (`window.bascule.canvas`) by default, or the one
 * at another path from `window` (`'videoMirror'`); null when there is none.
 * @returns {Promise<{width: number, height: number, pixels: Buffer} | null>}
 */
export async function readCanvas(page, global = 'bascule.canvas') {
  const canvas = await page.evaluate((global) => {
    const c = global.split('.').reduce((o, key) => (o ? o[key] : undefined), /** @type {any} */ (window));
    if (!c) return null;
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const chunks = [];
    const step = 1 << 15;
    for (let i = 0; i < data.length; i += step) {
      chunks.push(btoa(String.fromCharCode.apply(null, Array.from(data.subarray(i, i + step)))));
    }
    return { width: c.width, height: c.height, chunks };
  }, global);
  if (!canvas) return null;
  return { width: canvas.width, height: canvas.height, pixels: Buffer.concat(canvas.chunks.map((c) => Buffer.from(c, 'base64'))) };
}

/** Compares the viewer's canvas with the X screen; returns the number of differing pixels. */
export async function canvasDiff(page, display) {
  const canvas = await readCanvas(page);
  if (!canvas) throw new Error('the viewer has no canvas');
  const pixels = canvas.pixels;
  const screen = screenRgba(display);
  if (pixels.length !== screen.length) return { differing: -1, detail: `canvas ${canvas.width}x${canvas.height} vs screen ${screen.length / 4} px` };
  let differing = 0; let first = -1;
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i] !== screen[i] || pixels[i + 1] !== screen[i + 1] || pixels[i + 2] !== screen[i + 2]) {
      differing++;
      if (first < 0) first = i / 4;
    }
  }
  const x = first % canvas.width; const y = Math.floor(first / canvas.width);
  return { differing, detail: differing ? `first at (${x},${y})` : 'exact' };
}

/** Polls until a file exists with content, returns it. */
export async function waitForFile(file, timeoutMs = 10000) {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (fs.existsSync(file)) {
      const text = fs.readFileSync(file, 'utf8');
      if (text.length > 0) return text;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${file} did not appear within ${timeoutMs} ms`);
}

/** Runs a `bascule` subcommand and returns its standard output. */
export function bascule(args, input) {
  return execFileSync(binary, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] }).trim();
}

/** Starts `bascule serve --config FILE` and resolves with its https URL once it listens. */
export function startServe(configPath) {
  return spawnBascule(['serve', '--config', configPath], (out) => {
    const address = out.match(/gateway listening address=(\S+)/)?.[1];
    return address ? { url: `https://${address}/` } : undefined;
  }, 'bascule serve');
}

/** The testbed's endpoints (scripts/testbed.sh up writes them). */
export function testbedEnv() {
  const file = path.join(process.env.TB_DIR ?? '/tmp/bascule-testbed', 'env');
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run scripts/testbed.sh up first`);
  /** @type {Record<string, string>} */
  const env = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = line.match(/^([A-Z0-9_]+)=(.*)$/);
    if (m) env[m[1]] = m[2];
  }
  return env;
}
