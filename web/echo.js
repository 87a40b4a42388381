// The self-test's network measurement (used by /web/test.js, which turns it into words): the
// media to send (camera and microphone, or a canvas test picture and an oscillator tone), and
// echo runs — each in its own private room, publish (WHIP) and play yourself back (WHEP)
// through wisp over exactly one way in (direct UDP, or one TURN URL with relay-only ICE) until
// the first frame is decoded — then round-trip time, loss and bitrate of the best one. Every
// session is DELETEd when its run is closed, or with requests that outlive the page on leaving.
import { Session, addSendTracks, peerConnection } from '/web/whip.js';

/** Per path: from the first request to the first frame back. */
export const CONNECT_MS = 15_000;
/** How long the best path is measured after its first frame. */
export const MEASURE_MS = 8_000;
export const HTTP_MS = 5_000;
/** A person may be answering the browser's permission question. */
const CAMERA_MS = 30_000;
/** The ways into the server, best for a call first. */
export const PREFERENCE = ['udp', 'turnUdp', 'turnTcp', 'turnTls'];

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });
export const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

/** `promise`, or a rejection saying `what` did not finish within `ms`. */
function within(ms, promise, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${Math.round(ms / 1000)} s`)), Math.max(0, ms));
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

export async function fetchWithin(url, init, ms) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), ms);
  try {
    return await fetch(url, { ...init, signal: abort.signal });
  } finally { clearTimeout(timer); }
}

// ---- media --------------------------------------------------------------------------------

/** A moving canvas picture and a quiet tone: the network test runs without a camera. */
export function testPattern() {
  const canvas = document.createElement('canvas');
  canvas.width = 640;
  canvas.height = 360;
  const g = canvas.getContext('2d');
  let n = 0;
  const draw = () => {
    n += 1;
    g.fillStyle = `hsl(${(n * 2) % 360} 55% 25%)`;
    g.fillRect(0, 0, 640, 360);
    g.fillStyle = '#fff';
    g.font = '28px system-ui, sans-serif';
    g.fillText('wisp self-test picture', 24, 48);
    g.fillText(new Date().toLocaleTimeString(), 24, 90);
    g.fillRect((n * 6) % 640, 220, 60, 60);
  };
  draw();
  const timer = setInterval(draw, 1000 / 30);
  const stream = canvas.captureStream(30);
  let audio;
  try {
    audio = new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    gain.gain.value = 0.05;
    osc.frequency.value = 440;
    const dest = audio.createMediaStreamDestination();
    osc.connect(gain).connect(dest);
    osc.start();
    audio.resume().catch(() => {});
    dest.stream.getAudioTracks().forEach((t) => stream.addTrack(t));
  } catch (e) { console.warn(`no test tone: ${e.message}`); }
  return {
    stream,
    pattern: true,
    stop() {
      clearInterval(timer);
      stream.getTracks().forEach((t) => t.stop());
      if (audio) audio.close().catch(() => {});
    },
  };
}

/** Camera and microphone (at most CAMERA_MS for the permission question); throws the browser's error. */
export async function camera() {
  const stream = await within(CAMERA_MS, navigator.mediaDevices.getUserMedia({
    audio: true, video: { width: { ideal: 640 }, height: { ideal: 360 } },
  }), 'the permission question');
  return { stream, pattern: false, stop() { stream.getTracks().forEach((t) => t.stop()); } };
}

// ---- the ways in --------------------------------------------------------------------------

function turnKind(url) {
  if (/^turns:/i.test(url)) return 'turnTls';
  if (/^turn:/i.test(url)) return /transport=tcp/i.test(url) ? 'turnTcp' : 'turnUdp';
  return null;
}

/** "host:port" of a turn:/turns: URL. */
export function turnAddress(url) {
  const hostPort = url.replace(/^turns?:/i, '').split('?')[0];
  const port = (hostPort.match(/:(\d+)$/) || [])[1] || (/^turns:/i.test(url) ? '5349' : '3478');
  return { host: hostPort.replace(/:\d+$/, ''), port };
}

/**
 * The ways in to test, given the ICE servers of the server's OPTIONS answer: `turn` maps
 * turnUdp/turnTcp/turnTls to their URLs, `paths` is direct UDP then one path per TURN URL.
 */
export function waysIn(servers) {
  const turn = {};
  for (const s of servers) {
    for (const url of [].concat(s.urls)) {
      const k = turnKind(url);
      if (k) (turn[k] ||= []).push(url);
    }
  }
  const paths = [{ key: 'udp', url: null }];
  for (const k of PREFERENCE.slice(1)) for (const url of turn[k] || []) paths.push({ key: k, url });
  return { turn, paths };
}

/** UDP host candidates in an SDP answer: the server's media addresses. */
function serverCandidates(sdp) {
  const out = [];
  for (const m of (sdp || '').matchAll(/a=candidate:\S+ \d+ (\S+) \d+ (\S+) (\d+) typ (\S+)/g)) {
    if (m[1].toLowerCase() === 'udp') out.push({ address: m[2], port: Number(m[3]), type: m[4] });
  }
  return out;
}

/** The selected candidate pair of `pc`: local type and protocol, remote address, RTT. */
async function selectedPair(pc) {
  const stats = await pc.getStats();
  let pair;
  stats.forEach((r) => { if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
  if (!pair) stats.forEach((r) => { if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = r; });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  return {
    localType: local?.candidateType,
    protocol: local?.relayProtocol || local?.protocol,
    remote: remote ? `${remote.address}:${remote.port}` : '?',
    rtt: typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime : null,
    totalRtt: pair.totalRoundTripTime || 0,
    responses: pair.responsesReceived || 0,
    available: typeof pair.availableOutgoingBitrate === 'number' ? pair.availableOutgoingBitrate : null,
  };
}

async function framesDecoded(pc) {
  let frames = 0;
  (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0; });
  return frames;
}

// ---- echo runs ----------------------------------------------------------------------------

/** Every echo run not closed yet, finished or not. */
const live = new Set();

/**
 * A peer connection for one leg of a run: the server's ICE servers come from its OPTIONS
 * (peerConnection), then are cut down to the run's path — none for direct UDP, only its own
 * URL (relay only) for a TURN path. The leg's Session keeps them (keepIceServers), so each
 * run tests exactly one way in.
 */
async function leg(run, endpoint, token) {
  const made = peerConnection(endpoint, token);
  // Kept for closing even if it comes after the wait below gave up.
  made.then((late) => { if (run.closed) late.close(); else run.pcs.push(late); }, () => {});
  const pc = await within(HTTP_MS, made, `OPTIONS ${endpoint}`);
  const cfg = pc.getConfiguration();
  const url = run.path.url;
  const iceServers = url ? (cfg.iceServers || []).filter((s) => [].concat(s.urls).includes(url)) : [];
  if (url && !iceServers.length) throw new Error(`the server's OPTIONS answer no longer lists ${url}`);
  pc.setConfiguration({ ...cfg, iceServers, iceTransportPolicy: url ? 'relay' : 'all' });
  pc.addEventListener('icecandidate', (e) => { if (e.candidate?.type) run.gathered.add(e.candidate.type); });
  pc.addEventListener('icecandidateerror', (e) => {
    const said = `${e.errorCode || ''} ${e.errorText || ''}`.trim();
    if (said && !run.errors.includes(said)) run.errors.push(said);
  });
  return pc;
}

