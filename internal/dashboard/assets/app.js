// The Storefleet dashboard: plain ES module, no framework, no build step. It speaks
// only the public API; every element a person acts on has an accessible name, so
// the page is usable by keyboard and screen reader and testable by role and label.

const main = document.getElementById('main');
const banner = document.getElementById('banner');
const live = document.getElementById('live');
const account = document.getElementById('account');

// h builds an element: h('a', {href: '#/'}, 'text', child…). Text goes in as text
// nodes, never as HTML: store names, reasons and diffs come from outside.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function showBanner(msg) {
  banner.textContent = msg;
  banner.hidden = !msg;
}

// ApiError carries what the server said: the status and, for problem+json, the
// problem with its field errors.
class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

async function api(method, path, body, headers = {}) {
  // The CSRF header goes on every request: with a sign-in session, the server adds
  // the token to a write only when it is there (a page of another origin cannot set it).
  const init = { method, headers: { Accept: 'application/json, application/problem+json', 'X-Storefleet-Csrf': '1', ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    if (!init.headers['Content-Type']) init.headers['Content-Type'] = 'application/json';
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { title: 'The API cannot be reached', detail: String(e.message || e) });
  }
  const type = resp.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await resp.json().catch(() => null) : null;
  if (resp.status === 401 && auth.auth) showSignedOut();
  if (!resp.ok) throw new ApiError(resp.status, data, resp.headers.get('Retry-After'));
  return { data, status: resp.status, etag: resp.headers.get('ETag') };
}

// plain says a failure in words a person can act on; the bad states the issue
// names (signed out, rate-limited, unreachable) each get their own sentence.
function plain(err) {
  if (!(err instanceof ApiError)) return String(err);
  switch (err.status) {
    case 0: return `The API cannot be reached: ${err.problem.detail}`;
    case 401: return 'Signed out: this API needs you to sign in.';
    case 403: return `Not allowed: ${err.message}`;
    case 429: return `Rate-limited: too many requests. Try again in ${err.retryAfter || 'a few'} seconds.`;
    case 503: return `Unavailable: ${err.message}${err.retryAfter ? ` (retry in ${err.retryAfter} s)` : ''}`;
    default: return `${err.problem?.title || 'Error'} (${err.status}): ${err.message}`;
  }
}

function phaseCell(phase) {
  return h('span', { class: `phase phase-${phase}` }, phase || 'unknown');
}

// ---------------------------------------------------------------------------
// One event stream per tab: /api/v1/events carries every store's status, and each
// view subscribes to it here instead of opening a connection per store.
const listeners = new Set();
let stream = null;

function startStream() {
  if (stream) return;
  stream = new EventSource('/api/v1/events');
  stream.addEventListener('open', () => { live.textContent = 'Live: phases update as the cluster changes.'; });
  stream.addEventListener('status', (ev) => {
    const st = JSON.parse(ev.data);
    for (const fn of listeners) fn('status', st);
  });
  stream.addEventListener('event', (ev) => {
    const ke = JSON.parse(ev.data);
    for (const fn of listeners) fn('event', ke);
  });
  stream.addEventListener('error', () => {
    // CLOSED: the server answered with something other than a stream (no
    // cluster: 404; signed out: 401). CONNECTING: the browser retries by itself.
    if (stream.readyState === EventSource.CLOSED) {
      live.textContent = 'Not live: phases are what the fleet repository says (no cluster connected, or the stream was refused). Reload to refresh.';
    } else {
      live.textContent = 'Reconnecting to the live stream…';
    }
  });
}

// A page being left closes its stream itself. Left open, a stream outlives the page
// for a while (the back/forward cache keeps pages), and six of them use up the
// browser's connections to this host: the next page's requests then wait (seen
// after six reloads in the benchmark).
window.addEventListener('pagehide', () => { if (stream) { stream.close(); stream = null; } });
window.addEventListener('pageshow', (e) => { if (e.persisted && (!auth.auth || auth.signedIn)) startStream(); });

function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// ---------------------------------------------------------------------------
// The store list.
const PHASES = ['requested', 'committed', 'sourceFetched', 'applied', 'installing', 'upgrading', 'ready', 'failed',
  'deleting', 'retained', 'purging', 'deleted', 'unknown'];
let schema = null;

async function loadSchema() {
  if (!schema) schema = (await api('GET', '/openapi.json')).data;
  return schema;
}

