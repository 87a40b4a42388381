//! The adapter to webrtc-rs: the only module that builds peer connections or touches the
//! library's types. It turns a validated offer into a running peer connection and an answer,
//! exposes incoming tracks as [`RtpSink`] callbacks and outgoing tracks as [`OutTrack`]s, and
//! applies the server's network settings (ports, announced addresses, remote-candidate filter,
//! the one DTLS certificate).

/// The `Runtime` methods a wrapping runtime passes through to `$inner` unchanged (every
/// wrapper here changes only how sockets and listeners are made).
macro_rules! delegate_runtime {
    ($($inner:tt)+) => {
        fn spawn(
            &self,
            future: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
        ) -> Box<dyn webrtc::runtime::JoinHandle> {
            self.$($inner)+.spawn(future)
        }

        fn resolve_host<'a>(
            &'a self,
            host: &'a str,
        ) -> std::pin::Pin<
            Box<
                dyn std::future::Future<Output = std::io::Result<Vec<std::net::SocketAddr>>>
                    + Send
                    + 'a,
            >,
        > {
            self.$($inner)+.resolve_host(host)
        }

        fn sleep(
            &self,
            duration: std::time::Duration,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>> {
            self.$($inner)+.sleep(duration)
        }

        fn interval(&self, period: std::time::Duration) -> Box<dyn webrtc::runtime::AsyncInterval> {
            self.$($inner)+.interval(period)
        }

        fn block_on(&self, future: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>) {
            self.$($inner)+.block_on(future)
        }
    };
}

pub mod bwe;
pub mod client;
pub mod congestion;
pub(crate) mod direct;
mod engine;
pub mod estimates;
pub mod feedback;
pub mod gate;
mod ice;
mod lib_leg;
mod lib_tcp;
pub mod mux;
mod peer;
pub mod ports;
pub mod prober;
pub mod repair;
pub mod scatter;
pub mod sender_reports;
mod setup;
pub mod stats;
pub mod strangers;
pub mod tcp;
mod track;
pub mod udp;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ::rtc::peer_connection::certificate::RTCCertificate;

pub use ::rtc::rtp::header::Header as RtpHeader;
pub use ::rtc::rtp::packet::Packet as RtpPacket;
pub use engine::RtcEngine;
pub use ice::IceRestart;
pub use peer::{PeerObserver, RtcPeer};
pub use ports::{PortLease, PortPool};
pub use setup::AUDIO_LEVEL_URI;
pub use track::{InTrackInfo, KeyframeRequester, OutTrack, RtpSink, Sent};

use crate::signal::CandidateFilter;
use crate::signal::candidate::{Announce, LocalTransport};

/// Loads a DTLS certificate chain and its PKCS#8 key from PEM files. ECDSA P-256/P-384,
/// Ed25519 and RSA keys are accepted; the kind is found by trying each.
pub fn load_dtls_certificate(
    cert: &std::path::Path,
    key: &std::path::Path,
    crypto: &dyn ::rtc::crypto::RTCCrypto,
) -> std::result::Result<RTCCertificate, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no CERTIFICATE block", cert.display()));
    }
    let der = match PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("{}: {e}", key.display()))?
    {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        _ => {
            return Err(format!(
                "{}: the key must be PKCS#8 (\"BEGIN PRIVATE KEY\"); convert it with `openssl pkcs8 -topk8 -nocrypt`",
                key.display()
            ));
        }
    };
    // RTCCertificate wants an expiry; the X.509 notAfter is checked by peers, not by us.
    let expires = std::time::SystemTime::now() + std::time::Duration::from_secs(365 * 24 * 3600);
    use ::rtc::crypto::SignatureScheme::*;
    for scheme in [EcdsaP256Sha256, EcdsaP384Sha384, RsaPkcs1Sha256, Ed25519] {
        if let Ok(c) = RTCCertificate::from_pkcs8(crypto, scheme, chain.clone(), &der, expires) {
            return Ok(c);
        }
    }
    Err(format!(
        "{}: the key is not ECDSA P-256/P-384, RSA or Ed25519, or does not match",
        key.display()
    ))
}

/// Connection state of a peer, as sessions care about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    New,
    Connected,
    /// Consent or connectivity lost for now; ICE may still recover.
    Disconnected,
    Failed,
    Closed,
}

/// Network and security settings shared by every peer connection.
#[derive(Clone)]
pub struct RtcSettings {
    /// Addresses announced in host candidates (NAT 1:1 when `bind_ip` is set).
    pub public_ips: Vec<IpAddr>,
    /// Bind here and announce `public_ips` instead (servers behind 1:1 NAT).
    pub bind_ip: Option<IpAddr>,
    pub ports: (u16, u16),
    /// Single-port mode: every session on this UDP port (`--ice-udp-port`).
    pub shared_port: Option<u16>,
    /// ICE-TCP on one shared port (`--ice-tcp-port`).
    pub tcp_port: Option<u16>,
    /// Answer ICE checks without sending any (`--ice-lite`).
    pub ice_lite: bool,
    pub filter: CandidateFilter,
    /// PEM certificate and key for DTLS; one is generated at start when absent.
    pub dtls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// ICE disconnected/failed timeouts (consent freshness, RFC 7675).
    pub ice_disconnected_timeout: Duration,
    pub ice_failed_timeout: Duration,
}

/// Maps the addresses the server binds to the ones it announces in candidates.
#[derive(Clone, Debug)]
pub struct Announcer {
    bind_ip: Option<IpAddr>,
    public_ips: Vec<IpAddr>,
    shared_port: Option<u16>,
    tcp_port: Option<u16>,
}

impl Announcer {
    /// What a bound `(ip, port)` is announced as: the shared port of its transport in place of
    /// the bound one, `--public-ip` in place of `--ice-bind`. wisp never announces active TCP
    /// candidates (it does not dial clients).
    pub fn announce(&self, ip: IpAddr, port: u16, t: LocalTransport) -> Announce {
        let shared = match t {
            LocalTransport::TcpActive => return Announce::Drop,
            LocalTransport::Udp => self.shared_port,
            LocalTransport::TcpPassive => self.tcp_port,
        };
        let port = shared.unwrap_or(port);
        match self.bind_ip {
            Some(b) if b == ip => Announce::As(
                self.public_ips
                    .iter()
                    .filter(|p| p.is_ipv4() == ip.is_ipv4())
                    .map(|p| (*p, port))
                    .collect(),
            ),
            _ if shared.is_some() => Announce::As(vec![(ip, port)]),
            _ => Announce::AsIs,
        }
    }

    /// The one address a bound `(ip, port)` is announced at.
    pub fn announced(&self, ip: IpAddr, port: u16, t: LocalTransport) -> SocketAddr {
        match self.announce(ip, port, t) {
            Announce::As(to) if !to.is_empty() => SocketAddr::new(to[0].0, to[0].1),
            _ => SocketAddr::new(ip, port),
        }
    }

    /// Rewrites the candidate lines of a local description.
    pub fn rewrite(&self, sdp: &str) -> String {
        crate::signal::candidate::rewrite_local(sdp, &|ip, port, t| self.announce(ip, port, t))
    }
}

impl RtcSettings {
    pub fn announcer(&self) -> Announcer {
        Announcer {
            bind_ip: self.bind_ip,
            public_ips: self.public_ips.clone(),
            shared_port: self.shared_port,
            tcp_port: self.tcp_port,
        }
    }
}
