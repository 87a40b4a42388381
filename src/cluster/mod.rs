//! Cluster mode (`--cluster-redis`): several wisp nodes that answer as one service, with Redis
//! as the only shared part. Redis holds a directory and nothing on the packet path:
//!
//! - `wisp:node:{id}` — each live node's [`NodeReport`] (URL, sessions, forwarding, CPU), set
//!   every [`RENEW_EVERY`] under a lease of [`LEASE`]: a node that dies drops out of the
//!   directory within the lease. `wisp:nodes` lists the ids (pruned of expired ones as read).
//! - `wisp:room:{room}` — the id of the node that owns the room (its publishers and conference
//!   participants live there), claimed atomically (`SET NX`) by the first POST, renewed by the
//!   owner while the room exists there, released (compare-and-delete) when it ends there.
//!
//! [`Cluster::place`] is the one decision a POST asks for: serve it here, or redirect it to
//! the owner (`307`, RFC 9725 §4.5). A new room goes to the least-loaded live node; a room
//! whose owner's node lease is gone is taken over (compare-and-set) by the next POST, so
//! nothing waits on a dead node longer than the lease. When Redis cannot be reached, POSTs
//! that need the directory get `503` + `Retry-After` while running sessions go on untouched
//! and the connection manager reconnects by itself.

mod audience;
mod beat;
pub mod cascade;
pub mod load;
mod mirror;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::error::{Error, Result};
use crate::sfu::{RoomId, Sfu};
pub use load::NodeReport;

/// How long a node's entry and a room's claim live without renewal: a dead node's rooms can
/// move this long after its last heartbeat (the issue's bound is 10 s).
pub const LEASE: Duration = Duration::from_secs(6);
/// How often a node renews its entry and its rooms' claims (three chances per lease).
pub const RENEW_EVERY: Duration = Duration::from_secs(2);
/// How long one Redis request may take before the POST waiting on it gets `503`.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a POST waits for its placement, all its Redis requests together.
const PLACE_TIMEOUT: Duration = Duration::from_secs(2);

/// `--cluster-redis`, `--node-url`, `--node-id`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT[/DB]`.
    pub redis: String,
    /// How clients and other nodes reach this node's HTTP, without a trailing `/`.
    pub node_url: String,
    pub node_id: String,
}

/// Where a POST for a room is served.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// On this node.
    Here,
    /// On another node: redirect there.
    There { node: String, url: String },
}

/// Renews a claim only while it is still the caller's.
pub(crate) const RENEW: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
/// Deletes a claim only while it is still the caller's.
const RELEASE: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1]) else return 0 end";
/// Moves a claim from a dead owner to a new one, only if the dead one still holds it.
const TAKEOVER: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 else return 0 end";

pub(crate) const NODES: &str = "wisp:nodes";

pub(crate) fn node_key(id: &str) -> String {
    format!("wisp:node:{id}")
}

pub(crate) fn room_key(room: &RoomId) -> String {
    format!("wisp:room:{room}")
}

pub(crate) fn lease_ms() -> u64 {
    LEASE.as_millis() as u64
}

/// This node's part in the cluster.
pub struct Cluster {
    cfg: ClusterConfig,
    redis: ConnectionManager,
    sfu: Arc<Sfu>,
    /// Whether the last heartbeat reached Redis (for logging the change once).
    reachable: AtomicBool,
    /// Heartbeats so far and whether the last one reached Redis (what tests and `/readyz`
    /// can wait on).
    health: tokio::sync::watch::Sender<Health>,
    /// The readings of the last heartbeat and the rates measured up to it.
    last: std::sync::Mutex<Rates>,
    /// The secret nodes show each other (`Authorization: Bearer`), shared through Redis
    /// (`wisp:secret`, made by the first node): it lets an edge follow an origin's room
    /// events and play its publishers whatever tokens the cluster's clients need.
    secret: std::sync::OnceLock<String>,
    /// Node-to-node HTTP (the cascade's upstream sessions and event streams).
    http: reqwest::Client,
    /// The rooms this node serves as an edge, by room.
    cascades: std::sync::Mutex<std::collections::HashMap<RoomId, Arc<cascade::CascadeHandle>>>,
}

