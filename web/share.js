// Screen sharing in a room: a second WHIP publication of the same person, tied to it by
// `X-Wisp-Screen-Of: <the person's WHIP session id>` (the room then knows it is that person's
// screen, gives it a slot before anyone else and ends it with the person's session). The
// browser's own "Stop sharing" bar ends the track: its `ended` event DELETEs the session.
import { Session, addSendTracks, peerConnection } from '/web/whip.js';

/** Whether this browser can share a screen at all (phones mostly cannot). */
export const canShareScreen = !!navigator.mediaDevices?.getDisplayMedia;

/**
 * Asks the browser for a screen (call it from a click: browsers want a user gesture) and
 * publishes it. Returns { stream, session, stop() } or null when the person cancelled the
 * picker. `onEnded()` runs once when the share ends for any reason (stop(), the browser's
 * stop bar, the connection lost).
 */
export async function shareScreen({ room, name, token, ownerSession, onEnded }) {
  let stream;
  try {
    stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
  } catch (e) {
    if (e.name === 'NotAllowedError' || e.name === 'AbortError') return null; // cancelled
    throw new Error(`The screen could not be shared: ${e.message}`);
  }
  const track = stream.getVideoTracks()[0];
  if ('contentHint' in track) track.contentHint = 'detail'; // text stays sharp, frames may drop
  const endpoint = `/whip/${encodeURIComponent(room)}?name=${encodeURIComponent(name)}`;
  let ended = false;
  let session;
  const stop = async () => {
    if (ended) return;
    ended = true;
    track.removeEventListener('ended', stop);
    stream.getTracks().forEach((t) => t.stop());
    await session?.stop();
    onEnded();
  };
  // The browser's "Stop sharing" (and the window shared being closed) end the track.
  track.addEventListener('ended', stop);
  try {
    const pc = await peerConnection(endpoint, token);
    addSendTracks(pc, stream, { simulcast: false });
    session = new Session(endpoint, {
      token,
      headers: { 'X-Wisp-Screen-Of': ownerSession.id },
      onState: (s) => { if (s === 'failed') stop(); },
    });
    await session.start(pc);
  } catch (e) {
    await stop();
    throw new Error(`The screen could not be shared: ${e.message}`);
  }
  return { stream, session, stop };
}
