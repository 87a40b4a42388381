// The self-test page (/test): someone whose room does not work opens it, presses "Run the test"
// and learns why, in words. Steps, each bounded in time:
//  1. HTTP: GET /healthz, and whether the page is in a secure context (the camera needs one).
//  2. Token: a plain OPTIONS on the WHIP endpoint (401 = a token is needed); it also lists the
//     TURN URLs the server hands out (`Link: rel="ice-server"`).
//  3. Camera and microphone (getUserMedia), or a canvas test picture and an oscillator tone.
//  4. Echo runs (/web/echo.js), all at once, each in its own private room: publish (WHIP) and
//     play yourself back (WHEP) through wisp, once with no ICE servers (direct UDP: must connect
//     over a non-relay candidate) and once per TURN URL with iceTransportPolicy "relay" and only
//     that URL. The best path that works is measured (round-trip time, loss, bitrate) from its
//     first frame on, while the ways that fail wait out their time; every session is DELETEd.
//  5. Advice in words.
// This module is the page: its rows, their verdicts and sentences, and the order of the steps.
// window.wispTest = { done, results } is for people who script it (tests/browser/selftest.mjs).
import { iceServersFromLinks, fragmentToken } from '/web/whip.js';
import {
  CONNECT_MS, MEASURE_MS, HTTP_MS, PREFERENCE, seconds, fetchWithin, testPattern, camera,
  turnAddress, waysIn, echo, closeRun, closeAll, serverMedia, measure,
} from '/web/echo.js';

const $ = (id) => document.getElementById(id);

const ROWS = [
  ['http', 'Server reachable'],
  ['secure', 'Secure page (https)'],
  ['token', 'Token'],
  ['camera', 'Camera and microphone'],
  ['echo', 'Echo through the server'],
  ['udp', 'Direct UDP to the media ports'],
  ['turnUdp', 'TURN over UDP'],
  ['turnTcp', 'TURN over TCP'],
  ['turnTls', 'TURN over TLS'],
  ['rtt', 'Round-trip time'],
  ['loss', 'Packet loss'],
  ['bitrate', 'Bitrate reached'],
];
const PATHS = {
  udp: 'direct UDP',
  turnUdp: 'TURN over UDP',
  turnTcp: 'TURN over TCP',
  turnTls: 'TURN over TLS',
};

window.wispTest = { done: false, running: false, results: {} };
const given = fragmentToken(); // /test#token=… (the fragment never reaches the server)
if (given.token) $('token').value = given.token;

const list = (xs) => (xs.length <= 1 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`);

// ---- the results list -------------------------------------------------------------------

const WORDS = { yes: 'Yes', no: 'No', skip: 'Not tested', wait: 'Testing…', warn: 'Careful', info: '' };

function resetRows() {
  $('results').replaceChildren();
  for (const [key, what] of ROWS) {
    const li = document.createElement('li');
    li.id = `row-${key}`;
    li.hidden = true;
    const verdict = document.createElement('span');
    verdict.className = 'verdict';
    const title = document.createElement('span');
    title.className = 'what';
    title.textContent = what;
    const why = document.createElement('span');
    why.className = 'why';
    li.append(verdict, title, why);
    $('results').append(li);
  }
  $('results-title').hidden = false;
}

/**
 * Shows one row: `verdict` is yes/no/skip/wait/warn/info (the word is written out, the colour
 * only repeats it); `word` overrides the verdict's word.
 */
function show(key, verdict, sentence, word) {
  const li = $(`row-${key}`);
  li.hidden = false;
  li.dataset.verdict = verdict;
  li.querySelector('.verdict').textContent = word ?? WORDS[verdict];
  li.querySelector('.why').textContent = sentence;
  window.wispTest.results.sentences[key] = `${word ?? WORDS[verdict]}: ${sentence}`;
}

function status(text) { $('status').textContent = text; }

// ---- media --------------------------------------------------------------------------------

/** What a getUserMedia failure means, in words. */
function cameraTrouble(e) {
  const said = e.message ? ` (the browser said: "${e.message}")` : '';
  switch (e.name) {
    case 'NotAllowedError':
      return `permission was refused${said}. Allow the camera and microphone for this site (the icon at the left of the address bar, or the browser's site settings) and run the test again.`;
    case 'NotFoundError':
      return `no camera or no microphone was found${said}. Plug one in, or check that the system sees it.`;
    case 'NotReadableError':
      return `the camera or microphone could not be started${said}: another program may be using it, or the operating system blocks this browser from it (on macOS: System Settings → Privacy & Security → Camera/Microphone).`;
    case 'OverconstrainedError':
      return `the camera cannot give the picture asked for${said}.`;
    case 'SecurityError':
      return `the browser blocks the camera on this page${said}, by a setting or a policy of your organisation.`;
    case 'AbortError':
      return `the device stopped while starting${said}. Try again, or close other programs that use it.`;
    default:
      return `it failed: ${e.name || 'error'}${e.message ? `: ${e.message}` : ''}.`;
  }
}