/// How the heartbeat is going.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Health {
    /// Heartbeats finished (reaching Redis or not).
    pub beats: u64,
    /// Whether the last one reached Redis.
    pub reachable: bool,
}

/// A heartbeat's readings (CPU seconds, packets sent) and the rates since the one before.
#[derive(Debug, Clone, Copy)]
struct Rates {
    at: std::time::Instant,
    cpu_seconds: f64,
    sent: u64,
    cpu: f64,
    packets_per_s: f64,
}

/// A Redis failure, as the client sees it.
pub(crate) fn unreachable(e: redis::RedisError) -> Error {
    tracing::debug!("cluster directory: {e}");
    Error::DirectoryUnavailable
}

impl Cluster {
    /// Connects lazily (a node starts even while Redis is down) and starts the heartbeat.
    pub fn start(cfg: ClusterConfig, sfu: Arc<Sfu>) -> std::result::Result<Arc<Cluster>, String> {
        let client = redis::Client::open(cfg.redis.as_str())
            .map_err(|e| format!("--cluster-redis {}: {e}", cfg.redis))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let redis = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("--cluster-redis {}: {e}", cfg.redis))?;
        let cluster = Arc::new(Cluster {
            cfg,
            redis,
            sfu,
            reachable: AtomicBool::new(true),
            health: tokio::sync::watch::channel(Health::default()).0,
            secret: Default::default(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(2))
                .build()
                .map_err(|e| format!("HTTP client: {e}"))?,
            cascades: Default::default(),
            last: std::sync::Mutex::new(Rates {
                at: std::time::Instant::now(),
                cpu_seconds: load::cpu_seconds().unwrap_or(0.0),
                sent: 0,
                cpu: 0.0,
                packets_per_s: 0.0,
            }),
        });
        tokio::spawn(beat::heartbeat(Arc::downgrade(&cluster)));
        tokio::spawn(audience::run(Arc::downgrade(&cluster)));
        tokio::spawn(beat::releases(
            Arc::downgrade(&cluster),
            cluster.sfu.notices(),
        ));
        Ok(cluster)
    }

    pub fn node_id(&self) -> &str {
        &self.cfg.node_id
    }

    /// `--node-url`.
    pub fn node_url(&self) -> &str {
        &self.cfg.node_url
    }

    /// Whether `bearer` is the cluster's node-to-node secret.
    pub fn is_peer_secret(&self, bearer: &str) -> bool {
        self.secret
            .get()
            .is_some_and(|s| crate::auth::constant_time_eq(s.as_bytes(), bearer.as_bytes()))
    }

    /// A node-to-node request, carrying the cluster's secret.
    fn internal(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.secret.get() {
            Some(s) => rb.bearer_auth(s),
            None => rb,
        }
    }

    /// Serves a plain WHEP viewer of `room` on this node, an edge of the origin at `origin`:
    /// starts the room's cascade if it has none and waits (bounded) for its first roster, so
    /// the viewer's slots and `/whep/{room}/{participant}` find the origin's publishers.
    pub async fn edge(self: &Arc<Self>, room: &RoomId, origin: &str) -> Result<()> {
        if self.secret.get().is_none() {
            return Err(Error::DirectoryUnavailable);
        }
        let handle = {
            let mut cascades = crate::lock::Locked::locked(&self.cascades);
            cascades
                .entry(room.clone())
                .or_insert_with(|| cascade::spawn(self, room.clone(), origin.to_owned()))
                .clone()
        };
        let mut synced = handle.synced.clone();
        let _ = tokio::time::timeout(cascade::FIRST_ROSTER_WAIT, synced.wait_for(|s| *s)).await;
        Ok(())
    }

    /// Forgets an ended cascade.
    fn cascade_ended(&self, room: &RoomId) {
        crate::lock::Locked::locked(&self.cascades).remove(room);
    }

    /// Whether this node serves `room` as an edge.
    pub fn is_edge(&self, room: &RoomId) -> bool {
        crate::lock::Locked::locked(&self.cascades).contains_key(room)
    }

    /// The room's live owner as the directory says now (`None`: unclaimed, or its owner's
    /// node lease is gone), without claiming anything.
    pub async fn owner(&self, room: &RoomId) -> Result<Option<Placement>> {
        tokio::time::timeout(PLACE_TIMEOUT, self.owner_now(room))
            .await
            .unwrap_or(Err(Error::DirectoryUnavailable))
    }

    async fn owner_now(&self, room: &RoomId) -> Result<Option<Placement>> {
        let mut con = self.con();
        let owner: Option<String> = redis::cmd("GET")
            .arg(room_key(room))
            .query_async(&mut con)
            .await
            .map_err(unreachable)?;
        Ok(match owner {
            None => None,
            Some(id) if id == self.cfg.node_id => Some(Placement::Here),
            Some(id) => self.report(&mut con, &id).await?.map(|n| Placement::There {
                node: n.id,
                url: n.url,
            }),
        })
    }

    /// Every room in the directory: its owner, and its publishers and players over the cluster.
    pub async fn rooms(&self) -> Result<Vec<crate::sfu::admin::RoomSummary>> {
        audience::directory(self).await
    }

    /// The heartbeat's progress, to wait on.
    pub fn health(&self) -> tokio::sync::watch::Receiver<Health> {
        self.health.subscribe()
    }

    fn con(&self) -> ConnectionManager {
        self.redis.clone()
    }

    /// Where a POST for `room` is served: here (the room is ours, or has just been claimed
    /// for us) or on its owner. An unowned room (new, or its owner's lease gone) is claimed
    /// for the least-loaded live node first.
    pub async fn place(&self, room: &RoomId) -> Result<Placement> {
        // However many commands it takes (and the connection manager's reconnect attempts),
        // a POST waits for the directory at most this long.
        tokio::time::timeout(PLACE_TIMEOUT, self.place_now(room))
            .await
            .unwrap_or(Err(Error::DirectoryUnavailable))
    }

    async fn place_now(&self, room: &RoomId) -> Result<Placement> {
        let mut con = self.con();
        let key = room_key(room);
        // Each round either decides or lost a race to another node's claim: a few suffice.
        for _ in 0..4 {
            let owner: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut con)
                .await
                .map_err(unreachable)?;
            let claimed = match owner {
                Some(id) if id == self.cfg.node_id => return Ok(Placement::Here),
                Some(id) => {
                    if let Some(node) = self.report(&mut con, &id).await? {
                        return Ok(Placement::There {
                            node: node.id,
                            url: node.url,
                        });
                    }
                    // The owner's node lease ran out: it is dead; the room moves.
                    let to = self.choose(&mut con).await?;
                    let moved: i64 = redis::Script::new(TAKEOVER)
                        .key(&key)
                        .arg(&id)
                        .arg(&to.id)
                        .arg(lease_ms())
                        .invoke_async(&mut con)
                        .await
                        .map_err(unreachable)?;
                    if moved == 1 {
                        tracing::warn!(%room, dead = %id, to = %to.id, "room's owner is gone: the room moves");
                    }
                    (moved == 1).then_some(to)
                }
                None => {
                    let to = self.choose(&mut con).await?;
                    let set: Option<String> = redis::cmd("SET")
                        .arg(&key)
                        .arg(&to.id)
                        .arg("NX")
                        .arg("PX")
                        .arg(lease_ms())
                        .query_async(&mut con)
                        .await
                        .map_err(unreachable)?;
                    if set.is_some() {
                        tracing::info!(%room, node = %to.id, "room placed");
                    }
                    set.map(|_| to)
                }
            };
            if let Some(to) = claimed {
                return Ok(if to.id == self.cfg.node_id {
                    Placement::Here
                } else {
                    Placement::There {
                        node: to.id,
                        url: to.url,
                    }
                });
            }
        }
        tracing::warn!(%room, "the room's owner kept changing while it was placed");
        Err(Error::DirectoryUnavailable)
    }

    /// A live node's report, `None` when its lease has run out.
    async fn report(&self, con: &mut ConnectionManager, id: &str) -> Result<Option<NodeReport>> {
        let raw: Option<String> = redis::cmd("GET")
            .arg(node_key(id))
            .query_async(con)
            .await
            .map_err(unreachable)?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    /// Every live node's report, this node's as of now; expired ids are pruned from the set.
    pub async fn nodes(&self) -> Result<Vec<NodeReport>> {
        let mut con = self.con();
        self.live(&mut con).await
    }

    async fn live(&self, con: &mut ConnectionManager) -> Result<Vec<NodeReport>> {
        let ids: Vec<String> = redis::cmd("SMEMBERS")
            .arg(NODES)
            .query_async(con)
            .await
            .map_err(unreachable)?;
        let mut nodes = Vec::with_capacity(ids.len() + 1);
        if !ids.is_empty() {
            let keys: Vec<String> = ids.iter().map(|i| node_key(i)).collect();
            let raw: Vec<Option<String>> = redis::cmd("MGET")
                .arg(&keys)
                .query_async(con)
                .await
                .map_err(unreachable)?;
            for (id, r) in ids.iter().zip(raw) {
                match r.and_then(|r| serde_json::from_str::<NodeReport>(&r).ok()) {
                    Some(n) if n.id != self.cfg.node_id => nodes.push(n),
                    Some(_) => {}
                    None => {
                        let _: std::result::Result<i64, _> =
                            redis::cmd("SREM").arg(NODES).arg(id).query_async(con).await;
                    }
                }
            }
        }
        nodes.push(self.sample(None));
        Ok(nodes)
    }

    /// The node a room without a live owner goes to.
    async fn choose(&self, con: &mut ConnectionManager) -> Result<NodeReport> {
        let nodes = self.live(con).await?;
        Ok(load::least_loaded(&nodes)
            .cloned()
            // Every node drains: stay here, where the POST is refused as draining.
            .unwrap_or_else(|| self.sample(None)))
    }

    /// This node's report now. Given the packets sent so far (the heartbeat counts them), the
    /// rates are measured since the previous heartbeat and a new interval starts; without,
    /// the last measured rates are reported.
    fn sample(&self, sent: Option<u64>) -> NodeReport {
        let (publishers, viewers) = self.sfu.session_counts();
        let mut last = crate::lock::Locked::locked(&self.last);
        if let Some(sent) = sent {
            let cpu_now = load::cpu_seconds().unwrap_or(0.0);
            let secs = last.at.elapsed().as_secs_f64().max(0.001);
            *last = Rates {
                at: std::time::Instant::now(),
                cpu_seconds: cpu_now,
                sent,
                cpu: (cpu_now - last.cpu_seconds).max(0.0) / secs,
                packets_per_s: sent.saturating_sub(last.sent) as f64 / secs,
            };
        }
        NodeReport {
            id: self.cfg.node_id.clone(),
            url: self.cfg.node_url.clone(),
            publishers,
            viewers,
            rooms: self.sfu.rooms_now().len(),
            packets_per_s: last.packets_per_s,
            cpu: last.cpu,
            draining: self.sfu.is_draining(),
        }
    }

    /// Gives up `room` (it ended here), if it is still ours.
    async fn release(&self, room: &RoomId) -> Result<()> {
        let mut con = self.con();
        let _: i64 = redis::Script::new(RELEASE)
            .key(room_key(room))
            .arg(&self.cfg.node_id)
            .invoke_async(&mut con)
            .await
            .map_err(unreachable)?;
        Ok(())
    }

    /// Leaves the cluster at shutdown: rooms released and the node's entry removed at once,
    /// rather than after the lease.
    pub async fn leave(&self) {
        for room in self.sfu.rooms_now() {
            let _ = self.release(&room.id).await;
        }
        let mut con = self.con();
        let _: std::result::Result<(), _> = redis::pipe()
            .cmd("DEL")
            .arg(node_key(&self.cfg.node_id))
            .ignore()
            .cmd("SREM")
            .arg(NODES)
            .arg(&self.cfg.node_id)
            .ignore()
            .query_async(&mut con)
            .await;
    }
}
