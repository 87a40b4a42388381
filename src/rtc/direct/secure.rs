//! The keys of wisp's own viewer transport ([`super::own`]): the DTLS handshake's
//! configuration (wisp's certificate, the SRTP profiles it offers, the client's certificate
//! checked against its fingerprints) and the SRTP contexts exported from the finished handshake
//! (RFC 5764 §4.2).

use std::sync::Arc;

use ::rtc::crypto::RTCCryptoProvider;
use ::rtc::dtls::config::{
    ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig,
};
use ::rtc::dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use ::rtc::dtls::state::State;
use ::rtc::srtp::context::Context;
use ::rtc::srtp::protection_profile::ProtectionProfile;

/// Replay windows for what the client sends (SRTCP; SRTP too, though a viewer sends no media).
const REPLAY_WINDOW: usize = 64;

fn err(what: &str) -> impl Fn(::rtc::shared::error::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Our context (what wisp sends) and the client's, from `state`'s keying material.
pub(super) fn srtp_contexts(
    state: &State,
    crypto: &Arc<dyn RTCCryptoProvider>,
) -> Result<(Context, Context), String> {
    let profile = match state.srtp_protection_profile() {
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => ProtectionProfile::AeadAes128Gcm,
        SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm => ProtectionProfile::AeadAes256Gcm,
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => {
            ProtectionProfile::Aes128CmHmacSha1_80
        }
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32 => {
            ProtectionProfile::Aes128CmHmacSha1_32
        }
        _ => return Err("no SRTP profile agreed".into()),
    };
    let mut config = ::rtc::srtp::config::Config {
        profile,
        ..Default::default()
    };
    let material = state
        .export_keying_material(
            ::rtc::srtp::config::LABEL_EXTRACTOR_DTLS_SRTP,
            &[],
            config.keying_material_len(),
        )
        .map_err(err("keying material"))?;
    config
        .set_session_keys_from_keying_material(material.as_ref(), state.is_client())
        .map_err(err("session keys"))?;
    let crypto = crypto.crypto();
    let keys = &config.keys;
    let local = Context::new(
        &keys.local_master_key,
        &keys.local_master_salt,
        profile,
        None,
        None,
        crypto,
    )
    .map_err(err("SRTP"))?;
    let remote = Context::new(
        &keys.remote_master_key,
        &keys.remote_master_salt,
        profile,
        Some(::rtc::srtp::option::srtp_replay_protection(REPLAY_WINDOW)),
        Some(::rtc::srtp::option::srtcp_replay_protection(REPLAY_WINDOW)),
        crypto,
    )
    .map_err(err("SRTP"))?;
    Ok((local, remote))
}

/// The DTLS handshake configuration: wisp's certificate, the SRTP profiles it offers, and the
/// client's certificate checked against the fingerprints of its description.
pub(super) fn dtls_config(
    crypto: &Arc<dyn RTCCryptoProvider>,
    certificate: ::rtc::dtls::crypto::Certificate,
    fingerprints: Vec<String>,
    is_client: bool,
) -> Result<HandshakeConfig, String> {
    let hash = crypto.clone();
    let verify = Arc::new(
        move |certs: &[Vec<u8>], _: &[rustls::pki_types::CertificateDer<'static>]| {
            let first = certs
                .first()
                .ok_or(::rtc::shared::error::Error::ErrNonCertificate)?;
            let digest = hash
                .crypto()
                .hash(::rtc::crypto::HashAlgorithm::Sha256, first)
                .map_err(|e| ::rtc::shared::error::Error::Crypto(e.to_string()))?;
            let value = digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":");
            if fingerprints.contains(&value) {
                Ok(())
            } else {
                Err(::rtc::shared::error::Error::ErrNoMatchingCertificateFingerprint)
            }
        },
    );
    ConfigBuilder::default()
        .with_crypto_provider(crypto.clone())
        .with_certificates(vec![certificate])
        .with_srtp_protection_profiles(vec![
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
            SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
        ])
        .with_client_auth(ClientAuthType::RequireAnyClientCert)
        .with_insecure_skip_verify(true)
        .with_verify_peer_certificate(Some(verify))
        .with_extended_master_secret(ExtendedMasterSecretType::Require)
        .build(is_client, None)
        .map_err(err("DTLS config"))
}
