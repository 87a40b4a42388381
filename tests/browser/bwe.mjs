// Send-side bandwidth estimation against real Chromium on a real shaped link, run by
// tests/browser/bwe_lab.sh: a Chromium publisher sends three simulcast layers (720p camera:
// q/h/f at about 150 kbit/s, 500 kbit/s, 1.5 Mbit/s) from wisp's own namespace; a Chromium
// viewer in another namespace plays /watch/{room} (automatic layer: it never asks by rid)
// across a veth whose wisp side this script shapes with tc.
//  1. unshaped: the viewer reaches the top layer within 15 s;
//  2. once the layers have settled (10 s), shaped to 400 kbit/s (tbf, a 50 ms queue): it drops
//     to the lowest layer within 3 s, with no video freeze longer than 1 s (frames decoded,
//     sampled every 100 ms);
//  3. unshaped again: it climbs back to the top layer (within 30 s, a chosen bound).
// The layer is what wisp's admin API says the viewer's video slot shows; the estimate beside it.
// usage: node bwe.mjs BASE VIEWER_BASE VIEWER_CHROMIUM DEV
import { execSync } from 'node:child_process';
import { chromium } from 'playwright-core';

const [base, viewerBase, viewerChromium, dev] = process.argv.slice(2);
const ROOM = 'bwe';
const args = [
  '--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
  '--disable-gpu', '--autoplay-policy=no-user-gesture-required', '--disable-features=WebRtcHideLocalIpsWithMdns',
  // The camera needs a secure context; the lab serves plain HTTP on its own address.
  `--unsafely-treat-insecure-origin-as-secure=${base}`,
];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const step = (msg) => console.log(`ok   ${msg}`);
const fail = (msg) => { console.log(`FAIL ${msg}`); process.exitCode = 1; };
const shape = (rate) => execSync(rate
  ? `tc qdisc replace dev ${dev} root tbf rate ${rate} burst 8kb latency 50ms`
  : `tc qdisc del dev ${dev} root`, { stdio: 'inherit' });

// What the admin API says of the room's one viewer's video slot.
async function slot() {
  const r = await fetch(`${base}/api/rooms/${ROOM}`);
  if (!r.ok) return {};
  const room = await r.json();
  const v = room.viewers?.[0];
  const s = v?.slots?.find((x) => x.kind === 'video');
  const rates = (room.participants?.[0]?.tracks || []).filter((t) => t.rid)
    .map((t) => `${t.rid}:${Math.round(t.bitrateBps / 1000)}`).join('/');
  return { layer: s?.layer, estimate: v?.estimateBps, bitrate: s?.bitrateBps, rates };
}

