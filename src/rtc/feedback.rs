//! The tap that hands a viewer's keyframe requests (PLI, FIR) and bandwidth estimates (REMB)
//! to the application: requests are forwarded to the publisher, estimates pick simulcast
//! layers. On the way it reads what the viewer reports about each stream into a
//! [`ReportBook`] (loss, jitter, RTT from the receiver reports; NACKs and PLIs; the repairs
//! sent), which the admin API shows, and holds the NACKs to the leg's budget. The viewer leg's
//! sender runs it ([`KeyframeRequestTap::on_rtcp`], `rtc::direct::sender`); as an interceptor
//! it serves the test client, as the webrtc crate's rtcp-processing example shows.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
#[cfg(test)]
use std::time::Duration;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use ::rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use ::rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use ::rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use ::rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use ::rtc::rtcp::receiver_report::ReceiverReport;
use ::rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use ::rtc::sansio::Protocol;
use ::rtc::shared::error::Error;

use crate::lock::Locked;

/// What a viewer's RTCP tells the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    KeyframeRequest,
    /// The receiver's bandwidth estimate for the whole connection (REMB), bit/s.
    Estimate(u64),
}

/// Reads the feedback out of RTCP packets delivered to the application.
pub fn feedback(packets: &[Box<dyn ::rtc::rtcp::Packet>]) -> Vec<Feedback> {
    packets
        .iter()
        .filter_map(|p| {
            if is_keyframe_request(p.as_ref()) {
                Some(Feedback::KeyframeRequest)
            } else {
                estimate(p.as_ref()).map(Feedback::Estimate)
            }
        })
        .collect()
}

/// Packets a viewer may have sent again per second, and at once: well above what repairs a
/// lossy link (10 % of 6 Mbit/s video is ~60 packets/s), and a bound on what a viewer that
/// NACKs every sequence number can make wisp send (each NACK names up to 17 packets and the
/// responder holds 512 per stream: unchecked, a flood of NACKs is a flood of retransmissions).
const RETRANSMIT_RATE: f64 = 1000.0;
const RETRANSMIT_BURST: f64 = 1000.0;

/// The retransmission budget of one leg (a token bucket of packets).
#[derive(Debug)]
struct Budget {
    tokens: f64,
    at: Option<Instant>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            tokens: RETRANSMIT_BURST,
            at: None,
        }
    }
}

impl Budget {
    /// Takes `n` packets' worth if there is that much left.
    fn take(&mut self, n: u64, now: Instant) -> bool {
        if let Some(at) = self.at {
            let refill = now.saturating_duration_since(at).as_secs_f64() * RETRANSMIT_RATE;
            self.tokens = (self.tokens + refill).min(RETRANSMIT_BURST);
        }
        self.at = Some(now);
        if self.tokens >= n as f64 {
            self.tokens -= n as f64;
            true
        } else {
            false
        }
    }
}

#[derive(Default)]
pub struct KeyframeRequestTap {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
    book: Arc<ReportBook>,
    budget: Budget,
    estimates: crate::rtc::estimates::Estimates,
    /// The leg's prober: the send-side estimate counts only where it can probe (else it could
    /// never rise above what the leg already sends).
    probes: Option<Arc<crate::rtc::prober::ProbeBook>>,
}

impl KeyframeRequestTap {
    /// A tap that records what the viewer reports into `book`.
    pub fn with_book(book: Arc<ReportBook>) -> KeyframeRequestTap {
        KeyframeRequestTap {
            book,
            ..Default::default()
        }
    }

    /// The tap of a leg whose prober is `probes`.
    pub fn probing(self, probes: Arc<crate::rtc::prober::ProbeBook>) -> KeyframeRequestTap {
        KeyframeRequestTap {
            probes: Some(probes),
            ..self
        }
    }
}

impl KeyframeRequestTap {
    /// A compound RTCP packet from the viewer, with the send-side estimate it moved to (if
    /// it moved one): what it reports goes into the book, NACKs past the leg's budget are
    /// taken out, the viewer's REMB and the send-side estimate become one estimate (announced
    /// as a REMB of wisp's own when due, `rtc::estimates`). True when the application acts on
    /// what is left (keyframe requests, the estimate).
    pub fn on_rtcp(
        &mut self,
        now: Instant,
        packets: &mut Vec<Box<dyn ::rtc::rtcp::Packet>>,
        send_side: Option<f64>,
    ) -> bool {
        let ntp = ntp_middle_now();
        for p in packets.iter() {
            self.book.read(p.as_ref(), ntp);
        }
        let budget = &mut self.budget;
        packets.retain(|p| match p.as_any().downcast_ref::<TransportLayerNack>() {
            Some(n) => {
                let asked: u64 = n.nacks.iter().map(|p| p.packet_list().len() as u64).sum();
                let ok = budget.take(asked, now);
                if !ok {
                    NACKS_REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                ok
            }
            None => true,
        });
        let estimates = &mut self.estimates;
        packets.retain(|p| match estimate(p.as_ref()) {
            Some(bps) => {
                estimates.remb(bps);
                false
            }
            None => true,
        });
        if let Some(bps) = send_side
            && self.probes.as_ref().is_some_and(|p| p.can_probe())
        {
            estimates.send_side(bps.max(0.0) as u64);
        }
        if let Some(bps) = estimates.due(now) {
            packets.push(Box::new(ReceiverEstimatedMaximumBitrate {
                sender_ssrc: 0,
                bitrate: bps as f32,
                ssrcs: vec![],
            }));
        }
        packets.iter().any(|p| wanted(p.as_ref()))
    }
}

/// What the other side reported about one stream we send.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reported {
    /// Receiver reports read.
    pub reports: u64,
    /// The latest report's loss fraction, 0–1.
    pub fraction_lost: f64,
    pub total_lost: i64,
    /// Interarrival jitter, seconds.
    pub jitter: f64,
    /// From the latest report that echoed one of our sender reports, seconds.
    pub rtt: Option<f64>,
    pub nacks: u64,
    /// Packets asked for again, over all NACKs.
    pub nacked_packets: u64,
    pub keyframe_requests: u64,
    /// Packets sent again for NACKs (RTX or the original packet again).
    pub retransmitted: u64,
}

