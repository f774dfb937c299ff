// tandem's web console: plain JavaScript, no build step, no library. It reads the node's
// HTTPS API with the session cookie (GET /v1/status, /v1/whoami, /v1/help, the live
// journal from GET /v1/events as server-sent events) and gives commands with the
// X-Tandem-Console header (the API refuses a cookie POST without it: E5302).
// Test hooks (stable ids and data-attributes) are listed in docs/console.md.

'use strict';

const STATUS_EVERY_MS = 1000;
const RECONNECT_EVERY_MS = 1500;
const JOURNAL_BACKLOG = 500; // entries shown at start (the newest)
const JOURNAL_KEEP = 2000; // entries kept in the page at most
const SVG = 'http://www.w3.org/2000/svg';
const MOVE_CODES = ['W4111', 'I4112', 'I4113', 'E4108']; // failover, switch-over, failback, threshold

const state = {
  status: null,
  me: null, // {user, role}
  codes: [], // the catalogue's index
  events: [], // journal entries, oldest first
  lastId: 0, // the newest entry's id seen
  liveFrom: null, // entries after this id are new (alarm)
  stream: null,
  connected: false,
  selected: null, // the selected journal entry's code
  muted: localStorage.getItem('tandem.muted') === '1',
  newFaults: 0,
  flashing: null,
  audio: null,
  pending: null, // the confirmation's action
  statusBusy: false,
  statusAgain: false, // news came while a status read was under way
};

const $ = (id) => document.getElementById(id);

// Elements are built with this, never from HTML text: nothing the node sends is markup.
function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith('svg:')
    ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'text') node.textContent = value;
    else if (key === 'on') for (const [name, fn] of Object.entries(value)) node.addEventListener(name, fn);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// ---------------------------------------------------------------------------------
// The API.

