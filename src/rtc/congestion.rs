//! A viewer leg's send-side congestion control, in one interceptor at the wire-most slot: it
//! writes the transport-wide sequence number (draft-holmer-rmcat-transport-wide-cc-extensions)
//! on every RTP packet that leaves, records each in a send history, resolves the viewer's TWCC
//! feedback against it and drives the leg's estimator ([`LegEstimator`]). The estimate goes up
//! the read walk on the feedback packet that moved it, as `Attribute::TargetBitrateChanged`,
//! to wisp's tap.
//!
//! Why not webrtc-rs's own TWCC sender and congestion-control interceptors: both act only on
//! the SSRCs of bound streams, so RTX packets (the NACK responder's repairs and wisp's probes,
//! `rtc::prober`) leave unnumbered and unrecorded. A probe the estimator cannot see proves
//! nothing, and repairs it cannot see make it overestimate during loss. Transport-wide means
//! every packet of the transport: here, every RTP packet once the viewer negotiated it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use ::rtc::interceptor::{
    Attribute, AttributedPacket, BandwidthEstimator, Interceptor, Packet, PacketReport, StreamInfo,
    TaggedPacket, convert_twcc,
};
use ::rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use ::rtc::rtp::extension::transport_cc_extension::TransportCcExtension;
use ::rtc::sansio::Protocol;
use ::rtc::shared::error::Error;
use ::rtc::shared::marshal::{Marshal, MarshalSize};

use crate::rtc::bwe::LegEstimator;
use crate::rtc::prober::{ProbeBook, Prober};

/// Packets remembered for the viewer's feedback, by transport-wide sequence number modulo this:
/// over a second of 2.5 Mbit/s video, where feedback comes every 50-100 ms. A ring, not the
/// library's maps: one slot written in place per packet, nothing hashed or pruned.
const RING: usize = 512;

/// How long probes stop once the path shows loss (the room's probe window, `sfu::plan::probe`).
const PROBE_HALT: std::time::Duration = std::time::Duration::from_secs(2);

/// One packet sent, as the estimator will need it.
#[derive(Debug, Clone, Copy)]
struct Sent {
    id: u64,
    twcc_seq: u16,
    ssrc: u32,
    rtp_seq: u16,
    size: u32,
    departure: Instant,
}