function enumOf(s, name) {
  return s.components.schemas[name].enum;
}

function select(id, label, options, value, anyLabel) {
  return h('div', {},
    h('label', { for: id }, label),
    h('select', { id, name: id },
      anyLabel ? h('option', { value: '' }, anyLabel) : null,
      options.map((o) => h('option', { value: o, selected: o === value }, o))));
}

async function viewList(params) {
  document.title = 'Stores · Storefleet';
  const s = await loadSchema().catch(() => null);
  const engines = s ? enumOf(s, 'Engine') : ['woocommerce', 'medusa'];
  const plans = s ? enumOf(s, 'Plan') : ['basic', 'standard', 'premium'];
  const q = new URLSearchParams(params);
  const tbody = h('tbody');
  const count = h('p', { role: 'status', 'aria-live': 'polite' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter stores' },
    select('f-engine', 'Engine', engines, q.get('engine'), 'any'),
    select('f-plan', 'Plan', plans, q.get('plan'), 'any'),
    select('f-phase', 'Phase', PHASES, q.get('phase'), 'any'),
    h('div', {}, h('label', { for: 'f-tenant' }, 'Tenant'),
      h('input', { id: 'f-tenant', type: 'text', value: q.get('tenant') || '', autocomplete: 'off' })),
    h('div', {}, h('label', { for: 'f-text' }, 'Name, domain or title contains'),
      h('input', { id: 'f-text', type: 'search', value: q.get('q') || '' })),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const n = new URLSearchParams();
    for (const [k, id] of [['engine', 'f-engine'], ['plan', 'f-plan'], ['phase', 'f-phase'], ['tenant', 'f-tenant'], ['q', 'f-text']]) {
      const v = form.querySelector(`#${id}`).value;
      if (v) n.set(k, v);
    }
    location.hash = `#/?${n}`;
  });
  const pager = h('div', { class: 'pager' });
  main.replaceChildren(h('h1', {}, 'Stores'), form,
    h('table', {}, h('caption', {}, 'Stores and their phases'),
      h('thead', {}, h('tr', {}, ['Name', 'Engine', 'Plan', 'Tenant', 'Phase', 'Reason'].map((c) => h('th', { scope: 'col' }, c)))),
      tbody),
    count, pager);

  const rows = new Map();
  const api_q = new URLSearchParams({ limit: '100' });
  for (const k of ['engine', 'plan', 'phase', 'tenant', 'q', 'continue']) if (q.get(k)) api_q.set(k, q.get(k));
  let list;
  try {
    list = (await api('GET', `/api/v1/stores?${api_q}`)).data;
  } catch (err) {
    showBanner(plain(err));
    return () => {};
  }
  // Every filter is the server's: it pages the matches, so the next page holds
  // more of them rather than whatever followed on the unfiltered list.
  const items = list.items;
  for (const st of items) {
    const phase = h('td', {}, phaseCell(st.status?.phase));
    const reason = h('td', {}, st.status?.reason || '');
    rows.set(st.name, { phase, reason });
    tbody.append(h('tr', {},
      h('th', { scope: 'row' }, h('a', { href: `#/stores/${encodeURIComponent(st.name)}` }, st.name)),
      h('td', {}, st.engine), h('td', {}, st.plan), h('td', {}, st.tenant || ''), phase, reason));
  }
  count.textContent = items.length ? `${items.length} stores on this page.` : 'No stores match.';
  if (q.get('continue')) pager.append(h('button', { type: 'button', class: 'secondary', onclick: () => history.back() }, 'Previous page'));
  if (list.continue) {
    const next = new URLSearchParams(q);
    next.set('continue', list.continue);
    pager.append(h('button', { type: 'button', onclick: () => { location.hash = `#/?${next}`; } }, 'Next page'));
  }
  return subscribe((kind, st) => {
    if (kind !== 'status') return;
    const row = rows.get(st.store);
    if (!row) return;
    row.phase.replaceChildren(phaseCell(st.phase));
    row.reason.textContent = st.reason || '';
  });
}

// ---------------------------------------------------------------------------
// The create form, built from the OpenAPI schema of StoreSpec.
function fieldId(path) {
  return `fld-${path.replace(/\./g, '-')}`;
}

