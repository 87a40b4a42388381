//! The fan-out and a slot together, across network dropouts: a viewer whose connection shut
//! (ICE disconnected) resyncs on a keyframe and asks for one when it opens again; video that
//! resumes after a gap asks the publisher for a keyframe at once. And which viewers get RED.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::sink::{Shape, send_as};
use super::{SlotOutput, SlotSink, TrackFanout};
use crate::rtc::{RtpPacket, Sent};
use crate::signal::red::{opus_codec, red_codec};
use crate::signal::{CodecSpec, MediaKind};

fn vp8() -> CodecSpec {
    CodecSpec {
        mime_type: "video/VP8".into(),
        clock_rate: 90000,
        channels: 0,
        fmtp: String::new(),
    }
}

/// Frame `n` as one VP8 packet (payload: descriptor, frame tag, then `n`).
fn frame(n: u16, key: bool) -> RtpPacket {
    let tag = if key { 0x00 } else { 0x01 };
    let [a, b] = n.to_be_bytes();
    RtpPacket {
        header: rtc::rtp::header::Header {
            version: 2,
            marker: true,
            payload_type: 96,
            sequence_number: n,
            timestamp: u32::from(n) * 3000,
            ssrc: 7,
            ..Default::default()
        },
        payload: Bytes::from(vec![0x10, tag, a, b]),
    }
}

/// A viewer connection that can be shut, recording the frames it took.
#[derive(Default)]
struct Link {
    shut: AtomicBool,
    frames: Mutex<Vec<u16>>,
}

impl SlotOutput for Link {
    fn kind(&self) -> MediaKind {
        MediaKind::Video
    }
    fn mid(&self) -> &str {
        "1"
    }
    fn ssrc(&self) -> u32 {
        9
    }
    fn payload_type_for(&self, _: &CodecSpec) -> Option<u8> {
        Some(96)
    }
    fn describe(&self) -> String {
        String::new()
    }
    fn codecs(&self) -> Vec<CodecSpec> {
        vec![vp8()]
    }
    async fn write(&self, _: RtpPacket) -> bool {
        unreachable!("written in place")
    }
    fn writes_at_once(&self) -> bool {
        true
    }
    fn is_open(&self) -> bool {
        !self.shut.load(Ordering::Relaxed)
    }
    fn write_now(&self, pkt: RtpPacket, _kept: crate::rtc::repair::Kept) -> Sent {
        if !self.is_open() {
            return Sent::Refused;
        }
        let p = &pkt.payload;
        self.frames
            .lock()
            .unwrap()
            .push(u16::from_be_bytes([p[2], p[3]]));
        Sent::Ok
    }
    async fn next_feedback(&self) -> Option<Vec<crate::rtc::feedback::Feedback>> {
        None
    }
}

struct Rig {
    fanout: Arc<TrackFanout>,
    link: Arc<Link>,
    requests: Arc<AtomicU64>,
    _sink: Arc<SlotSink>,
}

fn rig() -> Rig {
    let requests = Arc::new(AtomicU64::new(0));
    let counted = requests.clone();
    let fanout = TrackFanout::new(
        MediaKind::Video,
        vp8(),
        None,
        Box::new(move || {
            counted.fetch_add(1, Ordering::Relaxed);
        }),
    );
    // The publisher's first keyframe is cached before the viewer comes: it starts from the
    // cache, and every keyframe request counted below is one the tests cause.
    fanout.forward(frame(1, true));
    let link = Arc::new(Link::default());
    let sink = SlotSink::spawn(link.clone());
    sink.set_source(Some(fanout.upstream.clone()));
    fanout.attach(&sink);
    Rig {
        fanout,
        link,
        requests,
        _sink: sink,
    }
}

#[tokio::test]
async fn a_viewer_whose_link_shut_waits_for_a_keyframe_and_asks_for_one() {
    let r = rig();
    r.fanout.forward(frame(2, false));
    r.link.shut.store(true, Ordering::Relaxed);
    for n in 3..=6 {
        r.fanout.forward(frame(n, false));
    }
    let asked_while_shut = r.requests.load(Ordering::Relaxed);
    assert_eq!(
        asked_while_shut, 0,
        "nothing is asked for a viewer that cannot take it"
    );
    r.link.shut.store(false, Ordering::Relaxed);
    // Frame 7 depends on what the viewer missed: held back, and a keyframe is asked for.
    r.fanout.forward(frame(7, false));
    assert_eq!(r.requests.load(Ordering::Relaxed), asked_while_shut + 1);
    r.fanout.forward(frame(8, true));
    r.fanout.forward(frame(9, false));
    assert_eq!(*r.link.frames.lock().unwrap(), [1, 2, 8, 9]);
}

