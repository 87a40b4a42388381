//! Response headers shared by every endpoint: CORS, content types, the error body.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use crate::error::{Error, Result};
use crate::sfu::Precondition;

/// Every response body: a full buffer, or a stream for server-sent events.
pub type Body = BoxBody<Bytes, std::convert::Infallible>;

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

pub const SDP: &str = "application/sdp";
pub const SDPFRAG: &str = "application/trickle-ice-sdpfrag";
pub const ALLOW_METHODS: &str = "POST, PATCH, DELETE, OPTIONS, GET, HEAD";
pub const ALLOW_HEADERS: &str =
    "Authorization, Content-Type, If-Match, X-Wisp-Resume, X-Wisp-Screen-Of, X-Wisp-Session";
pub const EXPOSE_HEADERS: &str = "Location, Link, ETag, Accept-Patch, Accept-Post, Retry-After, X-Wisp-Participant, X-Wisp-Reason, X-Wisp-Resume";
/// A publisher's resume secret: in a WHIP 201, and sent back on a later POST (`sfu::resume`).
pub const RESUME: &str = "x-wisp-resume";
/// On a WHEP `406` counter-offer: one sentence saying which codec was missing from the offer.
pub const REASON: &str = "x-wisp-reason";

/// A session version as a strong entity-tag (RFC 9110 §8.8.3).
pub fn etag(version: &str) -> String {
    format!("\"{version}\"")
}

/// `If-Match` (RFC 9110 §13.1.1) as a condition on the session's version: `*`, or a list of
/// entity-tags. Weak tags never match (strong comparison); a missing header is `428`, one
/// that is not text is `412`.
pub fn if_match(h: &hyper::HeaderMap) -> Result<Precondition> {
    let v = h
        .get(header::IF_MATCH)
        .ok_or(Error::PreconditionRequired)?
        .to_str()
        .map_err(|_| Error::PreconditionFailed)?
        .trim();
    if v == "*" {
        return Ok(Precondition::Any);
    }
    Ok(Precondition::OneOf(
        v.split(',')
            .filter_map(|t| {
                let t = t.trim();
                t.strip_prefix('"')?.strip_suffix('"').map(str::to_owned)
            })
            .collect(),
    ))
}

/// Checks that the request's media type is `want` (parameters ignored), else `415`.
pub fn content_type_is(h: &hyper::HeaderMap, want: &'static str) -> Result<()> {
    let ok = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case(want)
        })
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(Error::UnsupportedMediaType { expected: want })
    }
}

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
        Error::Unauthorized(_) => {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        Error::MethodNotAllowed { allow } => {
            h.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        Error::RangeNotSatisfiable { size } => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn if_match_forms() {
        assert_eq!(if_match(&h("*")).unwrap(), Precondition::Any);
        assert_eq!(
            if_match(&h("\"a\", W/\"b\" , \"c\"")).unwrap(),
            Precondition::OneOf(vec!["a".into(), "c".into()]),
            "weak tags never match"
        );
        assert_eq!(
            if_match(&h("a")).unwrap(),
            Precondition::OneOf(vec![]),
            "an unquoted value is no entity-tag"
        );
        assert!(matches!(
            if_match(&hyper::HeaderMap::new()),
            Err(Error::PreconditionRequired)
        ));
        assert_eq!(etag("x"), "\"x\"");
    }
}
