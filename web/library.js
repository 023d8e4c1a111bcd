/* visiond dashboard, the library's pages (loaded after app.js, whose helpers it uses:
 * api, el, $, notAvailable). Plain JavaScript, no dependencies.
 *   Search      POST /search {model, k, folder, path} or a multipart upload of the
 *               dropped / picked file; results drawn as thumbnails (GET /media?path=)
 *   Duplicates  GET /duplicates?model=&max_distance=: one row of thumbnails per group,
 *               with the pairs' distances
 * Thumbnails are fetched with the token and shown from blob: URLs (the page's CSP). */
'use strict';

const lib = { file: null, urls: [] };

/* Frees the blob: URLs of the thumbnails shown before. */
function libForget() {
  for (const u of lib.urls) URL.revokeObjectURL(u);
  lib.urls = [];
}

/* An <img> that loads an asset's file through GET /media (the token is sent). */
function libThumb(path) {
  const img = el('img', { alt: path, loading: 'lazy', dataset: { path } });
  api('GET', `/media?path=${encodeURIComponent(path)}`, undefined, { raw: true })
    .then((r) => r.blob())
    .then((b) => {
      const u = URL.createObjectURL(b);
      lib.urls.push(u);
      img.src = u;
      img.dataset.loaded = 'true';
    })
    .catch(() => { img.dataset.loaded = 'false'; img.classList.add('broken'); });
  return img;
}

function libFailed(boxId, what, e) {
  if (e.status === 401) return;
  if (e.missingRoute) notAvailable(boxId, `${what} is not available on this server.`, 'The route answered 404: this build of visiond serve has no library routes.');
  else notAvailable(boxId, `${what} failed (${e.code || e.status}).`, e.message);
}

/* ---- search ------------------------------------------------------------------ */

function searchCard(r, i) {
  return el('figure', { class: 'thumb', dataset: { asset: String(r.asset_id), rank: String(i + 1) } },
    libThumb(r.path),
    el('figcaption', {},
      el('span', { class: 'score', text: r.score.toFixed(3) }),
      el('span', { class: 'mono small', text: `#${r.asset_id}` }),
      el('span', { class: 'path mono small', title: r.path, text: r.path })));
}

async function runSearch() {
  const status = $('#search-status');
  const run = $('#search-run');
  const model = $('#search-model').value.trim();
  const k = Number($('#search-k').value) || 20;
  const folder = $('#search-folder').value.trim();
  const path = $('#search-path').value.trim();
  $('#search-na').hidden = true;
  let body;
  if (lib.file) {
    body = new FormData();
    if (model) body.append('model', model);
    body.append('k', String(k));
    if (folder) body.append('folder', folder);
    body.append('file', lib.file, lib.file.name);
  } else if (path) {
    body = { k, path };
    if (model) body.model = model;
    if (folder) body.folder = folder;
  } else {
    status.textContent = 'Drop or pick an image, or give its path.';
    return;
  }
  run.disabled = true;
  status.textContent = 'Searching…';
  const t0 = performance.now();
  try {
    const res = await api('POST', '/search', body);
    libForget();
    const results = res.results || [];
    $('#search-results').replaceChildren(...results.map(searchCard));
    $('#search-results').dataset.count = String(results.length);
    status.textContent = `${results.length} result${results.length === 1 ? '' : 's'} in ${(performance.now() - t0).toFixed(0)} ms`;
    const q = $('#search-query-img');
    if (lib.file) {
      const u = URL.createObjectURL(lib.file);
      lib.urls.push(u);
      q.src = u;
      $('#search-query').hidden = false;
    } else {
      $('#search-query').replaceChildren(libThumb(path));
      $('#search-query').hidden = false;
    }
  } catch (e) {
    status.textContent = '';
    libFailed('search-na', 'Search', e);
  } finally {
    run.disabled = false;
  }
}

function searchPick(file) {
  lib.file = file || null;
  $('#search-file-name').textContent = file ? file.name : '';
  if (file) $('#search-path').value = '';
}

function setupSearch() {
  $('#search-form').addEventListener('submit', (e) => { e.preventDefault(); runSearch(); });
  $('#search-file').addEventListener('change', (e) => { searchPick(e.target.files[0]); if (lib.file) runSearch(); });
  $('#search-path').addEventListener('input', () => { if ($('#search-path').value) searchPick(null); });
  const drop = $('#search-drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) { searchPick(f); runSearch(); }
  });
}

/* ---- duplicates ---------------------------------------------------------------- */

function duplicateGroup(g, i) {
  const name = new Map(g.assets.map((a) => [a.asset_id, a.path]));
  return el('div', { class: 'dup-group', dataset: { group: String(i), size: String(g.assets.length) } },
    el('h3', { text: `Group ${i + 1} · ${g.assets.length} photos` }),
    el('div', { class: 'thumbs' }, ...g.assets.map((a) => el('figure', { class: 'thumb', dataset: { asset: String(a.asset_id) } },
      libThumb(a.path),
      el('figcaption', {}, el('span', { class: 'mono small', text: `#${a.asset_id}` }),
        el('span', { class: 'path mono small', title: a.path, text: a.path }))))),
    el('table', { class: 'data compact' },
      el('thead', {}, el('tr', {}, el('th', { text: 'Photo' }), el('th', { text: 'Photo' }), el('th', { class: 'num', text: 'Distance' }))),
      el('tbody', {}, ...g.pairs.map((p) => el('tr', {},
        el('td', { class: 'mono small', text: `#${p.a} ${name.get(p.a) || ''}` }),
        el('td', { class: 'mono small', text: `#${p.b} ${name.get(p.b) || ''}` }),
        el('td', { class: 'num', text: p.distance.toFixed(4) }))))));
}

async function findDuplicates() {
  const status = $('#duplicates-status');
  const run = $('#duplicates-run');
  const q = new URLSearchParams();
  const model = $('#duplicates-model').value.trim();
  const max = $('#duplicates-max').value.trim();
  if (model) q.set('model', model);
  if (max) q.set('max_distance', max);
  $('#duplicates-na').hidden = true;
  run.disabled = true;
  status.textContent = 'Looking for duplicates…';
  try {
    const res = await api('GET', `/duplicates?${q}`);
    libForget();
    const groups = res.groups || [];
    $('#duplicates-groups').replaceChildren(...groups.map(duplicateGroup));
    $('#duplicates-groups').dataset.count = String(groups.length);
    if (!max) $('#duplicates-max').placeholder = `default ${res.max_distance}`;
    status.textContent = `${groups.length} group${groups.length === 1 ? '' : 's'} at cosine distance ≤ ${res.max_distance} (model ${res.model})`;
  } catch (e) {
    status.textContent = '';
    libFailed('duplicates-na', 'Finding duplicates', e);
  } finally {
    run.disabled = false;
  }
}

function setupDuplicates() {
  $('#duplicates-form').addEventListener('submit', (e) => { e.preventDefault(); findDuplicates(); });
}

document.addEventListener('DOMContentLoaded', () => {
  setupSearch();
  setupDuplicates();
});