/// NACKs received from viewers, and the packets they asked for, since start (RTCP, never the
/// per-packet path).
pub static NACKS_RECEIVED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
pub static NACKED_PACKETS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// NACKs from viewers not answered: over their leg's retransmission budget.
pub static NACKS_REFUSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Packets sent again to viewers for their NACKs, since start.
pub static RETRANSMITTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Per SSRC we send, what the receiver said; shared by a leg's tap and its statistics.
#[derive(Debug, Default)]
pub struct ReportBook {
    streams: Mutex<HashMap<u32, (u32, Reported)>>,
    /// An RTX SSRC to the SSRC it repairs.
    repairs: Mutex<HashMap<u32, u32>>,
}

/// The NTP time of `t` (RFC 3550 §4: seconds since 1900 in the high 32 bits, the fraction in
/// the low 32).
pub(crate) fn ntp(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of the NTP time now: the clock of RTCP's LSR and DLSR (RFC 3550 §6.4.1).
fn ntp_middle_now() -> u32 {
    (ntp(SystemTime::now()) >> 16) as u32
}

impl ReportBook {
    /// What has been reported about `ssrc`, if it is one of ours.
    pub fn get(&self, ssrc: u32) -> Option<Reported> {
        self.streams.locked().get(&ssrc).map(|(_, r)| *r)
    }

    fn bind(&self, ssrc: u32, clock_rate: u32, rtx: Option<u32>) {
        self.streams
            .locked()
            .entry(ssrc)
            .or_insert((clock_rate.max(1), Reported::default()));
        if let Some(rtx) = rtx {
            self.repairs.locked().insert(rtx, ssrc);
        }
    }

    /// One packet sent again on `ssrc` (an RTX SSRC counts for the stream it repairs).
    pub(crate) fn retransmitted(&self, ssrc: u32) {
        RETRANSMITTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ssrc = self.repairs.locked().get(&ssrc).copied().unwrap_or(ssrc);
        if let Some((_, s)) = self.streams.locked().get_mut(&ssrc) {
            s.retransmitted += 1;
        }
    }

    fn read(&self, p: &dyn ::rtc::rtcp::Packet, ntp_now: u32) {
        let any = p.as_any();
        let mut streams = self.streams.locked();
        if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
            for r in &rr.reports {
                if let Some((rate, s)) = streams.get_mut(&r.ssrc) {
                    s.reports += 1;
                    s.fraction_lost = f64::from(r.fraction_lost) / 256.0;
                    // 24-bit signed (RFC 3550 §6.4.1).
                    s.total_lost = i64::from(((r.total_lost << 8) as i32) >> 8);
                    s.jitter = f64::from(r.jitter) / f64::from(*rate);
                    if r.last_sender_report != 0 {
                        let rtt = ntp_now
                            .wrapping_sub(r.last_sender_report)
                            .wrapping_sub(r.delay);
                        // A negative (wrapped) value is clock trouble, not a round trip.
                        if rtt < 0x8000_0000 {
                            s.rtt = Some(f64::from(rtt) / 65536.0);
                        }
                    }
                }
            }
        } else if let Some(n) = any.downcast_ref::<TransportLayerNack>() {
            if let Some((_, s)) = streams.get_mut(&n.media_ssrc) {
                let asked: u64 = n.nacks.iter().map(|p| p.packet_list().len() as u64).sum();
                s.nacks += 1;
                s.nacked_packets += asked;
                NACKS_RECEIVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                NACKED_PACKETS.fetch_add(asked, std::sync::atomic::Ordering::Relaxed);
            }
        } else if is_keyframe_request(p) {
            for ssrc in p.destination_ssrc() {
                if let Some((_, s)) = streams.get_mut(&ssrc) {
                    s.keyframe_requests += 1;
                }
            }
        }
    }
}

