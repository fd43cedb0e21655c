// Fleet OTA dashboard: one module, no dependencies, no build step (see docs/dashboard.md).
//
// Every page under /ui/ is the same HTML shell; this module renders the page its path
// names from the JSON API. The operator token lives in sessionStorage and goes out only in
// the Authorization header of fetch() (also for the rollout's Server-Sent Events, read
// from a streaming fetch body because EventSource cannot send headers), never in a URL.
// Text reaches the page through textContent only; no inline script or style is used, so
// the server's Content-Security-Policy needs no 'unsafe-inline'.

const TOKEN_KEY = 'fleet-ota-token';
const API = '/api/v1';
const FINAL = ['succeeded', 'failed', 'rejected', 'rolled_back', 'timed_out', 'cancelled'];
const FAILURES = ['failed', 'rejected', 'rolled_back', 'timed_out'];
const STATES = ['pending', 'sent', 'downloading', 'verifying', 'installing', 'rebooting', 'succeeded', 'failed',
  'rejected', 'rolled_back', 'timed_out', 'cancelled'];
const SVG_NS = 'http://www.w3.org/2000/svg';

const session = { token: sessionStorage.getItem(TOKEN_KEY), name: '', scope: '' };
const isAdmin = () => session.scope === 'admin';

// ---- DOM helpers ----

/** An element with attributes (`class`, `for`, aria-*, data-*, on* handlers) and children. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const $ = (sel) => document.querySelector(sel);

function setPage(...children) {
  const page = $('#page');
  page.replaceChildren(...children.flat().filter(Boolean));
}

/** A bar of role progressbar: `percent` 0-100, labelled with what it measures. */
function progressBar(label, percent, extraClass = '') {
  const fill = h('div', { class: 'fill' });
  const bar = h('div', { class: `bar ${extraClass}`, role: 'progressbar', 'aria-label': label,
    'aria-valuemin': 0, 'aria-valuemax': 100 }, fill);
  setProgress(bar, percent);
  return bar;
}

function setProgress(bar, percent) {
  const p = Math.max(0, Math.min(100, Math.round(percent)));
  bar.setAttribute('aria-valuenow', p);
  bar.setAttribute('aria-valuetext', `${p} %`);
  bar.title = `${p} %`;
  // CSSOM, not a style attribute: allowed by a CSP without 'unsafe-inline'.
  bar.firstChild.style.width = `${p}%`;
}

function table(headers, rows, caption) {
  return h('table', {},
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))
      : h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, 'none'))));
}

const link = (href, text) => h('a', { href }, text);
const badge = (text, kind = text) => h('span', { class: `badge ${kind || ''}` }, text);
const when = (t) => (t ? new Date(t).toLocaleString() : '—');
const shortHash = (s) => (s ? h('code', { title: s }, s.slice(0, 12)) : '—');
const enc = encodeURIComponent;

function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(1)} ${units[i]}`;
}

function labels(obj) {
  const entries = Object.entries(obj || {});
  return entries.length ? entries.map(([k, v]) => h('span', { class: 'label' }, `${k}=${v}`)) : '—';
}

function installed(x) {
  return x ? `${x.name} ${x.version}` : '—';
}

// ---- API ----

class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path, { method = 'GET', body, signal } = {}) {
  const headers = { Authorization: `Bearer ${session.token}`, Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(API + path, { method, headers, signal, cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401) {
    signOut('Your token was refused; sign in again.');
    throw new ApiError(401, await r.json().catch(() => null));
  }
  if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null));
  if (r.status === 204) return null;
  return r.json();
}

/** Every item of a list, following next_cursor (at most `max` items). */
async function all(path, max = 10000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api(`${path}${sep}limit=1000${cursor ? `&cursor=${enc(cursor)}` : ''}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

/**
 * Server-Sent Events over fetch (so the token goes in a header): calls `onEvent(name,
 * data)` per event until the stream ends or `signal` aborts.
 */
