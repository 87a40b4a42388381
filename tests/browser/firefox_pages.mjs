// The pages of issue #19 in Firefox ESR, with Chromium in the same room (run by firefox.mjs
// inside tests/browser/firefox_lab.sh). The hooks are those tests/browser/pages.mjs reads
// (window.wisp, element ids); the drivers differ: Firefox is puppeteer-core over WebDriver
// BiDi (page.evaluate(fn, ...args)), Chromium playwright-core (page.evaluate(fn, arg)), so
// every wait here is `until` (poll.mjs: evaluate a predicate until it holds, bounded).
//  - prejoin(fox):   Firefox's pre-join: camera preview playing, microphone meter moving;
//  - join(fox):      joining with the pre-join's Join button;
//  - room(fox, ch):  mute shown on the other browser within a second, both ways (Firefox by
//                    its M key and its button); chat both ways, Chromium's message full of
//                    markup shown as text in Firefox; Firefox's grid / speaker switch;
//  - axe(page):      axe-core in Firefox, no serious or critical violation;
//  - phone(page):    Firefox at 390×844: no horizontal scroll, every visible control ≥ 44×44 px.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { until } from './poll.mjs';

const T = 30_000;
const AXE = readFileSync(fileURLToPath(new URL('./node_modules/axe-core/axe.min.js', import.meta.url)), 'utf8');
const step = (msg) => console.log(`ok   ${msg}`);

/** Firefox's pre-join: the preview plays and the meter rises from 0 above 5 (of 100) and follows "Join muted". */
export async function prejoin(fox) {
  const first = await until(fox, () => {
    const v = document.getElementById('preview');
    const level = Number(document.getElementById('level').getAttribute('aria-valuenow'));
    return v.videoWidth > 0 && v.currentTime > 0 && !document.getElementById('lobby').hidden && level > 5
      && { level, size: `${v.videoWidth}x${v.videoHeight}`, time: v.currentTime };
  }, null, { timeout: T, what: 'firefox pre-join: the camera preview playing and the microphone meter above 5' })
    .catch(async (e) => { throw new Error(`${e.message}; ${await fox.evaluate(prejoinSeen)}`); });
  // Firefox's fake microphone is a steady tone, so the level holds still once up; that it is
  // live: "Join muted" (clicked) takes it to 0 and unticking brings the tone back.
  await fox.click('#join-muted');
  await until(fox, () => Number(document.getElementById('level').getAttribute('aria-valuenow')) === 0 && document.getElementById('join-muted').checked,
    null, { timeout: T, what: 'firefox pre-join: the meter at 0 with "Join muted" ticked' });
  await fox.click('#join-muted');
  const again = await until(fox, (t0) => {
    const v = Number(document.getElementById('level').getAttribute('aria-valuenow'));
    return !document.getElementById('join-muted').checked && v > 5 && document.getElementById('preview').currentTime > t0 && v;
  }, first.time, { timeout: T, what: 'firefox pre-join: the meter back up with "Join muted" unticked' });
  const t = await fox.evaluate(() => document.getElementById('preview').currentTime);
  step(`firefox pre-join: the camera preview plays (${first.size}, ${t.toFixed(1)} s), the microphone meter moves with the fake tone (0 → ${first.level}; 0 with "Join muted" ticked, ${again} again unticked)`);
}

function prejoinSeen() {
  const v = document.getElementById('preview');
  return JSON.stringify({
    preview: { w: v.videoWidth, t: v.currentTime, src: !!v.srcObject, ready: v.readyState },
    level: document.getElementById('level').getAttribute('aria-valuenow'),
    error: document.getElementById('device-error').textContent, lobby: !document.getElementById('lobby').hidden,
  });
}

/** Joins from the pre-join screen with its Join button. */
export async function join(fox) {
  await fox.click('#join');
  await until(fox, () => !!window.wisp?.me && document.getElementById('lobby').hidden && !document.getElementById('room-view').hidden,
    null, { timeout: T, what: 'firefox: in the room after pressing Join' });
  step('firefox joins from the pre-join screen with the Join button');
}

const tileShows = (id, muted) => {
  const t = document.querySelector(`.tile:not([hidden])[data-participant="${id}"]`);
  return !!t && t.querySelector('.mic-off').hidden === !muted;
};

// Sets up, in `page`, a MutationObserver noting when (the machine's one clock) the tile of `id`
// shows muted = `muted`. Firefox's page is puppeteer (args spread), Chromium's playwright (one arg).
const observeFn = ([fn, id, muted]) => {
  const check = new Function(`return (${fn})`)();
  window.__shownAt = null;
  if (check(id, muted)) { window.__shownAt = -1; return; }
  const mo = new MutationObserver(() => {
    if (!window.__shownAt && check(id, muted)) { window.__shownAt = Date.now(); mo.disconnect(); }
  });
  mo.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
};

