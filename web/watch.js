// /watch/{room}: the page a broadcast's audience sees. The picture fills the window (16:9,
// letterboxed); the page says in words whether the room is offline, live or reconnecting,
// counts the viewers, offers a click to unmute (browsers start a page muted), fullscreen, and
// shows the picture quality it gets (the layer: the received frame height, placed among the
// publisher's layers from the WHEP `layers` event). WebRTC (WHEP) first; LL-HLS when WebRTC
// cannot connect, or with `?hls=1`.
import { Session, fragmentToken, peerConnection } from '/web/whip.js';
import { incoming } from '/web/netstats.js';

const $ = (id) => document.getElementById(id);
const room = decodeURIComponent(location.pathname.split('/').pop());
// /watch/{room}#token=… : the fragment never reaches the server or its logs.
const { token } = fragmentToken();
const params = new URLSearchParams(location.search);
const video = $('player');
$('where').textContent = room;
document.title = `${room} · wisp`;
// Exposed for the browser tests.
const w = window.wisp = { live: null, viewers: null, mode: null, session: null, hls: null, layers: null, quality: null };

/** The room's state in words: 'connecting', 'live', 'offline', 'reconnecting', 'loading', 'failed'. */
function say(what) {
  $('live').textContent = what;
  $('live').classList.toggle('on', what === 'live');
  $('live').classList.toggle('wait', what === 'reconnecting' || what === 'connecting' || what === 'loading');
  $('offline-msg').hidden = what !== 'offline';
  showUnmute();
}

// Sound: browsers start a page muted; one click (the overlay, the button or M) turns it on.
function showUnmute() {
  $('unmute').hidden = !(video.muted && w.live === true);
  $('mute').querySelector('.txt').textContent = video.muted ? 'Unmute' : 'Mute';
}
function setMuted(m) {
  video.muted = m;
  if (!m) video.play().catch(() => {});
  showUnmute();
}
$('unmute').addEventListener('click', () => setMuted(false));
$('mute').addEventListener('click', () => setMuted(!video.muted));
video.addEventListener('volumechange', showUnmute);

// Fullscreen (of the whole page, so the words and buttons stay).
const fullscreen = () => (document.fullscreenElement ? document.exitFullscreen() : document.documentElement.requestFullscreen())
  .catch((e) => { $('error').textContent = `Fullscreen: ${e.message}`; });
$('fullscreen').hidden = !document.fullscreenEnabled;
$('fullscreen').addEventListener('click', fullscreen);
document.addEventListener('fullscreenchange', () => {
  $('fullscreen').querySelector('.txt').textContent = document.fullscreenElement ? 'Exit fullscreen' : 'Fullscreen';
});
addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || e.target.closest?.('input, select, textarea')) return;
  if (e.key === 'm' || e.key === 'M') setMuted(!video.muted);
  if ((e.key === 'f' || e.key === 'F') && document.fullscreenEnabled) fullscreen();
});

// The picture quality this page gets, every second.
setInterval(async () => {
  let q = null;
  if (w.mode === 'webrtc' && w.session?.pc) {
    const r = await incoming(w.session.pc).catch(() => null);
    if (r?.height) q = r;
  } else if (video.videoHeight) {
    q = { width: video.videoWidth, height: video.videoHeight };
  }
  w.quality = q;
  if (!q) { $('quality').textContent = ''; return; }
  let text = `Picture ${q.height}p`;
  const list = w.layers && Object.values(w.layers)[0];
  if (Array.isArray(list) && list.length > 1) {
    const heights = list.map((l) => l.height || 0);
    let i = heights.reduce((best, h, k) => (Math.abs(h - q.height) < Math.abs(heights[best] - q.height) ? k : best), 0);
    if (!heights[i]) i = heights.length - 1;
    text += i === list.length - 1 ? ` (best of ${list.length} layers)` : ` (layer ${i + 1} of ${list.length})`;
  }
  $('quality').textContent = text;
}, 1000);

