// dashboard.test.js: drives the dashboard in headless Chromium (playwright-core) against a
// running visiond (started by tests/integration/dashboard.sh, which passes what it made in
// DASH_* variables) and checks that every panel shows the system's real data: numbers are
// compared with `visiond queue stats`, `visiond jobs show` and the JSON API read at the same
// time, and clicks on the page must change the queue. Saves a PNG screenshot of each panel
// into DASH_ARTIFACTS. Exits 0 when every check passes, 1 otherwise.
'use strict';

const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const env = (k, dflt) => {
  const v = process.env[k];
  if (v === undefined || (v === '' && dflt === undefined)) {
    if (dflt !== undefined) return dflt;
    throw new Error(`${k} is not set`);
  }
  return v;
};
const URL_ = env('DASH_URL');
const TOKEN = env('DASH_TOKEN');
const QUEUE = env('DASH_QUEUE');
const MEDIA = env('DASH_MEDIA');
const ART = env('DASH_ARTIFACTS');
const VISIOND = env('VISIOND');
const FAILED_ID = env('DASH_FAILED_ID');
const FAILED_MSG = env('DASH_FAILED_MSG');
const RUNNING_ID = env('DASH_RUNNING_ID');
const SCHEDULED_ID = env('DASH_SCHEDULED_ID');
const UNCLAIMED_ID = env('DASH_UNCLAIMED_ID');
const SESSION_ID = env('DASH_SESSION_ID', '');
const FACES_CODE = env('DASH_FACES_CODE', '404');
const LIBRARY = env('DASH_LIBRARY', ''); // the library's folder when it was indexed, else ''
const { chromium } = require(env('DASH_PLAYWRIGHT'));

const WAIT = 90000; // the longest wait for an outcome (a shared 2-core machine under ASan)
const t0 = Date.now();
let checks = 0;

function log(msg) { console.log(`[dashboard ${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`); }
function check(ok, msg) {
  checks++;
  if (!ok) throw new Error(`check failed: ${msg}`);
}

function cli(...args) { return JSON.parse(execFileSync(VISIOND, args, { encoding: 'utf8' })); }
const queueStats = () => cli('queue', 'stats', '--queue', QUEUE);
const jobShow = (id) => cli('jobs', 'show', id, '--queue', QUEUE);

async function apiGet(p) {
  const r = await fetch(URL_ + p, { headers: { Authorization: `Bearer ${TOKEN}` } });
  const body = await r.json();
  if (!r.ok) throw new Error(`GET ${p}: ${r.status} ${JSON.stringify(body)}`);
  return body;
}
async function apiPost(p, body) {
  const r = await fetch(URL_ + p, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, body: await r.json() };
}

// Polls fn (sync or async) until it returns a truthy value; fails with what() after WAIT ms.
async function until(fn, what, ms = WAIT) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > end) throw new Error(`gave up waiting: ${typeof what === 'function' ? what(last) : what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

const fmtPct = (x) => `${(x * 100).toFixed(1)}%`;

async function shot(page, name) {
  const file = path.join(ART, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${file}`);
}

async function tileCounts(page) {
  return page.$$eval('.tile-count[data-count]', (els) =>
    Object.fromEntries(els.map((e) => [e.dataset.count, Number(e.textContent.replace(/,/g, ''))])));
}