/** Camera and microphone, or the test picture; the row says which and why. */
async function media() {
  const fallback = ' The network tests below use a moving test picture and a tone instead.';
  if ($('nocam').checked) {
    window.wispTest.results.camera = null;
    show('camera', 'skip', `You chose to run without them.${fallback}`);
    return testPattern();
  }
  if (!navigator.mediaDevices?.getUserMedia) {
    window.wispTest.results.camera = false;
    show('camera', 'no', window.isSecureContext
      ? `This browser offers no camera access at all.${fallback}`
      : `The browser keeps the camera and microphone away from this page because it is not secure (plain http on ${location.host}). Open the server's https:// address instead (the server needs --tls-cert and --tls-key, or --tls-self-signed to try it out).${fallback}`);
    return testPattern();
  }
  status('Asking for the camera and microphone…');
  try {
    const got = await camera();
    const v = got.stream.getVideoTracks()[0];
    const a = got.stream.getAudioTracks()[0];
    window.wispTest.results.camera = true;
    const s = v?.getSettings() || {};
    show('camera', 'yes', `The browser gave the camera${v?.label ? ` "${v.label}"` : ''}${s.width ? ` (${s.width}×${s.height})` : ''} and the microphone${a?.label ? ` "${a.label}"` : ''}.`);
    return got;
  } catch (e) {
    window.wispTest.results.camera = false;
    show('camera', 'no', `The camera and microphone did not start: ${cameraTrouble(e)}${fallback}`);
    return testPattern();
  }
}

// ---- sentences ----------------------------------------------------------------------------

/** The server announces only loopback addresses but is reached from elsewhere: --public-ip is unset. */
function loopbackOnly(cands) {
  const local = (a) => /^127\.|^::1$|^localhost$/i.test(a.replace(/^\[|\]$/g, ''));
  return cands.length > 0 && cands.every((c) => local(c.address)) && !local(location.hostname);
}

function udpSentence(run) {
  if (run.refused) return ['skip', `Could not be tested: ${run.refused}.`];
  const mine = [...new Set((run.server || []).map((c) => `${c.address}:${c.port}`))];
  const where = mine.length ? ` (${list(mine)})` : '';
  if (run.ok) {
    const relay = run.pairs.some((p) => p?.localType === 'relay');
    if (relay) return ['no', 'It connected, but only through a relay.'];
    return ['yes', `Your browser reaches the server's media port${mine.length > 1 ? 's' : ''}${where} directly over UDP: the best path for calls. Your picture came back in ${seconds(run.firstFrameMs)}.`];
  }
  if (loopbackOnly(run.server || [])) {
    return ['no', `The server announces ${list(mine)} as its media address, which works only on the server's own machine: it must be started with --public-ip set to the address you reach it at (${location.hostname}, or its public address).`];
  }
  return ['no', `No direct UDP connection to the server's media port${mine.length > 1 ? 's' : ''}${where}: ${run.failed}. Something on the way (a firewall, a network that lets only web traffic out) blocks UDP to the server.`];
}

