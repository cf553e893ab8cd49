// The Hodei dashboard: plain JS on the edge's REST/JSON API (/v1). Log text
// is only ever set as textContent (never HTML); the API key is asked once
// and kept in sessionStorage.
'use strict';

const main = document.getElementById('main');
let stopView = () => {};

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k);
  return e;
}

function key() { return sessionStorage.getItem('hodei.key') || ''; }

function askKey() {
  const dlg = document.getElementById('keydlg');
  if (!dlg.open) dlg.showModal();
  return new Promise((resolve) => {
    document.getElementById('keyform').onsubmit = () => {
      sessionStorage.setItem('hodei.key', document.getElementById('keyinput').value.trim());
      resolve();
    };
  });
}

async function api(method, path, body) {
  for (;;) {
    const r = await fetch(path, {
      method,
      headers: Object.assign({ Authorization: 'Bearer ' + key() },
        body ? { 'Content-Type': 'application/json' } : {}),
      body: body ? JSON.stringify(body) : undefined,
    });
    if (r.status === 401) { await askKey(); continue; }
    const data = await r.json();
    if (!r.ok) throw new Error(data.message || r.statusText);
    return data;
  }
}

const short = (s) => (s || '').replace(/^(JOB|WORKER|LOG_STREAM|PROVIDER_TYPE)_(STATE_)?/, '');
const time = (t) => (t && t.seconds ? new Date(Number(t.seconds) * 1000 + (t.nanos || 0) / 1e6) : null);
const fmt = (t) => { const d = time(t); return d ? d.toLocaleString() : '—'; };
const ms = (a, b) => { const x = time(a), y = time(b); return x && y ? ((y - x) / 1000).toFixed(2) + ' s' : '—'; };
const b64 = (s) => { try { return new TextDecoder().decode(Uint8Array.from(atob(s || ''), (c) => c.charCodeAt(0))); } catch { return ''; } };

// ANSI SGR colours as spans with classes; text always through textContent.
function ansiAppend(parent, text, extraClass) {
  const re = /\x1b\[([0-9;]*)m/g;
  let last = 0, cls = [], m;
  const put = (s) => { if (!s) return; const sp = document.createElement('span');
    sp.textContent = s; const c = cls.concat(extraClass ? [extraClass] : []);
    if (c.length) sp.className = c.join(' '); parent.append(sp); };
  while ((m = re.exec(text))) {
    put(text.slice(last, m.index));
    for (const n of (m[1] || '0').split(';').map(Number)) {
      if (n === 0) cls = [];
      else if (n === 1 || (n >= 30 && n <= 37)) cls.push('ansi-' + n);
      else if (n >= 90 && n <= 97) cls.push('ansi-' + (n - 60));
    }
    last = re.lastIndex;
  }
  put(text.slice(last).replace(/\x1b\[[0-9;]*[A-Za-z]/g, ''));
  parent.append('\n');
}

function showError(e) { main.append(el('p', { class: 'msg', role: 'alert' }, String(e.message || e))); }

// ---------------------------------------------------------------- jobs
async function jobsView(params) {
  const state = params.get('state') || '';
  const filter = el('select', { id: 'statefilter', 'aria-label': 'State' },
    ['', 'PENDING', 'ASSIGNED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMEOUT']
      .map((s) => el('option', { value: s, selected: s === state }, s || 'all states')));
  filter.onchange = () => { location.hash = '#/jobs' + (filter.value ? '?state=' + filter.value : ''); };
  const name = el('input', { id: 'jobname', name: 'name', value: 'from the dashboard' });
  const cmd = el('input', { id: 'jobcmd', name: 'command', value: 'sh', required: true });
  const args = el('input', { id: 'jobargs', name: 'args', size: 40, value: '-c "echo hello; date"' });
  const msg = el('p', { role: 'status' });
  const form = el('form', { class: 'inline', id: 'queueform', 'aria-label': 'Queue a job' },
    el('label', {}, 'Name', name), el('label', {}, 'Command', cmd),
    el('label', {}, 'Arguments', args), el('button', { type: 'submit' }, 'Queue job'));
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('POST', '/v1/jobs', { spec: { name: name.value,
        command: { command: cmd.value, args: splitArgs(args.value) } } });
      location.hash = '#/jobs/' + r.jobId;
    } catch (e) { msg.textContent = e.message; msg.className = 'msg'; }
  };
  const tbody = el('tbody');
  main.replaceChildren(el('h1', {}, 'Jobs'), form, msg, el('p', {}, filter),
    el('table', { id: 'jobs' }, el('thead', {}, el('tr', {}, ['Job', 'Name', 'State', 'Attempt',
      'Created', 'Took'].map((h) => el('th', { scope: 'col' }, h)))), tbody));
  async function refresh() {
    const q = state ? '?state=JOB_STATE_' + state + '&pageSize=100' : '?pageSize=100';
    const r = await api('GET', '/v1/jobs' + q);
    tbody.replaceChildren(...(r.jobs || []).map((j) => el('tr', { 'data-id': j.id },
      el('td', {}, el('a', { href: '#/jobs/' + j.id }, el('code', {}, j.id))),
      el('td', {}, (j.spec && j.spec.name) || ''),
      el('td', { class: 'state ' + short(j.state) }, short(j.state)),
      el('td', {}, String(j.attempt || 0)), el('td', {}, fmt(j.createdAt)),
      el('td', {}, ms(j.startedAt, j.finishedAt)))));
  }
  await refresh();
  const t = setInterval(() => refresh().catch(() => {}), 2000);
  return () => clearInterval(t);
}

