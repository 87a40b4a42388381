//! A real `redis-server` (Debian's package, installed by `tests/setup.sh`) for the cluster
//! tests, on a free loopback port, with no persistence; and wisp nodes that share it, in this
//! process or as `wisp` child processes (the ones a test kills with SIGKILL).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use super::{EVENT_TIMEOUT, test_config};

/// A free TCP port on 127.0.0.1 (bound and released: the server that takes it next binds it
/// at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `redis-server`; killed when dropped.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Redis {
        let mut r = Redis {
            port: free_port(),
            child: None,
        };
        r.restart();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port, and returns once it says it accepts
    /// connections.
    pub fn restart(&mut self) {
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            // Keyspace events: tests wait on a claim's expiry or deletion, not on a clock.
            .args(["--notify-keyspace-events", "Kgx"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server; tests/setup.sh installs it)");
        let ready = until_line(child.stdout.take().unwrap(), "Ready to accept connections");
        assert!(ready, "redis-server did not start on port {}", self.port);
        self.child = Some(child);
    }

    /// SIGKILL, as a crashed Redis.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// A subscription to the keyspace events of `key` (`del`, `expired`, `set`...).
    pub async fn watch(&self, key: &str) -> redis::aio::PubSub {
        let mut ps = redis::Client::open(self.url())
            .unwrap()
            .get_async_pubsub()
            .await
            .unwrap();
        ps.subscribe(format!("__keyspace@0__:{key}")).await.unwrap();
        ps
    }

    pub async fn get(&self, key: &str) -> Option<String> {
        let mut c = self.connection().await;
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads `out` until a line containing `wanted` (true) or its end (false); the rest is read
/// and dropped by a thread, so the child never writes into a closed pipe.
fn until_line(out: std::process::ChildStdout, wanted: &str) -> bool {
    let mut lines = BufReader::new(out).lines();
    let found = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains(wanted));
    std::thread::spawn(move || lines.for_each(drop));
    found
}

/// Waits for the next keyspace event on a watched key and returns its name.
pub async fn next_event(ps: &mut redis::aio::PubSub) -> String {
    use futures_util::StreamExt;
    let msg = tokio::time::timeout(EVENT_TIMEOUT, ps.on_message().next())
        .await
        .expect("a keyspace event in time")
        .expect("the subscription is open");
    msg.get_payload().unwrap()
}

/// A node's config: the test config on a fixed free port (its URL must be known before it
/// starts), in the cluster on `redis` as `id`.
pub fn node_config(redis: &Redis, id: &str) -> wisp::Config {
    let mut c = test_config();
    let port = free_port();
    c.listen = ([127, 0, 0, 1], port).into();
    c.cluster = Some(wisp::cluster::ClusterConfig {
        redis: redis.url(),
        node_url: format!("http://127.0.0.1:{port}"),
        node_id: id.into(),
    });
    c
}

/// A started in-process node whose first heartbeat has reached Redis.
pub async fn node(redis: &Redis, id: &str) -> wisp::Server {
    let s = super::start_with(node_config(redis, id)).await;
    beaten(&s, 1).await;
    s
}

/// Waits until `server`'s heartbeat has run `n` times with Redis reachable on the last.
pub async fn beaten(server: &wisp::Server, n: u64) {
    let mut h = server.cluster.as_ref().expect("cluster mode").health();
    super::within("a heartbeat reaching Redis", async {
        h.wait_for(|h| h.beats >= n && h.reachable).await.unwrap();
    })
    .await;
}

/// A `wisp` child process in the cluster, for tests that kill a node with SIGKILL.
pub struct NodeProcess {
    pub url: String,
    child: Child,
}

impl NodeProcess {
    pub fn start(redis: &Redis, id: &str) -> NodeProcess {
        let c = node_config(redis, id);
        let cluster = c.cluster.unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_wisp"))
            .arg("--listen")
            .arg(c.listen.to_string())
            .arg("--ice-ports")
            .arg(format!("{}-{}", c.ice_ports.0, c.ice_ports.1))
            .args(["--public-ip", "127.0.0.1", "--allow-remote", "127.0.0.0/8"])
            .args(["--request-rate", "1000000", "--request-burst", "1000000"])
            .arg("--cluster-redis")
            .arg(&cluster.redis)
            .arg("--node-url")
            .arg(&cluster.node_url)
            .arg("--node-id")
            .arg(id)
            .env("WISP_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the wisp binary");
        let mut node = NodeProcess {
            url: cluster.node_url,
            child,
        };
        // The banner comes after the listener is bound.
        let up = until_line(node.child.stdout.take().unwrap(), "wisp is running");
        assert!(up, "the wisp node did not start");
        node
    }

    /// SIGKILL: no cleanup, as a crashed machine.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
