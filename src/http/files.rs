//! Recordings over HTTP: a room's listing (`GET /api/rooms/{room}/recordings`) and its files
//! (`GET /recordings/{room}/{file}`, with single byte ranges so a `<video>` can seek), behind
//! the room's tokens: a bearer that may watch the room, or — for `<video>` and HLS players,
//! which cannot send headers — the same token as `?token=`, or the room's short-lived
//! `?access=` token.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::auth::Action;
use crate::error::{Error, Result};
use crate::http::App;
use crate::http::api::{Req, query_param};
use crate::http::cluster::verify;
use crate::http::headers::{self, Body};
use crate::sfu::RoomId;

/// Whether the request may watch `room`: its bearer, `?token=`, or `?access=`.
pub(super) fn may_watch(app: &App, req: &Req, room: &RoomId) -> Result<()> {
    if query_param(req, "access").is_some_and(|t| app.auth.verify_events(room, &t)) {
        return Ok(());
    }
    let grant = match query_param(req, "token") {
        Some(t) => app.auth.verify(Some(&t))?,
        None => verify(app, req.headers())?,
    };
    grant.allows(Some(room), Action::Watch)
}

fn recorder(app: &App) -> Result<&crate::record::Recorder> {
    app.recorder.as_deref().ok_or(Error::NotFound)
}

/// `GET /api/rooms/{room}/recordings`.
pub(super) async fn list(app: &App, req: Req, room: RoomId) -> Result<Response<Body>> {
    may_watch(app, &req, &room)?;
    if req.method() != Method::GET {
        return Err(Error::MethodNotAllowed { allow: "GET" });
    }
    let rec = recorder(app)?;
    let body = serde_json::json!({
        "room": room.as_str(),
        "recorded": rec.records(&room),
        "recordings": rec.list(&room),
    });
    Ok(headers::with_body(
        StatusCode::OK,
        "application/json",
        body.to_string(),
    ))
}

/// `GET`/`HEAD /recordings/{room}/{file}`.
pub(super) async fn file(app: &App, req: Req, room: RoomId, name: &str) -> Result<Response<Body>> {
    may_watch(app, &req, &room)?;
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => return Err(Error::MethodNotAllowed { allow: "GET, HEAD" }),
    };
    let (path, ct) = recorder(app)?.path(&room, name).ok_or(Error::NotFound)?;
    let mut f = tokio::fs::File::open(&path)
        .await
        .map_err(|_| Error::NotFound)?;
    let size = f
        .metadata()
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .len();
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| byte_range(v, size))
        .transpose()?
        .flatten();
    let (status, start, len) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, size),
    };
    let body = if head || len == 0 {
        headers::full(Bytes::new())
    } else {
        f.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        stream(f, len)
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    // A file still being written grows: caches must ask again.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(r)
}

/// The file's bytes from where it stands, `len` of them, 64 KiB at a time. A read error ends
/// the body early (the client sees a short response and may ask for the rest).
fn stream(f: tokio::fs::File, len: u64) -> Body {
    let chunks = futures_util::stream::unfold((f, len), |(mut f, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; left.min(64 * 1024) as usize];
        match f.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                let frame = Frame::data(Bytes::from(buf));
                Some((Ok(frame), (f, left - n as u64)))
            }
        }
    });
    http_body_util::StreamBody::new(chunks).boxed()
}

/// One `bytes=` range of a `size`-byte file as inclusive offsets (RFC 9110 §14.1.2); `None`
/// to serve the whole file (a syntax it does not parse, or several ranges, are ignored as the
/// RFC allows).
fn byte_range(v: &str, size: u64) -> Result<Option<(u64, u64)>> {
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let unsatisfiable = Error::RangeNotSatisfiable { size };
    let range = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(a), Ok(b)) if a <= b => (a, b.min(size.saturating_sub(1))),
        (Ok(a), Err(_)) if b.is_empty() => (a, size.saturating_sub(1)),
        (Err(_), Ok(n)) if a.is_empty() => {
            if n == 0 {
                return Err(unsatisfiable);
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        _ => return Ok(None),
    };
    if range.0 >= size {
        return Err(unsatisfiable);
    }
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-99", 1000).unwrap(), Some((0, 99)));
        assert_eq!(byte_range("bytes=900-", 1000).unwrap(), Some((900, 999)));
        assert_eq!(byte_range("bytes=-100", 1000).unwrap(), Some((900, 999)));
        assert_eq!(
            byte_range("bytes=990-2000", 1000).unwrap(),
            Some((990, 999))
        );
        assert_eq!(byte_range("bytes=0-1,5-6", 1000).unwrap(), None);
        assert_eq!(byte_range("items=1-2", 1000).unwrap(), None);
        assert!(byte_range("bytes=1000-", 1000).is_err());
        assert!(byte_range("bytes=-0", 1000).is_err());
        assert_eq!(byte_range("bytes=5-1", 1000).unwrap(), None);
    }
}
