//! A room: its publishers (participants) and viewers, and the assignment of viewer slots to
//! publisher tracks. Membership changes take the room's lock and re-point slots; the packet
//! path never takes it (fan-outs hold their own lock-free snapshots).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, watch};

use crate::media::vad::{Dominant, Vad, VadConfig};
use crate::media::{LayerDesc, LayerPref, SlotSink, TrackFanout};
use crate::sfu::events::{ParticipantInfo, RoomEvent, SlotInfo};
use crate::sfu::ids::{ParticipantId, RoomId, SessionId};
use crate::signal::MediaKind;

/// Room events a slow consumer may fall behind by before it is dropped.
pub const EVENT_BACKLOG: usize = 256;
/// How long the dominant speaker holds the floor before another may take it.
pub const DOMINANT_DWELL: Duration = Duration::from_millis(1500);
/// How long a participant keeps a slot before a more recent speaker may take it (last-N).
pub const SLOT_DWELL: Duration = Duration::from_secs(3);

/// A publisher in a room.
pub struct Participant {
    pub id: ParticipantId,
    pub name: String,
    pub session: SessionId,
    pub joined_at: SystemTime,
    /// Incoming tracks as they arrive (at most one audio and one video today).
    tracks: Mutex<Vec<Arc<TrackFanout>>>,
    /// The codec per kind the publisher was answered with: known before its media arrives.
    pub expected: Mutex<Vec<(MediaKind, crate::signal::CodecSpec)>>,
    /// The negotiated RFC 6464 audio-level extension id, if any.
    pub audio_level_id: Mutex<Option<u8>>,
    /// Voice activity from the audio levels (fed by the audio reader task, ticked by the room).
    pub vad: Mutex<Vad>,
}

impl Participant {
    pub fn new(name: String, session: SessionId, vad: VadConfig) -> Arc<Participant> {
        Arc::new(Participant {
            id: ParticipantId::new(),
            name,
            session,
            joined_at: SystemTime::now(),
            tracks: Mutex::new(Vec::new()),
            expected: Mutex::new(Vec::new()),
            audio_level_id: Mutex::new(None),
            vad: Mutex::new(Vad::new(vad)),
        })
    }

    /// The roster entry for this participant.
    pub fn info(&self) -> ParticipantInfo {
        let tracks = self.tracks();
        ParticipantInfo {
            id: self.id.to_string(),
            name: self.name.clone(),
            joined_at: self
                .joined_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            audio: tracks.iter().any(|t| t.kind == MediaKind::Audio),
            video: tracks.iter().any(|t| t.kind == MediaKind::Video),
            speaking: self
                .vad
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .speaking(),
        }
    }

    /// The codec this participant sends for `kind`: the arrived track's, else the answered one.
    pub fn codec(&self, kind: MediaKind) -> Option<crate::signal::CodecSpec> {
        self.track(kind).map(|t| t.codec.clone()).or_else(|| {
            self.expected
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, c)| c.clone())
        })
    }

    pub fn tracks(&self) -> Vec<Arc<TrackFanout>> {
        self.tracks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn track(&self, kind: MediaKind) -> Option<Arc<TrackFanout>> {
        self.tracks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|t| t.kind == kind)
            .cloned()
    }

    /// The tracks of `kind`, lowest quality first: simulcast layers ranked by the highest
    /// bitrate each has reached (stable: a paused layer keeps its rank), ties in arrival order.
    pub fn layers(&self, kind: MediaKind) -> Vec<Arc<TrackFanout>> {
        let mut v: Vec<Arc<TrackFanout>> = self
            .tracks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|t| t.kind == kind)
            .cloned()
            .collect();
        v.sort_by_key(|t| t.peak_bitrate());
        v
    }

    /// The track a slot with preference `pref` should show, given what it shows now and the
    /// bandwidth the viewer's estimate leaves it.
    pub fn pick(
        &self,
        kind: MediaKind,
        pref: &LayerPref,
        current: Option<&Arc<TrackFanout>>,
        budget: Option<u64>,
    ) -> Option<Arc<TrackFanout>> {
        let layers = self.layers(kind);
        if layers.len() <= 1 {
            return layers.into_iter().next();
        }
        let desc: Vec<_> = layers
            .iter()
            .map(|t| LayerDesc {
                rid: t.rid.as_deref(),
                active: layer_active(t),
                height: t.dimensions().map(|d| d.1),
                bitrate: t.bitrate(),
            })
            .collect();
        let current = current.and_then(|c| layers.iter().position(|t| Arc::ptr_eq(t, c)));
        pref.pick(&desc, current, budget).map(|i| layers[i].clone())
    }
}

