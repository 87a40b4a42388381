//! Recording: every publisher of the recorded rooms to one file per session, without
//! transcoding — fragmented MP4 for H.264 and VP9 with Opus, WebM for VP8 — under
//! `--record-dir`, as `<room>/<name>-<UTC start>.<ext>`.
//!
//! A recorder is a tap (`sfu::tap`) pinned to its participant: the planner attaches it like
//! any by-participant player, so it starts from the keyframe cache (or asks for a keyframe)
//! and takes the best simulcast layer. It starts when the room says the participant joined
//! and ends when it says it left (or the server stops). What is on disk is the listing: a
//! restart loses nothing but the files being written, which stay playable up to their last
//! fragment.

mod file;
mod stamp;
pub use stamp::format_utc;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::oneshot;

use crate::lock::Locked;
use crate::sfu::events::{Notice, RoomEvent};
use crate::sfu::{ParticipantId, RoomId, Sfu};

/// `--record-dir` and `--record-rooms`.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    pub dir: PathBuf,
    /// `None`: every room.
    pub rooms: Option<Vec<RoomId>>,
}

impl RecordConfig {
    /// Validates the flags: rooms need a directory, and must be room names.
    pub fn new(
        dir: Option<PathBuf>,
        rooms: Option<Vec<String>>,
    ) -> Result<Option<RecordConfig>, String> {
        let Some(dir) = dir else {
            if rooms.is_some() {
                return Err("--record-rooms needs --record-dir (where the files go)".into());
            }
            return Ok(None);
        };
        let rooms = rooms
            .map(|rs| {
                rs.iter()
                    .filter(|r| !r.trim().is_empty())
                    .map(|r| {
                        RoomId::parse(r.trim())
                            .map_err(|e| format!("--record-rooms: '{r}' is not a room name: {e}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(Some(RecordConfig { dir, rooms }))
    }
}

/// One file in a room's listing.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recording {
    /// The file name (`<name>-<UTC start>.<ext>`).
    pub file: String,
    /// Where it is served (`/recordings/{room}/{file}`).
    pub url: String,
    pub bytes: u64,
    /// `video/mp4` or `video/webm`.
    #[serde(rename = "contentType")]
    pub content_type: &'static str,
    /// Still being written.
    pub recording: bool,
}

/// The recording service.
pub struct Recorder {
    cfg: RecordConfig,
    /// Files being written now, and how to end each one's recording.
    running: Mutex<HashMap<(RoomId, ParticipantId), oneshot::Sender<()>>>,
    /// Paths being written (for the listing's `recording`).
    active: Arc<Mutex<HashSet<PathBuf>>>,
    /// The recording tasks, awaited at shutdown so every file ends on a whole fragment.
    tasks: tokio::sync::Mutex<tokio::task::JoinSet<()>>,
}

impl Recorder {
    /// Starts following `sfu`'s rooms.
    pub fn start(cfg: RecordConfig, sfu: Arc<Sfu>) -> Result<Arc<Recorder>, String> {
        std::fs::create_dir_all(&cfg.dir)
            .map_err(|e| format!("--record-dir {}: {e}", cfg.dir.display()))?;
        let me = Arc::new(Recorder {
            cfg,
            running: Default::default(),
            active: Default::default(),
            tasks: Default::default(),
        });
        let notices = sfu.notices();
        tokio::spawn(me.clone().follow(sfu, notices));
        Ok(me)
    }

    /// Whether `room`'s publishers are recorded.
    pub fn records(&self, room: &RoomId) -> bool {
        self.cfg.rooms.as_ref().is_none_or(|rs| rs.contains(room))
    }

    async fn follow(
        self: Arc<Self>,
        sfu: Arc<Sfu>,
        mut notices: tokio::sync::broadcast::Receiver<Notice>,
    ) {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match notices.recv().await {
                Ok(Notice::Event(room, RoomEvent::Joined { participant })) => {
                    let Ok(id) = ParticipantId::parse(&participant.id) else {
                        continue;
                    };
                    if self.records(&room) && !sfu.is_mirror(&id) {
                        self.begin(&sfu, room, id, participant.name).await;
                    }
                }
                Ok(Notice::Event(room, RoomEvent::Left { id })) => {
                    if let Ok(id) = ParticipantId::parse(&id)
                        && let Some(stop) = self.running.locked().remove(&(room, id))
                    {
                        let _ = stop.send(());
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "recorder fell behind the room notices");
                }
                Err(RecvError::Closed) => break,
            }
        }
    }

    async fn begin(&self, sfu: &Sfu, room: RoomId, id: ParticipantId, name: String) {
        let tap = match sfu.tap(&room, Some(id.clone())).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(room = %room, participant = %id, "not recorded: {e}");
                return;
            }
        };
        let (stop, stopped) = oneshot::channel();
        self.running
            .locked()
            .insert((room.clone(), id.clone()), stop);
        let stem = format!("{}-{}", file_stem(&name, &id), stamp::utc_now());
        let dir = self.cfg.dir.join(room.as_str());
        let active = self.active.clone();
        tracing::info!(room = %room, participant = %id, "recording");
        self.tasks.lock().await.spawn(async move {
            file::record(tap, dir, stem, stopped, active).await;
        });
    }

    /// The room's recordings, newest first.
    pub fn list(&self, room: &RoomId) -> Vec<Recording> {
        let dir = self.cfg.dir.join(room.as_str());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let active = self.active.locked().clone();
        let mut out: Vec<(std::time::SystemTime, Recording)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let file = e.file_name().into_string().ok()?;
                let content_type = content_type(&file)?;
                let meta = e.metadata().ok()?;
                Some((
                    meta.modified().unwrap_or(std::time::UNIX_EPOCH),
                    Recording {
                        url: format!("/recordings/{room}/{file}"),
                        recording: active.contains(&e.path()),
                        file,
                        bytes: meta.len(),
                        content_type,
                    },
                ))
            })
            .collect();
        out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.file.cmp(&b.1.file)));
        out.into_iter().map(|(_, r)| r).collect()
    }

    /// The path of `room`'s recording `file`, if it is one (no other file is ever served).
    pub fn path(&self, room: &RoomId, file: &str) -> Option<(PathBuf, &'static str)> {
        let ok = !file.is_empty()
            && file.len() <= 200
            && !file.starts_with('.')
            && file
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        let ct = content_type(file).filter(|_| ok)?;
        let p = self.cfg.dir.join(room.as_str()).join(file);
        p.is_file().then_some((p, ct))
    }

    /// Ends every recording and waits for the files to be closed (server shutdown).
    pub async fn finish(&self) {
        for (_, stop) in self.running.locked().drain() {
            let _ = stop.send(());
        }
        let mut tasks = self.tasks.lock().await;
        while tasks.join_next().await.is_some() {}
    }

    pub fn dir(&self) -> &Path {
        &self.cfg.dir
    }
}