/** Starts a session on `pc`; if the run is closed before the answer comes, it is still DELETEd. */
function begin(run, endpoint, token, pc) {
  const session = new Session(endpoint, { token, keepIceServers: true });
  run.sessions.push(session);
  const started = session.start(pc);
  run.pending.push(started.then(() => {}, () => {}).then(() => { if (run.closed) return session.stop(); return null; }));
  return { session, started };
}

/**
 * One echo over `path` ({ key, url }): publish `stream` to the private `room`, play it back,
 * wait (at most CONNECT_MS) for the first decoded frame. Never throws: the run says `ok`, or
 * `failed` (no connection: why) or `refused` (a step the server refused or did not answer).
 */
export async function echo(path, room, stream, token) {
  const run = { path, room, sessions: [], pcs: [], pending: [], gathered: new Set(), errors: [], closed: false, ok: false };
  live.add(run);
  const t0 = performance.now();
  const left = () => t0 + CONNECT_MS - performance.now();
  try {
    const pubUrl = `/whip/${room}?name=self-test`;
    const pubPc = await leg(run, pubUrl, token);
    addSendTracks(pubPc, stream, { simulcast: false });
    const pub = begin(run, pubUrl, token, pubPc);
    run.pub = pub.session;
    await within(left(), pub.started, 'publishing');
    run.server = serverCandidates(pubPc.remoteDescription?.sdp);
    const subUrl = `/whep/${room}`;
    const subPc = await leg(run, subUrl, token);
    subPc.addTransceiver('audio', { direction: 'recvonly' });
    subPc.addTransceiver('video', { direction: 'recvonly' });
    run.stream = new MediaStream();
    subPc.ontrack = (e) => run.stream.addTrack(e.track);
    const sub = begin(run, subUrl, token, subPc);
    run.sub = sub.session;
    await within(left(), sub.started, 'playing');
    for (;;) {
      const states = [pubPc.connectionState, subPc.connectionState];
      if (states.every((s) => s === 'connected') && await framesDecoded(subPc) > 0) break;
      if (states.some((s) => s === 'failed' || s === 'closed')) {
        run.failed = `the connection ${states.includes('failed') ? 'failed' : 'closed'}`;
        break;
      }
      if (left() <= 0) { run.failed = `nothing came back within ${seconds(CONNECT_MS)}`; break; }
      await sleep(150);
    }
    if (!run.failed) run.firstFrameMs = performance.now() - t0;
    run.pairs = [await selectedPair(pubPc), await selectedPair(subPc)];
    run.ok = !run.failed;
  } catch (e) {
    // A refusal by the server (a status and its sentence), or a step that timed out.
    run.refused = (e.message || String(e)).replace(/\.\s*$/, '');
  }
  return run;
}

