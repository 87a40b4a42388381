// Headless Chromium playing what wisp packages over HTTP (tests/interop/record_lab.sh):
//   media.mjs hls <base> <room> [frames]   /watch/<room>?hls=1 plays the room's LL-HLS with
//                                          hls.js; exits 0 once `frames` video frames were
//                                          decoded and the page says it uses HLS; prints the
//                                          publish-to-screen latency (now − the playing
//                                          frame's EXT-X-PROGRAM-DATE-TIME, which is when
//                                          wisp received it), median of 10 samples over 5 s
//   media.mjs file <base> <path>           a <video> plays a recording served at <path>,
//                                          seeks to its middle, and decodes frames there
// Exit 1 (with FAIL and the reason) after 60 s or on any failed check.
import { chromium } from 'playwright-core';
import { until } from './poll.mjs';

const [mode, base, what, arg] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-gpu', '--autoplay-policy=no-user-gesture-required'],
});
let code = 0;
const frames = () => document.querySelector('video')?.getVideoPlaybackQuality().totalVideoFrames || 0;
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
  if (mode === 'hls') {
    const want = Number(arg) || 30;
    await page.goto(`${base}/watch/${what}?hls=1`);
    await until(page, (n) => (document.querySelector('video')?.getVideoPlaybackQuality().totalVideoFrames || 0) >= n,
      want, { timeout: 60_000, what: `${want} frames decoded from HLS` });
    const mode = await page.evaluate(() => `${window.wisp.mode}: ${document.getElementById('mode').textContent}`);
    if (!mode.startsWith('hls: via HLS')) throw new Error(`the page says ${mode}`);
    const latencies = [];
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const l = await page.evaluate(() => {
        const d = window.wisp.hls?.playingDate;
        return d ? (Date.now() - d.getTime()) / 1000 : null;
      });
      if (l !== null) latencies.push(l);
    }
    latencies.sort((a, b) => a - b);
    const median = latencies[Math.floor(latencies.length / 2)];
    console.log(`chromium decoded ${await page.evaluate(frames)} frames over HLS (${mode}); latency ${median?.toFixed(2)} s (median of ${latencies.length})`);
  } else if (mode === 'file') {
    await page.goto(`${base}/healthz`);
    await page.setContent(`<video muted autoplay src="${base}${what}"></video>`);
    await until(page, () => document.querySelector('video').readyState >= 1 && isFinite(document.querySelector('video').duration),
      null, { timeout: 30_000, what: 'the recording\'s metadata' });
    const duration = await page.evaluate(() => document.querySelector('video').duration);
    await until(page, () => document.querySelector('video').getVideoPlaybackQuality().totalVideoFrames >= 10,
      null, { timeout: 30_000, what: '10 frames decoded from the start' });
    const target = duration / 2;
    await page.evaluate((t) => new Promise((resolve) => {
      const v = document.querySelector('video');
      v.addEventListener('seeked', resolve, { once: true });
      v.currentTime = t;
    }), target);
    const before = await page.evaluate(frames);
    await until(page, (n) => document.querySelector('video').getVideoPlaybackQuality().totalVideoFrames >= n + 10,
      before, { timeout: 30_000, what: '10 frames decoded after the seek' });
    const at = await page.evaluate(() => document.querySelector('video').currentTime);
    if (at < target - 0.5) throw new Error(`after seeking to ${target.toFixed(2)} s it plays at ${at.toFixed(2)} s`);
    console.log(`chromium played ${what}: ${duration.toFixed(2)} s long, sought to ${target.toFixed(2)} s, playing at ${at.toFixed(2)} s`);
  }
} catch (e) {
  console.log(`FAIL ${e.message}`);
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
