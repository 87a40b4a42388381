// The pages as people use them (issue #19), in headless Chromium (Debian's, fake devices)
// inside the lab (tests/browser/pages_lab.sh). Two browsers so each has its own fake
// microphone: alice "speaks" (a speech-like WAV), everyone else is silent.
//  1. /watch on an empty room says "offline" in words; screenshots at 1280×720 and 390×844.
//  2. alice's pre-join: camera preview playing, the microphone meter moving, device pickers
//     filled, "join muted" remembered over a reload, the room field's pattern compiles under
//     the `v` flag; screenshots; then she joins with the Join button. A browser that refuses
//     the devices gets the reason in words.
//  3. bob and carol join (?autojoin skips the pre-join); everyone sees the others' video.
//  4. chat: alice's message reaches everyone; bob's message full of markup and <script> is
//     shown as text on every page (no element made, nothing run); dave joins late and gets
//     the history in order.
//  5. bob mutes: the others show it within a second; camera off likewise; M and V undo both.
//  6. dave's grid of 4: screenshots; the side panel and the settings dialog close on Esc.
//  7. dave pins bob (a thumbnail of the speaker view): bob's slot gets a larger layer.
//  8. alice shares her screen: the others show it large; the track's `ended` (the browser's
//     stop-sharing bar) ends it everywhere. Screenshots of the speaker view with the screen.
//     erin joins "without camera" (bob shows her initial), starts it (bob decodes her video)
//     and leaves.
//  9. /watch (open since step 1) turned live: viewers counted, the picture quality shown,
//     the click-to-unmute overlay unmutes, fullscreen; screenshots.
// 10. /publish goes live: the preview, the live indicator, bitrate, resolution, viewers.
// 11. all UDP dropped: /watch says "reconnecting"; restored: "live" again.
// On every page (/, the room, /watch, /publish, /admin) axe-core finds no serious or critical
// violation, and at 390×844 every control is at least 44×44 px (not /admin: not these pages).
// Every wait is on a condition and bounded. usage: node pages.mjs BASE SPEECH.wav SILENCE.wav OUTDIR
import { execSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { until } from './poll.mjs';

const [base, speechWav, silenceWav, outDir = 'target/pages'] = process.argv.slice(2);
const ROOM = 'pages';
const T = 30_000;
const AXE = fileURLToPath(new URL('./node_modules/axe-core/axe.min.js', import.meta.url));
const DESKTOP = { width: 1280, height: 720 };
const PHONE = { width: 390, height: 844 };
mkdirSync(outDir, { recursive: true });

const args = (wav) => [
  '--no-sandbox', '--use-fake-ui-for-media-stream',
  // 15 frames a second: six browsers on two cores stay responsive.
  '--use-fake-device-for-media-stream=fps=15', `--use-file-for-fake-audio-capture=${wav}`, '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-gpu',
  '--autoplay-policy=no-user-gesture-required', '--disable-features=WebRtcHideLocalIpsWithMdns',
];
const launch = (wav) => chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: args(wav) });
const step = (msg) => console.log(`ok   ${msg}`);
// A failure's diagnostics, bounded: a page whose renderer hangs never answers an evaluate
// (playwright sets no limit), and the failure would then wait for the lab's 600 s timeout
// (seen once at step 9) instead of being reported with what is known.
const answered = (p) => Promise.race([p, new Promise((resolve) => { setTimeout(() => resolve('(the page did not answer in 10 s)'), 10_000).unref(); })]);
// The network fault of step 11: every UDP packet into the lab namespace dropped.
const TABLE = 'wisp_pages';
const cut = () => execSync('nft -f -', {
  input: `table inet ${TABLE} {\n chain in {\n  type filter hook input priority 0; policy accept;\n  meta l4proto udp drop\n }\n}\n`,
  stdio: ['pipe', 'inherit', 'inherit'],
});
const restore = () => { try { execSync(`nft delete table inet ${TABLE}`, { stdio: 'ignore' }); } catch (_) { /* not there */ } };
const pageErrors = [];

// In each page, before its scripts: when it POSTed its state and when `state` events came
// (wall clock), so a slow mute says where the time went.
function journal() {
  const log = window.__stateLog = [];
  const ES = window.EventSource;
  window.EventSource = class extends ES {
    constructor(...a) {
      super(...a);
      this.addEventListener('state', (e) => log.push(`event ${Date.now()} ${e.data}`));
    }
  };
  const f = window.fetch;
  window.fetch = async (u, init = {}) => {
    const t = Date.now();
    const r = await f(u, init);
    if (String(u).endsWith('/state')) log.push(`POST ${t}..${Date.now()} ${r.status} ${init.body}`);
    return r;
  };
}

