//! The heartbeat: every [`RENEW_EVERY`] a node writes its entry (its load report, under the
//! node lease), fetches the cluster's node-to-node secret once, and renews the claims of the
//! rooms it owns — claiming again a room whose claim lapsed while Redis was away. Rooms
//! ending here are released at once.

use std::sync::atomic::Ordering;

use redis::aio::ConnectionManager;

use crate::cluster::{
    Cluster, NODES, RENEW, RENEW_EVERY, lease_ms, node_key, room_key, unreachable,
};
use crate::error::{Error, Result};
use crate::sfu::RoomId;

impl Cluster {
    /// One heartbeat: this node's entry, then the claims of the rooms it holds.
    async fn beat(&self) -> Result<()> {
        let mut con = self.con();
        // The lease first, with the rates measured up to the last beat (busy rooms answering
        // for their counts must not delay it), then this interval's rates for the next.
        let report = self.sample(None);
        let json = serde_json::to_string(&report).map_err(|e| Error::Internal(e.to_string()))?;
        redis::pipe()
            .cmd("SET")
            .arg(node_key(&self.cfg.node_id))
            .arg(json)
            .arg("PX")
            .arg(lease_ms())
            .ignore()
            .cmd("SADD")
            .arg(NODES)
            .arg(&self.cfg.node_id)
            .ignore()
            .query_async::<()>(&mut con)
            .await
            .map_err(unreachable)?;
        let mut sent = 0u64;
        for room in self.sfu.rooms_now() {
            sent = sent.saturating_add(room.totals().await.packets_out.iter().sum::<u64>());
        }
        self.sample(Some(sent));
        if self.secret.get().is_none() {
            let made = uuid::Uuid::new_v4().as_simple().to_string();
            let _: Option<String> = redis::cmd("SET")
                .arg("wisp:secret")
                .arg(&made)
                .arg("NX")
                .query_async(&mut con)
                .await
                .map_err(unreachable)?;
            let shared: Option<String> = redis::cmd("GET")
                .arg("wisp:secret")
                .query_async(&mut con)
                .await
                .map_err(unreachable)?;
            if let Some(s) = shared {
                let _ = self.secret.set(s);
            }
        }
        for room in self.sfu.rooms_now() {
            if !self.is_edge(&room.id) {
                self.hold(&mut con, &room.id).await?;
            }
        }
        Ok(())
    }

    /// Renews this node's claim on `room`, or claims it again if the claim lapsed (Redis was
    /// away longer than the lease, or restarted empty).
    async fn hold(&self, con: &mut ConnectionManager, room: &RoomId) -> Result<()> {
        let key = room_key(room);
        let renewed: i64 = redis::Script::new(RENEW)
            .key(&key)
            .arg(&self.cfg.node_id)
            .arg(lease_ms())
            .invoke_async(con)
            .await
            .map_err(unreachable)?;
        if renewed == 1 {
            return Ok(());
        }
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&self.cfg.node_id)
            .arg("NX")
            .arg("PX")
            .arg(lease_ms())
            .query_async(con)
            .await
            .map_err(unreachable)?;
        if set.is_none() {
            let other: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(con)
                .await
                .map_err(unreachable)?;
            tracing::warn!(%room, owner = ?other, "this node serves a room another node now owns");
        }
        Ok(())
    }
}

/// Beats every [`RENEW_EVERY`] until the cluster is dropped, logging when Redis goes away and
/// comes back.
pub(crate) async fn heartbeat(cluster: std::sync::Weak<Cluster>) {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(c) = cluster.upgrade() else { return };
        let ok = c.beat().await.is_ok();
        c.health.send_modify(|h| {
            h.beats += 1;
            h.reachable = ok;
        });
        if c.reachable.swap(ok, Ordering::Relaxed) != ok {
            if ok {
                tracing::info!(node = %c.cfg.node_id, "cluster directory reachable again");
            } else {
                tracing::warn!(node = %c.cfg.node_id, redis = %c.cfg.redis, "cluster directory unreachable: running sessions go on, new POSTs get 503");
            }
        }
    }
}

/// Releases each room's claim as the room ends here.
pub(crate) async fn releases(
    cluster: std::sync::Weak<Cluster>,
    mut notices: tokio::sync::broadcast::Receiver<crate::sfu::events::Notice>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match notices.recv().await {
            Ok(crate::sfu::events::Notice::Ended(room)) => {
                let Some(c) = cluster.upgrade() else { return };
                if c.sfu.room(&room).is_some() {
                    continue; // made again here since: still ours
                }
                if let Err(e) = c.release(&room).await {
                    // The lease frees it anyway.
                    tracing::debug!(%room, "room claim not released: {e}");
                }
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}
