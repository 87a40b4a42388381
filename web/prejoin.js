// The pre-join screen: a camera preview, a live microphone level, camera / microphone /
// speaker pickers, "join muted" and "join without camera", what is wrong in words when the
// browser refuses a device, and all of it remembered in localStorage for next time.
import {
  applySpeaker, canChooseSpeaker, describeFailures, fillSelect, levelMeter, listDevices, loadPrefs, openMedia,
  savePrefs,
} from '/web/devices.js';

const $ = (id) => document.getElementById(id);

/**
 * Starts the preview. Returns { take(), stop() }: `take()` hands the preview's stream and the
 * choices to the room ({ stream, muted, noCamera, speaker, failed }) and stops the meter;
 * `stop()` releases everything (the page is leaving).
 */
export function prejoin() {
  let prefs = loadPrefs();
  let stream = new MediaStream();
  let stopMeter = () => {};
  let failed = {}; // what could not be opened: { audio?, video? } errors
  let opening = Promise.resolve();
  const video = $('preview');
  $('join-muted').checked = !!prefs.muted;
  $('join-nocam').checked = !!prefs.noCamera;
  $('pj-speaker-row').hidden = !canChooseSpeaker;

  const showErrors = () => {
    $('device-error').textContent = describeFailures(failed, 'press “Try again”');
    $('retry').hidden = !failed.audio && !failed.video;
  };
  const showPreview = () => {
    const cam = stream.getVideoTracks()[0];
    video.srcObject = cam ? stream : null;
    const off = !cam;
    $('preview-off').hidden = !off;
    $('preview-off').textContent = $('join-nocam').checked ? 'Camera off' : failed.video ? 'No camera' : 'Camera off';
    stopMeter();
    const bar = $('level').firstElementChild;
    stopMeter = levelMeter(stream, (v, running = true) => {
      // A meter that cannot run says so instead of reading as silence.
      const label = running ? 'Microphone level' : 'Microphone level (audio is not running: click the page)';
      if ($('level-label').textContent !== label) $('level-label').textContent = label;
      const shown = $('join-muted').checked ? 0 : v;
      bar.style.transform = `scaleX(${shown.toFixed(3)})`;
      $('level').setAttribute('aria-valuenow', String(Math.round(shown * 100)));
    });
  };
  const refreshLists = async () => {
    const d = await listDevices();
    const inUse = (kind) => stream.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId;
    fillSelect($('pj-camera'), d.videoinput, inUse('video') || prefs.camera);
    fillSelect($('pj-mic'), d.audioinput, inUse('audio') || prefs.mic);
    fillSelect($('pj-speaker'), d.audiooutput, prefs.speaker);
  };
  // (Re)opens what is wanted: `kinds` a subset of ['audio', 'video'].
  const open = (kinds) => {
    opening = opening.then(async () => {
      const noCam = $('join-nocam').checked;
      for (const t of stream.getTracks().filter((x) => kinds.includes(x.kind))) { t.stop(); stream.removeTrack(t); }
      for (const k of kinds) delete failed[k];
      const got = await openMedia({
        camera: prefs.camera, mic: prefs.mic,
        video: kinds.includes('video') && !noCam, audio: kinds.includes('audio'),
      });
      got.stream.getTracks().forEach((t) => stream.addTrack(t));
      failed = { ...failed, ...got.failed };
      showErrors();
      showPreview();
      await refreshLists();
    }).catch((e) => console.warn(`preview: ${e.message}`));
    return opening;
  };

  $('pj-camera').addEventListener('change', (e) => { prefs = savePrefs({ camera: e.target.value }); open(['video']); });
  $('pj-mic').addEventListener('change', (e) => { prefs = savePrefs({ mic: e.target.value }); open(['audio']); });
  $('pj-speaker').addEventListener('change', (e) => { prefs = savePrefs({ speaker: e.target.value }); });
  $('join-muted').addEventListener('change', (e) => { prefs = savePrefs({ muted: e.target.checked }); });
  $('join-nocam').addEventListener('change', (e) => { prefs = savePrefs({ noCamera: e.target.checked }); open(['video']); });
  $('retry').addEventListener('click', () => open(['audio', 'video']));
  $('test-speaker').addEventListener('click', () => playTone($('pj-speaker').value));
  open(['audio', 'video']);
  // Devices plugged in or out while the page is open.
  navigator.mediaDevices?.addEventListener?.('devicechange', refreshLists);

  return {
    async take() {
      await opening;
      stopMeter();
      navigator.mediaDevices?.removeEventListener?.('devicechange', refreshLists);
      video.srcObject = null;
      const taken = stream;
      stream = new MediaStream();
      return {
        stream: taken, muted: $('join-muted').checked, noCamera: $('join-nocam').checked,
        speaker: $('pj-speaker').value || prefs.speaker || '', failed,
      };
    },
    stop() { stopMeter(); stream.getTracks().forEach((t) => t.stop()); },
  };
}

/** A short tone on the speaker `id`, so the person hears which one it is. */
function playTone(id) {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return;
  const ctx = new Ctx();
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  const out = ctx.createMediaStreamDestination();
  osc.frequency.value = 660;
  gain.gain.setValueAtTime(0.2, ctx.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.6);
  osc.connect(gain).connect(out);
  const el = new Audio();
  el.srcObject = out.stream;
  applySpeaker(el, id).then(() => el.play()).catch(() => {});
  osc.start();
  osc.stop(ctx.currentTime + 0.6);
  osc.onended = () => { el.srcObject = null; ctx.close().catch(() => {}); };
}
