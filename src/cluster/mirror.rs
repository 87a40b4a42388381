//! One mirrored publisher of a cascade: the upstream WHEP legs an edge keeps to the origin for
//! it. A single-stream publisher is one leg (audio and video); a simulcast publisher is one leg
//! per layer, each pinned to its layer through the origin's WHEP layer extension and fed into
//! the edge's room as that layer (the first leg also carries the audio), so the edge's players
//! choose their layer on the edge as they would on the origin.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::cluster::cascade::Sender;
use crate::sfu::{Participant, ParticipantId, RoomId, SessionId, Sfu};
use crate::signal::MediaKind;

/// How long one node-to-node request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The legs of one mirrored publisher, and the layers they were built for (none: one stream).
pub(crate) struct Mirror {
    legs: Vec<Leg>,
    pub(crate) layers: Vec<String>,
}

/// One upstream leg: the edge's session and the origin's session URL (for its DELETE).
struct Leg {
    session: SessionId,
    upstream: String,
}

impl Mirror {
    /// Whether every leg still runs (a leg whose transport failed ended its session).
    pub(crate) fn alive(&self, sfu: &Sfu) -> bool {
        self.legs.iter().all(|l| sfu.session(l.session).is_some())
    }
}

/// What each leg of a publisher with `layers` receives and which layer it is pinned to.
fn plan(layers: &[String]) -> Vec<(Vec<MediaKind>, Option<String>)> {
    if layers.len() < 2 {
        return vec![(vec![MediaKind::Audio, MediaKind::Video], None)];
    }
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let kinds = if i == 0 {
                vec![MediaKind::Audio, MediaKind::Video]
            } else {
                vec![MediaKind::Video]
            };
            (kinds, Some(l.clone()))
        })
        .collect()
}

/// `location` resolved against `origin` (a node's URL).
fn absolute(origin: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        format!("{origin}{location}")
    }
}

impl Cluster {
    /// Mirrors publisher `p` of `room` from the origin as `layers` (see [`plan`]). All legs
    /// or none: a leg that cannot start ends the others.
    pub(crate) async fn start_mirror(
        &self,
        room: &RoomId,
        origin: &str,
        p: &ParticipantId,
        s: &Sender,
        layers: Vec<String>,
    ) -> Result<Mirror, String> {
        let participant =
            Participant::mirror(p.clone(), s.name.clone(), s.joined_at, SessionId::new());
        let mut mirror = Mirror {
            legs: Vec::new(),
            layers: layers.clone(),
        };
        for (i, (kinds, layer)) in plan(&layers).into_iter().enumerate() {
            let session = if i == 0 {
                participant.session
            } else {
                SessionId::new()
            };
            match self
                .start_leg(room, origin, &participant, session, &kinds, layer)
                .await
            {
                Ok(leg) => mirror.legs.push(leg),
                Err(e) => {
                    self.end_mirror(&mirror).await;
                    return Err(e);
                }
            }
        }
        Ok(mirror)
    }

