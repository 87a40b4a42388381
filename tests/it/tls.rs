//! HTTPS (rustls, ALPN h2), certificate reload without dropping sessions, and configured DTLS
//! certificates.

use std::path::PathBuf;

use crate::harness::*;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use wisp::config::Tls;
use wisp::http::paths;

struct Cert {
    cert_pem: String,
    key_pem: String,
}

fn make_cert() -> Cert {
    let c =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    Cert {
        cert_pem: c.cert.pem(),
        key_pem: c.signing_key.serialize_pem(),
    }
}

/// A scratch directory for one test's certificate files, removed when the test ends.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dir(name: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("wisp-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

fn write(d: &std::path::Path, c: &Cert) -> (PathBuf, PathBuf) {
    let (cp, kp) = (d.join("cert.pem"), d.join("key.pem"));
    std::fs::write(&cp, &c.cert_pem).unwrap();
    std::fs::write(&kp, &c.key_pem).unwrap();
    (cp, kp)
}

/// A client that trusts exactly `c`.
fn strict(c: &Cert) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(c.cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_h2_by_alpn() {
    let a = make_cert();
    let d = dir("alpn");
    let (cert, key) = write(&d, &a);
    let mut c = test_config();
    c.tls = Tls::Files { cert, key };
    let server = start_with(c).await;
    let r = strict(&a)
        .get(url(&server, &paths::whip("room")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_the_certificate_and_keeps_media_flowing() {
    let (a, b) = (make_cert(), make_cert());
    let d = dir("reload");
    let (cert, key) = write(&d, &a);
    let mut c = test_config();
    c.tls = Tls::Files { cert, key };
    let server = start_with(c).await;
    let publisher = Publisher::join(&server, "tls").await;
    publisher.send_video(0, true).await;
    let mut viewer = Viewer::join(&server, &paths::whep("tls")).await;

    let mut n = 1u16;
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(5));
    let mut receive = async |want: usize, n: &mut u16| {
        let mut got = 0;
        while got < want {
            assert!(*n < 3000, "media stopped");
            ticker.tick().await;
            publisher.send_video(*n, (*n).is_multiple_of(10)).await;
            *n += 1;
            while let Ok((kind, _)) = viewer.packets.try_recv() {
                if kind == RtpCodecKind::Video {
                    got += 1;
                }
            }
        }
    };
    receive(10, &mut n).await;

    write(&d, &b);
    server.reload_tls().unwrap();
    assert!(
        strict(&b)
            .get(url(&server, &paths::whip("x")))
            .send()
            .await
            .is_ok()
    );
    assert!(
        strict(&a)
            .get(url(&server, &paths::whip("x")))
            .send()
            .await
            .is_err(),
        "the old certificate is no longer served"
    );
    // Sessions were not touched: media keeps flowing.
    receive(10, &mut n).await;
    assert_eq!(server.sfu.session_count(), 2);

    // A broken file keeps the current certificate.
    std::fs::write(d.join("cert.pem"), "not a pem").unwrap();
    assert!(server.reload_tls().is_err());
    assert!(
        strict(&b)
            .get(url(&server, &paths::whip("x")))
            .send()
            .await
            .is_ok()
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_pem_fails_at_start_with_a_clear_message() {
    let d = dir("bad");
    std::fs::write(d.join("cert.pem"), "garbage").unwrap();
    std::fs::write(d.join("key.pem"), "garbage").unwrap();
    let mut c = test_config();
    c.tls = Tls::Files {
        cert: d.join("cert.pem"),
        key: d.join("key.pem"),
    };
    let e = wisp::Server::start(c).await.err().expect("refused");
    assert!(e.to_string().contains("TLS certificate"), "{e}");
    let mut c = test_config();
    c.dtls = Some((d.join("cert.pem"), d.join("key.pem")));
    let e = wisp::Server::start(c).await.err().expect("refused");
    assert!(e.to_string().contains("DTLS certificate"), "{e}");
}

#[tokio::test]
async fn configured_dtls_certificate_gives_a_stable_fingerprint() {
    let a = make_cert();
    let d = dir("dtls");
    let (cert, key) = write(&d, &a);
    let fingerprint = |_| {
        let mut c = test_config();
        c.dtls = Some((cert.clone(), key.clone()));
        wisp::rtc::RtcEngine::new(c.rtc_settings())
            .unwrap()
            .fingerprint()
            .to_string()
    };
    let (f1, f2) = (fingerprint(1), fingerprint(2));
    assert!(!f1.is_empty());
    assert_eq!(f1, f2, "same files, same fingerprint across restarts");
    let mut c = test_config();
    c.dtls = None;
    let generated = wisp::rtc::RtcEngine::new(c.rtc_settings()).unwrap();
    assert_ne!(generated.fingerprint(), f1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_over_tls_uses_the_https_certificate() {
    use rtc::stun::message::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cert = make_cert();
    let d = dir("turns");
    let (cp, kp) = write(&d, &cert);
    let mut c = test_config();
    c.tls = Tls::Files { cert: cp, key: kp };
    let relay = c.ice_ports.0 - 100;
    c.turn = Some(wisp::turn::TurnConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls_listen: Some("127.0.0.1:0".parse().unwrap()),
        host: "localhost".into(),
        secret: b"s".to_vec(),
        relay_ports: (relay, relay + 9),
        relay_bind: "127.0.0.1".parse().unwrap(),
        relay_public: "127.0.0.1".parse().unwrap(),
        credential_ttl: std::time::Duration::from_secs(600),
        quota: 4,
    });
    let server = start_with(c).await;
    let turn = server.turn.as_ref().unwrap();
    let links = turn.links("r");
    assert!(
        links.iter().any(|l| l.starts_with(&format!(
            "<turns:localhost:{}?transport=tcp>",
            turn.tls_addr.unwrap().port()
        ))),
        "{links:?}"
    );

    // A client that trusts exactly the HTTPS certificate, speaking STUN over TLS.
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(turn.tls_addr.unwrap())
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = within(
        "the TLS handshake",
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp),
    )
    .await
    .unwrap();
    let mut req = Message::new();
    req.build(&[Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)])
        .unwrap();
    tls.write_all(&req.raw).await.unwrap();
    let mut head = [0u8; 20];
    within("a STUN answer over TLS", tls.read_exact(&mut head))
        .await
        .unwrap();
    let len = u16::from_be_bytes([head[2], head[3]]) as usize;
    let mut body = vec![0u8; len];
    tls.read_exact(&mut body).await.unwrap();
    let mut resp = Message::new();
    resp.unmarshal_binary(&[head.as_slice(), &body].concat())
        .unwrap();
    assert_eq!(resp.typ, BINDING_SUCCESS);
    assert_eq!(resp.transaction_id, req.transaction_id);
}
