//! The own leg's RTP out and RTCP in, done by wisp with no interceptor chain: each packet a
//! slot writes is numbered for transport-wide congestion control, handed to SRTP by reference,
//! then kept for NACKs: for video forwarded as the track sent it, only the mapping onto the
//! track's shared history (`rtc::repair`), else its payload (a reference) and the few header
//! fields a repair needs; nothing on the way allocates. The viewer's RTCP is read for the estimate, the
//! operator's statistics and the keyframe requests, and its NACKs are answered as RFC 4588
//! retransmissions from that history; sender reports go out every second.
//!
//! The chain this replaces (the library's NACK responder and sender-report interceptors,
//! `rtc::congestion` and the feedback tap, linked by queues) moved every packet by value
//! through each interceptor, and each moved it again into its queue: 9 % of the server's CPU
//! was that `memmove`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ::rtc::interceptor::{Interceptor, StreamInfo};
use ::rtc::rtcp::sender_report::SenderReport;
use ::rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use ::rtc::rtp::packet::Packet;

use crate::rtc::congestion::CongestionControl;
use crate::rtc::feedback::{KeyframeRequestTap, ReportBook};
use crate::rtc::prober::ProbeBook;
use crate::rtc::repair::{HISTORY_SECONDS, Kept, SeqRing, Stamped, TrackHistory};

/// The most packets a stream keeps of its own (the history the library's responder held).
const HISTORY: usize = 512;
/// A stream's own history starts this small and doubles (up to [`HISTORY`]) whenever a packet
/// would overwrite one sent less than [`HISTORY_SECONDS`] before: it holds about that much of
/// the stream (a NACK through a congested, deeply queued link comes late), so an idle or
/// low-rate slot (a conference page's eight video slots) costs little.
const FIRST_HISTORY: usize = 16;
/// Mappings onto histories a stream remembers (a join, then layer switches or resyncs, which
/// come in runs when a congested queue overflows).
const SEGMENTS: usize = 8;
/// Between a stream's sender reports (RFC 3550 leaves it to the sender; webrtc-rs and
/// browsers send one a second).
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// RTCP packets as the rtcp crate reads and writes them.
pub(crate) type Rtcp = Vec<Box<dyn ::rtc::rtcp::Packet>>;

/// What a repair needs of a packet sent: the payload is shared with every viewer's copy.
struct Held {
    seq: u16,
    payload_type: u8,
    marker: bool,
    timestamp: u32,
    payload: bytes::Bytes,
}

impl Stamped for Held {
    fn seq(&self) -> u16 {
        self.seq
    }
    fn timestamp(&self) -> u32 {
        self.timestamp
    }
}

/// Where the packets a stream sent from `start` to `end` are held. Only numbers within
/// one are answered: a number the slot gave a packet that never reached the leg (its queue was
/// full as a new mapping began) lies outside every segment, and mapping it through an older one
/// would send a packet of a source the viewer was never given.
struct Segment {
    start: u16,
    end: u16,
    from: Holder,
}

enum Holder {
    /// The stream's own history.
    Own,
    /// A track's shared history, through the mapping the packets were sent with (`None`:
    /// the track was gone already).
    Shared {
        source: u64,
        seq_delta: u16,
        ts_delta: u32,
        payload_type: u8,
        history: Option<std::sync::Weak<TrackHistory>>,
    },
}

impl Holder {
    /// The mapping, `None` for the stream's own copies.
    fn key(&self) -> Option<(u64, u16, u32, u8)> {
        match *self {
            Holder::Own => None,
            Holder::Shared {
                source,
                seq_delta,
                ts_delta,
                payload_type,
                ..
            } => Some((source, seq_delta, ts_delta, payload_type)),
        }
    }
}

/// One stream the leg sends.
struct Out {
    ssrc: u32,
    clock_rate: u32,
    kind: &'static str,
    mid: String,
    /// The RTX SSRC and payload type, when negotiated.
    rtx: Option<(u32, u8)>,
    rtx_seq: u16,
    /// Whether the viewer negotiated NACK (a history is kept).
    nack: bool,
    /// What the stream keeps of its own; grown as its rate needs, see [`FIRST_HISTORY`].
    history: SeqRing<Held>,
    /// Where what it sent is held, oldest first (at most [`SEGMENTS`]).
    segments: Vec<Segment>,
    /// Packets and payload octets sent (a sender report carries them modulo 2^32).
    packets: u64,
    octets: u64,
    /// The latest timestamp sent and when, to extrapolate a report's RTP time.
    last: Option<(u32, Instant)>,
}

