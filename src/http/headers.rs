//! Response headers shared by every endpoint: CORS, content types, the error body.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use crate::error::Error;

/// Every response body: a full buffer, or a stream for server-sent events.
pub type Body = BoxBody<Bytes, std::convert::Infallible>;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub const SDP: &str = "application/sdp";
pub const SDPFRAG: &str = "application/trickle-ice-sdpfrag";
pub const ALLOW_METHODS: &str = "POST, PATCH, DELETE, OPTIONS, GET, HEAD";
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, If-Match";
pub const EXPOSE_HEADERS: &str = "Location, Link, ETag, Accept-Patch, Accept-Post, Retry-After, X-Wisp-Participant, X-Wisp-Reason";
/// On a WHEP `406` counter-offer: one sentence saying which codec was missing from the offer.
pub const REASON: &str = "x-wisp-reason";

/// Adds the CORS headers every response carries.
pub fn cors(resp: &mut Response<Body>, origin: &str) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    r
}

pub fn with_body(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The one place an [`Error`] becomes a response: its status, its sentence, and the headers
/// that status calls for.
pub fn error(e: &Error) -> Response<Body> {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Error::Internal(detail) = e {
        tracing::error!("internal error: {detail}");
    }
    let mut r = with_body(status, "text/plain; charset=utf-8", format!("{e}\n"));
    let h = r.headers_mut();
    match e {
        Error::Unauthorized => {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        Error::MethodNotAllowed { allow } => {
            h.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        _ => {}
    }
    if let Some(secs) = e.retry_after()
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        h.insert(header::RETRY_AFTER, v);
    }
    r
}
