//! The peer-connection factory: the server's settings, port pool, shared sockets and DTLS
//! certificate, and the three things it makes: a publisher's leg (the library's async layer,
//! `peer.rs`), a viewer's leg and a viewer's counter-offer (wisp's own driver, `direct/`).

use std::time::Duration;

use ::rtc::peer_connection::certificate::{CertificateParams, RTCCertificate};
use std::sync::Arc;

use super::{
    OutTrack, PeerObserver, PortLease, PortPool, RtcPeer, RtcSettings, direct,
    load_dtls_certificate, mux,
};
use crate::error::{Error, Result};

/// Port collisions with other programs tolerated before giving up on one request.
const BIND_ATTEMPTS: usize = 8;
use crate::signal::{CodecSpec, OfferSummary};

/// A shared ICE socket of kind `what` on `port` at every bound address (none without a port).
fn on_each_address<T>(
    settings: &RtcSettings,
    port: Option<u16>,
    what: &str,
    bind: impl Fn(std::net::SocketAddr) -> std::io::Result<T>,
) -> Result<Vec<T>> {
    let Some(port) = port else {
        return Ok(vec![]);
    };
    let ips = match settings.bind_ip {
        Some(ip) => vec![ip],
        None => settings.public_ips.clone(),
    };
    ips.into_iter()
        .map(|ip| {
            bind(std::net::SocketAddr::new(ip, port))
                .map_err(|e| Error::Internal(format!("ICE {what} port {ip}:{port}: {e}")))
        })
        .collect()
}

/// Builds peer connections with the server's settings.
pub struct RtcEngine {
    pub settings: RtcSettings,
    pub ports: PortPool,
    /// The shared sockets of single-port mode (one per bound address), else empty.
    pub muxes: Vec<std::sync::Arc<mux::UdpMux>>,
    /// The ICE-TCP listeners (one per bound address), else empty.
    pub tcp_muxes: Vec<std::sync::Arc<super::tcp::TcpMux>>,
    /// One certificate for every session: generating a key per session is wasted CPU.
    certificate: RTCCertificate,
    fingerprint: String,
}

impl RtcEngine {
    pub fn new(settings: RtcSettings) -> Result<RtcEngine> {
        let provider = ::rtc::crypto::default_provider()
            .map_err(|e| Error::Internal(format!("crypto provider: {e}")))?;
        let certificate = match &settings.dtls {
            Some((cert, key)) => load_dtls_certificate(cert, key, provider.crypto())
                .map_err(|e| Error::Internal(format!("DTLS certificate: {e}")))?,
            None => RTCCertificate::generate(
                provider.crypto(),
                ::rtc::crypto::SignatureScheme::EcdsaP256Sha256,
                CertificateParams::new(vec!["wisp".to_owned()])
                    .map_err(|e| Error::Internal(format!("certificate params: {e}")))?,
            )
            .map_err(|e| Error::Internal(format!("certificate: {e}")))?,
        };
        let fingerprint = certificate
            .get_fingerprints(provider.crypto())
            .ok()
            .and_then(|f| f.first().map(|f| format!("{} {}", f.algorithm, f.value)))
            .unwrap_or_default();
        let muxes = on_each_address(&settings, settings.shared_port, "UDP", mux::UdpMux::bind)?;
        let tcp_muxes = on_each_address(
            &settings,
            settings.tcp_port,
            "TCP",
            super::tcp::TcpMux::bind,
        )?;
        Ok(RtcEngine {
            muxes,
            tcp_muxes,
            ports: PortPool::new(settings.ports.0, settings.ports.1),
            settings,
            certificate,
            fingerprint,
        })
    }

    /// The DTLS fingerprint every session presents.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub(crate) fn certificate(&self) -> RTCCertificate {
        self.certificate.clone()
    }

    /// Binds a connection of `room` on a port of its own: `bind` gets a fresh lease each
    /// time and keeps it on success; a port another program holds is skipped, at most
    /// [`BIND_ATTEMPTS`] times, and a range with no free port (ours all leased, or the rest
    /// held by other programs) answers `503`. The one retry loop of both legs.
    pub(crate) async fn bind_with_port<T, E, F, Fut>(&self, room: &str, mut bind: F) -> Result<T>
    where
        E: std::fmt::Display,
        F: FnMut(PortLease) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, E>>,
    {
        let mut last_err = None;
        for _ in 0..BIND_ATTEMPTS {
            let lease = self.lease_port(room)?;
            let port = lease.port;
            match bind(lease).await {
                Ok(t) => return Ok(t),
                Err(e) => {
                    tracing::debug!(port, "did not bind: {e}");
                    last_err = Some(e.to_string());
                }
            }
        }
        // Every leased port was held by another program: as good as an exhausted range.
        tracing::warn!(
            room,
            attempts = BIND_ATTEMPTS,
            "no ICE port could be bound: {}",
            last_err.unwrap_or_default()
        );
        Err(Error::Unavailable {
            what: "ICE ports",
            retry_after: Duration::from_secs(5),
        })
    }

    /// A free port for a session of `room`, or 503 when the range is exhausted.
    pub(crate) fn lease_port(&self, room: &str) -> Result<PortLease> {
        self.ports.lease_for(room).ok_or(Error::Unavailable {
            what: "ICE ports",
            retry_after: Duration::from_secs(5),
        })
    }

    /// Answers a WHIP offer: a receive-only peer connection.
    pub async fn publish(
        &self,
        room: &str,
        offer: &str,
        summary: &OfferSummary,
        observer: Arc<dyn PeerObserver>,
    ) -> Result<(RtcPeer, String)> {
        super::lib_leg::publisher_leg(self, room, offer, summary, observer).await
    }

    /// A cascade's upstream leg: wisp's own WHEP offer to another node (cluster mode), and
    /// the connection that applies its answer.
    pub async fn upstream(
        &self,
        room: &str,
        kinds: &[crate::signal::MediaKind],
        observer: Arc<dyn PeerObserver>,
    ) -> Result<(RtcPeer, String)> {
        super::lib_leg::upstream_leg(self, room, kinds, observer).await
    }

    /// Answers a WHEP offer: one send-only track per offered m-line, preferring `prefs[i]`
    /// (the publisher's codec, when known) for m-line `i`.
    pub async fn play(
        &self,
        room: &str,
        offer: &str,
        summary: &OfferSummary,
        prefs: &[Option<CodecSpec>],
        observer: Arc<dyn PeerObserver>,
    ) -> Result<(RtcPeer, Vec<Arc<OutTrack>>, String)> {
        direct::viewer_leg(self, room, Some(offer), summary, prefs, observer).await
    }

    /// WHEP counter-offer (draft-03 §4.2): the server's own offer with one send-only m-line per
    /// m-line of the client's offer, for the client to answer by PATCH. The tracks are usable
    /// once [`RtcPeer::apply_answer`] succeeds.
    pub async fn counter_offer(
        &self,
        room: &str,
        summary: &OfferSummary,
        prefs: &[Option<CodecSpec>],
        observer: Arc<dyn PeerObserver>,
    ) -> Result<(RtcPeer, Vec<Arc<OutTrack>>, String)> {
        direct::viewer_leg(self, room, None, summary, prefs, observer).await
    }
}
