// Cameras, microphones and speakers: opening them with what the user chose, saying in words
// what went wrong when the browser refuses, listing them into <select>s, a live microphone
// level, and the choices remembered in localStorage (this browser only; nothing is sent).

const KEY = 'wisp-prefs';

/** The remembered choices: { camera, mic, speaker, muted, noCamera, name }. */
export function loadPrefs() {
  try {
    const p = JSON.parse(localStorage.getItem(KEY) || '{}');
    return p && typeof p === 'object' ? p : {};
  } catch (_) { return {}; }
}

export function savePrefs(patch) {
  const p = { ...loadPrefs(), ...patch };
  try { localStorage.setItem(KEY, JSON.stringify(p)); } catch (_) { /* private mode: not remembered */ }
  return p;
}

/**
 * What a getUserMedia failure means to the person in front of the page, in words; `retry` says
 * how to try again where they are.
 */
export function describeError(e, what = 'camera and microphone', retry = 'press “Try again”') {
  const them = what.includes(' and ') ? 'them' : 'it';
  switch (e?.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
      return `The browser blocked the ${what}. Allow ${them} for this site (the camera icon in the address bar), then ${retry}.`;
    case 'NotFoundError':
    case 'DevicesNotFoundError':
      return `No ${what} found. Plug one in, then ${retry}.`;
    case 'NotReadableError':
    case 'TrackStartError':
      return `The ${what} could not be started: another app may be using ${them}, or the system blocked ${them}.`;
    case 'OverconstrainedError':
      return `The chosen ${what} is no longer there. Pick another one.`;
    case 'SecurityError':
      return `The ${what} can only be used on a secure page (https or localhost).`;
    case 'AbortError':
      return `The ${what} stopped while starting: ${retry}.`;
    default:
      return `The ${what} could not be opened: ${e?.message || e}`;
  }
}

/**
 * The sentence for what `failed` ({ audio?, video? }: the errors of openMedia) left out, with
 * `retry` as the way to try again; '' when nothing failed.
 */
export function describeFailures(failed, retry) {
  const { audio, video } = failed || {};
  if (audio && video && audio.name === video.name) return describeError(video, 'camera and microphone', retry);
  return [video && describeError(video, 'camera', retry), audio && describeError(audio, 'microphone', retry)].filter(Boolean).join(' ');
}

/**
 * Video constraints of the page: 640×360 (the room's tiles), the chosen camera if any. The
 * device is asked for `exact`ly (Chromium does not honour an `ideal` microphone); getMedia()
 * falls back to any device when the chosen one is gone.
 */
export function videoConstraints(deviceId) {
  return { width: 640, height: 360, ...(deviceId ? { deviceId: { exact: deviceId } } : {}) };
}

export function audioConstraints(deviceId) {
  return deviceId ? { deviceId: { exact: deviceId } } : true;
}

const anyDevice = (c) => {
  if (!c || c === true) return c;
  const { deviceId, ...rest } = c;
  return Object.keys(rest).length ? rest : true;
};

/** getUserMedia, retried without the chosen devices when they are no longer there. */
export async function getMedia(want) {
  try {
    return await navigator.mediaDevices.getUserMedia(want);
  } catch (e) {
    if (e.name !== 'OverconstrainedError' && e.name !== 'NotFoundError') throw e;
    return navigator.mediaDevices.getUserMedia({ audio: anyDevice(want.audio), video: anyDevice(want.video) });
  }
}

/**
 * Opens the microphone and (unless `camera === false`) the camera. When both together fail,
 * each is tried alone, so a person whose camera is refused can still join with the
 * microphone. Returns { stream, failed: { audio?, video? } } (the errors; describeFailures()
 * puts them in words).
 */
export async function openMedia({ camera, mic, video = true, audio = true } = {}) {
  const failed = {};
  if (!navigator.mediaDevices?.getUserMedia) {
    const e = { name: 'SecurityError' };
    return { stream: new MediaStream(), failed: { audio: audio ? e : undefined, video: video ? e : undefined } };
  }
  const want = { audio: audio ? audioConstraints(mic) : false, video: video ? videoConstraints(camera) : false };
  if (!want.audio && !want.video) return { stream: new MediaStream(), failed };
  try {
    return { stream: await getMedia(want), failed };
  } catch (e) {
    if (!(want.audio && want.video)) {
      failed[want.audio ? 'audio' : 'video'] = e;
      return { stream: new MediaStream(), failed };
    }
  }
  const stream = new MediaStream();
  for (const kind of ['audio', 'video']) {
    try {
      const s = await getMedia({ [kind]: want[kind] });
      s.getTracks().forEach((t) => stream.addTrack(t));
    } catch (e) { failed[kind] = e; }
  }
  return { stream, failed };
}

/** The devices by kind (labels are empty until the page has been allowed a device once). */
export async function listDevices() {
  const out = { videoinput: [], audioinput: [], audiooutput: [] };
  try {
    for (const d of await navigator.mediaDevices.enumerateDevices()) out[d.kind]?.push(d);
  } catch (_) { /* no mediaDevices */ }
  return out;
}

const NAMES = { videoinput: 'Camera', audioinput: 'Microphone', audiooutput: 'Speaker' };

/** Fills `select` with `devices`, selecting `chosen` (or the one in use) when present. */
export function fillSelect(select, devices, chosen) {
  select.replaceChildren();
  devices.forEach((d, i) => {
    const o = document.createElement('option');
    o.value = d.deviceId;
    o.textContent = d.label || `${NAMES[d.kind] || d.kind} ${i + 1}`;
    select.appendChild(o);
  });
  if (chosen && devices.some((d) => d.deviceId === chosen)) select.value = chosen;
  select.disabled = devices.length === 0;
}

/** Whether this browser can choose the speaker (HTMLMediaElement.setSinkId). */
export const canChooseSpeaker = typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;

/** Sends `el`'s sound to the speaker `id` where the browser can; never throws. */
export async function applySpeaker(el, id) {
  if (!canChooseSpeaker || !id) return;
  try { await el.setSinkId(id); } catch (e) { console.warn(`speaker ${id}: ${e.message}`); }
}

/**
 * A live level of `stream`'s microphone, 0..1, reported about 15 times a second to `onLevel`.
 * Returns a stop function. A suspended AudioContext (no user gesture yet) resumes on the
 * first click or key press.
 */
export function levelMeter(stream, onLevel) {
  const track = stream.getAudioTracks()[0];
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!track || !Ctx) { onLevel(0); return () => {}; }
  const ctx = new Ctx();
  const source = ctx.createMediaStreamSource(new MediaStream([track]));
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  source.connect(analyser);
  const buf = new Float32Array(analyser.fftSize);
  const resume = () => { ctx.resume().catch(() => {}); };
  resume();
  addEventListener('pointerdown', resume, { once: true });
  addEventListener('keydown', resume, { once: true });
  let level = 0;
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const x of buf) sum += x * x;
    const rms = Math.sqrt(sum / buf.length);
    // -60 dBFS .. 0 dBFS onto 0..1, quick to rise, slower to fall.
    const db = 20 * Math.log10(rms || 1e-6);
    const v = Math.min(1, Math.max(0, (db + 60) / 60));
    level = v > level ? v : level * 0.8 + v * 0.2;
    // The second argument says whether the browser lets audio run at all (an AudioContext
    // stays suspended until a click on some browsers, or for good without a sound device).
    onLevel(track.enabled ? level : 0, ctx.state === 'running');
  }, 66);
  return () => { clearInterval(timer); source.disconnect(); ctx.close().catch(() => {}); };
}