async function checkJobs(page) {
  await page.click('.tabs a[data-view="jobs"]');
  // The tiles show what `visiond queue stats` says (nothing moves now: the sleep job runs,
  // the scheduled one waits an hour, nobody claims the unclaimed one).
  let stats;
  await until(async () => {
    stats = queueStats();
    const tiles = await tileCounts(page);
    const ok = Object.entries(stats.counts).every(([s, n]) => tiles[s] === n) && tiles.total === stats.total;
    return ok ? tiles : null;
  }, () => `tiles = queue stats ${JSON.stringify(stats)}`);
  log(`tiles match visiond queue stats: ${JSON.stringify(stats.counts)}`);
  check(stats.counts.failed >= 1 && stats.counts.finished >= 4 && stats.counts.started >= 1, 'the test made its jobs');

  // The list has every job (fewer than a page), with its state, and the failed job's error.
  await until(async () => (await page.$$('#jobs-body tr[data-job-id]')).length === stats.total, 'one row per job');
  for (const [id, state] of [[FAILED_ID, 'failed'], [RUNNING_ID, 'started'], [SCHEDULED_ID, 'scheduled'], [UNCLAIMED_ID, 'queued']]) {
    const row = await page.$(`#jobs-body tr[data-job-id="${id}"]`);
    check(row, `row for job ${id}`);
    check(await row.getAttribute('data-state') === state, `job ${id} shown as ${state}`);
    check((await row.$eval('.badge', (b) => b.textContent)) === state, `job ${id} badge says ${state}`);
  }
  const errText = await page.$eval(`#jobs-body tr[data-job-id="${FAILED_ID}"] td.error`, (td) => td.textContent);
  check(errText.includes(FAILED_MSG), `the failed job's error "${FAILED_MSG}" is shown (got "${errText}")`);
  check(await page.$(`tr[data-job-id="${FAILED_ID}"] button[data-action="requeue"]`), 'a failed job has Requeue');
  check(!(await page.$(`tr[data-job-id="${FAILED_ID}"] button[data-action="cancel"]`)), 'a failed job has no Cancel');
  check(await page.$(`tr[data-job-id="${UNCLAIMED_ID}"] button[data-action="cancel"]`), 'a queued job has Cancel');
  check(await page.$(`tr[data-job-id="${RUNNING_ID}"] button[data-action="cancel"]`), 'a started job has Stop');
  await page.click(`tr[data-job-id="${FAILED_ID}"] button[data-action="details"]`);
  await page.waitForSelector(`tr.detail[data-detail-for="${FAILED_ID}"]`, { timeout: WAIT });
  check((await page.textContent(`tr.detail[data-detail-for="${FAILED_ID}"]`)).includes(FAILED_MSG), 'the details show the error');
  await shot(page, '01-jobs');

  // Filters: state=failed shows the failed jobs only; a type filter narrows to that type.
  await page.selectOption('#filter-state', 'failed');
  await until(async () => {
    const states = await page.$$eval('#jobs-body tr[data-job-id]', (rs) => rs.map((r) => r.dataset.state));
    return states.length === queueStats().counts.failed && states.every((s) => s === 'failed');
  }, 'state filter shows only failed jobs');
  check(await page.$eval('.tile[data-state="failed"]', (t) => t.classList.contains('active')), 'the failed tile is highlighted');
  await shot(page, '02-jobs-failed');
  await page.selectOption('#filter-state', 'all');
  await page.fill('#filter-type', 'noop');
  await until(async () => {
    const types = await page.$$eval('#jobs-body tr[data-job-id] td.mono', (tds) => tds.map((t) => t.textContent));
    return types.length === 5 && types.every((t) => t === 'noop');
  }, 'type filter shows the 5 noop jobs');
  await page.fill('#filter-type', '');
  await until(async () => (await page.$$('#jobs-body tr[data-job-id]')).length === queueStats().total, 'filters cleared');

  // Buttons change the queue: requeue the failed job (a worker then runs it again), stop
  // the running one, cancel the scheduled one, then requeue that.
  const before = jobShow(FAILED_ID);
  await page.click(`tr[data-job-id="${FAILED_ID}"] button[data-action="requeue"]`);
  await until(() => {
    const j = jobShow(FAILED_ID);
    return j.state !== 'failed' || j.started_ms > before.started_ms;
  }, 'requeue puts the failed job back in the queue');
  log(`requeue: the failed job ran again (${jobShow(FAILED_ID).state})`);
  await page.click(`tr[data-job-id="${RUNNING_ID}"] button[data-action="cancel"]`);
  await until(() => jobShow(RUNNING_ID).state === 'canceled', 'Stop cancels the running job');
  await page.click(`tr[data-job-id="${SCHEDULED_ID}"] button[data-action="cancel"]`);
  await until(() => jobShow(SCHEDULED_ID).state === 'canceled', 'Cancel cancels the scheduled job');
  await page.waitForSelector(`tr[data-job-id="${SCHEDULED_ID}"][data-state="canceled"] button[data-action="requeue"]`, { timeout: WAIT });
  await page.click(`tr[data-job-id="${SCHEDULED_ID}"] button[data-action="requeue"]`);
  await until(() => jobShow(SCHEDULED_ID).state !== 'canceled', 'Requeue brings the canceled job back');
  log(`cancel + requeue: scheduled job is now ${jobShow(SCHEDULED_ID).state}`);
  // The page follows by itself (polling): the stopped job shows as canceled.
  await page.waitForSelector(`tr[data-job-id="${RUNNING_ID}"][data-state="canceled"]`, { timeout: WAIT });
  await until(async () => {
    const s = queueStats();
    const tiles = await tileCounts(page);
    return Object.entries(s.counts).every(([k, n]) => tiles[k] === n);
  }, 'tiles follow the queue after the clicks');
  await shot(page, '03-jobs-after-actions');
}

