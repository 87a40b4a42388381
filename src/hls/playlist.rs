//! The LL-HLS media playlist (RFC 8216bis): segments of about [`SEGMENT`] starting on
//! keyframes, each made of parts of about [`PART`], the next part announced as a preload hint.
//! Pure: rendered from the stream's state; URIs carry the stream's id so every segment and
//! part URI names one immutable object forever (a restarted packager never reuses one).

use std::collections::VecDeque;
use std::fmt::Write;

use bytes::Bytes;

/// Aim of a part's duration, seconds.
pub const PART: f64 = 1.0 / 3.0;
/// The most a part may last (`PART-TARGET`).
pub const PART_TARGET: f64 = 0.4;
/// Aim of a segment's duration, seconds (cut at the first keyframe past it).
pub const SEGMENT: f64 = 2.0;
/// `EXT-X-TARGETDURATION`: segments wait for a keyframe, so they may run longer than the aim.
pub const TARGET_DURATION: u64 = 4;
/// Complete segments kept in the playlist.
pub const KEEP: usize = 6;

#[derive(Debug, Clone)]
pub struct Part {
    pub bytes: Bytes,
    pub duration: f64,
    /// Starts with a keyframe.
    pub independent: bool,
}

#[derive(Debug, Clone)]
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    pub parts: Vec<Part>,
    pub complete: bool,
    /// Wall-clock time of its first sample, milliseconds since the epoch.
    pub date_ms: u64,
}

impl Segment {
    pub fn duration(&self) -> f64 {
        self.parts.iter().map(|p| p.duration).sum()
    }
}

/// What a playlist is rendered from.
#[derive(Debug, Default)]
pub struct Stream {
    /// In every URI (see the module's doc).
    pub id: String,
    pub init: Option<Bytes>,
    pub segments: VecDeque<Segment>,
}

pub fn init_uri(id: &str) -> String {
    format!("{id}-init.mp4")
}

pub fn part_uri(id: &str, msn: u64, part: usize) -> String {
    format!("{id}-{msn}.{part}.m4s")
}

pub fn segment_uri(id: &str, msn: u64) -> String {
    format!("{id}-{msn}.m4s")
}

/// What a media URI names.
#[derive(Debug, PartialEq, Eq)]
pub enum Named {
    Init,
    Segment(u64),
    Part(u64, usize),
}

/// Parses a URI this stream wrote; `None` for anything else (another stream's included).
pub fn parse_uri(id: &str, file: &str) -> Option<Named> {
    let rest = file.strip_prefix(id)?.strip_prefix('-')?;
    if rest == "init.mp4" {
        return Some(Named::Init);
    }
    let rest = rest.strip_suffix(".m4s")?;
    match rest.split_once('.') {
        Some((m, p)) => Some(Named::Part(m.parse().ok()?, p.parse().ok()?)),
        None => Some(Named::Segment(rest.parse().ok()?)),
    }
}

fn date(ms: u64) -> String {
    let secs = ms / 1000;
    let t = crate::record::format_utc(secs); // YYYYMMDDTHHMMSSZ
    format!(
        "{}-{}-{}T{}:{}:{}.{:03}Z",
        &t[0..4],
        &t[4..6],
        &t[6..8],
        &t[9..11],
        &t[11..13],
        &t[13..15],
        ms % 1000
    )
}

