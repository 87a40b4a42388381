use super::*;
use crate::rtc::repair::Kept;
use ::rtc::interceptor::{RTCPFeedback, RTPHeaderExtension};
use ::rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;
use ::rtc::rtp::extension::transport_cc_extension::TransportCcExtension;
use ::rtc::shared::marshal::Unmarshal;

const MEDIA: u32 = 10;
const RTX: u32 = 11;
const TWCC_ID: u8 = 3;

fn video(rtx: bool, twcc: bool) -> StreamInfo {
    StreamInfo {
        ssrc: MEDIA,
        ssrc_rtx: rtx.then_some(RTX),
        payload_type: 96,
        payload_type_rtx: rtx.then_some(97),
        clock_rate: 90_000,
        mime_type: "video/VP8".into(),
        rtcp_feedback: vec![RTCPFeedback {
            typ: "nack".into(),
            parameter: String::new(),
        }],
        rtp_header_extensions: if twcc {
            vec![RTPHeaderExtension {
                uri: ::rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
                id: u16::from(TWCC_ID),
            }]
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

fn sender(info: StreamInfo, probes: bool) -> Sender {
    Sender::new(
        &[(info, "1".into())],
        Arc::default(),
        probes.then(Arc::default),
    )
}

fn packet(seq: u16, ts: u32, payload: &'static [u8]) -> Packet {
    let mut p = Packet::default();
    p.header.version = 2;
    p.header.ssrc = MEDIA;
    p.header.payload_type = 96;
    p.header.sequence_number = seq;
    p.header.timestamp = ts;
    p.payload = bytes::Bytes::from_static(payload);
    p
}

fn nack(first: u16, bitmap: u16) -> Rtcp {
    vec![Box::new(TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: MEDIA,
        nacks: vec![NackPair {
            packet_id: first,
            lost_packets: bitmap,
        }],
    })]
}

/// Sends `p` and returns what left.
fn send(s: &mut Sender, now: Instant, p: Packet) -> Vec<Packet> {
    let mut out = Vec::new();
    s.send(now, p, Kept::Copy, &mut |p| out.push(p.clone()));
    out
}

fn read(s: &mut Sender, now: Instant, rtcp: Rtcp) -> Vec<Packet> {
    let mut out = Vec::new();
    let delivered = s.read_rtcp(now, rtcp, &mut |p| out.push(p.clone()));
    assert!(delivered.is_none(), "a NACK is not the application's");
    out
}

#[test]
fn nacks_are_answered_as_rtx_from_the_history() {
    let t = Instant::now();
    let mut s = sender(video(true, false), false);
    for seq in 100..110u16 {
        assert_eq!(send(&mut s, t, packet(seq, 3000, b"frame")).len(), 1);
    }
    // 102, and 104 by the bitmap; 200 was never sent.
    let mut out = read(&mut s, t, nack(102, 0b10));
    out.extend(read(&mut s, t, nack(200, 0)));
    assert_eq!(out.len(), 2, "{out:?}");
    for (p, osn) in out.iter().zip([102u16, 104]) {
        assert_eq!((p.header.ssrc, p.header.payload_type), (RTX, 97));
        assert_eq!((p.header.version, p.header.timestamp), (2, 3000));
        assert_eq!(
            &p.payload[..2],
            &osn.to_be_bytes(),
            "the original sequence first"
        );
        assert_eq!(&p.payload[2..], b"frame");
    }
    assert_eq!(
        out[1].header.sequence_number,
        out[0].header.sequence_number.wrapping_add(1),
        "RTX has its own sequence"
    );
    assert_eq!(s.book.get(MEDIA).map(|r| r.retransmitted), Some(2));
}

#[test]
fn without_rtx_the_packet_goes_again_as_it_was_and_old_ones_are_gone() {
    let t = Instant::now();
    let mut s = sender(video(false, false), false);
    for seq in 0..(HISTORY as u16 + 10) {
        send(&mut s, t, packet(seq, u32::from(seq), b"x"));
    }
    let again = read(&mut s, t, nack(HISTORY as u16 + 5, 0));
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].header.ssrc, again[0].header.sequence_number),
        (MEDIA, HISTORY as u16 + 5)
    );
    // Sequence 5 was overwritten by HISTORY + 5: nothing to send for it.
    assert!(read(&mut s, t, nack(5, 0)).is_empty());
}

