// The conference page: publish camera+mic with WHIP, receive everyone through ONE WHEP session
// of SLOTS audio+video slots, label tiles and highlight speakers from the room's events.
import { Session, addSendTracks, fragmentToken, peerConnection } from '/web/whip.js';

const params = new URLSearchParams(location.search);
// Slots in the one WHEP session: how many others are seen at once (last-N beyond that).
const SLOTS = Math.min(16, Math.max(1, Number(params.get('slots')) || 8));
const $ = (id) => document.getElementById(id);
const state = (text) => { $('state').textContent = text; };
const showError = (e) => { $('error').textContent = e.message || String(e); state('failed'); };

// Exposed for the browser tests.
const app = window.wisp = { me: null, roster: new Map(), slots: new Map(), speaking: new Set(), pub: null, sub: null, active: null, layers: new Map() };

$('room').value = params.get('room') || '';
$('name').value = params.get('name') || localStorage.getItem('wisp-name') || '';
// An invite link may carry a token in its fragment (never sent to the server).
const invited = fragmentToken();
if (invited.token) $('token').value = invited.token;
if (invited.name) { $('name').value = invited.name; $('name').readOnly = true; }
if (params.get('room') && $('name').value && params.has('autojoin')) queueMicrotask(() => join());
$('lobby').addEventListener('submit', (e) => { e.preventDefault(); join(); });

let local;      // MediaStream
let events;     // EventSource