async function checkTraining(page) {
  await page.click('.tabs a[data-view="training"]');
  if (!SESSION_ID) {
    await page.waitForSelector('#training-na:not([hidden])', { timeout: WAIT });
    const t = await page.textContent('#training-na');
    check(/not available/i.test(t) && t.includes('404'), `training panel says not available (${t})`);
    log('training: not available on this server (as expected)');
    await shot(page, '04-training-not-available');
    return;
  }
  const s = await apiGet(`/training/sessions/${SESSION_ID}`);
  await page.waitForSelector(`#sessions-body tr[data-session-id="${SESSION_ID}"]`, { timeout: WAIT });
  await page.click(`#sessions-body tr[data-session-id="${SESSION_ID}"]`);
  await page.waitForSelector(`#session-detail[data-session-id="${SESSION_ID}"]`, { timeout: WAIT });
  const m = s.metrics;
  check(m && typeof m.cv_accuracy === 'number', 'the session has a CV accuracy');
  await until(async () => (await page.textContent('#sd-cv-accuracy .stat-value')) === fmtPct(m.cv_accuracy),
    `CV accuracy shows ${fmtPct(m.cv_accuracy)}`);
  check(Number(await page.getAttribute('#sd-cv-accuracy', 'data-value')) === m.cv_accuracy, 'CV accuracy value');
  const rowAcc = await page.textContent(`#sessions-body tr[data-session-id="${SESSION_ID}"] td[data-value]`);
  check(rowAcc === fmtPct(m.cv_accuracy), 'the list shows the CV accuracy');
  // Per-class table and confusion matrix: every number as the API has it.
  const perClass = await page.$$eval('#per-class tbody tr', (rs) => rs.map((r) => [r.dataset.label, ...Array.from(r.cells).slice(1).map((c) => c.textContent)]));
  check(perClass.length === m.labels.length, `${m.labels.length} per-class rows`);
  for (const [label, p, r, f1, sup] of perClass) {
    const c = m.per_class[label];
    check(c && p === c.precision.toFixed(3) && r === c.recall.toFixed(3) && f1 === c.f1.toFixed(3) && Number(sup) === c.support,
      `per-class row ${label}: ${p} ${r} ${f1} ${sup} vs ${JSON.stringify(c)}`);
  }
  const cells = await page.$$eval('#confusion td[data-true]', (tds) => tds.map((t) => [t.dataset.true, t.dataset.pred, Number(t.textContent), getComputedStyle(t).backgroundColor]));
  check(cells.length === m.labels.length ** 2, 'a k x k heat map');
  for (const [tl, pl, n] of cells) {
    check(m.confusion[m.labels.indexOf(tl)][m.labels.indexOf(pl)] === n, `confusion[${tl}][${pl}] = ${n}`);
  }
  const colors = new Set(cells.filter((c) => c[2] > 0).map((c) => c[3]));
  const zero = cells.find((c) => c[2] === 0);
  check(!zero || !colors.has(zero[3]), 'heat-map cells with examples are coloured apart from empty ones');
  log(`training: CV accuracy ${fmtPct(m.cv_accuracy)}, ${m.labels.length}x${m.labels.length} confusion matrix as the API says`);
  await shot(page, '04-training');

  // Live progress: a session created now appears and runs to the end while the page only polls.
  const labels = fs.readdirSync(path.join(MEDIA, 'fashion')).sort().slice(0, 2);
  const examples = labels.flatMap((label) => pngs(label).slice(0, 3).map((f) => ({ path: f, label })));
  const created = await apiPost('/training/sessions', { name: `live: ${labels.join(' vs ')}`, examples });
  check(created.status === 202, `POST /training/sessions: ${created.status} ${JSON.stringify(created.body)}`);
  const live = created.body.id;
  await page.waitForSelector(`#sessions-body tr[data-session-id="${live}"]`, { timeout: WAIT });
  await page.click(`#sessions-body tr[data-session-id="${live}"]`);
  const seen = new Set();
  await until(async () => {
    const st = await page.getAttribute(`#sessions-body tr[data-session-id="${live}"]`, 'data-state');
    seen.add(st);
    return st === 'succeeded';
  }, () => `the new session reaches succeeded on the page (seen ${[...seen]})`, 600000);
  await page.waitForSelector(`#session-detail[data-session-id="${live}"] #sd-state[data-state="succeeded"]`, { timeout: WAIT });
  const apiLive = await apiGet(`/training/sessions/${live}`);
  check(apiLive.state === 'succeeded', 'the API agrees');
  log(`training: a new session went ${[...seen].join(' -> ')} on the page without a reload`);
  await page.click(`#sessions-body tr[data-session-id="${SESSION_ID}"]`);
  await page.waitForSelector(`#session-detail[data-session-id="${SESSION_ID}"]`, { timeout: WAIT });
  await page.waitForSelector('#confusion td[data-true]', { timeout: WAIT });
  await shot(page, '05-training-two-sessions');
}

