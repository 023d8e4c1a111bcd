/* visiond dashboard: plain JavaScript, no build step, no dependencies.
 *
 * Every number on the page comes from the server's JSON API (docs/api.md):
 *   GET /healthz                      health, queue backend, job counts by state
 *   GET /jobs?state&type&limit&offset the job list; DELETE /jobs/{id}, POST /jobs/{id}/requeue
 *   GET /training/sessions[/{id}]     sessions, progress, metrics
 *   GET /models                       the model server's models and statistics
 *   POST /faces + GET /media?path=    faces found in an image, drawn over it
 *   POST /search, GET /duplicates     the library's search and duplicates pages (library.js)
 * A route the server does not have (404 not_found) turns its panel into a "not available"
 * note. When the server wants a token (401) the page asks for it and sends it as
 * "Authorization: Bearer"; it is kept in sessionStorage (this tab) only. */
'use strict';

const STATES = ['queued', 'scheduled', 'started', 'finished', 'failed', 'canceled'];
const FINAL_SESSION = new Set(['succeeded', 'failed', 'canceled']);
const POLL_MS = 2000;
const POLL_IDLE_MS = 6000;
const TOKEN_KEY = 'visiond.token';

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

const app = {
  view: 'jobs',
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  needsToken: false,
  jobs: { state: 'all', type: '', limit: 50, offset: 0, open: new Set() },
  sessions: { selected: null, anyActive: false },
  timer: null,
  busy: false,
  seq: 0,
};

/* ---- the API ------------------------------------------------------------ */

class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
  /* The route does not exist on this server (an older or partial build). */
  get missingRoute() { return this.status === 404 && this.code === 'not_found'; }
}

async function api(method, path, body, opts = {}) {
  const headers = { Accept: opts.raw ? '*/*' : 'application/json' };
  if (app.token) headers.Authorization = `Bearer ${app.token}`;
  const init = { method, headers, cache: 'no-store' };
  if (body instanceof FormData) {
    init.body = body; // multipart: the browser writes its Content-Type
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', `cannot reach the server (${e.message})`);
  }
  if (r.status === 401) {
    askToken(app.token ? 'That token was not accepted.' : '');
    throw new ApiError(401, 'unauthorized', 'a token is needed');
  }
  if (r.ok && opts.raw) return r;
  const type = r.headers.get('Content-Type') || '';
  let data = null;
  if (type.includes('application/json')) {
    try { data = await r.json(); } catch (_) { data = null; }
  }
  if (!r.ok) {
    const e = data && data.error ? data.error : {};
    throw new ApiError(r.status, e.code, e.message || `${method} ${path}: HTTP ${r.status}`);
  }
  return data;
}

/* ---- small DOM helpers -------------------------------------------------- */

function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') n.className = v;
    else if (k === 'text') n.textContent = v;
    else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(n.dataset, v);
    else n.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}

function badge(state) {
  return el('span', { class: 'badge', dataset: { state }, text: state });
}

function progressBar(done, total, state) {
  const wrap = el('div', { class: 'progress' });
  const bar = el('div', { class: 'progress-bar' });
  const frac = total > 0 ? Math.min(1, done / total) : (state === 'succeeded' || state === 'finished' ? 1 : 0);
  bar.style.width = `${(frac * 100).toFixed(1)}%`;
  if (state === 'succeeded' || state === 'finished') bar.classList.add('done');
  if (state === 'failed') bar.classList.add('failed');
  wrap.append(bar);
  return wrap;
}

function stat(label, value, attrs = {}) {
  const v = el('div', { class: `stat-value${typeof value === 'string' && !/^[\d.,%\s–-]+$/.test(value) ? ' text' : ''}`, text: value });
  return el('div', Object.assign({ class: 'stat' }, attrs), el('div', { class: 'stat-label', text: label }), v);
}

