//! `GET /metrics` (prometheus-client): OpenMetrics when the scraper asks for it by `Accept`,
//! as Prometheus does, else the classic Prometheus text format; on the main listener behind the
//! token, or on `--metrics-listen`.
//!
//! Nothing here sits on the packet path. A scrape gathers a snapshot: session and room counts
//! from the registry, each room's forwarding counts from its task (fan-outs and slots count in
//! their own atomics, and hand their counts to `media::counters::RETIRED` when they go), TURN
//! allocations. Counters are reported as the highest total seen so far, so a fan-out retiring
//! between the two reads never makes one go down. Labels are bounded: kinds, drop reasons,
//! routes and status codes, never sessions or rooms.

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::lock::Locked;
use crate::media::counters::{FORWARDS, Histogram, JOINS, RETIRED, Totals};
use crate::sfu::Sfu;

/// The content type of a scrape in OpenMetrics (what Prometheus asks for by `Accept`).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The classic Prometheus text format, for every other client (and `promtool check metrics`).
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The format a scraper's `Accept` header asks for: OpenMetrics, or the classic text.
pub fn content_type(accept: Option<&str>) -> &'static str {
    match accept {
        Some(a) if a.contains("application/openmetrics-text") => OPENMETRICS,
        _ => PROMETHEUS_TEXT,
    }
}

/// HTTP requests by route (a fixed set of names) and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub status: u16,
}

/// What one scrape reports, gathered before encoding.
#[derive(Debug, Default, Clone, Copy)]
struct Snapshot {
    publishers: usize,
    viewers: usize,
    rooms: usize,
    turn_allocations: usize,
    totals: Totals,
    /// NACKs from viewers, the packets they named, and the packets sent again.
    nacks: (u64, u64, u64, u64),
    /// HTTP connections refused by the caps, requests answered 429.
    refused: (u64, u64),
    /// Datagrams dropped as malformed or refused (`rtc::gate`).
    bad_packets: u64,
    unknown_ssrc: u64,
}

#[derive(Debug, Default)]
struct Gathered(Mutex<Snapshot>);

pub struct Metrics {
    registry: Registry,
    /// Requests answered, by route and status.
    pub http: Family<HttpLabels, Counter>,
    gathered: Arc<Gathered>,
    /// Scrapes are serialised: each gathers, then encodes its own snapshot.
    scrape: tokio::sync::Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wisp");
        let http = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            http.clone(),
        );
        let gathered = Arc::new(Gathered::default());
        registry.register_collector(Box::new(gathered.clone()));
        Metrics {
            registry,
            http,
            gathered,
            scrape: Default::default(),
        }
    }
}

impl Metrics {
    /// Gathers a snapshot and encodes every metric in `format` ([`content_type`]).
    pub async fn render(
        &self,
        sfu: &Sfu,
        turn_allocations: usize,
        refused: (u64, u64),
        format: &str,
    ) -> String {
        let _one = self.scrape.lock().await;
        let (publishers, viewers) = sfu.session_counts();
        let rooms = sfu.rooms_now();
        let mut totals = RETIRED.totals();
        for room in &rooms {
            totals.add(&room.totals().await);
        }
        {
            let mut g = self.gathered.0.locked();
            let highest = g.totals.max(&totals);
            *g = Snapshot {
                publishers,
                viewers,
                rooms: rooms.len(),
                turn_allocations,
                totals: highest,
                refused,
                bad_packets: crate::rtc::gate::BAD_PACKETS
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .max(g.bad_packets),
                unknown_ssrc: crate::rtc::strangers::UNKNOWN_SSRC
                    .load(std::sync::atomic::Ordering::Relaxed),
                nacks: (
                    crate::rtc::feedback::NACKS_RECEIVED.load(std::sync::atomic::Ordering::Relaxed),
                    crate::rtc::feedback::NACKED_PACKETS.load(std::sync::atomic::Ordering::Relaxed),
                    crate::rtc::feedback::RETRANSMITTED.load(std::sync::atomic::Ordering::Relaxed),
                    crate::rtc::feedback::NACKS_REFUSED.load(std::sync::atomic::Ordering::Relaxed),
                ),
            };
        }
        let mut out = String::new();
        let encoded = if format == OPENMETRICS {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        };
        if let Err(e) = encoded {
            tracing::error!("metrics encoding failed: {e}");
        }
        out
    }
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: usize) -> std::fmt::Result {
    let g = ConstGauge::new(v as i64);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn histogram(e: &mut DescriptorEncoder, name: &str, help: &str, h: &Histogram) -> std::fmt::Result {
    let (sum, count, buckets) = h.snapshot();
    e.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Histogram,
    )?
    .encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)
}

