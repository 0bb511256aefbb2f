// corral dashboard: reads everything through /api with the cookie the
// server set on the first load; the page itself carries no data.
'use strict';
(() => {
  const POLL_MS = 1000;
  const MAX_LOG_LINES = 2000;
  const MAX_EVENTS = 300;
  const COLUMNS = 10;

  // The token came in the address; the cookie stands in for it now. Out
  // of the address bar, it stays out of history, bookmarks and screenshots.
  {
    const u = new URL(location.href);
    if (u.searchParams.has('token')) {
      u.searchParams.delete('token');
      history.replaceState(null, '', u.pathname + u.search + u.hash);
    }
  }

  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (v === true) e.setAttribute(k, '');
      else if (v !== false && v != null) e.setAttribute(k, String(v));
    }
    for (const c of kids) if (c != null) e.append(c);
    return e;
  }

  // ---- formatting

  const pad = (n) => String(n).padStart(2, '0');

  function bytes(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
  }

  function duration(ms) {
    if (!(ms >= 0)) return '—';
    let s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${pad(m)}m`;
    if (m) return `${m}m ${pad(s)}s`;
    return `${s}s`;
  }

  function clock(t) {
    const d = new Date(t);
    return isNaN(d) ? '' : `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  // States in which an instance runs (uptime counts).
  const RUNNING = new Set(['starting', 'ready', 'unhealthy', 'handover', 'frozen', 'stopping', 'restarting', 'ending']);

  // Figures the status may carry (docs/api.md): CPU as seconds, GPU memory
  // as bytes, per service and per member; absent where not measured.
  const num = (v) => (typeof v === 'number' && isFinite(v) ? v : null);
  const cpuOf = (v) => num(v.cpu_seconds);
  const gpuOf = (v) => num(v.gpu_memory);

  function profilesOf(v) {
    const p = v.profiles;
    if (Array.isArray(p)) return p.filter((x) => typeof x === 'string');
    if (p && typeof p === 'object') return Object.keys(p);
    return null;
  }

  // ---- status line and notices

  let stopped = false; // a 401: the page stops asking
  let connState = '';

  function conn(ok, why) {
    const s = ok ? 'live' : 'disconnected' + (why ? ': ' + why : '');
    if (s !== connState) { // a live region: said only when it changes
      connState = s;
      $('conn').textContent = s;
      $('conn').className = ok ? 'ok' : 'bad';
    }
    if (ok) $('updated').textContent = 'updated ' + clock(Date.now());
  }

  function notice(msg) {
    const n = $('notice');
    n.textContent = msg || '';
    n.hidden = !msg;
  }

  function activity(msg) { $('activity').textContent = msg; }

  function unauthorized() {
    if (stopped) return;
    stopped = true;
    for (const c of [logCtl, eventCtl]) if (c) c.abort();
    $('services').querySelector('tbody').replaceChildren();
    rows.clear();
    conn(false, 'not authorized');
    notice('This dashboard needs its token: open the URL that corral dashboard printed (it ends in ?token=…).');
  }

  async function errorOf(res) {
    const text = await res.text().catch(() => '');
    try {
      const v = JSON.parse(text);
      if (v && typeof v.error === 'string') return v.error;
    } catch { /* not JSON */ }
    return text.trim() || `${res.status} ${res.statusText}`;
  }

  // ---- the services table

  const rows = new Map(); // name → row
  const cpuSeen = new Map(); // name → {cpu, at}: the last sample, for a rate
  let selected = null;

  function makeRow(name) {
    const r = { name, open: false, treeSig: '', profilesSig: undefined, pending: null };
    r.tr = el('tr', { 'data-service': name });
    const cell = (cls) => { const td = el('td', { class: cls }); r.tr.append(td); return td; };
    r.nameCell = cell('name');
    r.nameCell.append(el('span', { class: 'svc-name', text: name }));
    r.profileTag = el('span', { class: 'tag', hidden: true });
    r.nameCell.append(' ', r.profileTag);
    const st = cell('state-cell');
    r.badge = el('span', { class: 'state' });
    r.reason = el('span', { class: 'reason muted' });
    st.append(r.badge, ' ', r.reason);
    r.uptime = cell('num uptime');
    r.restarts = cell('num restarts');
    r.pid = cell('num pid');
    const mem = cell('num members');
    r.treeBtn = el('button', {
      type: 'button', class: 'tree-toggle', 'data-action': 'tree', 'data-service': name,
      'aria-expanded': 'false', onclick: () => toggleTree(r),
    });
    mem.append(r.treeBtn);
    r.rss = cell('num rss');
    r.cpu = cell('num col-cpu');
    r.gpu = cell('num col-gpu');
    const acts = cell('actions');
    r.buttons = {};
    for (const [verb, label] of [['start', 'Start'], ['stop', 'Stop'], ['restart', 'Restart']]) {
      r.buttons[verb] = el('button', {
        type: 'button', class: 'act act-' + verb, 'data-action': verb, 'data-service': name,
        'aria-label': `${label} ${name}`, text: label, onclick: () => act(r, verb),
      });
    }
    r.profileBox = el('span', { class: 'profile' });
    r.logsBtn = el('button', {
      type: 'button', class: 'logs-btn', 'data-action': 'logs', 'data-service': name,
      'aria-pressed': 'false', 'aria-label': `Logs of ${name}`, text: 'Logs', onclick: () => select(name),
    });
    // A flex box inside the cell: a flex cell loses its table borders.
    acts.append(el('div', { class: 'acts' }, r.buttons.start, r.buttons.stop, r.buttons.restart, r.profileBox, r.logsBtn));
    r.treeTr = el('tr', { class: 'tree-row', hidden: true });
    r.treeTd = el('td', { colspan: COLUMNS });
    r.treeTr.append(r.treeTd);
    return r;
  }

  // The profile chooser: the service's profiles when the status lists
  // them, otherwise a free field. Rebuilt only when the list changes, so
  // what the user chose stays chosen across polls.
  function updateProfiles(r, v) {
    const list = profilesOf(v);
    const sig = list ? JSON.stringify(list) : null;
    if (sig === r.profilesSig) return;
    r.profilesSig = sig;
    const keep = r.profileInput ? r.profileInput.value : '';
    const label = `Profile for ${r.name} (start and restart)`;
    if (list) {
      r.profileInput = el('select', { 'aria-label': label, 'data-service': r.name, class: 'profile-input' },
        el('option', { value: '', text: 'default profile' }),
        ...list.map((p) => el('option', { value: p, text: p })));
      if (list.includes(keep)) r.profileInput.value = keep;
    } else {
      r.profileInput = el('input', {
        type: 'text', 'aria-label': label, placeholder: 'profile', size: 9,
        'data-service': r.name, class: 'profile-input', autocomplete: 'off', spellcheck: 'false',
      });
      r.profileInput.value = keep;
    }
    r.profileBox.replaceChildren(r.profileInput);
  }

  function update(r, v, now) {
    const state = String(v.state || 'unknown');
    r.badge.textContent = state;
    r.badge.className = 'state st-' + state.replace(/[^a-z-]/g, '');
    const reason = v.reason && v.reason !== state ? String(v.reason) : '';
    r.reason.textContent = reason;
    r.reason.title = reason;
    r.tr.dataset.state = state;
    r.tr.dataset.instance = v.instance || '';
    r.profileTag.hidden = !v.profile;
    r.profileTag.textContent = v.profile ? 'profile ' + v.profile : '';
    const started = Date.parse(v.started_at);
    r.uptime.textContent = RUNNING.has(state) && started ? duration(now - started) : '—';
    r.restarts.textContent = String(v.restarts ?? 0);
    r.pid.textContent = v.pid ? String(v.pid) : '—';
    r.pid.title = v.instance ? 'instance ' + v.instance : '';
    const n = v.member_count ?? 0;
    r.treeBtn.textContent = (r.open ? '▾ ' : '▸ ') + n;
    r.treeBtn.setAttribute('aria-label', `${n} processes of ${r.name}: tree`);
    r.rss.textContent = n ? bytes(v.rss) : '—';

    const cpu = cpuOf(v);
    if (cpu == null) r.cpu.textContent = '—';
    else {
      const prev = cpuSeen.get(r.name);
      cpuSeen.set(r.name, { cpu, at: now });
      const dt = prev ? (now - prev.at) / 1000 : 0;
      r.cpu.textContent = dt > 0.2 && cpu >= prev.cpu ? Math.round((100 * (cpu - prev.cpu)) / dt) + '%' : cpu.toFixed(1) + ' s';
      r.cpu.title = cpu.toFixed(2) + ' s of CPU in total';
    }
    const gpu = gpuOf(v);
    r.gpu.textContent = gpu == null ? '—' : bytes(gpu);

    updateProfiles(r, v);
    for (const b of Object.values(r.buttons)) b.disabled = r.pending != null;
    r.buttons.restart.setAttribute('aria-busy', r.pending === 'restart' ? 'true' : 'false');

    r.members = v.members || [];
    if (r.open) renderTree(r);
  }

  function render(list, now) {
    const tbody = $('services').querySelector('tbody');
    const names = [];
    let hasCPU = false, hasGPU = false;
    for (const v of list) {
      if (!v || typeof v.name !== 'string') continue;
      names.push(v.name);
      let r = rows.get(v.name);
      if (!r) { r = makeRow(v.name); rows.set(v.name, r); }
      update(r, v, now);
      hasCPU = hasCPU || cpuOf(v) != null;
      hasGPU = hasGPU || gpuOf(v) != null;
    }
    for (const [name, r] of rows) {
      if (!names.includes(name)) { r.tr.remove(); r.treeTr.remove(); rows.delete(name); }
    }
    // Rows are moved only when the order changed: a moved button loses
    // its focus, and a click under way its target.
    const want = names.flatMap((n) => [rows.get(n).tr, rows.get(n).treeTr]);
    const have = Array.from(tbody.children);
    if (want.length !== have.length || want.some((e, i) => e !== have[i])) tbody.replaceChildren(...want);
    $('services').classList.toggle('has-cpu', hasCPU);
    $('services').classList.toggle('has-gpu', hasGPU);
    const none = 'No services are configured.';
    if (names.length === 0) notice(none);
    else if ($('notice').textContent === none) notice('');
    if ((selected === null || !rows.has(selected)) && names.length > 0) select(names[0]);
  }

  function toggleTree(r) {
    r.open = !r.open;
    r.treeTr.hidden = !r.open;
    r.treeBtn.setAttribute('aria-expanded', String(r.open));
    r.treeBtn.textContent = (r.open ? '▾ ' : '▸ ') + (r.members ? r.members.length : 0);
    r.treeSig = '';
    if (r.open) renderTree(r);
  }

  // The member tree, nested by parent pid; a member whose parent is not a
  // member (a daemon re-parented to corral or init) is a root of its own.
  function renderTree(r) {
    const ms = r.members || [];
    const sig = JSON.stringify(ms.map((m) => [m.pid, m.ppid, m.rss, m.state, gpuOf(m), cpuOf(m)]));
    if (sig === r.treeSig) return;
    r.treeSig = sig;
    if (ms.length === 0) {
      r.treeTd.replaceChildren(el('p', { class: 'muted', text: 'no processes' }));
      return;
    }
    const byPID = new Map(ms.map((m) => [m.pid, m]));
    const kids = new Map();
    const roots = [];
    for (const m of ms) {
      if (m.ppid !== m.pid && byPID.has(m.ppid)) {
        if (!kids.has(m.ppid)) kids.set(m.ppid, []);
        kids.get(m.ppid).push(m);
      } else roots.push(m);
    }
    const node = (m, depth) => {
      const cpu = cpuOf(m), gpu = gpuOf(m);
      const li = el('li', null,
        el('span', { class: 'pid', text: String(m.pid) }), ' ',
        el('span', { class: 'rss', text: bytes(m.rss) }),
        cpu != null ? el('span', { class: 'cpu', text: ' ' + cpu.toFixed(1) + ' s CPU' }) : null,
        gpu != null ? el('span', { class: 'gpu', text: ' GPU ' + bytes(gpu) }) : null, ' ',
        el('code', { text: (m.cmdline || []).join(' ') }));
      const ks = kids.get(m.pid);
      if (ks && depth < 64) li.append(el('ul', null, ...ks.map((k) => node(k, depth + 1))));
      return li;
    };
    r.treeTd.replaceChildren(el('ul', { class: 'tree', 'aria-label': `Processes of ${r.name}` }, ...roots.map((m) => node(m, 0))));
  }

  async function act(r, verb) {
    const profile = verb === 'stop' || !r.profileInput ? '' : r.profileInput.value.trim();
    const q = profile ? '?profile=' + encodeURIComponent(profile) : '';
    r.pending = verb;
    for (const b of Object.values(r.buttons)) b.disabled = true;
    activity(`${verb} ${r.name}${profile ? ' (profile ' + profile + ')' : ''}…`);
    try {
      const res = await fetch(`/api/v1/services/${encodeURIComponent(r.name)}/${verb}${q}`, { method: 'POST' });
      if (res.status === 401) { unauthorized(); return; }
      if (!res.ok) {
        notice(`${verb} ${r.name}: ${await errorOf(res)}`);
        activity('');
      } else {
        notice('');
        activity(`${verb} ${r.name}: done`);
      }
    } catch (e) {
      notice(`${verb} ${r.name}: ${e.message}`);
    } finally {
      r.pending = null;
      for (const b of Object.values(r.buttons)) b.disabled = false;
      soon();
    }
  }

  let pollTimer = null, polling = false, again = false;

  async function poll() {
    if (stopped) return;
    if (polling) { again = true; return; }
    clearTimeout(pollTimer);
    polling = true;
    try {
      const res = await fetch('/api/v1/services?members=1');
      if (res.status === 401) { unauthorized(); return; }
      if (!res.ok) throw new Error(await errorOf(res));
      const list = await res.json();
      render(Array.isArray(list) ? list : Object.values(list || {}), Date.now());
      conn(true);
    } catch (e) {
      conn(false, e.message);
    } finally {
      polling = false;
      if (!stopped) pollTimer = setTimeout(poll, again ? 0 : POLL_MS);
      again = false;
    }
  }

  let soonTimer = null;
  // soon refreshes the table shortly (an action ended, a state event
  // came): sooner than the next poll, once for a burst.
  function soon() {
    if (soonTimer) return;
    soonTimer = setTimeout(() => { soonTimer = null; poll(); }, 100);
  }

  async function daemonInfo() {
    try {
      const res = await fetch('/api/v1/daemon');
      if (res.status === 401) { unauthorized(); return; }
      if (!res.ok) return;
      const d = await res.json();
      const parts = [];
      if (d.pid) parts.push('daemon pid ' + d.pid);
      if (d.version) parts.push(String(d.version));
      if (d.mechanism) parts.push(String(d.mechanism));
      if (d.config) parts.push(String(d.config));
      $('daemon').textContent = parts.join(' · ');
    } catch { /* the poll says the connection is down */ }
  }

  // ---- streams (newline-delimited JSON, followed)

  // parseItem returns the object on line, or null for whatever is not an
  // item of the stream: blank lines, heartbeats, anything unparseable.
  function parseItem(line, valid) {
    const t = line.trim();
    if (!t || t[0] !== '{') return null;
    let v;
    try { v = JSON.parse(t); } catch { return null; }
    if (!v || typeof v !== 'object' || Array.isArray(v) || v.heartbeat) return null;
    return valid(v) ? v : null;
  }
  const isLogLine = (v) => typeof v.seq === 'number' && typeof v.text === 'string';
  const isEvent = (v) => typeof v.seq === 'number' && typeof v.kind === 'string' && v.kind !== '';

  class HTTPError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }

  // readStream calls onLine for each line of url's answer until it ends.
  // A daemon that announces heartbeats (Corral-Heartbeat-Ms) and then
  // sends nothing for two of them and 5 s is taken as gone.
  async function readStream(url, signal, onLine) {
    const inner = new AbortController();
    const abort = () => inner.abort();
    signal.addEventListener('abort', abort, { once: true });
    let timer = null, dead = false;
    try {
      const res = await fetch(url, { signal: inner.signal, headers: { Accept: 'application/x-ndjson' } });
      if (!res.ok) throw new HTTPError(res.status, await errorOf(res));
      const every = parseInt(res.headers.get('Corral-Heartbeat-Ms'), 10);
      const alive = every > 0
        ? () => { clearTimeout(timer); timer = setTimeout(() => { dead = true; inner.abort(); }, 2 * every + 5000); }
        : () => {};
      alive();
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        alive();
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          onLine(line);
        }
        if (buf.length > (4 << 20)) buf = ''; // longer than any item: garbage, not memory
      }
      buf += dec.decode();
      if (buf) onLine(buf);
    } catch (e) {
      if (dead) throw new Error('no heartbeat from the daemon');
      throw e;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
    }
  }

  const sleep = (ms, signal) => new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

  // follow reads path's stream and reconnects when it ends or breaks,
  // resuming after the last item seen (?after=SEQ). It returns the
  // controller that ends it.
  function follow(path, first, valid, onItem, onState, onRestart) {
    const ctl = new AbortController();
    (async () => {
      let last = 0, delay = 1000;
      while (!ctl.signal.aborted) {
        const q = (last > 0 ? 'after=' + last : first) + '&follow=1';
        onState('live');
        try {
          await readStream(path + '?' + q, ctl.signal, (line) => {
            const v = parseItem(line, valid);
            if (!v) return;
            last = v.seq;
            delay = 1000;
            onItem(v);
          });
          if (ctl.signal.aborted) return;
          onState('ended; reconnecting…');
        } catch (e) {
          if (ctl.signal.aborted) return;
          if (e.status === 401) { unauthorized(); return; }
          if (e.status === 404 || e.status === 400) { onState(e.message); return; } // gone, or asked wrong: retrying changes nothing
          onState('reconnecting: ' + e.message);
        }
        await sleep(delay, ctl.signal);
        delay = Math.min(2 * delay, 10000);
        if (onRestart) onRestart();
      }
    })();
    return ctl;
  }

  // ---- logs

  // A progress bar drawn with '\r' shows as its last state: the text after
  // the last '\r' (the daemon's capture does this too; a line may still
  // come with them from elsewhere). ANSI colour and cursor codes are
  // dropped.
  function lastState(text) {
    const t = text.replace(/\r+$/, '');
    const i = t.lastIndexOf('\r');
    return (i < 0 ? t : t.slice(i + 1)).replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '');
  }

  // A line that looks like a progress bar: tqdm's "45%|████▌ | 45/100 [..]"
  // or "45it [00:01, ...]", "[=====>   ] 42%", pip's "━━━━ 1.2/3.4 MB".
  const PROGRESS = /\d{1,3}(?:\.\d+)?%\s*\||\d+(?:\.\d+)?[kMGT]?(?:it|B) \[\d+:\d\d|\[[#=>.\s-]{4,}\]\s*\d{1,3}(?:\.\d+)?%|[━╸╺]{3,}.*\d\/\d/;

  function isProgress(raw, text) { return raw.includes('\r') || PROGRESS.test(text); }

  function addLine(v) {
    const box = $('logs');
    const text = lastState(v.text);
    const progress = isProgress(v.text, text);
    const stream = String(v.stream || '');
    const lastRow = box.lastElementChild;
    // Consecutive progress lines of one stream are one bar redrawn.
    if (progress && lastRow && lastRow.dataset.progress === '1' && lastRow.dataset.stream === stream) {
      lastRow.querySelector('.t').textContent = text;
      lastRow.querySelector('time').textContent = clock(v.time);
    } else {
      box.append(el('div', { class: 'line' + (stream === 'stderr' ? ' err' : ''), 'data-stream': stream, 'data-progress': progress ? '1' : '0' },
        el('time', { text: clock(v.time) }), el('span', { class: 't', text })));
      while (box.childElementCount > MAX_LOG_LINES) box.firstElementChild.remove();
    }
    if ($('logs-follow').checked) box.scrollTop = box.scrollHeight;
  }

  let logCtl = null;

  function select(name) {
    if (selected === name && logCtl) return;
    selected = name;
    for (const [n, r] of rows) r.logsBtn.setAttribute('aria-pressed', String(n === name));
    $('logs-name').textContent = '— ' + name;
    if (logCtl) logCtl.abort();
    $('logs').replaceChildren();
    logCtl = follow(`/api/v1/services/${encodeURIComponent(name)}/logs`, 'n=200', isLogLine, addLine,
      (s) => { $('logs').setAttribute('aria-busy', s === 'live' ? 'false' : 'true'); $('logs-name').textContent = '— ' + name + (s === 'live' ? '' : ' (' + s + ')'); });
  }

  // ---- events

  const REFRESH_ON = new Set(['spawn', 'ready', 'not-ready', 'main', 'handover', 'exit', 'kill', 'stopped', 'restart', 'failed', 'health', 'external', 'state', 'refused', 'runaway']);

  // eventText is the message, with the pid when the message does not
  // name it already.
  function eventText(v) {
    const msg = v.message ? String(v.message) : '';
    return v.pid && !new RegExp('\\b' + v.pid + '\\b').test(msg) ? `${msg} (pid ${v.pid})` : msg;
  }

  function addEvent(v) {
    const box = $('events');
    const kind = String(v.kind);
    box.prepend(el('div', { class: 'line ev ev-' + kind.replace(/[^a-z-]/g, '') },
      el('time', { text: clock(v.time) }),
      el('span', { class: 'kind', text: kind }),
      el('span', { class: 'svc', text: v.service ? String(v.service) : '' }),
      el('span', { class: 't', text: eventText(v) })));
    while (box.childElementCount > MAX_EVENTS) box.lastElementChild.remove();
    if (REFRESH_ON.has(kind)) soon();
  }

  let eventCtl = null;

  // ---- start

  // Reload re-reads the configuration file (corral reload): the answer
  // says what changed; a bad file changes nothing and says where it is
  // wrong.
  async function reload() {
    const b = $('reload');
    b.disabled = true;
    activity('reloading the configuration…');
    try {
      const res = await fetch('/api/v1/reload', { method: 'POST' });
      if (res.status === 401) { unauthorized(); return; }
      if (!res.ok) { notice('reload: ' + await errorOf(res)); activity(''); return; }
      const v = await res.json();
      const part = (k) => (Array.isArray(v[k]) && v[k].length ? `${k} ${v[k].join(', ')}` : null);
      notice('');
      activity('reloaded: ' + (['added', 'removed', 'changed'].map(part).filter(Boolean).join('; ') || 'nothing changed'));
    } catch (e) {
      notice('reload: ' + e.message);
    } finally {
      b.disabled = false;
      soon();
    }
  }

  $('reload').addEventListener('click', reload);
  $('logs-clear').addEventListener('click', () => $('logs').replaceChildren());
  daemonInfo();
  poll();
  eventCtl = follow('/api/v1/events', 'n=100', isEvent, addEvent, (s) => { $('events-state').textContent = s === 'live' ? '' : s; }, daemonInfo);

  // For tests and the curious: the pure parts, to run against samples.
  window.corralDashboard = { lastState, isProgress, parseItem, isLogLine, isEvent };
})();