/** `act()` (returns when it acted, ms) makes `watcher` show `id` with muted = `muted` within a second. */
async function within(what, watcher, id, muted, act) {
  await watcher.evaluate(observeFn, [tileShows.toString(), id, muted]);
  if (await watcher.evaluate(() => window.__shownAt === -1)) throw new Error(`${what}: shown before the act`);
  const start = await act();
  await until(watcher, () => window.__shownAt, null, { timeout: 5_000, what })
    .catch(async (e) => { throw new Error(`${e.message}: the tile shows ${await watcher.evaluate(tileSeen, id)}`); });
  const took = (await watcher.evaluate(() => window.__shownAt)) - start;
  if (took > 1000) throw new Error(`${what} took ${took} ms (more than a second)`);
  step(`${what} within a second (${took} ms)`);
}

function tileSeen(id) {
  const t = document.querySelector(`.tile[data-participant="${id}"]`);
  return t ? JSON.stringify({ hidden: t.hidden, micOff: !t.querySelector('.mic-off').hidden, label: t.querySelector('.label').textContent }) : 'no tile';
}

// The chat as a page shows it.
const chatTexts = () => [...document.querySelectorAll('#chat-log .msg .text')].map((p) => p.textContent);

/** The room with fox (Firefox, puppeteer) and chrome (Chromium, playwright): mute, chat, layout. */
export async function room(fox, chrome) {
  const foxId = await fox.evaluate(() => window.wisp.me);
  const chromeId = await chrome.evaluate(() => window.wisp.me);

  // Mute, Firefox → Chromium: the M key, then the button to unmute.
  await fox.evaluate(() => document.activeElement?.blur());
  await within('firefox mutes with the M key: chromium shows its tile muted', chrome, foxId, true, async () => {
    const t = Date.now();
    await fox.keyboard.press('m');
    return t;
  });
  if (!(await fox.evaluate(() => window.wisp.muted))) throw new Error('firefox: M did not mute');
  await within('firefox unmutes with its microphone button: chromium shows it unmuted', chrome, foxId, false,
    () => fox.evaluate(() => { const t = Date.now(); document.getElementById('mic').click(); return t; }));
  // Mute, Chromium → Firefox.
  await within('chromium mutes with its button: firefox shows its tile muted', fox, chromeId, true,
    () => chrome.evaluate(() => { const t = Date.now(); document.getElementById('mic').click(); return t; }));
  await within('chromium unmutes: firefox shows it unmuted', fox, chromeId, false,
    () => chrome.evaluate(() => { const t = Date.now(); document.getElementById('mic').click(); return t; }));

  // Chat both ways; Chromium's message is full of markup and script.
  const HELLO = 'hello from firefox';
  const EVIL = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script><b>bold</b> & "quotes" <a href="javascript:alert(1)">x</a> <svg onload="window.__pwned=3"></svg>';
  // Firefox types its message (the keys into the field, Enter sends).
  if (await fox.evaluate(() => document.getElementById('panel').hidden)) await fox.click('#panel-toggle');
  await until(fox, () => !document.getElementById('panel').hidden, null, { timeout: T, what: 'firefox: the chat panel open' });
  await fox.click('#chat-input');
  await fox.keyboard.type(HELLO);
  await fox.keyboard.press('Enter');
  await until(fox, () => document.getElementById('chat-input').value === '', null, { timeout: T, what: 'firefox: the chat message sent' })
    .catch(async (e) => { throw new Error(`${e.message}: ${await fox.evaluate(() => document.getElementById('chat-status').textContent)}`); });
  if (await chrome.evaluate(() => document.getElementById('panel').hidden)) await chrome.click('#panel-toggle');
  await chrome.fill('#chat-input', EVIL);
  await chrome.press('#chat-input', 'Enter');
  for (const [who, page] of [['firefox', fox], ['chromium', chrome]]) {
    await until(page, ([a, b]) => {
      const t = [...document.querySelectorAll('#chat-log .msg .text')].map((p) => p.textContent);
      return t.includes(a) && t.includes(b);
    }, [HELLO, EVIL], { timeout: T, what: `${who}: both chat messages shown` })
      .catch(async (e) => { throw new Error(`${e.message}: ${JSON.stringify(await page.evaluate(chatTexts))}`); });
  }
  const harm = await fox.evaluate(() => ({
    elements: [...document.querySelectorAll('#chat-log img, #chat-log script, #chat-log b, #chat-log a, #chat-log svg')].map((e) => e.tagName),
    pwned: window.__pwned ?? null,
    shown: [...document.querySelectorAll('#chat-log .msg .text')].map((p) => p.childElementCount),
  }));
  if (harm.elements.length || harm.pwned !== null || harm.shown.some((n) => n)) throw new Error(`firefox made elements of a chat message: ${JSON.stringify(harm)}`);
  step('chat: firefox\'s typed message reaches chromium, chromium\'s reaches firefox; its markup, <script> and <svg onload> show as text in firefox (no element made, nothing run)');

  // Firefox's layout switch: grid (tiles of one size), back to the speaker view (one featured, larger).
  const tiles = () => [...document.querySelectorAll('.tile:not([hidden])')].map((t) => {
    const r = t.getBoundingClientRect();
    return { label: t.querySelector('.label').textContent, area: Math.round(r.width * r.height), featured: t.classList.contains('featured') };
  });
  await fox.click('#layout');
  const grid = await until(fox, () => {
    const c = document.getElementById('tiles');
    const ts = [...document.querySelectorAll('.tile:not([hidden])')].map((t) => { const r = t.getBoundingClientRect(); return r.width * r.height; });
    return c.classList.contains('grid') && !c.classList.contains('speaker') && window.wisp.layout === 'grid' && ts.length === 2
      && !document.querySelector('.tile.featured') && Math.max(...ts) <= Math.min(...ts) * 1.1
      && document.querySelector('#layout .txt').textContent === 'Speaker view' && ts.map(Math.round);
  }, null, { timeout: T, what: 'firefox: the grid, two tiles of one size' })
    .catch(async (e) => { throw new Error(`${e.message}: ${JSON.stringify(await fox.evaluate(tiles))}`); });
  await fox.click('#layout');
  const speaker = await until(fox, () => {
    const c = document.getElementById('tiles');
    const f = document.querySelector('.tile.featured:not([hidden])');
    const area = (e) => { const r = e.getBoundingClientRect(); return r.width * r.height; };
    return c.classList.contains('speaker') && window.wisp.layout === 'speaker' && f
      && [...document.querySelectorAll('.tile:not([hidden])')].every((o) => o === f || area(o) * 2 < area(f))
      && document.querySelector('#layout .txt').textContent === 'Grid view' && f.querySelector('.label').textContent;
  }, null, { timeout: T, what: 'firefox: the speaker view, one tile featured and larger' })
    .catch(async (e) => { throw new Error(`${e.message}: ${JSON.stringify(await fox.evaluate(tiles))}`); });
  step(`firefox's layout switch: grid (2 tiles, ${grid.join(' and ')} px²), then the speaker view (${speaker} featured)`);
}

