//! What a node tells the directory about itself each heartbeat, and the one rule that picks
//! a node for a new room from those reports.

use serde::{Deserialize, Serialize};

/// One node's entry in the directory (`wisp:node:{id}`, JSON, under the node lease).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    pub id: String,
    /// `--node-url`: where clients and other nodes reach this node's HTTP.
    pub url: String,
    pub publishers: usize,
    pub viewers: usize,
    pub rooms: usize,
    /// Packets sent to viewers per second over the last heartbeat interval.
    pub packets_per_s: f64,
    /// The process's CPU over the last heartbeat interval, in cores (1.0 = one core busy).
    pub cpu: f64,
    /// Draining (SIGTERM): takes no new rooms.
    pub draining: bool,
}

impl NodeReport {
    /// The load new rooms are placed by: sessions first (each is a peer to serve), then
    /// forwarding work, then CPU.
    fn load_key(&self) -> (usize, u64, u64) {
        (
            self.publishers + self.viewers,
            self.packets_per_s as u64,
            (self.cpu * 1000.0) as u64,
        )
    }
}

/// The node a new room goes to: the least-loaded one that is not draining (ties broken by id,
/// so every node that asks at the same moment picks the same one). `None` when every node
/// drains.
pub fn least_loaded(nodes: &[NodeReport]) -> Option<&NodeReport> {
    nodes
        .iter()
        .filter(|n| !n.draining)
        .min_by(|a, b| a.load_key().cmp(&b.load_key()).then(a.id.cmp(&b.id)))
}

/// The process's CPU time so far, from `/proc/self/stat` (utime + stime, in clock ticks of
/// USER_HZ, which Linux fixes at 100 for `/proc`), in seconds. `None` off Linux.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing paren.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // Fields 3.. : state is the first here; utime is field 14, stime 15 (1-based, man 5 proc).
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, sessions: usize, pps: f64, draining: bool) -> NodeReport {
        NodeReport {
            id: id.into(),
            url: format!("http://{id}"),
            publishers: 0,
            viewers: sessions,
            rooms: 0,
            packets_per_s: pps,
            cpu: 0.0,
            draining,
        }
    }

    #[test]
    fn picks_fewest_sessions_then_least_forwarding_never_a_draining_node() {
        let nodes = [
            node("a", 5, 0.0, false),
            node("b", 2, 900.0, false),
            node("c", 2, 100.0, false),
            node("d", 0, 0.0, true),
        ];
        assert_eq!(least_loaded(&nodes).unwrap().id, "c");
        assert!(least_loaded(&[node("x", 0, 0.0, true)]).is_none());
        assert!(least_loaded(&[]).is_none());
    }

    #[test]
    fn ties_go_to_the_same_node_whoever_asks() {
        let a = [node("n2", 1, 0.0, false), node("n1", 1, 0.0, false)];
        let b = [node("n1", 1, 0.0, false), node("n2", 1, 0.0, false)];
        assert_eq!(least_loaded(&a).unwrap().id, "n1");
        assert_eq!(least_loaded(&b).unwrap().id, "n1");
    }

    #[test]
    fn reads_this_process_cpu() {
        let t = cpu_seconds().expect("Linux /proc");
        assert!(t >= 0.0);
    }
}
