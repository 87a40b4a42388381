//! What signalling agreed, read from the model `RTCPeerConnection` for wisp's own transport
//! ([`super::own`]): ICE credentials, the DTLS role and the client's certificate fingerprints,
//! the client's candidates, and each send stream as the interceptors bind it.

use ::rtc::interceptor::{RTCPFeedback, RTPHeaderExtension, StreamInfo};
use ::rtc::peer_connection::RTCPeerConnection;
use ::rtc::rtp_transceiver::RTCRtpSenderId;

use super::own::Agreed;

/// The values of `a=<name>:` lines, session and media level alike, in order.
fn attrs<'a>(sdp: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    sdp.lines().filter_map(move |l| {
        l.trim_end()
            .strip_prefix("a=")?
            .strip_prefix(name)?
            .strip_prefix(':')
    })
}

/// A description's (first) ICE ufrag and password.
pub(crate) fn ice_credentials(sdp: &str) -> Option<(String, String)> {
    let ufrag = attrs(sdp, "ice-ufrag").next()?;
    let pwd = attrs(sdp, "ice-pwd").next()?;
    Some((ufrag.trim().to_owned(), pwd.trim().to_owned()))
}

/// What `pc` (with both descriptions applied) agreed for `senders`' streams (each with its
/// m-line's mid).
pub(crate) fn agreed(
    pc: &mut RTCPeerConnection,
    senders: &[(Option<RTCRtpSenderId>, String)],
) -> Result<Agreed, String> {
    let local = pc
        .local_description()
        .ok_or("no local description")?
        .sdp
        .clone();
    let remote = pc
        .remote_description()
        .ok_or("no remote description")?
        .sdp
        .clone();
    let (local_ufrag, local_pwd) = ice_credentials(&local).ok_or("no local ICE credentials")?;
    let (remote_ufrag, remote_pwd) =
        ice_credentials(&remote).ok_or("the offer has no ICE credentials")?;
    let fingerprints: Vec<String> = attrs(&remote, "fingerprint")
        .filter_map(|f| f.trim().split_once(' '))
        .filter(|(alg, _)| alg.eq_ignore_ascii_case("sha-256"))
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .collect();
    if fingerprints.is_empty() {
        return Err("the offer has no sha-256 certificate fingerprint".into());
    }
    let streams = senders
        .iter()
        .filter_map(|(id, mid)| Some((pc.rtp_sender((*id)?)?.get_parameters().clone(), mid)))
        .flat_map(|(p, mid)| {
            let codecs = p.rtp_parameters.codecs;
            let extensions: Vec<RTPHeaderExtension> = p
                .rtp_parameters
                .header_extensions
                .iter()
                .map(|h| RTPHeaderExtension {
                    uri: h.uri.clone(),
                    id: h.id,
                })
                .collect();
            p.encodings
                .into_iter()
                .filter_map(|e| {
                    let ssrc = e.rtp_coding_parameters.ssrc?;
                    let codec = codecs.first()?;
                    let apt = format!("apt={}", codec.payload_type);
                    let rtx_pt = codecs
                        .iter()
                        .find(|c| {
                            c.rtp_codec.mime_type.to_ascii_lowercase().ends_with("/rtx")
                                && c.rtp_codec
                                    .sdp_fmtp_line
                                    .split(';')
                                    .any(|f| f.trim() == apt)
                        })
                        .map(|c| c.payload_type);
                    let info = StreamInfo {
                        ssrc,
                        ssrc_rtx: e.rtp_coding_parameters.rtx.as_ref().map(|r| r.ssrc),
                        payload_type: codec.payload_type,
                        payload_type_rtx: rtx_pt,
                        rtp_header_extensions: extensions.clone(),
                        mime_type: codec.rtp_codec.mime_type.clone(),
                        clock_rate: codec.rtp_codec.clock_rate,
                        channels: codec.rtp_codec.channels,
                        sdp_fmtp_line: codec.rtp_codec.sdp_fmtp_line.clone(),
                        rtcp_feedback: codec
                            .rtp_codec
                            .rtcp_feedback
                            .iter()
                            .map(|f| RTCPFeedback {
                                typ: f.typ.clone(),
                                parameter: f.parameter.clone(),
                            })
                            .collect(),
                        ..Default::default()
                    };
                    Some((info, mid.clone()))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(Agreed {
        local_ufrag,
        local_pwd,
        remote_ufrag,
        remote_pwd,
        dtls_client: attrs(&local, "setup").next().map(str::trim) == Some("active"),
        fingerprints,
        remote_candidates: attrs(&remote, "candidate").map(str::to_owned).collect(),
        streams,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_credentials_at_either_level() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:abcd\r\na=ice-pwd:secretsecretsecretsecret\r\n";
        assert_eq!(
            ice_credentials(sdp),
            Some(("abcd".into(), "secretsecretsecretsecret".into()))
        );
        assert_eq!(ice_credentials("v=0\r\na=ice-ufrag:x\r\n"), None);
        assert_eq!(attrs("a=setup:active\r\n", "setup").next(), Some("active"));
        assert_eq!(attrs("a=setupx:active\r\n", "setup").next(), None);
    }
}
