//! One recording: a tap's packets to a file, fragment by fragment.
//!
//! Packets become frames (`container::assemble`, waiting [`REPAIR_WAIT`] for a NACK repair),
//! samples, and runs on the file's clock (`container::timeline`). The header is written once
//! [`WARM_UP`] has passed (both tracks have shown their path delay and the video its
//! parameter sets); then a fragment (MP4) or cluster (WebM) every [`FRAGMENT`], each written
//! whole, so a file is playable up to its last fragment even after `kill -9`.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::container::depack::Codec;
use crate::container::fmp4::{self, FragTrack, TrackInfo};
use crate::container::webm::{self, WebmTrack};
use crate::container::{self, Ingest};
use crate::lock::Locked;
use crate::sfu::{Tap, Tapped};
use crate::signal::MediaKind;

/// How long a hole waits for its repair before the frame is given up.
pub const REPAIR_WAIT: Duration = Duration::from_millis(300);
/// How long after its first packet a file's header is written.
pub const WARM_UP: Duration = Duration::from_millis(1500);
/// How much media each fragment holds.
pub const FRAGMENT: Duration = Duration::from_secs(1);
/// How long the header waits for the publisher's sender reports (browsers send one a second;
/// GStreamer its first after about 2.5 s), to put audio and video on the publisher's clock;
/// without them the tracks are aligned by arrival.
const SENDER_REPORT_WAIT: Duration = Duration::from_secs(6);
/// A video track still without its H.264 parameter sets this long after the first packet is
/// left out of the file (and a keyframe asked for meanwhile).
const PARAMETER_SETS_WAIT: Duration = Duration::from_secs(5);

enum Writer {
    Mp4 {
        seq: u32,
    },
    /// Where the duration goes when the file ends, and the end of what is written so far.
    Webm {
        duration_at: u64,
        end_ms: f64,
    },
}

struct Recording {
    tap: Tap,
    /// Audio, video.
    tracks: [Option<Ingest>; 2],
    epoch: Instant,
    first: Option<Instant>,
    /// Set once the header is out: the file, its writer, and which kinds are in it.
    out: Option<(std::fs::File, Writer, [bool; 2])>,
    origin: f64,
    dir: PathBuf,
    stem: String,
    path: Option<PathBuf>,
    failed: bool,
    warned_codec: bool,
}

