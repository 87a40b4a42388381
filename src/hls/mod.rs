//! LL-HLS for broadcasts: one packager per watched room (or participant), however many HLS
//! clients there are, started by the first request and stopped [`IDLE`] after the last.
//!
//! A packager is a tap (`sfu::tap`) on the room, following it as `/whep/{room}` does (or
//! pinned, for `/hls/{room}/{participant}/`): its samples become fMP4 parts (`container`),
//! grouped into segments that start on keyframes (`playlist`). Requests read the shared
//! state; blocking playlist reloads and preload-hinted parts wait on its change signal.

mod packager;
pub mod playlist;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::lock::Locked;
use crate::sfu::{ParticipantId, RoomId, Sfu};
pub use playlist::{Named, Stream};

/// A packager nobody asked anything of for this long stops.
pub const IDLE: Duration = Duration::from_secs(30);
/// How long the first request waits for the stream's first segment (players that do not
/// read parts need one whole segment to start).
const FIRST_PART: Duration = Duration::from_secs(8);
/// The longest a blocking request waits (RFC 8216bis §6.2.5.2: three target durations).
const BLOCK: Duration = Duration::from_secs(3 * playlist::TARGET_DURATION);

type Key = (RoomId, Option<ParticipantId>);

/// The packagers of this node.
#[derive(Default)]
pub struct Packagers {
    running: Mutex<HashMap<Key, Arc<Packager>>>,
}

/// One room's (or participant's) HLS stream.
pub struct Packager {
    key: Key,
    state: Mutex<Stream>,
    /// Why this stream cannot be served (a codec HLS cannot carry), once known.
    refused: Mutex<Option<String>>,
    /// Bumped at each new part, and when the stream ends.
    changed: watch::Sender<u64>,
    ended: std::sync::atomic::AtomicBool,
    /// Milliseconds since `born` of the last request.
    last_request: AtomicU64,
    born: Instant,
}

impl Packagers {
    /// The packager of `room` (and `participant`), started if it is not running.
    pub async fn get(
        self: &Arc<Self>,
        sfu: &Sfu,
        room: &RoomId,
        participant: Option<ParticipantId>,
    ) -> Result<Arc<Packager>> {
        let key = (room.clone(), participant.clone());
        if let Some(p) = self.running.locked().get(&key).filter(|p| !p.has_ended()) {
            p.touch();
            return Ok(p.clone());
        }
        let tap = sfu.tap(room, participant).await?;
        let p = Arc::new(Packager {
            key: key.clone(),
            state: Mutex::new(Stream {
                id: format!("{:x}", rand::random::<u32>()),
                ..Default::default()
            }),
            refused: Mutex::new(None),
            changed: watch::channel(0).0,
            ended: Default::default(),
            last_request: AtomicU64::new(0),
            born: Instant::now(),
        });
        let mut running = self.running.locked();
        // Another request may have started one meanwhile: keep that one.
        if let Some(other) = running.get(&key).filter(|o| !o.has_ended()) {
            return Ok(other.clone());
        }
        running.insert(key, p.clone());
        drop(running);
        tracing::info!(room = %room, "HLS packager started");
        tokio::spawn(packager::run(p.clone(), tap, Arc::downgrade(self)));
        Ok(p)
    }

    fn forget(&self, p: &Arc<Packager>) {
        let mut running = self.running.locked();
        if running.get(&p.key).is_some_and(|q| Arc::ptr_eq(q, p)) {
            running.remove(&p.key);
        }
    }

    /// Packagers running now (for metrics and tests).
    pub fn count(&self) -> usize {
        self.running.locked().len()
    }
}

impl Packager {
    fn touch(&self) {
        let ms = self.born.elapsed().as_millis() as u64;
        self.last_request.store(ms, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = self.last_request.load(Ordering::Relaxed);
        self.born
            .elapsed()
            .saturating_sub(Duration::from_millis(last))
    }

    fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Waits until `ready` holds of the stream (or it ends, or `limit` passes); then the
    /// reason it cannot be served, if any.
    async fn wait(&self, limit: Duration, ready: impl Fn(&Stream) -> bool) -> Result<()> {
        let mut rx = self.changed.subscribe();
        let until = tokio::time::Instant::now() + limit;
        loop {
            if let Some(why) = self.refused.locked().clone() {
                return Err(Error::Unprocessable(why));
            }
            if ready(&self.state.locked()) || self.has_ended() {
                return Ok(());
            }
            if tokio::time::timeout_at(until, rx.changed()).await.is_err() {
                return Ok(());
            }
        }
    }

    /// The playlist, once the stream has a part; with `block` = (`_HLS_msn`, `_HLS_part`),
    /// once that part (or segment) exists. `query` is appended to every URI in it.
    pub async fn playlist(
        &self,
        block: Option<(u64, Option<usize>)>,
        query: &str,
    ) -> Result<String> {
        self.touch();
        self.wait(FIRST_PART, |s| s.segments.iter().any(|g| g.complete))
            .await?;
        if let Some((msn, part)) = block {
            // RFC 8216bis §6.2.5.2: a request more than two segments ahead is a client error.
            let last = self.state.locked().segments.back().map_or(0, |g| g.msn);
            if msn > last + 2 {
                return Err(Error::BadRequest(format!(
                    "_HLS_msn={msn} is more than two segments past the last one ({last})."
                )));
            }
            self.wait(BLOCK, |s| playlist::has(s, msn, part)).await?;
        }
        let s = self.state.locked();
        if s.segments.is_empty() {
            return Err(Error::NotFound);
        }
        Ok(playlist::render(&s, query))
    }

    /// The stream's id (in every media URI).
    pub fn id(&self) -> String {
        self.state.locked().id.clone()
    }

    /// An init segment, segment or part by its URI; a part that is the next to come (the
    /// preload hint) is waited for.
    pub async fn media(&self, file: &str) -> Result<Bytes> {
        self.touch();
        let id = self.id();
        let named = playlist::parse_uri(&id, file).ok_or(Error::NotFound)?;
        if let Named::Part(msn, part) = named {
            self.wait(BLOCK, |s| playlist::has(s, msn, Some(part)))
                .await?;
        }
        if named == Named::Init {
            self.wait(FIRST_PART, |s| s.init.is_some()).await?;
        }
        let s = self.state.locked();
        let found = match named {
            Named::Init => s.init.clone(),
            Named::Segment(msn) => {
                s.segments
                    .iter()
                    .find(|g| g.msn == msn && g.complete)
                    .map(|g| {
                        let mut b = Vec::new();
                        for p in &g.parts {
                            b.extend_from_slice(&p.bytes);
                        }
                        Bytes::from(b)
                    })
            }
            Named::Part(msn, part) => s
                .segments
                .iter()
                .find(|g| g.msn == msn)
                .and_then(|g| g.parts.get(part))
                .map(|p| p.bytes.clone()),
        };
        found.ok_or(Error::NotFound)
    }
}
