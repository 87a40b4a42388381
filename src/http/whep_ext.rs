//! The WHEP core extensions on a session (draft-ietf-wish-whep-core-extensions): the
//! server-sent-events entry point and its streams, and video layer selection.

use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};

use crate::error::{Error, Result};
use crate::http::App;
use crate::http::api::{Req, body_text};
use crate::http::headers::{self, Body};
use crate::http::paths;
use crate::sfu::{SessionId, SessionKind};

/// `POST /session/{id}/sse`: a JSON array of event names → `201` + the stream's `Location`.
pub(super) async fn sse(app: &App, req: Req, id: SessionId) -> Result<Response<Body>> {
    match *req.method() {
        Method::POST => {
            let events = event_list(&body_text(req)?)?;
            match app
                .sfu
                .session(id)
                .map(|s| matches!(s.kind, SessionKind::Viewer(_)))
            {
                Some(true) => {}
                _ => return Err(Error::NotFound),
            }
            let sid = app
                .streams
                .create(id, events, |s| app.sfu.session(s).is_some())?;
            let mut r = headers::empty(StatusCode::CREATED);
            let loc = format!("{}/{sid}", paths::session_sse(&id));
            r.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_str(&loc).map_err(|e| Error::Internal(e.to_string()))?,
            );
            Ok(r)
        }
        _ => Err(Error::MethodNotAllowed { allow: "POST" }),
    }
}

/// `POST /session/{id}/layer`: which simulcast layer a video slot shows.
pub(super) async fn layer(app: &App, req: Req, id: SessionId) -> Result<Response<Body>> {
    match *req.method() {
        Method::POST => {
            let body = body_text(req)?;
            let (media, pref) = layer_request(&body)?;
            let session = app.sfu.session(id).ok_or(Error::NotFound)?;
            // A pin (`"participant"`): that participant first among this viewer's candidates.
            if let Some(pin) = pin_request(&body)? {
                if !matches!(session.kind, SessionKind::Viewer(_)) {
                    return Err(Error::NotFound);
                }
                session.room.pin(id, pin).await;
            }
            session.select_layer(media.as_deref(), pref).await?;
            Ok(headers::empty(StatusCode::OK))
        }
        _ => Err(Error::MethodNotAllowed { allow: "POST" }),
    }
}

/// `GET`/`DELETE /session/{id}/sse/{stream}`: one event stream.
pub(super) async fn sse_stream(
    app: &App,
    req: Req,
    id: SessionId,
    sid: &str,
) -> Result<Response<Body>> {
    match *req.method() {
        Method::GET => {
            let events = app.streams.events(id, sid)?;
            let session = app.sfu.session(id).ok_or(Error::NotFound)?;
            let SessionKind::Viewer(viewer) = &session.kind else {
                return Err(Error::NotFound);
            };
            app.sfu.event_stream_allowed(&session.room)?;
            let keepalive = app.limiter.limits.keepalive();
            crate::http::events::whep_stream(viewer, &session.room, events, keepalive).await
        }
        Method::DELETE => {
            app.streams.delete(id, sid)?;
            Ok(headers::empty(StatusCode::OK))
        }
        _ => Err(Error::MethodNotAllowed {
            allow: "GET, DELETE",
        }),
    }
}

/// The body of a WHEP `sse` request: the event names wanted (empty: all).
pub fn event_list(body: &str) -> Result<Vec<String>> {
    if body.trim().is_empty() {
        return Ok(vec![]);
    }
    serde_json::from_str(body)
        .map_err(|_| Error::BadRequest("The body must be a JSON array of event names.".into()))
}

/// The body of a WHEP `layer` request: the slot's media id, if named, and the layer wanted.
pub fn layer_request(body: &str) -> Result<(Option<String>, crate::sfu::layers::LayerPref)> {
    let sel: LayerRequest = if body.trim().is_empty() {
        LayerRequest::default()
    } else {
        serde_json::from_str(body).map_err(|_| {
            Error::BadRequest(
                "The body must be a JSON object such as {\"mediaId\":\"1\",\"rid\":\"h\"}.".into(),
            )
        })?
    };
    let pref = match (sel.rid, sel.max_height) {
        (Some(rid), _) => crate::sfu::layers::LayerPref::Rid(rid),
        (None, Some(h)) => crate::sfu::layers::LayerPref::MaxHeight(h),
        (None, None) => crate::sfu::layers::LayerPref::Auto,
    };
    let media = sel.media_id.map(|m| match m {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    });
    Ok((media, pref))
}

/// A layer request's pin: `"participant": "<id>"` pins that participant, `""` (or `null`)
/// unpins; `None` when the field is absent.
pub fn pin_request(body: &str) -> Result<Option<Option<crate::sfu::ParticipantId>>> {
    if body.trim().is_empty() {
        return Ok(None);
    }
    let v: serde_json::Value = serde_json::from_str(body)
        .map_err(|_| Error::BadRequest("The body must be a JSON object.".into()))?;
    match v.get("participant") {
        None => Ok(None),
        Some(serde_json::Value::Null) => Ok(Some(None)),
        Some(serde_json::Value::String(s)) if s.is_empty() => Ok(Some(None)),
        Some(serde_json::Value::String(s)) => crate::sfu::ParticipantId::parse(s)
            .map(|p| Some(Some(p)))
            .map_err(|_| {
                Error::BadRequest("\"participant\" must be a participant id or \"\".".into())
            }),
        Some(_) => Err(Error::BadRequest(
            "\"participant\" must be a participant id or \"\".".into(),
        )),
    }
}

/// The body of a WHEP layer selection request (whep-core-extensions §4).
#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayerRequest {
    /// The m-line index (a string in the draft; numbers accepted too).
    media_id: Option<serde_json::Value>,
    rid: Option<String>,
    max_height: Option<u16>,
}