async function newPage(browser, who) {
  const page = await (await browser.newContext({ viewport: DESKTOP })).newPage();
  await page.addInitScript(journal);
  page.on('pageerror', (e) => { pageErrors.push(`${who}: ${e.message}`); console.log(`page error (${who}): ${e.message}`); });
  // A renderer that crashes or a page that goes away says so (else only "target closed" shows).
  page.on('crash', () => console.log(`     (${who}: the page's renderer crashed)`));
  page.on('close', () => console.log(`     (${who}: page closed)`));
  // (A response whose body nobody reads shows as ERR_ABORTED: not a failure.)
  page.on('requestfailed', (r) => { if (!/ERR_ABORTED/.test(r.failure()?.errorText)) console.log(`     (${who}: ${r.url()} failed: ${r.failure()?.errorText})`); });
  page.on('response', (r) => { if (r.status() === 404 && r.url().includes('/web/')) console.log(`     (${who}: ${r.url()} 404)`); });
  return page;
}

// Two animation frames: the layout after a resize or a class change has been applied.
const settled = (page) => page.evaluate(() => new Promise((r) => { requestAnimationFrame(() => requestAnimationFrame(r)); }));

async function shot(page, name) {
  await settled(page);
  await page.screenshot({ path: `${outDir}/${name}.png` });
}

/** Runs `fn` with the page at phone size (390×844), then back to 1280×720. */
async function asPhone(page, fn) {
  await page.setViewportSize(PHONE);
  await page.waitForFunction(() => innerWidth === 390, null, { timeout: T });
  await settled(page);
  try { return await fn(); } finally {
    await page.setViewportSize(DESKTOP);
    await page.waitForFunction(() => innerWidth === 1280, null, { timeout: T });
  }
}

/** axe-core on the page as it is: no serious or critical violation. */
async function axe(page, what) {
  if (!(await page.evaluate(() => !!window.axe))) await page.addScriptTag({ path: AXE });
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 4).map((n) => n.target.join(' ')) }));
  });
  const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length) throw new Error(`axe on ${what}: ${JSON.stringify(bad)}`);
  const minor = found.map((v) => `${v.id} (${v.impact})`).join(', ');
  step(`axe-core on ${what}: no serious or critical violations${minor ? `; minor: ${minor}` : ''}`);
}

/** Every visible control at least 44×44 px (a checkbox: its label, the thing one taps). */
async function touchTargets(page, what) {
  const small = await page.evaluate(() => {
    const out = [];
    let n = 0;
    for (const el of document.querySelectorAll('button, a[href], input, select, textarea, summary, [role="button"]')) {
      const target = el.matches('input[type="checkbox"], input[type="radio"]') ? el.closest('label') || el : el;
      if (!el.checkVisibility({ visibilityProperty: true }) || el.closest('[hidden], [inert]')) continue;
      if (el.closest('dialog') && !el.closest('dialog').open) continue;
      const r = target.getBoundingClientRect();
      if (!r.width || !r.height) continue;
      n += 1;
      if (r.width < 44 || r.height < 44) {
        out.push(`${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className && typeof el.className === 'string' ? `.${el.className.split(' ')[0]}` : ''} ${Math.round(r.width)}×${Math.round(r.height)}`);
      }
    }
    return { out, n };
  });
  if (small.out.length) throw new Error(`${what} at 390×844: controls smaller than 44×44 px: ${small.out.join(', ')}`);
  step(`${what} at 390×844: all ${small.n} visible controls are at least 44×44 px`);
}

// The video tiles a room page shows: [{ key, participant, label, w, h, featured, screen, … }].
const tilesOf = (page) => page.evaluate(() => [...document.querySelectorAll('.tile:not([hidden])')].map((t) => {
  const r = t.getBoundingClientRect();
  const v = t.querySelector('video');
  return {
    key: t.dataset.key, participant: t.dataset.participant || '', label: t.querySelector('.label').textContent,
    area: Math.round(r.width * r.height), featured: t.classList.contains('featured'), screen: t.classList.contains('screen'),
    muted: !t.querySelector('.mic-off').hidden, camoff: t.classList.contains('camoff'), video: v.videoWidth,
  };
}));

// Frames decoded on a room page's WHEP connection, per mid.
const decoded = (page) => page.evaluate(async () => {
  const out = {};
  if (!window.wisp?.sub?.pc) return out;
  (await window.wisp.sub.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') out[r.mid] = { frames: r.framesDecoded || 0, height: r.frameHeight || 0 };
  });
  return out;
});

