//! Validation of WHIP and WHEP offers before any peer connection is built.
//!
//! The rules: the SDP must parse and carry ICE credentials and a DTLS fingerprint; a WHIP
//! offer's live m-lines must send (`sendonly`/`sendrecv`), a WHEP offer's must receive
//! (`recvonly`/`sendrecv`); a WHIP publisher sends at most one audio and one video track
//! (simulcast layers share one m-line); an m-line with port 0 is disabled unless it is
//! `a=bundle-only`.

use std::io::Cursor;

use rtc::sdp::SessionDescription;

use crate::error::{Error, Result};
use crate::signal::CodecSpec;

/// Which side of the protocol an offer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A WHIP publisher: the server receives.
    Publish,
    /// A WHEP viewer: the server sends.
    Play,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

/// One live audio/video m-line of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    pub mid: String,
    pub kind: MediaKind,
    pub direction: Direction,
    /// The codecs listed on this m-line, in the offer's order of preference.
    pub codecs: Vec<CodecSpec>,
}

/// What the server needs to know about an accepted offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferSummary {
    /// Live audio/video sections, in m-line order.
    pub media: Vec<MediaSection>,
    /// Every mid in the offer (including disabled and data sections), for trickle matching.
    pub mids: Vec<String>,
}

impl OfferSummary {
    pub fn count(&self, kind: MediaKind) -> usize {
        self.media.iter().filter(|m| m.kind == kind).count()
    }
}

/// Most slots one WHEP session may ask for, per kind.
pub const MAX_PLAY_SLOTS: usize = 16;

fn direction_of(attrs: &[rtc::sdp::description::common::Attribute]) -> Option<Direction> {
    attrs.iter().find_map(|a| match a.key.as_str() {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    })
}

/// The codecs of one m-line in format order (media formats like rtx/red/fec included).
fn codecs_of(m: &rtc::sdp::MediaDescription, kind: MediaKind) -> Vec<CodecSpec> {
    let map = m.codecs();
    let prefix = match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    };
    m.media_name
        .formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| map.get(&pt))
        .filter(|c| !c.name.is_empty())
        .map(|c| CodecSpec {
            mime_type: format!("{prefix}/{}", c.name),
            clock_rate: c.clock_rate,
            channels: c.encoding_parameters.parse().unwrap_or(0),
            fmtp: c.fmtp.clone(),
        })
        .collect()
}

/// Whether a codec carries media (as opposed to repair or redundancy formats).
pub fn is_media_codec(c: &CodecSpec) -> bool {
    !matches!(
        c.name().as_str(),
        "rtx" | "red" | "ulpfec" | "flexfec-03" | "telephone-event" | "cn"
    )
}

/// The first media codec of each live audio/video m-line of an SDP this server produced
/// (an answer to a publisher): what the publisher will send.
pub fn first_codecs(sdp: &str) -> Vec<(MediaKind, CodecSpec)> {
    let Ok(parsed) = SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes())) else {
        return vec![];
    };
    parsed
        .media_descriptions
        .iter()
        .filter(|m| m.media_name.port.value != 0 || m.has_attribute("bundle-only"))
        .filter_map(|m| {
            let kind = match m.media_name.media.as_str() {
                "audio" => MediaKind::Audio,
                "video" => MediaKind::Video,
                _ => return None,
            };
            codecs_of(m, kind)
                .into_iter()
                .find(is_media_codec)
                .map(|c| (kind, c))
        })
        .collect()
}

/// The `a=extmap` id negotiated for `uri` on the first live m-line of `kind`.
pub fn extmap_id(sdp: &str, kind: MediaKind, uri: &str) -> Option<u8> {
    let parsed = SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes())).ok()?;
    let want = match kind {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    };
    parsed
        .media_descriptions
        .iter()
        .filter(|m| m.media_name.media == want)
        .flat_map(|m| m.attributes.iter())
        .filter(|a| a.key == "extmap")
        .find_map(|a| {
            let v = a.value.as_deref()?;
            let (id, rest) = v.split_once(' ')?;
            let u = rest.split_whitespace().next()?;
            (u == uri).then(|| id.split('/').next()?.parse().ok())?
        })
}