/// A layer is active while it runs at more than a tenth of its best rate (browsers pause
/// the top layers when their uplink estimate drops).
pub fn layer_active(t: &TrackFanout) -> bool {
    let peak = t.peak_bitrate();
    peak == 0 || t.bitrate() * 10 > peak
}

/// Who each slot of one kind shows, and since when.
pub type SlotHolders = Vec<Option<(ParticipantId, Instant)>>;

/// What a viewer session is showing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewerState {
    /// No publisher to show yet (or the last one left).
    Waiting,
    /// Slot 0 shows this participant.
    Watching(ParticipantId),
}

/// A WHEP session's slots in a room.
pub struct Viewer {
    pub session: SessionId,
    /// A by-participant viewer; `None` follows the room.
    pub target: Option<ParticipantId>,
    /// The viewer's own participant id, never shown to itself.
    pub exclude: Option<ParticipantId>,
    pub slots: Vec<Arc<SlotSink>>,
    pub state: watch::Sender<ViewerState>,
    /// The slot map last announced, to announce only changes.
    pub announced: Mutex<Vec<SlotInfo>>,
    /// Per kind (audio, video): who each slot of that kind shows, and since when.
    pub assigned: Mutex<[SlotHolders; 2]>,
    /// The WHEP `layers` event data (JSON), refreshed by the room tick.
    pub layers: watch::Sender<String>,
    /// Set when a slot is given a publisher whose codec the viewer did not negotiate: the WHEP
    /// `reconnect` event then asks the player to POST again (and get a counter-offer).
    pub unplayable: watch::Sender<Option<String>>,
    /// When `layers` was last sent, with the shape it had (rids, sizes, active flags).
    pub layers_sent: Mutex<Option<(Instant, String)>>,
}

/// How often the `layers` event repeats when only bitrates moved.
const LAYERS_EVERY: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Members {
    publishers: Vec<Arc<Participant>>,
    viewers: Vec<Arc<Viewer>>,
}

pub struct Room {
    pub id: RoomId,
    members: Mutex<Members>,
    events: broadcast::Sender<RoomEvent>,
    dominant: Mutex<Dominant<ParticipantId>>,
    /// When each participant last started speaking, for last-N slot priority.
    last_spoke: Mutex<std::collections::HashMap<ParticipantId, Instant>>,
}

impl Room {
    pub fn new(id: RoomId) -> Arc<Room> {
        Arc::new(Room {
            id,
            members: Mutex::new(Members::default()),
            events: broadcast::channel(EVENT_BACKLOG).0,
            dominant: Mutex::new(Dominant::new(DOMINANT_DWELL)),
            last_spoke: Mutex::new(Default::default()),
        })
    }

    fn emit(&self, e: RoomEvent) {
        let _ = self.events.send(e); // no subscribers is fine
    }

    /// The roster now and every change after it, with nothing lost in between.
    pub fn subscribe(&self) -> (RoomEvent, broadcast::Receiver<RoomEvent>) {
        let m = self.members();
        let rx = self.events.subscribe();
        let roster = RoomEvent::Roster {
            participants: m.publishers.iter().map(|p| p.info()).collect(),
            active_speaker: self
                .dominant
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .current()
                .map(|id| id.to_string()),
        };
        (roster, rx)
    }

