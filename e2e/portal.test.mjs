// End to end: the portal with its control plane. `bascule serve` with the second factor required,
// in front of the testbed's x11vnc. In Chromium: log in, enrol TOTP (reading the key the page
// shows, as a phone would), see the resources, launch, see the desktop; close the tab, reconnect
// to the same session; log off.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireTools, browser, settle, canvasDiff, bascule, startServe, testbedEnv } from './harness.mjs';
import { totpCode } from './totp.mjs';

/** @type {Awaited<ReturnType<typeof startServe>>} */ let gateway;
/** @type {import('playwright-core').BrowserContext} */ let context;
/** @type {Record<string, string>} */ let tb;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bascule-e2e-portal-'));
const PASSWORD = 'mot de passe du portail';

before(async () => {
  requireTools();
  tb = testbedEnv();
  if (!tb.TB_X11VNC_ADDR) throw new Error('the testbed has no x11vnc (TB_X11VNC_ADDR missing): run scripts/testbed.sh up');
  const [host, port] = tb.TB_X11VNC_ADDR.split(':');
  const sealed = bascule(['secret', 'encrypt', '--data-dir', dataDir], tb.TB_X11VNC_PASS + '\n');
  const hash = bascule(['hash-password'], PASSWORD + '\n');
  const configPath = path.join(dataDir, 'bascule.toml');
  fs.writeFileSync(configPath, `listen = "127.0.0.1:0"
data_dir = "${dataDir}"

[[user]]
name = "agent"
display_name = "Agent Dupont"
password_hash = "${hash}"
resources = ["bureau"]

[[resource]]
id = "bureau"
name_fr = "Bureau du testbed"
name_en = "Testbed desktop"
protocol = "vnc"
host = "${host}"
port = ${port}
password = "${sealed}"
`);
  gateway = await startServe(configPath);
  context = await browser();
});

after(async () => {
  await context?.close();
  await gateway?.stop();
});

/** The session ids and states the portal lists. */
async function listedSessions(page) {
  await page.goto(gateway.url);
  return page.$$eval('.session', (items) => items.map((li) => ({ id: li.getAttribute('data-session'), state: li.getAttribute('data-state') })));
}

/** Reloads the portal until its only session is in `state`. */
async function waitForSessionState(page, state) {
  const start = Date.now();
  for (;;) {
    const sessions = await listedSessions(page);
    if (sessions.length === 1 && sessions[0].state === state) return sessions[0];
    if (Date.now() - start > 15000) throw new Error(`sessions ${JSON.stringify(sessions)}, expected one ${state}`);
    await page.waitForTimeout(300);
  }
}

test('login, TOTP enrolment, resources, launch: the desktop is visible', async () => {
  const page = await context.newPage();
  await page.goto(gateway.url);
  assert.match(page.url(), /\/login$/);
  await page.fill('input[name=username]', 'agent');
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL(/\/login\/totp$/);
  assert.equal(await page.locator('.qr svg').count(), 1, 'a QR code to scan');
  const secret = await page.getAttribute('[data-secret]', 'data-secret');
  assert.ok(secret && secret.length >= 16, 'the key is shown for manual entry');
  await page.fill('input[name=code]', '000000');
  await page.click('button[type=submit]');
  assert.match(await page.textContent('.error'), /Code incorrect/);
  await page.fill('input[name=code]', totpCode(secret));
  await page.click('button[type=submit]');
  await page.waitForSelector('.resource-list');
  assert.match(await page.textContent('.hello'), /Agent Dupont/);
  const resources = await page.$$eval('.resource a', (links) => links.map((a) => a.getAttribute('data-resource')));
  assert.deepEqual(resources, ['bureau']);
  assert.equal(await page.locator('.session').count(), 0);
  await page.click('.resource a');
  await page.waitForFunction(() => window.bascule?.state === 'connected', null, { timeout: 20000 });
  await settle(page);
  const diff = await canvasDiff(page, tb.TB_X11VNC_DISPLAY);
  assert.equal(diff.differing, 0, `canvas differs from the X screen: ${diff.detail}`);
  await page.close();
});

test('closing the tab disconnects; Reconnect rejoins the same session; Log off ends it', async () => {
  const page = await context.newPage();
  const disconnected = await waitForSessionState(page, 'disconnected');
  await page.click(`.session[data-session="${disconnected.id}"] a`);
  await page.waitForFunction(() => window.bascule?.state === 'connected', null, { timeout: 20000 });
  const portal = await context.newPage();
  const active = await waitForSessionState(portal, 'active');
  assert.equal(active.id, disconnected.id, 'the same session');
  await portal.click(`.session[data-session="${active.id}"] button`);
  await portal.waitForSelector('#no-sessions');
  // The viewer tab is told the session was logged off.
  await page.waitForFunction(() => window.bascule?.state === 'ended', null, { timeout: 10000 });
  assert.equal(await page.evaluate(() => window.bascule?.notice?.code), 'session.logged_off');
  await page.close();
  await portal.close();
});
