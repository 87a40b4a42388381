//! Cluster-wide audiences: every node writes how many players each of its rooms has here
//! (`wisp:viewers:{room}`, a hash of node → `count:unix-ms`) every [`TALLY_EVERY`], and tells
//! each room how many it has on the other nodes, so `viewercount` on the origin counts its
//! edges' players and an edge's players see the same number. A node that stops writing drops
//! out of the sum after the lease; other nodes' upstream sessions are never counted (the
//! nodes they feed count their own players).

use std::collections::HashMap;
use std::sync::Weak;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cluster::{Cluster, LEASE, unreachable};
use crate::error::Result;
use crate::sfu::RoomId;
use crate::sfu::room::Command;

/// How often audiences are written and read.
pub const TALLY_EVERY: Duration = Duration::from_secs(1);

fn key(room: &RoomId) -> String {
    format!("wisp:viewers:{room}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The players on nodes other than `me`, from a room's hash, entries older than the lease
/// (a dead node's) left out.
fn elsewhere(fields: &HashMap<String, String>, me: &str, now: u64) -> usize {
    fields
        .iter()
        .filter(|(node, _)| node.as_str() != me)
        .filter_map(|(_, v)| {
            let (n, at) = v.split_once(':')?;
            let at: u64 = at.parse().ok()?;
            (now.saturating_sub(at) <= LEASE.as_millis() as u64).then(|| n.parse::<usize>().ok())?
        })
        .sum()
}

/// Writes and reads every room's audience each [`TALLY_EVERY`] until the cluster is dropped.
pub(crate) async fn run(cluster: Weak<Cluster>) {
    let mut tick = tokio::time::interval(TALLY_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // What each room was last told, and the rooms this node has written for.
    let mut told: HashMap<RoomId, usize> = HashMap::new();
    loop {
        tick.tick().await;
        let Some(c) = cluster.upgrade() else { return };
        if let Err(e) = tally(&c, &mut told).await {
            tracing::debug!("audience tally: {e}");
        }
    }
}

async fn tally(c: &Cluster, told: &mut HashMap<RoomId, usize>) -> Result<()> {
    let mut con = c.con();
    let me = c.node_id();
    let rooms = c.sfu.rooms_now();
    // Rooms gone from this node: take this node's count out.
    let gone: Vec<RoomId> = told
        .keys()
        .filter(|r| !rooms.iter().any(|room| &room.id == *r))
        .cloned()
        .collect();
    for r in gone {
        told.remove(&r);
        let _: std::result::Result<i64, _> = redis::cmd("HDEL")
            .arg(key(&r))
            .arg(me)
            .query_async(&mut con)
            .await;
    }
    for room in rooms {
        let here = room.local_viewers().await;
        let now = now_ms();
        let (fields,): (HashMap<String, String>,) = redis::pipe()
            .cmd("HSET")
            .arg(key(&room.id))
            .arg(me)
            .arg(format!("{here}:{now}"))
            .ignore()
            .cmd("PEXPIRE")
            .arg(key(&room.id))
            .arg(LEASE.as_millis() as u64)
            .ignore()
            .cmd("HGETALL")
            .arg(key(&room.id))
            .query_async(&mut con)
            .await
            .map_err(unreachable)?;
        let others = elsewhere(&fields, me, now);
        if told.insert(room.id.clone(), others) != Some(others) {
            room.send(Command::Elsewhere(others)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_other_live_nodes_only() {
        let now = 1_000_000;
        let f: HashMap<String, String> = [
            ("me", "7:1000000"),
            ("b", "2:999000"),
            ("c", "3:995000"),
            ("dead", "9:900000"),
            ("bad", "x:1000000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(elsewhere(&f, "me", now), 5);
    }
}
