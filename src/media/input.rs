//! A publisher track's packets entering media: the fan-out, and for audio the track's voice
//! activity detector. This is what the rtc reader task hands every packet to.
//!
//! The detector runs on the reader task (it is per track, so its lock is never contended) and
//! reports each closed interval — speaking or not, and its loudness — through `report`, which
//! must not wait (the room takes it from a bounded queue and may drop one: the next interval
//! repeats the state). Intervals without packets (DTX silence, a muted track) close when the
//! next packet comes; the room's planner treats reports that stop as silence.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::lock::Locked;
use crate::media::TrackFanout;
use crate::media::vad::{Vad, VadConfig};
use crate::rtc::{RtpPacket, RtpSink};

/// One closed voice-activity interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Voice {
    pub speaking: bool,
    /// 0–127, higher is louder.
    pub loudness: u8,
}

/// The audio-level reading of one audio track.
pub struct VoiceInput {
    /// The negotiated RFC 6464 header extension id.
    pub ext_id: u8,
    vad: Mutex<Vad>,
    report: Box<dyn Fn(Voice) + Send + Sync>,
}

impl VoiceInput {
    pub fn new(ext_id: u8, cfg: VadConfig, report: Box<dyn Fn(Voice) + Send + Sync>) -> Self {
        VoiceInput {
            ext_id,
            vad: Mutex::new(Vad::new(cfg)),
            report,
        }
    }

    /// One packet's level (RFC 6464: 0 loudest … 127 silence).
    pub fn observe(&self, now: Instant, level: u8) {
        let closed = {
            let mut vad = self.vad.locked();
            let before = vad.intervals();
            vad.observe(now, level);
            (vad.intervals() != before).then(|| Voice {
                speaking: vad.speaking(),
                loudness: vad.loudness,
            })
        };
        if let Some(v) = closed {
            (self.report)(v);
        }
    }
}

/// What the reader task feeds: the track's fan-out, its voice detector, and who to tell when
/// the track ends.
pub struct TrackInput {
    pub fanout: Arc<TrackFanout>,
    pub voice: Option<VoiceInput>,
    pub ended: Box<dyn Fn() + Send + Sync>,
}

impl RtpSink for TrackInput {
    fn on_rtp(&self, pkt: RtpPacket) {
        if let Some(voice) = &self.voice
            && let Some(ext) = pkt.header.get_extension(voice.ext_id)
            && let Some(&b) = ext.first()
        {
            voice.observe(Instant::now(), b & 0x7f);
        }
        self.fanout.forward(pkt);
    }

    fn on_sender_report(&self, ntp: u64, rtp: u32) {
        self.fanout.upstream.note_sender_report(ntp, rtp);
    }

    fn on_end(&self) {
        (self.ended)();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reports_each_closed_interval_with_its_state() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let v = VoiceInput::new(
            1,
            VadConfig::default(),
            Box::new(move |x| sink.lock().unwrap().push(x)),
        );
        let t = Instant::now();
        // 500 ms of loud packets, then one packet in the next interval closes it.
        for i in 0..25 {
            v.observe(t + Duration::from_millis(i * 20), 10);
        }
        assert!(got.lock().unwrap().is_empty(), "nothing closed yet");
        v.observe(t + Duration::from_millis(500), 10);
        assert_eq!(
            *got.lock().unwrap(),
            vec![Voice {
                speaking: true,
                loudness: 117
            }]
        );
        // A second without packets, then a quiet one: the intervals that closed meanwhile
        // give one report (still speaking: one inactive interval is not enough) ...
        v.observe(t + Duration::from_millis(1600), 120);
        assert_eq!(got.lock().unwrap().len(), 2);
        assert!(got.lock().unwrap()[1].speaking);
        // ... and the next closed interval turns speaking off (two inactive ones).
        v.observe(t + Duration::from_millis(2100), 120);
        let all = got.lock().unwrap().clone();
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(!all[2].speaking, "off after two inactive intervals");
    }
}
