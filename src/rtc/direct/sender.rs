//! The own leg's RTP out and RTCP in, done by wisp with no interceptor chain: each packet a
//! slot writes is numbered for transport-wide congestion control, handed to SRTP by reference,
//! then kept for NACKs as its payload (a reference) and the few header fields a repair needs;
//! nothing on the way allocates. The viewer's RTCP is read for the estimate, the
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

/// The most packets kept per stream that negotiated NACK (the history the library's
/// responder held).
const HISTORY: usize = 512;
/// A stream's history starts this small and doubles (up to [`HISTORY`]) whenever a packet
/// would overwrite one sent less than [`HISTORY_SECONDS`] before: it holds about that much of
/// the stream (a NACK through a congested, deeply queued link comes late), so an idle or
/// low-rate slot (a conference page's eight video slots) costs little.
const FIRST_HISTORY: usize = 16;
/// How much of a stream its history should cover, in seconds of its RTP clock.
const HISTORY_SECONDS: u32 = 3;
/// Between a stream's sender reports (RFC 3550 leaves it to the sender; webrtc-rs and
/// browsers send one a second).
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// RTCP packets as the rtcp crate reads and writes them.
pub(crate) type Rtcp = Vec<Box<dyn ::rtc::rtcp::Packet>>;

/// What a repair needs of a packet sent: the payload is shared with every viewer's copy.
#[derive(Clone)]
struct Held {
    seq: u16,
    payload_type: u8,
    marker: bool,
    timestamp: u32,
    payload: bytes::Bytes,
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
    /// By sequence number modulo its length (a power of two, so the ring agrees across the
    /// 16-bit wrap); grown as the stream's rate needs, see [`FIRST_HISTORY`].
    history: Vec<Option<Held>>,
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
            history: Vec::new(),
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

    fn keep(&mut self, p: Packet) {
        if !self.nack {
            return;
        }
        let h = &p.header;
        if self.history.len() < HISTORY {
            let len = self.history.len();
            let recent = |old: &Held| {
                old.seq != h.sequence_number
                    && h.timestamp.wrapping_sub(old.timestamp)
                        < self.clock_rate.saturating_mul(HISTORY_SECONDS)
            };
            let evicts_recent = len > 0
                && self.history[usize::from(h.sequence_number) % len]
                    .as_ref()
                    .is_some_and(recent);
            if len == 0 || evicts_recent {
                self.grow();
            }
        }
        let i = usize::from(h.sequence_number) % self.history.len();
        self.history[i] = Some(Held {
            seq: h.sequence_number,
            payload_type: h.payload_type,
            marker: h.marker,
            timestamp: h.timestamp,
            payload: p.payload,
        });
    }

    /// Doubles the history (at first: [`FIRST_HISTORY`]), every held packet moved to its
    /// place in the larger ring.
    fn grow(&mut self) {
        let len = if self.history.is_empty() {
            FIRST_HISTORY
        } else {
            (self.history.len() * 2).min(HISTORY)
        };
        let mut bigger: Vec<Option<Held>> = vec![None; len];
        for held in self.history.drain(..).flatten() {
            let i = usize::from(held.seq) % len;
            bigger[i] = Some(held);
        }
        self.history = bigger;
    }

    /// The packet sent as `seq` again, if it is still held: as RTX when negotiated (RFC 4588
    /// §4: the original sequence number before the payload, the RTX SSRC, payload type and
    /// sequence), else as it was.
    fn repair(&mut self, seq: u16) -> Option<Packet> {
        if self.history.is_empty() {
            return None;
        }
        let held = self.history[usize::from(seq) % self.history.len()]
            .as_ref()
            .filter(|p| p.seq == seq)?;
        let mut header = ::rtc::rtp::header::Header {
            version: 2,
            marker: held.marker,
            payload_type: held.payload_type,
            sequence_number: seq,
            timestamp: held.timestamp,
            ssrc: self.ssrc,
            ..Default::default()
        };
        let Some((ssrc, pt)) = self.rtx else {
            return Some(Packet {
                header,
                payload: held.payload.clone(),
            });
        };
        let mut payload = Vec::with_capacity(2 + held.payload.len());
        payload.extend_from_slice(&seq.to_be_bytes());
        payload.extend_from_slice(&held.payload);
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

    /// One packet from a slot: `emit` gets it (and the probes it brings), then it is kept.
    pub(crate) fn send(&mut self, now: Instant, mut p: Packet, emit: &mut dyn FnMut(&Packet)) {
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
            s.keep(p);
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
