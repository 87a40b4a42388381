// The operator's page (/admin): rooms, their participants and viewer legs with network health,
// a live plot per leg, kick and close. Polls the admin API every 2 s with the token from the
// URL fragment (`/admin#token=…`, never sent to the server) or from the sign-in form.
import { fragmentToken } from '/web/whip.js';

const POLL_MS = 2000;
const WINDOW_MS = 60_000;
const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;

// Health thresholds (loss as a fraction, RTT in ms): below both of a row = that level.
const GOOD = { loss: 0.02, rtt: 150 };
const FAIR = { loss: 0.08, rtt: 400 };

// Exposed for the browser test (and the curious operator's console).
const state = window.wispAdmin = {
  rooms: [],          // GET /api/rooms → rooms
  room: null,         // GET /api/rooms/{selected}, null when none is selected or it is gone
  selected: new URLSearchParams(location.search).get('room') || null,
  polls: 0,           // completed polls, successful or not
  error: null,        // the last poll's error text, null when it worked
  history: new Map(), // leg key → { samples: [{ t, bps, loss }], bytes, t }
  refresh: () => refresh(),
};

let token = fragmentToken().token;
let timer = null;
let inflight = null;
let again = false;
let authFailed = false;

// ---- API ------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, text) {
    super(text);
    this.status = status;
  }
}

async function api(method, path) {
  let res;
  try {
    res = await fetch(path, { method, headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'the server cannot be reached');
  }
  const text = await res.text();
  if (!res.ok) {
    const why = text.trim() || res.statusText || 'no reason given';
    throw new ApiError(res.status, `${why} (HTTP ${res.status})`);
  }
  return text ? JSON.parse(text) : null;
}

// ---- polling --------------------------------------------------------------------------------

/** Polls now (once; a call while a poll runs makes it run again after), then every 2 s. */
function refresh() {
  if (inflight) { again = true; return inflight; }
  clearTimeout(timer);
  inflight = poll().finally(() => {
    inflight = null;
    if (again) { again = false; refresh(); return; }
    if (!authFailed) timer = setTimeout(refresh, POLL_MS);
  });
  return inflight;
}

async function poll() {
  let gone = '';
  try {
    const list = await api('GET', '/api/rooms');
    state.rooms = (list.rooms || []).slice().sort((a, b) => a.id.localeCompare(b.id));
    if (state.selected) {
      const sel = state.selected;
      if (!state.rooms.some((r) => r.id === sel)) {
        state.room = null;
        gone = `Room “${sel}” is gone: it was closed or everyone left. It shows again if someone joins it.`;
      } else {
        try {
          const room = await api('GET', `/api/rooms/${enc(sel)}`);
          if (state.selected === sel) { state.room = room; record(room); }
        } catch (e) {
          if (e.status !== 404) throw e;
          state.room = null;
          gone = `Room “${sel}” is gone: it was closed or everyone left. It shows again if someone joins it.`;
        }
      }
    } else {
      state.room = null;
    }
    state.error = null;
    authFailed = false;
    connection(`live · updated ${new Date().toLocaleTimeString()}`, 'good');
  } catch (e) {
    state.error = e.message;
    if (e.status === 401 || e.status === 403) {
      authFailed = true;
      askToken(e.status === 401 ? `The server refused this token: ${e.message}` : `This token may not administer these rooms: ${e.message}`);
      connection('signed out', 'bad');
    } else {
      connection(`reconnecting… (${e.message}; showing the last data)`, 'bad');
    }
  }
  state.polls += 1;
  $('gone').textContent = gone;
  render();
}

function connection(text, kind) {
  const c = $('conn');
  c.textContent = text;
  c.className = `state conn ${kind}`;
}

// ---- token ----------------------------------------------------------------------------------

function askToken(message) {
  $('admin').hidden = true;
  $('token-form').hidden = false;
  $('token-error').textContent = message || '';
  $('token').focus();
}

$('token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  token = $('token').value.trim();
  if (!token) return;
  $('token').value = '';
  authFailed = false;
  $('token-form').hidden = true;
  $('admin').hidden = false;
  connection('connecting…', '');
  refresh();
});