function inputFor(s, path, prop, required) {
  const id = fieldId(path);
  const hint = prop.description ? h('p', { class: 'hint', id: `${id}-hint` }, prop.description) : null;
  const err = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const ref = prop.$ref ? s.components.schemas[prop.$ref.split('/').pop()] : prop;
  const described = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(' ');
  const label = path.split('.').pop();
  let control;
  if (ref.enum) {
    control = h('select', { id, name: path, required, 'aria-describedby': described },
      required ? null : h('option', { value: '' }, '(default)'),
      ref.enum.map((o) => h('option', { value: o }, o)));
  } else {
    control = h('input', { id, name: path, type: 'text', required, 'aria-describedby': described, autocomplete: 'off' });
  }
  return h('div', { class: 'field' }, h('label', { for: id }, label + (required ? ' (required)' : '')), control, hint, err);
}

// showFieldErrors puts each problem+json error next to its field; an error about
// no field on the form goes to the banner, so nothing the server said is lost.
function showFieldErrors(form, err) {
  for (const e of form.querySelectorAll('.field-error')) { e.hidden = true; e.textContent = ''; }
  for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
  const rest = [];
  let first = null;
  for (const fe of err.problem?.errors || []) {
    const control = form.querySelector(`#${CSS.escape(fieldId(fe.field))}`);
    if (!control) { rest.push(`${fe.field}: ${fe.detail || fe.rule}`); continue; }
    const p = form.querySelector(`#${CSS.escape(fieldId(fe.field))}-error`);
    p.textContent = `${fe.detail || 'invalid'} (rule ${fe.rule})`;
    p.hidden = false;
    control.setAttribute('aria-invalid', 'true');
    first = first || control;
  }
  showBanner(rest.length || !err.problem?.errors?.length ? `${plain(err)}${rest.length ? ` — ${rest.join('; ')}` : ''}` : '');
  if (first) first.focus();
}

async function viewCreate() {
  document.title = 'New store · Storefleet';
  let s;
  try {
    s = await loadSchema();
  } catch (err) {
    showBanner(plain(err));
    return () => {};
  }
  const spec = s.components.schemas.StoreSpec;
  const settings = s.components.schemas.Settings;
  const req = new Set(spec.required || []);
  const form = h('form', { 'aria-labelledby': 'create-title', novalidate: true });
  for (const [name, prop] of Object.entries(spec.properties)) {
    if (name === 'settings') continue;
    form.append(inputFor(s, name, prop, req.has(name)));
  }
  form.append(h('fieldset', {}, h('legend', {}, 'Settings'),
    Object.entries(settings.properties).map(([name, prop]) => inputFor(s, `settings.${name}`, prop, false))));
  form.append(h('button', { type: 'submit' }, 'Create store'));
  // One key per form: a double submit or a retry after a lost answer is the same request.
  let key = crypto.randomUUID();
  form.addEventListener('input', () => { key = crypto.randomUUID(); });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {};
    for (const el of form.querySelectorAll('input, select')) {
      if (!el.value) continue;
      const [a, b] = el.name.split('.');
      if (b) (body[a] ||= {})[b] = el.value;
      else body[a] = el.value;
    }
    try {
      await api('POST', '/api/v1/stores', body, { 'Idempotency-Key': key });
      showBanner('');
      location.hash = `#/stores/${encodeURIComponent(body.name)}`;
    } catch (err) {
      showFieldErrors(form, err);
    }
  });
  main.replaceChildren(h('h1', { id: 'create-title' }, 'New store'), form);
  return () => {};
}

// ---------------------------------------------------------------------------
// A store's page.
function diffView(changes) {
  if (!changes.length) return h('p', {}, 'Nothing would change.');
  return changes.map((c) => h('div', {},
    h('h3', {}, `${c.op} ${c.path}`),
    h('pre', { class: 'diff' }, c.diff.split('\n').map((line) =>
      h('span', { class: line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : '' }, line + '\n')))));
}

function statusSection(st) {
  const steps = st.steps || [];
  return [
    h('dl', { class: 'facts' },
      h('dt', {}, 'Phase'), h('dd', {}, phaseCell(st.phase)),
      st.reason ? [h('dt', {}, 'Reason'), h('dd', {}, st.reason)] : null,
      st.message ? [h('dt', {}, 'Message'), h('dd', {}, st.message)] : null,
      st.drifted ? [h('dt', {}, 'Drift'), h('dd', {}, st.driftMessage || 'the cluster differs from the fleet')] : null,
      st.clusterConnected === false ? [h('dt', {}, 'Cluster'), h('dd', {}, 'unreachable: the phase may be stale')] : null),
    steps.length ? h('ol', { class: 'timeline', 'aria-label': 'Steps' },
      steps.map((s) => h('li', { 'data-state': s.state },
        `${s.name}: ${s.state}`, s.time ? ` (${new Date(s.time).toLocaleTimeString()})` : ''))) : null,
  ];
}

