//! The HTTP side of cluster mode: other nodes' requests (the cluster secret as their bearer),
//! absolute resource URLs on this node, and the `307` to a room's owner.

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use crate::auth::{self, Grant};
use crate::error::Result;
use crate::http::App;
use crate::http::headers::{self, Body};

/// The request's credential: a client's token, or in cluster mode another node showing the
/// cluster's secret (an edge following this node's rooms).
pub(super) fn verify(app: &App, h: &HeaderMap) -> Result<Grant> {
    if from_peer_node(app, h) {
        return Ok(Grant::admin());
    }
    app.auth.verify(auth::bearer(h))
}

/// Whether the request comes from another node of the cluster (an edge's upstream).
pub(super) fn from_peer_node(app: &App, h: &HeaderMap) -> bool {
    matches!((&app.cluster, auth::bearer(h)), (Some(c), Some(b)) if c.is_peer_secret(b))
}

/// A resource's URL for a response: its path, or in cluster mode this node's absolute URL, so
/// a client that reached it through a redirect (or a balancer) comes back to this node
/// whatever base it resolves against.
pub(super) fn here(app: &App, path: &str) -> String {
    match &app.cluster {
        Some(c) => format!("{}{path}", c.node_url()),
        None => path.to_owned(),
    }
}

/// `307 Temporary Redirect` (RFC 9725 §4.5) to the same path and query on the node at `url`.
pub(super) fn redirect(node: &str, url: &str, uri: &hyper::Uri) -> Response<Body> {
    let target = format!("{url}{}", uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut r = headers::with_body(
        StatusCode::TEMPORARY_REDIRECT,
        "text/plain; charset=utf-8",
        format!("This room is served by node {node}; send the request to {target}.\n"),
    );
    if let Ok(v) = HeaderValue::from_str(&target) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}
