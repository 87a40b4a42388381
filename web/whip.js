// WHIP/WHEP client helpers: POST an offer, keep Location/ETag, trickle and restart ICE with
// PATCH (If-Match), DELETE on leave. Used by the conference page; no dependencies.

const SDP = 'application/sdp';
const FRAG = 'application/trickle-ice-sdpfrag';

/** Parses `Link: <turn:…>; rel="ice-server"; username=…; credential=…` into iceServers. */
export function iceServersFromLinks(header) {
  if (!header) return [];
  const out = [];
  for (const part of header.split(/,(?=\s*<)/)) {
    const m = part.match(/<([^>]+)>/);
    if (!m || !/rel="?ice-server"?/.test(part)) continue;
    const server = { urls: m[1] };
    const user = part.match(/username="?([^";]+)"?/);
    const cred = part.match(/credential="?([^";]+)"?/);
    if (user) server.username = user[1];
    if (cred) server.credential = cred[1];
    out.push(server);
  }
  return out;
}

/**
 * A token handed over in the page's URL fragment (`#token=…`, e.g. an invite link): the
 * fragment never reaches the server or its logs. Returns { token, name }, the name read from
 * a JWT's claims when it has one (the server uses that name whatever the page sends).
 */
export function fragmentToken() {
  const token = new URLSearchParams(location.hash.slice(1)).get('token') || undefined;
  let name;
  try {
    const payload = token && token.split('.')[1];
    if (payload) name = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))).name;
  } catch (_) { /* a static token, not a JWT */ }
  return { token, name: typeof name === 'string' ? name : undefined };
}

/**
 * A peer connection configured with the ICE servers the endpoint hands out on OPTIONS
 * (RFC 9725 §4.6): TURN must be known before the offer is made, or no relay candidates are
 * gathered. `?relay=1` on the page forces relay-only ICE (a client behind a strict firewall,
 * or a test of the TURN path).
 */
export async function peerConnection(endpoint, token) {
  let iceServers = [];
  try {
    const res = await fetch(endpoint, { method: 'OPTIONS', headers: token ? { Authorization: `Bearer ${token}` } : {} });
    iceServers = iceServersFromLinks(res.headers.get('Link'));
  } catch (e) { console.warn(`OPTIONS ${endpoint}: ${e.message}`); }
  const relay = new URLSearchParams(location.search).get('relay') === '1';
  // max-bundle: one transport (and one TURN allocation) for every m-line; WHIP/WHEP require BUNDLE.
  return new RTCPeerConnection({ iceServers, iceTransportPolicy: relay ? 'relay' : 'all', bundlePolicy: 'max-bundle' });
}

/**
 * Adds `stream`'s tracks as send-only. Video is offered as simulcast when the browser takes
 * sendEncodings, so the server can give each viewer the layer that fits: rids q/h/f (1/4, 1/2,
 * full) from 720p up, h/f below (browsers drop the top layers of a small source, so three
 * layers of a 360p camera would leave out the full one). A browser that refuses gets one
 * plain encoding.
 */
export function addSendTracks(pc, stream, { simulcast = true, videoCodec = null } = {}) {
  for (const track of stream.getTracks()) {
    const init = { direction: 'sendonly', streams: [stream] };
    if (track.kind === 'video' && videoCodec) {
      // A chosen codec (e.g. ?codec=h264): offer only it, so the whole path uses it.
      const t = pc.addTransceiver(track, init);
      const want = `video/${videoCodec}`.toLowerCase();
      const caps = (RTCRtpSender.getCapabilities('video')?.codecs || [])
        .filter((c) => c.mimeType.toLowerCase() === want);
      if (!caps.length) throw new Error(`this browser cannot send ${videoCodec}`);
      t.setCodecPreferences(caps);
      continue;
    }
    if (track.kind === 'video' && simulcast) {
      const tall = (track.getSettings().height || 0) >= 720;
      const layers = [
        ...(tall ? [{ rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 }] : []),
        { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: tall ? 500_000 : 250_000 },
        { rid: 'f', maxBitrate: tall ? 1_500_000 : 800_000 },
      ];
      try {
        pc.addTransceiver(track, { ...init, sendEncodings: layers });
        continue;
      } catch (e) { console.warn(`no simulcast here: ${e.message}`); }
    }
    pc.addTransceiver(track, init);
  }
}

