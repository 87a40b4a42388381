//! HTTPS: rustls with a certificate that can be swapped at run time (SIGHUP), so ACME
//! renewals never drop sessions; and a self-signed development certificate so a phone on the
//! LAN can open the page (getUserMedia needs a secure context).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Generated at start for these names (development only).
    SelfSigned(Vec<String>),
}

/// The current certificate, swapped atomically on reload.
pub struct Reloadable {
    current: ArcSwap<CertifiedKey>,
    source: TlsSource,
}

impl fmt::Debug for Reloadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloadable")
            .field("source", &self.source)
            .finish()
    }
}

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, String> {
    if chain.is_empty() {
        return Err("the certificate file holds no CERTIFICATE block".into());
    }
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("the private key is not usable: {e}"))?;
    Ok(CertifiedKey::new(chain, signer))
}

/// Reads a PEM certificate chain.
pub fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn load(source: &TlsSource) -> Result<CertifiedKey, String> {
    match source {
        TlsSource::Files { cert, key } => certified_key(read_chain(cert)?, read_key(key)?),
        TlsSource::SelfSigned(names) => {
            let c = rcgen::generate_simple_self_signed(names.clone())
                .map_err(|e| format!("self-signed certificate: {e}"))?;
            let key = PrivateKeyDer::Pkcs8(c.signing_key.serialize_der().into());
            certified_key(vec![c.cert.der().clone()], key)
        }
    }
}

impl Reloadable {
    pub fn new(source: TlsSource) -> Result<Arc<Reloadable>, String> {
        let first = load(&source)?;
        Ok(Arc::new(Reloadable {
            current: ArcSwap::from_pointee(first),
            source,
        }))
    }

    /// Re-reads the certificate files; on error the current certificate stays.
    pub fn reload(&self) -> Result<(), String> {
        if matches!(self.source, TlsSource::SelfSigned(_)) {
            return Ok(()); // nothing on disk to re-read
        }
        let next = load(&self.source)?;
        self.current.store(Arc::new(next));
        Ok(())
    }

    /// A rustls acceptor offering `alpn` (HTTPS: h2 and http/1.1; TURN over TLS: none).
    pub fn acceptor(self: &Arc<Self>, alpn: &[&[u8]]) -> Result<TlsAcceptor, String> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(self.clone());
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsAcceptor::from(Arc::new(cfg)))
    }
}
