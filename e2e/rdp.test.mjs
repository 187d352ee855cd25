// End to end over RDP: `bascule serve` in front of the testbed's xrdp, headless Chromium as a
// French AZERTY user. Trust on first use is approved with `bascule host approve`, then the user
// types French characters that the xrdp host composes with its French layout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireTools, browser, settle, waitForFile, bascule, startServe, testbedEnv } from './harness.mjs';

const UNIX_USER = 'bascfr';
const UNIX_PASS = 'bascfr-' + crypto.randomBytes(6).toString('hex');
const PORTAL_PASS = 'agent-' + crypto.randomBytes(6).toString('hex');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bascule-e2e-rdp-'));

/** @type {Awaited<ReturnType<typeof startServe>>} */ let gateway;
/** @type {import('playwright-core').BrowserContext} */ let context;
/** @type {import('playwright-core').Page} */ let page;

function sh(command) {
  return execFileSync('bash', ['-c', command], { encoding: 'utf8' });
}

/**
 * A unix user with no running session, whose xrdp session is a UTF-8 xterm at the top left.
 * No window manager: X then gives the keyboard to the window under the pointer, so typing does
 * not depend on when a window manager gets round to focusing the window.
 */
function prepareUnixUser() {
  sh(`id ${UNIX_USER} >/dev/null 2>&1 || useradd -m -s /bin/bash ${UNIX_USER}`);
  sh(`echo '${UNIX_USER}:${UNIX_PASS}' | chpasswd`);
  sh(`pkill -KILL -u ${UNIX_USER} || true`);
  const home = sh(`getent passwd ${UNIX_USER} | cut -d: -f6`).trim();
  fs.writeFileSync(`${home}/startwm.sh`, `#!/bin/sh
export LANG=C.UTF-8 LC_ALL=C.UTF-8
exec xterm -name ${UNIX_USER} -title ${UNIX_USER} -geometry 100x30+0+0 -fa Monospace -fs 11 -e bash --norc
`, { mode: 0o755 });
  sh(`chown ${UNIX_USER}: ${home}/startwm.sh`);
}

before(async () => {
  requireTools();
  const tb = testbedEnv();
  if (!tb.TB_XRDP_ADDR) throw new Error('the testbed has no xrdp (TB_XRDP_ADDR missing from its env file)');
  const [host, port] = tb.TB_XRDP_ADDR.split(':');
  prepareUnixUser();
  const sealed = bascule(['secret', 'encrypt', '--data-dir', dataDir], UNIX_PASS + '\n');
  const hash = bascule(['hash-password'], PORTAL_PASS + '\n');
  const configPath = path.join(dataDir, 'bascule.toml');
  fs.writeFileSync(configPath, `listen = "127.0.0.1:0"
data_dir = "${dataDir}"

# The second factor has its own test (portal.test.mjs).
[mfa]
totp = "off"

[[user]]
name = "agent"
password_hash = "${hash}"
resources = ["xrdp-fr"]

[[resource]]
id = "xrdp-fr"
name_fr = "Bureau RDP (xrdp)"
name_en = "RDP desktop (xrdp)"
protocol = "rdp"
host = "${host}"
port = ${port}
security = "tls"
username = "${UNIX_USER}"
password = "${sealed}"
keyboard_layout = 0x040C
`);
  gateway = await startServe(configPath);
  context = await browser();
  page = await context.newPage();
});

after(async () => {
  if (page) {
    const bytes = await page.evaluate(() => window.bascule?.bytesReceived).catch(() => undefined);
    if (bytes !== undefined) console.log(`# figure: RDP session, the browser received ${bytes} bytes`);
  }
  await context?.close();
  await gateway?.stop();
  try { sh(`pkill -KILL -u ${UNIX_USER} || true`); } catch { /* already gone */ }
});

/** Physical AZERTY keys: character → [code, shift, altgr]. */
const AZERTY = {
  a: ['KeyQ'], z: ['KeyW'], q: ['KeyA'], w: ['KeyZ'], m: ['Semicolon'],
  ' ': ['Space'], "'": ['Digit4'], '%': ['Quote', true], '>': ['IntlBackslash', true], '/': ['Period', true],
  '-': ['Digit6'], '_': ['Digit8'], '.': ['Comma', true],
  é: ['Digit2'], è: ['Digit7'], ç: ['Digit9'], à: ['Digit0'], '€': ['KeyE', false, true],
};
for (const c of 'bcdefghijklnoprstuvxy') AZERTY[c] = [`Key${c.toUpperCase()}`];
for (const [i, c] of [...'1234567890'].entries()) AZERTY[c] = [`Digit${(i + 1) % 10}`, true];

