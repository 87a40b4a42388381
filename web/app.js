// The conference page: publish camera+mic with WHIP, receive everyone through ONE WHEP session
// of SLOTS audio+video slots, label tiles and show who speaks, who is muted, whose camera is
// off and whose connection is weak from the room's events; chat; share a screen; pin a tile.
// The pre-join screen is prejoin.js, the tiles tiles.js, the chat chat.js.
import { Session, addSendTracks, fragmentToken, peerConnection } from '/web/whip.js';
import {
  applySpeaker, audioConstraints, canChooseSpeaker, describeError, describeFailures, fillSelect, getMedia, listDevices,
  loadPrefs, savePrefs, videoConstraints,
} from '/web/devices.js';
import { prejoin } from '/web/prejoin.js';
import { arrange } from '/web/tiles.js';
import { renderRoom } from '/web/roomview.js';
import { chatPanel } from '/web/chat.js';
import { canShareScreen, shareScreen } from '/web/share.js';
import { weakSampler } from '/web/netstats.js';

const params = new URLSearchParams(location.search);
// Slots in the one WHEP session: how many others are seen at once (last-N beyond that).
const SLOTS = Math.min(16, Math.max(1, Number(params.get('slots')) || 8));
const $ = (id) => document.getElementById(id);
const state = (text) => { $('state').textContent = text; $('state').dataset.s = text.split(/[\s:(]/)[0]; };
const showError = (e) => { $('error').textContent = e.message || String(e); state('failed'); };
// Something went wrong in the room (a device, the screen share, a request): said in words.
const notice = (text) => { $('notice-text').textContent = text; $('notice').hidden = !text; };

// Exposed for the browser tests.
const app = window.wisp = {
  me: null, roster: new Map(), slots: new Map(), speaking: new Set(), pub: null, sub: null,
  active: null, layers: new Map(),
  layout: params.get('layout') === 'grid' ? 'grid' : 'speaker', // the speaker view unless asked
  pinned: null, // the participant this page pinned (the slot's layer request), or null
  muted: false, cameraOff: false, weak: false, weakWhy: [], // this participant's state
  share: null, // this page's screen share { stream, session, stop }
  speaker: '', // the chosen audio output device id
};

$('room').value = params.get('room') || '';
$('name').value = params.get('name') || loadPrefs().name || localStorage.getItem('wisp-name') || '';
// An invite link may carry a token in its fragment (never sent to the server).
const invited = fragmentToken();
if (invited.token) { $('token').value = invited.token; $('token-box').open = true; }
if (invited.name) { $('name').value = invited.name; $('name').readOnly = true; }
// ?autojoin skips the pre-join screen (links that join at once, the tests).
const autojoin = params.get('room') && $('name').value && params.has('autojoin');
const lobby = autojoin ? null : prejoin();
if (autojoin) { $('lobby').hidden = true; queueMicrotask(() => join()); }
$('lobby').addEventListener('submit', (e) => { e.preventDefault(); join(); });

let local = new MediaStream();
let events; // EventSource

async function join() {
  $('error').textContent = '';
  const room = $('room').value.trim();
  const name = $('name').value.trim();
  const token = $('token').value || undefined;
  savePrefs({ name });
  history.replaceState(null, '', `/?room=${encodeURIComponent(room)}${location.hash}`);
  $('where').textContent = room;
  $('room-h').textContent = `Room ${room}`;
  document.title = `${room} · wisp`;
  $('invite').href = `${location.origin}/?room=${encodeURIComponent(room)}`;
  state('connecting');
  let failed = {};
  if (lobby) {
    const chosen = await lobby.take();
    local = chosen.stream; failed = chosen.failed; app.speaker = chosen.speaker;
    if (chosen.muted) local.getAudioTracks().forEach((t) => { t.enabled = false; });
  } else {
    try {
      local = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
    } catch (e) {
      $('lobby').hidden = false;
      return showError(new Error(describeError(e, 'camera and microphone', 'press “Join”')));
    }
    // Join muted (?muted): the microphone track is sent but silent until unmuted.
    if (params.has('muted')) local.getAudioTracks().forEach((t) => { t.enabled = false; });
    app.speaker = loadPrefs().speaker || '';
  }
  $('lobby').hidden = true;
  $('room-view').hidden = false;
  $('controls').hidden = false;
  document.body.classList.add('in-room');
  if (matchMedia('(min-width: 900px)').matches) openPanel(true, false);
  readLocalState();
  showControls();
  const buttons = [failed.video && '“Start camera”', failed.audio && '“Unmute”'].filter(Boolean).join(' or ');
  if (buttons) notice(`You joined without ${failed.video && failed.audio ? 'camera and microphone' : failed.video ? 'camera' : 'microphone'}. ${describeFailures(failed, `press ${buttons}`)}`);
  app.room = room; app.name = name; app.token = token;
  render();
  fillDeviceSelects();
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
  const simulcast = !params.has('nosimulcast');
  addSendTracks(pc, local, { simulcast, videoCodec: params.get('codec') });
  // A kind with no track yet (refused, or "join without camera") still gets its m-line, so
  // turning it on later is a replaceTrack, not a new session.
  for (const kind of ['audio', 'video']) {
    if (local.getTracks().some((t) => t.kind === kind)) continue;
    const init = { direction: 'sendonly', streams: [local] };
    if (kind === 'video' && simulcast) {
      init.sendEncodings = [{ rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 250_000 }, { rid: 'f', maxBitrate: 800_000 }];
    }
    pc.addTransceiver(kind, init);
  }
  app.pub = new Session(endpoint, { token: app.token, onState: onConnState, resume });
  await app.pub.start(pc);
  stateSent = {}; // a new session: tell the room everything again
  syncState();
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

const remoteStreams = new Map(); // mid -> MediaStream
const remoteAudio = []; // the <audio> elements of the current WHEP session
function onRemoteTrack(mid, track) {
  if (track.kind === 'audio') {
    const audio = new Audio();
    audio.autoplay = true;
    audio.srcObject = new MediaStream([track]);
    applySpeaker(audio, app.speaker);
    document.body.appendChild(audio);
    remoteAudio.push(audio);
    // A browser that wants a click before it plays sound: offer the click.
    audio.play().catch(() => { $('sound').hidden = false; });
    return;
  }
  remoteStreams.set(mid, new MediaStream([track]));
  render();
}
$('sound').addEventListener('click', () => {
  remoteAudio.forEach((a) => a.play().catch(() => {}));
  $('sound').hidden = true;
});

const chat = chatPanel({
  log: $('chat-log'), form: $('chat-form'), input: $('chat-input'), status: $('chat-status'),
  send: (text) => fetch(`/rooms/${encodeURIComponent(app.room)}/chat`, {
    method: 'POST',
    headers: { ...app.pub.headers({ 'Content-Type': 'application/json' }), 'X-Wisp-Session': app.pub.id },
    body: JSON.stringify({ text }),
  }),
  isOpen: () => !$('panel').hidden,
  onUnread: (n) => { $('unread').textContent = n ? String(n) : ''; $('unread').hidden = !n; },
});

function openEvents(url) {
  events = new EventSource(url);
  const on = (name, fn) => events.addEventListener(name, (e) => { fn(JSON.parse(e.data)); render(); });
  on('roster', (data) => {
    // The snapshot carries who is speaking right now: someone may have started before we came.
    const ps = data.participants;
    app.active = data.activeSpeaker || null;
    app.roster = new Map(ps.map((p) => [p.id, p]));
    app.speaking = new Set(ps.filter((p) => p.speaking).map((p) => p.id));
  });
  on('joined', (d) => { app.roster.set(d.participant.id, d.participant); });
  on('left', (d) => {
    app.roster.delete(d.id);
    if (app.pinned === d.id) app.pinned = null;
  });
  // Mute, camera and connection state, as each participant tells the room (display only).
  on('state', (s) => {
    const p = app.roster.get(s.id);
    if (!p) return;
    for (const k of ['muted', 'cameraOff', 'weak']) if (k in s) p[k] = s[k];
  });
  events.addEventListener('chat', (e) => chat.add(JSON.parse(e.data), app.me));
  // The server is shutting down (or an operator closed the room): say so; the connections
  // then fail and recover() comes back to the next server.
  events.addEventListener('closing', (e) => { state(`reconnecting: ${JSON.parse(e.data).reason}`); });
  on('speaking', (s) => { if (s.speaking) app.speaking.add(s.id); else app.speaking.delete(s.id); });
  on('active-speaker', (d) => { app.active = d.id; });
  on('slots', (s) => {
    if (s.viewer !== app.me) return;
    app.slots = new Map(s.slots.filter((x) => x.kind === 'video').map((x) => [x.mid, x.participant]));
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

/** Pins the participant shown on `tile` (or unpins it): the server keeps it a slot, best layer. */
function togglePin(tile) {
  const who = tile.dataset.participant;
  if (!who) return;
  const previous = app.pinned;
  app.pinned = previous === who ? null : who;
  if (previous) {
    const mid = [...app.slots].find(([, p]) => p === previous)?.[0];
    if (mid) wantLayer(mid, { participant: '', maxHeight: 240 });
  }
  render();
}

function render() {
  renderRoom(app, { remoteStreams, local, onPin: togglePin, wantLayer });
}
new ResizeObserver(() => arrange($('tiles'), app.layout)).observe($('tiles'));

// ---- this participant's state: microphone, camera, connection; told to the room ----

function readLocalState() {
  const a = local.getAudioTracks()[0];
  const v = local.getVideoTracks()[0];
  app.muted = !a || !a.enabled;
  app.cameraOff = !v || !v.enabled || v.readyState === 'ended';
}

let stateSent = {};
let stateChain = Promise.resolve();
/** Tells the room (POST /session/{id}/state) whatever changed since it was last told. */
function syncState() {
  stateChain = stateChain.then(async () => {
    if (!app.pub?.location) return;
    const want = { muted: app.muted, cameraOff: app.cameraOff, weak: app.weak };
    const diff = Object.fromEntries(Object.entries(want).filter(([k, v]) => stateSent[k] !== v));
    if (!Object.keys(diff).length) return;
    try {
      const res = await app.pub.postJson('state', diff);
      if (res.status === 204 || res.status === 200) Object.assign(stateSent, diff);
      else console.warn(`state: ${res.status} ${(await res.text()).trim()}`);
    } catch (e) { console.warn(`state: ${e.message}`); }
  });
}

function showControls() {
  $('mic').querySelector('.txt').textContent = app.muted ? 'Unmute' : 'Mute';
  $('mic').classList.toggle('off', app.muted);
  $('cam').querySelector('.txt').textContent = app.cameraOff ? 'Start camera' : 'Stop camera';
  $('cam').classList.toggle('off', app.cameraOff);
  $('share').hidden = !canShareScreen;
  $('share').querySelector('.txt').textContent = app.share ? 'Stop sharing' : 'Share screen';
  $('share').classList.toggle('on', !!app.share);
  $('layout').querySelector('.txt').textContent = app.layout === 'grid' ? 'Speaker view' : 'Grid view';
}

/** Opens a device of `kind` that the page does not have yet and puts it on the WHIP leg. */
async function addDevice(kind, deviceId) {
  const s = await getMedia(kind === 'video'
    ? { video: videoConstraints(deviceId) } : { audio: audioConstraints(deviceId) });
  const track = s.getTracks()[0];
  const tr = app.pub?.pc.getTransceivers().find((t) => t.receiver.track?.kind === kind && t.direction !== 'inactive');
  if (tr) await tr.sender.replaceTrack(track);
  const old = local.getTracks().find((t) => t.kind === kind);
  if (old) { local.removeTrack(old); old.stop(); }
  local.addTrack(track);
  return track;
}

async function toggle(kind) {
  const t = kind === 'audio' ? local.getAudioTracks()[0] : local.getVideoTracks()[0];
  try {
    if (t && t.readyState === 'live') t.enabled = !t.enabled;
    else {
      const prefs = loadPrefs();
      await addDevice(kind, kind === 'audio' ? prefs.mic : prefs.camera);
      notice('');
    }
  } catch (e) {
    notice(kind === 'audio' ? describeError(e, 'microphone', 'press “Unmute”') : describeError(e, 'camera', 'press “Start camera”'));
  }
  readLocalState();
  showControls();
  render();
  syncState();
}
$('mic').addEventListener('click', () => toggle('audio'));
$('cam').addEventListener('click', () => toggle('video'));

$('share').addEventListener('click', async () => {
  if (app.share) { await app.share.stop(); return; }
  if (!app.pub?.location) return;
  try {
    const share = await shareScreen({
      room: app.room, name: app.name, token: app.token, ownerSession: app.pub,
      onEnded: () => { app.share = null; showControls(); render(); },
    });
    if (share) { app.share = share; notice(''); }
  } catch (e) { notice(e.message); }
  showControls();
  render();
});

$('layout').addEventListener('click', () => {
  app.layout = app.layout === 'grid' ? 'speaker' : 'grid';
  showControls();
  render();
});

// The side panel (people and chat): beside the tiles on a wide screen, over them on a phone.
function openPanel(open, focus = true) {
  $('panel').hidden = !open;
  $('panel-toggle').setAttribute('aria-expanded', String(open));
  document.body.classList.toggle('panel-open', open);
  if (open) { chat.read(); if (focus) $('chat-input').focus(); }
  arrange($('tiles'), app.layout);
}
$('panel-toggle').addEventListener('click', () => openPanel($('panel').hidden));
$('notice-close').addEventListener('click', () => notice(''));
$('panel-close').addEventListener('click', () => { openPanel(false); $('panel-toggle').focus(); });

$('invite').addEventListener('click', async (e) => {
  if (!navigator.clipboard) return; // the link itself still works
  e.preventDefault();
  try {
    await navigator.clipboard.writeText($('invite').href);
    $('invite-status').textContent = 'Invite link copied.';
  } catch (_) { $('invite-status').textContent = `Invite link: ${$('invite').href}`; }
});

$('settings-btn').addEventListener('click', () => { fillDeviceSelects(); $('settings').showModal(); });
$('settings-close').addEventListener('click', () => $('settings').close());

// Keyboard: M mutes, V toggles the camera (not while typing); Esc closes the panel on a
// phone-sized screen (a <dialog> closes itself on Esc).
addEventListener('keydown', (e) => {
  if ($('room-view').hidden || e.ctrlKey || e.metaKey || e.altKey) return;
  if ($('settings').open) return; // the dialog has the keys (and closes itself on Esc)
  if (e.key === 'Escape' && !$('panel').hidden && !matchMedia('(min-width: 900px)').matches) {
    openPanel(false); $('panel-toggle').focus(); return;
  }
  if (e.target.closest?.('input, textarea, select, [contenteditable]')) return; // typing
  if (e.key === 'm' || e.key === 'M') { e.preventDefault(); toggle('audio'); }
  if (e.key === 'v' || e.key === 'V') { e.preventDefault(); toggle('video'); }
});

$('leave').addEventListener('click', async () => {
  events?.close();
  await app.share?.stop();
  await Promise.all([app.pub?.stop(), app.sub?.stop()]);
  local?.getTracks().forEach((t) => t.stop());
  location.href = `/?room=${encodeURIComponent($('room').value)}${location.hash}`;
});

// ---- devices in the room (the settings dialog) ----

async function fillDeviceSelects() {
  const d = await listDevices();
  const inUse = (kind) => local.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId;
  fillSelect($('camera-select'), d.videoinput, inUse('video'));
  fillSelect($('mic-select'), d.audioinput, inUse('audio'));
  fillSelect($('speaker-select'), d.audiooutput, app.speaker);
  $('speaker-row').hidden = !canChooseSpeaker;
}
$('camera-select').onchange = (e) => switchDevice('video', e.target.value);
$('mic-select').onchange = (e) => switchDevice('audio', e.target.value);
$('speaker-select').onchange = (e) => {
  app.speaker = e.target.value;
  savePrefs({ speaker: app.speaker });
  remoteAudio.forEach((a) => applySpeaker(a, app.speaker));
};

async function switchDevice(kind, deviceId) {
  savePrefs(kind === 'video' ? { camera: deviceId } : { mic: deviceId });
  const old = local.getTracks().find((t) => t.kind === kind);
  const enabled = old ? old.enabled : true;
  try {
    const track = await addDevice(kind, deviceId);
    track.enabled = enabled; // a muted microphone stays muted on the new one
    render();
  } catch (e) { notice(describeError(e, kind === 'audio' ? 'microphone' : 'camera', 'choose it again')); }
}

// ---- connection statistics: the weak-connection sign, and the numbers when asked ----

const sampleWeak = weakSampler(() => [app.pub?.pc, app.sub?.pc]);
$('stats-toggle').addEventListener('change', (e) => { $('stats').hidden = !e.target.checked; });
let lastBytes = { in: 0, out: 0, t: performance.now() };
setInterval(async () => {
  if (!app.pub?.pc || !app.sub?.pc) return;
  const { weak, why } = await sampleWeak();
  app.weakWhy = why;
  if (weak !== app.weak) { app.weak = weak; render(); syncState(); }
  if ($('stats').hidden) return;
  let out = 0, inb = 0, lost = 0, rtt = 0;
  (await app.pub.pc.getStats()).forEach((r) => {
    if (r.type === 'outbound-rtp') out += r.bytesSent || 0;
    if (r.type === 'candidate-pair' && r.nominated) rtt = r.currentRoundTripTime || rtt;
  });
  (await app.sub.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp') { inb += r.bytesReceived || 0; lost += r.packetsLost || 0; }
  });
  const dt = (performance.now() - lastBytes.t) / 1000;
  $('stats').textContent = `out ${((out - lastBytes.out) * 8 / dt / 1000).toFixed(0)} kbit/s · in ${((inb - lastBytes.in) * 8 / dt / 1000).toFixed(0)} kbit/s · lost ${lost} · rtt ${(rtt * 1000).toFixed(0)} ms${why.length ? ` · weak: ${why.join(', ')}` : ''}`;
  lastBytes = { in: inb, out, t: performance.now() };
}, 2000);