function splitArgs(s) {
  const out = []; let cur = null, q = null;
  for (const c of s) {
    if (q) { if (c === q) q = null; else cur += c; continue; }
    if (c === '"' || c === "'") { q = c; cur = cur || ''; continue; }
    if (/\s/.test(c)) { if (cur !== null) out.push(cur); cur = null; continue; }
    cur = (cur || '') + c;
  }
  if (cur !== null) out.push(cur);
  return out;
}

async function jobView(id) {
  const r = await api('GET', '/v1/jobs/' + encodeURIComponent(id));
  const j = r.job;
  const st = el('span', { id: 'jobstate', class: 'state ' + short(j.state) }, short(j.state));
  const cancel = el('button', { type: 'button', id: 'cancel' }, 'Cancel job');
  cancel.onclick = async () => { try { await api('POST', '/v1/jobs/' + id + ':cancel', { reason: 'from the dashboard' }); } catch (e) { showError(e); } };
  const log = el('pre', { class: 'log', id: 'log', 'aria-label': 'Output', tabindex: 0 });
  const kv = el('dl', { class: 'kv' });
  const fill = (x) => (cancel.hidden = ['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMEOUT'].includes(short(x.state)), kv.replaceChildren(
    el('dt', {}, 'State'), el('dd', {}, st), el('dt', {}, 'Attempt'), el('dd', {}, (x.attempt || 0) + ' of ' + (x.maxAttempts || 1)),
    el('dt', {}, 'Worker'), el('dd', {}, x.workerId || '—'), el('dt', {}, 'Created'), el('dd', {}, fmt(x.createdAt)),
    el('dt', {}, 'Started'), el('dd', {}, fmt(x.startedAt)), el('dt', {}, 'Finished'), el('dd', {}, fmt(x.finishedAt)),
    el('dt', {}, 'Run time'), el('dd', {}, ms(x.startedAt, x.finishedAt)),
    el('dt', {}, 'Error'), el('dd', {}, x.error || '—')));
  fill(j);
  const spec = el('pre', {}); spec.textContent = JSON.stringify(j.spec, null, 2);
  main.replaceChildren(el('h1', {}, 'Job ', el('code', {}, id)), kv, cancel,
    el('h2', {}, 'Output'), log, el('details', {}, el('summary', {}, 'Spec'), spec));
  const ctl = new AbortController();
  followLogs(id, log, ctl.signal).catch(() => {});
  const t = setInterval(async () => {
    try { const x = (await api('GET', '/v1/jobs/' + id)).job; st.textContent = short(x.state);
      st.className = 'state ' + short(x.state); fill(x); } catch { /* next time */ }
  }, 1000);
  return () => { clearInterval(t); ctl.abort(); };
}