// ---- history and health -----------------------------------------------------------------------

/**
 * One sample per leg and publisher per poll: bitrate from byte deltas, loss from the receiver
 * reports (fractionLost); for a publisher, whose packets the server itself receives, from the
 * server's own lost/received counts when no fraction is reported.
 */
function record(room) {
  const now = performance.now();
  const seen = new Set();
  const add = (key, streams, fallbackBps, reported, counted) => {
    seen.add(key);
    let h = state.history.get(key);
    if (!h) { h = { samples: [], bytes: null, packets: null, lost: null, t: null, counted: null }; state.history.set(key, h); }
    const withStats = streams.filter((s) => s.stats);
    const bytes = withStats.reduce((n, s) => n + s.stats.bytes, 0);
    const packets = withStats.reduce((n, s) => n + s.stats.packets, 0);
    const lost = withStats.reduce((n, s) => n + Math.max(0, s.stats.packetsLost), 0);
    let bps = fallbackBps;
    const fresh = h.bytes != null && withStats.length && now > h.t;
    if (fresh && bytes >= h.bytes) bps = Math.round(((bytes - h.bytes) * 8 * 1000) / (now - h.t));
    let loss = reported;
    if (loss == null && counted) {
      h.counted = null;
      if (fresh && packets >= h.packets && lost >= h.lost && packets - h.packets + lost - h.lost > 0) {
        h.counted = (lost - h.lost) / (packets - h.packets + lost - h.lost);
      }
      loss = h.counted;
    }
    h.bytes = withStats.length ? bytes : null;
    h.packets = packets;
    h.lost = lost;
    h.t = now;
    h.samples.push({ t: now, bps, loss });
    while (h.samples.length && h.samples[0].t < now - WINDOW_MS) h.samples.shift();
  };
  for (const p of room.participants || []) {
    add(upKey(p), p.tracks || [], sum(p.tracks, 'bitrateBps'), worstLoss(p.tracks), true);
  }
  for (const v of room.viewers || []) {
    add(legKey(v), v.slots || [], sum(v.slots, 'bitrateBps'), worstLoss(v.slots), false);
  }
  for (const key of [...state.history.keys()]) if (!seen.has(key)) state.history.delete(key);
}

const upKey = (p) => `up:${p.session || p.id}`;
const legKey = (v) => `leg:${v.session}`;
const sum = (xs, field) => (xs || []).reduce((n, x) => n + (x[field] || 0), 0);

function worstLoss(streams) {
  const fs = (streams || []).map((s) => s.stats?.fractionLost).filter((f) => f != null);
  return fs.length ? Math.max(...fs) : null;
}

function worstRtt(streams, network) {
  const rs = (streams || []).map((s) => s.stats?.rttMs).filter((r) => r != null);
  if (rs.length) return { ms: Math.max(...rs), from: 'RTCP' };
  if (network?.iceRttMs != null) return { ms: network.iceRttMs, from: 'ICE' };
  return null;
}

/** good/fair/poor from loss and RTT, with the reason in words. */
function health(loss, rtt, { counted = false } = {}) {
  const rttText = rtt ? `RTT ${fmtMs(rtt.ms)} (${rtt.from})` : 'RTT unknown';
  if (loss == null) {
    return { level: 'none', label: 'no reports yet', reason: `no ${counted ? 'loss counts' : 'receiver reports'} yet; ${rttText}` };
  }
  const lossText = `loss ${fmtPct(loss)}${counted ? ' (counted here)' : ''}`;
  const r = rtt ? rtt.ms : 0;
  if (loss < GOOD.loss && r < GOOD.rtt) return { level: 'good', label: 'good', reason: `${lossText}, ${rttText}` };
  const why = [];
  if (loss >= GOOD.loss) why.push(`${lossText} ≥ ${fmtPct(loss >= FAIR.loss ? FAIR.loss : GOOD.loss)}`);
  if (r >= GOOD.rtt) why.push(`${rttText} ≥ ${r >= FAIR.rtt ? FAIR.rtt : GOOD.rtt} ms`);
  if (loss < FAIR.loss && r < FAIR.rtt) return { level: 'fair', label: 'fair', reason: why.join(', ') };
  return { level: 'poor', label: 'poor', reason: why.join(', ') };
}