async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { 'X-Tandem-Console': '1' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    window.location.assign('/login');
    throw new Error('signed out');
  }
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) {
    const message = (data && data.error) || `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return data;
}

// ---------------------------------------------------------------------------------
// Connection: the status on a timer and on every event; the event stream; the banner.

function setConnected(connected, why) {
  state.connected = connected;
  document.body.dataset.connected = String(connected);
  $('banner').hidden = connected;
  if (!connected) {
    $('banner-text').textContent = `Reconnecting… (${why || 'the node does not answer'})`;
    showOtherConsoles();
  }
}

function showOtherConsoles() {
  const nodes = (state.status && state.status.nodes) || [];
  const others = nodes.filter((n) => n.api && n.name !== state.status.reported_by);
  const box = $('other-consoles');
  box.replaceChildren(...others.map((n) =>
    el('a', { href: n.api, 'data-console': n.name, text: `${n.name} (${n.api})` })));
  $('banner-others').hidden = others.length === 0;
}

async function refreshStatus() {
  // A read already under way may have been answered before the news that asks for this
  // one: read once more when it is done (not at the next timer tick, up to a second on).
  if (state.statusBusy) {
    state.statusAgain = true;
    return;
  }
  state.statusBusy = true;
  try {
    const status = await api('GET', '/v1/status');
    state.status = status;
    render();
    if (!state.connected && state.stream) setConnected(true);
  } catch (error) {
    if (error.message !== 'signed out') setConnected(false, error.message);
  } finally {
    state.statusBusy = false;
    if (state.statusAgain) {
      state.statusAgain = false;
      refreshStatus();
    }
  }
}

function openStream() {
  if (state.stream) state.stream.close();
  const stream = new EventSource(`/v1/events?since=${state.lastId}`, { withCredentials: true });
  state.stream = stream;
  // Each entry comes as an event named after its code: one listener per catalogue code.
  for (const code of state.codes) stream.addEventListener(code.code, onEntry);
  stream.addEventListener('message', onEntry);
  stream.onopen = () => {
    setConnected(true);
    refreshStatus();
  };
  stream.onerror = () => {
    // The browser would reconnect from the first `since`; reconnect from the last id.
    stream.close();
    if (state.stream === stream) state.stream = null;
    setConnected(false, 'the live journal stopped');
    setTimeout(reconnect, RECONNECT_EVERY_MS);
  };
}

async function reconnect() {
  if (state.stream) return;
  try {
    state.status = await api('GET', '/v1/status');
    render();
    openStream();
  } catch (error) {
    if (error.message === 'signed out') return;
    setConnected(false, error.message);
    setTimeout(reconnect, RECONNECT_EVERY_MS);
  }
}

function onEntry(message) {
  let entry;
  try { entry = JSON.parse(message.data); } catch (_) { return; }
  if (!entry || typeof entry.id !== 'number' || entry.id <= state.lastId) return;
  state.lastId = entry.id;
  document.body.dataset.lastEventId = String(entry.id);
  state.events.push(entry);
  if (state.events.length > JOURNAL_KEEP) state.events.splice(0, state.events.length - JOURNAL_KEEP);
  if (state.liveFrom !== null && entry.id > state.liveFrom
      && (entry.severity === 'warning' || entry.severity === 'error')) {
    alarm(entry);
  }
  scheduleJournal();
  refreshStatus();
}

let journalQueued = false;
function scheduleJournal() {
  if (journalQueued) return;
  journalQueued = true;
  requestAnimationFrame(() => {
    journalQueued = false;
    renderJournal();
    renderFailover();
  });
}

// ---------------------------------------------------------------------------------
// The alarm: a beep per new warning or error, the title's count until focused.

// Browsers let a page make sound only once the user clicked or pressed a key in it;
// before that no audio is even tried (the title and the journal still say it), and the
// mute button says that the sound waits for a click.
function soundAllowed() {
  return !navigator.userActivation || navigator.userActivation.hasBeenActive;
}

for (const name of ['pointerdown', 'keydown']) {
  window.addEventListener(name, () => renderMute(), { once: true, capture: true });
}

function beep(severity) {
  if (state.muted || !soundAllowed()) return;
  try {
    if (!state.audio) state.audio = new AudioContext();
    const audio = state.audio;
    if (audio.state === 'suspended') audio.resume();
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.type = 'square';
    tone.frequency.value = severity === 'error' ? 880 : 660;
    gain.gain.setValueAtTime(0.0001, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.35);
    tone.connect(gain).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.4);
  } catch (_) {
    // No audio here (or not allowed yet): the title and the journal still say it.
  }
}

function alarm(entry) {
  beep(entry.severity);
  $('announce').textContent = `${entry.code} ${entry.message}`;
  if (document.hasFocus()) return;
  state.newFaults += 1;
  document.body.dataset.newFaults = String(state.newFaults);
  if (!state.flashing) {
    let on = false;
    state.flashing = setInterval(() => {
      on = !on;
      document.title = on ? `(${state.newFaults}) new faults: ${baseTitle()}` : baseTitle();
    }, 1000);
  }
}

function baseTitle() {
  const status = state.status;
  return status ? `tandem ${status.cluster} (${status.reported_by})` : 'tandem';
}

window.addEventListener('focus', () => {
  if (state.flashing) clearInterval(state.flashing);
  state.flashing = null;
  state.newFaults = 0;
  document.body.dataset.newFaults = '0';
  document.title = baseTitle();
});

function renderMute() {
  const button = $('mute');
  button.setAttribute('aria-pressed', String(state.muted));
  button.textContent = state.muted ? 'Alarm sound: muted'
    : (soundAllowed() ? 'Alarm sound: on' : 'Alarm sound: on (after a click)');
}

// ---------------------------------------------------------------------------------
// Faults: where each one is, from its `where` words (the status document's form).

function faultPlaces(faults) {
  const places = { links: new Map(), nodes: new Map(), disk: new Map(), nics: [], other: [] };
  for (const fault of faults || []) {
    const where = fault.where || '';
    let m;
    if ((m = /^link (\S+) between (\S+) and (\S+)$/.exec(where))) {
      places.links.set(pairKey(m[1], m[2], m[3]), fault);
    } else if ((m = /^node (\S+)$/.exec(where))) {
      places.nodes.set(m[1], fault);
    } else if ((m = /^storage path of (\S+)$/.exec(where))) {
      places.disk.set(m[1], fault);
    } else if (fault.code === 'W4115' && (m = /^(\S+) on (\S+)$/.exec(where))) {
      places.nics.push({ resource: m[1], node: m[2], fault });
    } else {
      places.other.push(fault);
    }
  }
  return places;
}

function pairKey(link, a, b) {
  const [x, y] = [a, b].sort();
  return `${link}:${x}:${y}`;
}

// ---------------------------------------------------------------------------------
// Rendering.

// The attributes that name an element across renderings (focus is kept by them).
const KEYS = ['data-link', 'data-node', 'data-disk-path', 'data-action', 'data-group',
  'data-switchover-target', 'data-console', 'data-code', 'data-event-id'];

function selectorOf(node) {
  if (!node || !node.getAttribute) return null;
  const parts = KEYS.filter((k) => node.hasAttribute(k))
    .map((k) => `[${k}="${CSS.escape(node.getAttribute(k))}"]`);
  return parts.length ? node.tagName.toLowerCase() + parts.join('') : null;
}

// Renders a part of the page again only when its data changed, keeping the focus and
// the choices made in its selects.
const drawn = new Map();
function redraw(id, data, draw) {
  const text = JSON.stringify(data);
  if (drawn.get(id) === text) return;
  drawn.set(id, text);
  const box = $(id);
  const focused = box.contains(document.activeElement) ? selectorOf(document.activeElement) : null;
  const chosen = [...box.querySelectorAll('select')].map((s) => [selectorOf(s), s.value]);
  draw();
  for (const [selector, value] of chosen) {
    const select = selector && box.querySelector(selector);
    if (select && [...select.options].some((o) => o.value === value)) select.value = value;
  }
  if (focused) {
    const again = box.querySelector(focused);
    if (again) again.focus();
  }
}

function render() {
  const status = state.status;
  if (!status) return;
  $('cluster').textContent = `tandem ${status.cluster}`;
  $('reported-by').textContent = `as ${status.reported_by} sees it`;
  if (!state.flashing) document.title = baseTitle();
  const role = state.me ? state.me.role : '';
  redraw('topology', [status.nodes, status.links, status.faults, (status.receiving || []).map((r) => r.link)],
    () => renderTopology(status));
  redraw('nodes', [status.nodes, status.reported_by, role], () => renderNodes(status));
  redraw('cluster-actions', role, renderClusterActions);
  redraw('faults', status.faults, () => renderFaults(status));
  // A lease's expiry changes with every read: it is written in place, so that the cards
  // (their selects and buttons, which a user may be using) are drawn again only when
  // something else changed.
  const holders = (status.leases || []).map((l) => [l.group, l.holder, l.expires_in_ms === null || l.expires_in_ms === undefined]);
  redraw('groups', [status.groups, holders, status.nodes.map((n) => n.name), role],
    () => renderGroups(status));
  renderLeases(status);
  renderFilters();
}

function renderClusterActions() {
  const admin = state.me && state.me.role === 'admin';
  $('cluster-actions').replaceChildren(...(admin ? [
    el('button', { type: 'button', class: 'operator admin-only', 'data-action': 'maintenance-on', text: 'Maintenance on…' }),
    el('button', { type: 'button', class: 'operator admin-only', 'data-action': 'maintenance-off', text: 'Maintenance off…' }),
  ] : []));
}

function renderTopology(status) {
  const svg = $('topology');
  const width = 640;
  const nodes = status.nodes;
  const places = faultPlaces(status.faults);
  const udp = new Set((status.receiving || []).map((r) => r.link));
  const hasDisk = status.links.some((l) => !udp.has(l.link)) || places.disk.size > 0;
  const height = hasDisk ? 340 : 250;
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const n = nodes.length;
  const position = new Map();
  // Nodes on a row (two: left and right), or on an ellipse for three or more.
  nodes.forEach((node, i) => {
    let x, y;
    if (n <= 2) {
      x = n === 1 ? width / 2 : 110 + i * (width - 220);
      y = 100;
    } else {
      const angle = Math.PI + (i * 2 * Math.PI) / n;
      x = width / 2 + Math.cos(angle) * 220;
      y = 120 + Math.sin(angle) * 70;
    }
    position.set(node.name, { x, y });
  });
  const parts = [];
  // Links, grouped by node pair and spread apart.
  const pairs = new Map();
  for (const link of status.links) {
    const key = [...link.nodes].sort().join(':');
    if (!pairs.has(key)) pairs.set(key, []);
    pairs.get(key).push(link);
  }
  for (const links of pairs.values()) {
    links.forEach((link, i) => {
      const a = position.get(link.nodes[0]);
      const b = position.get(link.nodes[1]);
      if (!a || !b) return;
      const spread = (i - (links.length - 1) / 2) * 34;
      const mx = (a.x + b.x) / 2;
      const my = (a.y + b.y) / 2 + spread * 1.6;
      const key = pairKey(link.link, link.nodes[0], link.nodes[1]);
      const fault = places.links.get(key);
      const disk = !udp.has(link.link);
      const facts = [
        `link ${link.link} (${disk ? 'disk' : 'network'}) between ${link.nodes[0]} and ${link.nodes[1]}: ${link.state}`,
        link.rtt_ms !== null && link.rtt_ms !== undefined ? `RTT ${link.rtt_ms.toFixed(3)} ms` : 'RTT unknown',
        link.loss_percent !== null && link.loss_percent !== undefined ? `loss ${link.loss_percent.toFixed(1)} %` : 'loss unknown',
        link.last_heard_ms !== null && link.last_heard_ms !== undefined ? `last heard ${link.last_heard_ms} ms ago` : null,
        fault ? `${fault.code} since ${fault.since}` : null,
      ].filter(Boolean).join(', ');
      const label = fault ? `${link.link} ${fault.code}` : link.link;
      parts.push(el('svg:g', {
        class: `link ${link.state}${disk ? ' disk' : ''}`,
        'data-link': key,
        'data-state': link.state,
        'data-kind': disk ? 'disk' : 'network',
        'data-code': fault ? fault.code : null,
        tabindex: 0,
        role: 'img',
        'aria-label': facts,
      },
      el('svg:title', { text: facts }),
      el('svg:path', { class: 'link-line', d: `M ${a.x} ${a.y} Q ${mx} ${2 * my - (a.y + b.y) / 2} ${b.x} ${b.y}` }),
      el('svg:text', {
        class: `link-label${fault || link.state === 'down' ? ' fault-label' : ''}`,
        x: mx, y: my - 4, 'text-anchor': 'middle', text: label,
      })));
    });
  }
  // The shared disk, with each node's path to it.
  if (hasDisk) {
    const disk = { x: width / 2, y: height - 45 };
    for (const node of nodes) {
      const p = position.get(node.name);
      const fault = places.disk.get(node.name);
      const facts = fault
        ? `storage path of ${node.name}: lost (${fault.code} since ${fault.since})`
        : `storage path of ${node.name}: no fault reported`;
      parts.push(el('svg:g', {
        class: 'disk-path-group', 'data-disk-path': node.name, 'data-state': fault ? 'lost' : 'ok',
        'data-code': fault ? fault.code : null, tabindex: 0, role: 'img', 'aria-label': facts,
      },
      el('svg:title', { text: facts }),
      el('svg:line', { class: `disk-path${fault ? ' lost' : ''}`, x1: p.x, y1: p.y + 30, x2: disk.x, y2: disk.y - 18 }),
      fault ? el('svg:text', { class: 'fault-label', x: (p.x + disk.x) / 2, y: (p.y + 30 + disk.y) / 2, 'text-anchor': 'middle', text: fault.code }) : null));
    }
    parts.push(el('svg:g', { class: 'disk', 'data-disk': 'shared' },
      el('svg:title', { text: 'the shared disk' }),
      el('svg:rect', { class: 'disk-box', x: disk.x - 55, y: disk.y - 18, width: 110, height: 36, rx: 10 }),
      el('svg:text', { x: disk.x, y: disk.y + 5, 'text-anchor': 'middle', text: 'shared disk' })));
  }
  // Nodes on top.
  for (const node of nodes) {
    const p = position.get(node.name);
    const fault = places.nodes.get(node.name);
    const nics = places.nics.filter((x) => x.node === node.name);
    const facts = [`node ${node.name}: ${node.state}`,
      node.name === status.reported_by ? 'the node this console talks to' : null,
      fault ? `${fault.code} since ${fault.since}` : null,
      ...nics.map((x) => `NIC of ${x.resource} down: ${x.fault.code} since ${x.fault.since}`)]
      .filter(Boolean).join(', ');
    parts.push(el('svg:g', {
      class: `node state-${node.state}${fault ? ' fault' : ''}`, 'data-node': node.name,
      'data-state': node.state, 'data-code': fault ? fault.code : null, tabindex: 0, role: 'img',
      'aria-label': facts,
    },
    el('svg:title', { text: facts }),
    el('svg:rect', { class: `node-box state-${node.state}`, x: p.x - 60, y: p.y - 30, width: 120, height: 60, rx: 8 }),
    el('svg:text', { class: 'node-name', x: p.x, y: p.y - 6, 'text-anchor': 'middle', text: node.name }),
    el('svg:text', { class: 'node-state', x: p.x, y: p.y + 14, 'text-anchor': 'middle', text: node.state }),
    fault ? el('svg:text', { class: 'fault-label', x: p.x, y: p.y - 38, 'text-anchor': 'middle', text: fault.code }) : null,
    ...nics.map((x, i) => el('svg:text', {
      class: 'fault-label', 'data-nic': `${x.resource}:${node.name}`, x: p.x, y: p.y + 48 + i * 15,
      'text-anchor': 'middle', text: `NIC ${x.resource} ${x.fault.code}`,
    }))));
  }
  svg.replaceChildren(...parts);
  const down = status.links.filter((l) => l.state === 'down').map((l) => `${l.link} ${l.nodes.join('–')}`);
  $('topology-desc').textContent = `${nodes.map((x) => `${x.name} ${x.state}`).join('; ')}. `
    + (down.length ? `Links down: ${down.join(', ')}.` : 'Every link up.');
}

function isOperator() {
  return state.me && (state.me.role === 'operator' || state.me.role === 'admin');
}

function renderNodes(status) {
  const cards = status.nodes.map((node) => el('div', { class: 'node-card', 'data-node-card': node.name },
    el('strong', { text: node.name }),
    el('span', { class: `badge state-${node.state}`, text: node.state }),
    node.api && node.name !== status.reported_by
      ? el('a', { href: node.api, 'data-console': node.name, text: 'its console' }) : null,
    isOperator() && node.state !== 'drained'
      ? el('button', { type: 'button', class: 'operator', 'data-action': 'drain', 'data-node': node.name, text: `Drain ${node.name}…` }) : null,
    isOperator() && node.state === 'drained'
      ? el('button', { type: 'button', class: 'operator', 'data-action': 'undrain', 'data-node': node.name, text: `Undrain ${node.name}…` }) : null));
  $('nodes').replaceChildren(...cards);
}

function codeLink(code) {
  return el('a', { href: `#help-${code}`, class: 'code', 'data-code': code, text: code });
}