async function sse(path, onEvent, signal) {
  const r = await fetch(API + path, { signal, cache: 'no-store',
    headers: { Authorization: `Bearer ${session.token}`, Accept: 'text/event-stream' } });
  if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null));
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer = (buffer + value).replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) onEvent(name, data.join('\n'));
    }
  }
}

// ---- rollout arithmetic ----

const sum = (counts, states) => states.reduce((n, s) => n + (counts?.[s] || 0), 0);

/** Percent of a rollout's (or wave's) devices in a final state. */
function percentDone(counts, total, finished) {
  if (!total) return finished ? 100 : 0;
  return (100 * sum(counts, FINAL)) / total;
}

function failureRatio(counts) {
  const final = sum(counts, FINAL);
  return final ? sum(counts, FAILURES) / final : 0;
}

const finishedState = (s) => s === 'completed' || s === 'cancelled';

// ---- sign-in ----

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  session.token = null;
  showSignIn(message);
}

function showSignIn(message = '') {
  $('#nav').hidden = true;
  $('#sign-out').hidden = true;
  $('#who').textContent = '';
  setPage();
  $('#sign-in').hidden = false;
  $('#sign-in-error').textContent = message;
  $('#token').focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = $('#token');
  session.token = input.value.trim();
  input.value = '';
  try {
    await whoami();
    sessionStorage.setItem(TOKEN_KEY, session.token);
    $('#sign-in').hidden = true;
    await route();
  } catch (e) {
    session.token = null;
    $('#sign-in-error').textContent = e.status === 401 || e.status === 403
      ? 'This is not a valid operator token.' : `Sign-in failed: ${e.message}`;
  }
}

async function whoami() {
  const me = await api('/whoami');
  session.name = me.name;
  session.scope = me.scope;
  $('#nav').hidden = false;
  $('#sign-out').hidden = false;
  $('#who').textContent = `${me.name} (${me.scope})`;
}

// ---- pages ----

let pageAbort = new AbortController();

async function route() {
  pageAbort.abort();
  pageAbort = new AbortController();
  const path = location.pathname;
  for (const a of document.querySelectorAll('#nav a')) {
    const href = a.getAttribute('href');
    a.classList.toggle('current', href === '/ui/' ? path === '/ui/' : path.startsWith(href));
  }
  let m;
  try {
    if (path === '/ui/' || path === '/ui') await fleetPage();
    else if (path === '/ui/devices') await devicesPage();
    else if ((m = path.match(/^\/ui\/devices\/([^/]+)$/))) await devicePage(decodeURIComponent(m[1]));
    else if (path === '/ui/rollouts') await rolloutsPage();
    else if ((m = path.match(/^\/ui\/rollouts\/([^/]+)$/))) await rolloutPage(decodeURIComponent(m[1]), pageAbort.signal);
    else if (path === '/ui/artifacts') await artifactsPage();
    else setPage(h('h1', {}, 'Not found'));
  } catch (e) {
    if (e.name === 'AbortError' || e.status === 401) return;
    setPage(h('h1', {}, 'Error'), h('p', { class: 'error', role: 'alert' }, e.message));
  }
}