impl Out {
    fn new(info: &StreamInfo, mid: String) -> Out {
        let nack = info
            .rtcp_feedback
            .iter()
            .any(|f| f.typ == "nack" && f.parameter.is_empty());
        Out {
            ssrc: info.ssrc,
            clock_rate: info.clock_rate.max(1),
            kind: if info.mime_type.to_ascii_lowercase().starts_with("audio/") {
                "audio"
            } else {
                "video"
            },
            mid,
            rtx: info.ssrc_rtx.zip(info.payload_type_rtx),
            rtx_seq: rand::random(),
            nack,
            history: SeqRing::new(FIRST_HISTORY, HISTORY, info.clock_rate, HISTORY_SECONDS),
            segments: Vec::new(),
            packets: 0,
            octets: 0,
            last: None,
        }
    }

    fn sent(&mut self, now: Instant, p: &Packet) {
        self.packets += 1;
        self.octets += p.payload.len() as u64;
        if self.last.is_none_or(|(ts, _)| ts != p.header.timestamp) {
            self.last = Some((p.header.timestamp, now));
        }
    }

    fn keep(&mut self, p: Packet, kept: Kept) {
        if !self.nack {
            return;
        }
        let h = &p.header;
        // A new segment when the mapping changes (`None`: the stream's own copies).
        let wanted = match kept {
            Kept::Copy => None,
            Kept::Shared {
                source,
                seq_delta,
                ts_delta,
            } => Some((source, seq_delta, ts_delta, h.payload_type)),
        };
        let seq = h.sequence_number;
        match self.segments.last_mut() {
            Some(last) if last.from.key() == wanted => {
                if seq.wrapping_sub(last.end).wrapping_sub(1) < 0x7fff {
                    last.end = seq; // newer than what it held (a reordered one is inside)
                }
            }
            _ => {
                let from = match wanted {
                    None => Holder::Own,
                    Some((source, seq_delta, ts_delta, payload_type)) => Holder::Shared {
                        source,
                        seq_delta,
                        ts_delta,
                        payload_type,
                        history: TrackHistory::find(source),
                    },
                };
                if self.segments.len() == SEGMENTS {
                    self.segments.remove(0);
                }
                self.segments.push(Segment {
                    start: seq,
                    end: seq,
                    from,
                });
            }
        }
        if kept == Kept::Copy {
            self.history.keep(Held {
                seq: h.sequence_number,
                payload_type: h.payload_type,
                marker: h.marker,
                timestamp: h.timestamp,
                payload: p.payload,
            });
        }
    }

    /// What was sent as `seq`, if a history still holds it: (marker, payload type, timestamp,
    /// payload).
    fn held(&self, seq: u16) -> Option<(bool, u8, u32, bytes::Bytes)> {
        // The newest mapping that had begun by `seq`, if `seq` is within what it sent (the
        // rings' own number checks then guard against anything older than they hold).
        let segment = self
            .segments
            .iter()
            .rev()
            .find(|s| seq.wrapping_sub(s.start) < 0x8000)
            .filter(|s| seq.wrapping_sub(s.start) <= s.end.wrapping_sub(s.start))?;
        match &segment.from {
            Holder::Own => {
                let h = self.history.get(seq)?;
                Some((h.marker, h.payload_type, h.timestamp, h.payload.clone()))
            }
            Holder::Shared {
                seq_delta,
                ts_delta,
                payload_type,
                history,
                ..
            } => {
                let track = history.as_ref()?.upgrade()?;
                let p = track.get(seq.wrapping_sub(*seq_delta))?;
                let h = &p.header;
                Some((
                    h.marker,
                    *payload_type,
                    h.timestamp.wrapping_add(*ts_delta),
                    p.payload.clone(),
                ))
            }
        }
    }

    /// The packet sent as `seq` again, if it is still held: as RTX when negotiated (RFC 4588
    /// §4: the original sequence number before the payload, the RTX SSRC, payload type and
    /// sequence), else as it was.
    fn repair(&mut self, seq: u16) -> Option<Packet> {
        let (marker, payload_type, timestamp, payload) = self.held(seq)?;
        let mut header = ::rtc::rtp::header::Header {
            version: 2,
            marker,
            payload_type,
            sequence_number: seq,
            timestamp,
            ssrc: self.ssrc,
            ..Default::default()
        };
        let Some((ssrc, pt)) = self.rtx else {
            return Some(Packet { header, payload });
        };
        let original = payload;
        let mut payload = Vec::with_capacity(2 + original.len());
        payload.extend_from_slice(&seq.to_be_bytes());
        payload.extend_from_slice(&original);
        header.ssrc = ssrc;
        header.payload_type = pt;
        header.sequence_number = self.rtx_seq;
        self.rtx_seq = self.rtx_seq.wrapping_add(1);
        Some(Packet {
            header,
            payload: payload.into(),
        })
    }

    fn report(&self, now: Instant, ntp: u64) -> Option<SenderReport> {
        let (ts, at) = self.last?;
        let ticks = now.saturating_duration_since(at).as_secs_f64() * f64::from(self.clock_rate);
        Some(SenderReport {
            ssrc: self.ssrc,
            ntp_time: ntp,
            rtp_time: ts.wrapping_add(ticks as u32),
            // RFC 3550 §6.4.1: the counts wrap.
            packet_count: self.packets as u32,
            octet_count: self.octets as u32,
            ..Default::default()
        })
    }
}

