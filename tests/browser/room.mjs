// Headless Chromium (Debian's /usr/bin/chromium, fake devices) on wisp's conference page, run
// inside the lab namespace by tests/browser/lab.sh. Two browsers, so each gets its own fake
// microphone: alice "speaks" (a speech-like WAV), bob is silent.
//  1. alice, bob and carol join one room; each shows two remote tiles with the others' names,
//     video frames decoding (framesDecoded rising) and two audio tracks arriving;
//     a /watch page on the room plays it, says "live" and counts viewers;
//  2. bob's page highlights alice as speaking, alice's page never highlights bob;
//  3. dave joins with only 2 slots (last-N): he sees alice (speaking) and bob; alice mutes and
//     her highlight goes away on bob's page; carol (joined muted, same speech WAV) unmutes, and
//     dave's second slot switches to her with frames still decoding (no frozen tile);
//  4. bob leaves: his tile and roster entry disappear from alice's page.
// Every wait is bounded (playwright timeouts). Saves target/browser-room.png.
import { chromium } from 'playwright-core';
import { until } from './poll.mjs';

const [base, speechWav, silenceWav, shot] = process.argv.slice(2);
const T = 30_000;
// The switch to the layer bob asks for waits for the room's next reconcile and a keyframe.
const RAMP = 30_000;
const args = (wav) => [
  '--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  `--use-file-for-fake-audio-capture=${wav}`, '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-gpu',
  '--autoplay-policy=no-user-gesture-required', '--disable-features=WebRtcHideLocalIpsWithMdns',
];
const launch = (wav) => chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: args(wav) });

function step(msg) { console.log(`ok   ${msg}`); }

async function media(page) {
  return page.evaluate(async () => {
    const w = window.wisp;
    if (!w?.sub?.pc) return { frames: 0, samples: 0 };
    let frames = 0; let samples = 0;
    (await w.sub.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
      if (r.type === 'inbound-rtp' && r.kind === 'audio') samples += r.totalSamplesReceived || 0;
    });
    return { frames, samples };
  });
}

const visibleLabels = () => [...document.querySelectorAll('.tile:not([hidden]) .label')].map((e) => e.textContent);

