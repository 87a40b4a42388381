//! ICE restarts as the answerer (RFC 9725 §4.3.2): the restart on either kind of connection,
//! and the server's side of it read from a local description and
//! written as the `application/trickle-ice-sdpfrag` body of the 200 response.

use crate::error::{Error, Result};

/// The server's side of an ICE restart, to be sent back as an sdpfrag.
#[derive(Debug, Clone)]
pub struct IceRestart {
    pub ufrag: String,
    pub pwd: String,
    /// (mid, candidate attribute values) of the first bundled m-line.
    pub mid: String,
    pub candidates: Vec<String>,
}

impl IceRestart {
    pub(crate) fn from_sdp(sdp: &str) -> Result<IceRestart> {
        let mut ufrag = None;
        let mut pwd = None;
        let mut mid = None;
        let mut candidates = Vec::new();
        for line in sdp.lines() {
            let line = line.trim_end();
            if let Some(v) = line.strip_prefix("a=ice-ufrag:") {
                ufrag.get_or_insert_with(|| v.to_string());
            } else if let Some(v) = line.strip_prefix("a=ice-pwd:") {
                pwd.get_or_insert_with(|| v.to_string());
            } else if let Some(v) = line.strip_prefix("a=mid:") {
                mid.get_or_insert_with(|| v.to_string());
            } else if let Some(v) = line.strip_prefix("a=candidate:")
                && !candidates.iter().any(|c: &String| c == v)
            {
                candidates.push(v.to_string());
            }
        }
        match (ufrag, pwd) {
            (Some(ufrag), Some(pwd)) => Ok(IceRestart {
                ufrag,
                pwd,
                mid: mid.unwrap_or_else(|| "0".into()),
                candidates,
            }),
            _ => Err(Error::RestartFailed(
                "the new answer has no ICE credentials".into(),
            )),
        }
    }

    /// The sdpfrag body for a 200 response to a restart PATCH (RFC 8840 §9).
    pub fn to_sdpfrag(&self) -> String {
        let mut s = format!(
            "a=ice-options:trickle\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:{}\r\n",
            self.ufrag, self.pwd, self.mid
        );
        for c in &self.candidates {
            s.push_str(&format!("a=candidate:{c}\r\n"));
        }
        s.push_str("a=end-of-candidates\r\n");
        s
    }
}