pub(super) async fn record(
    tap: Tap,
    dir: PathBuf,
    stem: String,
    mut stopped: oneshot::Receiver<()>,
    active: Arc<Mutex<HashSet<PathBuf>>>,
) {
    let mut r = Recording {
        tap,
        tracks: [None, None],
        epoch: Instant::now(),
        first: None,
        out: None,
        origin: 0.0,
        dir,
        stem,
        path: None,
        failed: false,
        warned_codec: false,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut last_flush = Instant::now();
    loop {
        tokio::select! {
            p = r.tap.rx.recv() => match p {
                Some(p) => r.packet(p),
                None => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                r.poll(now);
                if now.duration_since(last_flush) >= FRAGMENT {
                    last_flush = now;
                    r.flush(false, &active);
                }
            }
            _ = &mut stopped => break,
        }
        if r.failed {
            break;
        }
    }
    r.poll(Instant::now() + REPAIR_WAIT);
    r.flush(true, &active);
    if let Some(p) = &r.path {
        active.locked().remove(p);
        tracing::info!(file = %p.display(), "recording ended");
    }
}

impl Recording {
    fn packet(&mut self, t: Tapped) {
        let now = Instant::now();
        self.first.get_or_insert(now);
        let k = (t.kind == MediaKind::Video) as usize;
        let Some(codec) = Codec::of(&t.codec) else {
            return;
        };
        let track = self.tracks[k]
            .get_or_insert_with(|| Ingest::new(codec, t.codec.channels, k as u32 + 1, REPAIR_WAIT));
        if track.codec != codec {
            if !self.warned_codec {
                tracing::warn!(
                    ?codec,
                    "the publisher changed codec mid-recording; left out"
                );
                self.warned_codec = true;
            }
            return;
        }
        let arrival = now.duration_since(self.epoch).as_secs_f64();
        if track.packet(now, arrival, t.pkt) {
            self.tap.request_keyframe();
        }
    }

    fn poll(&mut self, now: Instant) {
        let mut want = false;
        for (k, track) in self.tracks.iter_mut().enumerate() {
            let Some(track) = track else { continue };
            want |= track.poll(now);
            let kind = if k == 1 {
                MediaKind::Video
            } else {
                MediaKind::Audio
            };
            track.note_sender_report(self.tap.sender_report(kind));
        }
        if want {
            self.tap.request_keyframe();
        }
    }

    /// Writes the header once it can, then what is pending.
    fn flush(&mut self, last: bool, active: &Mutex<HashSet<PathBuf>>) {
        if self.out.is_none() && !self.open(last, active) {
            return;
        }
        let Some((file, writer, kinds)) = self.out.as_mut() else {
            return;
        };
        let mut runs = Vec::new();
        for (k, track) in self.tracks.iter_mut().enumerate() {
            let Some(t) = track.as_mut() else { continue };
            let n = t.lane.pending();
            let run = t.lane.take(self.origin, n, last || !kinds[k]);
            // A track that came after the header has no place in the file.
            if let Some(run) = run.filter(|_| kinds[k]) {
                runs.push((run, t.lane.rate));
            }
        }
        if runs.is_empty() {
            return;
        }
        let bytes = match writer {
            Writer::Mp4 { seq } => {
                *seq += 1;
                let runs: Vec<FragTrack> = runs.into_iter().map(|(r, _)| r).collect();
                fmp4::fragment(*seq, &runs).map_err(|e| e.to_string())
            }
            Writer::Webm { end_ms, .. } => {
                for (r, rate) in &runs {
                    let d: u64 = r.samples.iter().map(|s| s.duration as u64).sum();
                    let end = (r.decode_time + d) as f64 * 1000.0 / (*rate).max(1) as f64;
                    *end_ms = end_ms.max(end);
                }
                webm::cluster(&runs).ok_or_else(|| "no blocks".to_string())
            }
        };
        let written = bytes.and_then(|b| file.write_all(&b).map_err(|e| e.to_string()));
        if let Err(e) = written {
            tracing::error!(file = ?self.path, "recording stopped: {e}");
            self.failed = true;
        }
        if last
            && let Writer::Webm {
                duration_at,
                end_ms,
            } = writer
        {
            // The segment's duration, now that it is known (players show and seek with it).
            use std::io::{Seek, SeekFrom};
            let patched = file
                .seek(SeekFrom::Start(*duration_at))
                .and_then(|_| file.write_all(&webm::duration(*end_ms)));
            if let Err(e) = patched {
                tracing::warn!(file = ?self.path, "duration not written: {e}");
            }
        }
    }

    /// Creates the file and writes its header; false while it is too early.
    fn open(&mut self, last: bool, active: &Mutex<HashSet<PathBuf>>) -> bool {
        let Some(first) = self.first else {
            return false;
        };
        let waited = first.elapsed();
        if !last && waited < WARM_UP {
            return false;
        }
        let mut kinds = [false; 2];
        for (k, t) in self.tracks.iter().enumerate() {
            let Some(t) = t else { continue };
            let ready = t.lane.pending() > 0 && t.describable();
            kinds[k] = ready;
            if t.codec == Codec::H264 && !ready && t.lane.pending() > 0 {
                if waited < PARAMETER_SETS_WAIT && !last {
                    self.tap.request_keyframe();
                    return false;
                }
                tracing::warn!("H.264 without SPS/PPS in band: video left out of the recording");
            }
        }
        if kinds == [false, false] {
            return false;
        }
        let may_wait = !last && waited < SENDER_REPORT_WAIT;
        let Some(synced) = container::start_clock(&mut self.tracks, kinds, may_wait) else {
            return false;
        };
        let origin = self
            .tracks
            .iter()
            .enumerate()
            .filter(|(k, _)| kinds[*k])
            .filter_map(|(_, t)| t.as_ref()?.lane.first_time())
            .fold(f64::INFINITY, f64::min);
        self.origin = if origin.is_finite() { origin } else { 0.0 };
        let video = self.tracks[1].as_ref().filter(|_| kinds[1]);
        let webm = video.is_some_and(|v| v.codec == Codec::Vp8);
        let (header, writer, ext) = if webm {
            let tracks: Vec<WebmTrack> = self
                .tracks
                .iter()
                .enumerate()
                .filter(|(k, _)| kinds[*k])
                .filter_map(|(k, t)| {
                    let t = t.as_ref()?;
                    Some(WebmTrack {
                        number: k as u64 + 1,
                        codec: t.codec,
                        dims: t.depack.dims,
                        channels: t.channels,
                    })
                })
                .collect();
            let (h, at) = webm::header(&tracks);
            let w = Writer::Webm {
                duration_at: at as u64,
                end_ms: 0.0,
            };
            (Ok(h), w, "webm")
        } else {
            let tracks: Vec<TrackInfo> = self
                .tracks
                .iter()
                .enumerate()
                .filter(|(k, _)| kinds[*k])
                .filter_map(|(_, t)| Some(t.as_ref()?.fmp4_info()))
                .collect();
            (fmp4::init_segment(&tracks), Writer::Mp4 { seq: 0 }, "mp4")
        };
        let path = self.dir.join(format!("{}.{ext}", self.stem));
        let opened = header.map_err(|e| e.to_string()).and_then(|h| {
            std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
            let mut f = std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(&path)
                .map_err(|e| e.to_string())?;
            f.write_all(&h).map_err(|e| e.to_string())?;
            Ok(f)
        });
        match opened {
            Ok(f) => {
                active.locked().insert(path.clone());
                let sync = if synced {
                    "the publisher's sender reports"
                } else {
                    "arrival"
                };
                tracing::info!(file = %path.display(), "recording to (audio/video aligned by {sync})");
                self.path = Some(path);
                self.out = Some((f, writer, kinds));
                true
            }
            Err(e) => {
                tracing::error!(file = %path.display(), "cannot record: {e}");
                self.failed = true;
                false
            }
        }
    }
}
