// /publish: one broadcaster goes live in a room with a camera or a screen (WHIP). A large
// preview, a live indicator, what is being sent (bitrate, resolution) and how many watch
// (the room's `viewercount` event).
import { Session, addSendTracks, fragmentToken, peerConnection } from '/web/whip.js';
import { describeError } from '/web/devices.js';
import { outgoing } from '/web/netstats.js';

const $ = (id) => document.getElementById(id);
const q = new URLSearchParams(location.search);
$('room').value = q.get('room') || '';
const given = fragmentToken(); // /publish?room=demo#token=… (the fragment never reaches the server)
if (given.token) $('token').value = given.token;
if (given.name) $('name').value = given.name;
// Exposed for the browser tests.
const w = window.wisp = { session: null, live: false, viewers: null, sent: null };
let media = null;
let events = null;

function say(text) {
  $('state').textContent = text;
  $('state').dataset.s = text;
  w.live = text === 'live';
  $('live-pill').textContent = w.live ? 'Live' : text === 'idle' || text === 'stopped' ? 'Not live' : text;
  $('live-pill').classList.toggle('on', w.live);
}

async function stop() {
  events?.close(); events = null;
  await w.session?.stop();
  w.session = null;
  media?.getTracks().forEach((t) => t.stop());
  media = null;
  $('preview').srcObject = null;
  $('preview-off').hidden = false;
  $('go').textContent = 'Go live';
  $('go').classList.replace('leave', 'primary');
  $('bitrate').textContent = '–'; $('resolution').textContent = '–'; $('viewers').textContent = '–';
  say('stopped');
}

async function viewerCount(room, token) {
  let query = '';
  if (token) {
    const r = await fetch(`/rooms/${encodeURIComponent(room)}/access`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
    if (r.ok) query = `?access=${encodeURIComponent((await r.json()).access)}`;
  }
  events = new EventSource(`/rooms/${encodeURIComponent(room)}/events${query}`);
  events.addEventListener('viewercount', (e) => {
    w.viewers = JSON.parse(e.data).viewercount;
    $('viewers').textContent = `${w.viewers} watching`;
  });
}

$('form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('error').textContent = '';
  if (w.session) { await stop(); return; }
  const room = $('room').value.trim();
  const token = $('token').value || undefined;
  say('starting');
  try {
    try {
      media = $('source').value === 'screen'
        ? await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true })
        : await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: true });
    } catch (err) {
      throw new Error($('source').value === 'screen' ? `The screen could not be shared: ${err.message}` : describeError(err));
    }
    // The browser's "Stop sharing" ends the broadcast.
    media.getVideoTracks()[0]?.addEventListener('ended', () => { if (w.session) stop(); });
    $('preview').srcObject = media;
    $('preview-off').hidden = true;
    const endpoint = `/whip/${encodeURIComponent(room)}?name=${encodeURIComponent($('name').value)}`;
    const pc = await peerConnection(endpoint, token);
    addSendTracks(pc, media);
    const session = new Session(endpoint, { token, onState: (s) => { if (w.session === session) say(s === 'connected' ? 'live' : s); } });
    w.session = session;
    await session.start(pc);
    $('go').textContent = 'Stop';
    $('go').classList.replace('primary', 'leave');
    const url = `${location.origin}/watch/${encodeURIComponent(room)}`;
    $('watch').href = url; $('watch').textContent = url;
    $('watch-row').hidden = false;
    viewerCount(room, token).catch((err) => console.warn(`viewer count: ${err.message}`));
  } catch (err) {
    $('error').textContent = err.message || String(err);
    await stop();
    say('failed');
  }
});

// What is being sent, every second.
const memo = {};
setInterval(async () => {
  const pc = w.session?.pc;
  if (!pc || pc.connectionState === 'closed') return;
  const o = await outgoing(pc, memo).catch(() => null);
  if (!o) return;
  w.sent = o;
  $('bitrate').textContent = `${Math.round(o.kbps)} kbit/s`;
  $('resolution').textContent = o.height
    ? `${o.width}×${o.height}${o.fps ? ` at ${Math.round(o.fps)} fps` : ''}${o.layers > 1 ? ` (${o.layers} layers)` : ''}`
    : '–';
}, 1000);