// Server-Sent Events read with fetch (so the key goes in a header, not the URL).
async function followLogs(id, pre, signal) {
  let last = 0;
  while (!signal.aborted) {
    const r = await fetch('/v1/jobs/' + id + '/logs:follow', { signal,
      headers: Object.assign({ Authorization: 'Bearer ' + key() }, last ? { 'Last-Event-ID': String(last) } : {}) });
    if (!r.ok) { pre.append((await r.json()).message + '\n'); return; }
    const rd = r.body.getReader(), dec = new TextDecoder();
    let buf = '', ended = false;
    for (;;) {
      const { value, done } = await rd.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, i); buf = buf.slice(i + 2);
        if (/^event: end/m.test(ev)) { ended = true; continue; }
        const data = ev.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (!data) continue;
        const c = JSON.parse(data);
        for (const ln of c.lines || []) {
          last = Number(ln.sequence);
          ansiAppend(pre, b64(ln.data), ln.stream === 'LOG_STREAM_STDERR' ? 'stderr' : '');
        }
        pre.scrollTop = pre.scrollHeight;
      }
    }
    if (ended) return;
    await new Promise((res) => setTimeout(res, 1000));
  }
}

// ---------------------------------------------------------------- workers, providers
async function workersView() {
  const tbody = el('tbody');
  main.replaceChildren(el('h1', {}, 'Workers'), el('table', { id: 'workers' }, el('thead', {},
    el('tr', {}, ['Worker', 'Provider', 'State', 'Host', 'CPU', 'Memory', 'Last heartbeat']
      .map((h) => el('th', { scope: 'col' }, h)))), tbody));
  async function refresh() {
    const [r, snap] = await Promise.all([api('GET', '/v1/workers'), metricsSnapshot()]);
    const used = new Map(((snap && snap.workers) || []).map((u) => [u.workerId, u]));
    tbody.replaceChildren(...(r.workers || []).map((w) => el('tr', { 'data-id': w.id },
      el('td', {}, el('code', {}, w.id)), el('td', {}, w.provider || ''),
      el('td', { class: 'state ' + short(w.state) }, short(w.state)), el('td', {}, w.hostname || ''),
      el('td', { class: 'cpu' }, usage(w, used.get(w.id), 'cpu')),
      el('td', { class: 'mem' }, usage(w, used.get(w.id), 'mem')), el('td', {}, fmt(w.lastHeartbeat)))));
  }
  await refresh();
  const t = setInterval(() => refresh().catch(() => {}), 2000);
  return () => clearInterval(t);
}

// The live workers' usage from their last heartbeats: the first snapshot of
// MetricsService.StreamMetrics (GET /v1/metrics:stream), then the stream is closed.
async function metricsSnapshot() {
  const ctl = new AbortController();
  try {
    const r = await fetch('/v1/metrics:stream?intervalMs=1000', { signal: ctl.signal,
      headers: { Authorization: 'Bearer ' + key() } });
    if (!r.ok) return null;
    const rd = r.body.getReader(), dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await rd.read();
      if (done) return null;
      buf += dec.decode(value, { stream: true });
      const i = buf.indexOf('\n\n');
      if (i < 0) continue;
      const data = buf.slice(0, i).split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (data) return JSON.parse(data);
      buf = buf.slice(i + 2);
    }
  } catch { return null; } finally { ctl.abort(); }
}

// "0.12 of 2 cores", "0.3 of 23.5 GiB": used (last heartbeat) of capacity.
function usage(w, u, what) {
  const c = w.capacity || {};
  if (what === 'cpu') return (u ? Number(u.cpuCoresUsed || 0).toFixed(2) + ' of ' : '') + (c.cpuCores || 0) + ' cores';
  const gib = (x) => (Number(x || 0) / 2 ** 30).toFixed(1) + ' GiB';
  return (u ? gib(u.memoryBytesUsed) + ' of ' : '') + gib(u && Number(u.memoryBytesTotal) ? u.memoryBytesTotal : c.memoryBytes);
}

