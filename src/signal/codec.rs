//! Codec identity and compatibility, decided by each codec's own rules rather than by
//! string equality: H.264 by RFC 6184 §8.2.2 (profile and packetization-mode must match, the
//! level may differ), VP9 and AV1 by profile, everything else by MIME type, clock rate and
//! channel count.

use std::collections::HashMap;

/// A codec as negotiated on one side: enough to decide whether another side can take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecSpec {
    /// e.g. `video/VP8`; compared case-insensitively.
    pub mime_type: String,
    pub clock_rate: u32,
    pub channels: u16,
    /// The `a=fmtp` parameter string, possibly empty.
    pub fmtp: String,
}

/// H.264 profiles that matter for decoder compatibility (RFC 6184, ITU-T H.264 Annex A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H264Profile {
    ConstrainedBaseline,
    Baseline,
    Main,
    Extended,
    ConstrainedHigh,
    High,
    High10,
    High422,
    High444,
}

/// Parses the profile part of a `profile-level-id` (six hex digits).
pub fn h264_profile(profile_level_id: &str) -> Option<H264Profile> {
    if profile_level_id.len() != 6 || !profile_level_id.is_ascii() {
        return None;
    }
    let idc = u8::from_str_radix(&profile_level_id[0..2], 16).ok()?;
    let iop = u8::from_str_radix(&profile_level_id[2..4], 16).ok()?;
    u8::from_str_radix(&profile_level_id[4..6], 16).ok()?;
    use H264Profile::*;
    let set0 = iop & 0x80 != 0;
    let set1 = iop & 0x40 != 0;
    let set3 = iop & 0x10 != 0;
    Some(match idc {
        0x42 if set1 => ConstrainedBaseline,
        0x42 => Baseline,
        0x4D if set0 => ConstrainedBaseline,
        0x4D => Main,
        0x58 if set0 && set1 => ConstrainedBaseline,
        0x58 if set0 => Baseline,
        0x58 => Extended,
        0x64 if iop & 0x0C == 0x0C => ConstrainedHigh,
        0x64 => High,
        0x6E if !set3 => High10,
        0x7A if !set3 => High422,
        0xF4 if !set3 => High444,
        _ => return None,
    })
}