fn is_keyframe_request(p: &dyn ::rtc::rtcp::Packet) -> bool {
    let any = p.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// The bitrate of a REMB, if `p` is one.
pub fn estimate(p: &dyn ::rtc::rtcp::Packet) -> Option<u64> {
    p.as_any()
        .downcast_ref::<ReceiverEstimatedMaximumBitrate>()
        .map(|r| r.bitrate.max(0.0) as u64)
}

fn wanted(p: &dyn ::rtc::rtcp::Packet) -> bool {
    is_keyframe_request(p) || estimate(p).is_some()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        // Everything goes on up; a compound packet with something the application acts on is
        // also delivered to it, whole (the application picks out what it wants with
        // [`feedback`]).
        // The send-side estimate rides on the feedback packet that moved it (`rtc::bwe`).
        let send_side = match msg.message.get(&Attribute::TargetBitrateChanged {
            bits_per_second: 0.0,
        }) {
            Some(Attribute::TargetBitrateChanged { bits_per_second }) => Some(*bits_per_second),
            _ => None,
        };
        if let Packet::Rtcp(packets) = &mut msg.message.packet
            && self.on_rtcp(msg.now, packets, send_side)
        {
            msg.message.add(Attribute::DeliverToApplication);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtp(p) = &msg.message.packet
            && msg.message.has(&Attribute::Retransmission)
        {
            self.book.retransmitted(p.header.ssrc);
        }
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for KeyframeRequestTap {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.book.bind(info.ssrc, info.clock_rate, info.ssrc_rtx);
    }
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::rtc::rtcp::reception_report::ReceptionReport;
    use ::rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;

    #[test]
    fn reports_become_loss_jitter_and_rtt() {
        let book = ReportBook::default();
        book.bind(7, 90_000, None);
        let now = 0x1234_0000u32;
        // Our SR left at now - 0.5 s; the viewer held it 0.25 s: RTT 0.25 s.
        let rr = ReceiverReport {
            ssrc: 1,
            reports: vec![ReceptionReport {
                ssrc: 7,
                fraction_lost: 64,
                total_lost: 0x00ff_fffe, // -2 in 24 bits
                jitter: 900,
                last_sender_report: now - 0x8000,
                delay: 0x4000,
                ..Default::default()
            }],
            ..Default::default()
        };
        book.read(&rr, now);
        let r = book.get(7).unwrap();
        assert_eq!((r.reports, r.fraction_lost, r.total_lost), (1, 0.25, -2));
        assert!((r.jitter - 0.01).abs() < 1e-9, "900 ticks at 90 kHz");
        assert_eq!(r.rtt, Some(0.25));
        // No SR echoed yet: no RTT claimed.
        let mut first = rr.clone();
        first.reports[0].last_sender_report = 0;
        book.bind(8, 48_000, None);
        first.reports[0].ssrc = 8;
        book.read(&first, now);
        assert_eq!(book.get(8).unwrap().rtt, None);
        // NACKs count the packets asked for; unknown streams are ignored.
        let nack = TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 7,
            nacks: vec![NackPair {
                packet_id: 10,
                lost_packets: 0b101,
            }],
        };
        book.read(&nack, now);
        let r = book.get(7).unwrap();
        assert_eq!((r.nacks, r.nacked_packets), (1, 3));
        book.read(&nack, now);
        assert_eq!(book.get(99), None);
    }

    /// A NACK naming 17 packets (one pair with every bit set).
    fn nack_all(from: u16) -> Box<dyn ::rtc::rtcp::Packet> {
        Box::new(TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 7,
            nacks: vec![NackPair {
                packet_id: from,
                lost_packets: 0xffff,
            }],
        })
    }

    #[test]
    fn a_nack_flood_is_held_to_the_legs_budget() {
        use ::rtc::interceptor::AttributedPacket;
        let mut tap = KeyframeRequestTap::default();
        let t = Instant::now();
        let mut passed = 0u64;
        let read = |tap: &mut KeyframeRequestTap, at: Instant| {
            // One compound: a receiver report and a NACK for 17 packets.
            let rr: Box<dyn ::rtc::rtcp::Packet> = Box::new(ReceiverReport::default());
            tap.handle_read(TaggedPacket {
                now: at,
                transport: Default::default(),
                message: AttributedPacket::new(Packet::Rtcp(vec![rr, nack_all(0)])),
            })
            .unwrap();
            let Some(msg) = tap.poll_read() else {
                panic!("the compound goes on")
            };
            let Packet::Rtcp(p) = msg.message.packet else {
                panic!("still RTCP")
            };
            p.iter()
                .filter(|p| p.as_any().is::<TransportLayerNack>())
                .count() as u64
        };
        // 10,000 NACKs within one second name 170,000 packets; the budget lets ~2,000 through
        // (the burst, then the refill), and the receiver reports always go on.
        for i in 0..10_000u64 {
            passed += 17 * read(&mut tap, t + Duration::from_micros(100 * i));
        }
        assert!(
            (1_000..=2_100).contains(&passed),
            "{passed} packets passed to the responder"
        );
        // A second later a normal NACK is answered again.
        assert_eq!(read(&mut tap, t + Duration::from_secs(3)), 1);
    }
}