/**
 * One WHIP or WHEP session over an RTCPeerConnection. `keepIceServers`: leave the connection's
 * ICE servers as the caller set them, instead of replacing them with those of the answer's
 * `Link` headers (the self-test tests one way in at a time).
 */
export class Session {
  constructor(endpoint, { token, onState, keepIceServers = false, resume, headers } = {}) {
    this.endpoint = endpoint;
    this.token = token;
    // Extra request headers of the POST (e.g. X-Wisp-Screen-Of for a room's screen share).
    this.postHeaders = headers || {};
    // A WHIP session's resume secret: sent with the POST, a publisher coming back takes over
    // its participant (no one sees it leave); the 201 hands out the one to keep.
    this.resume = resume || null;
    this.onState = onState || (() => {});
    this.keepIceServers = keepIceServers;
    this.location = null;
    this.etag = null;
    this.participant = null;
  }

  headers(extra = {}) {
    const h = { ...extra };
    if (this.token) h.Authorization = `Bearer ${this.token}`;
    return h;
  }

  /**
   * Sends the offer at once and trickles the rest of the candidates with PATCH (If-Match: the
   * session's ETag), ending with a=end-of-candidates. ICE servers the server hands out in
   * `Link: rel="ice-server"` headers are applied to the connection (unless keepIceServers).
   */
  async start(pc) {
    this.pc = pc;
    pc.addEventListener('connectionstatechange', () => this.onState(pc.connectionState));
    const pending = this.pending = [];
    let flushing = null;
    pc.addEventListener('icecandidate', (e) => {
      // Firefox ends each generation with an empty candidate ('') before the final null:
      // that one is not a candidate line (the null below says end-of-candidates).
      if (e.candidate && !e.candidate.candidate) return;
      pending.push(e.candidate ? `a=candidate:${e.candidate.candidate.replace(/^candidate:/, '')}` : 'a=end-of-candidates');
      if (this.location && !flushing) flushing = Promise.resolve().then(() => { flushing = null; return this.trickle(pending); });
    });
    await pc.setLocalDescription(await pc.createOffer());
    const post = { ...this.postHeaders, 'Content-Type': SDP };
    if (this.resume) post['X-Wisp-Resume'] = this.resume;
    const res = await fetch(this.endpoint, {
      method: 'POST', headers: this.headers(post), body: pc.localDescription.sdp,
    });
    const text = await res.text();
    if (res.status !== 201) throw new Error(`${this.endpoint}: ${res.status} ${text.trim()}`);
    this.location = new URL(res.headers.get('Location'), new URL(this.endpoint, location.href)).toString();
    this.etag = res.headers.get('ETag');
    this.participant = res.headers.get('X-Wisp-Participant');
    this.resume = res.headers.get('X-Wisp-Resume') || this.resume;
    this.iceServers = iceServersFromLinks(res.headers.get('Link'));
    const sse = (res.headers.get('Link') || '').match(/<([^>]+)>;\s*rel="urn:ietf:params:whep:ext:core:server-sent-events"/);
    this.sseUrl = sse ? sse[1] : null;
    const layer = (res.headers.get('Link') || '').match(/<([^>]+)>;\s*rel="urn:ietf:params:whep:ext:core:layer"/);
    this.layerUrl = layer ? layer[1] : null;
    if (this.iceServers.length && !this.keepIceServers) pc.setConfiguration({ ...pc.getConfiguration(), iceServers: this.iceServers });
    await pc.setRemoteDescription({ type: 'answer', sdp: text });
    if (pending.length) await this.trickle(pending);
  }

  /** The session's id: the last path segment of its `Location` (null before the POST). */
  get id() {
    return this.location ? decodeURIComponent(new URL(this.location).pathname.split('/').pop()) : null;
  }

  /**
   * POSTs JSON to `path` under the session's URL (e.g. `state`), with the session's token.
   * Returns the response; throws only when there is no session or no network.
   */
  async postJson(path, body) {
    if (!this.location) throw new Error('no session');
    return fetch(`${this.location}/${path}`, {
      method: 'POST', headers: this.headers({ 'Content-Type': 'application/json' }), body: JSON.stringify(body),
    });
  }