/// A leg's sending side.
pub(crate) struct Sender {
    streams: Vec<Out>,
    /// Send-side estimation and probing, where the viewer negotiated them.
    cc: Option<CongestionControl>,
    tap: KeyframeRequestTap,
    book: Arc<ReportBook>,
    next_report: Option<Instant>,
    /// The header-extension list lent to each packet on its way out (the transport-wide
    /// number goes there), so no packet allocates one.
    spare: Vec<::rtc::rtp::header::Extension>,
}

impl Sender {
    pub(crate) fn new(
        streams: &[(StreamInfo, String)],
        book: Arc<ReportBook>,
        probes: Option<Arc<ProbeBook>>,
    ) -> Sender {
        let mut tap = KeyframeRequestTap::with_book(book.clone());
        if let Some(p) = &probes {
            tap = tap.probing(p.clone());
        }
        let mut cc = probes.map(CongestionControl::new);
        for (info, _) in streams {
            tap.bind_local_stream(info);
            if let Some(cc) = &mut cc {
                cc.bind(info);
            }
        }
        Sender {
            streams: streams
                .iter()
                .map(|(info, mid)| Out::new(info, mid.clone()))
                .collect(),
            cc,
            tap,
            book,
            next_report: None,
            spare: Vec::with_capacity(1),
        }
    }

    /// One packet from a slot: `emit` gets it (and the probes it brings), then it is kept as
    /// `kept` says.
    pub(crate) fn send(
        &mut self,
        now: Instant,
        mut p: Packet,
        kept: Kept,
        emit: &mut dyn FnMut(&Packet),
    ) {
        if p.header.extensions.is_empty() {
            p.header.extensions = std::mem::take(&mut self.spare);
        }
        let probes = match &mut self.cc {
            Some(cc) => cc.on_write(now, &mut p),
            None => Vec::new(),
        };
        emit(&p);
        for probe in &probes {
            emit(probe);
        }
        self.spare = std::mem::take(&mut p.header.extensions);
        self.spare.clear();
        self.next_report.get_or_insert(now + REPORT_INTERVAL);
        if let Some(s) = self.streams.iter_mut().find(|s| s.ssrc == p.header.ssrc) {
            s.sent(now, &p);
            s.keep(p, kept);
        }
    }

    /// A compound RTCP packet from the viewer: read for the estimate and the statistics, its
    /// NACKs answered through `emit`. Returns it when the application acts on it (keyframe
    /// requests, the estimate).
    pub(crate) fn read_rtcp(
        &mut self,
        now: Instant,
        mut packets: Rtcp,
        emit: &mut dyn FnMut(&Packet),
    ) -> Option<Rtcp> {
        let send_side = self
            .cc
            .as_mut()
            .and_then(|cc| cc.on_feedback(now, &packets));
        let deliver = self.tap.on_rtcp(now, &mut packets, send_side);
        for p in &packets {
            if let Some(nack) = p.as_any().downcast_ref::<TransportLayerNack>() {
                self.answer(now, nack, emit);
            }
        }
        deliver.then_some(packets)
    }

    /// Sends again what `nack` names and the history still holds.
    fn answer(&mut self, now: Instant, nack: &TransportLayerNack, emit: &mut dyn FnMut(&Packet)) {
        let Some(s) = self.streams.iter_mut().find(|s| s.ssrc == nack.media_ssrc) else {
            return;
        };
        for pair in &nack.nacks {
            for seq in pair.packet_list() {
                let Some(mut p) = s.repair(seq) else {
                    continue;
                };
                if let Some(cc) = &mut self.cc {
                    // A repair brings no probes (it is RTX or carries no new frame's end).
                    let _ = cc.on_write(now, &mut p);
                }
                emit(&p);
                self.book.retransmitted(s.ssrc);
            }
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.next_report
    }

    /// Sender reports, when they are due: one compound per stream that has sent.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Vec<Rtcp> {
        if self.next_report.is_none_or(|t| now < t) {
            return Vec::new();
        }
        self.next_report = Some(now + REPORT_INTERVAL);
        let wall = crate::rtc::feedback::ntp(SystemTime::now());
        self.streams
            .iter()
            .filter_map(|s| s.report(now, wall))
            .map(|sr| vec![Box::new(sr) as Box<dyn ::rtc::rtcp::Packet>])
            .collect()
    }

    /// What each stream sent, for the operator's view.
    pub(crate) fn stats(&self) -> Vec<crate::rtc::stats::StreamStats> {
        self.streams
            .iter()
            .map(|s| crate::rtc::stats::StreamStats {
                ssrc: s.ssrc,
                kind: s.kind.to_owned(),
                mid: s.mid.clone(),
                direction: "send",
                packets: s.packets,
                bytes: s.octets,
                ..Default::default()
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "sender_tests.rs"]
mod tests;
