// One headless Chromium end of an interop cell (tests/interop/gst_lab.sh), inside the lab.
//   cell.mjs publish <base> <room> [codec]   the conference page publishes (fake camera and
//                                            microphone, one layer, `codec` only if given)
//                                            until killed
//   cell.mjs play <base> <room> [frames]     /watch/<room> plays; exits 0 once `frames` video
//                                            frames were decoded (getStats), 1 after 60 s;
//                                            prints how long after the WHEP POST the first
//                                            frame was decoded (polled every 20 ms)
// TOKEN=<token> in the environment: the pages get it in their URL fragment (#token=), as an
// invite link carries it.
import { chromium } from 'playwright-core';
import { until } from './poll.mjs';

const [mode, base, room, arg] = process.argv.slice(2);
const fragment = process.env.TOKEN ? `#token=${encodeURIComponent(process.env.TOKEN)}` : '';
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--disable-gpu', '--autoplay-policy=no-user-gesture-required',
    '--disable-features=WebRtcHideLocalIpsWithMdns'],
});
let code = 0;
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
  if (mode === 'publish') {
    const codec = arg ? `&codec=${encodeURIComponent(arg)}` : '';
    const name = fragment ? '' : '&name=chromium'; // a token's name wins
    await page.goto(`${base}/?room=${room}${name}&autojoin&nosimulcast${codec}${fragment}`);
    await page.waitForFunction(() => window.wisp?.pub?.pc?.connectionState === 'connected', null, { timeout: 30_000 });
    const sent = await page.evaluate(async () => {
      let codec = '';
      const stats = await window.wisp.pub.pc.getStats();
      stats.forEach((r) => { if (r.type === 'outbound-rtp') { const c = stats.get(r.codecId); if (c) codec += `${codec ? ', ' : ''}${c.mimeType} ${c.sdpFmtpLine || ''}`.trim(); } });
      return codec;
    });
    console.log(`chromium publishes ${sent || 'video'} to ${room}`);
    await new Promise((resolve) => { process.on('SIGINT', resolve); process.on('SIGTERM', resolve); });
  } else {
    const frames = Number(arg) || 30;
    // Note when the page POSTs its WHEP offer, to time the first decoded frame from it.
    await page.addInitScript(() => {
      const fetch0 = window.fetch;
      window.fetch = (input, init) => {
        const url = typeof input === 'string' ? input : input.url;
        if ((init?.method || 'GET') === 'POST' && url.includes('/whep/') && !window.__posted) {
          window.__posted = performance.now();
        }
        return fetch0(input, init);
      };
    });
    await page.goto(`${base}/watch/${room}${fragment}`);
    await until(page, async (n) => {
      const pc = window.wisp?.session?.pc;
      if (!pc) return false;
      let f = 0;
      (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') f += r.framesDecoded || 0; });
      if (f > 0 && !window.__first) window.__first = performance.now();
      window.__frames = f;
      return f >= n;
    }, frames, { timeout: 60_000, every: 20, what: `${frames} decoded frames` });
    const after = await page.evaluate(() => ((window.__first - window.__posted) / 1000).toFixed(2));
    console.log(`first video frame ${after} s after the POST`);
    const info = await page.evaluate(async () => {
      const pc = window.wisp.session.pc;
      const stats = await pc.getStats();
      let s = '';
      stats.forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') s = `${stats.get(r.codecId)?.mimeType} ${r.frameWidth}x${r.frameHeight}`; });
      return `${window.__frames} frames, ${s}`;
    });
    console.log(`chromium decoded ${info}`);
  }
} catch (e) {
  // Say where the page stood, so a failure names the stage (signalling, ICE, no media, HLS).
  const where = await browser.contexts()[0]?.pages()[0]?.evaluate(async () => {
    const w = window.wisp || {};
    const pc = w.session?.pc || w.pub?.pc;
    const rtp = [];
    if (pc) (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp') rtp.push(`${r.kind} ${r.packetsReceived || 0} pkts ${r.framesDecoded ?? ''}`.trim()); });
    return { mode: w.mode, live: w.live, pc: pc?.connectionState, ice: pc?.iceConnectionState, rtp,
      said: document.getElementById('live')?.textContent, error: document.getElementById('error')?.textContent };
  }).catch((x) => `(page state unavailable: ${x.message})`);
  console.log(`     page: ${JSON.stringify(where)}`);
  console.log(`FAIL ${e.message}`);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
