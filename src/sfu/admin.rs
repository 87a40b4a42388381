//! The operator's view and hands (the admin API): the rooms; one room's participants with their
//! tracks, and every viewer leg with what each slot shows, at which layer and rate, and the
//! leg's own network health (candidate types, loss, jitter, RTT from RTCP receiver reports);
//! kicking a participant and closing a room.
//!
//! The room's part comes from its planner in one consistent copy (`RoomPlan::view`); the
//! network part from each session's connection. Both are read on demand, never kept.

use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::rtc::stats::{LegStats, StreamStats};
use crate::sfu::plan::{PlanView, SlotView, ViewerView};
use crate::sfu::{ParticipantId, Room, RoomId, Session, SessionKind, Sfu};
use crate::signal::MediaKind;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomSummary {
    pub id: String,
    /// Publishing participants.
    pub participants: usize,
    /// WHEP sessions (conference participants' and players').
    pub viewers: usize,
    /// Cluster mode: the id of the node that owns the room.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackDetail {
    pub kind: &'static str,
    pub codec: String,
    /// The simulcast layer, `null` for a single-layer publisher.
    pub rid: Option<String>,
    pub bitrate_bps: u64,
    pub width: Option<u16>,
    pub height: Option<u16>,
    /// What wisp receives on it: packets, loss and jitter as wisp measures them.
    pub stats: Option<StreamStats>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantDetail {
    pub id: String,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub joined_at: u64,
    pub speaking: bool,
    /// The WHIP session's id.
    pub session: Option<String>,
    pub uptime_seconds: Option<f64>,
    pub network: Option<LegStats>,
    pub tracks: Vec<TrackDetail>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotDetail {
    pub mid: String,
    pub kind: &'static str,
    /// The participant the slot shows.
    pub shows: Option<String>,
    pub shows_name: Option<String>,
    /// The layer forwarded: its rid, `""` for a single-layer publisher, `null` when nothing
    /// flows (no holder yet, or not connected).
    pub layer: Option<String>,
    /// The forwarded layer's rate, bit/s.
    pub bitrate_bps: u64,
    pub width: Option<u16>,
    pub height: Option<u16>,
    /// What wisp sends on it and what the viewer reports back.
    pub stats: Option<StreamStats>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewerDetail {
    /// The WHEP session's id.
    pub session: String,
    /// The conference participant this leg belongs to (`?self=`).
    pub participant: Option<String>,
    /// The publisher a by-participant player follows.
    pub target: Option<String>,
    pub connected: bool,
    pub uptime_seconds: f64,
    /// The viewer leg's bandwidth estimate (its REMB and wisp's send-side estimate,
    /// `rtc::estimates`), bit/s.
    pub estimate_bps: Option<u64>,
    pub network: Option<LegStats>,
    pub slots: Vec<SlotDetail>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomDetail {
    pub id: String,
    pub participants: Vec<ParticipantDetail>,
    pub viewers: Vec<ViewerDetail>,
}

fn kind_name(k: MediaKind) -> &'static str {
    match k {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

fn sessions_of(sfu: &Sfu, room: &Arc<Room>) -> Vec<Arc<Session>> {
    sfu.sessions()
        .values()
        .filter(|s| Arc::ptr_eq(&s.room, room))
        .cloned()
        .collect()
}

/// Every room with its head counts, by name.
pub async fn rooms(sfu: &Sfu) -> Vec<RoomSummary> {
    let mut out = Vec::new();
    for room in sfu.rooms_now() {
        let Some(view) = room.call(|core, _| core.plan.view()).await else {
            continue;
        };
        out.push(RoomSummary {
            id: room.id.to_string(),
            participants: view.publishers.len(),
            viewers: view.viewers.len(),
            node: None,
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn slot(s: &SlotView, names: &PlanView, stats: Option<&LegStats>) -> SlotDetail {
    let name = s.shows.as_ref().and_then(|p| {
        names
            .publishers
            .iter()
            .find(|x| &x.id == p)
            .map(|x| x.name.clone())
    });
    SlotDetail {
        mid: s.mid.clone(),
        kind: kind_name(s.kind),
        shows: s.shows.as_ref().map(|p| p.to_string()),
        shows_name: name,
        layer: s.layer.clone().map(Option::unwrap_or_default),
        bitrate_bps: s.bitrate,
        width: s.dims.map(|d| d.0),
        height: s.dims.map(|d| d.1),
        stats: stats.and_then(|l| l.streams.iter().find(|x| x.mid == s.mid).cloned()),
    }
}

async fn viewer(v: &ViewerView, view: &PlanView, session: Option<&Arc<Session>>) -> ViewerDetail {
    let stats = match session {
        Some(s) => s.peer.stats().await,
        None => None,
    };
    let slots = v
        .slots
        .iter()
        .map(|s| slot(s, view, stats.as_ref()))
        .collect();
    ViewerDetail {
        session: v.id.to_string(),
        participant: v.participant.as_ref().map(|p| p.to_string()),
        target: v.target.as_ref().map(|p| p.to_string()),
        connected: v.connected,
        uptime_seconds: session.map_or(0.0, |s| s.started.elapsed().as_secs_f64()),
        estimate_bps: v.estimate,
        network: stats,
        slots,
    }
}

/// One room in full; `None` when there is no such room.
pub async fn room(sfu: &Sfu, id: &RoomId) -> Option<RoomDetail> {
    let room = sfu.room(id)?;
    let view = room.call(|core, _| core.plan.view()).await?;
    let sessions = sessions_of(sfu, &room);
    let mut participants = Vec::new();
    for p in &view.publishers {
        let session = sessions
            .iter()
            .find(|s| matches!(&s.kind, SessionKind::Publisher(x) if x.id == p.id));
        let stats = match session {
            Some(s) => s.peer.stats().await,
            None => None,
        };
        // A publisher's received streams, matched to tracks by kind in arrival order.
        let mut received: Vec<&StreamStats> = stats
            .as_ref()
            .map(|l| {
                l.streams
                    .iter()
                    .filter(|x| x.direction == "receive")
                    .collect()
            })
            .unwrap_or_default();
        let tracks = p
            .tracks
            .iter()
            .map(|t| {
                let kind = kind_name(t.kind);
                let i = received.iter().position(|x| x.kind == kind);
                TrackDetail {
                    kind,
                    codec: t.codec.clone(),
                    rid: t.rid.clone(),
                    bitrate_bps: t.bitrate,
                    width: t.dims.map(|d| d.0),
                    height: t.dims.map(|d| d.1),
                    stats: i.map(|i| received.remove(i).clone()),
                }
            })
            .collect();
        participants.push(ParticipantDetail {
            id: p.id.to_string(),
            name: p.name.clone(),
            joined_at: p.joined_at_ms,
            speaking: p.speaking,
            session: session.map(|s| s.id.to_string()),
            uptime_seconds: session.map(|s| s.started.elapsed().as_secs_f64()),
            network: stats,
            tracks,
        });
    }
    let mut viewers = Vec::new();
    for v in &view.viewers {
        let session = sessions.iter().find(|s| s.id == v.id);
        viewers.push(viewer(v, &view, session).await);
    }
    Some(RoomDetail {
        id: room.id.to_string(),
        participants,
        viewers,
    })
}

/// Ends every session of `participant` in `room`: its WHIP session and its conference WHEP
/// sessions (`?self=`). The room tells everyone it `left`. `404` when it has none.
pub async fn kick(sfu: &Sfu, room: &RoomId, participant: &ParticipantId) -> Result<usize> {
    let room = sfu.room(room).ok_or(Error::NotFound)?;
    let mine: Vec<_> = sessions_of(sfu, &room)
        .into_iter()
        .filter(|s| match &s.kind {
            SessionKind::Publisher(p) => &p.id == participant,
            SessionKind::Viewer(v) => v.exclude.as_ref() == Some(participant),
        })
        .map(|s| s.id)
        .collect();
    if mine.is_empty() {
        return Err(Error::NotFound);
    }
    for id in &mine {
        let _ = sfu.remove(*id).await;
    }
    tracing::info!(room = %room.id, participant = %participant, sessions = mine.len(), "kicked by an operator");
    Ok(mine.len())
}

/// Ends every session of `room` after telling its subscribers (`closing`) that an operator
/// closed it. `404` when there is no such room.
pub async fn close(sfu: &Sfu, room: &RoomId) -> Result<usize> {
    let r = sfu.room(room).ok_or(Error::NotFound)?;
    r.send(crate::sfu::room::Command::Closing {
        reason: "An operator closed this room.".into(),
        reconnect: false,
    })
    .await;
    let ids: Vec<_> = sessions_of(sfu, &r).into_iter().map(|s| s.id).collect();
    for id in &ids {
        let _ = sfu.remove(*id).await;
    }
    tracing::info!(room = %room, sessions = ids.len(), "room closed by an operator");
    Ok(ids.len())
}
