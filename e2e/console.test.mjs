// End to end: the operations console with two browsers. A user works on the testbed's x11vnc
// desktop; a helpdesk agent finds them in the console, shadows the session (same screen,
// read-only), sends a message, asks for control (the user accepts, the agent's click and keys
// reach the desktop), and logs the session off (the user's viewer says so).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireTools, browser, settle, canvasDiff, bascule, startServe, testbedEnv, waitForFile } from './harness.mjs';

/** @type {Awaited<ReturnType<typeof startServe>>} */ let gateway;
/** @type {import('playwright-core').BrowserContext} */ let userContext;
/** @type {import('playwright-core').BrowserContext} */ let agentContext;
/** @type {Record<string, string>} */ let tb;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bascule-e2e-console-'));
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bascule-e2e-console-files-'));
const PASSWORD = 'un mot de passe assez long';

before(async () => {
  requireTools();
  tb = testbedEnv();
  if (!tb.TB_X11VNC_ADDR) throw new Error('the testbed has no x11vnc (TB_X11VNC_ADDR missing): run scripts/testbed.sh up');
  const [host, port] = tb.TB_X11VNC_ADDR.split(':');
  const sealed = bascule(['secret', 'encrypt', '--data-dir', dataDir], tb.TB_X11VNC_PASS + '\n');
  const hash = bascule(['hash-password'], PASSWORD + '\n');
  fs.writeFileSync(path.join(dataDir, 'bascule.toml'), `listen = "127.0.0.1:0"
data_dir = "${dataDir}"

# The second factor has its own test (portal.test.mjs).
[mfa]
totp = "off"

[[user]]
name = "agent"
display_name = "Agent Dupont"
password_hash = "${hash}"
resources = ["bureau"]

[[user]]
name = "hotline"
display_name = "Hotline Martin"
password_hash = "${hash}"
roles = ["helpdesk"]

[[resource]]
id = "bureau"
name_fr = "Bureau du testbed"
name_en = "Testbed desktop"
protocol = "vnc"
host = "${host}"
port = ${port}
password = "${sealed}"
`);
  gateway = await startServe(path.join(dataDir, 'bascule.toml'));
  userContext = await browser();
  agentContext = await browser();
});

after(async () => {
  await userContext?.close();
  await agentContext?.close();
  await gateway?.stop();
});

/**
 * @param {import('playwright-core').Page} page
 * @param {string} user
 */
async function signIn(page, user) {
  await page.goto(gateway.url + 'login');
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForSelector('.portal');
}

test('helpdesk: find the user, shadow, message, control with consent, log off', async () => {
  const user = await userContext.newPage();
  await signIn(user, 'agent');
  await user.click('.resource a');
  await user.waitForFunction(() => window.bascule?.state === 'connected', null, { timeout: 20000 });
  await settle(user);

  // A user cannot open the console.
  const refused = await user.context().request.get(gateway.url + 'console/sessions');
  assert.equal(refused.status(), 403);

  const agent = await agentContext.newPage();
  await signIn(agent, 'hotline');
  await agent.goto(gateway.url + 'console/users?q=dupont');
  await agent.click('#users a:has-text("agent")');
  await agent.waitForSelector('#user-sessions tr[data-session]');
  const shadowHref = await agent.getAttribute('#user-sessions a[href^="/console/shadow/"]', 'href');
  assert.ok(shadowHref, 'the live session has a Shadow link');

  // The shadow shows the same screen, and is read-only.
  const shadow = await agentContext.newPage();
  await shadow.goto(gateway.url + shadowHref.slice(1));
  await shadow.waitForFunction(() => window.bascule?.state === 'connected', null, { timeout: 20000 });
  await settle(shadow);
  assert.equal(await shadow.evaluate(() => window.bascule.readOnly), true);
  const diff = await canvasDiff(shadow, tb.TB_X11VNC_DISPLAY);
  assert.equal(diff.differing, 0, `the shadow's canvas differs from the X screen: ${diff.detail}`);

  // A message from the user page reaches the user's viewer.
  await agent.fill('#user-sessions input[name=text]', 'Bonjour, je regarde votre écran.');
  await agent.click('#user-sessions form[action$="/message"] button');
  await user.waitForFunction(() => window.bascule?.lastMessage?.text === 'Bonjour, je regarde votre écran.', null, { timeout: 10000 });
  assert.equal(await user.locator('.bv-message').count() >= 1, true, 'the banner is shown');

  // Control: the agent asks, the user accepts, the agent's click and keys reach the desktop.
  await shadow.click('.bv-shadow-bar .bv-bar-action');
  await user.waitForSelector('.bv-ask .bv-action-primary', { state: 'visible', timeout: 10000 });
  await user.click('.bv-ask .bv-action-primary');
  await shadow.waitForFunction(() => window.bascule?.control === 'granted' && window.bascule?.readOnly === false, null, { timeout: 10000 });
  const token = crypto.randomBytes(6).toString('hex');
  const file = path.join(work, 'agent.txt');
  await shadow.click('canvas', { position: { x: 300, y: 200 } });
  await shadow.keyboard.type(`echo ${token} > ${file}`, { delay: 5 });
  await shadow.keyboard.press('Enter');
  assert.equal((await waitForFile(file)).trim(), token, "the agent's input reached the desktop once granted");

  // The agent logs the session off; the user's viewer says so.
  await agent.reload();
  await agent.click('#user-sessions form[action$="/logoff"] button');
  await user.waitForFunction(() => window.bascule?.notice?.code === 'session.ended_by_staff', null, { timeout: 10000 });
  assert.equal(await user.evaluate(() => window.bascule.state), 'ended');
});
