// Headless Chromium (Debian's /usr/bin/chromium, fake devices) on wisp's operator page (/admin),
// run inside the lab namespace by tests/browser/admin_lab.sh against a server with
// --token admin-secret.
//  1. alice, bob and carol join room `ops` on the conference page (token in the fragment);
//  2. /admin with a wrong token says why in words; an unknown room says it is gone;
//  3. /admin#token=… lists `ops` with its counts; selecting it shows the three participants and
//     three viewer legs, each leg's slots showing the two others at a non-zero bitrate, with a
//     health badge and a live plot; screenshot (full page, 1400x1000);
//  4. kicking alice (confirm accepted) removes her from the admin page and from bob's roster and
//     tiles;
//  5. closing the room (confirm accepted) says how many sessions ended and that the room is gone.
// Every wait is bounded (playwright timeouts).
import { chromium } from 'playwright-core';

const [base, shot] = process.argv.slice(2);
const T = 30_000;
const TOKEN = 'admin-secret';
const args = [
  '--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
  '--disable-gpu', '--autoplay-policy=no-user-gesture-required', '--disable-features=WebRtcHideLocalIpsWithMdns',
];

function step(msg) { console.log(`ok   ${msg}`); }

/** What the admin page shows of room ops, for the waits and for failure messages. */
function shown() {
  const people = [...document.querySelectorAll('.participant')].map((c) => c.dataset.name);
  const legs = [...document.querySelectorAll('.leg')].map((l) => ({
    owner: l.dataset.owner,
    badge: l.querySelector('.badge')?.textContent || null,
    reason: l.querySelector('.reason')?.textContent || null,
    shows: [...l.querySelectorAll('tr[data-shows]')].filter((r) => r.dataset.shows && Number(r.dataset.bps) > 0)
      .map((r) => r.dataset.shows),
    samples: window.wispAdmin.history.get(`leg:${l.dataset.leg}`)?.samples.length || 0,
  }));
  return { people, legs, polls: window.wispAdmin.polls, error: window.wispAdmin.error,
    gone: document.getElementById('gone').textContent, conn: document.getElementById('conn').textContent };
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
let failed = false;
try {
  const page = async () => {
    const p = await (await browser.newContext({ viewport: { width: 1400, height: 1000 } })).newPage();
    p.on('pageerror', (e) => console.log(`page error: ${e.message}`));
    return p;
  };
  const people = {};
  for (const name of ['alice', 'bob', 'carol']) {
    people[name] = await page();
    await people[name].goto(`${base}/?room=ops&name=${name}&autojoin#token=${TOKEN}`);
    await people[name].waitForFunction(() => !!window.wisp?.me, null, { timeout: T }).catch(async (e) => {
      const err = await people[name].evaluate(() => document.getElementById('error').textContent);
      throw new Error(`${name} could not join: ${e.message}; page says: ${err}`);
    });
  }
  step('alice, bob and carol join room ops (token in the fragment)');

  const wrong = await page();
  await wrong.goto(`${base}/admin#token=not-the-token`);
  await wrong.waitForFunction(() => document.getElementById('token-error').textContent.length > 0
    && !document.getElementById('token-form').hidden, null, { timeout: T });
  step(`a wrong token gets the sign-in form and a reason: "${await wrong.evaluate(() => document.getElementById('token-error').textContent)}"`);
  await wrong.goto(`${base}/admin?room=nope#token=${TOKEN}`);
  await wrong.waitForFunction(() => /gone/.test(document.getElementById('gone').textContent), null, { timeout: T });
  step(`an unknown room: "${await wrong.evaluate(() => document.getElementById('gone').textContent)}"`);
  await wrong.context().close();

  const admin = await page();
  await admin.goto(`${base}/admin#token=${TOKEN}`);
  await admin.waitForFunction(() => document.querySelector('#rooms [data-room="ops"]'), null, { timeout: T });
  const listed = await admin.evaluate(() => [...document.querySelector('#rooms [data-room="ops"]').children].map((c) => c.textContent).join(" — "));
  step(`/admin lists the room with its counts: "${listed}"`);
  if (await admin.evaluate(() => location.search.includes('token'))) throw new Error('the token leaked into the query string');

  await admin.click('#rooms [data-room="ops"]');
  const complete = (s) => {
    const names = ['alice', 'bob', 'carol'];
    if (s.people.slice().sort().join() !== names.join()) return false;
    if (s.legs.length !== 3) return false;
    return names.every((n) => {
      const leg = s.legs.find((l) => l.owner === n);
      return leg && leg.badge && leg.samples >= 8 // 16 s of plot for the screenshot
        && names.filter((o) => o !== n).every((o) => leg.shows.includes(o));
    });
  };
  await admin.waitForFunction(`(${complete})((${shown})())`, null, { timeout: T, polling: 500 }).catch(async (e) => {
    throw new Error(`${e.message}: the admin page shows ${await admin.evaluate(`JSON.stringify((${shown})())`)}`);
  });
  const s = await admin.evaluate(`(${shown})()`);
  step(`room ops: participants ${s.people.join(', ')}; 3 viewer legs, each showing the two others at a non-zero bitrate`);
  for (const l of s.legs) step(`  ${l.owner}'s leg: ${l.badge} (${l.reason}), shows ${[...new Set(l.shows)].join(' and ')}`);
  const a11y = await admin.evaluate(() => ({
    kicks: [...document.querySelectorAll('button[data-kick]')].map((b) => b.getAttribute('aria-label')),
    close: document.getElementById('close-room').getAttribute('aria-label'),
    tables: [...document.querySelectorAll('table')].every((t) => t.querySelectorAll('thead th').length > 0),
    plots: document.querySelectorAll('.spark svg polyline').length,
  }));
  if (a11y.kicks.length !== 3 || !a11y.close || !a11y.tables) throw new Error(`buttons/tables: ${JSON.stringify(a11y)}`);
  if (a11y.plots < 3) throw new Error(`expected a bitrate plot per leg, found ${a11y.plots} lines`);
  step(`buttons named (${a11y.kicks.join(', ')}, ${a11y.close}), tables have headers, ${a11y.plots} plot lines`);
  if (shot) {
    await admin.screenshot({ path: shot, fullPage: true });
    step(`screenshot ${shot}`);
  }

  admin.once('dialog', (d) => d.accept());
  await admin.click('button[aria-label="Kick alice"]');
  await admin.waitForFunction(() => /Kicked alice/.test(document.getElementById('action').textContent)
    && !document.querySelector('.participant[data-name="alice"]') && !document.querySelector('.leg[data-owner="alice"]'),
  null, { timeout: T }).catch(async (e) => {
    throw new Error(`${e.message}: ${await admin.evaluate(() => document.getElementById('action').textContent)}; ${await admin.evaluate(`JSON.stringify((${shown})())`)}`);
  });
  step(`kick alice: "${await admin.evaluate(() => document.getElementById('action').textContent)}"; she is gone from the admin page`);
  await people.bob.waitForFunction(() => ![...document.querySelectorAll('.tile:not([hidden]) .label')].some((l) => l.textContent.startsWith('alice'))
    && ![...document.querySelectorAll('#people li')].some((l) => l.textContent.startsWith('alice')), null, { timeout: T });
  step('bob\'s page drops alice from its roster and tiles');

  admin.once('dialog', (d) => d.accept());
  await admin.click('#close-room');
  // The server forgets the room once no session and no event stream uses it; until then it is
  // listed empty.
  await admin.waitForFunction(() => /Closed room ops/.test(document.getElementById('action').textContent)
    && !document.querySelector('.participant, .leg')
    && (/gone/.test(document.getElementById('gone').textContent) || !!document.querySelector('[data-empty]')), null, { timeout: T })
    .catch(async (e) => {
      throw new Error(`${e.message}: ${await admin.evaluate(() => document.getElementById('action').textContent)}; ${await admin.evaluate(`JSON.stringify((${shown})())`)}`);
    });
  const after = await admin.evaluate(() => document.getElementById('gone').textContent || document.querySelector('[data-empty]').textContent);
  step(`close the room: "${await admin.evaluate(() => document.getElementById('action').textContent)}"; the page says "${after}"`);
} catch (e) {
  failed = true;
  console.log(`FAIL ${e.message}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
