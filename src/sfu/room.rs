//! A room's task: the one owner of the room's [`RoomPlan`], its fan-outs and its viewers'
//! slots. Signalling, the rtc callbacks and the voice detectors reach it with [`Command`]s
//! over one bounded channel; it feeds them to the plan with the time, applies the plan's
//! outputs (attach/detach on the fan-outs, events, viewer state) and ticks the plan every
//! [`ROOM_TICK`] with fresh rates and bandwidth estimates. Nothing else holds room state, and
//! no task waits on a lock of the room: the packet path never touches this module.
//!
//! Lifecycle commands from synchronous callbacks are never dropped: when the queue is full
//! they are sent from a spawned task (order is kept within the queue; the plan ignores a
//! track of an unknown publisher and an end of an unknown track). Voice reports may be dropped
//! when the queue is full: the next interval repeats the state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::media::counters::Totals;
use crate::media::{SourceId, TrackFanout};
use crate::sfu::events::{Notice, RoomEvent};
use crate::sfu::ids::{ParticipantId, RoomId, SessionId};
pub use crate::sfu::members::{Layers, Participant, Viewer};
use crate::sfu::plan::{Input, Output, PlanConfig, RoomPlan, SlotSpec, TrackDesc, TrackRate};
use crate::signal::{CodecSpec, MediaKind};

/// Room events a slow consumer may fall behind by before it is dropped.
pub const EVENT_BACKLOG: usize = 256;
/// Commands queued for a room before senders wait (or, for voice reports, drop).
const COMMAND_QUEUE: usize = 1024;
/// How often the room samples rates and estimates and lets time-based policy run.
pub const ROOM_TICK: Duration = Duration::from_millis(250);

/// The most of a cached group of pictures a slot switching sources replays at once (about a
/// quarter of a second of a 400 kbit/s link); past it, the slot asks for a keyframe instead.
const SWITCH_BURST: usize = 12_000;

/// A query or request run on the room task with its state and the time.
pub(crate) type Job = Box<dyn FnOnce(&mut Core, Instant) + Send>;

/// What the room task is told.
pub(crate) enum Command {
    PublisherJoined {
        participant: Arc<Participant>,
        expected: Vec<(MediaKind, CodecSpec)>,
    },
    PublisherLeft(ParticipantId),
    /// The publisher reconnected on a new session: its old tracks end now, so the new ones
    /// arrive into a clean place; the participant, and every slot that holds it, stays.
    PublisherResumed(ParticipantId),
    TrackAdded {
        publisher: ParticipantId,
        fanout: Arc<TrackFanout>,
    },
    TrackEnded {
        publisher: ParticipantId,
        fanout: Arc<TrackFanout>,
    },
    Voice {
        publisher: ParticipantId,
        speaking: bool,
        loudness: u8,
    },
    ViewerJoined(Arc<Viewer>),
    ViewerConnected(SessionId),
    ViewerLeft(SessionId),
    /// Cluster mode: the room's players on the other nodes.
    Elsewhere(usize),
    /// The server is draining (`reconnect`: tell every viewer to POST again) or an operator
    /// closed the room: tell every subscriber, in words.
    Closing {
        reason: String,
        reconnect: bool,
    },
    /// Runs a query or a request with a reply on the task.
    Call(Job),
}

/// What a new subscriber of a room's events gets.
pub struct Subscribed {
    pub roster: RoomEvent,
    /// The recent chat, oldest first, to send right after the roster.
    pub chat: Vec<RoomEvent>,
    /// The audience now (`viewercount`): a subscriber learns it without waiting for a change.
    pub audience: RoomEvent,
    pub rx: broadcast::Receiver<RoomEvent>,
}

/// The signalling side's handle on a room. The room's task ends when the last handle goes.
pub struct Room {
    pub id: RoomId,
    tx: mpsc::Sender<Command>,
    events: broadcast::Sender<RoomEvent>,
}

impl Room {
    /// Creates the room and starts its task on the current runtime.
    pub fn spawn(id: RoomId, cfg: PlanConfig, notices: broadcast::Sender<Notice>) -> Arc<Room> {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let events = broadcast::channel(EVENT_BACKLOG).0;
        let core = Core {
            plan: RoomPlan::new(cfg),
            fanouts: HashMap::new(),
            viewers: HashMap::new(),
            events: events.clone(),
            notices,
            id: id.clone(),
        };
        tokio::spawn(core.run(rx));
        Arc::new(Room { id, tx, events })
    }

    /// Open event streams (their receivers of the room's events).
    pub fn event_consumers(&self) -> usize {
        self.events.receiver_count()
    }

    /// Queues a command, waiting while the room's queue is full.
    pub(crate) async fn send(&self, c: Command) {
        let _ = self.tx.send(c).await;
    }

