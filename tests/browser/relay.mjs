// Two headless Chromium pages behind a NAT (tests/nat/lab.sh) join one conference room with no
// ICE configuration of their own. Mode `turn-tcp`: the NAT drops all UDP, the pages take the
// TURN servers wisp hands out on OPTIONS and must meet through TURN over TCP (both legs'
// selected local candidate is a relay allocated over TCP). Mode `single-port:P`: UDP passes
// the NAT, wisp runs with --ice-udp-port P, and both legs' selected remote candidate is port P.
// Mode `ice-tcp:P`: the NAT drops all UDP, wisp offers no TURN and runs with --ice-tcp-port P:
// both legs' selected pair is TCP to server port P (RFC 6544), and an ICE restart of a
// publisher leg (bob's, without simulcast) and of a viewer leg (alice's) moves each to a new TCP
// connection with the video going on. For both pages the other's video must decode. Every wait
// is bounded.
import { chromium } from 'playwright-core';
import { until } from './poll.mjs';

const [base, mode = 'turn-tcp'] = process.argv.slice(2);
const sharedPort = mode.includes(':') ? Number(mode.split(':')[1]) : null;
const iceTcp = mode.startsWith('ice-tcp:');
const T = 45_000;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run', '--disable-gpu', '--autoplay-policy=no-user-gesture-required',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
    // The page is served over plain HTTP on the lab address; getUserMedia needs a secure context.
    `--unsafely-treat-insecure-origin-as-secure=${base}`],
});
let failed = false;
try {
  const alice = await (await browser.newContext()).newPage();
  const bob = await (await browser.newContext()).newPage();
  for (const p of [alice, bob]) {
    p.on('pageerror', (e) => console.log(`page error: ${e.message}`));
    p.on('console', (m) => { if (m.text().startsWith('pc ')) console.log(`  [page] ${m.text()}`); });
    // Log each connection's ICE story, so a failure here says which leg and why.
    await p.addInitScript(() => {
      const Orig = window.RTCPeerConnection;
      let n = 0;
      window.RTCPeerConnection = function (...a) {
        const pc = new Orig(...a); const id = ++n; const t0 = performance.now();
        const log = (what) => console.log(`pc ${id} +${Math.round(performance.now() - t0)}ms ${what}`);
        pc.addEventListener('connectionstatechange', () => log(`connection ${pc.connectionState}`));
        pc.addEventListener('icecandidateerror', (e) => log(`candidate error ${e.errorCode} ${e.url} ${e.errorText}`));
        pc.addEventListener('icecandidate', (e) => log(`candidate ${e.candidate ? e.candidate.candidate : 'end'}`));
        return pc;
      };
      window.RTCPeerConnection.prototype = Orig.prototype;
    });
  }
  await alice.goto(`${base}/?room=nat&name=alice&autojoin`);
  await alice.waitForFunction(() => !!window.wisp?.me, null, { timeout: T });
  // Bob's page also forces iceTransportPolicy "relay" (?relay=1), as a strict client would.
  const bobQuery = sharedPort === null ? '&relay=1' : iceTcp ? '&nosimulcast' : '';
  await bob.goto(`${base}/?room=nat&name=bob&autojoin${bobQuery}`);
  // Waits until `page` has decoded more than `beyond` + 20 frames of the other's video.
  const decodes = (me, page, beyond = 0) => until(page, async (beyond) => {
    let frames = 0;
    if (!window.wisp?.sub?.pc) return false;
    (await window.wisp.sub.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'video') frames += r.framesDecoded || 0;
    });
    return frames > beyond + 20 ? frames : false;
  }, beyond, { timeout: T, what: `${me}: the other's video decoding` }).catch(async (e) => {
    const s = await page.evaluate(() => ({ pub: window.wisp?.pub?.pc?.connectionState, sub: window.wisp?.sub?.pc?.connectionState, state: document.body.innerText.slice(0, 200) }));
    throw new Error(`${me}: ${e.message} ${JSON.stringify(s)}`);
  });
  const selected = (page) => page.evaluate(async () => {
      const out = {};
      for (const leg of ['pub', 'sub']) {
        const stats = await window.wisp[leg].pc.getStats();
        let pair;
        stats.forEach((r) => { if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
        // Without a transport entry naming it, the nominated pair that carries bytes is the one.
        if (!pair) stats.forEach((r) => { if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded' && r.bytesReceived > 0) pair = r; });
        const local = pair && stats.get(pair.localCandidateId);
        const remote = pair && stats.get(pair.remoteCandidateId);
        out[leg] = local ? `${local.candidateType}/${local.relayProtocol || local.protocol}` : 'none';
        out[`${leg}Remote`] = remote ? remote.port : null;
        out[`${leg}Ufrag`] = local ? local.usernameFragment : null;
        if (!local) { const d = []; stats.forEach((r) => { if (r.type === 'transport' || r.type === 'candidate-pair') d.push(JSON.stringify(r)); }); out[leg + 'Debug'] = d; }
      }
      return out;
    });
  const overTcp = (p) => p.pub.endsWith('/tcp') && !p.pub.startsWith('relay') && p.sub.endsWith('/tcp')
    && !p.sub.startsWith('relay') && p.pubRemote === sharedPort && p.subRemote === sharedPort;
  for (const [me, page] of [['alice', alice], ['bob', bob]]) {
    await decodes(me, page);
    const paths = await selected(page);
    if (iceTcp) {
      if (!overTcp(paths)) throw new Error(`${me}: expected ICE-TCP to server port ${sharedPort} on both legs, got ${JSON.stringify(paths)}`);
      console.log(`ok   ${me} sees the other's video; WHIP and WHEP legs are ${paths.pub} to server port ${sharedPort} (ICE-TCP through the NAT, no TURN)`);
    } else if (sharedPort === null) {
      if (paths.pub !== 'relay/tcp' || paths.sub !== 'relay/tcp') {
        throw new Error(`${me}: expected relay/tcp on both legs, got ${JSON.stringify(paths)}`);
      }
      console.log(`ok   ${me} sees the other's video; WHIP and WHEP legs are ${paths.pub} (TURN over TCP through the NAT)`);
    } else {
      if (paths.pubRemote !== sharedPort || paths.subRemote !== sharedPort) {
        throw new Error(`${me}: expected both legs on server port ${sharedPort}, got ${JSON.stringify(paths)}`);
      }
      console.log(`ok   ${me} sees the other's video; WHIP and WHEP legs both reach server port ${sharedPort} (${paths.pub} through the NAT)`);
    }
  }
  if (iceTcp) {
    // ICE restarts over TCP: bob's publisher leg (the library's) and alice's viewer leg
    // (wisp's driver). Each must move to a new ICE session and the video must go on.
    for (const [me, page, leg, watcher, wpage] of [['bob', bob, 'pub', 'alice', alice], ['alice', alice, 'sub', 'alice', alice]]) {
      const before = await selected(page);
      const frames = await decodes(watcher, wpage);
      await page.evaluate((leg) => window.wisp[leg].restartIce(), leg);
      await decodes(watcher, wpage, frames);
      const after = await selected(page);
      if (!overTcp(after) || after[`${leg}Ufrag`] === before[`${leg}Ufrag`]) {
        throw new Error(`${me}: after the ${leg} leg's ICE restart expected a new ICE-TCP session to port ${sharedPort}, got ${JSON.stringify({ before, after })}`);
      }
      console.log(`ok   ${me}'s ${leg === 'pub' ? 'WHIP' : 'WHEP'} leg restarted ICE over TCP (ufrag ${before[`${leg}Ufrag`]} → ${after[`${leg}Ufrag`]}) and ${watcher} still decodes`);
    }
  }
} catch (e) {
  failed = true;
  console.log(`FAIL ${e.message}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
