//! What participants tell each other through the room, for display only (`sfu::plan::social`
//! has the rules): `POST /session/{id}/state` (a publisher's microphone, camera and connection,
//! by its own word), `POST /rooms/{room}/chat` (from a publisher of the room, named by its WHIP
//! session in `X-Wisp-Session`), and the `X-Wisp-Screen-Of` header of a screen share's WHIP POST.

use hyper::header::HeaderMap;
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::http::App;
use crate::http::api::{Req, body_text};
use crate::http::headers::{self, Body};
use crate::sfu::plan::ChatRefused;
use crate::sfu::{RoomId, SessionId, SessionKind};

/// A screen share's WHIP POST names its owner's WHIP session.
pub const SCREEN_OF: &str = "x-wisp-screen-of";
/// A chat message names its sender's WHIP session.
pub const SENDER: &str = "x-wisp-session";

/// A session id from header `name`, if present.
fn session_header(h: &HeaderMap, name: &str, shown: &str) -> Result<Option<SessionId>> {
    let Some(v) = h.get(name) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("");
    // The session's id, or its whole `Location` (`…/session/{id}`).
    let id = text.rsplit('/').next().unwrap_or(text).trim();
    SessionId::parse(id).map(Some).ok_or_else(|| {
        Error::BadRequest(format!(
            "{shown} must be a WHIP session id (the last part of its Location)."
        ))
    })
}

/// The owner named by a WHIP POST's `X-Wisp-Screen-Of`, if any.
pub fn screen_of(h: &HeaderMap) -> Result<Option<SessionId>> {
    session_header(h, SCREEN_OF, "X-Wisp-Screen-Of")
}

/// The sender's WHIP session of a chat message.
pub fn sender(h: &HeaderMap) -> Result<SessionId> {
    session_header(h, SENDER, "X-Wisp-Session")?.ok_or_else(|| {
        Error::Forbidden(
            "Only the room's participants may chat: send X-Wisp-Session with your WHIP session id."
                .into(),
        )
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateBody {
    muted: Option<bool>,
    camera_off: Option<bool>,
    weak: Option<bool>,
}

/// `POST /session/{id}/state` `{"muted"?, "cameraOff"?, "weak"?}` → 204.
pub(super) async fn state(app: &App, req: Req, id: SessionId) -> Result<Response<Body>> {
    if req.method() != Method::POST {
        return Err(Error::MethodNotAllowed { allow: "POST" });
    }
    headers::content_type_is(req.headers(), "application/json")?;
    let body: StateBody = serde_json::from_str(&body_text(req)?).map_err(|_| {
        Error::BadRequest(
            "The body must be a JSON object such as {\"muted\":true,\"cameraOff\":false,\"weak\":false}."
                .into(),
        )
    })?;
    let session = app.sfu.session(id).ok_or(Error::NotFound)?;
    let SessionKind::Publisher(p) = &session.kind else {
        return Err(Error::Conflict(
            "Only a publishing (WHIP) session has a state to tell the room.".into(),
        ));
    };
    session
        .room
        .set_state(p.id.clone(), body.muted, body.camera_off, body.weak)
        .await;
    Ok(headers::empty(StatusCode::NO_CONTENT))
}

#[derive(Deserialize)]
struct ChatBody {
    text: String,
}

/// `POST /rooms/{room}/chat` `{"text": "…"}` from `sender`'s participant → 204.
pub(super) async fn chat(
    app: &App,
    req: Req,
    room: &RoomId,
    sender: SessionId,
) -> Result<Response<Body>> {
    if req.method() != Method::POST {
        return Err(Error::MethodNotAllowed { allow: "POST" });
    }
    headers::content_type_is(req.headers(), "application/json")?;
    let body: ChatBody = serde_json::from_str(&body_text(req)?).map_err(|_| {
        Error::BadRequest("The body must be a JSON object such as {\"text\":\"hello\"}.".into())
    })?;
    let not_here = || Error::Forbidden(ChatRefused::NotHere.to_string());
    let session = app.sfu.session(sender).ok_or_else(not_here)?;
    let SessionKind::Publisher(p) = &session.kind else {
        return Err(not_here());
    };
    if &session.room.id != room {
        return Err(not_here());
    }
    match session.room.chat(p.id.clone(), body.text).await {
        None => Err(Error::NotFound),
        Some(Ok(())) => Ok(headers::empty(StatusCode::NO_CONTENT)),
        Some(Err(ChatRefused::TooFast(wait))) => Err(Error::SlowDown {
            what: ChatRefused::TooFast(wait)
                .to_string()
                .trim_end_matches('.')
                .into(),
            retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
        }),
        Some(Err(ChatRefused::NotHere)) => Err(not_here()),
        Some(Err(e)) => Err(Error::BadRequest(e.to_string())),
    }
}