function turnSentence(run) {
  const url = run.path.url;
  if (run.refused) return ['skip', `${url} could not be tested: ${run.refused}.`];
  if (run.ok) {
    const p = run.pairs.find((x) => x?.localType === 'relay') || run.pairs[0];
    return ['yes', `Relayed through ${url}${p?.protocol ? ` (relay reached over ${p.protocol.toUpperCase()})` : ''}; your picture came back in ${seconds(run.firstFrameMs)}.`];
  }
  const { port } = turnAddress(url);
  const said = run.errors.length ? ` The browser said: ${run.errors.join('; ')}.` : '';
  if (!run.gathered.has('relay')) {
    const why = {
      turnUdp: `UDP to port ${port} of the TURN server seems blocked`,
      turnTcp: `TCP to port ${port} of the TURN server seems blocked`,
      turnTls: `a TLS connection to port ${port} failed: the port is blocked, or the browser does not trust the server's certificate (self-signed, expired, or not for the name in the URL; the server's --turn-host must match it)`,
    }[run.path.key];
    return ['no', `The browser got no relay address from ${url} within ${seconds(CONNECT_MS)}: ${why}.${said}`];
  }
  return ['no', `The browser got a relay address from ${url}, but ${run.failed}.${said}`];
}

/** The advice at the end: what works, what to ask for, in a few sentences. */
function advice(r, ctx) {
  const out = [];
  if (r.camera === false) {
    out.push(r.secure === false
      ? "Your camera cannot work on this page because it is not on https: use the server's https:// address."
      : 'Your camera or microphone did not start (see above); fix that first — the network itself is covered below.');
  }
  const host = ctx.mediaHost || location.hostname;
  const udpPorts = ctx.mediaPorts.length
    ? `UDP to ${host} port${ctx.mediaPorts.length > 1 ? 's' : ''} ${list(ctx.mediaPorts.map(String))} (this test's sessions; the server's whole range is set by its --ice-ports or --ice-udp-port)`
    : `UDP to ${host} (the server's media ports, set by its --ice-ports or --ice-udp-port)`;
  // With a camera sentence before it, the network's verdict is introduced as such.
  const everything = out.length ? 'On the network side, everything works' : 'Everything works';
  const offered = PREFERENCE.slice(1).filter((k) => r[k] !== null && r[k] !== undefined);
  const turnPort = (k) => ctx.turn[k] ? turnAddress(ctx.turn[k][0]).port : (k === 'turnTls' ? '5349' : '3478');
  const works = PREFERENCE.slice(1).filter((k) => r[k]);
  if (ctx.misannounced && !r.udp) {
    out.push(`The server is set up for its own machine only: it announces ${host} as its media address, which nobody else can reach. Its operator must start it with --public-ip set to the address people reach it at (${location.hostname}, or its public address).`);
    if (works.length) out.push(`Until then calls can only go through ${PATHS[works[0]]}, which works.`);
  } else if (ctx.refused) {
    out.push(`The server refused the test sessions: ${ctx.refused}. That is a server matter, not your network: tell its operator.`);
  } else if (r.udp) {
    if (!offered.length) {
      out.push('Calls work from this network: direct UDP to the server works. This server offers no TURN, though, so people on networks that block UDP (many offices, hotels and guest Wi-Fi) cannot join; its operator can add --turn-listen (and --turn-tls-listen).');
    } else {
      const broken = offered.filter((k) => r[k] === false).map((k) => PATHS[k]);
      out.push(broken.length
        ? `${everything} that calls need: direct UDP to the server works, the best path for calls. (${list(broken)} did not work from here; that matters only for people whose network blocks UDP.)`
        : `${everything}: direct UDP to the server works, and so does every TURN fallback it offers.`);
    }
  } else if (r.turnUdp) {
    out.push(`Direct UDP to the server's media ports is blocked, but TURN over UDP works, so calls will work through it. For the direct path, ask your network admin to allow ${udpPorts}.`);
  } else if (r.turnTcp) {
    out.push(`UDP is blocked between you and the server; TURN over TCP works, so calls will work through it (slower, and worse when the network loses packets). Ask your network admin to allow ${udpPorts}, and UDP port ${turnPort('turnUdp')} for TURN, for better calls.`);
  } else if (r.turnTls) {
    out.push(`UDP and plain TCP to the TURN port are blocked; TURN over TLS works, so calls will work through it (the slowest path). Ask your network admin to allow ${udpPorts}, or at least TCP port ${turnPort('turnTcp')} to ${host}.`);
  } else if (!offered.length) {
    out.push(`Nothing connected: ${r.udp === false ? 'UDP to the server\'s media ports is blocked, and ' : ''}this server offers no TURN to fall back on. Ask your network admin to allow ${udpPorts}, or the server's operator to enable TURN (--turn-listen, and --turn-tls-listen for networks that let only web traffic out).`);
  } else if (r.turnTls === false) {
    out.push(`Nothing works over UDP, TCP or TLS: your network probably lets only web traffic out, through a proxy WebRTC cannot use. Ask your network admin to allow TCP port ${turnPort('turnTcp')} and ${turnPort('turnTls')} to ${host}, or ${udpPorts}.`);
  } else {
    out.push(`Nothing works over UDP or TCP: open TCP port ${turnPort('turnTcp')} to ${host} on your network, or enable TURN over TLS on the server (--turn-tls-listen, port 5349), which passes most firewalls.`);
  }
  if (r.rttMs != null && r.rttMs > 300) out.push(`The round trip to the server is long (${r.rttMs} ms): expect a delay in conversation.`);
  if (r.heldPct > 50) out.push(`The path to the server carries little${r.estimateKbps != null ? ` (the browser estimates ${r.estimateKbps} kbit/s)` : ''}: expect a blurry or jerky picture.`);
  if (r.lossPct != null && r.lossPct > 3) out.push(`${r.lossPct} % of packets were lost: pictures may freeze; a wired connection or a closer Wi-Fi access point helps.`);
  return out.join(' ');
}

