// tandem's web console: the configuration editor (docs/console.md, "Changing the
// configuration from the console"). Plain JavaScript, no library, loaded as a module
// beside app.js. It never writes TOML: every change is an edit
// ({"op": "put_resource", ...}) sent with the generation it is based on to
// POST /v1/config/edit, which answers the text it gives (comments and layout kept), the
// diff against the running text and every diagnostic of `tandem validate` with the key
// it is about; those are shown beside the fields as you type. The choices come from the
// nodes' inventories (GET /v1/nodes/{n}/inventory, asked of this node for every node):
// only what every node of the group has can be chosen, the rest is shown and marked.
// Save pushes the text shown with POST /v1/config (admin): checked on every node, then
// applied on every node, or refused whole with each node's diagnostics.
// Code links (a[data-code]) open their help through app.js's handlers.

'use strict';

const CHECK_AFTER_MS = 300; // quiet time after typing before the text is checked
const READ_AGAIN_MS = 1500; // a read the node could not answer now is tried again after this
const DEFAULT_TIMING = { heartbeat_interval: '100ms', peer_timeout: '1s', lease_timeout: '1s' };

// Each kind's own keys, in the order the form shows them. `choice` names the inventory
// list its value is chosen from.
const KINDS = {
  filesystem: [
    { key: 'device', choice: 'device', required: true },
    { key: 'mountpoint', required: true, hint: '/srv/data' },
    { key: 'fstype', required: true, hint: 'ext4' },
    { key: 'options', hint: 'noatime' },
    { key: 'lock_standby', type: 'bool' },
    { key: 'fsck', type: 'bool' },
  ],
  ip: [
    { key: 'address', required: true, hint: '10.0.0.100/24' },
    { key: 'interface', choice: 'interface' },
  ],
  nic: [{ key: 'interface', choice: 'interface', required: true }],
  process: [
    { key: 'command', type: 'list', required: true, hint: 'one argument per line' },
    { key: 'cwd', hint: '/srv/app' },
    { key: 'user', hint: 'the daemon\'s user' },
  ],
  script: [{ key: 'path', required: true, hint: '/usr/local/bin/app-ctl' }],
  lsb: [{ key: 'service', choice: 'lsb', required: true }],
  systemd: [{ key: 'unit', choice: 'unit', required: true }],
  ocf: [{ key: 'agent', choice: 'agent', required: true }],
  app: [{ key: 'deadline', required: true, hint: '5s' }],
};
const COMMON = [
  { key: 'start_timeout', hint: '20s' },
  { key: 'stop_timeout', hint: '20s' },
  { key: 'monitor.interval', hint: '5s' },
  { key: 'monitor.timeout', hint: '20s' },
];

const ed = {
  running: null, // GET /v1/config
  answer: null, // the newest POST /v1/config/edit answer
  pending: new Map(), // key -> edit, in order; the draft resource is added last
  group: '', // the group shown ('' none, '*new' a new one)
  inventories: new Map(), // node -> {inventory} | {error}
  timer: null,
  seq: 0, // the newest check's number (older answers are dropped)
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'text') node.textContent = value;
    else if (key === 'on') for (const [name, fn] of Object.entries(value)) node.addEventListener(name, fn);
    else if (key === 'value') node.value = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function codeLink(code) {
  return el('a', { href: `#help-${code}`, class: 'code', 'data-code': code, text: code });
}

// Text with its leading code ("E1302: ...") made a help link.
function coded(text) {
  const match = /^([EWI]\d{4})(: .*)$/s.exec(text || '');
  return match ? [codeLink(match[1]), match[2]] : [text || ''];
}