    /// Queues a command from a synchronous caller without waiting and without losing it.
    pub(crate) fn send_now(&self, c: Command) {
        if let Err(mpsc::error::TrySendError::Full(c)) = self.tx.try_send(c) {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(c).await;
            });
        }
    }

    /// Queues a command that may be dropped when the room is behind.
    pub(crate) fn offer(&self, c: Command) {
        let _ = self.tx.try_send(c);
    }

    /// Runs `f` on the room's task and returns its result (`None` if the room has stopped).
    pub(crate) async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core, Instant) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Call(Box::new(move |core, now| {
            let _ = tx.send(f(core, now));
        })))
        .await;
        rx.await.ok()
    }

    /// The roster now, the recent chat, the audience, and every event after them, with
    /// nothing lost or doubled in between.
    pub async fn subscribe(&self) -> Option<Subscribed> {
        self.call(|core, _| Subscribed {
            roster: core.plan.roster(),
            chat: core.plan.chat_history(),
            audience: RoomEvent::Viewercount {
                viewercount: core.plan.viewer_count(),
            },
            rx: core.events.subscribe(),
        })
        .await
    }

    pub fn subscriber_count(&self) -> usize {
        self.events.receiver_count()
    }

    /// The room's players on this node (cluster mode: not other nodes' upstream sessions,
    /// nor the players other nodes count).
    pub async fn local_viewers(&self) -> usize {
        self.call(|core, _| core.plan.local_viewers())
            .await
            .unwrap_or(0)
    }

    /// The forwarding counts of this room's live fan-outs and slots (for metrics).
    pub async fn totals(&self) -> Totals {
        self.call(|core, _| {
            let mut t = Totals::default();
            for f in core.fanouts.values() {
                t.add(&f.totals());
            }
            for v in core.viewers.values() {
                for s in &v.slots {
                    t.add(&s.totals());
                }
            }
            t
        })
        .await
        .unwrap_or_default()
    }

    /// Each publisher (join order) with its tracks' fan-outs (arrival order).
    pub async fn publisher_tracks(&self) -> Vec<(ParticipantId, Vec<Arc<TrackFanout>>)> {
        self.call(|core, _| {
            core.plan
                .publishers()
                .into_iter()
                .map(|p| {
                    let tracks = core
                        .plan
                        .sources_of(&p)
                        .iter()
                        .filter_map(|s| core.fanouts.get(s).cloned())
                        .collect();
                    (p, tracks)
                })
                .collect()
        })
        .await
        .unwrap_or_default()
    }
}

/// The room task's state: the plan, and the I/O handles its outputs act on.
pub(crate) struct Core {
    pub(crate) plan: RoomPlan,
    fanouts: HashMap<SourceId, Arc<TrackFanout>>,
    viewers: HashMap<SessionId, Arc<Viewer>>,
    events: broadcast::Sender<RoomEvent>,
    /// The server-wide listeners (webhooks): who joined, left, started or stopped sending, and
    /// when the room ends.
    notices: broadcast::Sender<Notice>,
    id: RoomId,
}