// ---- the run ------------------------------------------------------------------------------

/** Keeps the last echoed picture on screen (as the video's poster) after the sessions end. */
function keepStill() {
  const v = $('echo');
  if (!v.videoWidth) return;
  const c = document.createElement('canvas');
  c.width = v.videoWidth;
  c.height = v.videoHeight;
  c.getContext('2d').drawImage(v, 0, 0);
  try { v.poster = c.toDataURL('image/jpeg', 0.8); } catch (_) { /* a tainted canvas cannot happen here */ }
}

let source = null;

async function cleanup() {
  const closing = closeAll();
  if (source) { source.stop(); source = null; }
  await closing;
}

async function run() {
  const r = {
    http: null, secure: null, token: null, camera: null, echo: null, udp: null,
    turnUdp: null, turnTcp: null, turnTls: null, path: null, firstFrameMs: null,
    rttMs: null, lossPct: null, bitrateKbps: null, estimateKbps: null, heldPct: null, advice: '', sentences: {},
  };
  window.wispTest = { done: false, running: true, results: r };
  resetRows();
  $('advice-box').hidden = true;
  $('echo-box').hidden = true;
  $('state').textContent = 'running';
  const token = $('token').value.trim() || undefined;
  const finish = (text) => {
    r.advice = text;
    $('advice').textContent = text;
    $('advice-box').hidden = false;
  };

  // 1. HTTP and a secure context.
  status('Asking the server whether it is up…');
  const proto = location.protocol === 'https:' ? 'https' : 'plain http';
  try {
    const t = performance.now();
    const res = await fetchWithin('/healthz', { cache: 'no-store' }, HTTP_MS);
    r.http = res.ok;
    show('http', res.ok ? 'yes' : 'no', res.ok
      ? `The server answered in ${Math.round(performance.now() - t)} ms over ${proto}.`
      : `The server's health check answered ${res.status}: a proxy in between may be in the way.`);
  } catch (e) {
    r.http = false;
    show('http', 'no', `The page loaded, but the server's health check did not answer (${e.name === 'AbortError' ? `nothing within ${seconds(HTTP_MS)}` : e.message}).`);
  }
  r.secure = window.isSecureContext;
  if (location.protocol === 'https:') show('secure', 'yes', 'The page is on https, so the browser may offer the camera.');
  else if (window.isSecureContext && /^(localhost|127\.[\d.]+|\[::1\])$/i.test(location.hostname)) show('secure', 'warn', `The page is on plain http, but at ${location.hostname}, which browsers treat as secure on this computer only. Others need the server's https:// address.`, 'Only here');
  else if (window.isSecureContext) show('secure', 'warn', `The page is on plain http, but this browser is set to treat ${location.host} as secure. Other browsers will keep the camera away: the server needs https (--tls-cert and --tls-key).`, 'Only here');
  else show('secure', 'no', `The page is on plain http at ${location.host}: browsers keep the camera and microphone away from such pages. The server needs --tls-cert and --tls-key (or --tls-self-signed to try it).`);
  if (!r.http) { finish('The server does not answer its health check: check the address, that wisp is running, and any proxy in between.'); return; }

  // 2. Token, and the TURN URLs the server hands out.
  const id = [...crypto.getRandomValues(new Uint8Array(6))].map((b) => b.toString(16).padStart(2, '0')).join('');
  const base = `selftest-${id}`;
  status('Asking the server for its TURN servers…');
  let servers = [];
  try {
    const res = await fetchWithin(`/whip/${base}`, { method: 'OPTIONS', headers: token ? { Authorization: `Bearer ${token}` } : {} }, HTTP_MS);
    const said = (await res.text()).trim();
    if (res.status === 401) {
      r.token = false;
      show('token', 'no', token
        ? `The server refused the token: ${said || '401'}`
        : `This server needs a token, and none was given. Open this page as /test#token=<your token>, or paste it into the Token field above, and run again.`);
      finish(token ? 'The token was refused: ask for a fresh one (tokens expire).' : 'This server needs a token: add it (see the Token row) and run the test again.');
      return;
    }
    if (res.status === 403) {
      r.token = false;
      show('token', 'no', `The token is valid but may not publish to the test room: ${said.replace(/\.$/, '')}. The test needs a token with the publish role for any room ("room": "*"), or the server's --token.`);
      finish('The token cannot publish to a test room: ask for one with the publish role for any room, or run the test with the server\'s --token.');
      return;
    }
    if (res.status !== 200) throw new Error(`OPTIONS answered ${res.status}${said ? `: ${said}` : ''}`);
    r.token = token ? true : null;
    show('token', token ? 'yes' : 'skip', token ? 'The server accepted the token.' : 'The server needs no token.', token ? undefined : 'Not needed');
    servers = iceServersFromLinks(res.headers.get('Link'));
  } catch (e) {
    show('token', 'no', `The server's WHIP endpoint did not answer: ${e.name === 'AbortError' ? `nothing within ${seconds(HTTP_MS)}` : e.message}.`);
    finish('The server\'s WHIP endpoint does not answer: a proxy may block the OPTIONS method or the /whip/ path.');
    return;
  }
  const { turn, paths } = waysIn(servers);

  // 3. Camera and microphone, or the test picture.
  source = await media();

  // 4. The echo runs, all at once.
  for (const k of PREFERENCE) {
    if (k !== 'udp' && !turn[k]) show(k, 'skip', 'Not offered by this server.', 'Not offered');
    else show(k, 'wait', 'Testing…');
  }
  show('echo', 'wait', 'Publishing to a private test room and playing it back…');
  status(`Testing ${paths.length} way${paths.length > 1 ? 's' : ''} into the server at once (at most ${seconds(CONNECT_MS)})…`);
  // As each run ends its row is shown. A run that works is measured at once, unless a better
  // way in already works; a better one that works later takes over (the worse one is closed),
  // so the measurement runs while the ways that fail are still waiting out their time.
  const finished = [];
  const showPath = (k) => {
    const mine = finished.filter((x) => x.path.key === k);
    if (k === 'udp') {
      const [v, s] = udpSentence(mine[0]);
      r.udp = mine[0].refused ? null : v === 'yes';
      show('udp', v, s);
      return;
    }
    const lines = mine.map(turnSentence);
    const ok = lines.some(([v]) => v === 'yes');
    r[k] = mine.every((x) => x.refused) ? null : ok;
    show(k, ok ? 'yes' : (r[k] === null ? 'skip' : 'no'), lines.map(([, s]) => s).join(' '));
  };
  const rank = (x) => PREFERENCE.indexOf(x.path.key);
  let leader = null;
  const started = paths.map((p, i) => echo(p, `${base}-${i}`, source.stream, token).then((x) => {
    finished.push(x);
    if (x.ok && (!leader || rank(x) < rank(leader))) {
      if (leader) closeRun(leader);
      leader = x;
      x.measurement = measure(x);
      $('echo').srcObject = x.stream;
      $('echo-box').hidden = false;
      // Played on purpose: Chromium pauses a muted autoplay video while it is off screen.
      $('echo').play().catch(() => {});
      show('echo', 'wait', `Your picture is back over ${PATHS[x.path.key]}; measuring the connection for ${seconds(MEASURE_MS)}…`);
    } else {
      closeRun(x);
    }
    const count = (xs) => xs.filter((y) => (y.path || y).key === p.key).length;
    if (count(finished) === count(paths)) showPath(p.key);
    return x;
  }));
  await Promise.all(started);

  const { ports: mediaPorts, host: mediaHost } = serverMedia(finished);
  const ctx = {
    turn, mediaPorts, mediaHost,
    refused: finished.every((x) => x.refused) ? finished[0].refused : null,
    misannounced: loopbackOnly(finished.flatMap((x) => x.server || [])),
  };

  const best = leader;
  if (best) {
    r.echo = true;
    r.path = best.path.key;
    r.firstFrameMs = Math.round(best.firstFrameMs);
    show('echo', 'yes', `Your picture came back through the server ${seconds(best.firstFrameMs)} after publishing started, over ${PATHS[best.path.key]}${best.path.url ? ` (${best.path.url})` : ''}.`);
    status(`Measuring the connection over ${PATHS[best.path.key]}…`);
    for (const k of ['rtt', 'loss', 'bitrate']) show(k, 'wait', 'Measuring…');
    const m = await best.measurement;
    Object.assign(r, m);
    keepStill();
    show('rtt', m.rttMs == null ? 'skip' : (m.rttMs > 300 ? 'warn' : 'yes'),
      m.rttMs == null ? 'The browser reported no round-trip time.' : `${m.rttMs} ms to the server and back (${m.rttMs > 300 ? 'long: expect a delay in conversation' : 'fine for calls'}).`,
      m.rttMs == null ? undefined : `${m.rttMs} ms`);
    show('loss', m.lossPct == null ? 'skip' : (m.lossPct > 3 ? 'warn' : 'yes'),
      m.lossPct == null ? 'No packets counted.' : `${m.lossPct} % of the packets sent back to you were lost (${m.lossPct > 3 ? 'high: pictures may freeze' : 'fine'}).`,
      m.lossPct == null ? undefined : `${m.lossPct} %`);
    // What came back depends on the picture (a still one needs little), and the browser's
    // estimate only grows as far as it is used; the path is narrow when the encoder was held
    // back for lack of bandwidth most of the time.
    const narrow = m.heldPct > 50;
    show('bitrate', narrow ? 'warn' : 'yes',
      `${m.bitrateKbps} kbit/s came back at best within ${seconds(MEASURE_MS)}${narrow
        ? `: the browser held your picture back for lack of bandwidth ${m.heldPct} % of the time${m.estimateKbps != null ? ` (it estimates ${m.estimateKbps} kbit/s towards the server)` : ''}; a call needs about 300–1,500 kbit/s`
        : ': as much as the picture needed, never held back for long by the network'}.`,
      `${m.bitrateKbps} kbit/s`);
  } else {
    r.echo = false;
    show('echo', 'no', ctx.refused
      ? `The server refused the test session: ${ctx.refused}.`
      : 'Nothing came back over any way in: see the rows below.');
    for (const k of ['rtt', 'loss', 'bitrate']) show(k, 'skip', 'Nothing to measure: no way in worked.');
  }
  finish(advice(r, ctx));
}

$('form').addEventListener('submit', async (e) => {
  e.preventDefault();
  if (window.wispTest.running) return;
  $('run').disabled = true;
  try {
    await run();
  } catch (err) {
    const r = window.wispTest.results;
    r.advice = `The test stopped on an unexpected error: ${err.message || err}. Please tell the server's operator.`;
    $('advice').textContent = r.advice;
    $('advice-box').hidden = false;
  } finally {
    status('Closing the test sessions…');
    await cleanup();
    $('echo').srcObject = null;
    status('Done. The results are below.');
    $('state').textContent = 'done';
    $('run').disabled = false;
    $('run').textContent = 'Run the test again';
    window.wispTest.running = false;
    window.wispTest.done = true;
  }
});