// Fleet overview: counts by hardware, firmware and online state, and a chart of versions.
async function fleetPage() {
  const [devices, rollouts] = await Promise.all([all('/devices'), all('/rollouts', 200)]);
  const online = devices.filter((d) => d.online).length;
  const by = (key) => {
    const m = new Map();
    for (const d of devices) m.set(key(d), (m.get(key(d)) || 0) + 1);
    return [...m.entries()].sort((a, b) => b[1] - a[1]);
  };
  const hardware = by((d) => d.hardware);
  const firmware = by((d) => (d.firmware ? installed(d.firmware) : 'none reported'));
  const active = rollouts.filter((r) => !finishedState(r.state));
  setPage(
    h('h1', {}, 'Fleet'),
    h('div', { class: 'stats' },
      stat('devices', devices.length), stat('online', online), stat('offline', devices.length - online),
      stat('active rollouts', active.length)),
    h('div', { class: 'grid' },
      h('section', { class: 'card' }, h('h2', {}, 'Firmware versions'),
        barChart(firmware, 'Devices by firmware version'),
        table(['firmware', 'devices'], firmware.map(([k, n]) => [k, n]))),
      h('section', { class: 'card' }, h('h2', {}, 'Hardware'),
        table(['hardware', 'devices', 'online'], hardware.map(([k, n]) =>
          [k, n, devices.filter((d) => d.hardware === k && d.online).length]))),
      h('section', { class: 'card' }, h('h2', {}, 'Online'),
        progressBar('devices online', devices.length ? (100 * online) / devices.length : 0),
        h('p', {}, `${online} of ${devices.length} devices online`))),
    h('section', { class: 'card' }, h('h2', {}, 'Active rollouts'), rolloutTable(active)));
}

function stat(label, value) {
  return h('div', { class: 'stat' }, h('span', { class: 'value' }, value), h('span', { class: 'name' }, label));
}

