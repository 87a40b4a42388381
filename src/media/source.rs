//! What a viewer slot knows of the track it shows: its id, its codec, and how to ask its
//! publisher for a keyframe (throttled per track, however many viewers ask). The fan-out owns
//! one; a slot holds it while attached.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::media::SourceId;
use crate::signal::{CodecSpec, MediaKind};

/// Keyframe requests to one publisher track are sent at most this often (aggregated over all
/// viewers that asked).
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);

pub struct Upstream {
    pub id: SourceId,
    pub kind: MediaKind,
    pub codec: CodecSpec,
    /// Sends a PLI to the publisher; provided by `rtc/`.
    request: Box<dyn Fn() + Send + Sync>,
    epoch: Instant,
    /// Milliseconds since `epoch` of the last upstream keyframe request, plus one (0 = never).
    last_request_ms: AtomicU64,
    /// Keyframe requests actually sent upstream.
    pub keyframe_requests_sent: AtomicU64,
    /// The publisher's last RTCP sender report for this stream: (NTP, RTP) timestamps.
    sender_report: std::sync::Mutex<Option<(u64, u32)>>,
}

impl Upstream {
    pub fn new(
        id: SourceId,
        kind: MediaKind,
        codec: CodecSpec,
        request: Box<dyn Fn() + Send + Sync>,
    ) -> Upstream {
        Upstream {
            id,
            kind,
            codec,
            request,
            epoch: Instant::now(),
            last_request_ms: AtomicU64::new(0),
            keyframe_requests_sent: AtomicU64::new(0),
            sender_report: Default::default(),
        }
    }

    /// Notes the publisher's sender report for this stream.
    pub fn note_sender_report(&self, ntp: u64, rtp: u32) {
        use crate::lock::Locked;
        *self.sender_report.locked() = Some((ntp, rtp));
    }

    /// The publisher's last sender report for this stream: (NTP, RTP) timestamps.
    pub fn sender_report(&self) -> Option<(u64, u32)> {
        use crate::lock::Locked;
        *self.sender_report.locked()
    }

    /// Asks the publisher for a keyframe, at most once per [`KEYFRAME_REQUEST_INTERVAL`].
    pub fn request_keyframe(&self) {
        if self.kind != MediaKind::Video {
            return;
        }
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        let last = self.last_request_ms.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < KEYFRAME_REQUEST_INTERVAL.as_millis() as u64 {
            return;
        }
        if self
            .last_request_ms
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.keyframe_requests_sent.fetch_add(1, Ordering::Relaxed);
            (self.request)();
        }
    }
}
