// Firefox ESR (Debian's /usr/bin/firefox-esr, driven by puppeteer-core over WebDriver BiDi) and
// Chromium (Debian's /usr/bin/chromium, playwright-core) together on wisp, run inside the lab
// namespace by tests/browser/firefox_lab.sh (which gives the namespace a default route, see
// lab_default_route in tests/lab.sh):
//  a. Firefox publishes on /publish (room ff-pub); Chromium plays /watch/ff-pub, frames decoding;
//  b. Chromium publishes on /publish (room ch-pub); Firefox plays /watch/ch-pub, frames decoding;
//  c. the conference page: fox (Firefox) comes through the pre-join screen (camera preview
//     playing, microphone meter moving, axe-core on `/`, the Join button) and chrome (Chromium,
//     ?autojoin) into room mix; each sees the other's tile labelled with the other's name,
//     video frames decoding and an audio track arriving;
//  d. the pages of issue #19 in Firefox (firefox_pages.mjs): mute shown on the other browser
//     within a second both ways, chat both ways (markup shown as text in Firefox), the
//     grid / speaker switch; axe-core on the room, /watch/mix and /publish with no serious or
//     critical violation; at 390×844 the room (chat open and closed), /watch and /publish
//     scroll not sideways and every visible control is at least 44×44 px (the room also in
//     the grid and with the settings dialog open, which Esc closes); /publish live as well.
// Every wait is a polled condition with a timeout; the whole run is bounded (LIMIT). On a
// failure it prints what the pages showed and exits 1.
// usage: node firefox.mjs <base url> <profile parent dir>
import { chromium } from 'playwright-core';
import puppeteer from 'puppeteer-core';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { until } from './poll.mjs';
import * as ui from './firefox_pages.mjs';

const [base, tmp] = process.argv.slice(2);
const T = 30_000;
const LIMIT = 200_000;
setTimeout(() => { console.log(`FAIL the run took longer than ${LIMIT / 1000} s`); process.exit(1); }, LIMIT).unref();

// Chromium as tests/browser/room.mjs launches it (the fake devices' default beep and pattern).
const chromiumArgs = [
  '--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
  '--disable-gpu', '--autoplay-policy=no-user-gesture-required', '--disable-features=WebRtcHideLocalIpsWithMdns',
];

// Firefox's preferences, each for a reason found in this lab:
const firefoxPrefs = {
  // Fake camera and microphone (a colour-cycling picture and a tone), granted without a prompt.
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  // Firefox hides its host address behind an mDNS name ("<uuid>.local typ host") in every
  // candidate, players and publishers alike (the fake camera's grant is no real permission).
  // wisp does not resolve mDNS names; it still connects, learning Firefox's address as a
  // peer-reflexive candidate from Firefox's first STUN check (seen working with the default).
  // With the real address (198.18.0.2) the trickled candidate is usable as offered, so ICE
  // does not hang on the prflx path alone.
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  // The conference page plays the others' audio in elements that are not muted; Firefox's
  // default autoplay policy blocks audible playback without a user gesture (as Chromium's
  // --autoplay-policy flag allows above).
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
  // This machine has no sound device (no /dev/snd, no sound server): Firefox's audio backend
  // (cubeb) finds no output, and an AudioContext then stays "suspended" for good (resume()
  // never settles, gesture or not), so the pre-join's microphone meter, an AnalyserNode on
  // the fake microphone, reads 0. Chromium's headless mode has its own fake output. cubeb's
  // mock backend is a fake output device: the context runs and the meter reads the fake tone.
  'media.cubeb.force_mock_context': true,
  // Not needed: media.peerconnection.ice.loopback. wisp announces only 198.18.0.1 and accepts
  // only 198.18.0.0/24, so Firefox's loopback candidates would be refused anyway; what Firefox
  // needs is a default route, which gives it 198.18.0.2 (tests/lab.sh lab_default_route).
};

function step(msg) { console.log(`ok   ${msg}`); }

// What a page shows, for a failure message: the stable hooks, stats summary and page errors.
async function seen(page) {
  try {
    return await page.evaluate(async () => {
      const out = { url: location.href };
      const el = (id) => document.getElementById(id);
      if (el('state')) out.state = el('state').textContent;
      if (el('error')) out.error = el('error').textContent;
      if (el('player')) {
        const v = el('player');
        out.player = { frames: v.getVideoPlaybackQuality?.().totalVideoFrames, time: v.currentTime, ready: v.readyState };
      }
      out.labels = [...document.querySelectorAll('.tile:not([hidden]) .label')].map((l) => l.textContent);
      const w = window.wisp || {};
      out.live = w.live;
      const pc = w.session?.pc || w.sub?.pc;
      if (pc) {
        out.pc = { connection: pc.connectionState, ice: pc.iceConnectionState, inbound: [] };
        (await pc.getStats()).forEach((r) => {
          if (r.type === 'inbound-rtp') {
            out.pc.inbound.push({ kind: r.kind, packets: r.packetsReceived, frames: r.framesDecoded });
          }
        });
      }
      return JSON.stringify(out);
    });
  } catch (e) { return `(page not readable: ${e.message})`; }
}