async function providersView() {
  const r = await api('GET', '/v1/providers');
  const tbody = el('tbody');
  main.replaceChildren(el('h1', {}, 'Providers'), el('table', { id: 'providers' }, el('thead', {},
    el('tr', {}, ['Provider', 'Type', 'Enabled', 'Pool (min / max)', 'Workers', 'Health']
      .map((h) => el('th', { scope: 'col' }, h)))), tbody));
  for (const p of r.providers || []) {
    const health = el('td', {}, '…'), workers = el('td', {}, '…');
    tbody.append(el('tr', {}, el('td', {}, p.name), el('td', {}, short(p.type)),
      el('td', {}, p.enabled ? 'yes' : 'no'), el('td', {}, (p.minWorkers || 0) + ' / ' + (p.maxWorkers || 0)),
      workers, health));
    api('GET', '/v1/providers/' + encodeURIComponent(p.name) + '/health').then((h) => {
      health.textContent = (h.healthy ? 'healthy' : 'unhealthy') + (h.message ? ': ' + h.message : '');
      health.className = h.healthy ? 'healthy' : 'unhealthy';
      workers.textContent = String(h.workers || 0);
    }).catch((e) => { health.textContent = e.message; health.className = 'error'; });
  }
  return () => {};
}

// ---------------------------------------------------------------- metrics
function chart(title, points) {
  const w = 560, h = 160, max = Math.max(1, ...points.map((p) => p[1]));
  const n = Math.max(1, points.length - 1);
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'chart'); svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('role', 'img'); svg.setAttribute('aria-label', `${title}: max ${max}`);
  const pl = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  pl.setAttribute('points', points.map((p, i) => `${(i / n) * (w - 10) + 5},${h - 5 - (p[1] / max) * (h - 20)}`).join(' '));
  svg.append(pl);
  return el('figure', {}, svg, el('figcaption', {}, `${title} (last hour, max ${max})`));
}

async function metricsView() {
  async function refresh() {
    const r = await api('GET', '/v1/metrics?windowMs=3600000');
    const s = r.series || [];
    const depth = s.map((b) => [b.start, Math.max(0, Number(b.jobsPending || 0))]);
    const thr = s.map((b) => [b.start, Number(b.jobsSucceeded || 0) + Number(b.jobsFailed || 0) + Number(b.jobsCancelled || 0)]);
    // JobStateCount's count is `jobs` (proto3 JSON: an int64 is a string, a zero is left out).
    const by = el('dl', { class: 'kv', id: 'bystate' }, (r.jobsByState || []).flatMap((c) => [el('dt', {}, short(c.state)), el('dd', {}, String(Number(c.jobs || 0)))]));
    main.replaceChildren(el('h1', {}, 'Metrics'), el('div', { class: 'charts' },
      chart('Queue depth (pending jobs)', depth), chart('Throughput (jobs ended per bucket)', thr)),
      el('h2', {}, 'Jobs by state'), by);
  }
  await refresh();
  const t = setInterval(() => refresh().catch(() => {}), 10000);
  return () => clearInterval(t);
}

// ---------------------------------------------------------------- routing
async function route() {
  stopView();
  stopView = () => {};
  const [path, query] = (location.hash.slice(1) || '/jobs').split('?');
  const params = new URLSearchParams(query || '');
  for (const a of document.querySelectorAll('header nav a'))
    a.toggleAttribute('aria-current', path.startsWith(a.getAttribute('href').slice(1)));
  for (const a of document.querySelectorAll('header nav a[aria-current]')) a.setAttribute('aria-current', 'page');
  try {
    if (!key()) await askKey();
    const m = path.match(/^\/jobs\/([^/]+)$/);
    if (m) stopView = await jobView(decodeURIComponent(m[1]));
    else if (path === '/workers') stopView = await workersView();
    else if (path === '/providers') stopView = await providersView();
    else if (path === '/metrics') stopView = await metricsView();
    else stopView = await jobsView(params);
    main.setAttribute('data-ready', '1');
  } catch (e) { showError(e); }
}

document.getElementById('logout').onclick = () => { sessionStorage.removeItem('hodei.key'); location.reload(); };
window.addEventListener('hashchange', route);
route();
