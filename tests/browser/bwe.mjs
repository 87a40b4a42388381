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
async function watch(viewer, want, ms) {
  const t0 = Date.now();
  let lastFrames = -1; let lastChange = Date.now(); let freeze = 0; const trace = [];
  while (Date.now() - t0 < ms) {
    const frames = await viewer.evaluate(() => document.getElementById('player')
      .getVideoPlaybackQuality?.().totalVideoFrames ?? 0);
    if (frames !== lastFrames) { lastFrames = frames; lastChange = Date.now(); }
    freeze = Math.max(freeze, Date.now() - lastChange);
    const s = await slot();
    if (process.env.BWE_VERBOSE || trace.length === 0 || trace[trace.length - 1].layer !== s.layer) {
      trace.push({ at: Date.now() - t0, ...s });
    }
    if (want(s.layer)) return [Date.now() - t0, freeze, trace];
    await sleep(100);
  }
  return [null, freeze, trace];
}
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
  step('a 720p Chromium publisher sends simulcast');
  const v = await sub.newPage();
  await v.goto(`${viewerBase}/watch/${ROOM}`);
  await v.evaluate(() => { document.getElementById('player').muted = true; });

  let [took, , trace] = await watch(v, (l) => l === 'f', 15_000);
  if (took === null) fail(`unshaped, the viewer did not reach the top layer in 15 s: ${show(trace)}`);
  else step(`unshaped: top layer after ${(took / 1000).toFixed(1)} s (${show(trace)})`);

  // Chromium's encoders ramp up over their first seconds: let the layers settle first.
  await watch(v, () => false, 10_000);
  step(`settled: ${(await slot()).rates}`);
  shape('400kbit');
  let freeze;
  [took, freeze, trace] = await watch(v, (l) => l === 'q', 3_000);
  if (took === null) fail(`shaped to 400 kbit/s, not on the lowest layer within 3 s: ${show(trace)}`);
  else step(`shaped to 400 kbit/s: lowest layer after ${(took / 1000).toFixed(1)} s (${show(trace)})`);
  // Keep it shaped a little, still watching for freezes.
  const [, freeze2] = await watch(v, () => false, 3_000);
  freeze = Math.max(freeze, freeze2);
  if (freeze > 1_000) fail(`the video froze for ${freeze} ms while the link narrowed`);
  else step(`longest freeze while shaped: ${freeze} ms`);

  shape(null);
  [took, , trace] = await watch(v, (l) => l === 'f', 30_000);
  if (took === null) fail(`unshaped again, the viewer did not climb back in 30 s: ${show(trace)}`);
  else step(`unshaped again: back on the top layer after ${(took / 1000).toFixed(1)} s (${show(trace)})`);
} finally {
  await pub.close();
  await sub.close();
}
