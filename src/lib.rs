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

pub mod config;
pub mod error;
pub mod http;
pub mod media;
pub mod rtc;
pub mod sfu;
pub mod signal;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use config::{Args, Config};

/// A running server: its address, its state, and the switch that stops it.
pub struct Server {
    pub addr: SocketAddr,
    pub sfu: Arc<sfu::Sfu>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Binds `config.listen` and starts serving on the current tokio runtime.
    pub async fn start(config: Config) -> std::io::Result<Server> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let engine = rtc::RtcEngine::new(config.rtc_settings())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let sfu = sfu::Sfu::new(
            engine,
            sfu::Limits {
                max_sessions: config.max_sessions,
            },
        );
        let app = Arc::new(http::App {
            config,
            sfu: sfu.clone(),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown_sfu = sfu.clone();
        let task = tokio::spawn(async move {
            let r = http::serve(app, listener, async {
                let _ = stopped.await;
            })
            .await;
            shutdown_sfu.shutdown().await;
            r
        });
        Ok(Server {
            addr,
            sfu,
            stop: Some(stop),
            task,
        })
    }

    /// Stops accepting, drains HTTP, ends every session.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
    }
}