async function join() {
  $('error').textContent = '';
  const room = $('room').value.trim();
  const name = $('name').value.trim();
  const token = $('token').value || undefined;
  localStorage.setItem('wisp-name', name);
  history.replaceState(null, '', `/?room=${encodeURIComponent(room)}${location.hash}`);
  $('where').textContent = `room ${room}`;
  $('invite').href = `${location.origin}/?room=${encodeURIComponent(room)}`;
  state('connecting');
  try {
    local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
  } catch (e) {
    return showError(new Error(`Camera/microphone unavailable: ${e.message}`));
  }
  if (params.has('muted')) {
    // Join muted (?muted): the microphone track is sent but silent until unmuted.
    local.getAudioTracks().forEach((t) => { t.enabled = false; });
    $('mic').textContent = 'Unmute';
  }
  $('lobby').hidden = true;
  $('room-view').hidden = false;
  $('controls').hidden = false;
  addTile('self', `${name} (you)`).querySelector('video').srcObject = local;
  await listDevices();
  app.room = room; app.name = name; app.token = token;
  try {
    // Up: WHIP.
    await startPub();
    app.me = app.pub.participant;
    // Events (EventSource cannot send a token: mint a room-scoped one when needed).
    let query = '';
    if (token) {
      const r = await fetch(`/rooms/${encodeURIComponent(room)}/access`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
      const j = await r.json();
      query = `?access=${encodeURIComponent(j.access)}`;
    }
    openEvents(`/rooms/${encodeURIComponent(room)}/events${query}`);
    // Down: one WHEP session, SLOTS audio + SLOTS video slots, myself excluded.
    await startSub();
  } catch (e) {
    showError(e);
  }
}

async function startPub(resume) {
  const endpoint = `/whip/${encodeURIComponent(app.room)}?name=${encodeURIComponent(app.name)}`;
  const pc = await peerConnection(endpoint, app.token);
  addSendTracks(pc, local, { simulcast: !params.has('nosimulcast'), videoCodec: params.get('codec') });
  app.pub = new Session(endpoint, { token: app.token, onState: onConnState, resume });
  await app.pub.start(pc);
}

async function startSub() {
  const endpoint = `/whep/${encodeURIComponent(app.room)}?self=${encodeURIComponent(app.me || '')}`;
  const pc = await peerConnection(endpoint, app.token);
  for (let i = 0; i < SLOTS; i++) {
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.addTransceiver('video', { direction: 'recvonly' });
  }
  pc.addEventListener('track', (e) => onRemoteTrack(e.transceiver.mid, e.track));
  app.sub = new Session(endpoint, { token: app.token, onState: onConnState });
  await app.sub.start(pc);
}

// Once both connections have been up, anything short of that is "reconnecting" (a new
// connection of recover() starts out "new"/"connecting", which must not read as a first join).
let wasLive = false;
function onConnState() {
  const s = [app.pub?.pc?.connectionState, app.sub?.pc?.connectionState];
  if (app.pub?.pc && app.sub?.pc && s.every((x) => x === 'connected')) wasLive = true;
  if (s.includes('failed')) { state('reconnecting'); recover(); }
  else if (s.includes('disconnected')) state('reconnecting');
  else if (s.every((x) => x === 'connected' || x === undefined)) state('live');
  else state(wasLive ? 'reconnecting' : 'connecting');
}

// A fresh POST can meet a server that is restarting (503 + Retry-After while it drains, or no
// answer at all): try again, a few seconds apart, for about two minutes, saying so in words.
async function again(post) {
  for (let attempt = 1; ; attempt++) {
    try { return await post(); } catch (e) {
      if (attempt >= 30) throw e;
      state(`reconnecting (attempt ${attempt + 1}): ${e.message}`);
      await new Promise((r) => { setTimeout(r, Math.min(2000 * attempt, 5000)); });
    }
  }
}

let recovering = false;
let failedMeanwhile = false;
// A network blip: first an ICE restart (PATCH); if the server refuses it or the session is
// gone, a fresh POST on a new connection. The publisher's fresh POST carries its resume secret
// and never DELETEs first, so it takes over its own participant: the others never see it
// leave, and nobody appears twice. A connection that fails while another is being recovered
// (the two usually fail within a moment of each other) is handled by another round.
async function recover() {
  if (recovering) { failedMeanwhile = true; return; }
  recovering = true;
  do {
    failedMeanwhile = false;
    for (const s of [app.pub, app.sub]) {
      if (!s || s.pc.connectionState !== 'failed') continue;
      try {
        await s.restartIce();
      } catch (_) {
        try {
          if (s === app.pub) {
            const resume = s.resume;
            s.abandon();
            await again(() => startPub(resume));
            app.me = app.pub.participant;
          } else {
            await s.stop();
            remoteStreams.clear(); app.layers.clear();
            remoteAudio.splice(0).forEach((a) => a.remove());
            await again(startSub);
          }
        } catch (e) { state(`failed: ${e.message}`); }
      }
    }
  } while (failedMeanwhile);
  recovering = false;
}

function addTile(key, label) {
  let tile = document.querySelector(`.tile[data-key="${key}"]`);
  if (!tile) {
    tile = document.createElement('div');
    tile.className = 'tile';
    tile.dataset.key = key;
    tile.innerHTML = '<video autoplay playsinline muted></video><span class="label"></span>';
    $('tiles').appendChild(tile);
  }
  tile.querySelector('.label').textContent = label;
  return tile;
}

const remoteStreams = new Map(); // mid -> MediaStream
const remoteAudio = []; // the <audio> elements of the current WHEP session
function onRemoteTrack(mid, track) {
  if (track.kind === 'audio') {
    const audio = new Audio();
    audio.autoplay = true;
    audio.srcObject = new MediaStream([track]);
    document.body.appendChild(audio);
    remoteAudio.push(audio);
    return;
  }
  remoteStreams.set(mid, new MediaStream([track]));
  render();
}

function openEvents(url) {
  events = new EventSource(url);
  events.addEventListener('roster', (e) => {
    // The snapshot carries who is speaking right now: someone may have started before we came.
    const data = JSON.parse(e.data);
    const ps = data.participants;
    app.active = data.activeSpeaker || null;
    app.roster = new Map(ps.map((p) => [p.id, p]));
    app.speaking = new Set(ps.filter((p) => p.speaking).map((p) => p.id));
    render();
  });
  events.addEventListener('joined', (e) => { const p = JSON.parse(e.data).participant; app.roster.set(p.id, p); render(); });
  events.addEventListener('left', (e) => { app.roster.delete(JSON.parse(e.data).id); render(); });
  // The server is shutting down (or an operator closed the room): say so; the connections
  // then fail and recover() comes back to the next server.
  events.addEventListener('closing', (e) => { state(`reconnecting: ${JSON.parse(e.data).reason}`); });
  events.addEventListener('speaking', (e) => {
    const s = JSON.parse(e.data);
    if (s.speaking) app.speaking.add(s.id); else app.speaking.delete(s.id);
    render();
  });
  events.addEventListener('active-speaker', (e) => { app.active = JSON.parse(e.data).id; render(); });
  events.addEventListener('slots', (e) => {
    const s = JSON.parse(e.data);
    if (s.viewer !== app.me) return;
    app.slots = new Map(s.slots.filter((x) => x.kind === 'video').map((x) => [x.mid, x.participant]));
    render();
  });
  events.onerror = () => { if (events.readyState === EventSource.CLOSED) state('events lost — rejoin'); };
}

/** Asks for a layer for the slot with `mid`, once per change of preference. */
function wantLayer(mid, pref) {
  const key = JSON.stringify(pref);
  if (!app.sub?.pc || app.layers.get(mid) === key) return;
  const index = app.sub.pc.getTransceivers().findIndex((t) => t.mid === mid);
  if (index < 0) return;
  app.layers.set(mid, key);
  app.sub.selectLayer(index, pref).catch((e) => console.warn(`layer selection failed: ${e.message}`));
}

function render() {
  for (const [mid, stream] of remoteStreams) {
    const who = app.slots.get(mid);
    const tile = addTile(`slot-${mid}`, who ? (app.roster.get(who)?.name || who) : '');
    tile.hidden = !who;
    tile.dataset.participant = who || '';
    const v = tile.querySelector('video');
    if (v.srcObject !== stream) v.srcObject = stream;
    tile.classList.toggle('speaking', !!who && app.speaking.has(who));
    // The active speaker's tile is large and gets the best layer; the others are thumbnails
    // and ask for a small one (WHEP layer selection; no-op without simulcast).
    const featured = !!who && who === app.active;
    tile.classList.toggle('featured', featured);
    wantLayer(mid, featured ? {} : { maxHeight: 240 });
  }
  const self = document.querySelector('.tile[data-key="self"]');
  if (self) self.classList.toggle('speaking', app.speaking.has(app.me));
  $('people').innerHTML = '';
  for (const p of app.roster.values()) {
    const li = document.createElement('li');
    li.textContent = p.id === app.me ? `${p.name} (you)` : p.name;
    li.classList.toggle('speaking', app.speaking.has(p.id));
    $('people').appendChild(li);
  }
}

$('mic').addEventListener('click', () => {
  const t = local?.getAudioTracks()[0];
  if (!t) return;
  t.enabled = !t.enabled;
  $('mic').textContent = t.enabled ? 'Mute' : 'Unmute';
});
$('cam').addEventListener('click', () => {
  const t = local?.getVideoTracks()[0];
  if (!t) return;
  t.enabled = !t.enabled;
  $('cam').textContent = t.enabled ? 'Camera off' : 'Camera on';
});
$('leave').addEventListener('click', async () => {
  events?.close();
  await Promise.all([app.pub?.stop(), app.sub?.stop()]);
  local?.getTracks().forEach((t) => t.stop());
  location.href = `/?room=${encodeURIComponent($('room').value)}${location.hash}`;
});

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [kind, sel] of [['videoinput', $('camera-select')], ['audioinput', $('mic-select')]]) {
    sel.innerHTML = '';
    for (const d of devices.filter((x) => x.kind === kind)) {
      const o = document.createElement('option');
      o.value = d.deviceId; o.textContent = d.label || kind;
      sel.appendChild(o);
    }
    sel.onchange = () => switchDevice(kind, sel.value);
  }
}