// The PNG files `visiond dataset` wrote for a label, sorted.
function pngs(label) {
  const dir = path.join(MEDIA, 'fashion', label);
  return fs.readdirSync(dir).filter((f) => f.endsWith('.png')).sort().map((f) => path.join(dir, f));
}

async function checkModels(page) {
  await page.click('.tabs a[data-view="models"]');
  const first = await apiGet('/models');
  await page.waitForSelector('#models-body tr[data-model]', { timeout: WAIT });
  const names = await page.$$eval('#models-body tr[data-model]', (rs) => rs.map((r) => r.dataset.model));
  check(names.length === first.models.length && first.models.every((m) => names.includes(m.name)),
    `one row per model: ${names} vs ${first.models.map((m) => m.name)}`);
  // Statistics as the model server reports them (nothing else calls it now; the page polls).
  await until(async () => {
    const api = await apiGet('/models');
    const rows = await page.$$eval('#models-body tr[data-model]', (rs) => rs.map((r) => ({
      name: r.dataset.model, state: r.dataset.state,
      stats: Object.fromEntries(Array.from(r.querySelectorAll('td[data-stat]')).map((td) => [td.dataset.stat, td.dataset.value])),
    })));
    return api.models.every((m) => {
      const r = rows.find((x) => x.name === m.name);
      return r && r.state === m.state && ['requests', 'items', 'batches', 'loads'].every((k) => r.stats[k] === String(m.stats[k]));
    });
  }, 'model rows show the model server stats');
  const used = (await apiGet('/models')).models.filter((m) => m.stats.requests > 0);
  if (SESSION_ID || FACES_CODE !== '404') check(used.length > 0, 'some model was used');
  for (const m of used) {
    const row = `#models-body tr[data-model="${m.name}"]`;
    check(await page.textContent(`${row} td[data-stat="mean_batch"]`) === m.stats.mean_batch.toFixed(2), `${m.name} mean batch`);
    check(Number(await page.getAttribute(`${row} td[data-stat="latency_ms_p50"]`, 'data-value')) === m.stats.latency_ms_p50, `${m.name} p50`);
    check(Number(await page.getAttribute(`${row} td[data-stat="latency_ms_p99"]`, 'data-value')) === m.stats.latency_ms_p99, `${m.name} p99`);
  }
  const total = first.models.reduce((a, m) => a + m.stats.requests, 0);
  check(Number(await page.getAttribute('#ms-requests', 'data-value')) >= total, 'the requests total');
  log(`models: ${names.length} models; used: ${used.map((m) => `${m.name} ${m.stats.requests} requests, mean batch ${m.stats.mean_batch.toFixed(2)}`).join('; ') || 'none'}`);
  await shot(page, '07-models');
}

