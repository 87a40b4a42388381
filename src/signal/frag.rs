//! `application/trickle-ice-sdpfrag` bodies (RFC 8840 §9), as WHIP/WHEP PATCH carries them.
//!
//! A fragment holds optional new ICE credentials (an ICE restart), and per media section a
//! mid and candidates. Real clients put a dummy `m=audio 9 RTP/AVP 0` line in front of a
//! video mid, so the `m=` line is only a section separator: the mid decides.

use crate::error::{Error, Result};
use crate::signal::candidate::Candidate;

/// One media section of a fragment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FragSection {
    pub mid: Option<String>,
    /// Candidate attribute values (after `a=candidate:`), already syntax-checked.
    pub candidates: Vec<String>,
    pub end_of_candidates: bool,
}

/// A parsed trickle-ice-sdpfrag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fragment {
    pub ice_ufrag: Option<String>,
    pub ice_pwd: Option<String>,
    pub sections: Vec<FragSection>,
    /// Session-level `a=end-of-candidates`.
    pub end_of_candidates: bool,
}

impl Fragment {
    /// True when the fragment asks for an ICE restart (new credentials).
    pub fn is_restart(&self) -> bool {
        self.ice_ufrag.is_some()
    }

    pub fn parse(body: &str) -> Result<Fragment> {
        let mut frag = Fragment::default();
        let mut current: Option<FragSection> = None;
        for (n, raw) in body.lines().enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .filter(|(k, _)| k.len() == 1)
                .ok_or_else(|| Error::BadFragment(format!("line {} is not an SDP line", n + 1)))?;
            match key {
                "m" => {
                    if value.split_ascii_whitespace().count() < 3 {
                        return Err(Error::BadFragment(format!(
                            "line {} is an incomplete m= line",
                            n + 1
                        )));
                    }
                    if let Some(s) = current.take() {
                        frag.sections.push(s);
                    }
                    current = Some(FragSection::default());
                }
                "a" => {
                    let (name, val) = value.split_once(':').unwrap_or((value, ""));
                    match name {
                        "ice-ufrag" => {
                            if val.is_empty() {
                                return Err(Error::BadFragment("empty ice-ufrag".into()));
                            }
                            frag.ice_ufrag = Some(val.to_string());
                        }
                        "ice-pwd" => {
                            if val.is_empty() {
                                return Err(Error::BadFragment("empty ice-pwd".into()));
                            }
                            frag.ice_pwd = Some(val.to_string());
                        }
                        "mid" => {
                            let s = current.get_or_insert_with(FragSection::default);
                            s.mid = Some(val.to_string());
                        }
                        "candidate" => {
                            Candidate::parse(val)
                                .map_err(|e| Error::BadFragment(format!("line {}: {e}", n + 1)))?;
                            current
                                .get_or_insert_with(FragSection::default)
                                .candidates
                                .push(val.to_string());
                        }
                        "end-of-candidates" => match current.as_mut() {
                            Some(s) => s.end_of_candidates = true,
                            None => frag.end_of_candidates = true,
                        },
                        _ => {} // ice-options, group and others carry nothing we act on
                    }
                }
                // Tolerate session lines some clients include; anything else is not a fragment.
                "v" | "o" | "s" | "t" | "c" | "b" => {}
                _ => {
                    return Err(Error::BadFragment(format!(
                        "line {} has unexpected type '{key}='",
                        n + 1
                    )));
                }
            }
        }
        if let Some(s) = current.take() {
            frag.sections.push(s);
        }
        if frag.ice_ufrag.is_some() != frag.ice_pwd.is_some() {
            return Err(Error::BadFragment(
                "ice-ufrag and ice-pwd must come together".into(),
            ));
        }
        Ok(frag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trickle_with_dummy_mline() {
        let f = Fragment::parse(
            "a=ice-options:trickle\r\nm=audio 9 RTP/AVP 0\r\na=mid:1\r\n\
a=candidate:1 1 udp 2130706431 198.18.0.2 5000 typ host\r\n",
        )
        .unwrap();
        assert!(!f.is_restart());
        assert_eq!(f.sections.len(), 1);
        assert_eq!(f.sections[0].mid.as_deref(), Some("1"));
        assert_eq!(f.sections[0].candidates.len(), 1);
    }

    #[test]
    fn end_of_candidates_alone() {
        let f = Fragment::parse("a=end-of-candidates\r\n").unwrap();
        assert!(f.end_of_candidates);
    }

    #[test]
    fn restart() {
        let f =
            Fragment::parse("a=ice-ufrag:new1\r\na=ice-pwd:pwpwpwpwpwpwpwpwpwpwpwpw\r\n").unwrap();
        assert!(f.is_restart());
        assert!(Fragment::parse("a=ice-ufrag:new1\r\n").is_err());
    }

    #[test]
    fn malformed() {
        for bad in [
            "garbage",
            "a=candidate:1 1 udp\r\n",
            "x=1\r\n",
            "m=audio\r\n",
            "\u{0}\u{1}",
        ] {
            assert_eq!(Fragment::parse(bad).unwrap_err().status(), 400, "{bad:?}");
        }
    }
}