    pub fn subscriber_count(&self) -> usize {
        self.events.receiver_count()
    }

    /// One audio packet's RFC 6464 level from `p`.
    pub fn audio_level(&self, p: &Participant, now: Instant, level: u8) {
        let change = p
            .vad
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(now, level);
        if let Some(c) = change {
            self.speaking_changed(p, c);
        }
    }

    fn speaking_changed(&self, p: &Participant, c: crate::media::vad::Change) {
        self.emit(RoomEvent::Speaking {
            id: p.id.to_string(),
            speaking: c.speaking,
            level: c.loudness,
        });
        if c.speaking {
            self.last_spoke
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(p.id.clone(), Instant::now());
            self.reconcile(); // last-N: slots follow the speakers
        }
    }

    /// Periodic: closes VAD intervals that saw no packets and re-ranks the dominant speaker.
    pub fn tick(&self, now: Instant) {
        let publishers = self.publishers();
        for p in &publishers {
            for t in p.tracks() {
                t.sample_rate(now);
            }
        }
        let mut candidates = Vec::with_capacity(publishers.len());
        for p in &publishers {
            let (change, speaking, loudness) = {
                let mut v = p.vad.lock().unwrap_or_else(|e| e.into_inner());
                let c = v.tick(now);
                (c, v.speaking(), v.loudness)
            };
            if let Some(c) = change {
                self.speaking_changed(p, c);
            }
            candidates.push((p.id.clone(), speaking, loudness));
        }
        let new = self
            .dominant
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .update(now, &candidates);
        if let Some(id) = new {
            self.emit(RoomEvent::ActiveSpeaker { id: id.to_string() });
        }
        // Slot changes held back by a dwell time become due as time passes; the program feed
        // follows the dominant speaker.
        self.reconcile();
        self.publish_layers(now, &publishers);
    }

    /// Refreshes each viewer's WHEP `layers` event: per video m-line (by index), the layers
    /// of the publisher it shows, lowest first. Sent when their shape changes, else every
    /// [`LAYERS_EVERY`] with fresh bitrates.
    fn publish_layers(&self, now: Instant, publishers: &[Arc<Participant>]) {
        let viewers = self.members().viewers.clone();
        for v in viewers {
            let mut data = serde_json::Map::new();
            let mut shape = String::new();
            for (i, slot) in v.slots.iter().enumerate() {
                if slot.kind != MediaKind::Video {
                    continue;
                }
                let Some(src) = slot.source() else { continue };
                let Some(p) = publishers
                    .iter()
                    .find(|p| p.tracks().iter().any(|t| Arc::ptr_eq(t, &src)))
                else {
                    continue;
                };
                let layers: Vec<serde_json::Value> = p
                    .layers(MediaKind::Video)
                    .iter()
                    .map(|t| {
                        let mut o = serde_json::json!({ "bitrate": t.bitrate() });
                        if let Some(r) = &t.rid {
                            o["rid"] = r.clone().into();
                        }
                        if let Some((w, h)) = t.dimensions() {
                            o["width"] = w.into();
                            o["height"] = h.into();
                        }
                        shape.push_str(&format!(
                            "{i}:{:?}:{:?}:{};",
                            t.rid,
                            t.dimensions(),
                            layer_active(t)
                        ));
                        o
                    })
                    .collect();
                data.insert(i.to_string(), layers.into());
            }
            let mut sent = v.layers_sent.lock().unwrap_or_else(|e| e.into_inner());
            let due = match &*sent {
                None => !data.is_empty(),
                Some((at, last)) => *last != shape || now.duration_since(*at) >= LAYERS_EVERY,
            };
            if due {
                *sent = Some((now, shape));
                v.layers
                    .send_replace(serde_json::Value::Object(data).to_string());
            }
        }
    }

    fn members(&self) -> std::sync::MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn publishers(&self) -> Vec<Arc<Participant>> {
        self.members().publishers.clone()
    }

