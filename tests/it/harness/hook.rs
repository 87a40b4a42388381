//! A small local HTTP receiver for webhook tests: every request it gets goes to a channel, and
//! a policy decides each answer (status, body, and a delay before answering).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::mpsc;

/// One request as the receiver saw it.
#[derive(Debug)]
pub struct Received {
    pub headers: hyper::HeaderMap,
    pub body: String,
}

/// What the receiver answers to a body: (status, body, delay).
pub type Policy = Arc<dyn Fn(&str) -> (u16, String, Duration) + Send + Sync>;

pub struct HookReceiver {
    pub url: String,
    pub requests: mpsc::UnboundedReceiver<Received>,
}

impl HookReceiver {
    pub async fn start(policy: Policy) -> HookReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, requests) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tx, policy) = (tx.clone(), policy.clone());
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (tx, policy) = (tx.clone(), policy.clone());
                        async move {
                            let headers = req.headers().clone();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let body = String::from_utf8_lossy(&body).into_owned();
                            let (status, answer, delay) = policy(&body);
                            let _ = tx.send(Received { headers, body });
                            tokio::time::sleep(delay).await;
                            let mut r = hyper::Response::new(Full::new(Bytes::from(answer)));
                            *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(r)
                        }
                    },
                );
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        HookReceiver { url, requests }
    }

    /// The next request: its headers, its body as sent, and the body as JSON.
    pub async fn next_json(&mut self) -> (hyper::HeaderMap, String, serde_json::Value) {
        let r = crate::harness::within("a webhook request", self.requests.recv())
            .await
            .unwrap();
        let json = serde_json::from_str(&r.body).unwrap();
        (r.headers, r.body, json)
    }
}
