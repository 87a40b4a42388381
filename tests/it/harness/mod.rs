//! Test harness: an in-process wisp on loopback (this file), webrtc-rs client peers that
//! publish and play through it (`clients.rs`), and a relay that loses media on purpose
//! (`relay.rs`), and a server-sent-events reader (`sse.rs`). Everything waits on events (channels, watch states), never on sleeps.

#![allow(dead_code)]

mod clients;
mod hook;
pub mod nodes;
mod relay;
mod sse;
pub mod turn;
pub use clients::*;
pub use hook::*;
pub use relay::*;
pub use sse::Sse;
pub use turn::*;

use std::net::IpAddr;
use std::time::Duration;

/// The longest any test waits for one event before failing (a bound, not a synchroniser).
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(EVENT_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Claimed port blocks, held for the life of the test process.
static CLAIMS: std::sync::Mutex<Vec<std::net::TcpListener>> = std::sync::Mutex::new(Vec::new());

/// A block of 200 UDP ports no other test process uses at the same time: block `k` is
/// `12000 + 200k ..` (below Linux's ephemeral range, so no client socket lands in it), and
/// holding TCP port `11000 + k` claims it across processes (nextest runs tests as parallel
/// processes; random ranges collided, and a test whose range another test's sessions
/// filled got "no port could be bound").
fn claim_ports() -> u16 {
    let start = rand::random::<u16>() % 100;
    for i in 0..100 {
        let k = (start + i) % 100;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", 11000 + k)) {
            CLAIMS.lock().unwrap().push(l);
            return 12000 + 200 * k;
        }
    }
    panic!("no free block of test ports (TCP 11000-11099 all held)");
}

/// Logs wisp's errors to the test's output, so a failure shows their detail (an internal
/// error's response body does not carry it).
fn log_errors() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| "wisp=error".into()),
            )
            .try_init();
    });
}

/// A server config for loopback tests: port 0 for HTTP, an ICE range of its own (and the
/// 100 ports below it for a TURN relay range, see `turn_config`).
pub fn test_config() -> wisp::Config {
    let base = claim_ports() + 100;
    let mut c = wisp::Config::from_args(wisp::Args::default()).expect("default config");
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.ice_ports = (base, base + 99);
    c.public_ips = vec![IpAddr::from([127, 0, 0, 1])];
    c.allow_remote = vec!["127.0.0.0/8".parse().unwrap()];
    // Every test client comes from 127.0.0.1: the per-address rate limit has its own tests.
    c.http_limits.request_rate = 1e6;
    c.http_limits.request_burst = 1e6;
    c
}

pub async fn start() -> wisp::Server {
    start_with(test_config()).await
}

pub async fn start_with(c: wisp::Config) -> wisp::Server {
    log_errors();
    wisp::Server::start(c).await.expect("server starts")
}

/// The harness's HTTP client. It accepts any certificate, so the same tests run over HTTPS;
/// certificate checks have their own tests with strict clients.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

pub fn url(server: &wisp::Server, path: &str) -> String {
    let scheme = if server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{}{}", server.addr, path)
}

/// One sample's value from a metrics scrape, by its full name with labels.
pub fn sample(scrape: &str, name: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        let (n, v) = l.rsplit_once(' ')?;
        (n == name).then(|| v.parse().ok())?
    })
}

/// The server's metrics, in the classic text format.
pub async fn scrape(server: &wisp::Server) -> String {
    http()
        .get(url(server, wisp::http::paths::METRICS))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
