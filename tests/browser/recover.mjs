// The conference page's own recovery against a real network failure, run inside the lab
// namespace by tests/browser/lab.sh (as root: it changes the namespace's nftables).
// alice and bob (two browsers, fake devices) join room `rec` and decode each other's frames.
// Then every UDP packet in the namespace is dropped (an nftables input rule: senders see no
// error, the packets just vanish, as on a dead network) for a fixed time, and restored:
//  short   10 s, shorter than wisp's ICE failed timeout (25 s) and Chromium's own (about 17 s
//          here): both ends only see the connections as disconnected. Both pages say
//          "reconnecting" meanwhile and decode new frames within 5 s of the restore (the bound
//          the issue sets), without a reload.
//  refused 25 s, longer than Chromium's failed timeout, and the page's ICE-restart PATCHes are
//          answered 404 by this script (as a server that lost the sessions would): the page
//          must take the fresh-POST path, the publisher with its resume secret (taking over its
//          own participant), on new connections, media within LONG_BOUND of the restore.
//  long    35 s, longer than both failed timeouts: ICE fails and the page's recover() runs for
//          real (ICE restart by PATCH; a fresh POST if wisp refuses it), media within
//          LONG_BOUND of the restore.
// Throughout (sampled every 200 ms) neither page's roster loses anyone or changes anyone's
// participant id, no name is listed twice (roster, people list, tiles), the page never reloads,
// and a separate observer of the room's event stream sees no one leave or join. Between the
// first "reconnecting" and "live" again a page says nothing else. Every wait is bounded.
// usage: node recover.mjs BASE [short,refused,long]   (RECOVER_VERBOSE=1: the pages' journals)
import { execSync } from 'node:child_process';
import { chromium } from 'playwright-core';
import { until } from './poll.mjs';

const [base, phases = 'short,refused,long'] = process.argv.slice(2);
const ROOM = 'rec';
// Extra query for both pages (diagnosis, e.g. RECOVER_QUERY=nosimulcast).
const EXTRA = process.env.RECOVER_QUERY ? `&${process.env.RECOVER_QUERY}` : '';
const T = 30_000;
// The issue's bound for the short outage: media again within 5 s of the restore.
const SHORT_BOUND = Number(process.env.RECOVER_SHORT_BOUND_MS) || 5_000;
// After ICE failed the pages have new connections or ICE restarts to finish (Chromium may be
// between attempts when the network comes back): a chosen bound, not measured timing.
const LONG_BOUND = 10_000;
// How long a recovery is measured at most (so a slow one is reported with its time).
const MEASURE = 30_000;
const args = [
  '--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
  '--disable-gpu', '--autoplay-policy=no-user-gesture-required', '--disable-features=WebRtcHideLocalIpsWithMdns',
];
const launch = () => chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const step = (msg) => console.log(`ok   ${msg}`);
const secs = (ms) => (ms / 1000).toFixed(1);

// The fault: all UDP into any address of the namespace dropped (one atomic nft script).
const TABLE = 'wisp_recover';
const cut = () => execSync('nft -f -', {
  input: `table inet ${TABLE} {\n chain in {\n  type filter hook input priority 0; policy accept;\n  meta l4proto udp drop\n }\n}\n`,
  stdio: ['pipe', 'inherit', 'inherit'],
});
const restore = () => { try { execSync(`nft delete table inet ${TABLE}`, { stdio: 'ignore' }); } catch (_) { /* not there */ } };

// In each page, before its scripts: a journal of the page's signalling requests and of every
// peer connection's state (what recover() did, and when).
function journal() {
  const log = window.__journal = [];
  const note = (s) => log.push([Date.now(), s]);
  const f = window.fetch;
  window.fetch = async (input, init = {}) => {
    const m = init.method || 'GET';
    if (m === 'GET') return f(input, init);
    const u = String(input).replace(location.origin, '').replace(/\?.*/, '');
    const body = typeof init.body === 'string' ? init.body : '';
    const what = m === 'PATCH'
      ? ` ${/a=candidate|end-of-candidates/.test(body) ? 'trickle' : 'restart'} ufrag ${(body.match(/a=ice-ufrag:(.*)/) || [])[1]?.trim()} if-match ${init.headers?.['If-Match']?.slice(0, 6)}`
      : '';
    try {
      const r = await f(input, init);
      note(`${m} ${u}${what} -> ${r.status}`);
      return r;
    } catch (e) { note(`${m} ${u}${what} -> ${e.message}`); throw e; }
  };
  const PC = window.RTCPeerConnection;
  let n = 0;
  window.RTCPeerConnection = class extends PC {
    constructor(...a) {
      super(...a);
      const k = ++n;
      note(`pc${k} created`);
      this.addEventListener('connectionstatechange', () => note(`pc${k} ${this.connectionState}`));
    }
  };
}

