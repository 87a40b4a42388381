//! One peer connection per WHIP/WHEP session once built: trickle, ICE restart, statistics,
//! close. Publisher legs are built in `lib_leg`, viewer legs in `direct`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use webrtc::peer_connection::{PeerConnection, RTCIceCandidateInit, RTCSessionDescription};

use crate::error::{Error, Result};
use crate::lock::Locked;
use crate::rtc::ice::IceRestart;
use crate::rtc::mux::MuxConn;
use crate::rtc::track::{InTrackInfo, KeyframeRequester, RtpSink};
use crate::rtc::{PeerState, PortLease};
use crate::signal::{Fragment, OfferSummary};

/// How long an answer may wait for local candidates to be gathered.
const GATHER_TIMEOUT: Duration = Duration::from_secs(5);

/// What a session learns from its peer connection.
pub trait PeerObserver: Send + Sync + 'static {
    fn on_state(&self, state: PeerState);
    /// A publisher's track arrived: where should its packets go? `None` ignores the track.
    fn on_track(&self, info: InTrackInfo, keyframes: KeyframeRequester)
    -> Option<Arc<dyn RtpSink>>;
}

/// What a connection holds on the network: a port of its own, or a place on the shared port.
pub(crate) struct Binding {
    pub(crate) _lease: Option<PortLease>,
    pub(crate) mux: Option<Arc<MuxConn>>,
    /// Its places on the ICE-TCP listeners (viewer legs, with `--ice-tcp-port`).
    pub(crate) tcp: Option<Arc<super::tcp::TcpConn>>,
}

/// Who drives a connection.
pub(crate) enum Conn {
    /// The library's async layer: publishers.
    Lib(Arc<dyn PeerConnection>),
    /// wisp's own driver task over the sans-IO core: every viewer (`rtc::direct`).
    Direct(super::direct::DirectConn),
}

/// One running peer connection and the port it holds.
pub struct RtcPeer {
    pub(crate) conn: Conn,
    /// Held for the connection's lifetime; released when the peer is dropped.
    pub(crate) binding: Binding,
    state: watch::Receiver<PeerState>,
    gathered: watch::Receiver<bool>,
    /// Mids of the negotiated m-lines, for trickle candidates.
    mids: Vec<String>,
    filter: crate::signal::CandidateFilter,
    /// Maps bound candidate addresses to the announced ones.
    pub(crate) announce: crate::rtc::Announcer,
    /// Serialises ICE restarts (and trickles during them) on this connection.
    pub(crate) ice_lock: tokio::sync::Mutex<()>,
    /// The candidates of the first answer (the sockets outlive ICE restarts).
    pub(crate) answer_candidates: std::sync::Mutex<Vec<String>>,
    /// Send tracks of a counter-offer, waiting for the client's answer.
    pub(crate) pending: tokio::sync::Mutex<Option<Vec<crate::rtc::direct::PendingTrack>>>,
    /// What the viewer reports about a viewer leg's streams.
    pub(crate) reports: Option<Arc<crate::rtc::feedback::ReportBook>>,
}

impl RtcPeer {
    pub(crate) fn new(
        conn: Conn,
        binding: Binding,
        state: watch::Receiver<PeerState>,
        gathered: watch::Receiver<bool>,
        summary: &OfferSummary,
        settings: &crate::rtc::RtcSettings,
    ) -> RtcPeer {
        RtcPeer {
            conn,
            binding,
            state,
            gathered,
            mids: summary.mids.clone(),
            filter: settings.filter.clone(),
            announce: settings.announcer(),
            ice_lock: tokio::sync::Mutex::new(()),
            answer_candidates: std::sync::Mutex::new(Vec::new()),
            pending: tokio::sync::Mutex::new(None),
            reports: None,
        }
    }

    /// Completes a counter-offer with the client's answer (WHEP draft-03 §4.2): applies it on
    /// the viewer leg and gives each track the codecs it negotiated.
    pub async fn apply_answer(&self, answer: &str) -> Result<()> {
        let mut pending = self.pending.lock().await;
        let (Some(tracks), Conn::Direct(d)) = (pending.take(), &self.conn) else {
            return Err(Error::Unprocessable(
                "this session is not waiting for an SDP answer".into(),
            ));
        };
        let desc = RTCSessionDescription::answer(self.filter.filter_sdp(answer))
            .map_err(|e| Error::BadSdp(e.to_string().trim_end_matches('.').to_string()))?;
        let senders: Vec<_> = tracks
            .iter()
            .map(|t| (t.sender, t.out.mid.clone()))
            .collect();
        let result = d
            .call(move |core, now| {
                let pc = core.model.as_mut().ok_or("no signalling model")?;
                pc.set_remote_description(now, desc)
                    .map_err(|e| e.to_string())?;
                let codecs = senders
                    .iter()
                    .map(|(s, _)| crate::rtc::direct::negotiated(pc, *s))
                    .collect::<Vec<_>>();
                core.start_own(now, &senders)?;
                Ok::<_, String>(codecs)
            })
            .await?;
        match result {
            Ok(codecs) => {
                for (t, c) in tracks.iter().zip(codecs) {
                    let _ = t.out.negotiated.set(c);
                }
                Ok(())
            }
            Err(e) => {
                *pending = Some(tracks); // the client may answer again
                Err(Error::Unprocessable(format!("answer: {e}")))
            }
        }
    }