/// A counter family over one label: `(label value, count)` pairs.
fn counters(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[(&'static str, u64)],
) -> std::fmt::Result {
    let mut family =
        e.encode_descriptor(name, help, None, ConstCounter::new(0u64).metric_type())?;
    for &(value, v) in values {
        ConstCounter::new(v).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

impl Collector for Gathered {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = *self.0.locked();
        let t = s.totals;
        let kinds = |v: [u64; 2]| [("audio", v[0]), ("video", v[1])];
        let mut sessions = e.encode_descriptor(
            "sessions",
            "Sessions now, by kind",
            None,
            ConstGauge::new(0i64).metric_type(),
        )?;
        for (kind, n) in [("publisher", s.publishers), ("viewer", s.viewers)] {
            ConstGauge::new(n as i64).encode(sessions.encode_family(&[("kind", kind)])?)?;
        }
        gauge(&mut e, "rooms", "Rooms now", s.rooms)?;
        gauge(
            &mut e,
            "participants",
            "Publishing participants now",
            s.publishers,
        )?;
        gauge(
            &mut e,
            "turn_allocations",
            "TURN allocations now",
            s.turn_allocations,
        )?;
        counters(
            &mut e,
            "packets_in",
            "RTP packets received from publishers",
            "kind",
            &kinds(t.packets_in),
        )?;
        counters(
            &mut e,
            "bytes_in",
            "RTP payload bytes received from publishers",
            "kind",
            &kinds(t.bytes_in),
        )?;
        counters(
            &mut e,
            "packets_out",
            "RTP packets sent to viewers",
            "kind",
            &kinds(t.packets_out),
        )?;
        counters(
            &mut e,
            "dropped_packets",
            "Packets dropped, by reason: not forwarded to a viewer, a malformed or refused datagram, or publisher RTP or RTCP about no stream of its own",
            "reason",
            &[
                ("queue_full", t.dropped_queue_full),
                ("keyframe_gate", t.dropped_keyframe_gate),
                ("unplayable_codec", t.dropped_unplayable),
                ("bad_packet", s.bad_packets),
                ("unknown_ssrc", s.unknown_ssrc),
            ],
        )?;
        counter(
            &mut e,
            "keyframe_requests",
            "PLI/FIR sent to publishers (viewers' requests, aggregated and throttled)",
            t.keyframe_requests,
        )?;
        counter(
            &mut e,
            "http_connections_refused",
            "HTTP connections closed at accept: over --max-connections or --max-connections-per-ip",
            s.refused.0,
        )?;
        counter(
            &mut e,
            "http_requests_limited",
            "POSTs and PATCHes answered 429 (over --request-rate for their address)",
            s.refused.1,
        )?;
        counter(
            &mut e,
            "nacks_received",
            "RTCP NACKs received from viewers",
            s.nacks.0,
        )?;
        counter(
            &mut e,
            "nack_packets_requested",
            "Packets viewers asked to have sent again, over all NACKs",
            s.nacks.1,
        )?;
        counter(
            &mut e,
            "retransmissions",
            "Packets sent again to viewers for their NACKs",
            s.nacks.2,
        )?;
        counter(
            &mut e,
            "nacks_refused",
            "NACKs from viewers not answered: over the leg's retransmission budget (1000 packets/s)",
            s.nacks.3,
        )?;
        counter(
            &mut e,
            "keyframe_cache_joins",
            "Viewer slots started from the keyframe cache",
            t.cache_joins,
        )?;
        histogram(
            &mut e,
            "join_seconds",
            "Seconds from a viewer's WHEP POST to its first video packet",
            &JOINS,
        )?;
        histogram(
            &mut e,
            "forward_delay_seconds",
            "Seconds from a track's fan-out taking a publisher's packet to the viewer leg's send of it returning (one packet in 16 per track, per viewer)",
            &FORWARDS,
        )?;
        Ok(())
    }
}