async function switchDevice(kind, deviceId) {
  const constraints = kind === 'videoinput' ? { video: { deviceId: { exact: deviceId } } } : { audio: { deviceId: { exact: deviceId } } };
  try {
    const s = await navigator.mediaDevices.getUserMedia(constraints);
    const track = s.getTracks()[0];
    const sender = app.pub.pc.getSenders().find((x) => x.track && x.track.kind === track.kind);
    await sender.replaceTrack(track);
    const old = local.getTracks().find((t) => t.kind === track.kind);
    local.removeTrack(old); old.stop(); local.addTrack(track);
  } catch (e) { showError(e); }
}

$('stats-toggle').addEventListener('click', () => { $('stats').hidden = !$('stats').hidden; });
let lastBytes = { in: 0, out: 0, t: performance.now() };
setInterval(async () => {
  if ($('stats').hidden || !app.pub?.pc || !app.sub?.pc) return;
  let out = 0, inb = 0, lost = 0, rtt = 0;
  (await app.pub.pc.getStats()).forEach((r) => {
    if (r.type === 'outbound-rtp') out += r.bytesSent || 0;
    if (r.type === 'candidate-pair' && r.nominated) rtt = r.currentRoundTripTime || rtt;
  });
  (await app.sub.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp') { inb += r.bytesReceived || 0; lost += r.packetsLost || 0; }
  });
  const dt = (performance.now() - lastBytes.t) / 1000;
  $('stats').textContent = `out ${((out - lastBytes.out) * 8 / dt / 1000).toFixed(0)} kbit/s · in ${((inb - lastBytes.in) * 8 / dt / 1000).toFixed(0)} kbit/s · lost ${lost} · rtt ${(rtt * 1000).toFixed(0)} ms`;
  lastBytes = { in: inb, out, t: performance.now() };
}, 1000);