async function viewStore(name) {
  document.title = `${name} · Storefleet`;
  let got;
  try {
    got = await api('GET', `/api/v1/stores/${encodeURIComponent(name)}`);
  } catch (err) {
    main.replaceChildren(h('h1', {}, name), h('p', {}, plain(err)));
    return () => {};
  }
  const st = got.data;
  let etag = got.etag;
  const statusBox = h('section', { 'aria-labelledby': 'status-h' });
  const renderStatus = (s) => statusBox.replaceChildren(h('h2', { id: 'status-h' }, 'Status'), ...statusSection(s));
  renderStatus(st.status);
  const eventsList = h('ul', { 'aria-label': 'Kubernetes events' });
  const histBody = h('tbody');
  const actions = h('section', { 'aria-labelledby': 'actions-h' });

  main.replaceChildren(
    h('h1', {}, name),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Engine'), h('dd', {}, st.engine), h('dt', {}, 'Plan'), h('dd', { id: 'fact-plan' }, st.plan),
      h('dt', {}, 'Version'), h('dd', {}, st.version || ''), h('dt', {}, 'Domain'), h('dd', {}, st.domain || ''),
      h('dt', {}, 'Tenant'), h('dd', {}, st.tenant || ''), h('dt', {}, 'Cluster'), h('dd', {}, st.cluster)),
    statusBox, actions,
    h('section', { 'aria-labelledby': 'hist-h' }, h('h2', { id: 'hist-h' }, 'History'),
      h('table', {}, h('caption', {}, 'Changes, newest first'),
        h('thead', {}, h('tr', {}, ['When', 'Action', 'Actor', 'Request id', 'Commit', 'Diff'].map((c) => h('th', { scope: 'col' }, c)))),
        histBody)),
    h('section', { 'aria-labelledby': 'ev-h' }, h('h2', { id: 'ev-h' }, 'Events'), eventsList));

  const openDiffs = new Set();
  // historyRows is one change and, below it, its diff once asked for: fetched
  // on demand, since a long history's diffs would be a large first load.
  const historyRows = (e) => {
    const sha = e.commit?.sha || '';
    const short = sha.slice(0, 10);
    const shown = h('tr', { hidden: true }, h('td', { colspan: 6 }));
    const btn = h('button', { type: 'button', class: 'secondary', 'aria-expanded': 'false', 'aria-label': `Changes of ${short}` }, 'Show');
    const open = async () => {
      let body;
      try {
        const c = (await api('GET', `/api/v1/stores/${encodeURIComponent(name)}/history/${sha}`)).data;
        body = c.changes.length ? diffView(c.changes) : [h('p', {}, 'No file of this store changed.')];
      } catch (err) {
        body = [h('p', {}, plain(err))];
      }
      shown.firstChild.replaceChildren(h('div', { role: 'region', 'aria-label': `Changes in ${short}` }, ...body));
      shown.hidden = false;
      btn.setAttribute('aria-expanded', 'true');
      btn.textContent = 'Hide';
    };
    btn.addEventListener('click', () => {
      if (btn.getAttribute('aria-expanded') === 'true') {
        openDiffs.delete(sha);
        btn.setAttribute('aria-expanded', 'false');
        btn.textContent = 'Show';
        shown.hidden = true;
        return;
      }
      openDiffs.add(sha);
      open();
    });
    // The history is reloaded as the store's phase changes: a diff the person
    // opened stays open.
    if (openDiffs.has(sha)) open();
    return [h('tr', {},
      h('td', {}, e.commit?.time ? new Date(e.commit.time).toLocaleString() : ''),
      h('td', {}, e.action), h('td', {}, e.actor + (e.onBehalfOf ? ` for ${e.onBehalfOf}` : '')),
      h('td', {}, h('a', { href: `/api/v1/requests/${encodeURIComponent(e.requestId)}` }, e.requestId)),
      h('td', {}, h('code', {}, short)), h('td', {}, sha ? btn : '')), shown];
  };

  const loadHistory = async () => {
    try {
      const hist = (await api('GET', `/api/v1/stores/${encodeURIComponent(name)}/history`)).data;
      histBody.replaceChildren(...(hist.items || []).flatMap(historyRows));
    } catch (err) {
      histBody.replaceChildren(h('tr', {}, h('td', { colspan: 6 }, plain(err))));
    }
  };
  loadHistory();

  const refresh = async () => {
    try {
      const g = await api('GET', `/api/v1/stores/${encodeURIComponent(name)}`);
      etag = g.etag;
      document.getElementById('fact-plan').textContent = g.data.plan;
      renderStatus(g.data.status);
      renderActions(g.data);
    } catch (err) {
      if (err.status === 404) {
        actions.replaceChildren(h('h2', { id: 'actions-h' }, 'Actions'), h('p', {}, 'This store is gone: purged.'));
      } else showBanner(plain(err));
    }
    loadHistory();
  };

  function renderActions(cur) {
    const phase = cur.status?.phase;
    const deleted = ['retained', 'purging', 'deleted', 'deleting'].includes(phase);
    const parts = [h('h2', { id: 'actions-h' }, 'Actions')];
    if (!deleted) parts.push(updatePanel(cur), deletePanel());
    else parts.push(purgePanel(phase));
    actions.replaceChildren(...parts);
  }

  function updatePanel(cur) {
    const preview = h('div', { role: 'region', 'aria-label': 'Changes to confirm', hidden: true });
    const plans = schema ? enumOf(schema, 'Plan') : ['basic', 'standard', 'premium'];
    const form = h('form', { class: 'panel', 'aria-label': 'Change this store' },
      h('div', { class: 'field' }, h('label', { for: 'up-plan' }, 'New plan'),
        h('select', { id: 'up-plan' }, plans.map((p) => h('option', { value: p, selected: p === cur.plan }, p)))),
      h('div', { class: 'field' }, h('label', { for: 'up-version' }, 'New version'),
        h('input', { id: 'up-version', type: 'text', value: cur.version || '', 'aria-describedby': 'fld-version-error' }),
        h('p', { class: 'field-error', id: 'fld-version-error', hidden: true })),
      h('div', { class: 'field' }, h('label', { for: 'up-title' }, 'New title'),
        h('input', { id: 'up-title', type: 'text', value: cur.settings?.title || '', 'aria-describedby': 'fld-settings-title-error' }),
        h('p', { class: 'field-error', id: 'fld-settings-title-error', hidden: true })),
      h('p', { class: 'field-error', id: 'fld-plan-error', hidden: true }),
      h('button', { type: 'submit' }, 'Preview change'), preview);
    const patch = () => {
      const p = {};
      const plan = form.querySelector('#up-plan').value;
      const version = form.querySelector('#up-version').value;
      const title = form.querySelector('#up-title').value;
      if (plan !== cur.plan) p.plan = plan;
      if (version && version !== (cur.version || '')) p.version = version;
      if (title !== (cur.settings?.title || '')) p.settings = { title };
      return p;
    };
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const p = patch();
      const path = `/api/v1/stores/${encodeURIComponent(name)}`;
      const hdr = { 'Content-Type': 'application/merge-patch+json' };
      try {
        const dry = await api('PATCH', `${path}?dryRun=true`, p, hdr);
        showBanner('');
        const confirm = h('button', { type: 'button', onclick: async () => {
          confirm.disabled = true;
          try {
            await api('PATCH', path, p, { ...hdr, 'If-Match': etag, 'Idempotency-Key': crypto.randomUUID() });
            live.textContent = `Change to ${name} committed.`;
            refresh();
          } catch (err) {
            confirm.disabled = false;
            showBanner(err.status === 412 ? 'Someone changed this store since you looked: preview again.' : plain(err));
          }
        } }, 'Confirm change');
        preview.replaceChildren(h('h3', {}, 'What would change'), ...diffView(dry.data.changes || []),
          dry.data.changes?.length ? confirm : null,
          h('button', { type: 'button', class: 'secondary', onclick: () => { preview.hidden = true; } }, 'Cancel'));
        preview.hidden = false;
        (dry.data.changes?.length ? confirm : preview).focus?.();
      } catch (err) {
        showFieldErrors(form, err);
      }
    });
    return form;
  }

  function deletePanel() {
    const btn = h('button', { type: 'button', class: 'danger' }, 'Delete store');
    const box = h('div', { class: 'panel' },
      h('p', {}, 'Deleting uninstalls the app and keeps the namespace and its data; purging the data is a second step.'), btn);
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      try {
        await api('DELETE', `/api/v1/stores/${encodeURIComponent(name)}`, undefined, { 'Idempotency-Key': crypto.randomUUID() });
        live.textContent = `${name} deleted; its data is kept.`;
        refresh();
      } catch (err) {
        btn.disabled = false;
        showBanner(plain(err));
      }
    });
    return box;
  }

  function purgePanel(phase) {
    const input = h('input', { id: 'purge-confirm', type: 'text', autocomplete: 'off', 'aria-describedby': 'purge-hint' });
    const btn = h('button', { type: 'submit', class: 'danger', disabled: true }, 'Purge data');
    input.addEventListener('input', () => { btn.disabled = input.value !== name; });
    const form = h('form', { class: 'panel', 'aria-label': 'Purge this store' },
      h('p', { id: 'purge-hint' }, phase === 'purging'
        ? 'Purging: the first step is committed. Once Flux has applied it, purge again to remove the folder (with a cluster connected gitops-api does it itself).'
        : 'The store is deleted and its data kept. Purging removes the namespace and its volumes for good.'),
      h('div', { class: 'field' }, h('label', { for: 'purge-confirm' }, `Type ${name} to confirm`), input), btn);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (input.value !== name) return;
      btn.disabled = true;
      try {
        await api('DELETE', `/api/v1/stores/${encodeURIComponent(name)}?purge=true`, undefined, { 'Idempotency-Key': crypto.randomUUID() });
        live.textContent = `Purge of ${name} committed.`;
        refresh();
      } catch (err) {
        btn.disabled = false;
        showBanner(plain(err));
      }
    });
    return form;
  }

  renderActions(st);
  return subscribe((kind, ev) => {
    if (kind === 'status' && ev.store === name) {
      renderStatus(ev);
      if (['retained', 'purging', 'deleted', 'ready', 'failed'].includes(ev.phase)) refresh();
    } else if (kind === 'event' && ev.store === name) {
      eventsList.prepend(h('li', {}, `${ev.type || ''} ${ev.reason || ''}: ${ev.message || ''}`.trim()));
    }
  });
}