// Sums of the inbound-rtp stats of `which` ('session' for a WHEP player, 'sub' for the
// conference page's subscriber) and the received video codec.
async function inbound(page, which) {
  return page.evaluate(async (which) => {
    const pc = window.wisp?.[which]?.pc;
    const out = { frames: 0, audioPackets: 0, audioTracks: 0, codecs: [] };
    if (!pc) return out;
    const stats = await pc.getStats();
    stats.forEach((r) => {
      if (r.type !== 'inbound-rtp') return;
      if (r.kind === 'video') {
        out.frames += r.framesDecoded || 0;
        const c = r.codecId && stats.get(r.codecId);
        if (c && !out.codecs.includes(c.mimeType)) out.codecs.push(c.mimeType);
      }
      if (r.kind === 'audio' && (r.packetsReceived || 0) > 0) {
        out.audioPackets += r.packetsReceived;
        out.audioTracks += 1;
      }
    });
    return out;
  }, which);
}

// Polls `inbound(page, which)` until video frames decoded grew by `frames` and, with `audio`,
// audio packets arrived on at least `audio` tracks and are still arriving.
async function decoding(page, which, { frames = 20, audio = 0, what }) {
  const start = await inbound(page, which);
  const deadline = Date.now() + T;
  let now = start;
  for (;;) {
    now = await inbound(page, which);
    if (now.frames >= start.frames + frames && (!audio || (now.audioTracks >= audio && now.audioPackets > start.audioPackets))) return now;
    if (Date.now() > deadline) {
      throw new Error(`${what}: timed out after ${T} ms (stats then ${JSON.stringify(start)}, now ${JSON.stringify(now)}); page ${await seen(page)}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

// Fills /publish's form and waits for it to say live.
async function publish(page, room, name) {
  await page.goto(`${base}/publish`);
  await page.evaluate(({ room, name }) => {
    document.getElementById('room').value = room;
    if (document.getElementById('name')) document.getElementById('name').value = name;
    document.getElementById('form').requestSubmit();
  }, { room, name });
  const state = await until(page, () => {
    const s = document.getElementById('state')?.textContent.trim();
    return (s === 'live' || s === 'failed') && s;
  }, null, { timeout: T, what: `${name}: /publish saying live` })
    .catch(async (e) => { throw new Error(`${e.message}; page ${await seen(page)}`); });
  if (state !== 'live') throw new Error(`${name}: /publish says ${state}; page ${await seen(page)}`);
}

const profile = mkdtempSync(join(tmp, 'firefox-profile-'));
const [ff, ch] = await Promise.all([
  puppeteer.launch({
    browser: 'firefox', executablePath: '/usr/bin/firefox-esr', headless: true,
    userDataDir: profile, extraPrefsFirefox: firefoxPrefs,
  }),
  chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: chromiumArgs }),
]);
step(`launched ${await ff.version()} and Chromium ${ch.version()}`);
const pages = [];
const pageErrors = []; // uncaught errors in any page: a failure at the end
const watch = (p, who) => {
  pages.push(p);
  p.on('pageerror', (e) => { pageErrors.push(`${who}: ${e.message || e}`); console.log(`${who}: page error: ${e.message || e}`); });
  p.on('console', (m) => {
    const type = typeof m.type === 'function' ? m.type() : m.type;
    if (type === 'error' || type === 'warn' || type === 'warning') {
      const where = typeof m.location === 'function' ? m.location() : null;
      console.log(`${who}: console ${type}: ${m.text()}${where?.url ? ` (${where.url})` : ''}`);
    }
  });
  return p;
};
const firefoxPage = async (who) => watch(await ff.newPage(), `firefox ${who}`);
const chromiumPage = async (who) => watch(await (await ch.newContext()).newPage(), `chromium ${who}`);

let failed = false;
try {
  // a. Firefox publishes, Chromium plays.
  const ffPub = await firefoxPage('publisher');
  await publish(ffPub, 'ff-pub', 'fox');
  step('firefox: /publish (room ff-pub) says live');
  await ui.axe(ffPub, '/publish (live)');
  await ui.phone(ffPub, '/publish (live)');
  const chWatch = await chromiumPage('player');
  await chWatch.goto(`${base}/watch/ff-pub`);
  let got = await decoding(chWatch, 'session', { frames: 30, what: 'chromium playing /watch/ff-pub' });
  step(`chromium: /watch/ff-pub decodes Firefox's video (${got.frames} frames, ${got.codecs.join(',')})`);
  await Promise.all([chWatch.close(), ffPub.close()]);

  // b. Chromium publishes, Firefox plays.
  const chPub = await chromiumPage('publisher');
  await publish(chPub, 'ch-pub', 'chrome');
  step('chromium: /publish (room ch-pub) says live');
  const ffWatch = await firefoxPage('player');
  await ffWatch.goto(`${base}/watch/ch-pub`);
  // Frames the <video> presents, counted with requestVideoFrameCallback: Firefox's
  // getVideoPlaybackQuality().totalVideoFrames stays 0 for a MediaStream source (seen here:
  // 0 while getStats counted 584 frames decoded and currentTime ran to 29 s).
  await ffWatch.evaluate(() => {
    const v = document.getElementById('player');
    window.__presented = 0;
    const tick = () => { window.__presented += 1; v.requestVideoFrameCallback(tick); };
    v.requestVideoFrameCallback(tick);
  });
  await until(ffWatch, () => window.__presented >= 30 && document.getElementById('player').videoWidth > 0, null,
    { timeout: T, what: 'firefox: 30 frames presented on /watch/ch-pub' })
    .catch(async (e) => { throw new Error(`${e.message} (${await ffWatch.evaluate(() => window.__presented)} presented); page ${await seen(ffWatch)}`); });
  got = await inbound(ffWatch, 'session');
  const size = await ffWatch.evaluate(() => `${document.getElementById('player').videoWidth}x${document.getElementById('player').videoHeight}`);
  step(`firefox: /watch/ch-pub plays Chromium's video (${await ffWatch.evaluate(() => window.__presented)} frames presented at ${size}, ${got.frames} decoded, ${got.codecs.join(',')})`);
  await Promise.all([ffWatch.close(), chPub.close()]);

  // c. The conference page: one in each browser; Firefox through its pre-join screen (`/`).
  const fox = await firefoxPage('fox');
  const chrome = await chromiumPage('chrome');
  await fox.goto(`${base}/?room=mix&name=fox`);
  await ui.prejoin(fox);
  await ui.axe(fox, '/ (the pre-join screen)');
  await ui.join(fox);
  await chrome.goto(`${base}/?room=mix&name=chrome&autojoin`);
  for (const [me, page, other] of [['fox', fox, 'chrome'], ['chrome', chrome, 'fox']]) {
    await until(page, (o) => [...document.querySelectorAll('.tile:not([hidden]) .label')].some((l) => l.textContent === o),
      other, { timeout: T, what: `${me}: a tile labelled ${other}` })
      .catch(async (e) => { throw new Error(`${e.message}; page ${await seen(page)}`); });
    got = await decoding(page, 'sub', { frames: 30, audio: 1, what: `${me}: ${other}'s video and audio` });
    step(`${me} sees ${other}: tile labelled, video decoding (${got.frames} frames, ${got.codecs.join(',')}), audio arriving (${got.audioPackets} packets)`);
  }

  // d. The room's pages in Firefox (firefox_pages.mjs): mute shown across browsers, chat,
  //    layout, axe-core, phone size; then axe-core on /watch and /publish.
  await ui.room(fox, chrome);
  await ui.axe(fox, 'the room (speaker view, chat open)');
  await ui.phone(fox, 'the room (chat panel open)');
  await ui.phone(fox, 'the room (speaker view)', async () => {
    await fox.click('#panel-close');
    await until(fox, () => document.getElementById('panel').hidden, null, { timeout: T, what: 'firefox: the chat panel closed' });
  });
  await fox.click('#layout');
  await until(fox, () => window.wisp.layout === 'grid', null, { timeout: T, what: 'firefox: the grid again' });
  await ui.phone(fox, 'the room (grid)');
  await ui.phone(fox, 'the settings dialog', async () => {
    await fox.click('#settings-btn');
    await until(fox, () => document.getElementById('settings').open, null, { timeout: T, what: 'firefox: the settings dialog open' });
  });
  await fox.keyboard.press('Escape');
  await until(fox, () => !document.getElementById('settings').open, null, { timeout: T, what: 'firefox: the settings dialog closed by Esc' });
  step('firefox: the settings dialog closes with Esc');
  const ffWatchMix = await firefoxPage('watch mix');
  await ffWatchMix.goto(`${base}/watch/mix`);
  await until(ffWatchMix, () => window.wisp?.live === true && document.getElementById('live').textContent === 'live'
    && document.getElementById('player').videoWidth > 0, null, { timeout: T, what: 'firefox: /watch/mix live with a picture' })
    .catch(async (e) => { throw new Error(`${e.message}; page ${await seen(ffWatchMix)}`); });
  await ui.axe(ffWatchMix, '/watch/mix (live)');
  await ui.phone(ffWatchMix, '/watch/mix (live)');
  const ffPublish = await firefoxPage('publish page');
  await ffPublish.goto(`${base}/publish`);
  await until(ffPublish, () => document.readyState === 'complete' && !!document.getElementById('go'), null, { timeout: T, what: 'firefox: /publish loaded' });
  await ui.axe(ffPublish, '/publish');
  await ui.phone(ffPublish, '/publish');
  await Promise.all([ffWatchMix.close(), ffPublish.close()]);
  if (pageErrors.length) throw new Error(`errors in the pages: ${pageErrors.join('; ')}`);
} catch (e) {
  failed = true;
  console.log(`FAIL ${e.message}`);
} finally {
  await Promise.allSettled([ff.close(), ch.close()]);
}
process.exit(failed ? 1 : 0);