async function checkFaces(page) {
  await page.click('.tabs a[data-view="faces"]');
  const photo = `${MEDIA}/group.jpg`;
  await page.fill('#faces-path', photo);
  await page.click('#faces-run');
  if (FACES_CODE === '404') {
    await page.waitForSelector('#faces-na:not([hidden])', { timeout: WAIT });
    const t = await page.textContent('#faces-na');
    check(/not available/i.test(t) && t.includes('404'), `faces panel says not available (${t})`);
    log('faces: not available on this server (as expected)');
    await shot(page, '06-faces-not-available');
    return;
  }
  await page.waitForSelector('#faces-canvas[data-drawn="true"]', { timeout: WAIT });
  const api = await apiPost('/faces', { path: photo });
  check(api.status === 200, `POST /faces: ${api.status}`);
  const n = api.body.faces.length;
  check(n > 0, 'the photo has faces');
  check(await page.textContent('#faces-count') === String(n), `the page found ${n} faces`);
  check(await page.getAttribute('#faces-canvas', 'data-faces') === String(n), 'and drew them');
  check((await page.$$('#faces-table tbody tr')).length === n, 'one table row per face');
  // The image is on the canvas (not blank), and the first box's edge has the box colour.
  const px = await page.evaluate(([box]) => {
    const c = document.getElementById('faces-canvas');
    const g = c.getContext('2d');
    const scale = c.width / c.dataset.imageWidth;
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let lo = 255, hi = 0;
    for (let i = 0; i < d.length; i += 4 * 97) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }
    const x = Math.round((box[0] + box[2] / 2) * scale), y = Math.round(box[1] * scale);
    const e = g.getImageData(x, y, 1, 1).data;
    return { spread: hi - lo, edge: [e[0], e[1], e[2]], w: c.width, iw: Number(c.dataset.imageWidth) };
  }, [api.body.faces[0].box]);
  check(px.spread > 50, `the photo is drawn (pixel spread ${px.spread})`);
  check(Math.abs(px.edge[0] - 0x22) < 40 && Math.abs(px.edge[1] - 0xd3) < 40 && Math.abs(px.edge[2] - 0xee) < 40,
    `the first box is drawn in its colour at its top edge (got rgb ${px.edge})`);
  log(`faces: ${n} faces drawn over a ${px.iw}px wide photo`);
  await shot(page, '06-faces');
}

// Search and duplicates (docs/search.md): the page shows what POST /search and GET /duplicates say.
async function checkLibrary(page) {
  await page.click('.tabs a[data-view="search"]');
  if (!LIBRARY) {
    await page.fill('#search-path', `${MEDIA}/group.jpg`);
    await page.click('#search-run');
    await page.waitForSelector('#search-na:not([hidden])', { timeout: WAIT });
    const t = await page.textContent('#search-na');
    check(/not available|no_index/i.test(t), `search panel says why there are no results (${t})`);
    log(`search: no library on this server (${t})`);
    return;
  }
  const query = `${LIBRARY}/group.jpg`;
  const api = await apiPost('/search', { path: query, k: 20 });
  check(api.status === 200, `POST /search: ${api.status} ${JSON.stringify(api.body)}`);
  const want = api.body.results;
  check(want.length >= 3, 'the library has the photo and its copies');
  await page.fill('#search-path', query);
  await page.click('#search-run');
  await until(async () => (await page.getAttribute('#search-results', 'data-count')) === String(want.length), `${want.length} results shown`);
  const shown = await page.$$eval('#search-results figure', (fs) => fs.map((f) => [Number(f.dataset.asset), f.querySelector('.score').textContent]));
  want.forEach((r, i) => check(shown[i][0] === r.asset_id && shown[i][1] === r.score.toFixed(3), `result ${i + 1}: asset ${r.asset_id} score ${r.score.toFixed(3)} (shown ${shown[i]})`));
  await until(async () => (await page.$$('#search-results img[data-loaded="true"]')).length === want.length, 'every thumbnail loaded');
  await shot(page, '08-search');
  // a picked file: uploaded, the same answer first
  await page.fill('#search-path', '');
  await page.evaluate(() => { document.getElementById('search-results').dataset.count = ''; });
  await page.setInputFiles('#search-file', `${MEDIA}/group.jpg`);
  await until(async () => (await page.getAttribute('#search-results', 'data-count')) === String(want.length), 'the upload search answered');
  check(Number(await page.getAttribute('#search-results figure', 'data-asset')) === want[0].asset_id, 'an uploaded copy finds the same photo first');
  log(`search: ${want.length} results, first ${want[0].path} ${want[0].score.toFixed(3)}`);

  await page.click('.tabs a[data-view="duplicates"]');
  const dup = await apiGet('/duplicates');
  await page.click('#duplicates-run');
  await until(async () => (await page.getAttribute('#duplicates-groups', 'data-count')) === String(dup.groups.length), `${dup.groups.length} groups shown`);
  check(dup.groups.length >= 1, 'the photo and its copies are a group');
  const sizes = await page.$$eval('#duplicates-groups .dup-group', (gs) => gs.map((g) => Number(g.dataset.size)));
  dup.groups.forEach((g, i) => check(sizes[i] === g.assets.length, `group ${i + 1} has ${g.assets.length} photos`));
  const rows = await page.$$eval('#duplicates-groups .dup-group:first-child tbody tr', (r) => r.length);
  check(rows === dup.groups[0].pairs.length, 'the first group lists its pairs');
  await until(async () => (await page.$$('#duplicates-groups img[data-loaded="true"]')).length === sizes.reduce((a, b) => a + b, 0), 'every thumbnail loaded');
  log(`duplicates: ${dup.groups.length} groups (${sizes.join(', ')} photos) at ${dup.max_distance}`);
  await shot(page, '09-duplicates');
}

