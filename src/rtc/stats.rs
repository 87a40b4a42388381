//! A connection's health as an operator reads it (the admin API): the candidate pair in use and
//! its round-trip time, and per RTP stream what was sent or received, the loss and jitter the
//! other side reports (RTCP receiver reports) or we measure, and the repair traffic. Read from
//! the `rtc` core's own statistics, which both kinds of leg keep.

use ::rtc::statistics::report::{RTCStatsReport, RTCStatsReportEntry};
use serde::Serialize;

/// The connection's network view.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LegStats {
    /// wisp's candidate of the pair in use: `host` (or `relay` never: wisp relays nothing).
    pub local_candidate: Option<String>,
    /// The client's candidate of the pair in use: `host`, `srflx`, `prflx` or `relay` (the
    /// client goes through TURN).
    pub remote_candidate: Option<String>,
    /// `udp` or `tcp`, as ICE runs.
    pub protocol: Option<String>,
    /// The pair's round-trip time from ICE consent checks, milliseconds.
    pub ice_rtt_ms: Option<f64>,
    /// Shown per track and slot, not with the connection.
    #[serde(skip)]
    pub streams: Vec<StreamStats>,
}

/// One RTP stream of the connection.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StreamStats {
    pub ssrc: u32,
    pub kind: String,
    pub mid: String,
    /// `send` (wisp → client) or `receive` (client → wisp).
    pub direction: &'static str,
    pub packets: u64,
    pub bytes: u64,
    /// Packets lost: as the client reports (send) or as wisp counts (receive).
    pub packets_lost: i64,
    /// The loss fraction of the client's latest receiver report, 0–1 (send streams).
    pub fraction_lost: Option<f64>,
    pub jitter_ms: Option<f64>,
    /// From the client's receiver reports (send streams).
    pub rtt_ms: Option<f64>,
    /// NACKs received (send) or sent (receive).
    pub nacks: u64,
    /// PLI received (send) or sent (receive).
    pub plis: u64,
    /// Packets sent again for a NACK (send streams).
    pub retransmitted: u64,
}

/// The type and protocol of a candidate of the pair: the pair names the agent's candidate id,
/// the report files it under `RTC{Local,Remote}IceCandidate_<id>`.
fn candidate_type(report: &RTCStatsReport, prefix: &str, id: &str) -> Option<(String, String)> {
    match report
        .get(id)
        .or_else(|| report.get(&format!("{prefix}{id}")))?
    {
        RTCStatsReportEntry::LocalCandidate(c) | RTCStatsReportEntry::RemoteCandidate(c) => {
            Some((c.candidate_type.to_string(), c.protocol.clone()))
        }
        _ => None,
    }
}

/// Puts what the viewer reported (receiver reports, NACKs, keyframe requests) and the
/// retransmissions that answered it on the streams wisp sends: the `rtc` core reads none of it
/// into its own statistics.
pub fn add_reports(stats: &mut LegStats, book: &crate::rtc::feedback::ReportBook) {
    for s in stats.streams.iter_mut().filter(|s| s.direction == "send") {
        let Some(r) = book.get(s.ssrc) else { continue };
        s.nacks = r.nacks;
        s.retransmitted = s.retransmitted.max(r.retransmitted);
        s.plis = s.plis.max(r.keyframe_requests);
        if r.reports > 0 {
            s.packets_lost = r.total_lost;
            s.fraction_lost = Some(r.fraction_lost);
            s.jitter_ms = Some(r.jitter * 1e3);
            s.rtt_ms = r.rtt.map(|t| t * 1e3);
        }
    }
}

/// The clock rate of the codec a stream statistic names, for values in RTP timestamp units.
fn clock_rate(report: &RTCStatsReport, codec_id: &str) -> Option<u32> {
    match report.get(codec_id)? {
        RTCStatsReportEntry::Codec(c) if c.clock_rate > 0 => Some(c.clock_rate),
        _ => None,
    }
}

/// Reads a statistics report into [`LegStats`].
pub fn summarize(report: &RTCStatsReport) -> LegStats {
    let mut out = LegStats::default();
    let pair = report
        .transport()
        .map(|t| t.selected_candidate_pair_id.clone())
        .filter(|id| !id.is_empty())
        .and_then(|id| match report.get(&id) {
            Some(RTCStatsReportEntry::IceCandidatePair(p)) => Some(p),
            _ => None,
        })
        // Before the transport names one, the nominated pair.
        .or_else(|| report.candidate_pairs().find(|p| p.nominated));
    if let Some(p) = pair {
        if let Some((t, proto)) =
            candidate_type(report, "RTCLocalIceCandidate_", &p.local_candidate_id)
        {
            out.local_candidate = Some(t);
            out.protocol = Some(proto);
        }
        // A remote candidate the client never signalled was learned from its checks: ICE
        // calls it peer-reflexive.
        out.remote_candidate = Some(
            candidate_type(report, "RTCRemoteIceCandidate_", &p.remote_candidate_id)
                .map_or_else(|| "prflx".to_owned(), |(t, _)| t),
        );
        out.ice_rtt_ms =
            (p.current_round_trip_time > 0.0).then_some(p.current_round_trip_time * 1e3);
    }
    for e in report.iter() {
        match e {
            RTCStatsReportEntry::OutboundRtp(s) => {
                let rtp = &s.sent_rtp_stream_stats.rtp_stream_stats;
                out.streams.push(StreamStats {
                    ssrc: rtp.ssrc,
                    kind: rtp.kind.to_string(),
                    mid: s.mid.clone(),
                    direction: "send",
                    packets: s.sent_rtp_stream_stats.packets_sent,
                    bytes: s.sent_rtp_stream_stats.bytes_sent,
                    // Filled from the viewer's reports by `add_reports`.
                    packets_lost: 0,
                    fraction_lost: None,
                    jitter_ms: None,
                    rtt_ms: None,
                    nacks: u64::from(s.nack_count),
                    plis: u64::from(s.pli_count),
                    retransmitted: s.retransmitted_packets_sent,
                });
            }
            RTCStatsReportEntry::InboundRtp(s) => {
                let r = &s.received_rtp_stream_stats;
                out.streams.push(StreamStats {
                    ssrc: r.rtp_stream_stats.ssrc,
                    kind: r.rtp_stream_stats.kind.to_string(),
                    mid: s.mid.clone(),
                    direction: "receive",
                    packets: r.packets_received,
                    bytes: s.bytes_received,
                    packets_lost: r.packets_lost,
                    fraction_lost: None,
                    // The core stores the jitter of the reports it writes in RTP timestamp
                    // units, whatever its documentation says.
                    jitter_ms: clock_rate(report, &r.rtp_stream_stats.codec_id)
                        .map(|rate| r.jitter / f64::from(rate) * 1e3),
                    rtt_ms: None,
                    nacks: u64::from(s.nack_count),
                    plis: u64::from(s.pli_count),
                    retransmitted: 0,
                });
            }
            _ => {}
        }
    }
    out.streams
        .sort_by(|a, b| a.mid.cmp(&b.mid).then(a.ssrc.cmp(&b.ssrc)));
    out
}