// ---- formatting -----------------------------------------------------------------------------

function fmtBps(n) {
  if (n == null) return '—';
  if (n < 1000) return `${Math.round(n)} bit/s`;
  if (n < 1e6) return `${Math.round(n / 1000)} kbit/s`;
  return `${(n / 1e6).toFixed(2)} Mbit/s`;
}
const fmtPct = (f) => (f == null ? '—' : `${(f * 100).toFixed(f > 0 && f < 0.1 ? 1 : 0)}%`);
const fmtMs = (ms) => (ms == null ? '—' : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`);
const fmtRes = (w, h) => (w && h ? `${w}×${h}` : '—');
function fmtDur(s) {
  if (s == null) return '—';
  s = Math.floor(s);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}
function fmtLayer(layer) {
  if (layer == null) return '—';
  return layer === '' ? 'single' : layer;
}
function fmtNet(n) {
  if (!n || !n.remoteCandidate) return 'not connected';
  const via = `${n.remoteCandidate}${n.protocol ? `/${n.protocol}` : ''}`;
  return n.remoteCandidate === 'relay' ? `${via} (through TURN)` : via;
}

// ---- DOM helpers ----------------------------------------------------------------------------

/** h('td', { class: 'num' }, 'text', node…): element with attributes; strings become text. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function table(caption, heads, rows, foot) {
  return h('table', {},
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, heads.map(([t, cls]) => h('th', { scope: 'col', class: cls }, t)))),
    h('tbody', {}, rows),
    foot ? h('tfoot', {}, h('tr', {}, h('td', { colspan: heads.length, class: 'muted' }, foot))) : null);
}

function badge(hl) {
  return h('span', { class: 'health' },
    h('span', { class: `badge ${hl.level}`, 'data-health': hl.level, title: hl.reason }, hl.label),
    ' ', h('span', { class: 'small muted reason' }, hl.reason));
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** A 60 s plot: bitrate (blue line, own scale) and loss (red, 0..max(5%, peak)). */
function sparkline(key, label) {
  const W = 240; const H = 46;
  const samples = state.history.get(key)?.samples || [];
  const now = performance.now();
  const x = (t) => (W * (t - (now - WINDOW_MS))) / WINDOW_MS;
  const peak = Math.max(1000, ...samples.map((s) => s.bps || 0));
  const lossPeak = Math.max(0.05, ...samples.map((s) => s.loss || 0));
  const y = (v, max) => (H - 3 - ((H - 6) * v) / max).toFixed(1);
  const el = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img' });
  const last = samples[samples.length - 1];
  const lossNow = last?.loss;
  el.setAttribute('aria-label', `${label}: bitrate over the last minute, now ${fmtBps(last?.bps)}, peak ${fmtBps(peak)}; loss now ${fmtPct(lossNow)}`);
  // Grid: the middle line.
  el.append(svg('line', { x1: 0, x2: W, y1: H / 2, y2: H / 2, stroke: '#21262d', 'stroke-dasharray': '2 3' }));
  const lossPts = samples.filter((s) => s.loss != null);
  if (lossPts.length) {
    el.append(svg('polyline', {
      points: lossPts.map((s) => `${x(s.t).toFixed(1)},${y(s.loss, lossPeak)}`).join(' '),
      fill: 'none', stroke: '#ff7b72', 'stroke-width': 1.5, 'stroke-dasharray': '3 2',
    }));
  }
  if (samples.length > 1) {
    const pts = samples.map((s) => `${x(s.t).toFixed(1)},${y(s.bps || 0, peak)}`);
    el.append(svg('polygon', { points: `${x(samples[0].t).toFixed(1)},${H} ${pts.join(' ')} ${x(last.t).toFixed(1)},${H}`, fill: '#58a6ff22' }));
    el.append(svg('polyline', { points: pts.join(' '), fill: 'none', stroke: '#58a6ff', 'stroke-width': 1.5 }));
  }
  if (samples.length < 2) {
    const t = svg('text', { x: W / 2, y: H / 2 + 4, 'text-anchor': 'middle', fill: '#8b949e', 'font-size': 11 });
    t.textContent = 'collecting…';
    el.append(t);
  }
  return h('div', { class: 'spark' }, el,
    h('div', { class: 'legend' },
      h('span', { class: 'bps' }, `— bitrate ${fmtBps(last?.bps)} (peak ${fmtBps(peak)})`),
      h('span', { class: 'loss' }, `‐ ‐ loss ${fmtPct(lossNow)}`)),
    h('div', { class: 'muted' }, 'last 60 s'));
}

// ---- rendering ------------------------------------------------------------------------------

function render() {
  if (authFailed || !token) return;
  $('token-form').hidden = true;
  $('admin').hidden = false;
  // Keep keyboard focus across the re-render (buttons carry a data-key).
  const focusKey = document.activeElement?.dataset?.key;

  renderRooms();
  const room = state.room;
  $('pick').hidden = !!state.selected;
  $('room-detail').hidden = !room;
  if (room) renderRoom(room);

  if (focusKey) document.querySelector(`[data-key="${CSS.escape(focusKey)}"]`)?.focus();
}

function renderRooms() {
  const list = $('rooms');
  list.replaceChildren(...state.rooms.map((r) => h('li', {},
    h('button', {
      type: 'button', 'data-key': `room:${r.id}`, 'data-room': r.id,
      'aria-current': r.id === state.selected ? 'true' : 'false',
      onclick: () => select(r.id),
    }, h('span', {}, r.id),
    h('span', { class: 'counts' }, `${r.participants} ${r.participants === 1 ? 'person' : 'people'} · ${r.viewers} ${r.viewers === 1 ? 'leg' : 'legs'}`)))));
  $('no-rooms').hidden = state.rooms.length > 0;
}

function select(id) {
  if (state.selected === id) return;
  state.selected = id;
  state.room = null;
  $('action').textContent = '';
  $('action').className = 'status';
  history.replaceState(null, '', `/admin?room=${enc(id)}${location.hash}`);
  render();
  refresh();
}

function renderRoom(room) {
  const people = (room.participants || []).slice().sort((a, b) => a.joinedAt - b.joinedAt);
  const viewers = room.viewers || [];
  const names = new Map(people.map((p) => [p.id, p.name]));
  $('room-title').textContent = `Room ${room.id}`;
  const players = viewers.filter((v) => !v.participant || !names.has(v.participant));
  $('room-counts').textContent = `${people.length} ${people.length === 1 ? 'participant' : 'participants'} · ${viewers.length} viewer ${viewers.length === 1 ? 'leg' : 'legs'} (${players.length} ${players.length === 1 ? 'player' : 'players'})`;
  $('close-room').setAttribute('aria-label', `Close room ${room.id}`);

  $('room-people').replaceChildren(
    h('h3', { class: 'sr-only' }, 'Participants'),
    ...(people.length ? people.map((p) => participantCard(p, viewers.filter((v) => v.participant === p.id), names))
      : [h('p', { class: 'muted', 'data-empty': '' }, viewers.length
        ? 'Nobody publishes in this room.'
        : 'Nobody is in this room: no participants and no viewer legs. It goes away once no page follows its events.')]));

  $('room-players').replaceChildren(...(players.length ? [h('div', { class: 'card', 'data-players': '' },
    h('div', { class: 'card-head' }, h('h3', {}, 'Players'), h('span', { class: 'small muted' }, 'viewer legs of /watch pages and other WHEP players')),
    players.map((v) => legView(v, names)))] : []));
}

function participantCard(p, legs, names) {
  const up = worstRtt(p.tracks, p.network);
  return h('article', { class: 'card participant', 'data-participant': p.id, 'data-name': p.name, 'aria-label': `participant ${p.name}` },
    h('div', { class: 'card-head' },
      h('h3', {}, p.name),
      p.speaking ? h('span', { class: 'speaking-tag' }, '● speaking') : null,
      h('div', { class: 'facts' },
        h('span', { title: 'participant id' }, `id ${p.id}`),
        h('span', {}, `up ${fmtDur(p.uptimeSeconds)}`),
        h('span', { title: 'joined at' }, `joined ${new Date(p.joinedAt).toLocaleTimeString()}`),
        h('span', { class: 'net', title: 'the client\'s ICE candidate type / transport' }, fmtNet(p.network)),
        h('span', {}, `ICE RTT ${fmtMs(p.network?.iceRttMs)}`)),
      h('button', {
        type: 'button', class: 'danger small-btn push', 'data-key': `kick:${p.id}`, 'data-kick': p.name,
        'aria-label': `Kick ${p.name}`, onclick: () => kick(p),
      }, 'Kick')),
    h('h4', {}, 'Publishes'),
    h('div', { class: 'leg-body' },
      (p.tracks || []).length ? table(`${p.name}'s tracks`, [
        ['Kind'], ['Codec'], ['Layer'], ['Resolution'], ['Bitrate', 'num'], ['Packets', 'num'], ['Lost', 'num'], ['NACK / PLI', 'num'],
      ], p.tracks.map((t) => h('tr', {},
        h('td', {}, t.kind), h('td', {}, t.codec.replace(/^(audio|video)\//, '')), h('td', {}, t.kind === 'audio' ? '' : t.rid ?? 'single'),
        h('td', {}, t.kind === 'video' ? fmtRes(t.width, t.height) : ''), h('td', { class: 'num' }, fmtBps(t.bitrateBps)),
        h('td', { class: 'num' }, t.stats?.packets ?? '—'), h('td', { class: 'num' }, t.stats?.packetsLost ?? '—'),
        h('td', { class: 'num' }, t.stats ? `${t.stats.nacks} / ${t.stats.plis}` : '—'))))
        : h('p', { class: 'muted small' }, 'no tracks yet'),
      h('div', { class: 'uplink' },
        h('div', { class: 'small' }, 'upload: ', badge(uplinkHealth(p, up))),
        sparkline(upKey(p), `${p.name}'s upload`))),
    h('h4', {}, legs.length === 1 ? 'Receives (viewer leg)' : `Receives (${legs.length} viewer legs)`),
    legs.length ? legs.map((v) => legView(v, names)) : h('p', { class: 'muted small' }, 'no viewer leg'));
}