// ---------------------------------------------------------------------------
// Sign-in: the server keeps the token (HttpOnly session cookie); the page only asks
// whether this browser is signed in, and links to /auth/login.
let auth = { auth: false, signedIn: false };

function showSignedOut() {
  auth.signedIn = false;
  account.replaceChildren(h('a', { href: '/auth/login' }, 'Sign in'));
}

async function loadSession() {
  try {
    const r = await fetch('/auth/session', { headers: { Accept: 'application/json' } });
    if (r.ok) auth = await r.json();
  } catch {
    // No session endpoint answering: treat as no sign-in; the API's 401s still show.
  }
  if (!auth.auth) return;
  if (!auth.signedIn) { showSignedOut(); return; }
  const out = h('button', { type: 'button', class: 'secondary' }, 'Sign out');
  out.addEventListener('click', async () => {
    await fetch('/auth/logout', { method: 'POST', headers: { 'X-Storefleet-Csrf': '1' } });
    location.assign('/');
  });
  account.replaceChildren(out);
}

function viewSignedOut() {
  document.title = 'Signed out · Storefleet';
  main.replaceChildren(h('h1', {}, 'Signed out'),
    h('p', {}, 'This Storefleet API needs you to sign in with your organisation\'s account.'),
    h('p', {}, h('a', { href: '/auth/login' }, 'Sign in')));
  return () => {};
}

// ---------------------------------------------------------------------------
// Hash routing: the server serves one page; #/…, #/new and #/stores/<name> are views.
let leave = () => {};

async function route() {
  leave();
  showBanner('');
  const hash = location.hash.slice(1) || '/';
  const [p, query] = hash.split('?');
  let view;
  if (auth.auth && !auth.signedIn) view = viewSignedOut();
  else if (p === '/new') view = viewCreate();
  else if (p.startsWith('/stores/')) view = viewStore(decodeURIComponent(p.slice('/stores/'.length)));
  else view = viewList(query || '');
  leave = (await view) || (() => {});
  main.focus({ preventScroll: true });
}

window.addEventListener('hashchange', route);
await loadSession();
if (!auth.auth || auth.signedIn) startStream();
route();