const fmtInt = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '–');
const fmtPct = (x) => (typeof x === 'number' ? `${(x * 100).toFixed(1)}%` : '–');
const fmt3 = (x) => (typeof x === 'number' ? x.toFixed(3) : '–');
function fmtMs(x) {
  if (typeof x !== 'number') return '–';
  return x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0);
}

function ago(ms) {
  if (!ms) return '–';
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(ms).toLocaleDateString();
}

function duration(ms) {
  if (typeof ms !== 'number' || ms < 0) return '–';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

function stamp(id) {
  const n = document.getElementById(id);
  if (n) n.textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function notAvailable(id, title, detail) {
  const box = document.getElementById(id);
  box.replaceChildren(el('strong', { text: title }), el('span', { text: detail }));
  box.hidden = false;
}

function banner(text) {
  const b = $('#banner');
  b.textContent = text || '';
  b.hidden = !text;
}

/* ---- token -------------------------------------------------------------- */

function askToken(why) {
  app.needsToken = true;
  const d = $('#token-dialog');
  const e = $('#token-error');
  e.textContent = why || '';
  e.hidden = !why;
  if (!d.open) {
    $('#token-input').value = '';
    d.showModal();
  }
}

function setupToken() {
  $('#token-form').addEventListener('submit', (ev) => {
    const t = $('#token-input').value.trim();
    if (!t) { ev.preventDefault(); return; }
    app.token = t;
    sessionStorage.setItem(TOKEN_KEY, t);
    $('#token-button').hidden = false;
    refreshSoon(0);
  });
  $('#token-dialog').addEventListener('cancel', (ev) => ev.preventDefault());
  $('#token-button').addEventListener('click', () => {
    app.token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    $('#token-button').hidden = true;
    askToken('');
  });
  $('#token-button').hidden = !app.token;
}

/* ---- health (header) ----------------------------------------------------- */

async function refreshHealth() {
  const h = $('#health');
  let data;
  try {
    const r = await fetch('/healthz', { cache: 'no-store' });
    data = await r.json();
  } catch (e) {
    h.dataset.status = 'down';
    $('#health-text').textContent = 'server unreachable';
    return null;
  }
  h.dataset.status = data.status || 'unknown';
  const ms = data.model_server || {};
  let text = data.status === 'ok' ? 'healthy' : data.status;
  if (data.status === 'degraded' && ms.ok === false) text = 'degraded: model server unreachable';
  if (data.status === 'unavailable') text = 'queue unavailable';
  $('#health-text').textContent = text;
  h.title = `GET /healthz: ${data.status}; up ${duration(data.uptime_ms)}`;
  return data;
}

/* ---- jobs ---------------------------------------------------------------- */

function jobsQuery() {
  const j = app.jobs;
  const q = new URLSearchParams({ state: j.state, limit: String(j.limit), offset: String(j.offset) });
  if (j.type) q.set('type', j.type);
  return `/jobs?${q}`;
}

function renderCounts(health) {
  const counts = health && health.queue && health.queue.counts;
  let total = 0;
  for (const s of STATES) {
    const n = counts ? counts[s] || 0 : null;
    const c = $(`.tile-count[data-count="${s}"]`);
    c.textContent = counts ? fmtInt(n) : '–';
    c.classList.toggle('nonzero', !!n);
    if (counts) total += n;
  }
  $('.tile-count[data-count="total"]').textContent = counts ? fmtInt(total) : '–';
  const q = health && health.queue;
  $('#queue-backend').textContent = q && q.backend ? `queue: ${q.backend}` : q && q.error ? `queue: ${q.error}` : '';
  for (const t of $$('.tile')) t.classList.toggle('active', t.dataset.state === app.jobs.state);
}

function jobActions(job) {
  const td = el('td', { class: 'actions' });
  if (job.state === 'failed' || job.state === 'canceled') {
    td.append(el('button', {
      class: 'btn btn-sm', type: 'button', dataset: { action: 'requeue', id: job.id }, text: 'Requeue',
      title: 'Put it back in the queue with its attempts reset',
    }));
  }
  if (job.state === 'queued' || job.state === 'scheduled' || job.state === 'started') {
    td.append(el('button', {
      class: 'btn btn-sm btn-danger', type: 'button', dataset: { action: 'cancel', id: job.id },
      text: job.state === 'started' ? 'Stop' : 'Cancel',
      title: job.state === 'started' ? 'Cancel it; its worker stops it at the next heartbeat' : 'Cancel it',
    }));
  }
  return td;
}

function jobRow(job) {
  const p = job.progress || {};
  const prog = p.total > 0 ? el('div', { class: 'progress-cell' }, progressBar(p.done, p.total, job.state),
    el('span', { class: 'small muted', text: `${p.done}/${p.total}` })) : el('span', { class: 'muted', text: '–' });
  let ran = job.started_ms ? duration((job.ended_ms || Date.now()) - job.started_ms) : '–';
  if (job.state === 'scheduled' && job.run_at_ms > Date.now()) ran = `starts in ${duration(job.run_at_ms - Date.now()).replace(/ \d+ s$/, '')}`;
  const err = job.error ? el('div', { class: 'error-text', title: job.error, text: job.error }) : '';
  const attempts = `${job.attempts}/${job.max_retries + 1}`;
  const tr = el('tr', { dataset: { jobId: job.id, state: job.state } },
    el('td', {}, el('button', { class: 'job-id', type: 'button', title: `${job.id} (details)`, dataset: { action: 'details', id: job.id }, text: job.id.slice(0, 10) })),
    el('td', { class: 'mono', text: job.type }),
    el('td', {}, badge(job.state), job.cancel_requested && job.state !== 'canceled' ? el('span', { class: 'small muted', text: ' stopping' }) : ''),
    el('td', { class: 'num', text: attempts }),
    el('td', {}, prog),
    el('td', { title: new Date(job.created_ms).toLocaleString(), text: ago(job.created_ms) }),
    el('td', { text: ran }),
    el('td', { class: 'error' }, err),
    jobActions(job));
  return tr;
}

function jobDetail(job) {
  const show = (v) => (v === null || v === undefined ? '–' : JSON.stringify(v, null, 2));
  const info = {
    id: job.id, worker: job.worker, priority: job.priority, timeout_ms: job.timeout_ms,
    created: new Date(job.created_ms).toLocaleString(),
    started: job.started_ms ? new Date(job.started_ms).toLocaleString() : null,
    ended: job.ended_ms ? new Date(job.ended_ms).toLocaleString() : null,
  };
  return el('tr', { class: 'detail', dataset: { detailFor: job.id } }, el('td', { colspan: 9 },
    el('div', { class: 'detail-grid' },
      el('div', {}, el('h4', { text: 'Job' }), el('pre', { text: show(info) })),
      el('div', {}, el('h4', { text: 'Payload' }), el('pre', { text: show(job.payload) })),
      el('div', {}, el('h4', { text: job.error ? 'Error' : 'Result' }), el('pre', { text: job.error ? job.error : show(job.result) })))));
}

async function refreshJobs(health) {
  renderCounts(health);
  let data;
  try {
    data = await api('GET', jobsQuery());
  } catch (e) {
    if (e.status !== 401) banner(`Jobs: ${e.message}`);
    return;
  }
  banner('');
  const body = $('#jobs-body');
  const rows = [];
  const types = new Set();
  for (const job of data.jobs) {
    types.add(job.type);
    rows.push(jobRow(job));
    if (app.jobs.open.has(job.id)) rows.push(jobDetail(job));
  }
  body.replaceChildren(...rows);
  $('#jobs-empty').hidden = data.jobs.length > 0;
  const dl = $('#job-types');
  const known = new Set($$('option', dl).map((o) => o.value));
  for (const t of types) if (!known.has(t)) dl.append(el('option', { value: t }));
  const from = data.jobs.length ? app.jobs.offset + 1 : 0;
  $('#jobs-range').textContent = data.jobs.length ? `jobs ${from}–${app.jobs.offset + data.jobs.length}, newest first` : '';
  $('#jobs-newer').disabled = app.jobs.offset === 0;
  $('#jobs-older').disabled = data.jobs.length < app.jobs.limit;
  stamp('jobs-updated');
}

async function jobAction(action, id, button) {
  button.disabled = true;
  try {
    if (action === 'requeue') await api('POST', `/jobs/${encodeURIComponent(id)}/requeue`);
    else await api('DELETE', `/jobs/${encodeURIComponent(id)}`);
    banner('');
  } catch (e) {
    if (e.status !== 401) banner(`${action === 'requeue' ? 'Requeue' : 'Cancel'} ${id.slice(0, 10)}: ${e.message}`);
  }
  refreshSoon(0);
}

function setupJobs() {
  const j = app.jobs;
  const apply = () => { j.offset = 0; refreshSoon(0); };
  $('#filter-state').addEventListener('change', (e) => { j.state = e.target.value; apply(); });
  $('#filter-limit').addEventListener('change', (e) => { j.limit = Number(e.target.value); apply(); });
  let typing;
  $('#filter-type').addEventListener('input', (e) => {
    clearTimeout(typing);
    typing = setTimeout(() => { j.type = e.target.value.trim(); apply(); }, 250);
  });
  $('#job-filters').addEventListener('submit', (e) => e.preventDefault());
  $('#state-tiles').addEventListener('click', (e) => {
    const t = e.target.closest('.tile');
    if (!t) return;
    j.state = t.dataset.state;
    $('#filter-state').value = j.state;
    apply();
  });
  $('#jobs-newer').addEventListener('click', () => { j.offset = Math.max(0, j.offset - j.limit); refreshSoon(0); });
  $('#jobs-older').addEventListener('click', () => { j.offset += j.limit; refreshSoon(0); });
  $('#jobs-body').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action]');
    if (!b) return;
    const { action, id } = b.dataset;
    if (action === 'details') {
      if (j.open.has(id)) j.open.delete(id); else j.open.add(id);
      refreshSoon(0);
    } else {
      jobAction(action, id, b);
    }
  });
}