#[tokio::test]
async fn video_resuming_after_a_gap_asks_for_a_keyframe() {
    let r = rig();
    let t = Instant::now();
    let before = r.requests.load(Ordering::Relaxed);
    // A steady stream asks for nothing.
    for n in 2..=10 {
        r.fanout.forward_at(
            frame(n, false),
            t + Duration::from_millis(33 * u64::from(n)),
        );
    }
    assert_eq!(r.requests.load(Ordering::Relaxed), before);
    // Ten seconds of nothing (the publisher's network was down), then a delta frame.
    r.fanout
        .forward_at(frame(11, false), t + Duration::from_secs(10));
    assert_eq!(r.requests.load(Ordering::Relaxed), before + 1);
    // A keyframe after a gap needs no request.
    r.fanout
        .forward_at(frame(12, true), t + Duration::from_secs(20));
    assert_eq!(r.requests.load(Ordering::Relaxed), before + 1);
}

/// A video track keeps its packets for its viewers' repairs only while it has viewers.
#[tokio::test]
async fn a_track_keeps_packets_for_repairs_only_while_watched() {
    let r = rig();
    let history = crate::rtc::repair::TrackHistory::find(r.fanout.id.0)
        .and_then(|w| w.upgrade())
        .expect("a video track has a history");
    r.fanout.forward(frame(2, false));
    assert!(history.get(2).is_some(), "watched: kept");
    assert!(history.get(1).is_none(), "before the viewer came: not kept");
    r.fanout.detach_all();
    r.fanout.forward(frame(3, false));
    assert_eq!(history.capacity(), 0, "nobody watches: let go");
    assert!(history.get(2).is_none() && history.get(3).is_none());
}

/// A slot output that negotiated `codecs` (payload type, codec), like `OutTrack`.
struct Negotiated(Vec<(u8, CodecSpec)>);

impl SlotOutput for Negotiated {
    fn kind(&self) -> MediaKind {
        MediaKind::Audio
    }
    fn mid(&self) -> &str {
        "0"
    }
    fn ssrc(&self) -> u32 {
        1
    }
    fn payload_type_for(&self, codec: &CodecSpec) -> Option<u8> {
        let find =
            |f: &dyn Fn(&CodecSpec) -> bool| self.0.iter().find(|(_, c)| f(c)).map(|(pt, _)| *pt);
        find(&|c| codec.compatible_with(c)).or_else(|| find(&|c| codec.can_feed(c)))
    }
    fn describe(&self) -> String {
        String::new()
    }
    fn codecs(&self) -> Vec<CodecSpec> {
        self.0.iter().map(|(_, c)| c.clone()).collect()
    }
    async fn write(&self, _: RtpPacket) -> bool {
        true
    }
    async fn next_feedback(&self) -> Option<Vec<crate::rtc::feedback::Feedback>> {
        None
    }
}

#[test]
fn red_goes_as_red_only_to_viewers_that_took_it_over_the_same_opus() {
    let red = red_codec(); // 111/111
    let chrome = Negotiated(vec![(63, red.clone()), (111, opus_codec())]);
    assert_eq!(send_as(&chrome, &red), Some((63, Shape::Same)));
    let opus_only = Negotiated(vec![(111, opus_codec())]);
    assert_eq!(send_as(&opus_only, &red), Some((111, Shape::RedPrimary)));
    // RED negotiated, but the viewer's Opus is 109: the blocks would name the wrong one.
    let firefox = Negotiated(vec![(63, red.clone()), (109, opus_codec())]);
    assert_eq!(send_as(&firefox, &red), Some((109, Shape::RedPrimary)));
    // Plain Opus publishers are not touched, RED viewer or not.
    assert_eq!(send_as(&chrome, &opus_codec()), Some((111, Shape::Same)));
    let video_only = Negotiated(vec![]);
    assert_eq!(send_as(&video_only, &red), None);
}