// Polls every 100 ms until `want(layer)` or `ms` pass; meanwhile tracks the longest time the
// viewer decoded no new frame. Returns [elapsed ms or null, longest freeze ms, trace].
// With `detail`, `trace.samples` also holds the receiver's counters at every poll.
async function watch(viewer, want, ms, detail = false) {
  const t0 = Date.now();
  let lastFrames = -1; let lastChange = Date.now(); let freeze = 0; const trace = []; const stalls = [];
  trace.stalls = stalls; trace.samples = [];
  while (Date.now() - t0 < ms) {
    const frames = await viewer.evaluate(() => document.getElementById('player')
      .getVideoPlaybackQuality?.().totalVideoFrames ?? 0);
    const s = await slot();
    if (frames !== lastFrames) {
      // A stall longer than 300 ms goes in the trace: when it began, how long, on what layer.
      if (lastFrames >= 0 && Date.now() - lastChange > 300) {
        stalls.push(`${((lastChange - t0) / 1000).toFixed(1)}s+${Date.now() - lastChange}ms`);
      }
      lastFrames = frames; lastChange = Date.now();
    }
    freeze = Math.max(freeze, Date.now() - lastChange);
    if (detail) {
      const r = await rx(viewer);
      trace.samples.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${s.layer} shown ${frames} dec ${r.framesDecoded} key ${r.keyFramesDecoded} rcv ${r.packetsReceived} lost ${r.packetsLost} nack ${r.nackCount} pli ${r.pliCount} w ${r.frameWidth}`);
    }
    if (process.env.BWE_VERBOSE || trace.length === 0 || trace[trace.length - 1].layer !== s.layer) {
      trace.push({ at: Date.now() - t0, ...s });
    }
    if (want(s.layer)) return [Date.now() - t0, freeze, trace];
    await sleep(100);
  }
  return [null, freeze, trace];
}
// The viewer's video receiver counters (getStats), for telling why a freeze happened.
const rx = (viewer) => viewer.evaluate(async () => {
  const stats = await window.wisp.session.pc.getStats();
  for (const r of stats.values()) {
    if (r.type === 'inbound-rtp' && r.kind === 'video') {
      const { framesDecoded, keyFramesDecoded, pliCount, nackCount, packetsLost, packetsReceived,
        framesDropped, frameWidth } = r;
      return { framesDecoded, keyFramesDecoded, pliCount, nackCount, packetsLost, packetsReceived,
        framesDropped, frameWidth };
    }
  }
  return {};
});
const show = (trace) => trace.map((t) => `${(t.at / 1000).toFixed(1)}s ${t.layer} (estimate ${Math.round((t.estimate || 0) / 1000)}k${process.env.BWE_VERBOSE ? `; layers ${t.rates}` : ''})`).join(', ');

const pub = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
const sub = await chromium.launch({ executablePath: viewerChromium, headless: true, args });
try {
  const p = await pub.newPage();
  await p.goto(`${base}/publish`);
  await p.evaluate(async (room) => {
    const { Session, addSendTracks, peerConnection } = await import('/web/whip.js');
    const media = await navigator.mediaDevices.getUserMedia({
      video: { width: 1280, height: 720, frameRate: 30 }, audio: true,
    });
    const endpoint = `/whip/${room}?name=camera`;
    const pc = await peerConnection(endpoint);
    addSendTracks(pc, media);
    window.session = new Session(endpoint, {});
    await window.session.start(pc);
  }, ROOM);
  // The viewer's climb is what is measured, not the publisher's: Chromium enables its upper
  // layers only as its own estimate of wisp's uplink grows, which took 0.3-9 s here (its
  // startup probes sometimes do not show the capacity, then it ramps ~8 %/s). The viewer
  // joins once all three layers flow (a bound of 60 s: 24 s was seen).
  const pubStats = () => p.evaluate(async () => {
    const out = { limits: [] };
    for (const r of (await window.session.pc.getStats()).values()) {
      if (r.type === 'outbound-rtp' && r.kind === 'video') out.limits.push(`${r.rid}:${r.qualityLimitationReason}`);
      if (r.type === 'candidate-pair' && r.nominated) out.available = Math.round((r.availableOutgoingBitrate || 0) / 1000);
    }
    return `publisher estimate ${out.available}k, limited by ${out.limits.join(' ')}`;
  });
  const t0 = Date.now();
  let rates = '';
  while (Date.now() - t0 < 60_000) {
    rates = (await slot()).rates;
    if (/f:[1-9]/.test(rates)) break;
    await sleep(100);
  }
  if (!/f:[1-9]/.test(rates)) throw new Error(`the publisher sent no top layer in 60 s (${rates}; ${await pubStats()})`);
  step(`a 720p Chromium publisher sends simulcast: all three layers after ${((Date.now() - t0) / 1000).toFixed(1)} s (${rates}; ${await pubStats()})`);
  const v = await sub.newPage();
  await v.goto(`${viewerBase}/watch/${ROOM}`);
  await v.evaluate(() => { document.getElementById('player').muted = true; });

  let [took, , trace] = await watch(v, (l) => l === 'f', 15_000);
  if (took === null) fail(`unshaped, the viewer did not reach the top layer in 15 s: ${show(trace)}`);
  else step(`unshaped: top layer after ${(took / 1000).toFixed(1)} s (${show(trace)})`);

  // Chromium's encoders ramp up over their first seconds: let the layers settle first.
  await watch(v, () => false, 10_000);
  step(`settled: ${(await slot()).rates}`);
  const keyframes = async () => (await (await fetch(`${base}/metrics`)).text()).split('\n')
    .filter((l) => /^wisp_keyframe/.test(l)).join('; ');
  const before = await rx(v);
  const keyBefore = await keyframes();
  shape('400kbit');
  let freeze;
  [took, freeze, trace] = await watch(v, (l) => l === 'q', 3_000, true);
  if (took === null) fail(`shaped to 400 kbit/s, not on the lowest layer within 3 s: ${show(trace)}`);
  else step(`shaped to 400 kbit/s: lowest layer after ${(took / 1000).toFixed(1)} s (${show(trace)})`);
  // Keep it shaped a little, still watching for freezes.
  const [, freeze2, trace2] = await watch(v, () => false, 3_000, true);
  freeze = Math.max(freeze, freeze2);
  const after = await rx(v);
  const delta = Object.keys(after).map((k) => `${k} ${after[k] - (before[k] ?? 0)}`).join(', ');
  const stalls = `receiver while shaped: ${delta}; stalls over 300 ms: [${trace.stalls.join(', ')}] then [${trace2.stalls.join(', ')}]`;
  if (freeze > 1_000) {
    fail(`the video froze for ${freeze} ms while the link narrowed; ${stalls}; ${show(trace2)}`);
    console.log(`     wisp's keyframe counts before: ${keyBefore}\n     after: ${await keyframes()}`);
    console.log(`     the viewer while shaped, every poll:\n       ${[...trace.samples, ...trace2.samples].join('\n       ')}`);
  }
  else step(`longest freeze while shaped: ${freeze} ms; ${stalls}`);

  shape(null);
  [took, , trace] = await watch(v, (l) => l === 'f', 30_000);
  if (took === null) fail(`unshaped again, the viewer did not climb back in 30 s: ${show(trace)}`);
  else step(`unshaped again: back on the top layer after ${(took / 1000).toFixed(1)} s (${show(trace)})`);
} finally {
  await pub.close();
  await sub.close();
}