/** Waits until `page` shows exactly `names` (besides itself) with video decoding on each. */
async function seesEveryone(page, me, names) {
  await page.waitForFunction(([me, names]) => {
    const labels = [...document.querySelectorAll('.tile:not([hidden]) .label')].map((l) => l.textContent);
    return labels.includes(`${me} (you)`) && names.every((n) => labels.includes(n)) && labels.length === names.length + 1;
  }, [me, names], { timeout: T }).catch(async (e) => {
    throw new Error(`${me}'s page should show ${names.join(', ')}: ${e.message}; shows ${JSON.stringify(await answered(tilesOf(page)))}`);
  });
  const before = await decoded(page);
  await until(page, async ([before, n]) => {
    const w = window.wisp;
    const mids = [...w.slots].filter(([, p]) => p).map(([m]) => m);
    if (mids.length < n) return false;
    const now = {};
    (await w.sub.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') now[r.mid] = r.framesDecoded || 0; });
    return mids.every((m) => now[m] > (before[m]?.frames || 0) + 10);
  }, [before, names.length], { timeout: T, what: `${me}: frames decoding on every tile` });
}

const idOf = (page, name) => page.evaluate((n) => [...window.wisp.roster.values()].find((p) => p.name === n && !p.screenOf)?.id, name);

const [ba, bb] = await Promise.all([launch(speechWav), launch(silenceWav)]);
for (const [b, name] of [[ba, 'the speaking browser'], [bb, 'the silent browser']]) b.on('disconnected', () => console.log(`     (${name} went away)`));
let failed = false;
const t0 = Date.now();
try {
  // ---- 1. /watch before anyone is there ----
  const watcher = await newPage(bb, 'watcher');
  await watcher.goto(`${base}/watch/${ROOM}`);
  await watcher.waitForFunction(() => window.wisp?.live === false && document.getElementById('live').textContent === 'offline'
    && !document.getElementById('offline-msg').hidden, null, { timeout: T });
  await shot(watcher, 'watch-offline-1280');
  await axe(watcher, '/watch (offline)');
  await asPhone(watcher, async () => { await shot(watcher, 'watch-offline-390'); await touchTargets(watcher, '/watch (offline)'); });
  step('/watch on an empty room says "offline" and explains it in words');

  // ---- 2. alice's pre-join ----
  const alice = await newPage(ba, 'alice');
  await alice.goto(`${base}/?room=${ROOM}&name=alice`);
  // (Only the default fake microphone plays the speech file: the level is checked on it.)
  const previewing = (level = true) => alice.waitForFunction((level) => {
    const v = document.getElementById('preview');
    return v.videoWidth > 0 && v.currentTime > 0 && document.getElementById('pj-camera').options.length > 0
      && document.getElementById('pj-mic').options.length > 0 && (!level || Number(document.getElementById('level').getAttribute('aria-valuenow')) > 5);
  }, level, { timeout: T });
  await previewing();
  const devices = await alice.evaluate(() => ['pj-camera', 'pj-mic', 'pj-speaker'].map((id) => document.getElementById(id).options.length));
  step(`pre-join: the camera preview plays, the microphone meter moves with alice's voice, pickers list ${devices.join('/')} cameras/microphones/speakers`);
  // The room field's pattern compiles under the `v` flag (else the browser skips the check).
  const pattern = await alice.evaluate(() => {
    const input = document.getElementById('room');
    const saved = input.value;
    let compiles = true;
    try { new RegExp(`^(?:${input.pattern})$`, 'v'); } catch (_) { compiles = false; }
    const valid = ['lab-1.x~y_Z', 'bad name!', 'a/b', ''].map((v) => { input.value = v; return input.checkValidity(); });
    input.value = saved;
    return { compiles, valid };
  });
  if (!pattern.compiles || JSON.stringify(pattern.valid) !== '[true,false,false,false]') throw new Error(`room pattern: ${JSON.stringify(pattern)}`);
  step('pre-join: the room field\'s pattern compiles with the v flag and refuses "bad name!", "a/b" and ""');
  await shot(alice, 'prejoin-1280');
  await axe(alice, 'the pre-join screen');
  await asPhone(alice, async () => { await shot(alice, 'prejoin-390'); await touchTargets(alice, 'the pre-join screen'); });
  // Choices are remembered: "join muted" and the second microphone survive a reload.
  await alice.check('#join-muted');
  const [firstMic, secondMic] = await alice.evaluate(() => [...document.getElementById('pj-mic').options].map((o) => o.value));
  if (secondMic) await alice.selectOption('#pj-mic', secondMic);
  await alice.reload();
  await previewing(false);
  const kept = await alice.evaluate(() => ({ muted: document.getElementById('join-muted').checked, mic: document.getElementById('pj-mic').value }));
  if (!kept.muted || (secondMic && kept.mic !== secondMic)) throw new Error(`pre-join choices not remembered: ${JSON.stringify(kept)}`);
  await alice.uncheck('#join-muted');
  if (secondMic) await alice.selectOption('#pj-mic', firstMic);
  await previewing();
  step('pre-join: "join muted" and the chosen microphone are remembered over a reload');
  await alice.click('#join');
  await alice.waitForFunction(() => !!window.wisp?.me && document.getElementById('lobby').hidden, null, { timeout: T });
  step('alice joins from the pre-join screen with the Join button');

  // A browser that refuses the devices: the pre-join says so in words, and joining stays possible.
  const refusing = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--use-fake-device-for-media-stream', '--deny-permission-prompts', '--disable-gpu'] });
  try {
    const nope = await newPage(refusing, 'refused');
    await nope.goto(`${base}/?room=${ROOM}&name=nobody`);
    await nope.waitForFunction(() => /blocked/.test(document.getElementById('device-error').textContent)
      && !document.getElementById('retry').hidden && !document.getElementById('join').disabled, null, { timeout: T });
    step(`pre-join, devices refused: "${await nope.evaluate(() => document.getElementById('device-error').textContent)}"`);
    await nope.click('#join');
    await nope.waitForFunction(() => !!window.wisp?.me && !document.getElementById('notice').hidden
      && window.wisp.muted && window.wisp.cameraOff, null, { timeout: T });
    step(`joining anyway works, with the reason kept in view: "${await nope.evaluate(() => document.getElementById('notice-text').textContent)}"`);
    await axe(nope, 'the room joined without devices (the notice shown)');
    await nope.click('#notice-close');
    await nope.waitForFunction(() => document.getElementById('notice').hidden, null, { timeout: T });
    await nope.click('#leave');
  } finally { await refusing.close(); }

  // ---- 3. bob and carol ----
  const bob = await newPage(bb, 'bob');
  await bob.goto(`${base}/?room=${ROOM}&name=bob&autojoin`);
  await bob.waitForFunction(() => !!window.wisp?.me, null, { timeout: T });
  const carol = await newPage(bb, 'carol');
  await carol.goto(`${base}/?room=${ROOM}&name=carol&autojoin`);
  await carol.waitForFunction(() => !!window.wisp?.me, null, { timeout: T });
  if (!(await carol.evaluate(() => document.getElementById('lobby').hidden))) throw new Error('?autojoin showed the pre-join screen');
  await Promise.all([seesEveryone(alice, 'alice', ['bob', 'carol']), seesEveryone(bob, 'bob', ['alice', 'carol']), seesEveryone(carol, 'carol', ['alice', 'bob'])]);
  step('alice, bob and carol see each other, frames decoding on every tile (?autojoin skips the pre-join)');

  // ---- 4. chat ----
  const say = async (page, text) => {
    if (await page.evaluate(() => document.getElementById('panel').hidden)) await page.click('#panel-toggle');
    await page.fill('#chat-input', text);
    await page.press('#chat-input', 'Enter');
    await page.waitForFunction(() => document.getElementById('chat-input').value === '', null, { timeout: T }).catch(async (e) => {
      throw new Error(`chat not sent: ${await answered(page.evaluate(() => document.getElementById('chat-status').textContent))} (${e.message})`);
    });
  };
  const texts = (page) => page.evaluate(() => [...document.querySelectorAll('#chat-log .msg .text')].map((p) => p.textContent));
  const HELLO = 'hello from alice';
  const EVIL = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b> & "quotes" <a href="javascript:alert(1)">x</a>';
  await say(alice, HELLO);
  await say(bob, EVIL);
  for (const [name, page] of Object.entries({ alice, bob, carol })) {
    await page.waitForFunction(([a, b]) => {
      const t = [...document.querySelectorAll('#chat-log .msg .text')].map((p) => p.textContent);
      return t.includes(a) && t.includes(b);
    }, [HELLO, EVIL], { timeout: T }).catch(async (e) => { throw new Error(`${name}'s chat: ${JSON.stringify(await answered(texts(page)))} (${e.message})`); });
    const harm = await page.evaluate(() => ({
      elements: document.querySelectorAll('#chat-log img, #chat-log script, #chat-log b, #chat-log a').length,
      pwned: window.__pwned ?? null,
    }));
    if (harm.elements || harm.pwned !== null) throw new Error(`${name}'s page made elements of a chat message: ${JSON.stringify(harm)}`);
  }
  step('chat: alice\'s message reaches everyone; bob\'s markup and <script> show as text on every page (no element, nothing run)');
  const dave = await newPage(bb, 'dave');
  await dave.goto(`${base}/?room=${ROOM}&name=dave&autojoin`);
  await dave.waitForFunction(([a, b]) => {
    const t = [...document.querySelectorAll('#chat-log .msg .text')].map((p) => p.textContent);
    return t.length === 2 && t[0] === a && t[1] === b && !document.querySelector('#chat-log img, #chat-log script, #chat-log b');
  }, [HELLO, EVIL], { timeout: T }).catch(async (e) => { throw new Error(`dave's chat history: ${JSON.stringify(await answered(texts(dave)))} (${e.message})`); });
  step('chat: dave, joining late, gets the history in order, the markup still as text');
  await Promise.all([seesEveryone(dave, 'dave', ['alice', 'bob', 'carol']), seesEveryone(alice, 'alice', ['bob', 'carol', 'dave'])]);
  step('dave sees alice, bob and carol; alice sees dave');


  // ---- 5. mute and camera state, within a second ----
  const bobId = await idOf(alice, 'bob');
  const others = { alice, carol, dave };
  // Timed from the moment bob's page acts (a click dispatched in the page, or a key press;
  // Playwright's own click first waits for the element to settle, which is not the page's
  // time) to the moment each other page's DOM shows it: a MutationObserver set up before the
  // act notes that time (the machine's one clock). Polling from here would add the test's own
  // latency on two loaded cores.
  const within = async (what, act, shows) => {
    await Promise.all(Object.values(others).map((page) => page.evaluate(([fn, id]) => {
      const check = new Function(`return (${fn})`)();
      window.__shownAt = null;
      const mo = new MutationObserver(() => {
        if (!window.__shownAt && check(id)) { window.__shownAt = Date.now(); mo.disconnect(); }
      });
      mo.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    }, [shows.toString(), bobId])));
    const start = await act();
    const took = await Promise.all(Object.entries(others).map(async ([name, page]) => {
      await page.waitForFunction(() => window.__shownAt, null, { timeout: 5_000 }).catch(async () => {
        throw new Error(`${name}'s page does not show ${what} after 5 s: ${JSON.stringify(await answered(tilesOf(page)))}`);
      });
      return [name, (await page.evaluate(() => window.__shownAt)) - start];
    }));
    const slow = took.filter(([, ms]) => ms > 1000);
    if (slow.length) {
      const logs = await Promise.all(Object.entries({ bob, ...others }).map(async ([n, p]) => `${n}: ${(await p.evaluate(() => window.__stateLog.slice(-4))).join('; ')}`));
      // The load average says whether the machine was shared with other work at the time.
      throw new Error(`${what} took more than a second to show: ${JSON.stringify(took)} (load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; acted at ${start}; ${logs.join(' | ')})`);
    }
    step(`${what} shows on the others' pages within a second (${took.map(([n, ms]) => `${n} ${ms} ms`).join(', ')})`);
  };
  const press = (id) => () => bob.evaluate((b) => { const t = Date.now(); document.getElementById(b).click(); return t; }, id);
  await within('bob muted', press('mic'), (id) => {
    const t = document.querySelector(`.tile:not([hidden])[data-participant="${id}"]`);
    return t && !t.querySelector('.mic-off').hidden && [...document.querySelectorAll('#people li.muted')].some((l) => l.textContent === 'bob');
  });
  await within('bob\'s camera off', press('cam'), (id) => document.querySelector(`.tile:not([hidden])[data-participant="${id}"]`)?.classList.contains('camoff'));
  await within('bob unmuted and camera on again (keys M and V)', async () => {
    await bob.evaluate(() => document.activeElement?.blur()); // out of the chat field (typing there types)
    const t = Date.now(); await bob.keyboard.press('m'); await bob.keyboard.press('v'); return t; }, (id) => {
    const t = document.querySelector(`.tile:not([hidden])[data-participant="${id}"]`);
    return t && t.querySelector('.mic-off').hidden && !t.classList.contains('camoff');
  });

  // ---- 6. dave's grid of four ----
  await dave.click('#layout');
  await dave.waitForFunction(() => document.getElementById('tiles').classList.contains('grid')
    && [...document.querySelectorAll('.tile:not([hidden]) video')].filter((v) => v.videoWidth > 0).length === 4, null, { timeout: T });
  const grid = await tilesOf(dave);
  const areas = grid.map((t) => t.area);
  if (Math.max(...areas) > Math.min(...areas) * 1.1) throw new Error(`grid tiles differ in size: ${JSON.stringify(grid)}`);
  step(`dave's grid: 4 equal tiles (${areas[0]} px² each)`);
  await shot(dave, 'grid-1280');
  await axe(dave, 'the room (grid, chat open)');
  await asPhone(dave, async () => {
    await dave.waitForFunction(() => document.getElementById('panel').hidden || getComputedStyle(document.getElementById('panel')).position === 'absolute', null, { timeout: T });
    if (!(await dave.evaluate(() => document.getElementById('panel').hidden))) {
      await dave.keyboard.press('Escape');
      await dave.waitForFunction(() => document.getElementById('panel').hidden, null, { timeout: T });
      step('the chat panel over the tiles on a phone closes with Esc');
    }
    await shot(dave, 'grid-390');
    await touchTargets(dave, 'the room (grid)');
    await dave.click('#settings-btn');
    await dave.waitForFunction(() => document.getElementById('settings').open, null, { timeout: T });
    await touchTargets(dave, 'the settings dialog');
    await dave.keyboard.press('Escape');
    await dave.waitForFunction(() => !document.getElementById('settings').open, null, { timeout: T });
    step('the settings dialog closes with Esc');
  });

  // ---- 7. pin: dave pins bob, a thumbnail of the speaker view; bob's slot gets a larger layer ----
  await dave.click('#layout');
  const aliceId = await idOf(dave, 'alice');
  // Bob must send two simulcast layers for a larger one to exist.
  await until(bob, async () => {
    let n = 0;
    (await window.wisp.pub.pc.getStats()).forEach((r) => { if (r.type === 'outbound-rtp' && r.kind === 'video' && r.frameHeight > 0) n += 1; });
    return n >= 2;
  }, null, { timeout: T, what: 'bob sending two simulcast layers' });
  const bobMid = () => dave.evaluate((id) => [...window.wisp.slots].find(([, p]) => p === id)?.[0], bobId);
  await until(dave, async ([alice, bob]) => {
    const w = window.wisp;
    if (w.active !== alice) return false;
    const mid = [...w.slots].find(([, p]) => p === bob)?.[0];
    if (!mid || w.layers.get(mid) !== '{"maxHeight":240}') return false;
    let h = 0;
    (await w.sub.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.mid === mid) h = r.frameHeight || 0; });
    return h > 0 && h <= 240;
  }, [aliceId, bobId], { timeout: T, what: 'dave: alice featured, bob a thumbnail of at most 240 lines' });
  const before = (await decoded(dave))[await bobMid()].height;
  await dave.click(`.tile[data-participant="${bobId}"] .pin`);
  await until(dave, async ([bob, h0]) => {
    const w = window.wisp;
    const mid = [...w.slots].find(([, p]) => p === bob)?.[0];
    const tile = document.querySelector(`.tile[data-participant="${bob}"]`);
    if (!mid || w.pinned !== bob || !tile?.classList.contains('featured') || !tile.classList.contains('pinned')) return false;
    let h = 0;
    (await w.sub.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.mid === mid) h = r.frameHeight || 0; });
    window.__pinned = { mid, h, layer: w.layers.get(mid) };
    return h > h0;
  }, [bobId, before], { timeout: T, what: 'dave: bob\'s slot in a larger layer after the pin' }).catch(async (e) => {
    throw new Error(`${e.message}: ${JSON.stringify(await answered(dave.evaluate(() => window.__pinned)))}`);
  });
  const pinned = await dave.evaluate(() => window.__pinned);
  step(`pin: dave pins bob; bob's tile is featured and his slot goes from ${before} to ${pinned.h} lines (layer request ${pinned.layer})`);
  await dave.click(`.tile[data-participant="${bobId}"] .pin`);
  await dave.waitForFunction(() => window.wisp.pinned === null && !document.querySelector('.tile.pinned'), null, { timeout: T });
  step('pin: dave unpins bob');

  // ---- 8. alice shares her screen ----
  await alice.click('#share');
  await alice.waitForFunction(() => !!window.wisp.share?.session?.location, null, { timeout: T });
  const screenOnOthers = async (page, name) => {
    await page.waitForFunction((owner) => {
      const w = window.wisp;
      const screen = [...w.roster.values()].find((p) => p.screenOf === owner);
      const t = screen && document.querySelector(`.tile:not([hidden])[data-participant="${screen.id}"]`);
      if (!t || !t.classList.contains('screen') || !t.classList.contains('featured') || !(t.querySelector('video').videoWidth > 0)) return false;
      const area = (e) => { const r = e.getBoundingClientRect(); return r.width * r.height; };
      return [...document.querySelectorAll('.tile:not([hidden])')].every((o) => o === t || area(o) * 2 < area(t));
    }, aliceId, { timeout: T }).catch(async (e) => { throw new Error(`${name} does not show alice's screen large: ${e.message}; ${JSON.stringify(await answered(tilesOf(page)))}`); });
  };
  await Promise.all([screenOnOthers(bob, 'bob'), screenOnOthers(carol, 'carol'), screenOnOthers(dave, 'dave')]);
  const label = await bob.evaluate(() => document.querySelector('.tile.screen:not([hidden]) .label').textContent);
  step(`screen share: bob, carol and dave show alice's screen as the large tile ("${label}"), more than twice any other`);
  // (Information, not a check: each page's own weak-connection judgement on two loaded cores.)
  const weak = await Promise.all(Object.entries({ alice, bob, carol, dave }).map(async ([n, p]) => `${n} ${await p.evaluate(() => `${window.wisp.weak}${window.wisp.weakWhy.length ? ` (${window.wisp.weakWhy.join(', ')})` : ''}`)}`));
  console.log(`     weak-connection signs meanwhile: ${weak.join(', ')}`);
  await shot(bob, 'speaker-screen-1280');
  await asPhone(bob, async () => {
    await bob.waitForFunction(() => document.getElementById('panel').hidden || getComputedStyle(document.getElementById('panel')).position === 'absolute', null, { timeout: T });
    if (!(await bob.evaluate(() => document.getElementById('panel').hidden))) await bob.click('#panel-close');
    await shot(bob, 'speaker-screen-390');
    await touchTargets(bob, 'the room (speaker view, a screen shared)');
  });
  await axe(bob, 'the room (speaker view, a screen shared)');
  // The browser's "Stop sharing" bar ends the track; track.stop() in the page fires no
  // `ended`, so the test fires the event the browser would.
  await alice.evaluate(() => {
    const t = window.wisp.share.stream.getVideoTracks()[0];
    t.stop();
    t.dispatchEvent(new Event('ended'));
  });
  await alice.waitForFunction(() => window.wisp.share === null && !document.querySelector('.tile[data-key="screen-self"]'), null, { timeout: T });
  for (const [name, page] of Object.entries({ bob, carol, dave })) {
    await page.waitForFunction(() => ![...window.wisp.roster.values()].some((p) => p.screenOf)
      && !document.querySelector('.tile.screen:not([hidden])'), null, { timeout: T })
      .catch((e) => { throw new Error(`${name} still shows the screen: ${e.message}`); });
  }
  step('screen share: the track\'s `ended` (the browser\'s stop-sharing bar) ends it on every page');

  // ---- 8b. erin joins without camera, turns it on, and leaves ----
  const erin = await newPage(bb, 'erin');
  await erin.goto(`${base}/?room=${ROOM}&name=erin`);
  await erin.waitForFunction(() => document.getElementById('pj-camera').options.length > 0, null, { timeout: T });
  await erin.check('#join-nocam');
  await erin.waitForFunction(() => !document.getElementById('preview-off').hidden && !document.getElementById('preview').srcObject, null, { timeout: T });
  await erin.click('#join');
  await erin.waitForFunction(() => !!window.wisp?.me && window.wisp.cameraOff && /Start camera/.test(document.getElementById('cam').textContent), null, { timeout: T });
  const erinId = await erin.evaluate(() => window.wisp.me);
  await bob.waitForFunction((id) => document.querySelector(`.tile:not([hidden])[data-participant="${id}"]`)?.classList.contains('camoff'), erinId, { timeout: T })
    .catch(async (e) => { throw new Error(`bob should show erin with her camera off: ${e.message}; ${JSON.stringify(await tilesOf(bob))}`); });
  step('erin joins "without camera" (the camera never opened): bob shows her initial instead of video');
  await erin.click('#cam');
  await erin.waitForFunction(() => !window.wisp.cameraOff && document.querySelector('.tile[data-key="self"] video').videoWidth > 0, null, { timeout: T });
  await until(bob, async (id) => {
    const w = window.wisp;
    const mid = [...w.slots].find(([, p]) => p === id)?.[0];
    const tile = document.querySelector(`.tile[data-participant="${id}"]`);
    if (!mid || !tile || tile.classList.contains('camoff')) return false;
    let f = 0;
    (await w.sub.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.mid === mid) f = r.framesDecoded || 0; });
    return f > 10;
  }, erinId, { timeout: T, what: 'bob: erin\'s video after she starts her camera' });
  step('erin starts her camera in the room: bob decodes her video and the initial goes away');
  await erin.click('#leave');
  await bob.waitForFunction((id) => !window.wisp.roster.has(id) && ![...document.querySelectorAll('#people li')].some((l) => l.textContent === 'erin'), erinId, { timeout: T });
  step('erin leaves: she is gone from bob\'s page');
  await erin.close();

  // ---- 9. /watch, live ----
  await watcher.waitForFunction(() => window.wisp.live === true && document.getElementById('live').textContent === 'live'
    && window.wisp.viewers >= 1 && /^Picture \d+p/.test(document.getElementById('quality').textContent)
    && document.getElementById('player').getVideoPlaybackQuality().totalVideoFrames > 10
    && !document.getElementById('unmute').hidden && document.getElementById('offline-msg').hidden, null, { timeout: T })
    .catch(async (e) => {
      throw new Error(`/watch: ${e.message}: ${await answered(watcher.evaluate(() => JSON.stringify({ live: window.wisp.live, viewers: window.wisp.viewers,
        text: document.getElementById('live').textContent, quality: document.getElementById('quality').textContent, unmute: !document.getElementById('unmute').hidden })))}`);
    });
  const fills = await watcher.evaluate(() => { const r = document.getElementById('player').getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; });
  if (fills[0] !== 1280 || fills[1] !== 720) throw new Error(`/watch at 1280×720: the player is ${fills.join('×')}`);
  step(`/watch turned live by itself: "live", ${await watcher.evaluate(() => `${document.getElementById('viewers').textContent}, ${document.getElementById('quality').textContent}`)}, the player fills the window`);
  await shot(watcher, 'watch-live-1280');
  await asPhone(watcher, async () => {
    const r = await watcher.evaluate(() => { const b = document.getElementById('player').getBoundingClientRect(); return [Math.round(b.width), Math.round(b.height)]; });
    if (r[0] !== 390 || Math.abs(r[1] - 219) > 1) throw new Error(`/watch at 390×844: the player is ${r.join('×')}, not 16:9 across the width`);
    await shot(watcher, 'watch-live-390');
    await touchTargets(watcher, '/watch (live)');
  });
  await axe(watcher, '/watch (live)');
  await watcher.click('#unmute');
  await watcher.waitForFunction(() => !document.getElementById('player').muted && document.getElementById('unmute').hidden, null, { timeout: T });
  step('/watch: the click-to-unmute overlay unmutes the player and goes away');
  await watcher.click('#fullscreen');
  await watcher.waitForFunction(() => !!document.fullscreenElement && /Exit/.test(document.getElementById('fullscreen').textContent), null, { timeout: T });
  await watcher.click('#fullscreen');
  await watcher.waitForFunction(() => !document.fullscreenElement, null, { timeout: T });
  step('/watch: the fullscreen button enters and leaves fullscreen');

  // ---- 10. /publish ----
  const pub = await newPage(ba, 'publish');
  await pub.goto(`${base}/publish?room=pages-pub`);
  await axe(pub, '/publish (before going live)');
  await asPhone(pub, () => touchTargets(pub, '/publish'));
  await pub.click('#go');
  await pub.waitForFunction(() => window.wisp.live && /^\d+ kbit\/s$/.test(document.getElementById('bitrate').textContent)
    && Number.parseInt(document.getElementById('bitrate').textContent, 10) > 0
    && /^\d+×\d+/.test(document.getElementById('resolution').textContent), null, { timeout: T });
  const pubViewer = await newPage(bb, 'publish viewer');
  await pubViewer.goto(`${base}/watch/pages-pub`);
  await pub.waitForFunction(() => window.wisp.viewers >= 1 && /watching/.test(document.getElementById('viewers').textContent), null, { timeout: T });
  const sent = await pub.evaluate(() => ['live-pill', 'bitrate', 'resolution', 'viewers'].map((id) => document.getElementById(id).textContent).join(', '));
  step(`/publish live: ${sent}`);
  await shot(pub, 'publish-1280');
  await axe(pub, '/publish (live)');
  await asPhone(pub, () => touchTargets(pub, '/publish (live)'));
  await pubViewer.close();
  await pub.click('#go');
  await pub.waitForFunction(() => !window.wisp.live && document.getElementById('go').textContent === 'Go live', null, { timeout: T });

  // ---- 11. /watch says "reconnecting" when the network goes, and "live" when it comes back ----
  // All UDP into the namespace dropped (an nftables rule, as recover.mjs does) until the page
  // says so, then restored.
  cut();
  try {
    await watcher.waitForFunction(() => document.getElementById('live').textContent === 'reconnecting', null, { timeout: T });
  } finally { restore(); }
  const framesNow = await watcher.evaluate(() => document.getElementById('player').getVideoPlaybackQuality().totalVideoFrames);
  await watcher.waitForFunction((n) => document.getElementById('live').textContent === 'live'
    && document.getElementById('player').getVideoPlaybackQuality().totalVideoFrames > n + 10, framesNow, { timeout: T });
  step('/watch: all UDP dropped, the page says "reconnecting"; restored, "live" again with the picture moving');

  // ---- /admin ----
  const admin = await newPage(bb, 'admin');
  await admin.goto(`${base}/admin`);
  await admin.waitForFunction(() => document.readyState === 'complete' && !/starting/.test(document.getElementById('conn')?.textContent || ''), null, { timeout: T });
  await axe(admin, '/admin');
  if (pageErrors.length) throw new Error(`errors in the pages: ${pageErrors.join('; ')}`);
  step(`all done in ${((Date.now() - t0) / 1000).toFixed(0)} s; screenshots in ${outDir}`);
} catch (e) {
  failed = true;
  console.log(`FAIL ${e.message}`);
} finally {
  restore();
  await Promise.all([ba.close(), bb.close()]);
}
process.exit(failed ? 1 : 0);