const [ba, bb] = await Promise.all([launch(speechWav), launch(silenceWav)]);
let failed = false;
try {
  // The room-name fields' pattern compiles under the `v` flag browsers now use (an unescaped
  // `-` in a class made Chromium skip the check and log "Unable to check <input pattern=…>").
  for (const path of ['/', '/publish']) {
    const page = await ba.newPage();
    const warnings = [];
    page.on('console', (m) => { if (/pattern/i.test(m.text())) warnings.push(m.text()); });
    await page.goto(`${base}${path}`);
    const valid = await page.evaluate(() => {
      const input = document.getElementById('room');
      return ['lab-1.x~y_Z', 'bad name!', 'a/b', ''].map((v) => {
        input.value = v;
        return input.checkValidity();
      });
    });
    if (JSON.stringify(valid) !== JSON.stringify([true, false, false, false]) || warnings.length) {
      throw new Error(`${path}: the room field's pattern: validity ${JSON.stringify(valid)}, console ${JSON.stringify(warnings)}`);
    }
    await page.close();
    step(`${path}: the room field accepts "lab-1.x~y_Z" and refuses "bad name!", "a/b" and "" (its pattern compiles)`);
  }
  const alice = await ba.newPage();
  const bob = await bb.newPage();
  const carol = await (await ba.newContext()).newPage(); // alice's browser: the speech WAV
  for (const p of [alice, bob, carol]) p.on('pageerror', (e) => console.log(`page error: ${e.message}`));
  // Join one after the other, so the room's join order (the last-N tie-break) is known.
  const joined = (p) => p.waitForFunction(() => !!window.wisp?.me, null, { timeout: T });
  await alice.goto(`${base}/?room=lab&name=alice&autojoin`);
  await joined(alice);
  await bob.goto(`${base}/?room=lab&name=bob&autojoin`);
  await joined(bob);
  await carol.goto(`${base}/?room=lab&name=carol&autojoin&muted`);

  const people = { alice, bob, carol };
  for (const [me, page] of Object.entries(people)) {
    const others = Object.keys(people).filter((n) => n !== me);
    await page.waitForFunction((os) => {
      const labels = [...document.querySelectorAll('.tile:not([hidden]) .label')].map((l) => l.textContent);
      return os.every((o) => labels.includes(o)) && labels.length === os.length + 1;
    }, others, { timeout: T });
    const m1 = await media(page);
    await until(page, async (m) => {
      let f = 0; let s = 0; let audible = 0;
      (await window.wisp.sub.pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') f += r.framesDecoded || 0;
        if (r.type === 'inbound-rtp' && r.kind === 'audio') {
          s += r.totalSamplesReceived || 0;
          if ((r.totalSamplesReceived || 0) > 0) audible += 1;
        }
      });
      return f > m.frames + 20 && s > m.samples && audible >= 2;
    }, m1, { timeout: T, what: `${me}: frames decoding and two audio tracks` });
    step(`${me} sees ${others.join(' and ')}: tiles labelled, frames decoding, two audio tracks arriving`);
  }

  const watcher = await (await bb.newContext()).newPage();
  await watcher.goto(`${base}/watch/lab`);
  await watcher.waitForFunction(() => window.wisp?.live === true && window.wisp?.viewers >= 4
    && document.getElementById('player').getVideoPlaybackQuality?.().totalVideoFrames > 10, null, { timeout: T, polling: 250 })
    .catch(async (e) => {
      const seen = await watcher.evaluate(() => JSON.stringify({ live: window.wisp?.live, viewers: window.wisp?.viewers,
        frames: document.getElementById('player').getVideoPlaybackQuality?.().totalVideoFrames,
        error: document.getElementById('error').textContent, state: document.getElementById('live').textContent }));
      throw new Error(`${e.message}: watch page shows ${seen}`);
    });
  step('/watch/lab plays the room, says live and counts the viewers');
  await watcher.close();

  await bob.waitForFunction(() => [...document.querySelectorAll('.tile.speaking .label')]
    .some((l) => l.textContent.startsWith('alice')), null, { timeout: T });
  step('bob\'s page highlights alice as speaking');
  const aliceSawBobSpeak = await alice.evaluate(() => [...window.wisp.speaking].some((id) => window.wisp.roster.get(id)?.name === 'bob'));
  if (aliceSawBobSpeak) throw new Error('alice\'s page highlighted silent bob');
  step('silent bob is not highlighted');

  // Simulcast: the page offers layers; the active speaker's tile is large and gets the best
  // layer, thumbnails ask for a small one (WHEP layer selection).
  // Chromium turns layers on as its bandwidth estimate ramps up (and off when the CPU cannot
  // keep up), so wait for two, bounded, and say why if they never come.
  const layers = async () => {
    const rids = []; const why = [];
    const stats = await window.wisp.pub.pc.getStats();
    stats.forEach((r) => {
      if (r.type === 'outbound-rtp' && r.kind === 'video' && r.rid) {
        // Encoding now (a layer Chromium has turned off again keeps its frame count but
        // reports no height).
        if ((r.framesEncoded || 0) > 0 && r.frameHeight > 0) rids.push(`${r.rid}:${r.frameHeight}`);
        why.push(`${r.rid}: ${r.qualityLimitationReason || '?'}`);
      }
      if (r.type === 'candidate-pair' && r.nominated && r.availableOutgoingBitrate) why.push(`estimate ${Math.round(r.availableOutgoingBitrate / 1000)} kbit/s`);
    });
    window.__layers = { rids: rids.sort(), why };
    return rids.length >= 2;
  };
  await until(alice, layers, null, { timeout: T, what: 'two simulcast layers from alice' }).catch(async (e) => {
    const seen = await alice.evaluate(() => JSON.stringify(window.__layers));
    throw new Error(`alice should send at least two simulcast layers: ${e.message}; ${seen}`);
  });
  const sent = await alice.evaluate(() => window.__layers.rids);
  step(`alice publishes simulcast: ${sent.join(', ')} (rid:height)`);
  await until(bob, async () => {
    const w = window.wisp;
    const aliceMid = [...w.slots].find(([, p]) => p === w.active)?.[0];
    const carolMid = [...w.slots].find(([, p]) => p && w.roster.get(p)?.name === 'carol')?.[0];
    if (!aliceMid || !carolMid) return false;
    if (!document.querySelector(`.tile[data-key="slot-${aliceMid}"]`)?.classList.contains('featured')) return false;
    // The page asks the server's choice for the featured tile and at most 240 lines for a
    // thumbnail; nobody asks by rid. The server's choice follows wisp's own estimate of bob's
    // leg, which probes its way up to the best layer the path carries.
    if (w.layers.get(aliceMid) !== '{}' || w.layers.get(carolMid) !== '{"maxHeight":240}') return false;
    const h = {};
    (await w.sub.pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp' && r.kind === 'video') h[r.mid] = r.frameHeight || 0; });
    window.__layers = h;
    return h[aliceMid] > 0 && h[carolMid] > 0 && h[aliceMid] > h[carolMid];
  }, null, { timeout: RAMP, what: 'bob: the featured speaker in a larger layer than the thumbnail' }).catch(async (e) => {
    const seen = await bob.evaluate(() => JSON.stringify({ active: window.wisp.active, slots: [...window.wisp.slots], heights: window.__layers }));
    await alice.evaluate(layers);
    const sending = await alice.evaluate(() => JSON.stringify(window.__layers));
    throw new Error(`${e.message}: ${seen}; alice now sends ${sending}`);
  });
  const heights = await bob.evaluate(() => JSON.stringify(window.__layers));
  step(`bob's page: asks the server's choice for alice (featured, speaking) and <= 240 lines for carol; the server's choice for alice comes larger than carol's thumbnail ${heights}`);
  if (shot) await bob.screenshot({ path: shot });

  const dave = await (await bb.newContext()).newPage();
  await dave.goto(`${base}/?room=lab&name=dave&autojoin&slots=2`);
  const daveSees = () => dave.evaluate(() => [...document.querySelectorAll('.tile:not([hidden]) .label')]
    .map((l) => l.textContent.replace(' · speaking', '')).filter((n) => !n.endsWith('(you)')).sort().join(','));
  await dave.waitForFunction(() => {
    const labels = [...document.querySelectorAll('.tile:not([hidden]) .label')].map((l) => l.textContent);
    return labels.length === 3 && labels.some((l) => l.startsWith('alice')) && labels.some((l) => l.startsWith('bob'));
  }, null, { timeout: T }).catch(async (e) => {
    const seen = await dave.evaluate(() => JSON.stringify({
      labels: [...document.querySelectorAll('.tile .label')].map((l) => l.textContent),
      slots: [...window.wisp.slots], speaking: [...window.wisp.speaking],
      roster: [...window.wisp.roster.values()].map((p) => [p.id, p.name]) }));
    throw new Error(`dave's page: ${seen}`);
  });
  step(`dave (2 slots) sees ${await daveSees()}: the speaker and the earliest other`);

  await alice.click('#mic');
  await bob.waitForFunction(() => ![...document.querySelectorAll('.tile.speaking .label')]
    .some((l) => l.textContent.startsWith('alice')), null, { timeout: T });
  step('muting alice removes her highlight');

  await carol.click('#mic'); // unmute: carol now speaks
  await dave.waitForFunction(() => [...document.querySelectorAll('.tile:not([hidden]) .label')]
    .some((l) => l.textContent.startsWith('carol')), null, { timeout: T });
  const before = await media(dave);
  await until(dave, async (m) => {
    let f = 0;
    (await window.wisp.sub.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') f += r.framesDecoded || 0;
    });
    return f > m.frames + 20;
  }, before, { timeout: T, what: 'dave: frames decoding after the switch' });
  step(`last-N follows the speaker: dave now sees ${await daveSees()}, frames still decoding`);

  await bob.click('#leave');
  await alice.waitForFunction(() => !([...document.querySelectorAll('.tile:not([hidden]) .label')].some((l) => l.textContent === 'bob'))
    && ![...document.querySelectorAll('#people li')].some((l) => l.textContent === 'bob'), null, { timeout: T });
  step('bob leaves: his tile and roster entry disappear');
  const left = await alice.evaluate(() => [...document.querySelectorAll('.tile:not([hidden]) .label')]
    .map((l) => l.textContent.replace(' · speaking', '')).sort().join(','));
  if (left !== 'alice (you),carol,dave') throw new Error(`alice should show herself, carol and dave; shows ${left}`);
} catch (e) {
  failed = true;
  console.log(`FAIL ${e.message}`);
} finally {
  await Promise.all([ba.close(), bb.close()]);
}
process.exit(failed ? 1 : 0);