/* ---- training sessions ---------------------------------------------------- */

function cvAccuracy(s) {
  return s.metrics && typeof s.metrics.cv_accuracy === 'number' ? s.metrics.cv_accuracy : null;
}

function sessionRow(s) {
  const p = s.progress || {};
  const acc = cvAccuracy(s);
  const tr = el('tr', { dataset: { sessionId: s.id, state: s.state } },
    el('td', {}, el('strong', { text: s.name })),
    el('td', { text: s.kind }),
    el('td', { class: 'mono', text: s.model }),
    el('td', {}, badge(s.state)),
    el('td', {}, el('div', { class: 'progress-cell' }, progressBar(p.done, p.total, s.state),
      el('span', { class: 'small muted', text: p.total ? `${p.done}/${p.total}` : '–' }))),
    el('td', { class: 'num', dataset: { value: acc === null ? '' : String(acc) }, text: fmtPct(acc) }),
    el('td', { title: new Date(s.updated_ms).toLocaleString(), text: ago(s.updated_ms) }));
  if (s.id === app.sessions.selected) tr.classList.add('selected');
  return tr;
}

function heatColor(frac) {
  // white -> indigo; text flips to white on dark cells
  const a = Math.max(0, Math.min(1, frac));
  const r = Math.round(241 + (67 - 241) * a);
  const g = Math.round(245 + (56 - 245) * a);
  const b = Math.round(249 + (202 - 249) * a);
  return { bg: `rgb(${r}, ${g}, ${b})`, fg: a > 0.5 ? '#ffffff' : '#1b2333' };
}

