//! The HTTP surface: hyper-util's accept loop serving HTTP/1.1 and HTTP/2 (h2c), graceful
//! shutdown, and the WHIP/WHEP routes in [`api`].

pub mod admin;
pub mod api;
mod assets;
mod cluster;
mod files;
mod hls;
pub use assets::asset;
pub mod events;
pub mod headers;
mod idle;
pub mod limits;
pub mod ops;
pub mod paths;
mod social;
pub mod streams;
pub mod tls;
pub mod whep_ext;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::sfu::Sfu;

/// What request handlers share.
pub struct App {
    pub config: Config,
    /// Who may do what.
    pub auth: crate::auth::Auth,
    /// Connections and request rates per client (see `limits`).
    pub limiter: Arc<limits::Limiter>,
    /// `--auth-webhook`: asked before a WHIP/WHEP POST is served.
    pub admission: Option<crate::hooks::AdmissionHook>,
    pub sfu: Arc<Sfu>,
    pub turn: Option<Arc<crate::turn::Turn>>,
    /// WHEP event streams of the sessions.
    pub streams: streams::Streams,
    pub metrics: crate::metrics::Metrics,
    /// Cluster mode: the directory that says which node serves a room.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// `--record-dir`: the recordings.
    pub recorder: Option<Arc<crate::record::Recorder>>,
    /// LL-HLS packagers, one per room being watched over HLS.
    pub hls: Arc<crate::hls::Packagers>,
}

impl App {
    /// The metrics scrape, in the format `accept` asks for: (content type, body).
    pub async fn scrape(&self, accept: Option<&str>) -> (&'static str, String) {
        let turn = self.turn.as_ref().map_or(0, |t| t.allocation_count());
        let format = crate::metrics::content_type(accept);
        let refused = (
            self.limiter
                .refused_connections
                .load(std::sync::atomic::Ordering::Relaxed),
            self.limiter
                .limited_requests
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        let body = self.metrics.render(&self.sfu, turn, refused, format).await;
        (format, body)
    }
}

/// `--metrics-listen`: `GET /metrics` and nothing else, without the token (a port for the
/// scraper only), until the task is aborted.
pub async fn serve_metrics(app: Arc<App>, listener: TcpListener) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let app = app.clone();
            async move {
                let resp =
                    if req.uri().path() == paths::METRICS && req.method() == hyper::Method::GET {
                        let accept = req
                            .headers()
                            .get(hyper::header::ACCEPT)
                            .and_then(|v| v.to_str().ok());
                        let (ct, body) = app.scrape(accept).await;
                        headers::with_body(hyper::StatusCode::OK, ct, body)
                    } else {
                        headers::error(&crate::error::Error::NotFound)
                    };
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        let builder = builder.clone();
        tokio::spawn(async move {
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// How long a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections (over TLS when `tls` is set) until `shutdown` resolves, then drains
/// them (up to 5 s).
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let header_timeout = app.limiter.limits.header_timeout;
    let idle_timeout = app.limiter.limits.idle_timeout;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client gets this long for a request's headers (slowloris); hyper times HTTP/1, and the
    // first byte of a plain connection is awaited below.
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer): (_, SocketAddr) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("accept: {e}");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let Some(admitted) = app.limiter.admit(peer.ip()) else {
                    tracing::debug!(%peer, "connection refused: over the connection caps");
                    if tls.is_none() {
                        // Said in HTTP, so a client knows to come back (over TLS it would
                        // take a handshake: closed instead).
                        tokio::spawn(async move {
                            use tokio::io::AsyncWriteExt;
                            let mut stream = stream;
                            let _ = tokio::time::timeout(
                                Duration::from_secs(1),
                                stream.write_all(limits::OVER_CAP_RESPONSE),
                            )
                            .await;
                        });
                    }
                    continue;
                };
                let app = app.clone();
                let svc = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                    // The client's address, for the admission webhook.
                    req.extensions_mut().insert(peer);
                    let app = app.clone();
                    async move { Ok::<_, std::convert::Infallible>(api::handle(app, req).await) }
                });
                let watcher = graceful.watcher();
                let builder = builder.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _admitted = admitted;
                    let activity = idle::Activity::new();
                    let watched = idle::Watched::new(stream, activity.clone());
                    let served = async move { match tls {
                        None => {
                            // Version detection waits for the first bytes with no timer of
                            // its own: a connection that sends nothing is closed here.
                            let mut first = [0u8; 1];
                            match tokio::time::timeout(header_timeout, watched.get_ref().peek(&mut first)).await {
                                Ok(Ok(n)) if n > 0 => {}
                                _ => {
                                    tracing::debug!(%peer, "closed: nothing sent within the header timeout");
                                    return Ok(());
                                }
                            }
                            let conn = builder.serve_connection_with_upgrades(TokioIo::new(watched), svc);
                            watcher.watch(conn.into_owned()).await
                        }
                        Some(acceptor) => {
                            let stream = match tokio::time::timeout(
                                TLS_HANDSHAKE_TIMEOUT,
                                acceptor.accept(watched),
                            )
                            .await
                            {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, "TLS handshake: {e}");
                                    return Ok(());
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    return Ok(());
                                }
                            };
                            // ALPN already chose the protocol: no version sniffing to wait on.
                            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                            let builder = if h2 { builder.http2_only() } else { builder.http1_only() };
                            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                            watcher.watch(conn.into_owned()).await
                        }
                    } };
                    let result = tokio::select! {
                        r = served => r,
                        () = activity.idle(idle_timeout) => {
                            tracing::debug!(%peer, "closed: idle for the idle timeout");
                            return;
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, "connection: {e}");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some HTTP connections did not close within 5 s");
    }
    Ok(())
}