async function call(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { 'X-Tandem-Console': '1' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  return { status: response.status, data };
}

function setState(state) {
  $('editor').dataset.state = state;
}

// ---------------------------------------------------------------------------------
// The running configuration and the edits.

async function load() {
  setState('loading');
  let answer = { status: 0, data: null };
  try { answer = await call('GET', '/v1/config'); } catch (_) { /* no answer: tried again */ }
  const { status, data } = answer;
  if (status !== 200 || !data) {
    // No answer, too many requests or a busy node pass: tried again, and said so.
    const again = status === 0 || status === 429 || status >= 500;
    const why = (data && data.error) || (status ? `HTTP ${status}` : 'no answer');
    $('editor-status').replaceChildren(`The configuration could not be read: ${why}${again ? '; trying again…' : ''}`);
    setState('error');
    if (again) {
      await new Promise((resolve) => setTimeout(resolve, READ_AGAIN_MS));
      await load();
    }
    return;
  }
  ed.running = data;
  ed.pending.clear();
  ed.answer = null;
  const waits = data.restart_needed.length
    ? ` This node's daemon runs generation ${data.running_generation}; waiting for its restart: ${data.restart_needed.join('; ')}.`
    : '';
  const edited = data.file_edited ? ' Its configuration file was edited by hand (W1301): a save is refused until that is resolved.' : '';
  $('editor-status').replaceChildren(
    `Generation ${data.generation} (${data.hash.slice(0, 12)}), as node ${data.node} keeps it.${waits}${edited}`);
  $('editor').dataset.generation = String(data.generation);
  await check();
}

function draftEdit() {
  const form = $('editor-resource');
  if (!form || form.hidden) return null;
  const name = $('editor-resource-name').value.trim();
  const kind = $('editor-resource-kind').value;
  if (!name || !kind) return null;
  return { op: 'put_resource', group: currentGroupName(), name, fields: resourceFields(kind) };
}

function edits() {
  const list = [...ed.pending.values()];
  const draft = draftEdit();
  if (draft && draft.group) list.push(draft);
  return list;
}

function scheduleCheck() {
  clearTimeout(ed.timer);
  setState('typing');
  ed.timer = setTimeout(check, CHECK_AFTER_MS);
}

async function check() {
  if (!ed.running) return;
  const seq = ++ed.seq;
  setState('checking');
  const { status, data } = await call('POST', '/v1/config/edit',
    { generation: ed.running.generation, edits: edits() });
  if (seq !== ed.seq) return;
  if (!data) {
    showRefusal(`The node did not answer the check (HTTP ${status}).`);
    setState('error');
    return;
  }
  ed.answer = data;
  render();
  setState(data.ok ? (data.valid ? 'valid' : 'invalid') : 'refused');
}

function put(key, edit) {
  ed.pending.delete(key);
  ed.pending.set(key, edit);
  scheduleCheck();
}

// ---------------------------------------------------------------------------------
// Rendering: the answer's text, diff, diagnostics and changes; the forms from its
// document.

function render() {
  const answer = ed.answer;
  $('editor-toml').textContent = answer.toml;
  $('editor-diff').textContent = answer.diff || '(no change from the running configuration)';
  $('editor').dataset.valid = String(Boolean(answer.ok && answer.valid));
  $('editor').dataset.changed = String(Boolean(answer.diff));
  const problems = answer.ok ? answer.diagnostics : [];
  $('editor-diagnostics').replaceChildren(...problems.map((d) => el('li', {
    'data-code': null, 'data-diagnostic-code': d.code, 'data-severity': d.severity, 'data-path': d.path.join('/'),
  }, codeLink(d.code), ` ${d.severity} at line ${d.line}:${d.column}: ${d.message}`,
  d.help.length ? el('span', { class: 'muted', text: ` (${d.help.join(' ')})` }) : null)));
  $('editor-no-problems').hidden = !(answer.ok && problems.length === 0);
  const refusal = $('editor-refusal');
  refusal.hidden = answer.ok;
  if (!answer.ok) refusal.replaceChildren(...coded(answer.error));
  $('editor-changes').replaceChildren(...(answer.changes || []).map((c) => el('li', { 'data-change': c.what },
    c.live ? `${c.what}: applied at once` : `${c.what}: takes effect when tandem node restarts on ${c.restart.join(', ')}`)));
  $('editor-save').disabled = !(answer.ok && answer.valid && answer.diff);
  renderPending();
  renderForms();
  placeDiagnostics(problems);
}

function renderPending() {
  const items = [...ed.pending.entries()].map(([key, edit]) => el('li', { 'data-edit-key': key },
    describeEdit(edit), ' ',
    el('button', { type: 'button', 'data-editor': 'undo', 'data-key': key, text: 'Undo' })));
  $('editor-pending').replaceChildren(...items);
  $('editor-pending-none').hidden = items.length > 0;
}

function describeEdit(edit) {
  switch (edit.op) {
    case 'put_group': return `group ${edit.name}: ${Object.keys(edit.fields).join(', ') || 'added'}`;
    case 'remove_group': return `remove group ${edit.name}`;
    case 'put_resource': return `resource ${edit.group}/${edit.name} (${edit.fields.kind || 'changed'})`;
    case 'remove_resource': return `remove resource ${edit.group}/${edit.name}`;
    case 'set_node_address': return `node ${edit.node}: ${edit.link} address ${edit.address || '(removed)'}`;
    case 'set_value': return `[${edit.section}] ${edit.key} = ${edit.value === null ? '(default)' : edit.value}`;
    case 'put_alert': return edit.index === null ? `new ${edit.fields.kind} alert` : `alert ${edit.index} changed`;
    case 'remove_alert': return `remove alert ${edit.index}`;
    default: return edit.op;
  }
}

function doc() {
  return (ed.answer && ed.answer.document) || {};
}

function groups() {
  return doc().group || [];
}

function currentGroupName() {
  if (ed.group === '*new') return $('editor-new-group') ? $('editor-new-group').value.trim() : '';
  return ed.group;
}

function renderForms() {
  renderGroupChoice();
  renderGroup();
  renderTiming();
  renderAddresses();
  renderAlerts();
}

function renderGroupChoice() {
  const select = $('editor-group');
  const names = groups().map((g) => g.name);
  if (ed.group && ed.group !== '*new' && !names.includes(ed.group)) ed.group = '';
  if (!ed.group && names.length) ed.group = names[0];
  select.replaceChildren(...names.map((n) => el('option', { value: n, text: n })),
    el('option', { value: '*new', text: 'New group…' }));
  select.value = ed.group || '*new';
  if (!ed.group) ed.group = '*new';
}

function nodeNames() {
  return (doc().node || []).map((n) => n.name);
}

function renderGroup() {
  const box = $('editor-group-fields');
  const group = groups().find((g) => g.name === ed.group);
  const isNew = ed.group === '*new';
  const typing = document.activeElement;
  if (typing && box.contains(typing) && typing.matches('input:not([type="checkbox"])')) return;
  const keep = typing && box.contains(typing) ? typing.id : null;
  const fields = [];
  if (isNew) {
    fields.push(field('name', 'Name of the new group', el('input', {
      id: 'editor-new-group', 'data-group-field': 'name', required: true, spellcheck: 'false',
      value: ed.newGroupName || '', on: { input: onNewGroupName } })));
  }
  const chosen = group ? group.nodes || [] : ed.newGroupNodes || [];
  fields.push(el('fieldset', { class: 'field', 'data-field': 'nodes' },
    el('legend', { text: 'Nodes, in preference order (the first runs it)' }),
    ...nodeNames().map((n) => el('label', {},
      el('input', { type: 'checkbox', 'data-group-node': n, checked: chosen.includes(n), on: { change: onGroupNodes } }),
      ` ${n}${chosen.includes(n) ? ` (${chosen.indexOf(n) + 1})` : ''}`)),
    diagnosticSlot('nodes')));
  const failback = el('select', { id: 'editor-group-failback', 'data-group-field': 'failback', on: { change: onGroupField } },
    el('option', { value: 'manual', text: 'manual: stay after a failover' }),
    el('option', { value: 'auto', text: 'auto: return to the first node' }));
  failback.value = (group && group.failback) || 'manual';
  fields.push(field('failback', 'Failback', failback));
  for (const [key, hint] of [['failback_delay', '30s'], ['migration_threshold', '3'], ['failure_timeout', '10m']]) {
    fields.push(field(key, key.replace('_', ' '), el('input', {
      id: `editor-group-${key}`, 'data-group-field': key, placeholder: hint, spellcheck: 'false',
      value: group && group[key] !== undefined ? String(group[key]) : '', on: { input: onGroupField } })));
  }
  const rows = (group ? group.resource || [] : []).map((r) => el('tr', { 'data-editor-resource': `${group.name}/${r.name}` },
    el('td', { text: r.name }), el('td', { text: r.kind }), el('td', { text: summary(r) }),
    el('td', {}, el('button', { type: 'button', 'data-editor': 'remove-resource', 'data-group': group.name, 'data-name': r.name, text: 'Remove' }))));
  const table = el('table', { id: 'editor-resources' },
    el('thead', {}, el('tr', {}, ...['Resource', 'Kind', 'Settings', ''].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, ...rows));
  const remove = group ? el('button', { type: 'button', class: 'danger', 'data-editor': 'remove-group', 'data-group': group.name, text: `Remove group ${group.name}` }) : null;
  box.replaceChildren(...fields, el('h4', { text: 'Resources, in start order within their class' }), table, remove);
  if (keep && $(keep)) $(keep).focus();
}

function summary(resource) {
  return Object.entries(resource).filter(([k]) => k !== 'name' && k !== 'kind')
    .map(([k, v]) => `${k} = ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ');
}

function field(key, label, control, extra) {
  const id = control.id || `editor-field-${key}`;
  control.id = id;
  return el('div', { class: 'field', 'data-field': key },
    el('label', { for: id, text: label }), control, extra || null, diagnosticSlot(key));
}

function diagnosticSlot(key) {
  return el('p', { class: 'diagnostic', 'data-diagnostic-for': key, role: 'alert', hidden: true });
}

function onNewGroupName(event) {
  ed.newGroupName = event.target.value.trim();
  ed.pending.delete('group:*new');
  if (ed.newGroupName) {
    ed.pending.set('group:*new', { op: 'put_group', name: ed.newGroupName, fields: { nodes: ed.newGroupNodes || [] } });
  }
  scheduleCheck();
}

function onGroupNodes(event) {
  const group = groups().find((g) => g.name === ed.group);
  const order = group ? [...(group.nodes || [])] : [...(ed.newGroupNodes || [])];
  const node = event.target.dataset.groupNode;
  const next = event.target.checked ? [...order.filter((n) => n !== node), node] : order.filter((n) => n !== node);
  if (ed.group === '*new') {
    ed.newGroupNodes = next;
    if (ed.newGroupName) put('group:*new', { op: 'put_group', name: ed.newGroupName, fields: { nodes: next } });
  } else {
    mergeGroup(ed.group, { nodes: next });
  }
  ed.inventoriesFor = null;
  loadChoices();
}

function onGroupField(event) {
  const key = event.target.dataset.groupField;
  let value = event.target.value.trim();
  if (key === 'migration_threshold' && /^\d+$/.test(value)) value = Number(value);
  if (ed.group === '*new') return; // a new group's keys: after it exists (its nodes first)
  mergeGroup(ed.group, { [key]: value === '' ? null : value });
}

function mergeGroup(name, fields) {
  const key = `group:${name}`;
  const old = ed.pending.get(key);
  put(key, { op: 'put_group', name, fields: { ...(old ? old.fields : {}), ...fields } });
}

// ---------------------------------------------------------------------------------
// The new resource's form: kinds, fields, choices from the inventories.

function resourceFields(kind) {
  const fields = { kind };
  for (const input of document.querySelectorAll('#editor-resource [data-resource-field]')) {
    const key = input.dataset.resourceField;
    const spec = [...(KINDS[kind] || []), ...COMMON].find((f) => f.key === key);
    if (!spec) continue;
    if (spec.type === 'bool') {
      if (input.checked) fields[key] = true;
    } else if (spec.type === 'list') {
      const items = input.value.split('\n').map((s) => s.trim()).filter(Boolean);
      if (items.length) fields[key] = items;
    } else if (key.startsWith('monitor.')) {
      if (input.value.trim()) fields.monitor = { ...(fields.monitor || {}), [key.slice(8)]: input.value.trim() };
    } else if (input.value.trim()) {
      fields[key] = input.value.trim();
    }
  }
  if (kind === 'ocf') {
    const params = {};
    for (const input of document.querySelectorAll('#editor-resource [data-ocf-param]')) {
      if (input.value.trim()) params[input.dataset.ocfParam] = input.value.trim();
    }
    if (Object.keys(params).length) fields.params = params;
  }
  return fields;
}

function renderResourceFields() {
  const kind = $('editor-resource-kind').value;
  const box = $('editor-resource-fields');
  const old = resourceFields(kind);
  const rows = [...(KINDS[kind] || []), ...COMMON].map((spec) => {
    const label = `${spec.key.replace('.', ' ')}${spec.required ? ' (required)' : ''}`;
    let control;
    if (spec.type === 'bool') {
      control = el('input', { type: 'checkbox', 'data-resource-field': spec.key, checked: Boolean(old[spec.key]) });
    } else if (spec.type === 'list') {
      control = el('textarea', { 'data-resource-field': spec.key, rows: 3, placeholder: spec.hint, spellcheck: 'false' });
    } else if (spec.choice) {
      control = choiceSelect(spec.choice, spec.required);
      control.dataset.resourceField = spec.key;
    } else {
      control = el('input', { 'data-resource-field': spec.key, placeholder: spec.hint || '', spellcheck: 'false' });
    }
    control.id = `editor-resource-${spec.key.replace('.', '-')}`;
    return field(spec.key, label, control);
  });
  box.replaceChildren(...rows, el('div', { id: 'editor-ocf-params' }));
  if (kind === 'ocf') renderOcfParams();
}

// The choices of one list: what every node of the group has first, the rest disabled
// and marked with the nodes that have it.
function choiceSelect(list, required) {
  const select = el('select', {});
  select.append(el('option', { value: '', text: required ? '(choose)' : '(none: let tandem pick)' }));
  const nodes = groupNodes();
  const byKey = new Map();
  for (const node of nodes) {
    const entry = ed.inventories.get(node);
    if (!entry || !entry.inventory) continue;
    for (const item of itemsOf(list, entry.inventory)) {
      const known = byKey.get(item.key) || { ...item, on: [] };
      known.on.push(node);
      byKey.set(item.key, known);
    }
  }
  const everywhere = [...byKey.values()].filter((i) => i.on.length === nodes.length);
  const somewhere = [...byKey.values()].filter((i) => i.on.length < nodes.length);
  for (const item of everywhere) {
    select.append(el('option', { value: item.key, text: item.label, 'data-everywhere': 'true' }));
  }
  for (const item of somewhere) {
    select.append(el('option', { value: item.key, disabled: true, 'data-everywhere': 'false',
      text: `${item.label} — only on ${item.on.join(', ')}` }));
  }
  return select;
}

function itemsOf(list, inventory) {
  switch (list) {
    case 'interface':
      return inventory.interfaces.filter((i) => !i.loopback).map((i) => ({ key: i.name,
        label: `${i.name} (${i.addresses.filter((a) => a.scope === 'global').map((a) => `${a.address}/${a.prefix_len}`).join(', ') || 'no address'}, ${i.state})` }));
    case 'device':
      return inventory.block_devices.map((d) => ({ key: d.path, fs: d.fs_type,
        label: `${d.path} (${[d.fs_type, d.label, d.uuid, size(d.size_bytes), d.mount_points.length ? `mounted on ${d.mount_points.join(', ')}` : ''].filter(Boolean).join(', ')})` }));
    case 'agent':
      return inventory.ocf_agents.filter((a) => !a.meta_data_error).map((a) => ({ key: `${a.provider}:${a.name}`,
        label: `${a.provider}:${a.name}${a.shortdesc ? ` — ${a.shortdesc}` : ''}` }));
    case 'unit':
      return inventory.systemd_units.filter((u) => u.name.endsWith('.service')).map((u) => ({ key: u.name,
        label: `${u.name}${u.description ? ` — ${u.description}` : ''} (${u.active_state})` }));
    case 'lsb':
      return inventory.lsb_scripts.filter((s) => s.executable).map((s) => ({ key: s.name,
        label: `${s.name}${s.short_description ? ` — ${s.short_description}` : ''}` }));
    default:
      return [];
  }
}

function size(bytes) {
  if (!bytes) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let n = bytes;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(n < 10 && i ? 1 : 0)} ${units[i]}`;
}

function renderOcfParams() {
  const box = $('editor-ocf-params');
  const chosen = $('editor-resource-agent') ? $('editor-resource-agent').value : '';
  if (!chosen) { box.replaceChildren(); return; }
  const [provider, name] = chosen.split(':');
  let agent = null;
  for (const node of groupNodes()) {
    const entry = ed.inventories.get(node);
    agent = entry && entry.inventory && entry.inventory.ocf_agents.find((a) => a.provider === provider && a.name === name);
    if (agent) break;
  }
  if (!agent) { box.replaceChildren(); return; }
  const rows = agent.parameters.map((p) => {
    let control;
    if (p.options && p.options.length) {
      control = el('select', { 'data-ocf-param': p.name },
        el('option', { value: '', text: p.default ? `(default: ${p.default})` : '(not set)' }),
        ...p.options.map((o) => el('option', { value: o, text: o })));
    } else {
      control = el('input', { 'data-ocf-param': p.name, placeholder: p.default || '', spellcheck: 'false', required: p.required });
    }
    control.id = `editor-param-${p.name}`;
    const label = `${p.name}${p.required ? ' (required)' : ''}${p.shortdesc ? `: ${p.shortdesc}` : ''}`;
    return field(`params.${p.name}`, label, control);
  });
  box.replaceChildren(el('h4', { text: `Parameters of ${chosen} (from its meta-data)` }), ...rows);
}

function groupNodes() {
  const group = groups().find((g) => g.name === ed.group);
  if (group) return group.nodes || [];
  return ed.newGroupNodes || [];
}

// The inventories of the group's nodes, each asked of this node (which fetches another
// node's from it).
async function loadChoices() {
  const nodes = groupNodes();
  const box = $('editor-choices');
  box.replaceChildren(`Reading the choices of ${nodes.join(', ') || 'no node'}…`);
  $('editor').dataset.choices = 'loading';
  await Promise.all(nodes.filter((n) => !ed.inventories.has(n)).map(async (node) => {
    const { status, data } = await call('GET', `/v1/nodes/${encodeURIComponent(node)}/inventory`);
    ed.inventories.set(node, status === 200 ? { inventory: data } : { error: (data && data.error) || `HTTP ${status}` });
  }));
  const notes = [];
  for (const node of nodes) {
    const entry = ed.inventories.get(node);
    if (entry.error) {
      notes.push(el('li', { 'data-choices-node': node, 'data-state': 'failed' }, `${node}: no choices: `, ...coded(entry.error)));
    } else {
      const problems = entry.inventory.problems.map((p) => el('span', {}, ' ', codeLink(p.code), ` ${p.message}`));
      notes.push(el('li', { 'data-choices-node': node, 'data-state': 'ok' }, `${node}: taken ${entry.inventory.taken_at}`, ...problems));
    }
  }
  box.replaceChildren(el('ul', {}, ...notes));
  $('editor').dataset.choices = 'ready';
  const keep = $('editor-resource-kind') ? resourceFields($('editor-resource-kind').value) : {};
  renderResourceFields();
  restoreDraft(keep);
}

function restoreDraft(fields) {
  for (const input of document.querySelectorAll('#editor-resource [data-resource-field]')) {
    const key = input.dataset.resourceField;
    const value = key.startsWith('monitor.') ? (fields.monitor || {})[key.slice(8)] : fields[key];
    if (value === undefined) continue;
    if (input.type === 'checkbox') input.checked = Boolean(value);
    else input.value = Array.isArray(value) ? value.join('\n') : value;
  }
}

// ---------------------------------------------------------------------------------
// Timing, nodes' addresses, alerts.

function renderTiming() {
  const timing = doc().timing || {};
  const box = $('editor-timing');
  if (box.contains(document.activeElement)) return;
  box.replaceChildren(...Object.entries(DEFAULT_TIMING).map(([key, fallback]) => field(key, key.replace('_', ' '),
    el('input', { id: `editor-timing-${key}`, 'data-timing': key, placeholder: `${fallback} (default)`, spellcheck: 'false',
      value: timing[key] || '', on: { input: (e) => {
        const value = e.target.value.trim();
        put(`timing:${key}`, { op: 'set_value', section: 'timing', key, value: value || null });
      } } }))));
}

function renderAddresses() {
  const box = $('editor-addresses');
  if (box.contains(document.activeElement)) return;
  const links = (doc().link || []).filter((l) => l.kind === 'udp').map((l) => l.name);
  const rows = [];
  for (const node of doc().node || []) {
    for (const link of links) {
      const key = `${node.name}.${link}`;
      const listId = `editor-addresses-of-${node.name}`;
      rows.push(field(key, `${node.name} on ${link}`, el('input', {
        id: `editor-address-${node.name}-${link}`, 'data-address-node': node.name, 'data-address-link': link,
        list: listId, spellcheck: 'false', value: (node.addresses || {})[link] || '',
        on: { focus: () => addressChoices(node.name, listId), input: (e) => {
          const value = e.target.value.trim();
          put(`address:${node.name}:${link}`, { op: 'set_node_address', node: node.name, link, address: value || null });
        } } }), el('datalist', { id: listId })));
    }
  }
  box.replaceChildren(...rows);
}

async function addressChoices(node, listId) {
  if (!ed.inventories.has(node)) {
    const { status, data } = await call('GET', `/v1/nodes/${encodeURIComponent(node)}/inventory`);
    ed.inventories.set(node, status === 200 ? { inventory: data } : { error: (data && data.error) || `HTTP ${status}` });
  }
  const entry = ed.inventories.get(node);
  const list = $(listId);
  if (!list || !entry.inventory) return;
  list.replaceChildren(...entry.inventory.interfaces.flatMap((i) => i.addresses
    .filter((a) => a.scope !== 'host')
    .map((a) => el('option', { value: a.address, text: `${i.name}` }))));
}

function renderAlerts() {
  const box = $('editor-alerts');
  const alerts = doc().alert || [];
  box.replaceChildren(...alerts.map((a, index) => el('li', { 'data-alert': index },
    `${a.kind}: ${a.url || a.path || (a.to || []).join(', ') || ''} `,
    el('button', { type: 'button', 'data-editor': 'remove-alert', 'data-index': index, text: 'Remove' }),
    diagnosticSlot(`alert.${index}`))));
}

function addAlert() {
  const kind = $('editor-alert-kind').value;
  const target = $('editor-alert-target').value.trim();
  if (!target) return;
  const fields = { kind };
  if (kind === 'webhook') fields.url = target;
  else if (kind === 'script') fields.path = target;
  else {
    fields.to = target.split(',').map((s) => s.trim()).filter(Boolean);
    fields.smtp = $('editor-alert-smtp').value.trim();
    fields.from = $('editor-alert-from').value.trim();
  }
  put(`alert:new:${Date.now()}`, { op: 'put_alert', index: null, fields });
  $('editor-alert-target').value = '';
}

// ---------------------------------------------------------------------------------
// Diagnostics beside the fields they are about.

function placeDiagnostics(problems) {
  for (const slot of document.querySelectorAll('#editor [data-diagnostic-for]')) {
    slot.hidden = true;
    slot.replaceChildren();
    delete slot.dataset.code;
  }
  const draft = draftEdit();
  for (const d of problems) {
    const slot = slotFor(d.path, draft);
    if (!slot) continue;
    slot.hidden = false;
    slot.dataset.code = slot.dataset.code ? `${slot.dataset.code} ${d.code}` : d.code;
    slot.dataset.severity = d.severity;
    slot.append(codeLink(d.code), ` ${d.message}${d.help.length ? ` (${d.help.join(' ')})` : ''} `);
  }
}

function slotFor(path, draft) {
  const find = (scope, key) => document.querySelector(`${scope} [data-diagnostic-for="${CSS.escape(key)}"]`);
  const [section, a, b, c, ...rest] = path;
  if (section === 'group' && b === 'resource' && draft && a === draft.group && c === draft.name) {
    const key = rest.length ? rest.join('.') : 'name';
    return find('#editor-resource', key) || find('#editor-resource', 'name');
  }
  if (section === 'group' && a === currentGroupName() && b && b !== 'resource') return find('#editor-group-fields', b);
  if (section === 'timing' && a) return find('#editor-timing', a);
  if (section === 'node' && b === 'addresses' && c) return find('#editor-addresses', `${a}.${c}`);
  if (section === 'alert' && a !== undefined) return find('#editor-alerts', `alert.${a}`);
  return null;
}

function showRefusal(text) {
  const refusal = $('editor-refusal');
  refusal.hidden = false;
  refusal.replaceChildren(...coded(text));
}

// ---------------------------------------------------------------------------------
// Save: the text shown, pushed to every node.

async function save() {
  if (!ed.answer || !ed.answer.ok || !ed.answer.valid) return;
  setState('saving');
  $('editor-save').disabled = true;
  const result = $('editor-result');
  result.replaceChildren('Checking on every node, then applying on every node…');
  const { status, data } = await call('POST', '/v1/config', { toml: ed.answer.toml, generation: ed.answer.generation });
  const outcome = data && data.outcome;
  const verdicts = ((outcome && outcome.nodes) || []).map((v) => el('li', {
    'data-node-verdict': v.node, 'data-accepted': String(v.accepted) },
  `node ${v.node}: ${v.accepted ? 'accepted' : 'REFUSED'}`, v.error ? el('span', {}, ' — ', ...coded(v.error)) : null,
  el('ul', {}, ...v.diagnostics.map((d) => el('li', { 'data-diagnostic-code': d.code, 'data-severity': d.severity },
    codeLink(d.code), ` ${d.severity} at line ${d.line}:${d.column}: ${d.message}`)))));
  if (status === 200 && data && data.ok) {
    const changes = (outcome.changes || []).map((c) => el('li', { 'data-change': c.what },
      c.live ? `${c.what}: applied now` : `${c.what}: takes effect when tandem node restarts on ${c.restart.join(', ')} (restart one node at a time: systemctl restart tandem)`));
    result.replaceChildren(el('p', { id: 'editor-saved', 'data-generation': outcome.generation, text: `Generation ${outcome.generation} applied on every node.` }),
      el('ul', {}, ...verdicts), changes.length ? el('ul', { id: 'editor-restart' }, ...changes) : null);
    setState('saved');
    await load();
    setState('saved');
    return;
  }
  result.replaceChildren(el('p', { id: 'editor-refused', class: 'error' }, 'Refused, nothing was applied on any node: ',
    ...coded((data && data.error) || `HTTP ${status}`)), el('ul', {}, ...verdicts));
  for (const v of (outcome && outcome.nodes) || []) {
    placeDiagnostics(v.diagnostics.map((d) => ({ ...d, path: pathOfLine(d.line) })));
  }
  setState('refused');
  $('editor-save').disabled = false;
}

// A push's diagnostics carry line and column only: the key is the one the edit check
// placed on the same line, if any.
function pathOfLine(line) {
  const known = (ed.answer.diagnostics || []).find((d) => d.line === line);
  if (known) return known.path;
  const draft = draftEdit();
  return draft ? ['group', draft.group, 'resource', draft.name] : [];
}

// ---------------------------------------------------------------------------------
// Input.

function onClick(event) {
  const button = event.target.closest('button[data-editor]');
  if (!button) return;
  switch (button.dataset.editor) {
    case 'undo': ed.pending.delete(button.dataset.key); scheduleCheck(); break;
    case 'remove-resource':
      put(`remove:${button.dataset.group}/${button.dataset.name}`,
        { op: 'remove_resource', group: button.dataset.group, name: button.dataset.name });
      break;
    case 'remove-group': put(`remove-group:${button.dataset.group}`, { op: 'remove_group', name: button.dataset.group }); break;
    case 'remove-alert': put(`remove-alert:${button.dataset.index}`, { op: 'remove_alert', index: Number(button.dataset.index) }); break;
    case 'add-alert': addAlert(); break;
    case 'keep-resource': {
      const draft = draftEdit();
      if (!draft || !draft.group) return;
      put(`resource:${draft.group}/${draft.name}`, draft);
      $('editor-resource-name').value = '';
      renderResourceFields();
      break;
    }
    case 'reload': ed.inventories.clear(); load().then(loadChoices); break;
    case 'save': save(); break;
    default: break;
  }
}

function start(me) {
  if (!me || me.role !== 'admin') return;
  const section = $('editor-section');
  section.hidden = false;
  section.addEventListener('click', onClick);
  $('editor-group').addEventListener('change', (e) => {
    ed.group = e.target.value;
    renderGroup();
    loadChoices();
    scheduleCheck();
  });
  $('editor-resource-kind').addEventListener('change', () => { renderResourceFields(); scheduleCheck(); });
  $('editor-resource').addEventListener('input', (e) => {
    if (e.target.id === 'editor-resource-agent') renderOcfParams();
    scheduleCheck();
  });
  $('editor-resource').addEventListener('change', (e) => {
    if (e.target.id === 'editor-resource-agent') renderOcfParams();
    if (e.target.id === 'editor-resource-device') {
      const fstype = $('editor-resource-fstype');
      const device = e.target.value;
      for (const node of groupNodes()) {
        const entry = ed.inventories.get(node);
        const found = entry && entry.inventory && entry.inventory.block_devices.find((d) => d.path === device);
        if (found && found.fs_type && fstype && !fstype.value) { fstype.value = found.fs_type; break; }
      }
    }
    scheduleCheck();
  });
  $('editor-resource').addEventListener('submit', (e) => e.preventDefault());
  $('editor-alert-kind').addEventListener('change', () => {
    const email = $('editor-alert-kind').value === 'email';
    $('editor-alert-email').hidden = !email;
  });
  load().then(loadChoices);
}

// app.js reads who is signed in and says so (the `tandem-me` event, or `window.tandemMe`
// if that was before this script ran).
if (window.tandemMe) start(window.tandemMe);
else document.addEventListener('tandem-me', (event) => start(event.detail), { once: true });