    /// Applies a remote offer (candidates filtered), answers it and waits for gathering so the
    /// answer carries every server candidate.
    pub(crate) async fn negotiate(&self, offer: &str) -> Result<String> {
        let filtered = self.filter.filter_sdp(offer);
        let desc = RTCSessionDescription::offer(filtered)
            .map_err(|e| Error::BadSdp(e.to_string().trim_end_matches('.').to_string()))?;
        let pc = self.lib()?;
        pc.set_remote_description(desc)
            .await
            .map_err(super::lib_leg::lib_error("remote description"))?;
        let answer = pc
            .create_answer(None)
            .await
            .map_err(super::lib_leg::lib_error("answer"))?;
        self.set_local_and_gather(answer).await
    }

    /// Offers (wisp as the offerer: a cascade's upstream leg), gathered.
    pub(crate) async fn make_offer(&self) -> Result<String> {
        let pc = self.lib()?;
        let offer = pc
            .create_offer(None)
            .await
            .map_err(super::lib_leg::lib_error("offer"))?;
        self.set_local_and_gather(offer).await
    }

    /// Applies the answer to [`RtcPeer::make_offer`]'s offer (candidates filtered as a
    /// client's are).
    pub async fn accept_answer(&self, answer: &str) -> Result<()> {
        let desc = RTCSessionDescription::answer(self.filter.filter_sdp(answer))
            .map_err(|e| Error::BadSdp(e.to_string().trim_end_matches('.').to_string()))?;
        self.lib()?
            .set_remote_description(desc)
            .await
            .map_err(super::lib_leg::lib_error("remote answer"))
    }

    /// Sets our side of the exchange, waits (bounded) for gathering so the SDP carries every
    /// server candidate, and keeps those candidates for ICE restarts (the sockets outlive them).
    async fn set_local_and_gather(&self, desc: RTCSessionDescription) -> Result<String> {
        let pc = self.lib()?;
        pc.set_local_description(desc)
            .await
            .map_err(super::lib_leg::lib_error("local description"))?;
        let mut gathered = self.gathered.clone();
        let _ = tokio::time::timeout(GATHER_TIMEOUT, gathered.wait_for(|g| *g)).await;
        let sdp = pc
            .local_description()
            .await
            .map(|d| self.announce.rewrite(&d.sdp))
            .ok_or_else(|| Error::Internal("no local description after gathering".into()))?;
        if let Ok(r) = IceRestart::from_sdp(&sdp) {
            *self.answer_candidates.locked() = r.candidates;
        }
        Ok(sdp)
    }

    /// The client's current ICE username fragment (from the applied remote description, or
    /// the running transport's).
    pub async fn remote_ufrag(&self) -> Option<String> {
        use crate::rtc::direct::ice_credentials;
        let ufrag = |sdp: &str| ice_credentials(sdp).map(|(u, _)| u);
        match &self.conn {
            Conn::Lib(pc) => ufrag(&pc.remote_description().await?.sdp),
            Conn::Direct(d) => d
                .call(move |core, _| match (&core.own, &core.model) {
                    (Some(own), _) => Some(own.remote_ufrag().to_string()),
                    (None, Some(pc)) => ufrag(&pc.remote_description()?.sdp),
                    (None, None) => None,
                })
                .await
                .ok()
                .flatten(),
        }
    }

    pub fn state(&self) -> PeerState {
        *self.state.borrow()
    }

    /// The library connection; signalling steps that only it carries (publishers,
    /// counter-offers) use this.
    pub(crate) fn lib(&self) -> Result<&Arc<dyn PeerConnection>> {
        match &self.conn {
            Conn::Lib(pc) => Ok(pc),
            Conn::Direct(_) => Err(Error::Internal("not a library-driven connection".into())),
        }
    }

    /// The applied remote description (of a library-driven connection).
    pub(crate) async fn remote_sdp(&self) -> Option<String> {
        self.lib().ok()?.remote_description().await.map(|d| d.sdp)
    }