fn content_type(file: &str) -> Option<&'static str> {
    if file.ends_with(".mp4") {
        Some("video/mp4")
    } else if file.ends_with(".webm") {
        Some("video/webm")
    } else {
        None
    }
}

/// A participant's name as a file name: letters, digits, `.`, `_` and `-` kept (at most 48),
/// the rest `_`; its id when nothing is left.
fn file_stem(name: &str, id: &ParticipantId) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    let s = s.trim_matches('_').to_string();
    if s.is_empty() { id.to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_safe_file_names() {
        let id = ParticipantId::parse("abc123").unwrap();
        assert_eq!(file_stem("Ada Lovelace", &id), "Ada_Lovelace");
        assert_eq!(file_stem("../../etc/passwd", &id), "etc_passwd");
        assert_eq!(file_stem("日本", &id), "abc123");
    }

    #[test]
    fn flags_are_checked() {
        assert!(RecordConfig::new(None, Some(vec!["a".into()])).is_err());
        assert!(RecordConfig::new(Some("/tmp/x".into()), Some(vec!["a b".into()])).is_err());
        let c = RecordConfig::new(Some("/tmp/x".into()), Some(vec!["a".into(), "b".into()]))
            .unwrap()
            .unwrap();
        assert!(c.rooms.unwrap().len() == 2);
    }
}