/** DELETEs the run's sessions and closes its connections. */
export async function closeRun(run) {
  run.closed = true;
  live.delete(run);
  await Promise.all(run.sessions.map((s) => s.stop()));
  run.pcs.forEach((pc) => pc.close());
  await within(3000, Promise.all(run.pending), 'DELETE').catch(() => {});
}

/** Closes every run not closed yet. */
export function closeAll() {
  return Promise.all([...live].map(closeRun));
}

// Leaving mid-test: DELETE what exists with requests that outlive the page.
window.addEventListener('pagehide', () => {
  for (const run of live) {
    for (const s of run.sessions) {
      if (s.location) fetch(s.location, { method: 'DELETE', headers: s.headers(), keepalive: true }).catch(() => {});
    }
    run.pcs.forEach((pc) => pc.close());
  }
});

/** What the runs learnt of the server: its media ports and first media address (null if none). */
export function serverMedia(runs) {
  const ports = [];
  let host = null;
  for (const c of runs.flatMap((x) => x.server || [])) {
    if (!ports.includes(c.port)) ports.push(c.port);
    host ||= c.address;
  }
  return { ports: ports.sort((a, b) => a - b), host };
}

/**
 * Round-trip time, loss and bitrate of `run`, sampled every 500 ms for MEASURE_MS from the
 * player's inbound-rtp and both legs' selected candidate pairs. Null if the run is closed first
 * (a better way in connected meanwhile).
 */
export async function measure(run) {
  const samples = [];
  const sample = async () => {
    const s = { t: performance.now(), bytes: 0, lost: 0, received: 0, rttTotal: 0, responses: 0, current: null, available: null, held: 0 };
    (await run.sub.pc.getStats()).forEach((r) => {
      if (r.type !== 'inbound-rtp') return;
      s.bytes += r.bytesReceived || 0;
      s.lost += Math.max(0, r.packetsLost || 0);
      s.received += r.packetsReceived || 0;
    });
    // Seconds the publisher's encoder was held back for lack of bandwidth.
    (await run.pub.pc.getStats()).forEach((r) => {
      if (r.type === 'outbound-rtp' && r.kind === 'video') s.held += r.qualityLimitationDurations?.bandwidth || 0;
    });
    for (const pc of [run.pub.pc, run.sub.pc]) {
      const p = await selectedPair(pc);
      if (!p) continue;
      s.rttTotal += p.totalRtt;
      s.responses += p.responses;
      if (p.rtt != null) s.current = Math.max(s.current ?? 0, p.rtt);
      // The sender's estimate of what the path to the server carries (the publisher's leg).
      if (pc === run.pub.pc && p.available != null) s.available = p.available;
    }
    samples.push(s);
  };
  const end = performance.now() + MEASURE_MS;
  try {
    await sample();
    while (performance.now() < end) {
      await sleep(500);
      if (run.closed) return null;
      await sample();
    }
  } catch (e) {
    if (run.closed) return null;
    throw e;
  }
  let best = 0;
  for (let i = 0; i < samples.length; i += 1) {
    const j = samples.findIndex((x) => x.t - samples[i].t >= 950);
    if (j > i) best = Math.max(best, ((samples[j].bytes - samples[i].bytes) * 8) / (samples[j].t - samples[i].t));
  }
  const first = samples[0];
  const last = samples[samples.length - 1];
  // The RTT of the connectivity checks answered within the window (currentRoundTripTime is
  // smoothed and still carries the busy first seconds); the last current value without any.
  const answered = last.responses - first.responses;
  const rtt = answered > 0 ? (last.rttTotal - first.rttTotal) / answered : last.current;
  // packetsLost falls again when late packets arrive, so the window's count can dip below 0.
  const lost = Math.max(0, last.lost - first.lost);
  const estimates = samples.map((x) => x.available).filter((x) => x != null);
  const received = last.received - first.received;
  return {
    rttMs: rtt == null ? null : Math.round(rtt * 1000),
    lossPct: lost + received > 0 ? Math.round((1000 * lost) / (lost + received)) / 10 : null,
    bitrateKbps: Math.round(best),
    estimateKbps: estimates.length ? Math.round(Math.max(...estimates) / 1000) : null,
    heldPct: Math.round((100 * (last.held - first.held) * 1000) / Math.max(1, last.t - first.t)),
  };
}