/** axe-core in Firefox on `page` as it is: no serious or critical violation. */
export async function axe(page, what) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 4).map((n) => n.target.join(' ')) }));
  });
  const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length) throw new Error(`axe-core in firefox on ${what}: ${JSON.stringify(bad)}`);
  const minor = found.map((v) => `${v.id} (${v.impact})`).join(', ');
  step(`axe-core in firefox on ${what}: no serious or critical violations${minor ? `; minor: ${minor}` : ''}`);
}

/** Firefox's `page` at 390×844: no horizontal scroll, every visible control at least 44×44 px. */
export async function phone(page, what, before = async () => {}) {
  const was = page.viewport();
  await page.setViewport({ width: 390, height: 844 });
  try {
    await until(page, () => innerWidth === 390 && innerHeight === 844
      && new Promise((r) => { requestAnimationFrame(() => requestAnimationFrame(() => r(true))); }),
    null, { timeout: T, what: 'firefox at 390×844' });
    await before();
    const got = await page.evaluate(() => {
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
      const d = document.documentElement;
      const wide = [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > innerWidth + 0.5 && e.checkVisibility())
        .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}${typeof e.className === 'string' && e.className ? `.${e.className.split(' ')[0]}` : ''} (right ${Math.round(e.getBoundingClientRect().right)})`);
      scrollTo(1000, scrollY);
      const scrolled = scrollX;
      scrollTo(0, scrollY);
      return { out, n, scrollWidth: d.scrollWidth, clientWidth: d.clientWidth, bodyScroll: document.body.scrollWidth, scrolled, wide };
    });
    if (got.scrollWidth > got.clientWidth || got.scrolled > 0) {
      throw new Error(`firefox, ${what} at 390×844 scrolls sideways: scrollWidth ${got.scrollWidth} > ${got.clientWidth} (scrollX ${got.scrolled}); past the edge: ${got.wide.join(', ')}`);
    }
    if (got.out.length) throw new Error(`firefox, ${what} at 390×844: controls smaller than 44×44 px: ${got.out.join(', ')}`);
    step(`firefox, ${what} at 390×844: no horizontal scroll, all ${got.n} visible controls at least 44×44 px`);
  } finally {
    if (was) await page.setViewport(was);
  }
}
