// What a page reads from its own connections' getStats(): whether this participant's
// connection is weak (shown to everyone on its tile), and what a publisher sends.

/** A connection counts as weak after this many weak samples in a row… */
const WEAK_AFTER = 2;
/** …and as fine again after this many good ones (no flicker on one bad second). */
const FINE_AFTER = 3;

/**
 * Samples `pcs()` (the page's peer connections) and says whether the connection is weak:
 * round-trip time over 400 ms, more than 5 % of packets lost since the last sample (sent, as
 * the server reports back, or received), or the video encoder held back by bandwidth while
 * the estimate is under 250 kbit/s (Chromium reports `bandwidth` for a while after every start
 * as it ramps up; that alone is not a weak link). Call `sample()` every couple of seconds; it
 * returns { weak, why }.
 */
export function weakSampler(pcs) {
  let bad = 0; let good = 0; let weak = false;
  const last = new Map(); // stats id -> { lost, total }
  const lossSince = (id, lost, total) => {
    const prev = last.get(id) || { lost: 0, total: 0 };
    last.set(id, { lost, total });
    const dl = lost - prev.lost; const dt = total - prev.total;
    return dt > 20 ? dl / dt : 0;
  };
  return async function sample() {
    const why = [];
    for (const pc of pcs()) {
      if (!pc || pc.connectionState === 'closed') continue;
      let stats;
      try { stats = await pc.getStats(); } catch (_) { continue; }
      let estimate = Infinity; let limited = false;
      stats.forEach((r) => {
        if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') {
          if (r.currentRoundTripTime > 0.4) why.push(`rtt ${Math.round(r.currentRoundTripTime * 1000)} ms`);
          if (r.availableOutgoingBitrate) estimate = r.availableOutgoingBitrate;
        }
        if (r.type === 'remote-inbound-rtp' && r.packetsLost !== undefined) {
          const sent = stats.get(r.localId)?.packetsSent || 0;
          const loss = lossSince(r.id, Math.max(0, r.packetsLost), sent);
          if (loss > 0.05) why.push(`${Math.round(loss * 100)} % sent lost`);
        }
        if (r.type === 'inbound-rtp' && r.packetsReceived !== undefined) {
          const lost = Math.max(0, r.packetsLost || 0);
          const loss = lossSince(r.id, lost, lost + r.packetsReceived);
          if (loss > 0.05) why.push(`${Math.round(loss * 100)} % received lost`);
        }
        if (r.type === 'outbound-rtp' && r.kind === 'video' && r.qualityLimitationReason === 'bandwidth') limited = true;
      });
      if (limited && estimate < 250_000) why.push(`bandwidth ${Math.round(estimate / 1000)} kbit/s`);
    }
    if (why.length) { bad += 1; good = 0; } else { good += 1; bad = 0; }
    if (!weak && bad >= WEAK_AFTER) weak = true;
    if (weak && good >= FINE_AFTER) weak = false;
    return { weak, why };
  };
}

/**
 * What `pc` sends, since the previous call with the same `memo` object: { kbps, width,
 * height, fps, layers } (the largest video layer being encoded, how many are).
 */
export async function outgoing(pc, memo) {
  const stats = await pc.getStats();
  let bytes = 0; let width = 0; let height = 0; let fps = 0; let layers = 0;
  stats.forEach((r) => {
    if (r.type !== 'outbound-rtp') return;
    bytes += r.bytesSent || 0;
    if (r.kind === 'video' && r.frameHeight > 0) {
      layers += 1;
      if (r.frameHeight > height) { height = r.frameHeight; width = r.frameWidth; fps = r.framesPerSecond || 0; }
    }
  });
  const now = performance.now();
  const dt = memo.t ? (now - memo.t) / 1000 : 0;
  const kbps = dt > 0 ? Math.max(0, ((bytes - memo.bytes) * 8) / dt / 1000) : 0;
  memo.t = now; memo.bytes = bytes;
  return { kbps, width, height, fps, layers };
}

/** The video `pc` receives on its first (or `mid`'s) video m-line: { width, height, fps, frames }. */
export async function incoming(pc, mid) {
  const out = { width: 0, height: 0, fps: 0, frames: 0 };
  (await pc.getStats()).forEach((r) => {
    if (r.type !== 'inbound-rtp' || r.kind !== 'video' || (mid !== undefined && r.mid !== mid)) return;
    if ((r.frameHeight || 0) >= out.height) {
      out.width = r.frameWidth || 0; out.height = r.frameHeight || 0;
      out.fps = r.framesPerSecond || 0; out.frames = r.framesDecoded || 0;
    }
  });
  return out;
}