// What a page shows, for the monitor.
const look = () => ({
  mark: window.__recoverMark || null,
  me: window.wisp.me,
  state: document.getElementById('state').textContent,
  roster: [...window.wisp.roster.values()].map((p) => [p.id, p.name]),
  people: [...document.querySelectorAll('#people li')].map((l) => l.textContent),
  tiles: [...document.querySelectorAll('.tile:not([hidden]) .label')].map((l) => l.textContent.replace(' · speaking', '')),
  pub: window.wisp.pub?.pc?.connectionState || '-',
  sub: window.wisp.sub?.pc?.connectionState || '-',
});

// Media arriving on a page's WHEP connection; each connection gets a tag so a new one (after a
// fresh POST) is told apart from the old.
async function media() {
  const w = window.wisp;
  const tag = (pc) => { if (pc && !pc.__tag) pc.__tag = Math.random().toString(36).slice(2, 8); return pc?.__tag || null; };
  if (!w?.sub?.pc) return { sub: null, pub: tag(w?.pub?.pc), frames: 0, audio: 0 };
  let frames = 0; let audio = 0;
  (await w.sub.pc.getStats()).forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
    if (r.type === 'inbound-rtp' && r.kind === 'audio') audio += r.packetsReceived || 0;
  });
  return { sub: tag(w.sub.pc), pub: tag(w.pub?.pc), frames, audio };
}
// New frames (and audio packets) since `then`, on the same or a new connection.
const flowing = (now, then, n = 5) => (now.sub === then.sub
  ? now.frames >= then.frames + n && now.audio > then.audio
  : now.frames >= n && now.audio > 0);

// What the page's connections carry, for a failure report.
async function wire() {
  const w = window.wisp;
  const out = {};
  for (const [k, pc] of [['pub', w.pub?.pc], ['sub', w.sub?.pc]]) {
    if (!pc) continue;
    const rows = [];
    (await pc.getStats()).forEach((r) => {
      if (r.type === 'outbound-rtp') rows.push(`out ${r.kind}${r.rid ? `/${r.rid}` : ''} pkts ${r.packetsSent} frames ${r.framesEncoded ?? '-'} kf ${r.keyFramesEncoded ?? '-'} pli ${r.pliCount ?? '-'} ${r.frameHeight ?? ''}${r.targetBitrate !== undefined ? ` target ${Math.round(r.targetBitrate / 1000)}k` : ''}${r.qualityLimitationReason && r.qualityLimitationReason !== 'none' ? ` limited by ${r.qualityLimitationReason}` : ''}`);
      if (r.type === 'inbound-rtp') rows.push(`in ${r.kind} mid ${r.mid} pkts ${r.packetsReceived} frames ${r.framesDecoded ?? '-'} kf ${r.keyFramesDecoded ?? '-'} pli ${r.pliCount ?? '-'}`);
      if (r.type === 'candidate-pair' && r.nominated) rows.push(`pair ${r.state} sent ${r.packetsSent} recv ${r.packetsReceived}${r.availableOutgoingBitrate ? ` est ${Math.round(r.availableOutgoingBitrate / 1000)}k` : ''}`);
    });
    out[k] = `${pc.connectionState} ${pc.__tag || ''}: ${rows.join('; ')}`;
  }
  return out;
}