/// `sdp` (one this server produced) with a session-level `i=` line (RFC 8866 §5.4, session
/// information: free text for people) saying `info`, placed right after `s=` as the grammar
/// wants. Used to put the reason for a WHEP counter-offer into the body itself, for clients
/// that show the body and nothing else. `info` must be one line; an SDP without `s=` is
/// returned unchanged.
pub fn with_session_info(sdp: &str, info: &str) -> String {
    let info: String = info.chars().filter(|c| !c.is_control()).collect();
    let mut out = String::with_capacity(sdp.len() + info.len() + 4);
    let mut done = false;
    for line in sdp.split_inclusive('\n') {
        out.push_str(line);
        if !done && line.starts_with("s=") {
            out.push_str("i=");
            out.push_str(&info);
            out.push_str(if line.ends_with("\r\n") { "\r\n" } else { "\n" });
            done = true;
        }
    }
    out
}

/// Parses and validates an offer for `role`.
pub fn parse_offer(sdp: &str, role: Role) -> Result<OfferSummary> {
    if !sdp.trim_start().starts_with("v=") {
        return Err(Error::BadSdp("it does not start with a v= line".into()));
    }
    let parsed = SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .map_err(|e| Error::BadSdp(e.to_string().trim_end_matches('.').to_string()))?;
    if parsed.media_descriptions.is_empty() {
        return Err(Error::Unprocessable("it has no m-lines".into()));
    }
    let session_dir = direction_of(&parsed.attributes).unwrap_or(Direction::SendRecv);
    let session_ufrag = parsed.attribute("ice-ufrag").is_some();
    let session_fp = parsed.attribute("fingerprint").is_some();

    let mut summary = OfferSummary {
        media: vec![],
        mids: vec![],
    };
    for (index, m) in parsed.media_descriptions.iter().enumerate() {
        let mid = m
            .attribute("mid")
            .flatten()
            .map(str::to_string)
            .ok_or_else(|| Error::BadSdp(format!("m-line {index} has no a=mid")))?;
        summary.mids.push(mid.clone());
        let kind = match m.media_name.media.as_str() {
            "audio" => MediaKind::Audio,
            "video" => MediaKind::Video,
            _ => continue, // data channels and other media are left unanswered
        };
        let bundle_only = m.has_attribute("bundle-only");
        if m.media_name.port.value == 0 && !bundle_only {
            continue; // disabled m-line
        }
        if !session_ufrag && m.attribute("ice-ufrag").is_none() && !bundle_only {
            return Err(Error::BadSdp(format!("m-line {index} has no a=ice-ufrag")));
        }
        if !session_fp && m.attribute("fingerprint").is_none() && !bundle_only {
            return Err(Error::BadSdp(format!(
                "m-line {index} has no a=fingerprint"
            )));
        }
        if m.codecs().is_empty() && m.media_name.formats.is_empty() {
            return Err(Error::BadSdp(format!("m-line {index} lists no formats")));
        }
        let direction = direction_of(&m.attributes).unwrap_or(session_dir);
        let usable = match role {
            Role::Publish => matches!(direction, Direction::SendOnly | Direction::SendRecv),
            Role::Play => matches!(direction, Direction::RecvOnly | Direction::SendRecv),
        };
        if !usable {
            let want = match role {
                Role::Publish => "sendonly",
                Role::Play => "recvonly",
            };
            return Err(Error::Unprocessable(format!(
                "m-line {index} is {direction:?} but this endpoint needs {want} media"
            )));
        }
        summary.media.push(MediaSection {
            mid,
            kind,
            direction,
            codecs: codecs_of(m, kind),
        });
    }
    if summary.media.is_empty() {
        return Err(Error::Unprocessable(
            "it has no usable audio or video m-line".into(),
        ));
    }
    let max = match role {
        Role::Publish => 1,
        Role::Play => MAX_PLAY_SLOTS,
    };
    for kind in [MediaKind::Audio, MediaKind::Video] {
        if summary.count(kind) > max {
            return Err(Error::Unprocessable(format!(
                "it has {} {kind:?} m-lines and this endpoint takes at most {max}",
                summary.count(kind)
            )));
        }
    }
    Ok(summary)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal browser-like offer with the given directions for an audio and a video line.
    pub fn offer(audio_dir: &str, video_dir: &str) -> String {
        format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
a=fingerprint:sha-256 AA:BB\r\na=ice-ufrag:abcd\r\na=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na={audio_dir}\r\na=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na={video_dir}\r\na=rtcp-mux\r\n\
a=rtpmap:96 VP8/90000\r\n"
        )
    }

    #[test]
    fn session_info_goes_after_the_session_name() {
        let sdp = offer("sendonly", "sendonly");
        let with = with_session_info(&sdp, "The publisher sends video/VP9.\r\nm=evil");
        assert!(
            with.starts_with("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\ni=The publisher sends video/VP9.m=evil\r\nt=0 0\r\n"),
            "{with}"
        );
        assert_eq!(with.matches("i=").count(), 1);
        let parsed = SessionDescription::unmarshal(&mut Cursor::new(with.as_bytes())).unwrap();
        assert_eq!(
            parsed.session_information.as_deref(),
            Some("The publisher sends video/VP9.m=evil")
        );
        assert_eq!(with_session_info("v=0\r\n", "x"), "v=0\r\n");
    }

    #[test]
    fn accepts_a_publisher_offer() {
        let s = parse_offer(&offer("sendonly", "sendonly"), Role::Publish).unwrap();
        assert_eq!(s.media.len(), 2);
        assert_eq!(s.mids, vec!["0", "1"]);
    }

    #[test]
    fn lists_codecs_in_order() {
        let s = parse_offer(&offer("sendonly", "sendonly"), Role::Publish).unwrap();
        assert_eq!(s.media[0].codecs[0].mime_type, "audio/opus");
        assert_eq!(s.media[0].codecs[0].channels, 2);
        assert_eq!(s.media[1].codecs[0].mime_type, "video/VP8");
        let first = first_codecs(&offer("recvonly", "recvonly"));
        assert_eq!(first.len(), 2);
        assert_eq!(first[1].0, MediaKind::Video);
    }

    #[test]
    fn finds_extmap_ids() {
        let sdp = offer("sendonly", "sendonly").replace(
            "a=rtpmap:111 opus/48000/2\r\n",
            "a=rtpmap:111 opus/48000/2\r\na=extmap:1/sendonly urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n",
        );
        let uri = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
        assert_eq!(extmap_id(&sdp, MediaKind::Audio, uri), Some(1));
        assert_eq!(extmap_id(&sdp, MediaKind::Video, uri), None);
    }

    #[test]
    fn direction_rules() {
        let e = parse_offer(&offer("recvonly", "recvonly"), Role::Publish).unwrap_err();
        assert_eq!(e.status(), 422);
        let e = parse_offer(&offer("inactive", "sendonly"), Role::Publish).unwrap_err();
        assert_eq!(e.status(), 422);
        assert!(parse_offer(&offer("recvonly", "sendrecv"), Role::Play).is_ok());
        assert_eq!(
            parse_offer(&offer("sendonly", "sendonly"), Role::Play)
                .unwrap_err()
                .status(),
            422
        );
    }

    #[test]
    fn too_many_tracks_for_whip() {
        let mut sdp = offer("sendonly", "sendonly");
        sdp = sdp.replace("a=group:BUNDLE 0 1", "a=group:BUNDLE 0 1 2");
        sdp.push_str("m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n");
        assert_eq!(parse_offer(&sdp, Role::Publish).unwrap_err().status(), 422);
    }

    #[test]
    fn bundle_only_port_zero_is_live() {
        let sdp = offer("sendonly", "sendonly").replace(
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
            "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=bundle-only\r\n",
        );
        assert_eq!(parse_offer(&sdp, Role::Publish).unwrap().media.len(), 2);
    }

    #[test]
    fn malformed_is_400() {
        for bad in ["", "hello", "v=0\r\nm=audio\r\n", "v=0\r\no=x\r\n"] {
            let e = parse_offer(bad, Role::Publish).unwrap_err();
            assert!(matches!(e.status(), 400 | 422), "{bad:?} -> {e}");
        }
        let no_mid = offer("sendonly", "sendonly").replace("a=mid:1\r\n", "");
        assert_eq!(
            parse_offer(&no_mid, Role::Publish).unwrap_err().status(),
            400
        );
    }
}