    /// One upstream leg: its offer to the origin's `/whep/{room}/{participant}`, the answer
    /// applied, and its video pinned to `layer` through the origin's layer extension.
    async fn start_leg(
        &self,
        room: &RoomId,
        origin: &str,
        participant: &Arc<Participant>,
        session: SessionId,
        kinds: &[MediaKind],
        layer: Option<String>,
    ) -> Result<Leg, String> {
        let (pending, offer) = self
            .sfu
            .mirror_offer(room, participant, session, kinds, layer.clone())
            .await
            .map_err(|e| e.to_string())?;
        let url = format!(
            "{origin}{}",
            crate::http::paths::whep_participant(room.as_str(), participant.id.as_str())
        );
        let posted = self
            .internal(self.http.post(&url))
            .timeout(REQUEST_TIMEOUT)
            .header("content-type", "application/sdp")
            .body(offer)
            .send()
            .await;
        let resp = match posted {
            Ok(r) if r.status() == reqwest::StatusCode::CREATED => r,
            Ok(r) => {
                self.sfu.mirror_abandon(pending).await;
                return Err(format!("the origin answered {}", r.status()));
            }
            Err(e) => {
                self.sfu.mirror_abandon(pending).await;
                return Err(e.to_string());
            }
        };
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|l| absolute(origin, l));
        let layer_url = resp
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|l| l.contains(crate::http::paths::LAYER_REL))
            .and_then(|l| {
                l.split_once('<')?
                    .1
                    .split_once('>')
                    .map(|(u, _)| u.to_owned())
            })
            .map(|u| absolute(origin, &u));
        let answer = match resp.text().await {
            Ok(a) => a,
            Err(e) => {
                self.sfu.mirror_abandon(pending).await;
                return Err(e.to_string());
            }
        };
        let Some(upstream) = location else {
            self.sfu.mirror_abandon(pending).await;
            return Err("the origin's 201 had no Location".into());
        };
        let leg = match self.sfu.mirror_start(pending, &answer).await {
            Ok(session) => Leg { session, upstream },
            Err(e) => {
                let _ = self
                    .internal(self.http.delete(&upstream))
                    .timeout(REQUEST_TIMEOUT)
                    .send()
                    .await;
                return Err(e.to_string());
            }
        };
        if let Some(rid) = layer {
            // The leg's video m-line is its last (mids 0, 1, … in `kinds` order).
            let media_id = (kinds.len() - 1).to_string();
            let pinned = match layer_url {
                Some(u) => self
                    .internal(self.http.post(&u))
                    .timeout(REQUEST_TIMEOUT)
                    .header("content-type", "application/json")
                    .body(serde_json::json!({"mediaId": media_id, "rid": rid}).to_string())
                    .send()
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| {
                        r.status()
                            .is_success()
                            .then_some(())
                            .ok_or(format!("the origin answered {}", r.status()))
                    }),
                None => Err("the origin's 201 had no layer link".into()),
            };
            if let Err(e) = pinned {
                self.end_leg(&leg).await;
                return Err(format!("layer {rid} not pinned: {e}"));
            }
        }
        Ok(leg)
    }

    /// Each publisher's simulcast layers on the origin (from its admin API, which the
    /// cluster's secret may read); `None` when the origin cannot be asked.
    pub(crate) async fn layers(
        &self,
        origin: &str,
        room: &RoomId,
    ) -> Option<HashMap<ParticipantId, Vec<String>>> {
        let url = format!("{origin}/api/rooms/{room}");
        let resp = self
            .internal(self.http.get(&url))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&resp.text().await.ok()?).ok()?;
        let mut out = HashMap::new();
        for p in v["participants"].as_array()? {
            let Some(id) = p["id"].as_str().and_then(|i| ParticipantId::parse(i).ok()) else {
                continue;
            };
            let rids: Vec<String> = p["tracks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["kind"] == "video")
                .filter_map(|t| t["rid"].as_str().map(str::to_owned))
                .collect();
            if !rids.is_empty() {
                out.insert(id, rids);
            }
        }
        Some(out)
    }

    /// Ends a mirror's legs.
    pub(crate) async fn end_mirror(&self, m: &Mirror) {
        for leg in &m.legs {
            self.end_leg(leg).await;
        }
    }

    /// Ends a leg's session on the origin, then here (so by the time the edge's room ends, the
    /// origin has let the upstream go).
    async fn end_leg(&self, leg: &Leg) {
        let _ = self
            .internal(self.http.delete(&leg.upstream))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        let _ = self.sfu.remove(leg.session).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layered_publisher_is_one_leg_per_layer_the_first_with_audio() {
        let one = plan(&[]);
        assert_eq!(one, vec![(vec![MediaKind::Audio, MediaKind::Video], None)]);
        assert_eq!(plan(&["f".into()]), one, "one layer is one stream");
        let three = plan(&["q".into(), "h".into(), "f".into()]);
        assert_eq!(
            three,
            vec![
                (vec![MediaKind::Audio, MediaKind::Video], Some("q".into())),
                (vec![MediaKind::Video], Some("h".into())),
                (vec![MediaKind::Video], Some("f".into())),
            ]
        );
    }

    #[test]
    fn locations_resolve_against_the_origin() {
        assert_eq!(
            absolute("http://a:1", "/whep/session/x"),
            "http://a:1/whep/session/x"
        );
        assert_eq!(absolute("http://a:1", "http://b:2/s"), "http://b:2/s");
    }
}
