// The console's live sessions table: refreshed every 2 s from /console/sessions.json with the
// page's own filters. Rows are built with textContent (never innerHTML).

/**
 * @typedef {object} SessionRow
 * @property {string} id
 * @property {string} user
 * @property {string} display_name
 * @property {string} resource
 * @property {string} host
 * @property {string} state
 * @property {string} state_label
 * @property {string} since
 * @property {string} client
 * @property {string} site
 * @property {number | null} kbit_per_s
 * @property {number | null} rtt_ms
 * @property {number | null} fps
 * @property {string} last_error
 */

const REFRESH_MS = 2000;

/**
 * @param {string} tag
 * @param {string} [text]
 * @param {string} [className]
 * @returns {HTMLElement}
 */
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

/**
 * @param {string} href
 * @param {string} text
 */
function link(href, text) {
  const a = /** @type {HTMLAnchorElement} */ (el('a', text));
  a.href = href;
  return a;
}

/**
 * @param {number | null} value
 * @param {number} digits
 */
function num(value, digits) {
  return value === null || value === undefined ? '–' : value.toFixed(digits);
}

/**
 * One table row, the same cells as the server renders.
 * @param {SessionRow} r
 * @returns {HTMLTableRowElement}
 */
export function renderRow(r) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr'));
  tr.dataset.session = r.id;
  tr.dataset.state = r.state;
  const who = el('td');
  who.append(link(`/console/users/${encodeURIComponent(r.user)}`, r.user), el('br'), el('span', r.display_name, 'muted'));
  const host = el('td');
  host.append(link(`/console/hosts/${encodeURIComponent(r.host)}`, r.host));
  tr.append(
    who,
    el('td', r.resource),
    host,
    el('td', r.state_label),
    el('td', r.since),
    el('td', r.client),
    el('td', r.site),
    el('td', num(r.kbit_per_s, 1), 'num'),
    el('td', r.rtt_ms === null || r.rtt_ms === undefined ? '–' : String(r.rtt_ms), 'num'),
    el('td', num(r.fps, 1), 'num'),
    el('td', r.last_error),
  );
  return tr;
}

async function refresh() {
  const status = document.getElementById('live-status');
  const body = document.querySelector('#sessions tbody');
  if (!status || !body) return;
  const url = `${status.dataset.refresh}${window.location.search}`;
  try {
    const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    /** @type {{count: number, sessions: SessionRow[]}} */
    const data = await response.json();
    const rows = data.sessions.map(renderRow);
    if (rows.length === 0) {
      const tr = el('tr');
      const td = /** @type {HTMLTableCellElement} */ (el('td', document.documentElement.lang === 'fr' ? 'Aucune session.' : 'No session.', 'empty'));
      td.colSpan = 11;
      tr.append(td);
      rows.push(/** @type {HTMLTableRowElement} */ (tr));
    }
    body.replaceChildren(...rows);
    status.dataset.updated = String(Date.now());
    status.classList.remove('stale');
  } catch {
    status.classList.add('stale');
  }
}

if (typeof document !== 'undefined' && document.getElementById('live-status')) {
  setInterval(() => void refresh(), REFRESH_MS);
}