function renderConfusion(labels, confusion) {
  const t = $('#confusion');
  const head = el('tr', {}, el('th', { class: 'axis', text: 'true \\ predicted' }),
    ...labels.map((l) => el('th', { scope: 'col', title: `predicted ${l}`, text: l })));
  const rows = labels.map((l, i) => {
    const row = confusion[i] || [];
    const support = row.reduce((a, b) => a + b, 0);
    return el('tr', {}, el('th', { scope: 'row', title: `true ${l}`, text: l }),
      ...labels.map((p, j) => {
        const n = row[j] || 0;
        const c = heatColor(support ? n / support : 0);
        const td = el('td', {
          class: i === j ? 'diag' : undefined,
          title: `${n} of ${support} "${l}" predicted as "${p}"`,
          dataset: { true: l, pred: p, count: String(n) },
          text: String(n),
        });
        td.style.background = c.bg;
        td.style.color = c.fg;
        return td;
      }));
  });
  t.replaceChildren(el('thead', {}, head), el('tbody', {}, ...rows));
}

function renderSessionDetail(s) {
  const box = $('#session-detail');
  box.hidden = false;
  box.dataset.sessionId = s.id;
  $('#sd-name').textContent = s.name;
  const st = $('#sd-state');
  st.textContent = s.state;
  st.dataset.state = s.state;
  $('#sd-id').textContent = s.id;
  const p = s.progress || {};
  const bar = $('#sd-bar');
  const frac = p.total > 0 ? p.done / p.total : s.state === 'succeeded' ? 1 : 0;
  bar.style.width = `${(Math.min(1, frac) * 100).toFixed(1)}%`;
  bar.classList.toggle('done', s.state === 'succeeded');
  bar.classList.toggle('failed', s.state === 'failed');
  const phase = s.state === 'running' && p.total > 0 && p.done >= p.total ? ' — training the classifier' : '';
  $('#sd-progress').textContent = p.total > 0 ? `${fmtInt(p.done)} of ${fmtInt(p.total)} examples embedded${phase}` : (s.state === 'queued' ? 'waiting for a worker' : '');
  const msg = $('#sd-message');
  msg.textContent = s.message || '';
  msg.hidden = !s.message;

  const m = s.metrics || null;
  const stats = m ? [
    stat('CV accuracy', fmtPct(m.cv_accuracy), { id: 'sd-cv-accuracy', 'data-value': typeof m.cv_accuracy === 'number' ? m.cv_accuracy : '' }),
    stat('Macro F1', fmt3(m.macro_f1)),
    stat('Examples', fmtInt(m.n_examples)),
    stat('Labels', m.labels ? String(m.labels.length) : '–'),
    stat('Algorithm', m.algorithm ? (m.algorithm === 'logreg' && m.C !== undefined ? `logreg, C=${m.C}` : m.algorithm) : '–'),
    stat('Model', `${s.model} (${s.kind})`),
  ] : [
    stat('Examples', fmtInt(p.total)),
    stat('Model', `${s.model} (${s.kind})`),
    stat('Metrics', FINAL_SESSION.has(s.state) ? 'none' : 'when training ends'),
  ];
  if (typeof s.threshold === 'number' && s.threshold > 0) stats.push(stat('Unknown below', fmt3(s.threshold)));
  $('#sd-stats').replaceChildren(...stats);

  const hasCv = m && m.labels && m.confusion && m.per_class;
  $('#sd-metrics').hidden = !hasCv;
  if (hasCv) {
    const rows = m.labels.map((l) => {
      const c = m.per_class[l] || {};
      return el('tr', { dataset: { label: l } }, el('td', { text: l }),
        el('td', { class: 'num', text: fmt3(c.precision) }), el('td', { class: 'num', text: fmt3(c.recall) }),
        el('td', { class: 'num', text: fmt3(c.f1) }), el('td', { class: 'num', text: fmtInt(c.support) }));
    });
    $('#per-class tbody').replaceChildren(...rows);
    renderConfusion(m.labels, m.confusion);
  } else if (m && m.note) {
    msg.textContent = m.note;
    msg.hidden = false;
  }
  const errs = Array.isArray(s.errors) ? s.errors : [];
  $('#sd-errors-wrap').hidden = errs.length === 0;
  $('#sd-errors').replaceChildren(...errs.slice(0, 50).map((e) => el('li', {}, el('span', { class: 'mono', text: e.path }), `: ${e.error}`)));
}