function renderFaults(status) {
  const faults = status.faults || [];
  if (faults.length === 0) {
    $('faults').replaceChildren(el('li', { class: 'muted', text: 'Nothing is wrong now.' }));
    return;
  }
  $('faults').replaceChildren(...faults.map((f) => el('li', {
    'data-fault': f.code, 'data-severity': f.severity,
  }, el('span', { class: `badge ${f.severity}`, text: f.severity }), ' ', codeLink(f.code),
  ` ${f.where}, since ${f.since}`, f.seen_by && f.seen_by.length ? ` (seen by ${f.seen_by.join(' and ')})` : '')));
}

function leaseText(lease) {
  if (!lease) return 'not held';
  const expires = lease.expires_in_ms !== null && lease.expires_in_ms !== undefined;
  return `held by ${lease.holder}${expires ? `, expires in ${lease.expires_in_ms} ms` : ''}`;
}

function renderLeases(status) {
  const leases = new Map((status.leases || []).map((l) => [l.group, l]));
  for (const dd of document.querySelectorAll('#groups dd[data-lease]')) {
    const text = leaseText(leases.get(dd.dataset.lease));
    if (dd.textContent !== text) dd.textContent = text;
  }
}

function renderGroups(status) {
  const leases = new Map((status.leases || []).map((l) => [l.group, l]));
  const cards = status.groups.map((group) => {
    const lease = leases.get(group.name);
    const others = status.nodes.map((n) => n.name).filter((n) => n !== group.owner);
    const resources = el('table', { class: 'resources' },
      el('caption', { class: 'visually-hidden', text: `Resources of ${group.name}, in start order` }),
      el('thead', {}, el('tr', {}, ...['#', 'Resource', 'Kind', 'State', 'Failures'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, ...group.resources.map((r, i) => el('tr', {
        'data-resource': `${group.name}/${r.name}`, 'data-state': r.state,
      },
      el('td', { text: i + 1 }), el('td', { text: r.name }), el('td', { text: r.kind }),
      el('td', {}, el('span', { class: `badge ${r.state}`, text: r.state })),
      el('td', { text: r.fail_count })))));
    let actions = null;
    if (isOperator()) {
      const target = el('select', { 'data-switchover-target': group.name, id: `target-${group.name}` },
        el('option', { value: '', text: 'the best other node' }),
        ...others.map((n) => el('option', { value: n, text: n })));
      actions = el('div', { class: 'actions operator' },
        el('label', { for: `target-${group.name}`, text: 'Switch over to' }), target,
        el('button', { type: 'button', 'data-action': 'switchover', 'data-group': group.name, text: 'Switch over…' }),
        el('button', { type: 'button', 'data-action': 'clear', 'data-group': group.name, text: 'Clear failures…' }));
    }
    return el('article', {
      class: 'group', 'data-group': group.name, 'data-state': group.state,
      'data-owner': group.owner || '', 'data-locked': String(group.locked),
    },
    el('h3', {}, group.name, el('span', { class: `badge ${group.state}`, text: group.state })),
    el('dl', {},
      el('dt', { text: 'Owner' }), el('dd', { text: group.owner || 'none' }),
      el('dt', { text: 'Lease' }), el('dd', { 'data-lease': group.name, text: leaseText(lease) }),
      el('dt', { text: 'Lock' }), el('dd', {
        class: group.locked ? 'error' : null,
        text: group.locked ? `migration-locked: ${group.lock_reason || 'no reason given'}` : 'not locked',
      })),
    resources, actions);
  });
  $('groups').replaceChildren(...(cards.length ? cards : [el('p', { class: 'muted', text: 'No groups.' })]));
}

function renderFilters() {
  const fill = (select, values) => {
    const current = select.value;
    const known = [...select.options].map((o) => o.value);
    if (values.length + 1 === known.length && values.every((v, i) => known[i + 1] === v)) return;
    select.replaceChildren(el('option', { value: '', text: 'all' }), ...values.map((v) => el('option', { value: v, text: v })));
    select.value = values.includes(current) ? current : '';
  };
  const status = state.status;
  const nodes = new Set(status ? status.nodes.map((n) => n.name) : []);
  const groups = new Set(status ? status.groups.map((g) => g.name) : []);
  for (const e of state.events) {
    nodes.add(e.node);
    if (e.group) groups.add(e.group);
  }
  fill($('filter-node'), [...nodes].sort());
  fill($('filter-group'), [...groups].sort());
}

function filtered() {
  const severity = $('filter-severity').value;
  const node = $('filter-node').value;
  const group = $('filter-group').value;
  const code = $('filter-code').value.trim().toUpperCase();
  return state.events.filter((e) => {
    if (severity === 'warning' && e.severity === 'info') return false;
    if ((severity === 'error' || severity === 'info') && e.severity !== severity) return false;
    if (node && e.node !== node) return false;
    if (group && e.group !== group) return false;
    if (code && !e.code.toUpperCase().startsWith(code)) return false;
    return true;
  });
}

function renderJournal() {
  const rows = filtered().slice(-JOURNAL_KEEP).reverse().map((e) => el('tr', {
    'data-event-id': e.id, 'data-code': e.code, 'data-severity': e.severity, 'data-node': e.node,
    'data-group': e.group || null, class: `sev-${e.severity}`, tabindex: 0,
    'aria-selected': String(state.selected === e.id),
  },
  el('td', {}, el('time', { datetime: e.time, text: e.time.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') })),
  el('td', {}, codeLink(e.code)), el('td', { text: e.node }), el('td', { text: e.group || '' }),
  el('td', { text: e.where || '' }), el('td', { text: e.message })));
  const box = $('journal-rows');
  const focused = box.contains(document.activeElement) ? selectorOf(document.activeElement) : null;
  box.replaceChildren(...rows);
  if (focused) {
    const again = box.querySelector(focused);
    if (again) again.focus();
  }
  renderFilters();
}

// The last move of a group in the journal and what led to it: the entries of that group
// and of the nodes, links and leases from 30 s before it until the group ran again.
function renderFailover() {
  const moves = state.events.filter((e) => MOVE_CODES.includes(e.code) && e.group);
  const box = $('failover');
  if (moves.length === 0) {
    box.replaceChildren(el('p', { class: 'muted', text: 'No group has moved in the journal shown.' }));
    return;
  }
  const move = moves[moves.length - 1];
  const at = Date.parse(move.time);
  const before = state.events.filter((e) => e.id < move.id && e.group === move.group
    && e.code === 'I4102' && e.node !== move.node);
  const from = before.length ? before[before.length - 1].node : null;
  const ran = state.events.find((e) => e.id > move.id && e.group === move.group && e.code === 'I4102');
  const end = ran ? ran.id : state.lastId;
  const related = (e) => e.group === move.group || /^[EWI](2|3)/.test(e.code) || e.code === 'I5107';
  const timeline = state.events.filter((e) => e.id <= end && Date.parse(e.time) >= at - 30000 && related(e));
  const took = ran ? ` in ${((Date.parse(ran.time) - at) / 1000).toFixed(1)} s` : ' (not running yet)';
  box.replaceChildren(
    el('p', { 'data-failover-group': move.group, 'data-failover-to': move.node, 'data-failover-from': from || '' },
      el('strong', { text: `${move.group}` }), ` moved ${from ? `from ${from} ` : ''}to ${move.node}${took}: `,
      codeLink(move.code), ` ${move.message}`),
    el('ol', { 'aria-label': 'Timeline' }, ...timeline.map((e) => el('li', { 'data-event-id': e.id },
      el('time', { datetime: e.time, text: e.time.slice(11, 23) }), ' ', codeLink(e.code), ` ${e.node}: ${e.message}`))));
}

// ---------------------------------------------------------------------------------
// Help: the catalogue's cause and fix for a code, or the index.

async function openHelp(code) {
  const dialog = $('help');
  const body = $('help-body');
  body.replaceChildren(el('p', { class: 'muted', text: 'Loading…' }));
  if (!dialog.open) dialog.showModal();
  try {
    if (code) {
      const h = await api('GET', `/v1/help/${encodeURIComponent(code)}`);
      $('help-title').textContent = `${h.code}: ${h.title}`;
      dialog.dataset.code = h.code;
      body.replaceChildren(
        el('p', {}, el('span', { id: 'help-code', class: `badge ${h.severity}`, text: h.code }), ` ${h.severity}, ${h.area}`),
        el('dl', {}, el('dt', { text: 'Cause' }), el('dd', { id: 'help-cause', text: h.cause }),
          el('dt', { text: 'Fix' }), el('dd', { id: 'help-fix', text: h.fix })),
        el('p', {}, el('a', { href: '#help-index', 'data-help-index': '', text: 'Every code' })));
    } else {
      $('help-title').textContent = 'Help: every code';
      dialog.dataset.code = '';
      body.replaceChildren(
        el('p', { text: 'F1 shows the help of the selected journal line; Escape closes this. Every code:' }),
        el('ul', { id: 'help-index' }, ...state.codes.map((c) => el('li', {},
          codeLink(c.code), ` ${c.title} (${c.severity})`))));
    }
  } catch (error) {
    body.replaceChildren(el('p', { class: 'error', text: `No help: ${error.message}` }));
  }
  $('help-close').focus();
}

// ---------------------------------------------------------------------------------
// Operator actions, each after a confirmation that says what will happen.

function describe(action, data) {
  const status = state.status || { groups: [] };
  const group = status.groups.find((g) => g.name === data.group);
  switch (action) {
    case 'switchover': {
      const to = data.to || 'the best other node';
      const from = group && group.owner ? ` from ${group.owner}` : '';
      return {
        title: `Switch ${data.group} over`,
        text: `Move group ${data.group}${from} to ${to}: its resources stop in reverse order there, then start in order on ${to}. Its clients lose service while this takes.`,
        method: 'POST', path: `/v1/groups/${encodeURIComponent(data.group)}/switchover`,
        body: data.to ? { to: data.to } : {},
      };
    }
    case 'clear':
      return {
        title: `Clear ${data.group}`,
        text: `Forget the failures of group ${data.group} and of its resources, and unlock it if it is migration-locked: it may run again where it failed, and fail over again.`,
        method: 'POST', path: `/v1/groups/${encodeURIComponent(data.group)}/clear`, body: {},
      };
    case 'drain':
      return {
        title: `Drain ${data.node}`,
        text: `Move every group off node ${data.node} and keep them off it: it runs no group until it is undrained.`,
        method: 'POST', path: `/v1/nodes/${encodeURIComponent(data.node)}/drain`,
      };
    case 'undrain':
      return {
        title: `Undrain ${data.node}`,
        text: `Let node ${data.node} run groups again. Groups move to it only where they prefer it or nothing else can run them.`,
        method: 'POST', path: `/v1/nodes/${encodeURIComponent(data.node)}/undrain`,
      };
    case 'maintenance-on':
      return {
        title: 'Maintenance on',
        text: 'Maintenance for the whole cluster: tandem stops acting on resources. Nothing is started, stopped, restarted or failed over; what runs keeps running, unwatched, until maintenance is off.',
        method: 'POST', path: '/v1/maintenance', body: { on: true },
      };
    case 'maintenance-off':
      return {
        title: 'Maintenance off',
        text: 'Tandem acts on resources again: it checks every resource and starts, stops or fails over groups as their state needs.',
        method: 'POST', path: '/v1/maintenance', body: { on: false },
      };
    default:
      return null;
  }
}

function confirmAction(action, data) {
  const what = describe(action, data);
  if (!what) return;
  state.pending = what;
  $('confirm-title').textContent = what.title;
  $('confirm-text').textContent = what.text;
  $('confirm-error').hidden = true;
  $('confirm-ok').disabled = false;
  const dialog = $('confirm');
  dialog.dataset.action = action;
  dialog.showModal();
  $('confirm-cancel').focus();
}

async function carryOut() {
  const what = state.pending;
  if (!what) return;
  $('confirm-ok').disabled = true;
  try {
    await api(what.method, what.path, what.body);
    state.pending = null;
    $('confirm').close();
    $('announce').textContent = `${what.title}: done.`;
    refreshStatus();
  } catch (error) {
    const box = $('confirm-error');
    box.textContent = `Refused: ${error.message}`;
    box.hidden = false;
    $('confirm-ok').disabled = false;
  }
}

// ---------------------------------------------------------------------------------
// Input: clicks, keys.

document.addEventListener('click', (event) => {
  const link = event.target.closest('a[data-code]');
  if (link) {
    event.preventDefault();
    openHelp(link.dataset.code);
    return;
  }
  if (event.target.closest('a[data-help-index]')) {
    event.preventDefault();
    openHelp(null);
    return;
  }
  const row = event.target.closest('#journal-rows tr');
  if (row) select(row);
  const button = event.target.closest('button[data-action]');
  if (!button) return;
  const action = button.dataset.action;
  switch (action) {
    case 'mute':
      state.muted = !state.muted;
      localStorage.setItem('tandem.muted', state.muted ? '1' : '0');
      renderMute();
      if (!state.muted) beep('warning');
      break;
    case 'help': openHelp(selectedCode()); break;
    case 'close-help': $('help').close(); break;
    case 'logout': logout(); break;
    case 'cancel': state.pending = null; $('confirm').close(); break;
    case 'confirm': carryOut(); break;
    case 'switchover': {
      const target = document.querySelector(`select[data-switchover-target="${CSS.escape(button.dataset.group)}"]`);
      confirmAction(action, { group: button.dataset.group, to: target ? target.value : '' });
      break;
    }
    default:
      confirmAction(action, { group: button.dataset.group, node: button.dataset.node });
  }
});

function select(row) {
  state.selected = Number(row.dataset.eventId);
  for (const r of document.querySelectorAll('#journal-rows tr[aria-selected="true"]')) r.setAttribute('aria-selected', 'false');
  row.setAttribute('aria-selected', 'true');
  document.body.dataset.selectedCode = row.dataset.code;
}

function selectedCode() {
  const focused = document.activeElement;
  if (focused && focused.dataset && focused.dataset.code) return focused.dataset.code;
  const row = document.querySelector('#journal-rows tr[aria-selected="true"]');
  return row ? row.dataset.code : null;
}

document.addEventListener('focusin', (event) => {
  const row = event.target.closest && event.target.closest('#journal-rows tr');
  if (row) select(row);
});

document.addEventListener('keydown', (event) => {
  if (event.key === 'F1') {
    event.preventDefault();
    openHelp(selectedCode());
  } else if (event.key === 'Escape' && $('help').open) {
    event.preventDefault();
    $('help').close();
  } else if ((event.key === 'Enter' || event.key === ' ') && event.target.closest && event.target.closest('#journal-rows tr')
      && !event.target.closest('a')) {
    event.preventDefault();
    select(event.target.closest('#journal-rows tr'));
  } else if ((event.key === 'ArrowDown' || event.key === 'ArrowUp') && event.target.closest && event.target.closest('#journal-rows tr')) {
    event.preventDefault();
    const row = event.target.closest('#journal-rows tr');
    const next = event.key === 'ArrowDown' ? row.nextElementSibling : row.previousElementSibling;
    if (next) next.focus();
  }
});

$('confirm').addEventListener('close', () => { state.pending = null; });
$('journal-filters').addEventListener('input', () => renderJournal());
$('journal-filters').addEventListener('submit', (event) => event.preventDefault());

async function logout() {
  try {
    await fetch('/logout', { method: 'POST', credentials: 'same-origin', headers: { 'X-Tandem-Console': '1' } });
  } finally {
    window.location.assign('/login');
  }
}

// ---------------------------------------------------------------------------------
// Start: who am I, the catalogue, the status, then the newest journal entries and the
// live stream from there.

async function start() {
  renderMute();
  try {
    state.me = await api('GET', '/v1/whoami');
    document.body.dataset.role = state.me.role;
    // The editor (editor.js) starts from this, without a whoami of its own.
    if (!window.tandemMe) {
      window.tandemMe = state.me;
      document.dispatchEvent(new CustomEvent('tandem-me', { detail: state.me }));
    }
    $('whoami').textContent = `${state.me.user} (${state.me.role})`;
    state.codes = (await api('GET', '/v1/help')).codes;
    state.status = await api('GET', '/v1/status');
  } catch (error) {
    if (error.message !== 'signed out') setConnected(false, error.message);
    setTimeout(start, RECONNECT_EVERY_MS);
    return;
  }
  const durable = state.status.journal ? state.status.journal.durable_id : 0;
  state.lastId = Math.max(0, durable - JOURNAL_BACKLOG);
  state.liveFrom = durable;
  render();
  renderJournal();
  // Marks for measurements (docs/console.md, "For tests"): the status drawn, and once
  // painted (the task after the next frame).
  performance.mark('tandem-drawn');
  requestAnimationFrame(() => setTimeout(() => performance.mark('tandem-painted'), 0));
  openStream();
  setInterval(refreshStatus, STATUS_EVERY_MS);
}

start();