// People (docs/people.md): the grid shows what GET /people says; a person's faces, renaming.
async function checkPeople(page) {
  if (!LIBRARY) return;
  // the group photo and its two copies: each face is there three times, a person (min_faces 3)
  const people = await until(async () => { const r = await apiGet('/people'); return r.people.length ? r.people : null; }, 'people found');
  await page.click('.tabs a[data-view="people"]');
  await until(async () => (await page.getAttribute('#people-grid', 'data-count')) === String(people.length), `${people.length} people shown`);
  await until(async () => (await page.$$('#people-grid img[data-loaded="true"]')).length === people.filter((p) => p.cover_face_id).length, 'every cover crop loaded');
  const p = people[0];
  await page.click(`#people-grid figure[data-person="${p.id}"]`);
  await until(async () => (await page.getAttribute('#person-faces', 'data-count')) === String(p.face_count), `its ${p.face_count} faces shown`);
  await page.fill('#person-name', 'Dana');
  await page.click('#person-rename');
  await until(async () => (await apiGet(`/people/${p.id}`)).name === 'Dana', 'the rename reached the API');
  await until(async () => (await page.textContent(`#people-grid figure[data-person="${p.id}"] .name`)) === 'Dana', 'the grid shows the new name');
  log(`people: ${people.length} shown (${people.map((x) => x.face_count).join(', ')} faces), person ${p.id} renamed`);
  await shot(page, '10-people');
}

(async () => {
  const browser = await chromium.launch({ executablePath: env('DASH_CHROMIUM'), headless: true, args: ['--disable-gpu', '--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`); });
  const requests = [];
  page.on('request', (r) => { if (!r.url().includes('/dashboard/') && !r.url().endsWith('/healthz')) requests.push(r); });
  try {
    // Auth: the page asks for the token (the API answers 401), refuses a wrong one, then works.
    await page.goto(URL_ + '/', { waitUntil: 'load' });
    await page.waitForSelector('#token-dialog[open]', { timeout: WAIT });
    await shot(page, '00-sign-in');
    await page.fill('#token-input', 'not-the-token');
    await page.click('#token-save');
    await page.waitForSelector('#token-dialog[open] #token-error:not([hidden])', { timeout: WAIT });
    check(/not accepted/.test(await page.textContent('#token-error')), 'a wrong token is refused');
    await page.fill('#token-input', TOKEN);
    await page.click('#token-save');
    await page.waitForSelector('#jobs-body tr[data-job-id]', { timeout: WAIT });
    check(!(await page.$('#token-dialog[open]')), 'the dialog closed');
    const authed = requests.filter((r) => (r.headers().authorization || '') === `Bearer ${TOKEN}`);
    check(authed.length > 0, 'API requests carry Authorization: Bearer');
    log(`signed in: ${authed.length} requests so far carried the token`);
    check(await page.getAttribute('#health', 'data-status') === 'ok', 'the header says healthy');

    await checkJobs(page);
    await checkTraining(page);
    await checkFaces(page);
    await checkModels(page);
    await checkLibrary(page);
    await checkPeople(page);
    check(problems.length === 0, `no errors in the page: ${problems.join('; ')}`);
    log(`ok: ${checks} checks`);
  } catch (e) {
    console.error(`FAIL: ${e.message}`);
    if (problems.length) console.error(problems.join('\n'));
    try { await shot(page, 'failure'); } catch (_) { /* the page may be gone */ }
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
})();