async function refreshTraining() {
  let data;
  try {
    data = await api('GET', '/training/sessions?limit=100');
  } catch (e) {
    if (e.status === 401) return;
    $('#sessions-panel').hidden = true;
    $('#session-detail').hidden = true;
    if (e.missingRoute) notAvailable('training-na', 'Training sessions are not available on this server.', 'GET /training/sessions answered 404: this build of visiond serve has no training routes.');
    else notAvailable('training-na', 'Training sessions could not be loaded.', e.message);
    return;
  }
  $('#training-na').hidden = true;
  $('#sessions-panel').hidden = false;
  const list = data.sessions || [];
  app.sessions.anyActive = list.some((s) => !FINAL_SESSION.has(s.state));
  if (!app.sessions.selected && list.length) app.sessions.selected = list[0].id;
  if (app.sessions.selected && !list.some((s) => s.id === app.sessions.selected)) app.sessions.selected = list.length ? list[0].id : null;
  $('#sessions-body').replaceChildren(...list.map(sessionRow));
  $('#sessions-empty').hidden = list.length > 0;
  if (app.sessions.selected) {
    try {
      renderSessionDetail(await api('GET', `/training/sessions/${encodeURIComponent(app.sessions.selected)}`));
    } catch (e) {
      if (e.status !== 401) $('#session-detail').hidden = true;
    }
  } else {
    $('#session-detail').hidden = true;
  }
  stamp('sessions-updated');
}