#[test]
fn a_low_rate_stream_keeps_a_small_history_of_its_last_seconds() {
    let t = Instant::now();
    let mut s = sender(video(false, false), false);
    // Ten packets a second at 90 kHz: 200 packets are 20 s of the stream.
    for seq in 0..200u16 {
        send(&mut s, t, packet(seq, u32::from(seq) * 9000, b"x"));
    }
    let held = s.history_len(MEDIA);
    assert!(
        (10..64).contains(&held),
        "{held} slots for 10 packets a second"
    );
    // The last HISTORY_SECONDS are still there; 5 s back is gone.
    assert_eq!(read(&mut s, t, nack(175, 0)).len(), 1);
    assert!(read(&mut s, t, nack(150, 0)).is_empty());
    // A fast stream grows its history up to the cap (the test above repairs HISTORY + 5).
    let mut fast = sender(video(false, false), false);
    for seq in 0..2000u16 {
        send(&mut fast, t, packet(seq, u32::from(seq) * 30, b"x"));
    }
    assert_eq!(fast.history_len(MEDIA), HISTORY);
}

#[test]
fn every_packet_and_repair_gets_a_transport_wide_number() {
    let t = Instant::now();
    let mut s = sender(video(true, true), true);
    let seq_of = |p: &Packet| {
        let mut ext = p.header.get_extension(TWCC_ID).expect("numbered");
        TransportCcExtension::unmarshal(&mut ext)
            .unwrap()
            .transport_sequence
    };
    let mut numbers = Vec::new();
    for seq in 0..3u16 {
        numbers.extend(send(&mut s, t, packet(seq, 0, b"v")).iter().map(seq_of));
    }
    numbers.extend(read(&mut s, t, nack(1, 0)).iter().map(seq_of));
    assert_eq!(numbers, [0, 1, 2, 3]);
}

#[test]
fn sender_reports_count_what_was_sent_and_extrapolate_the_clock() {
    let t = Instant::now();
    let mut s = sender(video(true, false), false);
    assert!(
        s.handle_timeout(t + REPORT_INTERVAL).is_empty(),
        "nothing sent"
    );
    assert_eq!(s.poll_timeout(), None);
    send(&mut s, t, packet(1, 90_000, b"abc"));
    send(&mut s, t, packet(2, 90_000, b"de"));
    assert_eq!(s.poll_timeout(), Some(t + REPORT_INTERVAL));
    assert!(
        s.handle_timeout(t + REPORT_INTERVAL / 2).is_empty(),
        "not due"
    );
    let due = t + REPORT_INTERVAL;
    let reports = s.handle_timeout(due);
    assert_eq!(reports.len(), 1);
    let sr = reports[0][0]
        .as_any()
        .downcast_ref::<SenderReport>()
        .expect("a sender report");
    assert_eq!((sr.ssrc, sr.packet_count, sr.octet_count), (MEDIA, 2, 5));
    // One second after the last timestamp at 90 kHz.
    assert_eq!(sr.rtp_time, 180_000);
    assert_eq!(s.poll_timeout(), Some(due + REPORT_INTERVAL));
    let now_ntp = crate::rtc::feedback::ntp(SystemTime::now()) >> 32;
    assert!(
        (sr.ntp_time >> 32).abs_diff(now_ntp) <= 1,
        "wall clock in NTP"
    );
}

#[test]
fn keyframe_requests_reach_the_application_and_are_counted() {
    use ::rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
    let t = Instant::now();
    let mut s = sender(video(true, false), false);
    let pli: Rtcp = vec![Box::new(PictureLossIndication {
        sender_ssrc: 1,
        media_ssrc: MEDIA,
    })];
    let delivered = s.read_rtcp(t, pli, &mut |_| panic!("nothing to send"));
    assert_eq!(delivered.map(|p| p.len()), Some(1));
    assert_eq!(s.book.get(MEDIA).map(|r| r.keyframe_requests), Some(1));
}

impl Sender {
    /// The history slots stream `ssrc` holds now.
    fn history_len(&self, ssrc: u32) -> usize {
        self.streams
            .iter()
            .find(|s| s.ssrc == ssrc)
            .map_or(0, |s| s.history.capacity())
    }
}

/// A track's packet as its fan-out holds it.
fn source_packet(seq: u16, ts: u32, payload: &'static [u8]) -> Arc<Packet> {
    let mut p = packet(seq, ts, payload);
    p.header.ssrc = 0xabc;
    p.header.payload_type = 120;
    Arc::new(p)
}

/// The viewer's copy of `src` under a mapping, sent with `Kept::Shared`.
fn send_shared(
    s: &mut Sender,
    t: Instant,
    src: &Packet,
    source: u64,
    seq_delta: u16,
    ts_delta: u32,
) {
    let mut p = packet(
        src.header.sequence_number.wrapping_add(seq_delta),
        src.header.timestamp.wrapping_add(ts_delta),
        b"",
    );
    p.payload = src.payload.clone();
    p.header.marker = src.header.marker;
    let kept = Kept::Shared {
        source,
        seq_delta,
        ts_delta,
    };
    s.send(t, p, kept, &mut |_| {});
}

