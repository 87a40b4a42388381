//! Cluster-wide audiences: every node writes how many players and publishers each of its rooms
//! has here (`wisp:viewers:{room}`, a hash of node → `players:publishers:unix-ms`; an edge's
//! mirrors are not publishers) every [`TALLY_EVERY`], and tells
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

/// One node's entry: (players, publishers), `None` when malformed or older than the lease (a
/// dead node's).
fn entry(v: &str, now: u64) -> Option<(usize, usize)> {
    let mut parts = v.split(':');
    let players = parts.next()?.parse().ok()?;
    let publishers = parts.next()?.parse().ok()?;
    let at: u64 = parts.next()?.parse().ok()?;
    (now.saturating_sub(at) <= LEASE.as_millis() as u64).then_some((players, publishers))
}

/// The players on nodes other than `me`, from a room's hash.
fn elsewhere(fields: &HashMap<String, String>, me: &str, now: u64) -> usize {
    fields
        .iter()
        .filter(|(node, _)| node.as_str() != me)
        .filter_map(|(_, v)| entry(v, now))
        .map(|(players, _)| players)
        .sum()
}

/// A room's (players, publishers) over every live node, from its hash.
fn totals(fields: &HashMap<String, String>, now: u64) -> (usize, usize) {
    fields
        .values()
        .filter_map(|v| entry(v, now))
        .fold((0, 0), |(a, b), (p, q)| (a + p, b + q))
}

/// Every room in the directory with its owner and its players and publishers over the
/// cluster (`/api/rooms` in cluster mode).
pub(crate) async fn directory(c: &Cluster) -> Result<Vec<crate::sfu::admin::RoomSummary>> {
    let mut con = c.con();
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    // Bounded: SCAN returns every key once its cursor comes back to 0.
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("wisp:room:*")
            .arg("COUNT")
            .arg(500)
            .query_async(&mut con)
            .await
            .map_err(unreachable)?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    let now = now_ms();
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let Some(room) = k.strip_prefix("wisp:room:") else {
            continue;
        };
        let Ok(id) = RoomId::parse(room) else {
            continue;
        };
        let (owner, fields): (Option<String>, HashMap<String, String>) = redis::pipe()
            .cmd("GET")
            .arg(&k)
            .cmd("HGETALL")
            .arg(key(&id))
            .query_async(&mut con)
            .await
            .map_err(unreachable)?;
        let (viewers, participants) = totals(&fields, now);
        out.push(crate::sfu::admin::RoomSummary {
            id: id.to_string(),
            participants,
            viewers,
            node: owner,
        });
    }
    Ok(out)
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
        let publishers = c.sfu.publishers_in(&room.id);
        let now = now_ms();
        let (fields,): (HashMap<String, String>,) = redis::pipe()
            .cmd("HSET")
            .arg(key(&room.id))
            .arg(me)
            .arg(format!("{here}:{publishers}:{now}"))
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
            ("me", "7:1:1000000"),
            ("b", "2:0:999000"),
            ("c", "3:0:995000"),
            ("dead", "9:4:900000"),
            ("bad", "x:0:1000000"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(elsewhere(&f, "me", now), 5);
        assert_eq!(
            totals(&f, now),
            (12, 1),
            "every live node's, the dead one's left out"
        );
    }
}
