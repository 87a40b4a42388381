//! RFC 2198 redundant audio (`audio/red`, as Chromium offers it over Opus): what wisp
//! negotiates, and which viewers get it.
//!
//! Policy: a publisher that offers RED over Opus is answered with RED first, so it sends each
//! Opus frame together with a copy of the previous one (one lost packet costs no audio).
//! Viewers that offered RED over the same Opus payload type get the packets as they are;
//! every other viewer gets Opus (the primary block only, see `media::red`), so RED never
//! reaches a player that cannot take it.

pub use crate::signal::codec::{opus_codec, red_codec};

/// Reorders each audio m-line of an offer so that RED over one of its Opus payload types
/// comes first (the answer follows the offer's order, and the offerer sends the answer's
/// first codec). Offers without RED, or with RED over something else, are returned as is.
pub fn prefer_red(sdp: &str) -> String {
    let mut red = Vec::new();
    let mut opus = Vec::new();
    for line in sdp.lines() {
        if let Some((pt, enc)) = line
            .strip_prefix("a=rtpmap:")
            .and_then(|r| r.split_once(' '))
        {
            let enc = enc.to_ascii_lowercase();
            if enc.starts_with("red/48000") {
                red.push(pt.to_string());
            } else if enc.starts_with("opus/48000") {
                opus.push(pt.to_string());
            }
        }
    }
    // RED whose blocks are Opus: `a=fmtp:<red> <opus>/<opus>`.
    let over_opus: Vec<&String> = red
        .iter()
        .filter(|pt| {
            sdp.lines().any(|l| {
                l.strip_prefix("a=fmtp:")
                    .and_then(|r| r.split_once(' '))
                    .is_some_and(|(p, f)| {
                        p == pt.as_str() && f.trim().split('/').all(|b| opus.iter().any(|o| o == b))
                    })
            })
        })
        .collect();
    if over_opus.is_empty() {
        return sdp.to_string();
    }
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let t = line.trim_end();
        let eol = &line[t.len()..];
        let fields: Vec<&str> = match t.strip_prefix("m=audio ") {
            Some(rest) => rest.split(' ').collect(),
            None => {
                out.push_str(line);
                continue;
            }
        };
        if fields.len() < 3 {
            out.push_str(line);
            continue;
        }
        let pts = &fields[2..];
        let first: Vec<&str> = pts
            .iter()
            .copied()
            .filter(|p| over_opus.iter().any(|r| r == p))
            .collect();
        let rest = pts.iter().copied().filter(|p| !first.contains(p));
        let order: Vec<&str> = first.iter().copied().chain(rest).collect();
        out.push_str(&format!(
            "m=audio {} {} {}{eol}",
            fields[0],
            fields[1],
            order.join(" ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_AUDIO: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n";

    #[test]
    fn red_over_opus_goes_first() {
        let out = prefer_red(CHROME_AUDIO);
        assert!(
            out.contains("m=audio 9 UDP/TLS/RTP/SAVPF 63 111 9 0 8 13 110 126\r\n"),
            "{out}"
        );
        assert!(out.contains("m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"));
        assert_eq!(out.len(), CHROME_AUDIO.len());
    }

    #[test]
    fn other_offers_are_untouched() {
        let no_red = "m=audio 9 RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n";
        assert_eq!(prefer_red(no_red), no_red);
        // RED over a payload type that is not Opus.
        let odd = "m=audio 9 RTP/SAVPF 111 63 0\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 0/0\r\n";
        assert_eq!(prefer_red(odd), odd);
    }

    #[test]
    fn viewers_get_red_only_when_they_offered_it() {
        let red = red_codec();
        assert_eq!(red.red_inner_pt(), Some(111));
        let opus = opus_codec();
        assert!(
            red.for_viewer(std::slice::from_ref(&opus))
                .mime_type
                .eq_ignore_ascii_case("audio/opus")
        );
        assert!(red.for_viewer(&[opus.clone(), red.clone()]).is_red());
        assert!(!opus.for_viewer(std::slice::from_ref(&red)).is_red());
    }
}
