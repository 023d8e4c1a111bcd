/* visiond dashboard, the People page (loaded after app.js and library.js, whose helpers it
 * uses: api, el, $, notAvailable, libFailed, lib). Plain JavaScript, no dependencies.
 *   the grid    GET /people (?with_hidden=1): one card per person, its cover face's crop
 *               (GET /faces/{id}/crop), name and face count
 *   a person    GET /people/{id}/faces: its faces' crops; rename (PATCH /people/{id}),
 *               merge other people into it (POST /people/{id}/merge), move a face to another
 *               person (PATCH /faces/{id}), re-cluster (POST /people/recluster)
 * Crops are fetched with the token and shown from blob: URLs (the page's CSP). */
'use strict';

const ppl = { people: [], current: null };

/* An <img> of a face crop, loaded with the token. */
function faceCrop(id, size) {
  const img = el('img', { alt: `face ${id}`, loading: 'lazy', dataset: { face: String(id) } });
  api('GET', `/faces/${id}/crop?size=${size}`, undefined, { raw: true })
    .then((r) => r.blob())
    .then((b) => { const u = URL.createObjectURL(b); lib.urls.push(u); img.src = u; img.dataset.loaded = 'true'; })
    .catch(() => { img.dataset.loaded = 'false'; img.classList.add('broken'); });
  return img;
}

function personLabel(p) { return p.name || `Person ${p.id}`; }

function personCard(p) {
  const card = el('figure', { class: 'thumb person', tabindex: '0', dataset: { person: String(p.id), faces: String(p.face_count) } },
    p.cover_face_id ? faceCrop(p.cover_face_id, 128) : el('div', { class: 'muted', text: 'no face' }),
    el('figcaption', {},
      el('span', { class: 'name', text: personLabel(p) }),
      el('span', { class: 'mono small', text: `${p.face_count} face${p.face_count === 1 ? '' : 's'}${p.hidden ? ' · hidden' : ''}` })));
  card.addEventListener('click', () => openPerson(p.id));
  return card;
}

async function loadPeople() {
  const status = $('#people-status');
  $('#people-na').hidden = true;
  try {
    const q = $('#people-hidden').checked ? '?with_hidden=1&limit=1000' : '?limit=1000';
    const res = await api('GET', `/people${q}`);
    ppl.people = res.people || [];
    $('#people-grid').replaceChildren(...ppl.people.map(personCard));
    $('#people-grid').dataset.count = String(ppl.people.length);
    status.textContent = ppl.people.length ? `${ppl.people.length} people` : 'No people yet: faces are grouped as the library is indexed.';
  } catch (e) {
    status.textContent = '';
    libFailed('people-na', 'People', e);
  }
}

function faceCard(f) {
  const move = el('select', { class: 'move', 'aria-label': `move face ${f.id} to` },
    el('option', { value: '', text: 'move to…' }),
    ...ppl.people.filter((p) => p.id !== f.person_id).map((p) => el('option', { value: String(p.id), text: personLabel(p) })));
  move.addEventListener('change', async () => {
    if (!move.value) return;
    try {
      await api('PATCH', `/faces/${f.id}`, { person_id: Number(move.value) });
      await loadPeople();
      await openPerson(ppl.current);
    } catch (e) { libFailed('people-na', 'Moving a face', e); }
  });
  return el('figure', { class: 'thumb', dataset: { face: String(f.id), by: f.assigned_by || '' } },
    faceCrop(f.id, 128),
    el('figcaption', {}, el('span', { class: 'mono small', text: `#${f.id} · photo ${f.asset_id}${f.assigned_by === 'user' ? ' · yours' : ''}` }), move));
}

async function openPerson(id) {
  ppl.current = id;
  const p = ppl.people.find((x) => x.id === id);
  $('#person-panel').hidden = false;
  $('#person-panel').dataset.person = String(id);
  $('#person-title').textContent = p ? personLabel(p) : `Person ${id}`;
  $('#person-name').value = p && p.name ? p.name : '';
  $('#person-merge-from').replaceChildren(el('option', { value: '', text: 'merge in…' }),
    ...ppl.people.filter((x) => x.id !== id).map((x) => el('option', { value: String(x.id), text: personLabel(x) })));
  try {
    const res = await api('GET', `/people/${id}/faces?limit=1000`);
    $('#person-faces').replaceChildren(...res.faces.map(faceCard));
    $('#person-faces').dataset.count = String(res.faces.length);
  } catch (e) { libFailed('people-na', 'Faces of a person', e); }
}

async function personAction(fn, what) {
  try { await fn(); await loadPeople(); if (ppl.current) await openPerson(ppl.current); } catch (e) { libFailed('people-na', what, e); }
}

function setupPeople() {
  $('#people-refresh').addEventListener('click', loadPeople);
  $('#people-hidden').addEventListener('change', loadPeople);
  $('#person-rename-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('#person-name').value.trim();
    personAction(() => api('PATCH', `/people/${ppl.current}`, { name: name || null }), 'Renaming');
  });
  $('#person-merge').addEventListener('click', () => {
    const from = Number($('#person-merge-from').value);
    if (from) personAction(() => api('POST', `/people/${ppl.current}/merge`, { from: [from] }), 'Merging');
  });
  $('#people-recluster').addEventListener('click', async () => {
    try {
      const r = await api('POST', '/people/recluster');
      $('#people-status').textContent = `Re-cluster queued: job ${r.job_id}`;
    } catch (e) { libFailed('people-na', 'Re-cluster', e); }
  });
  window.addEventListener('hashchange', () => { if (location.hash === '#people') loadPeople(); });
  if (location.hash === '#people') loadPeople();
}

document.addEventListener('DOMContentLoaded', setupPeople);