/** A horizontal bar chart in inline SVG: [label, value] pairs. */
function barChart(pairs, title) {
  const rows = pairs.slice(0, 12);
  const max = Math.max(1, ...rows.map(([, n]) => n));
  const rowH = 26;
  const width = 420;
  const labelW = 170;
  const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${Math.max(rowH, rows.length * rowH)}`,
    role: 'img', 'aria-label': title }, svg('title', {}, title));
  rows.forEach(([label, n], i) => {
    const w = Math.max(2, ((width - labelW - 40) * n) / max);
    chart.append(
      svg('text', { x: 0, y: i * rowH + 17, class: 'axis' }, label.length > 24 ? `${label.slice(0, 23)}…` : label),
      svg('rect', { x: labelW, y: i * rowH + 4, width: w, height: rowH - 8, rx: 3, class: `series s${i % 6}` }),
      svg('text', { x: labelW + w + 6, y: i * rowH + 17, class: 'axis' }, n));
  });
  return chart;
}

// Devices: the whole inventory, searched and paged in the browser.
async function devicesPage() {
  const devices = await all('/devices');
  const pageSize = 25;
  let page = 0;
  const search = h('input', { type: 'search', name: 'q', placeholder: 'Search id, hardware, label, firmware…',
    'aria-label': 'search devices' });
  const online = h('select', { 'aria-label': 'online filter' },
    h('option', { value: '' }, 'online and offline'), h('option', { value: 'online' }, 'online'),
    h('option', { value: 'offline' }, 'offline'));
  const body = h('div');
  const pager = h('div', { class: 'pager' });
  const text = (d) => [d.id, d.hardware, installed(d.firmware), installed(d.config),
    ...Object.entries(d.labels || {}).map(([k, v]) => `${k}=${v}`)].join(' ').toLowerCase();
  const render = () => {
    const q = search.value.trim().toLowerCase();
    const shown = devices.filter((d) => (!q || q.split(/\s+/).every((w) => text(d).includes(w)))
      && (!online.value || (online.value === 'online') === d.online));
    const pages = Math.max(1, Math.ceil(shown.length / pageSize));
    page = Math.min(page, pages - 1);
    const rows = shown.slice(page * pageSize, (page + 1) * pageSize).map((d) => [
      link(`/ui/devices/${enc(d.id)}`, d.id), d.hardware, labels(d.labels), installed(d.firmware),
      installed(d.config), d.online ? badge('online') : badge('offline'), when(d.last_seen),
      d.rollout ? link(`/ui/rollouts/${enc(d.rollout.id)}`, `${d.rollout.id} (${d.rollout.state})`) : '—']);
    body.replaceChildren(table(['id', 'hardware', 'labels', 'firmware', 'config', 'online', 'last seen',
      'current rollout'], rows));
    pager.replaceChildren(
      h('button', { type: 'button', disabled: page === 0, onclick: () => { page -= 1; render(); } }, 'Previous'),
      h('span', {}, `page ${page + 1} of ${pages} · ${shown.length} of ${devices.length} devices`),
      h('button', { type: 'button', disabled: page >= pages - 1, onclick: () => { page += 1; render(); } }, 'Next'));
  };
  search.addEventListener('input', () => { page = 0; render(); });
  online.addEventListener('change', () => { page = 0; render(); });
  render();
  setPage(h('h1', {}, 'Devices'), h('div', { class: 'toolbar' }, search, online), body, pager);
}

// One device: its record, the rollouts it was in (newest 50 rollouts) and its audit entries.
async function devicePage(id) {
  const device = await api(`/devices/${enc(id)}`);
  setPage(h('h1', {}, `Device ${device.id}`), deviceFacts(device), h('p', { class: 'muted' }, 'Loading history…'));
  const [rollouts, audit] = await Promise.all([all('/rollouts', 50), all('/audit', 1000)]);
  const inRollouts = [];
  await Promise.all(rollouts.slice(0, 50).map(async (r) => {
    const entries = await all(`/rollouts/${enc(r.id)}/devices`, 10000);
    const e = entries.find((x) => x.device_id === id);
    if (e) inRollouts.push([r, e]);
  }));
  inRollouts.sort((a, b) => (a[0].created_at < b[0].created_at ? 1 : -1));
  const mine = audit.filter((a) => a.target === id || JSON.stringify(a.details || {}).includes(`"${id}"`));
  setPage(
    h('h1', {}, `Device ${device.id}`), deviceFacts(device),
    h('section', { class: 'card' }, h('h2', {}, 'Rollouts'),
      table(['rollout', 'artifact', 'rollout state', 'device state', 'reason', 'attempts', 'wave', 'updated'],
        inRollouts.map(([r, e]) => [link(`/ui/rollouts/${enc(r.id)}`, r.id), artifactName(r), badge(r.state),
          badge(e.state), e.reason || '—', e.attempts, e.wave + 1, when(e.updated_at)]))),
    h('section', { class: 'card' }, h('h2', {}, 'Audit'),
      table(['at', 'actor', 'action', 'details'], mine.map((a) => [when(a.at), a.actor, a.action,
        h('code', {}, JSON.stringify(a.details))]))));
}

function deviceFacts(d) {
  const facts = [['hardware', d.hardware], ['labels', labels(d.labels)], ['firmware', installed(d.firmware)],
    ['firmware sha256', shortHash(d.firmware?.sha256)], ['config', installed(d.config)],
    ['online', d.online ? badge('online') : badge('offline')], ['last seen', when(d.last_seen)],
    ['current rollout', d.rollout ? link(`/ui/rollouts/${enc(d.rollout.id)}`, `${d.rollout.id} (${d.rollout.state})`) : '—'],
    ['registered', when(d.created_at)]];
  return h('dl', { class: 'facts card' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

const artifactName = (r) => (r.artifact ? `${r.artifact.kind} ${r.artifact.name} ${r.artifact.version}` : r.artifact_id);

function rolloutTable(rollouts) {
  return table(['rollout', 'artifact', 'state', 'devices', 'progress', 'created'], rollouts.map((r) => [
    link(`/ui/rollouts/${enc(r.id)}`, r.id), artifactName(r),
    h('span', {}, badge(r.state), r.reason ? ` ${r.reason}` : ''), r.total,
    progressBar(`progress of ${r.id}`, percentDone(r.counts, r.total, finishedState(r.state))), when(r.created_at)]));
}

// Rollouts: the list, and (for admin tokens) the create form with its dry run.
async function rolloutsPage() {
  const rollouts = await all('/rollouts', 500);
  const parts = [h('h1', {}, 'Rollouts'), h('section', { class: 'card' }, rolloutTable(rollouts))];
  if (isAdmin()) parts.push(await createForm());
  setPage(parts);
}

async function createForm() {
  const [firmware, configs] = await Promise.all([all('/firmware', 1000), all('/configs', 1000)]);
  const artifact = h('select', { id: 'artifact', name: 'artifact', required: true },
    h('optgroup', { label: 'firmware' }, firmware.map((a) =>
      h('option', { value: `firmware:${a.id}` }, `${a.name} ${a.version} (${a.hardware.join(', ')})`))),
    h('optgroup', { label: 'config' }, configs.map((a) =>
      h('option', { value: `config:${a.id}` }, `${a.name} ${a.version}`))));
  const field = (label, input) => h('label', {}, h('span', {}, label), input);
  const devices = h('input', { name: 'devices', placeholder: 'dev-1, dev-2' });
  const hardware = h('input', { name: 'hardware', placeholder: 'rpi4' });
  const labelsIn = h('input', { name: 'labels', placeholder: 'site=berlin, ring=beta' });
  const waves = h('input', { name: 'waves', value: '100', placeholder: '1, 10, 50, 100' });
  const gate = h('select', { name: 'wave_gate' }, h('option', { value: 'auto' }, 'auto'),
    h('option', { value: 'manual' }, 'manual (pause after each wave)'));
  const ratio = h('input', { name: 'max_failure_ratio', type: 'number', min: 0, max: 1, step: 0.01, value: 0.1 });
  const minFinished = h('input', { name: 'min_finished', type: 'number', min: 0, step: 1, value: 10 });
  const out = h('div', { class: 'preview', 'aria-live': 'polite' });
  const request = () => {
    if (!artifact.value) throw new Error('upload a signed artifact first (Artifacts)');
    const [kind, id] = artifact.value.split(':');
    const list = (s) => s.split(/[\s,]+/).filter(Boolean);
    const target = devices.value.trim() ? { devices: list(devices.value) } : {
      ...(hardware.value.trim() ? { hardware: hardware.value.trim() } : {}),
      labels: Object.fromEntries(list(labelsIn.value).map((kv) => {
        const at = kv.indexOf('=');
        return at < 0 ? [kv, ''] : [kv.slice(0, at), kv.slice(at + 1)];
      })) };
    return { [kind]: id, target, waves: list(waves.value).map(Number), wave_gate: gate.value,
      max_failure_ratio: Number(ratio.value), min_finished: Number(minFinished.value) };
  };
  const preview = async () => {
    try {
      out.replaceChildren(h('p', { class: 'muted' }, 'Resolving targets…'));
      const plan = await api('/rollouts?dry_run=true', { method: 'POST', body: request() });
      out.replaceChildren(
        h('p', { class: 'plan-summary' }, `${plan.targets.length} target devices, ${plan.already_installed.length} already on it; waves: `,
          plan.waves.map((w) => `${w.percent} % → ${w.size}`).join(', ')),
        h('p', { class: 'targets' }, plan.targets.slice(0, 100).join(', ') + (plan.targets.length > 100 ? ', …' : '')));
    } catch (e) {
      out.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.message));
    }
  };
  const form = h('form', { id: 'create-rollout', method: 'post', class: 'form' },
    field('Artifact', artifact),
    h('fieldset', {}, h('legend', {}, 'Target: device ids, or hardware and labels'),
      field('Devices', devices), field('Hardware', hardware), field('Labels', labelsIn)),
    field('Waves (cumulative %)', waves), field('Wave gate', gate),
    field('Max failure ratio', ratio), field('Min finished', minFinished),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: preview }, 'Preview targets'),
      h('button', { type: 'submit' }, 'Create rollout')),
    out);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const created = await api('/rollouts', { method: 'POST', body: request() });
      history.pushState(null, '', `/ui/rollouts/${enc(created.id)}`);
      await route();
    } catch (e) {
      out.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.message));
    }
  });
  return h('section', { class: 'card' }, h('h2', {}, 'New rollout'), form);
}

// One rollout, live from its event stream.
async function rolloutPage(id, signal) {
  let rollout = await api(`/rollouts/${enc(id)}`);
  const samples = [];
  const overall = progressBar('rollout progress', 0, 'big');
  const title = h('h1', {}, `Rollout ${id}`);
  const status = h('p', { class: 'status', 'aria-live': 'polite' });
  const detail = h('p', { class: 'detail' });
  const controls = h('div', { class: 'actions controls' });
  const waves = h('div', { class: 'waves' });
  const counts = h('div');
  const gate = h('div', { class: 'gate' });
  const chart = h('div');
  const stateFilter = h('select', { 'aria-label': 'device state filter' }, h('option', { value: '' }, 'every state'),
    STATES.map((s) => h('option', { value: s }, s)));
  const devices = h('div');
  const live = h('span', { class: 'live' });
  let entries = [];
  let devicesAt = 0;

  const renderDevices = () => {
    const shown = entries.filter((e) => !stateFilter.value || e.state === stateFilter.value);
    devices.replaceChildren(table(['device', 'state', 'reason', 'health', 'attempts', 'wave', 'sent', 'updated'],
      shown.slice(0, 500).map((e) => [link(`/ui/devices/${enc(e.device_id)}`, e.device_id), badge(e.state),
        e.reason || '—', e.health || '—', e.attempts, e.wave + 1, when(e.sent_at), when(e.updated_at)])));
  };
  stateFilter.addEventListener('change', renderDevices);
  const loadDevices = async (force) => {
    if (!force && Date.now() - devicesAt < 2000) return;
    devicesAt = Date.now();
    entries = await all(`/rollouts/${enc(id)}/devices`, 10000);
    renderDevices();
  };

  const control = async (action) => {
    try {
      rollout = await api(`/rollouts/${enc(id)}/${action}`, { method: 'POST' });
      render();
    } catch (e) {
      detail.textContent = `${action} failed: ${e.message}`;
    }
  };

  const render = () => {
    const r = rollout;
    const done = percentDone(r.counts, r.total, finishedState(r.state));
    setProgress(overall, done);
    const last = samples[samples.length - 1];
    if (!last || last[1] !== done || Date.now() - last[0] > 5000) samples.push([Date.now(), done]);
    status.replaceChildren(badge(r.state), r.reason ? ` paused: ${r.reason}` : '',
      ` · ${artifactName(r)} · ${r.total} devices · wave ${r.current_wave + 1} of ${r.waves.length}`,
      r.window ? ` · maintenance window ${r.window}` : '');
    detail.textContent = r.pause_detail || '';
    controls.replaceChildren();
    if (isAdmin() && !finishedState(r.state)) {
      if (r.state === 'running' || r.state === 'scheduled') {
        controls.append(h('button', { type: 'button', onclick: () => control('pause') }, 'Pause'));
      }
      if (r.state === 'paused') {
        controls.append(h('button', { type: 'button', onclick: () => control('resume') }, 'Resume'));
        // A manual wave gate: resuming is what starts the next wave (current_wave already
        // names it); say so on a button of its own.
        if (r.reason === 'wave_gate') {
          controls.append(h('button', { type: 'button', class: 'secondary', title: 'Resume: starts the next wave',
            onclick: () => control('resume') }, `Next wave (${r.current_wave + 1} of ${r.waves.length})`));
        }
      }
      controls.append(h('button', { type: 'button', class: 'danger', onclick: () => {
        if (window.confirm(`Cancel rollout ${id}?`)) control('cancel');
      } }, 'Cancel'));
    }
    waves.replaceChildren(...r.waves.map((w, i) => h('div', { class: 'wave' },
      h('span', {}, `wave ${i + 1}: ${w.percent} % · ${w.size} devices · `, badge(w.state)),
      progressBar(`wave ${i + 1} progress`, percentDone(w.counts, w.size, w.state === 'completed')))));
    counts.replaceChildren(table(['state', 'devices'], Object.entries(r.counts).map(([s, n]) => [badge(s), n])),
      Object.keys(r.health || {}).length ? table(['health', 'devices'], Object.entries(r.health)) : '');
    const ratio = failureRatio(r.counts);
    const max = r.options.max_failure_ratio;
    gate.replaceChildren(
      h('p', {}, `failure ratio ${(100 * ratio).toFixed(1)} % of the gate's ${(100 * max).toFixed(1)} %`,
        ` (judged once ${r.options.min_finished} are final; ${sum(r.counts, FINAL)} are)`),
      progressBar('failure ratio against the gate', max > 0 ? (100 * ratio) / max : 0,
        ratio > max ? 'bad' : 'warn'));
    chart.replaceChildren(lineChart(samples, 'Rollout progress over time'));
  };

  setPage(title, status, h('section', { class: 'card' }, overall, detail, controls, live),
    h('div', { class: 'grid' },
      h('section', { class: 'card' }, h('h2', {}, 'Waves'), waves),
      h('section', { class: 'card' }, h('h2', {}, 'Devices by state'), counts),
      h('section', { class: 'card' }, h('h2', {}, 'Failure gate'), gate),
      h('section', { class: 'card' }, h('h2', {}, 'Progress over time'), chart)),
    h('section', { class: 'card' }, h('h2', {}, 'Devices'), stateFilter, devices));
  render();
  await loadDevices(true);

  // Follow the stream; reconnect while the rollout can still change.
  (async () => {
    while (!signal.aborted) {
      try {
        live.textContent = 'live';
        await sse(`/rollouts/${enc(id)}/events`, (name, data) => {
          if (name !== 'rollout') return;
          rollout = JSON.parse(data);
          render();
          loadDevices(finishedState(rollout.state)).catch(() => {});
        }, signal);
      } catch (e) {
        if (signal.aborted || e.status === 401) return;
        if (e.status === 404) { live.textContent = 'this rollout no longer exists'; return; }
      }
      live.textContent = finishedState(rollout.state) ? 'finished' : 'reconnecting…';
      if (finishedState(rollout.state)) return;
      await new Promise((resolve) => { setTimeout(resolve, 2000); });
    }
  })();
}