function uplinkHealth(p, rtt) {
  const reported = worstLoss(p.tracks);
  if (reported != null) return health(reported, rtt);
  const counted = state.history.get(upKey(p))?.counted;
  return health(counted ?? null, rtt, { counted: true });
}

function legView(v, names) {
  const owner = v.participant && names.has(v.participant) ? names.get(v.participant) : 'player';
  const rtt = worstRtt(v.slots, v.network);
  const hl = v.connected ? health(worstLoss(v.slots), rtt) : { level: 'off', label: 'disconnected', reason: 'ICE/DTLS not connected' };
  const target = v.target ? (names.get(v.target) || v.target) : null;
  // Slots with nobody in them and nothing flowing are summed up in one line.
  const busy = (v.slots || []).filter((s) => s.shows || s.bitrateBps > 0);
  const idle = (v.slots || []).length - busy.length;
  return h('section', { class: 'leg', 'data-leg': v.session, 'data-owner': owner, 'aria-label': `${owner === 'player' ? 'player' : `${owner}'s`} viewer leg` },
    h('div', { class: 'leg-head' },
      h('strong', {}, owner === 'player' ? 'player' : `${owner}'s leg`),
      badge(hl)),
    h('div', { class: 'leg-head small muted' },
      h('span', { title: 'WHEP session' }, `session ${v.session.slice(0, 8)}…`),
      h('span', {}, `up ${fmtDur(v.uptimeSeconds)}`),
      h('span', { class: 'net', title: 'the client\'s ICE candidate type / transport' }, fmtNet(v.network)),
      h('span', {}, `ICE RTT ${fmtMs(v.network?.iceRttMs)}`),
      h('span', { title: 'the bandwidth estimate the server sends this leg by' }, `estimate ${fmtBps(v.estimateBps)}`),
      target ? h('span', {}, `watches ${target}`) : null),
    h('div', { class: 'leg-body' },
      table(`slots of ${owner}'s leg`, [
        ['Slot'], ['Shows'], ['Layer'], ['Resolution'], ['Bitrate', 'num'], ['Loss', 'num'], ['Lost pkts', 'num'], ['Jitter', 'num'], ['RTT', 'num'], ['NACK / PLI', 'num'],
      ], busy.map((s) => {
        const st = s.stats;
        const r = st?.rttMs ?? v.network?.iceRttMs;
        return h('tr', { 'data-shows': s.showsName || '', 'data-bps': s.bitrateBps },
          h('td', {}, `${s.kind} ${s.mid}`),
          h('td', {}, s.showsName || s.shows || h('span', { class: 'muted' }, 'nobody')),
          h('td', {}, s.kind === 'audio' && s.layer != null ? '' : fmtLayer(s.layer)),
          h('td', {}, s.kind === 'video' ? fmtRes(s.width, s.height) : ''),
          h('td', { class: 'num' }, fmtBps(s.bitrateBps)),
          h('td', { class: 'num' }, fmtPct(st?.fractionLost)),
          h('td', { class: 'num' }, st?.packetsLost ?? '—'),
          h('td', { class: 'num' }, fmtMs(st?.jitterMs)),
          h('td', { class: 'num', title: st?.rttMs != null ? 'from RTCP' : 'from ICE' }, r == null ? '—' : `${fmtMs(r)}${st?.rttMs != null ? '' : ' (ICE)'}`),
          h('td', { class: 'num' }, st ? `${st.nacks} / ${st.plis}` : '—'));
      }), idle ? `${busy.length ? '+ ' : ''}${idle} idle ${idle === 1 ? 'slot' : 'slots'} (nobody to show)` : null),
      sparkline(legKey(v), `${owner}'s leg`)));
}

// ---- actions --------------------------------------------------------------------------------

function say(text, ok) {
  $('action').textContent = text;
  $('action').className = `status ${ok ? 'ok' : 'error'}`;
}

async function kick(p) {
  const room = state.selected;
  if (!confirm(`Kick ${p.name} (${p.id}) out of room ${room}? Their publishing and viewing sessions end now.`)) return;
  try {
    const r = await api('DELETE', `/api/rooms/${enc(room)}/participants/${enc(p.id)}`);
    say(`Kicked ${p.name}: ${r.ended} ${r.ended === 1 ? 'session' : 'sessions'} ended.`, true);
  } catch (e) {
    say(`Could not kick ${p.name}: ${e.message}`, false);
  }
  refresh();
}

$('close-room').addEventListener('click', async () => {
  const room = state.selected;
  if (!room) return;
  if (!confirm(`Close room ${room}? Everyone in it is disconnected.`)) return;
  try {
    const r = await api('DELETE', `/api/rooms/${enc(room)}`);
    say(`Closed room ${room}: ${r.ended} ${r.ended === 1 ? 'session' : 'sessions'} ended.`, true);
  } catch (e) {
    say(`Could not close room ${room}: ${e.message}`, false);
  }
  refresh();
});

// ---- start ----------------------------------------------------------------------------------

if (token) {
  $('admin').hidden = false;
  refresh();
} else {
  askToken('');
  connection('needs a token', '');
}