impl Core {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut every = tokio::time::interval(ROOM_TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                c = rx.recv() => match c {
                    Some(c) => self.command(Instant::now(), c),
                    None => break, // every handle is gone
                },
                _ = every.tick() => self.tick(Instant::now()),
            }
        }
        for f in self.fanouts.values() {
            for sink in f.detach_all() {
                sink.set_source(None);
            }
        }
        let _ = self.notices.send(Notice::Ended(self.id.clone()));
    }

    /// Feeds the plan and applies what it says.
    pub(crate) fn input(&mut self, now: Instant, input: Input) -> Vec<Output> {
        let outputs = self.plan.handle(now, input);
        let mut refusals = Vec::new();
        for o in outputs {
            match o {
                Output::Refused { .. } => refusals.push(o),
                o => self.apply(o),
            }
        }
        refusals
    }

    fn command(&mut self, now: Instant, c: Command) {
        match c {
            Command::PublisherJoined {
                participant: p,
                expected,
            } => {
                let joined_at_ms = p
                    .joined_at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                self.input(
                    now,
                    Input::PublisherJoined {
                        id: p.id.clone(),
                        name: p.name.clone(),
                        joined_at_ms,
                        expected,
                        screen_of: p.screen_of.clone(),
                    },
                );
            }
            Command::PublisherLeft(id) => {
                let sources = self.plan.sources_of(&id);
                self.input(now, Input::PublisherLeft { id });
                for s in sources {
                    self.drop_fanout(s);
                }
            }
            Command::PublisherResumed(id) => {
                for source in self.plan.sources_of(&id) {
                    self.input(
                        now,
                        Input::TrackRemoved {
                            publisher: id.clone(),
                            source,
                        },
                    );
                    self.drop_fanout(source);
                }
            }
            Command::TrackAdded { publisher, fanout } => {
                if !self.plan.has_publisher(&publisher) {
                    return; // it left before its track arrived
                }
                let track = TrackDesc {
                    source: fanout.id,
                    kind: fanout.kind,
                    codec: fanout.codec.clone(),
                    rid: fanout.rid.clone(),
                };
                self.fanouts.insert(fanout.id, fanout);
                self.input(now, Input::TrackAdded { publisher, track });
            }
            Command::TrackEnded { publisher, fanout } => {
                let source = fanout.id;
                self.input(now, Input::TrackRemoved { publisher, source });
                self.drop_fanout(source);
            }
            Command::Voice {
                publisher,
                speaking,
                loudness,
            } => {
                self.input(
                    now,
                    Input::Voice {
                        publisher,
                        speaking,
                        loudness,
                    },
                );
            }
            Command::ViewerJoined(v) => {
                let slots = v
                    .slots
                    .iter()
                    .map(|s| SlotSpec {
                        mid: s.mid.clone(),
                        kind: s.kind,
                    })
                    .collect();
                let (viewer, target, exclude) = (v.session, v.target.clone(), v.exclude.clone());
                let relay = v.relay;
                self.viewers.insert(viewer, v);
                self.input(
                    now,
                    Input::ViewerJoined {
                        viewer,
                        target,
                        exclude,
                        slots,
                        relay,
                    },
                );
            }
            Command::ViewerConnected(viewer) => {
                let Some(v) = self.viewers.get(&viewer) else {
                    return;
                };
                let negotiated = v.slots.iter().map(|s| s.codecs()).collect();
                self.input(now, Input::ViewerConnected { viewer, negotiated });
            }
            Command::Elsewhere(viewers) => {
                self.input(now, Input::Elsewhere { viewers });
            }
            Command::ViewerLeft(viewer) => {
                self.input(now, Input::ViewerLeft { viewer });
                self.viewers.remove(&viewer);
            }
            Command::Closing { reason, reconnect } => {
                if reconnect {
                    for v in self.viewers.values() {
                        v.reconnect.send_replace(Some(reason.clone()));
                    }
                }
                let _ = self.events.send(RoomEvent::Closing { reason });
            }
            Command::Call(f) => f(self, now),
        }
    }

    /// Samples every track's rate and every viewer's estimate, then ticks the plan.
    fn tick(&mut self, now: Instant) {
        let rates = self
            .fanouts
            .values()
            .map(|f| {
                f.sample_rate(now);
                TrackRate {
                    source: f.id,
                    bitrate: f.bitrate(),
                    peak: f.peak_bitrate(),
                    dims: f.dimensions(),
                }
            })
            .collect();
        let estimates = self
            .viewers
            .values()
            .filter_map(|v| {
                let e = v.slots.iter().filter_map(|s| s.estimate()).max()?;
                Some((v.session, e))
            })
            .collect();
        self.input(now, Input::Tick { rates, estimates });
    }

    pub(crate) fn apply(&mut self, o: Output) {
        match o {
            Output::Switch {
                viewer,
                slot,
                from,
                to,
            } => {
                let Some(sink) = self.viewers.get(&viewer).and_then(|v| v.slots.get(slot)) else {
                    return;
                };
                if let Some(old) = from.and_then(|s| self.fanouts.get(&s)) {
                    old.detach(sink);
                }
                let new = to.and_then(|s| self.fanouts.get(&s)).cloned();
                sink.set_source(new.as_ref().map(|f| f.upstream.clone()));
                if let Some(new) = new {
                    // Starts the slot from the keyframe cache, or asks for a keyframe.
                    if from.is_some() {
                        new.attach_within(sink, SWITCH_BURST);
                    } else {
                        new.attach(sink);
                    }
                }
            }
            Output::Event(e) => {
                if matches!(
                    e,
                    RoomEvent::Joined { .. } | RoomEvent::Left { .. } | RoomEvent::Tracks { .. }
                ) {
                    let _ = self.notices.send(Notice::Event(self.id.clone(), e.clone()));
                }
                let _ = self.events.send(e); // no subscribers is fine
            }
            Output::ViewerState { viewer, state } => {
                if let Some(v) = self.viewers.get(&viewer) {
                    v.state.send_replace(state);
                }
            }
            Output::Unplayable { viewer, reason } => {
                if let Some(v) = self.viewers.get(&viewer) {
                    v.reconnect.send_replace(Some(reason));
                }
            }
            Output::Layers { viewer, layers } => {
                if let Some(v) = self.viewers.get(&viewer) {
                    v.layers.send_replace(Some(layers));
                }
            }
            Output::Probe { viewer, slot, bps } => {
                if let Some(sink) = self.viewers.get(&viewer).and_then(|v| v.slots.get(slot)) {
                    sink.set_probe(bps);
                }
            }
            Output::Refused { .. } => {}
        }
    }

    /// Forgets a fan-out whose track ended or whose publisher left; any slot still on it stops.
    fn drop_fanout(&mut self, source: SourceId) {
        if let Some(f) = self.fanouts.remove(&source) {
            for sink in f.detach_all() {
                sink.set_source(None);
            }
        }
    }
}