/** A line chart in inline SVG of [time ms, percent] samples. */
function lineChart(samples, title) {
  const width = 420;
  const height = 160;
  const pad = 28;
  const el = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title },
    svg('title', {}, title));
  for (const p of [0, 50, 100]) {
    const y = height - pad - ((height - 2 * pad) * p) / 100;
    el.append(svg('line', { x1: pad, x2: width - 8, y1: y, y2: y, class: 'grid-line' }),
      svg('text', { x: 0, y: y + 4, class: 'axis' }, `${p}%`));
  }
  if (samples.length) {
    const t0 = samples[0][0];
    const span = Math.max(1000, samples[samples.length - 1][0] - t0);
    const pts = samples.map(([t, p]) => [pad + ((width - pad - 8) * (t - t0)) / span,
      height - pad - ((height - 2 * pad) * p) / 100]);
    if (pts.length === 1) pts.push([width - 8, pts[0][1]]);
    el.append(svg('polyline', { points: pts.map((p) => p.join(',')).join(' '), class: 'line' }),
      svg('text', { x: pad, y: height - 6, class: 'axis' }, 'since this page opened'),
      svg('text', { x: width - 80, y: height - 6, class: 'axis' }, `${Math.round(span / 1000)} s`));
  }
  return el;
}

// Artifacts, keys and tokens; upload of an already signed artifact.
async function artifactsPage() {
  const [firmware, configs, rollouts, keys, tokens] = await Promise.all([all('/firmware'), all('/configs'),
    all('/rollouts', 2000), all('/keys'), all('/tokens')]);
  const users = new Map();
  for (const r of rollouts) users.set(r.artifact_id, [...(users.get(r.artifact_id) || []), r.id]);
  const keyNames = new Map(keys.map((k) => [k.keyid, k.name]));
  const list = (items) => table(['name', 'version', 'hardware', 'size', 'sha256', 'signers', 'rollouts', 'uploaded'],
    items.map((a) => [a.name, a.version, a.hardware.join(', ') || '—', bytes(a.size), shortHash(a.sha256),
      a.signers.map((s) => keyNames.get(s) || s.slice(0, 12)).join(', '),
      (users.get(a.id) || []).map((rid) => [link(`/ui/rollouts/${enc(rid)}`, rid), ' ']), when(a.created_at)]));
  setPage(
    h('h1', {}, 'Artifacts'),
    isAdmin() ? uploadForm() : null,
    h('section', { class: 'card' }, h('h2', {}, 'Firmware'), list(firmware)),
    h('section', { class: 'card' }, h('h2', {}, 'Configurations'), list(configs)),
    h('section', { class: 'card' }, h('h2', {}, 'Release keys'),
      table(['name', 'keyid', 'registered', 'revoked'], keys.map((k) => [k.name, shortHash(k.keyid),
        when(k.created_at), k.revoked_at ? when(k.revoked_at) : '—']))),
    h('section', { class: 'card' }, h('h2', {}, 'Operator tokens'),
      table(['name', 'scope', 'created'], tokens.map((t) => [t.name, badge(t.scope), when(t.created_at)]))));
}