  /** PATCHes the queued candidate lines as one sdpfrag (RFC 8840). */
  async trickle(queue) {
    // During an ICE restart the new candidates wait for the restart's own PATCH: sent first,
    // their new ufrag would be the restart, and the restart PATCH a mere trickle.
    if (!queue.length || !this.location || this.restarting) return;
    const lines = queue.splice(0);
    const sdp = this.pc.localDescription.sdp;
    const ufrag = sdp.match(/a=ice-ufrag:(.*)/)[1].trim();
    const pwd = sdp.match(/a=ice-pwd:(.*)/)[1].trim();
    const mid = (sdp.match(/a=mid:(.*)/) || [, '0'])[1].trim();
    const body = [`a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`, 'm=audio 9 UDP/TLS/RTP/SAVPF 0', `a=mid:${mid}`, ...lines].join('\r\n') + '\r\n';
    try {
      const res = await fetch(this.location, {
        method: 'PATCH', headers: this.headers({ 'Content-Type': FRAG, 'If-Match': this.etag || '*' }), body,
      });
      if (res.status !== 204) console.warn(`trickle PATCH answered ${res.status}`);
    } catch (e) { console.warn(`trickle PATCH failed: ${e.message}`); }
  }

  /** ICE restart through PATCH; falls back to the caller re-POSTing if it fails. */
  async restartIce() {
    this.restarting = true;
    try {
      await this.restartIceNow();
    } finally {
      this.restarting = false;
      if (this.pending?.length) await this.trickle(this.pending);
    }
  }

  async restartIceNow() {
    const pc = this.pc;
    const offer = await pc.createOffer({ iceRestart: true });
    await pc.setLocalDescription(offer);
    const ufrag = offer.sdp.match(/a=ice-ufrag:(.*)/)[1].trim();
    const pwd = offer.sdp.match(/a=ice-pwd:(.*)/)[1].trim();
    const res = await fetch(this.location, {
      method: 'PATCH',
      headers: this.headers({ 'Content-Type': FRAG, 'If-Match': '*' }),
      body: `a=ice-ufrag:${ufrag}\r\na=ice-pwd:${pwd}\r\n`,
    });
    if (res.status !== 200) throw new Error(`ICE restart refused: ${res.status}`);
    this.etag = res.headers.get('ETag');
    const frag = await res.text();
    const sufrag = frag.match(/a=ice-ufrag:(.*)/)[1].trim();
    const spwd = frag.match(/a=ice-pwd:(.*)/)[1].trim();
    const cands = [...frag.matchAll(/a=candidate:.*/g)].map((m) => m[0]);
    let answer = pc.remoteDescription.sdp
      .replace(/a=ice-ufrag:.*\r\n/g, `a=ice-ufrag:${sufrag}\r\n`)
      .replace(/a=ice-pwd:.*\r\n/g, `a=ice-pwd:${spwd}\r\n`)
      .replace(/a=candidate:.*\r\n/g, '');
    answer = answer.replace(/(a=mid:.*\r\n)/, `$1${cands.map((c) => c + '\r\n').join('')}`);
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  }

  /**
   * WHEP layer selection: `pref` is `{}` (the server's choice), `{ rid }` or `{ maxHeight }`
   * for the video m-line at index `mediaId`; `participant` beside them pins that participant
   * for this session (`""` clears the pin).
   */
  async selectLayer(mediaId, pref) {
    if (!this.layerUrl) return false;
    const res = await fetch(new URL(this.layerUrl, this.location), {
      method: 'POST', headers: this.headers({ 'Content-Type': 'application/json' }),
      body: JSON.stringify({ mediaId: String(mediaId), ...pref }),
    });
    if (res.status !== 200) console.warn(`layer selection answered ${res.status}: ${await res.text()}`);
    return res.status === 200;
  }

  /** Drops the connection without ending the session (a publisher about to come back). */
  abandon() {
    this.location = null;
    if (this.pc) this.pc.close();
  }

  async stop() {
    if (this.location) {
      try { await fetch(this.location, { method: 'DELETE', headers: this.headers() }); } catch (_) { /* leaving anyway */ }
    }
    this.location = null;
    if (this.pc) this.pc.close();
  }
}