/// Two tracks' shared histories, registered under fresh ids.
fn two_tracks() -> ((u64, Arc<TrackHistory>), (u64, Arc<TrackHistory>)) {
    let track = || {
        let id = crate::media::SourceId::next().0;
        (id, TrackHistory::register(id, 90_000))
    };
    (track(), track())
}

#[test]
fn forwarded_video_is_repaired_from_the_tracks_shared_history() {
    let t = Instant::now();
    let ((a, track_a), (b, track_b)) = two_tracks();
    let mut s = sender(video(true, false), false);
    // Track A's 100..110 go out as 1000..1010, timestamps +5000; the viewer keeps no copy.
    for seq in 100..110u16 {
        let p = source_packet(seq, 3000 * u32::from(seq), b"from a");
        track_a.keep(&p);
        send_shared(&mut s, t, &p, a, 900, 5000);
    }
    assert_eq!(s.history_len(MEDIA), 0, "nothing copied per viewer");
    // Then a switch to track B: its 7..10 go out as 1010..1013.
    for seq in 7..10u16 {
        let mut p = source_packet(seq, 10 * u32::from(seq), b"from b");
        Arc::get_mut(&mut p).unwrap().header.marker = seq == 9;
        track_b.keep(&p);
        send_shared(&mut s, t, &p, b, 1003, 77);
    }
    // 1005 (track A's 105) and 1012 (track B's 9), each as the viewer was sent it, in RTX.
    let again = read(&mut s, t, nack(1005, 1 << 6));
    assert_eq!(again.len(), 2);
    let original = |p: &Packet| u16::from_be_bytes([p.payload[0], p.payload[1]]);
    assert_eq!(
        (original(&again[0]), &again[0].payload[2..]),
        (1005, &b"from a"[..])
    );
    assert_eq!(again[0].header.timestamp, 3000 * 105 + 5000);
    assert_eq!(
        (original(&again[1]), &again[1].payload[2..]),
        (1012, &b"from b"[..])
    );
    assert_eq!(again[1].header.timestamp, 90 + 77);
    assert!(again[1].header.marker && !again[0].header.marker);
    assert!(
        again
            .iter()
            .all(|p| p.header.ssrc == RTX && p.header.payload_type == 97)
    );
    // Before the first mapping, and what the track never had: nothing.
    assert!(read(&mut s, t, nack(999, 0)).is_empty());
    assert!(read(&mut s, t, nack(1014, 0)).is_empty());
    // A track that is gone repairs nothing; the other still does.
    drop(track_a);
    assert!(read(&mut s, t, nack(1005, 0)).is_empty());
    assert_eq!(read(&mut s, t, nack(1011, 0)).len(), 1);
}

#[test]
fn a_stream_mixes_copies_and_shared_packets_by_segment() {
    let t = Instant::now();
    let a = crate::media::SourceId::next().0;
    let track = TrackHistory::register(a, 90_000);
    let mut s = sender(video(false, false), false);
    let p = source_packet(50, 1, b"shared");
    track.keep(&p);
    send_shared(&mut s, t, &p, a, 0, 0);
    // A copy (a renumbered VP8 payload) in between, then shared again.
    send(&mut s, t, packet(51, 2, b"copy"));
    let q = source_packet(52, 3, b"shared again");
    track.keep(&q);
    send_shared(&mut s, t, &q, a, 0, 0);
    let payloads: Vec<_> = (50..53u16)
        .map(|seq| read(&mut s, t, nack(seq, 0))[0].payload.clone())
        .collect();
    assert_eq!(payloads, [&b"shared"[..], b"copy", b"shared again"]);
}

#[test]
fn a_number_that_never_reached_the_leg_is_not_answered_from_an_older_mapping() {
    let t = Instant::now();
    let ((a, track_a), (b, track_b)) = two_tracks();
    let mut s = sender(video(false, false), false);
    // Track A's 100..110 go out as 1000..1009.
    for seq in 100..110u16 {
        let p = source_packet(seq, u32::from(seq), b"a");
        track_a.keep(&p);
        send_shared(&mut s, t, &p, a, 900, 0);
    }
    // The switch to B: its keyframe was numbered 1010 but the leg's queue was full, so the
    // slot resynced and B's next keyframe went out as 1011. A goes on (its 110 would map to
    // 1010 through A's mapping).
    track_a.keep(&source_packet(110, 110, b"a, never sent"));
    let p = source_packet(20, 20, b"b");
    track_b.keep(&p);
    send_shared(&mut s, t, &p, b, 991, 0);
    assert!(read(&mut s, t, nack(1010, 0)).is_empty());
    assert_eq!(read(&mut s, t, nack(1009, 0))[0].payload, &b"a"[..]);
    assert_eq!(read(&mut s, t, nack(1011, 0))[0].payload, &b"b"[..]);
}
