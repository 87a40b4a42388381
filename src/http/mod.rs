//! The HTTP surface: hyper-util's accept loop serving HTTP/1.1 and HTTP/2 (h2c), graceful
//! shutdown, and the WHIP/WHEP routes in [`api`].

pub mod api;
pub mod headers;
pub mod paths;

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
    pub sfu: Arc<Sfu>,
}

/// The landing page (the conference page replaces it).
pub fn page(config: &Config) -> String {
    let _ = config;
    "<!doctype html><meta charset=utf-8><title>wisp</title>\
<h1>wisp</h1><p>WHIP: <code>POST /whip/{room}</code> &middot; WHEP: <code>POST /whep/{room}</code></p>\n"
        .to_string()
}

/// Accepts connections until `shutdown` resolves, then drains them (up to 5 s).
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
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
                let app = app.clone();
                let svc = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, std::convert::Infallible>(api::handle(app, req).await) }
                });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
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