function setupTraining() {
  $('#sessions-body').addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-session-id]');
    if (!tr) return;
    app.sessions.selected = tr.dataset.sessionId;
    refreshSoon(0);
  });
}

/* ---- model server ---------------------------------------------------------- */

function modelRow(m) {
  const s = m.stats || {};
  const cell = (key, text) => el('td', { class: 'num', dataset: { stat: key, value: s[key] === undefined ? '' : String(s[key]) }, text });
  const errors = (s.errors || 0) + (s.timeouts || 0) + (s.busy || 0);
  return el('tr', { dataset: { model: m.name, state: m.state } },
    el('td', {}, el('strong', { class: 'mono', text: m.name })),
    el('td', { text: m.task || '–' }),
    el('td', {}, badge(m.state || 'unknown'), m.error ? el('div', { class: 'small error-text', text: m.error }) : ''),
    el('td', { class: 'num', text: m.dim ? String(m.dim) : '–' }),
    cell('requests', fmtInt(s.requests)),
    cell('items', fmtInt(s.items)),
    cell('batches', fmtInt(s.batches)),
    cell('mean_batch', s.batches ? s.mean_batch.toFixed(2) : '–'),
    cell('latency_ms_p50', fmtMs(s.latency_ms_p50)),
    cell('latency_ms_p99', fmtMs(s.latency_ms_p99)),
    el('td', { class: 'num', title: `errors ${s.errors || 0}, timeouts ${s.timeouts || 0}, busy ${s.busy || 0}`, text: fmtInt(errors) }),
    cell('loads', fmtInt(s.loads)));
}