// An observer of the room's events, apart from the pages: it must never see alice or bob
// leave or join once both are in.
function watchEvents(url) {
  const seen = [];
  const ctl = new AbortController();
  const done = (async () => {
    const res = await fetch(url, { signal: ctl.signal });
    const dec = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, i); buf = buf.slice(i + 2);
        const ev = frame.match(/^event: (.*)$/m)?.[1];
        const data = frame.match(/^data: (.*)$/m)?.[1];
        if (ev) seen.push({ at: Date.now(), ev, data: data ? JSON.parse(data) : null });
      }
    }
    seen.push({ at: Date.now(), ev: 'stream-ended', data: null });
  })().catch((e) => { if (e.name !== 'AbortError') seen.push({ at: Date.now(), ev: 'stream-error', data: e.message }); });
  return { seen, stop: () => { ctl.abort(); return done; } };
}

// What wisp forwards (its admin API): per viewer, the video layer it sends and at what rate,
// and per publisher the rate of each layer it receives. A compact line, for the timelines.
async function forwarding() {
  try {
    const r = await fetch(`${base}/api/rooms/${ROOM}`);
    if (r.status !== 200) return `api ${r.status}`;
    const j = await r.json();
    const kbit = (b) => Math.round((b || 0) / 1000);
    const pubs = (j.participants || []).map((p) => `${p.name} sends ${(p.tracks || []).filter((t) => t.kind === 'video')
      .map((t) => `${t.rid ?? '-'}:${kbit(t.bitrateBps)}`).join('/')}`);
    const views = (j.viewers || []).map((v) => {
      const who = (j.participants || []).find((p) => p.id === v.participant)?.name || v.participant;
      const slot = (v.slots || []).find((x) => x.kind === 'video' && x.shows);
      return `${who} gets ${slot ? `${slot.showsName} ${slot.layer ?? 'nothing'}:${kbit(slot.bitrateBps)}` : 'nothing'}`;
    });
    return `${pubs.join(', ')}; ${views.join(', ')} (kbit/s)`;
  } catch (e) { return `api: ${e.message}`; }
}

// What recover() did between `from` and `to`, from a page's journal.
function summary(j, from, to) {
  const in_ = j.filter(([t]) => t >= from && t <= to).map(([, s]) => s);
  const count = (re) => in_.filter((s) => re.test(s)).length;
  return {
    failed: count(/^pc\d+ failed$/),
    restarted: count(/^PATCH .* restart .* -> 200$/),
    refused: count(/^PATCH .* restart .* -> (?!200)/),
    whip: count(/^POST \/whip\/.* -> 201$/),
    whep: count(/^POST \/whep\/.* -> 201$/),
  };
}
const said = (s) => `${s.failed} connection(s) failed; ICE restarts: ${s.restarted} accepted, ${s.refused} refused; fresh POSTs: ${s.whip} WHIP, ${s.whep} WHEP`;

// After a failure: what each page did since the cut, what its connections carry, and wisp's
// view of the room.
async function report(pages) {
  for (const [me, page] of Object.entries(pages)) {
    try {
      const j = await page.evaluate(() => window.__journal || []);
      console.log(`--- ${me}'s page since the last cut (s):`);
      for (const [t, s] of j) if (t >= phaseStart - 1000) console.log(`     ${secs(t - phaseStart)} ${s}`);
      console.log(`     now: ${JSON.stringify(await page.evaluate(wire))}`);
      await sleep(2000);
      console.log(`     2 s later: ${JSON.stringify(await page.evaluate(wire))}`);
    } catch (e) { console.log(`--- ${me}'s page unreadable: ${e.message}`); }
  }
  try {
    const r = await fetch(`${base}/api/rooms/${ROOM}`);
    console.log(`--- GET /api/rooms/${ROOM}: ${r.status} ${(await r.text()).slice(0, 4000)}`);
  } catch (e) { console.log(`--- GET /api/rooms/${ROOM}: ${e.message}`); }
}