/// The playlist; `query` (e.g. `?token=…`) is appended to every URI.
pub fn render(s: &Stream, query: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-VERSION:9");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{TARGET_DURATION}");
    let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={PART_TARGET:.3}");
    let _ = writeln!(
        out,
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3},HOLD-BACK={:.3}",
        PART_TARGET * 3.0,
        TARGET_DURATION as f64 * 3.0
    );
    let first = s.segments.front().map_or(0, |g| g.msn);
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first}");
    let _ = writeln!(out, "#EXT-X-MAP:URI=\"{}{query}\"", init_uri(&s.id));
    // Parts are listed for the last few segments only (RFC 8216bis §4.4.4.9: at least those
    // within three target durations of the end).
    let with_parts = s.segments.len().saturating_sub(3);
    for (i, g) in s.segments.iter().enumerate() {
        let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", date(g.date_ms));
        if i >= with_parts {
            for (n, p) in g.parts.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "#EXT-X-PART:DURATION={:.3},URI=\"{}{query}\"{}",
                    p.duration,
                    part_uri(&s.id, g.msn, n),
                    if p.independent {
                        ",INDEPENDENT=YES"
                    } else {
                        ""
                    }
                );
            }
        }
        if g.complete {
            let _ = writeln!(out, "#EXTINF:{:.3},", g.duration());
            let _ = writeln!(out, "{}{query}", segment_uri(&s.id, g.msn));
        }
    }
    if let Some(g) = s.segments.back() {
        let (msn, part) = if g.complete {
            (g.msn + 1, 0)
        } else {
            (g.msn, g.parts.len())
        };
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}{query}\"",
            part_uri(&s.id, msn, part)
        );
    }
    out
}

/// Whether the stream holds part `part` of segment `msn` (or the whole segment, when `part`
/// is `None`), as a blocking playlist reload waits for (`_HLS_msn`, `_HLS_part`).
pub fn has(s: &Stream, msn: u64, part: Option<usize>) -> bool {
    let Some(last) = s.segments.back() else {
        return false;
    };
    match part {
        None => msn < last.msn || (msn == last.msn && last.complete),
        Some(p) => msn < last.msn || (msn == last.msn && (last.complete || p < last.parts.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(d: f64, key: bool) -> Part {
        Part {
            bytes: Bytes::from_static(b"x"),
            duration: d,
            independent: key,
        }
    }

    fn stream() -> Stream {
        let mut s = Stream {
            id: "s1".into(),
            init: Some(Bytes::new()),
            segments: VecDeque::new(),
        };
        s.segments.push_back(Segment {
            msn: 4,
            parts: vec![
                part(0.5, true),
                part(0.5, false),
                part(0.5, false),
                part(0.5, false),
            ],
            complete: true,
            date_ms: 1_796_328_930_250,
        });
        s.segments.push_back(Segment {
            msn: 5,
            parts: vec![part(0.5, true)],
            complete: false,
            date_ms: 1_796_328_932_250,
        });
        s
    }

    #[test]
    fn renders_ll_hls() {
        let p = render(&stream(), "?token=t");
        assert!(p.starts_with("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:4\n"));
        assert!(p.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.200"));
        assert!(p.contains("#EXT-X-MEDIA-SEQUENCE:4\n"));
        assert!(p.contains("#EXT-X-MAP:URI=\"s1-init.mp4?token=t\""));
        assert!(
            p.contains("#EXT-X-PART:DURATION=0.500,URI=\"s1-4.0.m4s?token=t\",INDEPENDENT=YES")
        );
        assert!(p.contains("#EXTINF:2.000,\ns1-4.m4s?token=t\n"));
        assert!(p.contains("#EXT-X-PROGRAM-DATE-TIME:2026-12-03T20:15:30.250Z"));
        assert!(p.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s1-5.1.m4s?token=t\"\n"));
    }

    #[test]
    fn blocking_reload_targets() {
        let s = stream();
        assert!(has(&s, 4, None));
        assert!(has(&s, 5, Some(0)));
        assert!(!has(&s, 5, Some(1)));
        assert!(!has(&s, 5, None));
        assert!(!has(&s, 6, Some(0)));
    }

    #[test]
    fn uris_parse_back_only_for_this_stream() {
        assert_eq!(parse_uri("s1", "s1-init.mp4"), Some(Named::Init));
        assert_eq!(parse_uri("s1", "s1-4.m4s"), Some(Named::Segment(4)));
        assert_eq!(parse_uri("s1", "s1-4.2.m4s"), Some(Named::Part(4, 2)));
        assert_eq!(parse_uri("s1", "s0-4.2.m4s"), None);
        assert_eq!(parse_uri("s1", "s1-x.m4s"), None);
    }
}