async function refreshModels(health) {
  const ms = health && health.model_server;
  $('#ms-address').textContent = ms && ms.address ? ms.address : '';
  let data;
  try {
    data = await api('GET', '/models');
  } catch (e) {
    if (e.status === 401) return;
    $('#models-panel').hidden = true;
    $('#ms-stats').replaceChildren();
    if (e.missingRoute) notAvailable('models-na', 'Model statistics are not available on this server.', 'GET /models answered 404: this build of visiond serve has no model routes.');
    else if (e.code === 'model_server_unavailable') notAvailable('models-na', 'The model server is not available.', e.message);
    else notAvailable('models-na', 'Model statistics could not be loaded.', e.message);
    return;
  }
  $('#models-na').hidden = true;
  $('#models-panel').hidden = false;
  const models = data.models || [];
  let req = 0, items = 0, batches = 0, ready = 0;
  for (const m of models) {
    const s = m.stats || {};
    req += s.requests || 0; items += s.items || 0; batches += s.batches || 0;
    if (m.state === 'ready') ready++;
  }
  const h = ms && ms.health ? ms.health : null;
  $('#ms-stats').replaceChildren(
    stat('Models', String(models.length), { id: 'ms-models' }),
    stat('Loaded', String(ready)),
    stat('Requests', fmtInt(req), { id: 'ms-requests', 'data-value': String(req) }),
    stat('Items', fmtInt(items)),
    stat('Batches', fmtInt(batches)),
    stat('Mean batch', batches ? (items / batches).toFixed(2) : '–'),
    stat('Health', h ? h.status || 'ok' : ms && ms.ok === false ? 'unreachable' : '–'));
  $('#models-body').replaceChildren(...models.map(modelRow));
  $('#models-empty').hidden = models.length > 0;
  const inv = data.invalid || [];
  $('#models-invalid-wrap').hidden = inv.length === 0;
  $('#models-invalid').replaceChildren(...inv.map((x) => el('li', {}, el('span', { class: 'mono', text: x.file }), `: ${x.error}`)));
  stamp('models-updated');
}

/* ---- faces ------------------------------------------------------------------ */

const FACE_COLORS = ['#22d3ee', '#f472b6', '#a3e635', '#fbbf24', '#c084fc', '#fb7185', '#34d399', '#60a5fa'];

async function loadImage(path) {
  const r = await api('GET', `/media?path=${encodeURIComponent(path)}`, undefined, { raw: true });
  const blob = await r.blob();
  try {
    return await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch (_) {
    throw new ApiError(0, 'undecodable', `the browser cannot display this image (${blob.type || 'unknown type'}); the faces were found, but cannot be drawn`);
  }
}

function drawFaces(img, faces) {
  const canvas = $('#faces-canvas');
  const maxW = 1200;
  const scale = Math.min(1, maxW / img.width);
  canvas.width = Math.round(img.width * scale);
  canvas.height = Math.round(img.height * scale);
  const g = canvas.getContext('2d');
  g.drawImage(img, 0, 0, canvas.width, canvas.height);
  const lw = Math.max(2, Math.round(Math.min(canvas.width, canvas.height) / 250));
  faces.forEach((f, i) => {
    const color = FACE_COLORS[i % FACE_COLORS.length];
    const [x, y, w, h] = f.box.map((v) => v * scale);
    g.lineWidth = lw;
    g.strokeStyle = color;
    g.strokeRect(x, y, w, h);
    g.fillStyle = color;
    for (const [kx, ky] of f.keypoints || []) {
      g.beginPath();
      g.arc(kx * scale, ky * scale, lw * 1.4, 0, 2 * Math.PI);
      g.fill();
    }
    const label = `${i + 1}  ${(f.score * 100).toFixed(0)}%`;
    g.font = `600 ${Math.max(12, lw * 6)}px system-ui, sans-serif`;
    const tw = g.measureText(label).width + 10;
    const th = Math.max(12, lw * 6) + 6;
    const ly = y - th >= 0 ? y - th : y + h;
    g.fillRect(x - lw / 2, ly, tw, th);
    g.fillStyle = '#0f172a';
    g.fillText(label, x + 5 - lw / 2, ly + th - 5);
  });
  canvas.dataset.imageWidth = String(img.width);
  canvas.dataset.faces = String(faces.length);
  canvas.dataset.drawn = 'true';
}

async function findFaces(path) {
  const status = $('#faces-status');
  const run = $('#faces-run');
  $('#faces-na').hidden = true;
  run.disabled = true;
  status.textContent = 'Detecting…';
  const t0 = performance.now();
  let res;
  try {
    res = await api('POST', '/faces', { path });
  } catch (e) {
    run.disabled = false;
    status.textContent = '';
    if (e.status === 401) return;
    if (e.missingRoute) notAvailable('faces-na', 'Face detection is not available on this server.', 'POST /faces answered 404: this build of visiond serve has no /faces route.');
    else notAvailable('faces-na', `Could not find faces (${e.code || e.status}).`, e.message);
    $('#faces-result').hidden = true;
    return;
  }
  const faces = res.faces || [];
  const ms = performance.now() - t0;
  $('#faces-count').textContent = String(faces.length);
  $('#faces-table tbody').replaceChildren(...faces.map((f, i) => {
    const sw = el('span', { class: 'swatch' });
    sw.style.background = FACE_COLORS[i % FACE_COLORS.length];
    return el('tr', { dataset: { face: String(i) } }, el('td', {}, sw, String(i + 1)),
      el('td', { class: 'num', text: f.score.toFixed(3) }),
      el('td', { class: 'mono', text: f.box.map((v) => Math.round(v)).join(', ') }));
  }));
  $('#faces-result').hidden = false;
  $('#faces-canvas').dataset.drawn = 'false';
  status.textContent = `${faces.length} face${faces.length === 1 ? '' : 's'} in ${ms.toFixed(0)} ms${res.cached ? ' (from the cache)' : ''} · sha256 ${String(res.sha256 || '').slice(0, 12)}`;
  try {
    drawFaces(await loadImage(path), faces);
  } catch (e) {
    if (e.status === 401) return;
    if (e.missingRoute) notAvailable('faces-na', 'The image cannot be shown.', 'GET /media answered 404: this server has no /media route, so the boxes cannot be drawn over the image.');
    else notAvailable('faces-na', 'The image cannot be shown.', e.message);
  } finally {
    run.disabled = false;
  }
}

function setupFaces() {
  $('#faces-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const p = $('#faces-path').value.trim();
    if (p) findFaces(p);
  });
}