const VK = (code) => code.startsWith('Key') ? code.charCodeAt(3) : code.startsWith('Digit') ? 48 + Number(code[5]) : 0;

async function key(cdp, type, keyValue, code, modifiers, vk, text) {
  await cdp.send('Input.dispatchKeyEvent', { type, key: keyValue, code, modifiers, windowsVirtualKeyCode: vk, text, unmodifiedText: text });
}

/** Types text as a French AZERTY keyboard does. */
async function typeAzerty(cdp, text) {
  for (const ch of text) {
    if (ch === 'ê') {
      await key(cdp, 'rawKeyDown', 'Dead', 'BracketLeft', 0, 221);
      await key(cdp, 'keyUp', 'Dead', 'BracketLeft', 0, 221);
      await key(cdp, 'keyDown', 'ê', 'KeyE', 0, 69, 'ê');
      await key(cdp, 'keyUp', 'ê', 'KeyE', 0, 69);
      continue;
    }
    const entry = AZERTY[ch];
    if (!entry) throw new Error(`no AZERTY key for ${JSON.stringify(ch)}`);
    const [code, shift, altgr] = entry;
    const modifiers = shift ? 8 : 0;
    if (shift) await key(cdp, 'rawKeyDown', 'Shift', 'ShiftLeft', 8, 16);
    if (altgr) await key(cdp, 'rawKeyDown', 'AltGraph', 'AltRight', 0, 225);
    await key(cdp, 'keyDown', ch, code, modifiers, VK(code), ch);
    await key(cdp, 'keyUp', ch, code, modifiers, VK(code));
    if (altgr) await key(cdp, 'keyUp', 'AltGraph', 'AltRight', 0, 225);
    if (shift) await key(cdp, 'keyUp', 'Shift', 'ShiftLeft', 0, 16);
  }
}

test('an unknown host certificate is refused until an admin approves it', async () => {
  await page.goto(gateway.url + 'login');
  await page.fill('input[name=username]', 'agent');
  await page.fill('input[name=password]', PORTAL_PASS);
  await page.click('button[type=submit]');
  await page.waitForSelector('.resource a');
  const started = Date.now();
  await page.click('.resource a');
  await page.waitForFunction(() => window.bascule?.state === 'error', null, { timeout: 30000 });
  const notice = await page.evaluate(() => window.bascule.notice);
  assert.equal(notice?.code, 'session.certificate_untrusted', JSON.stringify(notice));
  assert.match(await page.textContent('body'), /approuv/, 'the French message tells that an admin must approve it');
  const pending = bascule(['host', 'pending', '--data-dir', dataDir]);
  const [resource, fingerprint] = pending.split('\t');
  assert.equal(resource, 'xrdp-fr', pending);
  assert.match(fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  bascule(['host', 'approve', '--data-dir', dataDir, 'xrdp-fr', fingerprint]);
  await page.reload();
  await page.waitForFunction(() => window.bascule?.state === 'connected', null, { timeout: 30000 });
  console.log(`# figure: xrdp, from launch (after approval) to connected: ${Date.now() - started} ms including the refusal`);
  await settle(page, 1000, 20000);
  const audit = fs.readFileSync(path.join(dataDir, 'audit.log'), 'utf8');
  assert.match(audit, /host\.approve_certificate/, 'the approval is audited');
});

test('AZERTY typing reaches the xrdp session, composed by the host with its French layout', async () => {
  const cdp = await context.newCDPSession(page);
  const token = [...crypto.randomBytes(5)].map((b) => 'bcdfghjkl'[b % 9]).join('');
  const file = `/tmp/bascule-rdp-azerty-${token}`;
  // The xterm sits at the top left of the remote screen: put the pointer (and so the keyboard)
  // over it with a click at remote pixel (200, 150).
  const box = await page.locator('canvas').boundingBox();
  assert.ok(box, 'the canvas is visible');
  const scale = box.width / (await page.evaluate(() => window.bascule.canvas.width));
  await page.mouse.click(box.x + 200 * scale, box.y + 150 * scale);
  await page.waitForTimeout(300);
  await typeAzerty(cdp, `printf '%s' 'éçè€êà' > ${file}`);
  await page.keyboard.press('Enter');
  let content;
  try {
    content = await waitForFile(file, 15000);
  } catch (error) {
    const shot = path.join(os.tmpdir(), `bascule-e2e-rdp-${token}.png`);
    await page.screenshot({ path: shot });
    throw new Error(`${error.message}; the viewer looked like ${shot}`);
  }
  assert.equal(content, 'éçè€êà');
  const owner = fs.statSync(file).uid;
  assert.equal(String(owner), sh(`id -u ${UNIX_USER}`).trim(), 'the command ran in the user’s own session');
  fs.rmSync(file, { force: true });
});
