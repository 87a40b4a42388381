//! ICE restarts as the answerer (RFC 9725 §4.3.2): the restart on either kind of connection,
//! and the server's side of it read from a local description and
//! written as the `application/trickle-ice-sdpfrag` body of the 200 response.

use std::sync::Arc;

use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};

use crate::error::{Error, Result};
use crate::rtc::RtcPeer;
use crate::rtc::peer::Conn;

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

impl RtcPeer {
    /// Restarts ICE with the client's new credentials. Returns the server's new ufrag, pwd and
    /// candidate lines. On failure the previous ICE session stays in place.
    pub async fn restart_ice(&self, ufrag: &str, pwd: &str) -> Result<IceRestart> {
        let _g = self.ice_lock.lock().await;
        let remote = self
            .remote_sdp()
            .await
            .ok_or_else(|| Error::RestartFailed("the session has no remote description".into()))?;
        let mut sdp = String::with_capacity(remote.len());
        for line in remote.split_inclusive('\n') {
            let t = line.trim_end();
            if t.starts_with("a=ice-ufrag:") {
                sdp.push_str(&format!("a=ice-ufrag:{ufrag}\r\n"));
            } else if t.starts_with("a=ice-pwd:") {
                sdp.push_str(&format!("a=ice-pwd:{pwd}\r\n"));
            } else if t.starts_with("a=candidate:") || t.starts_with("a=end-of-candidates") {
                continue; // candidates of the old generation
            } else {
                sdp.push_str(line);
            }
        }
        let desc =
            RTCSessionDescription::offer(sdp).map_err(|e| Error::RestartFailed(e.to_string()))?;
        let local = match &self.conn {
            Conn::Lib(pc) => lib_restart(pc, desc).await?,
            Conn::Direct(d) => super::direct::restart(d, desc).await?,
        };
        let mut restart = IceRestart::from_sdp(&self.announce.rewrite(&local))?;
        if let Some(m) = &self.binding.mux {
            m.add_ufrag(&restart.ufrag);
        }
        if restart.candidates.is_empty() {
            // The sockets are kept across the restart, so the first answer's candidates stand.
            let first = self
                .answer_candidates
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            restart.candidates = first.clone();
        }
        Ok(restart)
    }
}

/// Answers an ICE-restart offer on a library connection; returns the local description.
async fn lib_restart(pc: &Arc<dyn PeerConnection>, desc: RTCSessionDescription) -> Result<String> {
    let failed = |e: webrtc::error::Error| Error::RestartFailed(e.to_string());
    pc.set_remote_description(desc).await.map_err(failed)?;
    let answer = pc.create_answer(None).await.map_err(failed)?;
    pc.set_local_description(answer).await.map_err(failed)?;
    pc.local_description()
        .await
        .map(|d| d.sdp)
        .ok_or_else(|| Error::RestartFailed("no local description".into()))
}