    pub fn participant(&self, id: &ParticipantId) -> Option<Arc<Participant>> {
        self.members()
            .publishers
            .iter()
            .find(|p| &p.id == id)
            .cloned()
    }

    pub fn is_empty(&self) -> bool {
        let m = self.members();
        m.publishers.is_empty() && m.viewers.is_empty()
    }

    pub fn viewer_count(&self) -> usize {
        self.members().viewers.len()
    }

    pub fn add_publisher(&self, p: Arc<Participant>) {
        let info = p.info();
        self.members().publishers.push(p);
        self.emit(RoomEvent::Joined { participant: info });
        self.reconcile();
    }

    pub fn add_viewer(&self, v: Arc<Viewer>) {
        let count = {
            let mut m = self.members();
            m.viewers.push(v);
            m.viewers.len()
        };
        self.emit(RoomEvent::Viewercount { viewercount: count });
        self.reconcile();
    }

    /// A publisher's track arrived.
    pub fn add_track(&self, p: &Participant, track: Arc<TrackFanout>) {
        p.tracks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(track);
        self.emit_tracks(p);
        self.reconcile();
    }

    fn emit_tracks(&self, p: &Participant) {
        let info = p.info();
        self.emit(RoomEvent::Tracks {
            id: info.id,
            audio: info.audio,
            video: info.video,
        });
    }