restore(); // a table left by an earlier run
const [ba, bb] = await Promise.all([launch(), launch()]);
let failed = false;
let observer;
let pages = {};
let phaseStart = Date.now();
let refusing = false;
try {
  const alice = await ba.newPage();
  const bob = await bb.newPage();
  pages = { alice, bob };
  for (const [n, p] of Object.entries(pages)) {
    p.on('pageerror', (e) => console.log(`page error (${n}): ${e.message}`));
    await p.addInitScript(journal);
    // The `refused` phase: ICE restarts (a PATCH with credentials and no candidates) get 404.
    await p.route('**/session/**', (route) => {
      const r = route.request();
      if (refusing && r.method() === 'PATCH' && !/a=candidate|end-of-candidates/.test(r.postData() || '')) {
        return route.fulfill({ status: 404, contentType: 'text/plain', body: 'refused by recover.mjs\n' });
      }
      return route.continue();
    });
  }
  const joined = (p) => p.waitForFunction(() => !!window.wisp?.me, null, { timeout: T });
  await alice.goto(`${base}/?room=${ROOM}&name=alice&autojoin${EXTRA}`);
  await joined(alice);
  await bob.goto(`${base}/?room=${ROOM}&name=bob&autojoin${EXTRA}`);
  await joined(bob);

  const other = { alice: 'bob', bob: 'alice' };
  for (const [me, page] of Object.entries(pages)) {
    await page.waitForFunction((o) => {
      const labels = [...document.querySelectorAll('.tile:not([hidden]) .label')].map((l) => l.textContent);
      return labels.includes(o) && labels.length === 2 && document.getElementById('state').textContent === 'live';
    }, other[me], { timeout: T });
    await page.evaluate(`window.__media = ${media.toString()}`);
  }
  // Both decoding, before each phase.
  const decoding = async (what) => {
    for (const [me, page] of Object.entries(pages)) {
      const m = await page.evaluate(media);
      await until(page, async (m0) => {
        const now = await window.__media();
        return now.sub === m0.sub && now.frames > m0.frames + 20 && now.audio > m0.audio;
      }, m, { timeout: T, what: `${me}: frames decoding ${what}` });
    }
  };
  await decoding('after joining');
  step('alice and bob in room rec: each page live, the other\'s tile labelled, frames decoding');

  // What must hold from here on: each page keeps both people, with the same participant ids.
  const ids = {};
  const before = {};
  for (const [me, page] of Object.entries(pages)) {
    await page.evaluate(() => { window.__recoverMark = 'same page'; });
    const l = await page.evaluate(look);
    before[me] = l;
    for (const [id, name] of l.roster) ids[`${me}:${name}`] = id;
    if (!ids[`${me}:${other[me]}`] || ids[`${me}:${me}`] !== l.me) throw new Error(`${me}'s roster: ${JSON.stringify(l.roster)}`);
  }
  if (ids['alice:alice'] !== ids['bob:alice'] || ids['alice:bob'] !== ids['bob:bob']) throw new Error(`the pages disagree on ids: ${JSON.stringify(ids)}`);
  observer = watchEvents(`${base}/rooms/${ROOM}/events`);
  const watchFrom = Date.now();

  // The monitor: every ~200 ms, both pages; violations and state changes are kept.
  const problems = [];
  const timeline = { alice: [], bob: [] };
  let monitoring = true;
  const monitor = (async () => {
    while (monitoring) {
      for (const [me, page] of Object.entries(pages)) {
        let l;
        try { l = await page.evaluate(look); } catch (e) { problems.push(`${me}: page unreadable: ${e.message}`); continue; }
        const at = `+${secs(Date.now() - phaseStart)} s`;
        if (l.mark !== 'same page') problems.push(`${me} ${at}: the page reloaded`);
        if (l.me !== ids[`${me}:${me}`]) problems.push(`${me} ${at}: the page's own participant changed to ${l.me}`);
        for (const who of ['alice', 'bob']) {
          const them = l.roster.filter(([, n]) => n === who);
          if (them.length === 0) problems.push(`${me} ${at}: ${who} missing from the roster ${JSON.stringify(l.roster)}`);
          else if (them.some(([id]) => id !== ids[`${me}:${who}`])) problems.push(`${me} ${at}: ${who} has a new participant id ${JSON.stringify(them)}`);
        }
        const names = l.roster.map(([, n]) => n);
        if (new Set(names).size !== names.length) problems.push(`${me} ${at}: a name twice in the roster ${JSON.stringify(l.roster)}`);
        if (new Set(l.people).size !== l.people.length) problems.push(`${me} ${at}: a name twice in the people list ${JSON.stringify(l.people)}`);
        if (new Set(l.tiles).size !== l.tiles.length) problems.push(`${me} ${at}: a name on two tiles ${JSON.stringify(l.tiles)}`);
        const tl = timeline[me];
        const key = `${l.state} (pub ${l.pub}, sub ${l.sub})`;
        if (tl.at(-1)?.key !== key) tl.push({ t: Date.now(), key, state: l.state });
      }
      await sleep(200);
    }
  })();
  const checkProblems = (what, from) => {
    const seen = observer.seen.filter((e) => e.at >= Math.max(watchFrom, from) && ['left', 'joined', 'stream-error', 'stream-ended'].includes(e.ev));
    if (seen.length) problems.push(`the room's event stream said: ${seen.map((e) => `${e.ev} ${JSON.stringify(e.data)}`).join('; ')}`);
    if (problems.length) throw new Error(`${what}: ${problems.slice(0, 8).join(' | ')}${problems.length > 8 ? ` (+${problems.length - 8} more)` : ''}`);
  };

  async function outage(name, holdMs, bound, { refuse = false } = {}) {
    const tags = {};
    for (const [me, page] of Object.entries(pages)) tags[me] = await page.evaluate(media);
    refusing = refuse;
    cut();
    const cutAt = Date.now();
    phaseStart = cutAt;
    try {
      // Both pages must say so in words while the network is down.
      await Promise.all(Object.entries(pages).map(([me, page]) => page.waitForFunction(
        () => /reconnecting/i.test(document.getElementById('state').textContent), null,
        { timeout: Math.max(1, holdMs - 500), polling: 100 },
      ).catch(() => { throw new Error(`${name}: ${me}'s page never said "reconnecting" during the ${secs(holdMs)} s outage`); })));
      const saidAt = Date.now() - cutAt;
      // The outage lasts holdMs whatever happens: that is the scenario (a timed fault).
      await sleep(Math.max(0, cutAt + holdMs - Date.now()));
      const at = {};
      for (const [me, page] of Object.entries(pages)) at[me] = await page.evaluate(media);
      restore();
      refusing = false;
      const restoredAt = Date.now();
      step(`${name}: all UDP dropped for ${secs(restoredAt - cutAt)} s${refuse ? ', ICE restarts refused' : ''}; both pages said "reconnecting" (${secs(saidAt)} s after the cut)`);
      // Until both decode new frames again, measured up to MEASURE, then judged against bound.
      const back = {};
      const wisp = [];
      let lastWisp = 0;
      while (Object.keys(back).length < 2 && Date.now() - restoredAt < MEASURE) {
        if (Date.now() - lastWisp >= 500) {
          lastWisp = Date.now();
          let f = await forwarding();
          if (process.env.RECOVER_VERBOSE) {
            for (const [me, page] of Object.entries(pages)) f += `\n        ${me} pub: ${(await page.evaluate(wire)).pub}`;
          }
          if (wisp.at(-1)?.f !== f) wisp.push({ t: lastWisp, f });
        }
        for (const [me, page] of Object.entries(pages)) {
          if (back[me]) continue;
          const now = await page.evaluate(media);
          if (flowing(now, at[me])) back[me] = { ms: Date.now() - restoredAt, newPub: now.pub !== tags[me].pub, newSub: now.sub !== tags[me].sub };
        }
        await sleep(100);
      }
      const done = {};
      for (const [me, page] of Object.entries(pages)) {
        const tl = timeline[me].filter((x) => x.t >= cutAt - 250);
        console.log(`     ${me}: ${tl.map((x) => `+${secs(Math.max(0, x.t - cutAt))}s ${x.key}`).join(' → ')}`);
        done[me] = summary(await page.evaluate(() => window.__journal), cutAt, Date.now());
        console.log(`     ${me}'s recover(): ${said(done[me])}`);
      }
      const slow = Object.values(back).length < 2 || Math.max(...Object.values(back).map((b) => b.ms)) > bound;
      if (slow || process.env.RECOVER_VERBOSE) {
        for (const w of wisp) console.log(`     wisp +${secs(w.t - restoredAt)}s after the restore: ${w.f}`);
      }
      const conns = (b) => (b ? `${secs(b.ms)} s (${b.newPub ? 'new' : 'same'} WHIP, ${b.newSub ? 'new' : 'same'} WHEP connection)` : 'never');
      console.log(`     ${name}: media again after the restore: alice ${conns(back.alice)}, bob ${conns(back.bob)}`);
      for (const me of Object.keys(pages)) {
        if (!back[me]) throw new Error(`${name}: ${me}'s page decodes no new frames ${secs(MEASURE)} s after the restore`);
      }
      const both = Math.max(...Object.values(back).map((b) => b.ms));
      if (both > bound) throw new Error(`${name}: both pages decode again only ${secs(both)} s after the restore; the bound is ${secs(bound)} s`);
      step(`${name}: both pages decode new frames ${secs(both)} s after the restore (bound ${secs(bound)} s), no reload`);
      // Back to live, the same people on the same tiles.
      for (const [me, page] of Object.entries(pages)) {
        await page.waitForFunction(() => document.getElementById('state').textContent === 'live', null, { timeout: T })
          .catch(async () => { throw new Error(`${name}: ${me}'s page does not say live again: ${JSON.stringify(await page.evaluate(look))}`); });
        await page.waitForFunction((want) => {
          const labels = [...document.querySelectorAll('.tile:not([hidden]) .label')].map((l) => l.textContent.replace(' · speaking', '')).sort();
          return JSON.stringify(labels) === JSON.stringify(want);
        }, [...before[me].tiles].sort(), { timeout: T }).catch(async () => {
          throw new Error(`${name}: ${me}'s tiles were ${JSON.stringify(before[me].tiles)}, now ${JSON.stringify((await page.evaluate(look)).tiles)}`);
        });
      }
      // Between the first "reconnecting" and live again a page says nothing else (not
      // "connecting", which reads as a first join).
      for (const me of Object.keys(pages)) {
        const words = timeline[me].filter((x) => x.t >= cutAt).map((x) => x.state);
        const first = words.findIndex((w) => /reconnecting/i.test(w));
        const last = words.lastIndexOf('live');
        const between = words.slice(first, last > first ? last : undefined).filter((w) => !/reconnecting/i.test(w));
        if (between.length) throw new Error(`${name}: ${me}'s page said ${JSON.stringify([...new Set(between)])} while reconnecting`);
      }
      checkProblems(name, cutAt);
      step(`${name}: both pages live again; nobody left or joined (rosters sampled every 200 ms, the room's event stream), same participant ids, no name twice, tiles as before`);
      return { back, done };
    } finally {
      restore();
      refusing = false;
    }
  }

  // Each phase on its own: a failed one is reported and the next still runs (the pages are
  // checked to decode again first, bounded).
  let failures = 0;
  try {
    for (const phase of phases.split(',')) {
      await decoding(`before the ${phase} outage`);
      problems.length = 0;
      try {
        await runPhase(phase);
      } catch (e) {
        failures += 1;
        console.log(`FAIL ${e.message}`);
        restore();
        await report(pages);
      }
    }
  } finally {
    monitoring = false;
    await monitor;
  }
  if (failures) throw new Error(`${failures} of ${phases.split(',').length} phases failed`);

  async function runPhase(phase) {
    if (phase === 'short') {
      await outage('short outage', 10_000, SHORT_BOUND);
    } else if (phase === 'refused') {
      const { back, done } = await outage('refused', 25_000, LONG_BOUND, { refuse: true });
      for (const me of Object.keys(pages)) {
        if (!done[me].failed || !done[me].whip || !done[me].whep || !back[me].newPub || !back[me].newSub) {
          throw new Error(`refused: ${me}'s page did not recover by fresh POSTs on new connections: ${said(done[me])}`);
        }
      }
      step('refused: ICE failed, restarts refused: both pages recovered by fresh WHIP (resume) and WHEP POSTs on new connections, their participants kept');
    } else if (phase === 'long') {
      const { done } = await outage('long outage', 35_000, LONG_BOUND);
      for (const me of Object.keys(pages)) {
        if (!done[me].failed || !(done[me].restarted + done[me].whip)) throw new Error(`long outage: ${me}'s recover() never ran: ${said(done[me])}`);
      }
      step('long outage: ICE failed on both pages and their recover() brought them back');
    } else {
      throw new Error(`unknown phase ${phase}`);
    }
  }
} catch (e) {
  failed = true;
  console.log(`FAIL ${e.message}`);
}
restore();
if (process.env.RECOVER_VERBOSE) await report(pages);
await observer?.stop();
await Promise.all([ba.close(), bb.close()]);
process.exit(failed ? 1 : 0);
