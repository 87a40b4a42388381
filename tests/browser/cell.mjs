// One headless Chromium end of an interop cell (tests/interop/gst_lab.sh), inside the lab.
//   cell.mjs publish <base> <room> [codec]   the conference page publishes (fake camera and
//                                            microphone, one layer, `codec` only if given)
//                                            until killed
//   cell.mjs play <base> <room> [frames]     /watch/<room> plays; exits 0 once `frames` video
//                                            frames were decoded (getStats), 1 after 60 s
import { chromium } from 'playwright-core';
import { until } from './poll.mjs';

const [mode, base, room, arg] = process.argv.slice(2);
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
    await page.goto(`${base}/?room=${room}&name=chromium&autojoin&nosimulcast${codec}`);
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
    await page.goto(`${base}/watch/${room}`);
    await until(page, async (n) => {
      const pc = window.wisp?.session?.pc;
      if (!pc) return false;
      let f = 0;
      (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') f += r.framesDecoded || 0; });
      window.__frames = f;
      return f >= n;
    }, frames, { timeout: 60_000, what: `${frames} decoded frames` });
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
  console.log(`FAIL ${e.message}`);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
