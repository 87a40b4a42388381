// Headless Chromium on wisp's self-test page (/test), run by tests/nat/lab.sh in the client
// namespace behind the lab's NAT. Clicks "Run the test", waits (bounded) for window.wispTest.done
// and checks what the page concluded for the network it is in:
//   blocked  the router drops all UDP; wisp offers TURN over UDP and TCP. Expected: direct UDP
//            no, TURN over UDP no, TURN over TCP yes, TURN over TLS not offered, the echo came
//            back over TURN/TCP, and the advice says UDP is blocked and TURN over TCP works.
//   open     UDP passes the NAT. Expected: direct UDP yes, both TURN ways yes, the advice says
//            everything works.
// `--secure` treats the plain-http lab origin as secure, so the fake camera is used; without
// it the page must say the camera needs https and run on its test picture instead.
// usage: node selftest.mjs <http://…/test> <blocked|open> <screenshot.png> [--secure]
import { chromium } from 'playwright-core';

const [url, mode, shot, ...flags] = process.argv.slice(2);
const secure = flags.includes('--secure');
const T = 60_000;
const origin = new URL(url).origin;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--disable-gpu', '--autoplay-policy=no-user-gesture-required',
    ...(secure ? [`--unsafely-treat-insecure-origin-as-secure=${origin}`] : [])],
});
let failed = false;
const ok = (msg) => console.log(`ok   ${msg}`);
try {
  const page = await (await browser.newContext({ viewport: { width: 1000, height: 900 } })).newPage();
  page.on('pageerror', (e) => console.log(`  [page error] ${e.message}`));
  await page.goto(url);
  const t0 = Date.now();
  await page.getByRole('button', { name: 'Run the test' }).click();
  await page.waitForFunction(() => window.wispTest?.done === true, null, { timeout: T, polling: 250 })
    .catch(async (e) => {
      const seen = await page.evaluate(() => document.querySelector('main').innerText);
      throw new Error(`the self-test did not finish: ${e.message}\n${seen}`);
    });
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  const r = await page.evaluate(() => window.wispTest.results);
  await page.screenshot({ path: shot, fullPage: true });
  const text = await page.evaluate(() => document.querySelector('main').innerText);
  const say = (k) => r.sentences[k] || '(no sentence)';
  const expect = (cond, what, detail) => {
    if (!cond) throw new Error(`${what}: ${detail}\n--- the page says:\n${text}`);
    ok(`${what}: ${detail}`);
  };
  ok(`the self-test finished in ${secs} s (${mode}${secure ? ', fake camera' : ', no secure context'})`);
  expect(r.http === true, 'HTTP', say('http'));
  if (secure) expect(r.camera === true, 'camera', say('camera'));
  else expect(r.camera === false && /not secure/.test(say('camera')) && /test picture/.test(say('camera')), 'camera (insecure page)', say('camera'));
  expect(r.echo === true, 'echo', say('echo'));
  expect(r.turnTls === null && /Not offered/.test(say('turnTls')), 'TURN over TLS', say('turnTls'));
  if (mode === 'blocked') {
    expect(r.udp === false, 'direct UDP', say('udp'));
    expect(r.turnUdp === false, 'TURN over UDP', say('turnUdp'));
    expect(r.turnTcp === true, 'TURN over TCP', say('turnTcp'));
    expect(r.path === 'turnTcp', 'echo path', `over ${r.path}`);
    expect(/UDP is blocked/.test(r.advice) && /TURN over TCP works/.test(r.advice), 'advice', r.advice);
  } else {
    expect(r.udp === true, 'direct UDP', say('udp'));
    expect(r.turnUdp === true, 'TURN over UDP', say('turnUdp'));
    expect(r.turnTcp === true, 'TURN over TCP', say('turnTcp'));
    expect(r.path === 'udp', 'echo path', `over ${r.path}`);
    expect(/everything works/i.test(r.advice), 'advice', r.advice);
  }
  expect(Number.isFinite(r.rttMs) && Number.isFinite(r.lossPct) && r.bitrateKbps > 0, 'measured',
    `round trip ${r.rttMs} ms, loss ${r.lossPct} %, bitrate ${r.bitrateKbps} kbit/s, first frame after ${r.firstFrameMs} ms`);
  // Each result is a word and a sentence on the page, not only a colour.
  const rows = await page.locator('#results li:not([hidden])').allInnerTexts();
  expect(rows.length >= 10 && rows.every((t) => /^(Yes|No|Not offered|Not needed|Not tested|Only here|Careful|\d[\d.,]* ?(ms|%|kbit\/s))(?=\s|$)/.test(t)),
    'results readable as text', `${rows.length} rows, each starting with its verdict in words`);
} catch (e) {
  failed = true;
  console.log(`FAIL ${e.message}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