function uploadForm() {
  const kind = h('select', { name: 'kind' }, h('option', { value: 'firmware' }, 'firmware'),
    h('option', { value: 'configs' }, 'config'));
  const envelope = h('input', { type: 'file', name: 'envelope', accept: '.json,application/json', required: true });
  const file = h('input', { type: 'file', name: 'file', required: true });
  const bar = progressBar('upload progress', 0);
  const out = h('p', { role: 'status' });
  const form = h('form', { id: 'upload', method: 'post', class: 'form' },
    h('label', {}, h('span', {}, 'Kind'), kind),
    h('label', {}, h('span', {}, 'Signed envelope (DSSE JSON)'), envelope),
    h('label', {}, h('span', {}, 'Artifact file'), file),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Upload')), bar, out);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData();
    data.append('envelope', envelope.files[0], 'envelope.json');
    data.append('file', file.files[0], file.files[0].name);
    // XMLHttpRequest, because fetch() reports no upload progress.
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${API}/${kind.value}`);
    xhr.setRequestHeader('Authorization', `Bearer ${session.token}`);
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) setProgress(bar, (100 * e.loaded) / e.total);
    });
    xhr.addEventListener('load', () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 201) {
        setProgress(bar, 100);
        out.textContent = `Uploaded ${body.name} ${body.version}.`;
        setTimeout(() => route(), 800);
      } else {
        out.textContent = `Refused (${xhr.status}): ${body?.detail || body?.title || xhr.statusText}`;
      }
    });
    xhr.addEventListener('error', () => { out.textContent = 'Upload failed: network error'; });
    out.textContent = 'Uploading…';
    xhr.send(data);
  });
  return h('section', { class: 'card' }, h('h2', {}, 'Upload a signed artifact'), form);
}

// ---- start ----

document.addEventListener('click', (event) => {
  // Same-origin dashboard links render without a reload (the token stays in this tab).
  const a = event.target.closest('a[href^="/ui/"]');
  if (!a || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0 || !session.token) return;
  event.preventDefault();
  history.pushState(null, '', a.getAttribute('href'));
  route();
});
window.addEventListener('popstate', () => { if (session.token) route(); });

async function start() {
  $('#sign-in-form').addEventListener('submit', signIn);
  $('#sign-out').addEventListener('click', () => signOut(''));
  if (!session.token) { showSignIn(); return; }
  try {
    await whoami();
    await route();
  } catch (e) {
    if (e.status !== 401) signOut(e.status === 403 ? 'That token is not an operator token.' : e.message);
  }
}

start();
