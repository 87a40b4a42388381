//! # wisp — a WHIP/WHEP broadcast and conference server
//!
//! ```text
//!  publisher ──UDP──▶ rtc/ (the only code that touches webrtc-rs)
//!                      │ TrackRemote reader task, one per incoming track
//!                      ▼
//!                  media/ fan-out: load the track's subscriber snapshot (ArcSwap, no lock),
//!                      │           hand the packet (one Arc, payload Bytes shared) to each slot
//!                      ▼
//!                  per-viewer slot: bounded queue → rewriter (SSRC, seq, timestamp, keyframe
//!                      │           gate) → TrackLocal write. A full queue drops and asks for a
//!                      ▼           keyframe; it never blocks the publisher or other viewers.
//!  viewer  ◀──UDP── rtc/
//! ```
//!
//! Signalling never sits on that path: `http/` parses requests and calls `sfu/` (rooms,
//! sessions), which builds peers through `rtc/` and wires tracks through `media/`.
//! Dependencies run one way: `http → sfu → media → rtc`, with `signal/` (pure SDP policy) and
//! `error` usable from all.

pub mod auth;
pub mod cluster;
pub mod config;
pub mod container;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod hls;
pub mod hooks;
pub mod http;
pub mod lock;
pub mod media;
pub mod metrics;
pub mod record;
pub mod rtc;
pub mod sfu;
pub mod signal;
pub mod turn;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use config::{Args, Config};

/// A running server: its address, its state, and the switch that stops it.
pub struct Server {
    pub addr: SocketAddr,
    /// Where `--metrics-listen` serves `/metrics`, if set.
    pub metrics_addr: Option<SocketAddr>,
    pub sfu: Arc<sfu::Sfu>,
    /// The HTTPS certificate, when serving HTTPS.
    pub tls: Option<Arc<http::tls::Reloadable>>,
    /// The embedded TURN/STUN server, when configured.
    pub turn: Option<Arc<turn::Turn>>,
    /// Cluster mode: this node's part in the cluster.
    pub cluster: Option<Arc<cluster::Cluster>>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Binds `config.listen` and starts serving on the current tokio runtime.
    pub async fn start(config: Config) -> std::io::Result<Server> {
        let engine = rtc::RtcEngine::new(config.rtc_settings()).map_err(|e| {
            // Start-up failures are for the operator: give the detail, not the client text.
            std::io::Error::other(match e {
                error::Error::Internal(detail) => detail,
                e => e.to_string(),
            })
        })?;
        let tls = match &config.tls {
            config::Tls::Off => None,
            config::Tls::Files { cert, key } => Some(http::tls::TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            config::Tls::SelfSigned => {
                let mut names = vec!["localhost".to_string(), config.listen.ip().to_string()];
                names.extend(config.public_ips.iter().map(|ip| ip.to_string()));
                names.dedup();
                Some(http::tls::TlsSource::SelfSigned(names))
            }
        }
        .map(http::tls::Reloadable::new)
        .transpose()
        .map_err(|e| std::io::Error::other(format!("TLS certificate: {e}")))?;
        let acceptor = tls
            .as_ref()
            .map(|t| t.acceptor(&[b"h2", b"http/1.1"]))
            .transpose()
            .map_err(std::io::Error::other)?;
        let turn = match &config.turn {
            None => None,
            Some(cfg) => {
                let guard = Arc::new(turn::IceSessions {
                    ports: engine.ports.clone(),
                    public_ips: config.public_ips.clone(),
                    bind_ip: config.ice_bind,
                    shared_port: config.ice_udp_port,
                });
                let acceptor = tls
                    .as_ref()
                    .map(|t| t.acceptor(&[]))
                    .transpose()
                    .map_err(std::io::Error::other)?;
                Some(
                    turn::Turn::start(cfg.clone(), guard, acceptor)
                        .await
                        .map_err(std::io::Error::other)?,
                )
            }
        };
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let sfu = sfu::Sfu::new(
            engine,
            sfu::Limits {
                max_sessions: config.max_sessions,
                max_sessions_per_room: config.max_sessions_per_room,
                max_event_streams_per_room: config.max_event_streams_per_room,
                vad: config.vad,
                reconnect_grace: config.reconnect_grace,
            },
        );
        let auth = auth::Auth::new(&config.auth).map_err(std::io::Error::other)?;
        let admission = match &config.auth_webhook {
            Some(url) => Some(
                hooks::AdmissionHook::new(url.clone(), config.auth_webhook_timeout)
                    .map_err(std::io::Error::other)?,
            ),
            None => None,
        };
        if let Some((url, secret)) = &config.webhook {
            let hook = hooks::EventHook::new(url.clone(), secret).map_err(std::io::Error::other)?;
            tokio::spawn(hook.run(sfu.clone()));
        }
        let cluster = match &config.cluster {
            Some(c) => Some(
                cluster::Cluster::start(c.clone(), sfu.clone()).map_err(std::io::Error::other)?,
            ),
            None => None,
        };
        let recorder = match &config.record {
            Some(r) => Some(
                record::Recorder::start(r.clone(), sfu.clone()).map_err(std::io::Error::other)?,
            ),
            None => None,
        };
        let app = Arc::new(http::App {
            recorder: recorder.clone(),
            hls: Default::default(),
            cluster: cluster.clone(),
            limiter: Arc::new(http::limits::Limiter::new(config.http_limits)),
            auth,
            admission,
            config,
            sfu: sfu.clone(),
            turn: turn.clone(),
            streams: Default::default(),
            metrics: Default::default(),
        });
        let (metrics_addr, metrics_task) = match app.config.metrics_listen {
            Some(at) => {
                let l = TcpListener::bind(at).await?;
                let a = l.local_addr()?;
                (
                    Some(a),
                    Some(tokio::spawn(http::serve_metrics(app.clone(), l))),
                )
            }
            None => (None, None),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown_sfu = sfu.clone();
        let leaving = cluster.clone();
        let task = tokio::spawn(async move {
            let r = http::serve(app, listener, acceptor, async {
                let _ = stopped.await;
            })
            .await;
            shutdown_sfu.shutdown().await;
            if let Some(r) = recorder {
                r.finish().await;
            }
            if let Some(c) = leaving {
                c.leave().await;
            }
            if let Some(t) = metrics_task {
                t.abort();
            }
            r
        });
        Ok(Server {
            addr,
            metrics_addr,
            sfu,
            tls,
            turn,
            cluster,
            stop: Some(stop),
            task,
        })
    }

    /// Re-reads the HTTPS certificate files (what SIGHUP does); sessions are not touched and
    /// the old certificate stays if the new one does not load.
    pub fn reload_tls(&self) -> Result<(), String> {
        match &self.tls {
            Some(t) => t.reload(),
            None => Ok(()),
        }
    }

    /// Stops accepting, drains HTTP, ends every session.
    /// Drains, then shuts down: new sessions get `503` + `Retry-After`, `/readyz` says so,
    /// rooms send `closing` and WHEP viewers `reconnect`; sessions get up to `timeout` to end
    /// (their clients DELETE them or go away), then whatever is left is ended.
    pub async fn drain(self, timeout: std::time::Duration) -> std::io::Result<()> {
        self.sfu
            .drain("The server is shutting down; connect again to continue.")
            .await;
        let left = tokio::time::timeout(timeout, self.sfu.sessions_ended()).await;
        if left.is_err() {
            tracing::info!(
                sessions = self.sfu.session_count(),
                "drain timeout: ending the sessions left"
            );
        }
        self.shutdown().await
    }

    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
    }
}