    /// The connection's statistics, summarised for an operator; `None` once it has ended.
    pub async fn stats(&self) -> Option<crate::rtc::stats::LegStats> {
        use ::rtc::statistics::StatsSelector;
        let now = std::time::Instant::now();
        let mut stats = match &self.conn {
            Conn::Lib(pc) => {
                crate::rtc::stats::summarize(&pc.get_stats(now, StatsSelector::None).await)
            }
            Conn::Direct(d) => d
                // Not started (a counter-offer still to be answered): nothing to show yet.
                .call(move |core, _| core.own.as_ref().map(|o| o.stats()).unwrap_or_default())
                .await
                .ok()?,
        };
        if let Some(book) = &self.reports {
            crate::rtc::stats::add_reports(&mut stats, book);
        }
        Some(stats)
    }

    /// A receiver of state changes.
    pub fn watch_state(&self) -> watch::Receiver<PeerState> {
        self.state.clone()
    }

    /// Adds trickled candidates; unusable ones are dropped silently.
    pub async fn add_candidates(&self, frag: &Fragment) -> Result<()> {
        let _g = self.ice_lock.lock().await;
        let mut inits = Vec::new();
        for section in &frag.sections {
            let mid = section
                .mid
                .as_ref()
                .filter(|m| self.mids.contains(m))
                .or_else(|| self.mids.first())
                .cloned();
            for cand in &section.candidates {
                let usable = crate::signal::Candidate::parse(cand)
                    .map(|c| self.filter.usable(&c))
                    .unwrap_or(false);
                if !usable {
                    continue;
                }
                inits.push(RTCIceCandidateInit {
                    candidate: format!("candidate:{cand}"),
                    sdp_mid: mid.clone(),
                    ..Default::default()
                });
            }
        }
        match &self.conn {
            Conn::Lib(pc) => {
                for init in inits {
                    if let Err(e) = pc.add_ice_candidate(init).await {
                        tracing::debug!("remote candidate not added: {e}");
                    }
                }
            }
            Conn::Direct(d) => {
                d.call(|core, _| {
                    for init in inits {
                        if let Some(own) = &mut core.own {
                            own.add_remote_candidate(&init.candidate);
                        } else if let Some(pc) = &mut core.model
                            && let Err(e) = pc.add_remote_candidate(init)
                        {
                            // Kept in the model until the transport starts from it.
                            tracing::debug!("remote candidate not added: {e}");
                        }
                    }
                })
                .await?
            }
        }
        Ok(())
    }

    /// Restarts ICE with the client's new credentials. Returns the server's new ufrag, pwd and
    /// candidate lines. On failure the previous ICE session stays in place.
    pub async fn restart_ice(&self, ufrag: &str, pwd: &str) -> Result<IceRestart> {
        let _g = self.ice_lock.lock().await;
        if let Conn::Direct(d) = &self.conn {
            let (lufrag, lpwd) =
                super::direct::restart(d, (ufrag.to_string(), pwd.to_string())).await?;
            self.new_ufrag(&lufrag);
            return Ok(IceRestart {
                ufrag: lufrag,
                pwd: lpwd,
                mid: self.mids.first().cloned().unwrap_or_else(|| "0".into()),
                // The sockets are kept across the restart, so the first answer's candidates
                // stand.
                candidates: self.answer_candidates.locked().clone(),
            });
        }
        let remote = self
            .remote_sdp()
            .await
            .ok_or_else(|| Error::RestartFailed("the session has no remote description".into()))?;
        // The library renegotiates to restart ICE, and on a renegotiation it re-binds a
        // simulcast publisher's receive tracks to SSRCs it has yet to learn from the MID/RID
        // header extensions — which browsers stop sending once the SSRC is acknowledged: the
        // video never comes back (seen in the lab with Chromium). Refused instead, as RFC 9725
        // §4.3.2 allows; the client's fresh POST with its resume secret keeps its place.
        if matches!(self.conn, Conn::Lib(_))
            && remote.lines().any(|l| l.starts_with("a=simulcast:"))
        {
            return Err(Error::RestartFailed(
                "this server cannot restart ICE on a simulcast publisher; POST again with the X-Wisp-Resume secret to continue as the same participant".into(),
            ));
        }
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
        let local = super::lib_leg::lib_restart(self.lib()?, desc).await?;
        let mut restart = IceRestart::from_sdp(&self.announce.rewrite(&local))?;
        self.new_ufrag(&restart.ufrag);
        if restart.candidates.is_empty() {
            // The sockets are kept across the restart, so the first answer's candidates stand.
            let first = self.answer_candidates.locked();
            restart.candidates = first.clone();
        }
        Ok(restart)
    }

    /// Routes datagrams and TCP streams that name our new ufrag to this connection.
    fn new_ufrag(&self, ufrag: &str) {
        if let Some(m) = &self.binding.mux {
            m.add_ufrag(ufrag);
        }
        if let Some(t) = &self.binding.tcp {
            t.add_ufrag(ufrag);
        }
    }

    pub async fn close(&self) {
        match &self.conn {
            Conn::Lib(pc) => {
                if let Err(e) = pc.close().await {
                    tracing::debug!("close: {e}");
                }
            }
            Conn::Direct(d) => d.close(),
        }
    }
}