/// Splits an fmtp string into lower-cased keys and their values.
pub fn fmtp_params(fmtp: &str) -> HashMap<String, String> {
    fmtp.split(';')
        .filter_map(|kv| {
            let kv = kv.trim();
            if kv.is_empty() {
                return None;
            }
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

impl CodecSpec {
    /// Lower-cased MIME subtype (`vp8`, `h264`, `opus`...).
    pub fn name(&self) -> String {
        self.mime_type
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase()
    }

    /// Whether a stream encoded as `self` can be sent on a payload type negotiated as `other`.
    pub fn compatible_with(&self, other: &CodecSpec) -> bool {
        if !self.mime_type.eq_ignore_ascii_case(&other.mime_type)
            || self.clock_rate != other.clock_rate
        {
            return false;
        }
        let name = self.name();
        if name == "opus" {
            return true; // channel count is always 2 in SDP for Opus
        }
        if self.channels != other.channels && self.channels > 1 && other.channels > 1 {
            return false;
        }
        let a = fmtp_params(&self.fmtp);
        let b = fmtp_params(&other.fmtp);
        let param = |m: &HashMap<String, String>, k: &str, default: &str| {
            m.get(k).cloned().unwrap_or_else(|| default.to_string())
        };
        match name.as_str() {
            "h264" => {
                param(&a, "packetization-mode", "0") == param(&b, "packetization-mode", "0")
                    && h264_profile(&param(&a, "profile-level-id", "42001f"))
                        == h264_profile(&param(&b, "profile-level-id", "42001f"))
            }
            "vp9" | "av1" => param(&a, "profile-id", "0") == param(&b, "profile-id", "0"),
            "rtx" => param(&a, "apt", "") == param(&b, "apt", ""),
            _ => true,
        }
    }

    /// The codec in words for a client: `video/VP9`, or `video/H264 (packetization-mode=1;…)`
    /// when it has parameters. Only printable ASCII is kept, so it fits an HTTP header and an
    /// SDP line whatever the publisher sent.
    pub fn describe(&self) -> String {
        let s = if self.fmtp.is_empty() {
            self.mime_type.clone()
        } else {
            format!("{} ({})", self.mime_type, self.fmtp)
        };
        s.chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    }

    /// Whether a stream encoded as `self` can be forwarded to a receiver that negotiated
    /// `receiver`: looser than [`CodecSpec::compatible_with`] where the receiver's decoder is a
    /// superset (an H.264 Constrained Baseline stream decodes on any profile's decoder, Main on
    /// High; packetization-mode 1 receivers also take single NAL unit mode 0).
    pub fn can_feed(&self, receiver: &CodecSpec) -> bool {
        if self.compatible_with(receiver) {
            return true;
        }
        // RED over Opus feeds an Opus receiver with its primary blocks (`media::red`).
        if self.is_red() && receiver.name() == "opus" {
            return true;
        }
        if self.name() != "h264" || !self.mime_type.eq_ignore_ascii_case(&receiver.mime_type) {
            return false;
        }
        let a = fmtp_params(&self.fmtp);
        let b = fmtp_params(&receiver.fmtp);
        let mode = |m: &HashMap<String, String>| {
            m.get("packetization-mode")
                .cloned()
                .unwrap_or_else(|| "0".into())
        };
        let (ma, mb) = (mode(&a), mode(&b));
        if ma != mb && !(ma == "0" && mb == "1") {
            return false;
        }
        let profile = |m: &HashMap<String, String>| {
            h264_profile(
                m.get("profile-level-id")
                    .map(String::as_str)
                    .unwrap_or("42001f"),
            )
        };
        use H264Profile::*;
        match (profile(&a), profile(&b)) {
            (Some(x), Some(y)) if x == y => true,
            (Some(ConstrainedBaseline), Some(_)) => true,
            (Some(Main), Some(High | High10 | High422 | High444)) => true,
            (Some(ConstrainedHigh), Some(High | High10 | High422 | High444)) => true,
            _ => false,
        }
    }

    pub fn is_red(&self) -> bool {
        self.mime_type.eq_ignore_ascii_case("audio/red")
    }

    /// The payload type of the encoding inside RED (`111/111` → 111).
    pub fn red_inner_pt(&self) -> Option<u8> {
        self.fmtp.split('/').next()?.trim().parse().ok()
    }

    /// What to bind a viewer's send track to for a publisher sending `self`, given the codecs
    /// the viewer offered on that m-line: RED only to a viewer that offered it.
    pub fn for_viewer(&self, offered: &[CodecSpec]) -> CodecSpec {
        if self.is_red() && !offered.iter().any(CodecSpec::is_red) {
            return opus_codec();
        }
        self.clone()
    }
}

/// The one-sentence reason of a WHEP counter-offer: the publisher's codecs that the offer's
/// m-lines (by mid) do not list, and what the player can do. Printable ASCII only, so it fits
/// an HTTP header and an SDP line whatever the offer and the publisher sent.
pub fn counter_offer_reason(missing: &[(&str, &CodecSpec)]) -> String {
    let what: Vec<String> = missing
        .iter()
        .map(|(mid, c)| format!("{} (mid {mid})", c.describe()))
        .collect();
    format!(
        "The publisher sends {}, which this offer does not list; answer this counter-offer by \
         PATCH to receive it.",
        what.join(" and ")
    )
    .chars()
    .filter(|c| c.is_ascii_graphic() || *c == ' ')
    .collect()
}

/// Reorders the H.264 payload types of each video m-line of a WHIP offer so that the variant
/// most viewers can decode comes first: packetization-mode 1 before 0, then Constrained
/// Baseline, Baseline, Main, Constrained High, High, others. Other codecs keep their places
/// (positions held by H.264 payloads are refilled in the new order), so the publisher's own
/// choice between codec families stands. Answerers take the first codec they share with the
/// offer, so a browser offering 42001f first and 42e01f later ends up sending Constrained
/// Baseline, which GStreamer and other players accept.
pub fn prefer_decodable_h264(sdp: &str) -> String {
    // payload type -> (is H.264, fmtp)
    let mut h264: HashMap<String, String> = HashMap::new();
    for line in sdp.lines() {
        if let Some(rest) = line.strip_prefix("a=rtpmap:")
            && let Some((pt, enc)) = rest.split_once(' ')
            && enc.to_ascii_lowercase().starts_with("h264/")
        {
            h264.entry(pt.to_string()).or_default();
        }
    }
    if h264.len() < 2 {
        return sdp.to_string();
    }
    for line in sdp.lines() {
        if let Some(rest) = line.strip_prefix("a=fmtp:")
            && let Some((pt, params)) = rest.split_once(' ')
            && let Some(f) = h264.get_mut(pt)
        {
            *f = params.trim().to_string();
        }
    }
    let rank = |pt: &str| {
        let p = fmtp_params(h264.get(pt).map(String::as_str).unwrap_or(""));
        let mode = p.get("packetization-mode").map(String::as_str) != Some("1");
        let profile = match p
            .get("profile-level-id")
            .and_then(|v| h264_profile(v))
            .unwrap_or(H264Profile::Baseline)
        {
            H264Profile::ConstrainedBaseline => 0,
            H264Profile::Baseline => 1,
            H264Profile::Main => 2,
            H264Profile::ConstrainedHigh => 3,
            H264Profile::High => 4,
            _ => 5,
        };
        (mode, profile)
    };
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let t = line.trim_end();
        let eol = &line[t.len()..];
        match t.strip_prefix("m=video ") {
            Some(rest) => {
                let fields: Vec<&str> = rest.split(' ').collect();
                if fields.len() < 3 {
                    out.push_str(line);
                    continue;
                }
                let pts = &fields[2..];
                let mut sorted: Vec<&str> = pts
                    .iter()
                    .copied()
                    .filter(|p| h264.contains_key(*p))
                    .collect();
                sorted.sort_by_key(|p| rank(p));
                let mut next = sorted.into_iter();
                let reordered: Vec<&str> = pts
                    .iter()
                    .map(|p| {
                        if h264.contains_key(*p) {
                            next.next().unwrap_or(p)
                        } else {
                            p
                        }
                    })
                    .collect();
                out.push_str("m=video ");
                out.push_str(&fields[..2].join(" "));
                out.push(' ');
                out.push_str(&reordered.join(" "));
                out.push_str(eol);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Opus as wisp offers and binds it by default.
pub fn opus_codec() -> CodecSpec {
    CodecSpec {
        mime_type: "audio/opus".into(),
        clock_rate: 48000,
        channels: 2,
        fmtp: "minptime=10;useinbandfec=1".into(),
    }
}

/// The RED codec wisp registers: over Opus at Chromium's payload type 111.
pub fn red_codec() -> CodecSpec {
    CodecSpec {
        mime_type: "audio/red".into(),
        clock_rate: 48000,
        channels: 2,
        fmtp: "111/111".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h264(fmtp: &str) -> CodecSpec {
        CodecSpec {
            mime_type: "video/H264".into(),
            clock_rate: 90000,
            channels: 0,
            fmtp: fmtp.into(),
        }
    }

    #[test]
    fn described_in_printable_words() {
        assert_eq!(
            h264("packetization-mode=1").describe(),
            "video/H264 (packetization-mode=1)"
        );
        let vp9 = CodecSpec {
            mime_type: "video/VP9".into(),
            clock_rate: 90000,
            channels: 0,
            fmtp: String::new(),
        };
        assert_eq!(vp9.describe(), "video/VP9");
        assert_eq!(h264("a=é\r\nb").describe(), "video/H264 (a=???b)");
        assert_eq!(
            counter_offer_reason(&[("1", &vp9), ("v\u{e9}\n", &h264("profile-level-id=640028"))]),
            "The publisher sends video/VP9 (mid 1) and video/H264 (profile-level-id=640028) \
             (mid v), which this offer does not list; answer this counter-offer by PATCH to \
             receive it."
        );
    }

    #[test]
    fn profiles() {
        use H264Profile::*;
        assert_eq!(h264_profile("42e01f"), Some(ConstrainedBaseline));
        assert_eq!(h264_profile("42001f"), Some(Baseline));
        assert_eq!(h264_profile("4d001f"), Some(Main));
        assert_eq!(h264_profile("640032"), Some(High));
        assert_eq!(h264_profile("640c1f"), Some(ConstrainedHigh));
        assert_eq!(h264_profile("f4001f"), Some(High444));
        assert_eq!(h264_profile("zz001f"), None);
        assert_eq!(h264_profile("42e0"), None);
        assert_eq!(h264_profile("é2e01f"), None);
    }

    #[test]
    fn h264_matches_by_profile_and_mode_not_string() {
        let cb_level31 = h264("packetization-mode=1;profile-level-id=42e01f");
        let cb_level52 = h264("profile-level-id=42E034; packetization-mode=1");
        let cb_via_main = h264("packetization-mode=1;profile-level-id=4de01f");
        let cb_mode0 = h264("packetization-mode=0;profile-level-id=42e01f");
        let high = h264("packetization-mode=1;profile-level-id=640032");
        assert!(cb_level31.compatible_with(&cb_level52));
        assert!(cb_level31.compatible_with(&cb_via_main));
        assert!(!cb_level31.compatible_with(&cb_mode0));
        assert!(!cb_level31.compatible_with(&high));
    }

    #[test]
    fn forwarding_to_a_superset_decoder() {
        let cb = h264("packetization-mode=1;profile-level-id=42c015");
        let high = h264("packetization-mode=1;profile-level-id=640028");
        let main = h264("packetization-mode=1;profile-level-id=4d001f");
        assert!(cb.can_feed(&high));
        assert!(main.can_feed(&high));
        assert!(!high.can_feed(&cb));
        assert!(!high.can_feed(&main));
        let cb_mode0 = h264("packetization-mode=0;profile-level-id=42e01f");
        assert!(cb_mode0.can_feed(&cb));
        assert!(!cb.can_feed(&cb_mode0));
    }

    #[test]
    fn other_codecs() {
        let vp8 = CodecSpec {
            mime_type: "video/VP8".into(),
            clock_rate: 90000,
            channels: 0,
            fmtp: String::new(),
        };
        let vp8b = CodecSpec {
            mime_type: "video/vp8".into(),
            ..vp8.clone()
        };
        assert!(vp8.compatible_with(&vp8b));
        let vp9p0 = CodecSpec {
            mime_type: "video/VP9".into(),
            fmtp: "profile-id=0".into(),
            ..vp8.clone()
        };
        let vp9p2 = CodecSpec {
            fmtp: "profile-id=2".into(),
            ..vp9p0.clone()
        };
        assert!(!vp9p0.compatible_with(&vp9p2));
        assert!(!vp8.compatible_with(&vp9p0));
    }

    #[test]
    fn constrained_baseline_mode_1_goes_first_among_h264_only() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 102 104 106 108 45\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:104 H264/90000\r\na=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n\
a=rtpmap:106 H264/90000\r\na=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:108 H264/90000\r\na=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640034\r\n\
a=rtpmap:45 AV1/90000\r\n";
        let out = prefer_decodable_h264(sdp);
        assert!(
            out.contains("m=video 9 UDP/TLS/RTP/SAVPF 96 106 102 108 104 45\r\n"),
            "{out}"
        );
        // Everything else is untouched.
        assert_eq!(
            out.replace("96 106 102 108 104 45", "96 102 104 106 108 45"),
            sdp
        );
        // One H.264 variant, or none: nothing to do.
        let vp8 = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";
        assert_eq!(prefer_decodable_h264(vp8), vp8);
    }
}