/* ---- views and polling ------------------------------------------------------ */

function showView(name) {
  if (!['jobs', 'training', 'models', 'faces', 'search', 'duplicates', 'people'].includes(name)) name = 'jobs';
  app.view = name;
  for (const s of $$('section.view')) s.hidden = s.dataset.view !== name;
  for (const a of $$('.tabs a')) a.classList.toggle('active', a.dataset.view === name);
  document.title = `${name[0].toUpperCase()}${name.slice(1)} · visiond`;
  refreshSoon(0);
}

async function refresh() {
  if (app.busy) return;
  app.busy = true;
  const seq = ++app.seq;
  try {
    const health = await refreshHealth();
    if ($('#token-dialog').open) {
      if (app.view === 'jobs') renderCounts(health); // public; the rest waits for the token
    } else if (app.view === 'jobs') await refreshJobs(health);
    else if (app.view === 'training') await refreshTraining();
    else if (app.view === 'models') await refreshModels(health);
  } catch (e) {
    banner(`Unexpected error: ${e.message}`);
  } finally {
    app.busy = false;
    document.body.dataset.refreshed = String(seq);
  }
}

function refreshSoon(ms) {
  clearTimeout(app.timer);
  app.timer = setTimeout(async () => {
    if (app.busy) { refreshSoon(100); return; }
    await refresh();
    const idle = ['faces', 'search', 'duplicates', 'people'].includes(app.view) || (app.view === 'training' && !app.sessions.anyActive);
    if (!document.hidden) refreshSoon(idle ? POLL_IDLE_MS : POLL_MS);
  }, ms === undefined ? POLL_MS : ms);
}

document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshSoon(0); });
window.addEventListener('hashchange', () => showView(location.hash.slice(1)));
document.addEventListener('DOMContentLoaded', () => {
  setupToken();
  setupJobs();
  setupTraining();
  setupFaces();
  showView(location.hash.slice(1) || 'jobs');
});
