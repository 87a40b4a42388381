//! Entry points for the fuzz targets (`tests/fuzz`, cargo-fuzz) and their regression tests
//! (`tests/it/fuzz_regressions.rs`): one per untrusted input, each taking raw bytes and driving
//! wisp's own code the way a request or a datagram would. Every one must return, whatever the
//! bytes; a panic is a bug. Not an API.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::lock::Locked;
use crate::media::{SlotOutput, SlotSink, TrackFanout};
use crate::rtc::{RtpPacket, Sent};
use crate::signal::{CodecSpec, MediaKind, Role};

/// Splits `data` into records, each prefixed by its length as a big-endian u16 (the framing of
/// `tests/fixtures/rtp/*.rtp`); a short last record is taken as it is.
fn records(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.len() < 2 {
            return None;
        }
        let n = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
        let (r, rest) = data[2..].split_at(n);
        data = rest;
        Some(r)
    })
}

/// A WHIP/WHEP offer: parsing and validation for both roles, then the answer-side policy that
/// reads offers (codec preference, candidate filtering and rewriting, extmap lookup).
pub fn offer(data: &[u8]) {
    let Ok(sdp) = std::str::from_utf8(data) else {
        return;
    };
    for role in [Role::Publish, Role::Play] {
        if let Ok(summary) = crate::signal::offer::parse_offer(sdp, role) {
            assert!(!summary.media.is_empty(), "an accepted offer has media");
        }
    }
    let _ = crate::signal::offer::first_codecs(sdp);
    let _ = crate::signal::offer::extmap_id(
        sdp,
        MediaKind::Audio,
        "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    );
    let _ = crate::signal::codec::prefer_decodable_h264(sdp);
    let filter = crate::signal::CandidateFilter::new(vec![]);
    let _ = filter.filter_sdp(sdp);
    let _ = crate::signal::candidate::rewrite_local(sdp, &|ip, port, _| {
        crate::signal::candidate::Announce::As(vec![(ip, port)])
    });
    let _ = crate::signal::offer::with_session_info(sdp, "wisp");
}

/// A trickle-ICE or ICE-restart fragment (PATCH application/trickle-ice-sdpfrag), and each of
/// its lines as a candidate.
pub fn sdpfrag(data: &[u8]) {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = crate::signal::Fragment::parse(body) {
        let _ = f.is_restart();
    }
    let filter = crate::signal::CandidateFilter::new(vec![]);
    for line in body.lines() {
        let line = line.strip_prefix("a=").unwrap_or(line);
        if let Ok(c) = crate::signal::Candidate::parse(line) {
            let _ = filter.usable(&c);
        }
    }
}

/// The request bodies and credentials a client sends: WHEP layer and event-list bodies, a
/// bearer token (JWT), an event-stream token, a TURN REST username.
pub fn bodies(data: &[u8]) {
    static AUTH: OnceLock<crate::auth::Auth> = OnceLock::new();
    let auth = AUTH.get_or_init(|| {
        let config = crate::auth::AuthConfig {
            jwt: crate::auth::JwtConfig {
                secret: Some("fuzz-secret-0123456789".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        // A fixed secret of the required length: the configuration is valid by construction.
        crate::auth::Auth::new(&config).expect("an HS256 configuration")
    });
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::http::whep_ext::layer_request(text);
    let _ = crate::http::whep_ext::pin_request(text);
    let _ = crate::http::whep_ext::event_list(text);
    let _ = auth.verify(Some(text));
    if let Ok(room) = crate::sfu::RoomId::parse("fuzz") {
        let _ = auth.verify_events(&room, text);
    }
    let minter = crate::turn::Minter::new(b"fuzz-secret", Duration::from_secs(60));
    let _ = minter.room_of_at(text, 1_000);
    let _ = crate::auth::parse_ttl(text);
}

/// A slot output that takes everything (the fan-out's in-place path).
struct Sink;

impl SlotOutput for Sink {
    fn kind(&self) -> MediaKind {
        MediaKind::Video
    }
    fn mid(&self) -> &str {
        "1"
    }
    fn ssrc(&self) -> u32 {
        1
    }
    fn payload_type_for(&self, _: &CodecSpec) -> Option<u8> {
        Some(96)
    }
    fn describe(&self) -> String {
        String::new()
    }
    fn codecs(&self) -> Vec<CodecSpec> {
        vec![]
    }
    async fn write(&self, _: RtpPacket) -> bool {
        true
    }
    fn writes_at_once(&self) -> bool {
        true
    }
    fn write_now(&self, pkt: RtpPacket, _kept: crate::rtc::repair::Kept) -> Sent {
        std::hint::black_box(pkt);
        Sent::Ok
    }
    async fn next_feedback(&self) -> Option<Vec<crate::rtc::feedback::Feedback>> {
        None
    }
}

fn codec(mime: &str) -> CodecSpec {
    CodecSpec {
        mime_type: mime.into(),
        clock_rate: 90000,
        channels: 0,
        fmtp: String::new(),
    }
}

/// Datagrams a publisher sends: the ICE-port gate, the RTP parser, then the media path of
/// each codec (keyframe detection, VP8 dimensions, RED, padding renumbering, the keyframe
/// cache, a slot's rewriter). The first byte picks the codec; the rest is length-framed
/// datagrams, as the RTP fixtures are.
pub fn rtp(data: &[u8]) {
    use crate::rtc::RtpPacket;
    use ::rtc::shared::marshal::Unmarshal;
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let rt = runtime();
    let _g = rt.enter();
    let mime = [
        "video/VP8",
        "video/VP9",
        "video/H264",
        "video/AV1",
        "audio/red",
    ][usize::from(pick) % 5];
    let fanout = TrackFanout::new(MediaKind::Video, codec(mime), None, Box::new(|| {}));
    let sink = SlotSink::spawn(Arc::new(Sink));
    sink.set_source(Some(fanout.upstream.clone()));
    fanout.attach(&sink);
    let t = Instant::now();
    for (i, d) in records(rest).enumerate() {
        if !crate::rtc::gate::plausible(d) {
            continue;
        }
        let mut buf = d;
        let Ok(pkt) = RtpPacket::unmarshal(&mut buf) else {
            continue;
        };
        let p: &[u8] = &pkt.payload;
        for name in ["vp8", "vp9", "h264", "av1"] {
            let _ = crate::media::keyframe::is_keyframe(name, p);
        }
        let _ = crate::media::keyframe::vp8_dimensions(p);
        if let Some(r) = crate::media::red::primary(p) {
            assert!(
                r.end <= p.len(),
                "the primary block lies inside the payload"
            );
        }
        // Arrivals 20 ms apart, with a long gap now and then (the resume path).
        let at = t + Duration::from_millis(20 * i as u64 + if pick & 0x80 != 0 { 1000 } else { 0 });
        fanout.forward_at(pkt, at);
    }
    fanout.detach(&sink);
    drop(sink);
    settle(rt);
}

/// One runtime for the targets that spawn (a slot's feedback task, TURN relay readers).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        // Fails only if the OS refuses the runtime's own resources (out of fds): no input
        // reaches it.
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// Lets the tasks an input spawned run to their end (nothing piles up between inputs).
fn settle(rt: &tokio::runtime::Runtime) {
    rt.block_on(async {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    });
}

/// A viewer's RTCP as a viewer leg's sender reads it: the library's compound parser, then
/// the transport-wide feedback against 64 packets sent (the estimator), the tap (the report
/// book: loss, jitter, RTT, NACK and PLI counts; the NACK budget; REMB) and the NACKs
/// answered from the history as RTX. The first four bytes are the SSRC the leg sends on.
pub fn rtcp(data: &[u8]) {
    use ::rtc::interceptor::{RTCPFeedback, RTPHeaderExtension, StreamInfo};
    if data.len() < 4 {
        return;
    }
    let ssrc = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    let mut raw = Bytes::copy_from_slice(&data[4..]);
    let Ok(packets) = ::rtc::rtcp::packet::unmarshal(&mut raw) else {
        return;
    };
    let _ = crate::rtc::feedback::feedback(&packets);
    let book = Arc::new(crate::rtc::feedback::ReportBook::default());
    let rtx = ssrc.wrapping_add(1);
    let info = StreamInfo {
        ssrc,
        ssrc_rtx: Some(rtx),
        payload_type: 96,
        payload_type_rtx: Some(97),
        clock_rate: 90000,
        mime_type: "video/VP8".into(),
        rtcp_feedback: vec![RTCPFeedback {
            typ: "nack".into(),
            parameter: String::new(),
        }],
        rtp_header_extensions: vec![RTPHeaderExtension {
            uri: ::rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
            id: 3,
        }],
        ..Default::default()
    };
    let mut sender = crate::rtc::direct::sender::Sender::new(
        &[(info, "0".into())],
        book.clone(),
        Some(Arc::default()),
    );
    let t = Instant::now();
    for seq in 0..64u16 {
        let mut p = RtpPacket::default();
        p.header.version = 2;
        p.header.ssrc = ssrc;
        p.header.sequence_number = seq;
        p.header.timestamp = u32::from(seq / 8) * 3000;
        p.header.marker = seq % 8 == 7;
        p.payload = Bytes::from_static(b"payload");
        sender.send(
            t + Duration::from_millis(u64::from(seq)),
            p,
            crate::rtc::repair::Kept::Copy,
            &mut |_| {},
        );
    }
    let later = t + Duration::from_millis(100);
    let _ = sender.read_rtcp(later, packets, &mut |p| {
        // Only what was sent is sent again, and only as RTX.
        assert_eq!(p.header.ssrc, rtx, "a repair on the RTX stream");
        let osn = u16::from_be_bytes([p.payload[0], p.payload[1]]);
        assert!(osn < 64, "a repair of a packet sent");
    });
    let _ = sender.handle_timeout(later + Duration::from_secs(1));
    if let Some(r) = book.get(ssrc) {
        assert!((0.0..=1.0).contains(&r.fraction_lost), "loss is a fraction");
    }
}

/// The TURN server's engine, shared by every TURN input (it keeps allocations between
/// inputs, as a server does).
struct Turn {
    engine: Arc<crate::turn::server::Engine>,
    link: crate::turn::server::Link,
    replies: Mutex<tokio::sync::mpsc::Receiver<Vec<u8>>>,
    minter: crate::turn::Minter,
}

/// Lets relays reach one address only.
struct OnlyOne;

impl crate::turn::PeerGuard for OnlyOne {
    fn allows(&self, _room: &str, peer: SocketAddr) -> bool {
        peer == SocketAddr::from(([127, 0, 0, 1], 9))
    }
}

fn turn_engine() -> &'static Turn {
    static TURN: OnceLock<Turn> = OnceLock::new();
    TURN.get_or_init(|| {
        let rt = runtime();
        let minter = crate::turn::Minter::new(b"fuzz-secret", Duration::from_secs(3600));
        let settings = crate::turn::server::Settings {
            realm: "wisp".into(),
            minter: crate::turn::Minter::new(b"fuzz-secret", Duration::from_secs(3600)),
            relay_bind: [127, 0, 0, 1].into(),
            relay_public: [127, 0, 0, 1].into(),
            quota: 4,
        };
        let _g = rt.enter();
        let engine = crate::turn::server::Engine::new(
            settings,
            Arc::new(OnlyOne),
            crate::rtc::PortPool::new(61000, 61015),
        )
        // Fails only without a crypto provider, which the build always has; no input reaches it.
        .expect("an engine");
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        drop(_g);
        Turn {
            engine,
            link: crate::turn::server::Link::Stream(tx),
            replies: Mutex::new(rx),
            minter,
        }
    })
}

/// A STUN or TURN message (or ChannelData) from a client. When the first byte is odd the
/// message is re-signed with valid long-term credentials first (USERNAME, REALM, a fresh
/// NONCE, MESSAGE-INTEGRITY), so the fuzzer reaches what lies behind authentication:
/// allocations, refreshes, permissions, channels, reservations.
pub fn turn(data: &[u8]) {
    let Some((&mode, msg)) = data.split_first() else {
        return;
    };
    let t = turn_engine();
    let client = SocketAddr::from(([127, 0, 0, 1], 40000 + u16::from(mode >> 4)));
    let signed = if mode & 1 == 1 {
        sign(t, msg, client)
    } else {
        None
    };
    let rt = runtime();
    let _g = rt.enter();
    t.engine
        .handle(&t.link, client, signed.as_deref().unwrap_or(msg));
    while t.replies.locked().try_recv().is_ok() {}
    if mode & 0x0e == 0x0e {
        // Now and then, time passes: expiry and the sweep.
        t.engine.sweep(Instant::now() + Duration::from_secs(700));
    }
    drop(_g);
    settle(rt);
}

/// `msg` with its credentials replaced by valid ones, or `None` if it does not parse.
fn sign(t: &Turn, msg: &[u8], client: SocketAddr) -> Option<Vec<u8>> {
    use ::rtc::stun::attributes::*;
    use ::rtc::stun::message::{Message, Setter};
    let mut m = Message::new();
    m.unmarshal_binary(msg).ok()?;
    let cred = t.minter.mint("fuzz");
    let mut out = Message::new();
    out.typ = m.typ;
    out.transaction_id = m.transaction_id;
    out.write_header();
    for a in m.attributes.0.iter().filter(|a| {
        ![
            ATTR_USERNAME,
            ATTR_REALM,
            ATTR_NONCE,
            ATTR_MESSAGE_INTEGRITY,
            ATTR_FINGERPRINT,
        ]
        .contains(&a.typ)
    }) {
        out.add(a.typ, &a.value);
    }
    let provider = ::rtc::crypto::default_provider().ok()?;
    let integrity =
        ::rtc::stun::integrity::MessageIntegrity::new_long_term_integrity_with_provider(
            cred.username.clone(),
            "wisp".into(),
            cred.password.clone(),
            provider.crypto(),
        )
        .ok()?;
    for s in [
        ::rtc::stun::textattrs::TextAttribute::new(ATTR_USERNAME, cred.username),
        ::rtc::stun::textattrs::TextAttribute::new(ATTR_REALM, "wisp".into()),
        ::rtc::stun::textattrs::TextAttribute::new(ATTR_NONCE, t.minter.nonce(&client)),
    ] {
        s.add_to(&mut out).ok()?;
    }
    integrity.add_to(&mut out).ok()?;
    Some(out.raw)
}

/// A target: its name (the fuzz binary's) and its entry.
pub type Target = (&'static str, fn(&[u8]));

/// Every target by name, for the regression tests.
pub const TARGETS: [Target; 6] = [
    ("offer", offer),
    ("sdpfrag", sdpfrag),
    ("bodies", bodies),
    ("rtp", rtp),
    ("rtcp", rtcp),
    ("turn", turn),
];