    /// A publisher's track ended.
    pub fn remove_track(&self, p: &Participant, track: &Arc<TrackFanout>) {
        p.tracks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|t| !Arc::ptr_eq(t, track));
        for sink in track.detach_all() {
            sink.set_source(None);
        }
        self.emit_tracks(p);
        self.reconcile();
    }

    pub fn remove_publisher(&self, session: SessionId) {
        let removed = {
            let mut m = self.members();
            let (gone, keep): (Vec<_>, Vec<_>) =
                m.publishers.drain(..).partition(|p| p.session == session);
            m.publishers = keep;
            gone
        };
        for p in removed {
            for t in p.tracks() {
                for sink in t.detach_all() {
                    sink.set_source(None);
                }
            }
            self.emit(RoomEvent::Left {
                id: p.id.to_string(),
            });
        }
        self.reconcile();
    }

    pub fn remove_viewer(&self, session: SessionId) {
        let removed = {
            let mut m = self.members();
            let (gone, keep): (Vec<_>, Vec<_>) =
                m.viewers.drain(..).partition(|v| v.session == session);
            m.viewers = keep;
            gone
        };
        if !removed.is_empty() {
            self.emit(RoomEvent::Viewercount {
                viewercount: self.viewer_count(),
            });
        }
        for v in removed {
            for slot in &v.slots {
                if let Some(src) = slot.source() {
                    src.detach(slot);
                }
                slot.set_source(None);
            }
        }
    }

    /// A viewer's transport came up: its slots may now receive media.
    pub fn viewer_connected(&self, session: SessionId) {
        let found = self
            .members()
            .viewers
            .iter()
            .find(|v| v.session == session)
            .cloned();
        if let Some(v) = found {
            for slot in &v.slots {
                slot.set_ready();
            }
            self.reconcile();
        }
    }

    /// Re-points every viewer slot at the track it should show now ([`crate::sfu::slots`]):
    /// candidates in priority order — the dominant speaker, then the most recent speakers, then
    /// join order — the viewer's own participant excluded; a by-participant viewer has one
    /// candidate. Slot holders are stable and protected by [`SLOT_DWELL`].
    pub fn reconcile(&self) {
        let now = Instant::now();
        let m = self.members();
        let dominant = self
            .dominant
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .current()
            .cloned();
        let last_spoke = self
            .last_spoke
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut ranked: Vec<(usize, &Arc<Participant>)> = m.publishers.iter().enumerate().collect();
        ranked.sort_by(|(ia, a), (ib, b)| {
            let dom = |p: &Participant| Some(&p.id) == dominant.as_ref();
            dom(b)
                .cmp(&dom(a))
                .then_with(|| last_spoke.get(&b.id).cmp(&last_spoke.get(&a.id)))
                .then_with(|| ia.cmp(ib))
        });
        for v in &m.viewers {
            let candidates: Vec<ParticipantId> = match &v.target {
                Some(id) => m
                    .publishers
                    .iter()
                    .filter(|p| &p.id == id)
                    .map(|p| p.id.clone())
                    .collect(),
                None => ranked
                    .iter()
                    .map(|(_, p)| p.id.clone())
                    .filter(|id| Some(id) != v.exclude.as_ref())
                    .collect(),
            };
            let mut assigned = v.assigned.lock().unwrap_or_else(|e| e.into_inner());
            for (k, kind) in [MediaKind::Audio, MediaKind::Video].into_iter().enumerate() {
                let count = v.slots.iter().filter(|s| s.kind == kind).count();
                assigned[k].resize(count, None);
                assigned[k] = crate::sfu::slots::assign(&assigned[k], &candidates, now, SLOT_DWELL);
            }
            let mut index = [0usize; 2];
            let mut map = Vec::with_capacity(v.slots.len());
            // The viewer's bandwidth estimate (REMB, one per connection) and what its video
            // slots carry now: each slot's budget is the estimate minus the others' share.
            let estimate = v.slots.iter().filter_map(|s| s.estimate()).max();
            let rate_of = |s: &SlotSink| s.source().map_or(0, |t| t.bitrate());
            let used: u64 = v
                .slots
                .iter()
                .filter(|s| s.kind == MediaKind::Video)
                .map(|s| rate_of(s))
                .sum();
            for slot in &v.slots {
                let k = match slot.kind {
                    MediaKind::Audio => 0,
                    MediaKind::Video => 1,
                };
                let holder = assigned[k].get(index[k]).cloned().flatten().map(|(p, _)| p);
                index[k] += 1;
                let participant = holder.and_then(|id| m.publishers.iter().find(|p| p.id == id));
                map.push(SlotInfo {
                    mid: slot.mid.clone(),
                    kind: if k == 0 { "audio" } else { "video" },
                    participant: participant.map(|p| p.id.to_string()),
                });
                let have = slot.source();
                let budget = estimate.map(|e| e.saturating_sub(used - rate_of(slot)));
                let want = participant
                    .and_then(|p| p.pick(slot.kind, &slot.layer(), have.as_ref(), budget))
                    .filter(|_| slot.is_ready());
                if let Some(t) = &want
                    && !slot.accepts(&t.codec)
                {
                    let reason = format!(
                        "m-line {} did not negotiate {}",
                        slot.mid,
                        t.codec.describe()
                    );
                    v.unplayable.send_if_modified(|u| {
                        let first = u.is_none();
                        if first {
                            *u = Some(reason);
                        }
                        first
                    });
                }
                let same = match (&have, &want) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    (None, None) => true,
                    _ => false,
                };
                if same {
                    continue;
                }
                if let Some(old) = have {
                    old.detach(slot);
                }
                slot.set_source(want.clone());
                if let Some(new) = want {
                    // Starts the slot from the keyframe cache, or asks for a keyframe.
                    new.attach(slot);
                }
            }
            let first_shown = assigned[1]
                .iter()
                .chain(assigned[0].iter())
                .flatten()
                .next()
                .map(|(p, _)| p.clone());
            drop(assigned);
            let changed = {
                let mut last = v.announced.lock().unwrap_or_else(|e| e.into_inner());
                let changed = *last != map;
                if changed {
                    *last = map.clone();
                }
                changed
            };
            if changed {
                self.emit(RoomEvent::Slots {
                    viewer: v.exclude.as_ref().map(|p| p.to_string()),
                    slots: map,
                });
            }
            let state = match first_shown {
                Some(p) => ViewerState::Watching(p),
                None => ViewerState::Waiting,
            };
            v.state.send_if_modified(|s| {
                if *s != state {
                    *s = state;
                    true
                } else {
                    false
                }
            });
        }
    }
}