pub struct CongestionControl {
    estimator: LegEstimator,
    prober: Prober,
    /// Allocated when the viewer negotiated the extension.
    sent: Vec<Option<Sent>>,
    next_id: u64,
    /// The negotiated extension id (from the first stream bound with it).
    ext_id: Option<u8>,
    next_seq: u16,
    last_target: f64,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl CongestionControl {
    pub fn new(probes: Arc<ProbeBook>) -> CongestionControl {
        CongestionControl {
            estimator: LegEstimator::default(),
            prober: Prober::new(probes),
            sent: Vec::new(),
            next_id: 0,
            ext_id: None,
            next_seq: 0,
            last_target: 0.0,
            read: VecDeque::new(),
            write: VecDeque::new(),
        }
    }

    /// Writes the next transport-wide number on `p` and records it.
    fn number(&mut self, now: Instant, p: &mut ::rtc::rtp::packet::Packet) {
        let Some(id) = self.ext_id else {
            return;
        };
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        if let Ok(ext) = (TransportCcExtension {
            transport_sequence: seq,
        })
        .marshal()
            && p.header.set_extension(id, ext.freeze()).is_ok()
        {
            self.next_id += 1;
            self.sent[usize::from(seq) % RING] = Some(Sent {
                id: self.next_id,
                twcc_seq: seq,
                ssrc: p.header.ssrc,
                rtp_seq: p.header.sequence_number,
                size: p.marshal_size() as u32,
                departure: now,
            });
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for CongestionControl {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        let mut reports = Vec::new();
        if let Packet::Rtcp(packets) = &msg.message.packet
            && !self.sent.is_empty()
        {
            for p in packets {
                let Some(fb) = p.as_any().downcast_ref::<TransportLayerCc>() else {
                    continue;
                };
                for ack in convert_twcc(fb) {
                    let slot = &mut self.sent[usize::from(ack.sequence_number) % RING];
                    // Reported once; a number the ring no longer holds is past helping.
                    if let Some(s) = slot.take_if(|s| s.twcc_seq == ack.sequence_number) {
                        reports.push(PacketReport {
                            ssrc: s.ssrc,
                            id: s.id,
                            rtp_sequence_number: s.rtp_seq,
                            is_twcc: true,
                            twcc_sequence_number: s.twcc_seq,
                            size: s.size as usize,
                            arrived: ack.arrived,
                            departure: s.departure,
                            arrival: ack.arrival,
                            ecn: ack.ecn,
                        });
                    }
                }
            }
        }
        if !reports.is_empty() {
            self.estimator.on_reports(msg.now, &reports);
            if self.estimator.saturated(msg.now).is_some() {
                self.prober.halt(msg.now + PROBE_HALT);
            }
            let target = self.estimator.target_bitrate();
            if target != self.last_target {
                self.last_target = target;
                msg.message.add(Attribute::TargetBitrateChanged {
                    bits_per_second: target,
                });
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        let (now, transport) = (msg.now, msg.transport);
        let probes = match &mut msg.message.packet {
            Packet::Rtp(p) => {
                let probes = self.prober.on_write(now, p);
                self.number(now, p);
                probes
            }
            _ => Vec::new(),
        };
        self.write.push_back(msg);
        for mut p in probes {
            self.number(now, &mut p);
            self.write.push_back(TaggedPacket {
                now,
                transport,
                message: AttributedPacket::new(Packet::Rtp(p)),
            });
        }
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }

    fn handle_timeout(&mut self, _now: Instant) -> Result<(), Error> {
        Ok(())
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }
}

impl Interceptor for CongestionControl {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        self.prober.bind(info);
        if self.ext_id.is_none() {
            self.ext_id = info
                .rtp_header_extensions
                .iter()
                .find(|e| e.uri == ::rtc::sdp::extmap::TRANSPORT_CC_URI)
                .and_then(|e| u8::try_from(e.id).ok())
                .filter(|id| *id != 0);
            if self.ext_id.is_some() {
                self.sent = vec![None; RING];
            }
        }
    }
    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.prober.unbind(info);
    }
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::rtc::interceptor::RTPHeaderExtension;
    use ::rtc::shared::marshal::Unmarshal;

    #[test]
    fn every_packet_is_numbered_and_recorded_repairs_and_probes_included() {
        let mut cc = CongestionControl::new(Arc::default());
        let t = Instant::now();
        let write = |cc: &mut CongestionControl, ssrc: u32| {
            let mut p = ::rtc::rtp::packet::Packet::default();
            p.header.ssrc = ssrc;
            cc.handle_write(TaggedPacket {
                now: t,
                transport: Default::default(),
                message: AttributedPacket::new(Packet::Rtp(p)),
            })
            .unwrap();
            match cc.poll_write().unwrap().message.packet {
                Packet::Rtp(p) => p,
                _ => unreachable!(),
            }
        };
        // Not negotiated: nothing written, nothing recorded.
        assert!(write(&mut cc, 10).header.get_extension(3).is_none());
        cc.bind_local_stream(&StreamInfo {
            ssrc: 10,
            ssrc_rtx: Some(11),
            rtp_header_extensions: vec![RTPHeaderExtension {
                uri: ::rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
                id: 3,
            }],
            ..Default::default()
        });
        // The media SSRC, its RTX SSRC and one never bound: one sequence for all.
        let seqs: Vec<u16> = [10, 11, 10, 12]
            .into_iter()
            .map(|ssrc| {
                let mut ext = write(&mut cc, ssrc).header.get_extension(3).unwrap();
                TransportCcExtension::unmarshal(&mut ext)
                    .unwrap()
                    .transport_sequence
            })
            .collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
        assert_eq!(cc.sent.iter().flatten().count(), 4);
    }
}
