//! What an operator's tools ask: liveness and readiness (no token), metrics, and the count
//! of every request answered.

use hyper::header;
use hyper::{Method, Request, Response, StatusCode};

use crate::error::{Error, Result};
use crate::http::App;
use crate::http::headers::{self, Body};
use crate::http::paths::Route;

/// `GET /healthz` (alive) and `GET /readyz` (taking sessions; `503` while draining).
pub fn health(app: &App, route: &Route, method: &Method) -> Result<Response<Body>> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return Err(Error::MethodNotAllowed { allow: "GET, HEAD" });
    }
    if *route == Route::Ready && app.sfu.is_draining() {
        return Err(Error::Draining);
    }
    let text = if *route == Route::Ready {
        "ready\n"
    } else {
        "ok\n"
    };
    Ok(headers::with_body(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        text,
    ))
}

/// `GET /metrics`, in the format the scraper's `Accept` asks for.
pub async fn metrics<B>(app: &App, req: &Request<B>) -> Result<Response<Body>> {
    if req.method() != Method::GET {
        return Err(Error::MethodNotAllowed { allow: "GET" });
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let (ct, body) = app.scrape(accept).await;
    Ok(headers::with_body(StatusCode::OK, ct, body))
}

/// Counts one answered request by route and status.
pub fn count(app: &App, route: &'static str, status: StatusCode) {
    app.metrics
        .http
        .get_or_create(&crate::metrics::HttpLabels {
            route: route.to_owned(),
            status: status.as_u16(),
        })
        .inc();
}