// LL-HLS (`/hls/{room}/index.m3u8`): when WebRTC fails, or with `?hls=1`. hls.js where the
// browser has Media Source Extensions, else the browser's own HLS (Safari).
async function playHls(why) {
  const q = token ? `?token=${encodeURIComponent(token)}` : '';
  const url = `/hls/${encodeURIComponent(room)}/index.m3u8${q}`;
  w.mode = 'hls';
  $('mode').textContent = `via HLS${why ? ` (${why})` : ''}`;
  say('loading');
  video.addEventListener('playing', () => { w.live = true; say('live'); });
  const { default: Hls } = await import('/web/vendor/hls.light.min.mjs');
  if (Hls.isSupported()) {
    const hls = new Hls({ lowLatencyMode: true, backBufferLength: 30, maxLiveSyncPlaybackRate: 1.5 });
    w.hls = hls;
    hls.on(Hls.Events.ERROR, (_, d) => {
      if (d.fatal) { $('error').textContent = `HLS: ${d.details}`; w.live = false; say('offline'); }
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = url;
  } else {
    throw new Error('This browser plays neither WebRTC nor HLS.');
  }
  await video.play().catch(() => {});
}

/** One WHEP session; returns when the session is gone (its event stream ended and cannot be opened again). */
async function playWebRtc() {
  w.mode = 'webrtc';
  $('mode').textContent = 'via WebRTC';
  const pc = await peerConnection(`/whep/${encodeURIComponent(room)}`, token);
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.addTransceiver('video', { direction: 'recvonly' });
  const stream = new MediaStream();
  pc.ontrack = (e) => { stream.addTrack(e.track); video.srcObject = stream; };
  const s = new Session(`/whep/${encodeURIComponent(room)}`, { token });
  w.session = s;
  await s.start(pc);
  pc.addEventListener('connectionstatechange', () => {
    if (w.mode !== 'webrtc' || w.session !== s) return;
    // A connection that cannot be made (UDP blocked, no TURN) falls back to HLS.
    if (pc.connectionState === 'failed') {
      s.stop().catch(() => {});
      video.srcObject = null;
      playHls('WebRTC could not connect').catch((e) => { $('error').textContent = e.message; });
    } else if (pc.connectionState === 'disconnected') say('reconnecting');
    else if (pc.connectionState === 'connected' && w.live !== null) say(w.live ? 'live' : 'offline');
  });
  // WHEP server-sent-events extension: live/offline, the viewer count, the layers.
  let reader = await eventStream(s);
  if (!reader) throw new Error('the server did not open the event stream');
  let buf = '';
  w.live = false;
  say('offline');
  for (;;) {
    const { value, done } = await reader.read().catch(() => ({ done: true }));
    if (w.mode !== 'webrtc' || w.session !== s) return;
    if (done) {
      // The stream ended while the picture may still flow (a proxy or the server closed it):
      // follow the same session's events again, at most once a second. When the session is
      // gone (the server restarted or ended it), return: the caller starts over.
      await new Promise((r) => { setTimeout(r, 1000); });
      if (pc.connectionState !== 'connected') return;
      reader = await eventStream(s).catch(() => null);
      if (!reader) return;
      buf = '';
      continue;
    }
    buf += value;
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i); buf = buf.slice(i + 2);
      const name = (frame.match(/^event: (.*)$/m) || [])[1];
      let data = {};
      try { data = JSON.parse((frame.match(/^data: (.*)$/m) || [, '{}'])[1]); } catch (_) { /* a comment line */ }
      if (name === 'reconnect') { await s.stop(); location.reload(); return; } // a new POST fits the new stream
      if (name === 'active') { w.live = true; say(pc.connectionState === 'disconnected' ? 'reconnecting' : 'live'); video.play().catch(() => {}); }
      if (name === 'inactive') { w.live = false; say('offline'); }
      if (name === 'viewercount') { w.viewers = data.viewercount; $('viewers').textContent = `${data.viewercount} watching`; }
      if (name === 'layers') w.layers = data;
    }
  }
}

/** Opens session `s`'s event stream; null when the server refuses it (the session is gone). */
async function eventStream(s) {
  const res = await fetch(new URL(s.sseUrl, location.href), {
    method: 'POST', headers: { ...s.headers({ 'Content-Type': 'application/json' }) },
    body: JSON.stringify(['active', 'inactive', 'viewercount', 'reconnect', 'layers']),
  });
  if (res.status !== 201) return null;
  const events = await fetch(new URL(res.headers.get('Location'), location.href), { headers: s.headers() });
  if (!events.ok || !events.body) return null;
  return events.body.pipeThrough(new TextDecoderStream()).getReader();
}

(async () => {
  try {
    if (params.get('hls') === '1') return await playHls('asked for');
    for (let attempt = 0; ; attempt++) {
      try {
        await playWebRtc();
      } catch (e) {
        if (w.mode !== 'webrtc') throw e; // HLS took over and failed too
        // The first try failing is WebRTC not working here: HLS. Later, the server is away.
        if (attempt === 0) return await playHls(`WebRTC failed: ${e.message || e}`);
      }
      if (w.mode !== 'webrtc') return;
      if (attempt >= 30) throw new Error('The server has not come back.');
      // The event stream ended: the server restarted or the session was lost. Try again.
      w.live = null;
      say('reconnecting');
      await w.session?.stop().catch(() => {});
      await new Promise((r) => { setTimeout(r, Math.min(1000 * (attempt + 1), 5000)); });
    }
  } catch (e) { $('error').textContent = e.message || String(e); say('failed'); }
})();
