//! `GET /rooms/{room}/events`: the room's events as server-sent events, and
//! `POST /rooms/{room}/access`, which hands out the short-lived room-scoped token a browser's
//! EventSource (which cannot send an Authorization header) opens the stream with.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use tokio::sync::broadcast;

use crate::error::Error;
use crate::http::headers::{self, Body};
use crate::sfu::events::RoomEvent;
use crate::sfu::{Room, RoomId, Sfu};

/// Ends the subscription: drops the receiver, then lets the room go if nothing else holds it.
struct Subscription {
    rx: Option<broadcast::Receiver<RoomEvent>>,
    sfu: Arc<Sfu>,
    room: Arc<Room>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.rx.take();
        self.sfu.drop_room_if_empty(&self.room);
    }
}

/// The SSE response: the roster, then every event; a consumer that lags is cut off.
/// A comment line is sent every `keepalive` so proxies (and wisp's idle timeout) keep the
/// stream open.
pub async fn stream(
    sfu: &Arc<Sfu>,
    room: &RoomId,
    keepalive: Duration,
) -> Result<Response<Body>, Error> {
    let room = sfu.room_or_create(room);
    if let Err(e) = sfu.event_stream_allowed(&room) {
        sfu.drop_room_if_empty(&room);
        return Err(e);
    }
    let s = room.subscribe().await.ok_or(Error::NotFound)?;
    let sub = Subscription {
        rx: Some(s.rx),
        sfu: sfu.clone(),
        room,
    };
    // The roster, the recent chat and the audience now, in one frame: a page that opens the
    // stream after its viewers joined (a publisher that reconnects) shows their number at once.
    let first: String = std::iter::once(&s.roster)
        .chain(&s.chat)
        .chain(std::iter::once(&s.audience))
        .map(sse_frame)
        .collect();
    let frames = stream::unfold((Some(first), sub), move |(first, mut sub)| async move {
        if let Some(f) = first {
            return Some((
                Ok::<_, Infallible>(Frame::data(Bytes::from(f))),
                (None, sub),
            ));
        }
        let rx = sub.rx.as_mut()?;
        let next = tokio::select! {
            r = rx.recv() => match r {
                Ok(e) => Bytes::from(sse_frame(&e)),
                // Lagged: this consumer is too slow; closed: the room is gone.
                Err(_) => return None,
            },
            _ = tokio::time::sleep(keepalive) => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok(Frame::data(next)), (None, sub)))
    });
    Ok(sse_response(StreamBody::new(frames).boxed()))
}

/// A WHEP session's event stream (core extensions §4): `active`/`inactive` from what the
/// session shows, `viewercount` and the room's events, filtered to `events`. Ends when the
/// session does.
pub async fn whep_stream(
    viewer: &crate::sfu::Viewer,
    room: &Room,
    events: Vec<String>,
    keepalive: Duration,
) -> Result<Response<Body>, Error> {
    use crate::sfu::ViewerState;
    let crate::sfu::room::Subscribed {
        roster,
        rx,
        audience,
        ..
    } = room.subscribe().await.ok_or(Error::NotFound)?;
    let mut state = viewer.state.subscribe();
    let mut layers = viewer.layers.subscribe();
    layers.mark_changed(); // the current layers, if any, come first
    let mut reconnect = viewer.reconnect.subscribe();
    reconnect.mark_changed();
    // Where the player POSTs again when told to reconnect.
    let endpoint = match &viewer.target {
        Some(p) => crate::http::paths::whep_participant(room.id.as_str(), p.as_str()),
        None => crate::http::paths::whep(room.id.as_str()),
    };
    let wants = move |name: &str| events.iter().any(|e| e == name);
    let mut first: Vec<String> = Vec::new();
    if wants("roster") {
        first.push(sse_frame(&roster));
    }
    if matches!(*state.borrow_and_update(), ViewerState::Watching(_)) && wants("active") {
        first.push("event: active\ndata: {}\n\n".into());
    }
    if wants("viewercount") {
        first.push(sse_frame(&audience));
    }
    let init = (first, rx, state, (layers, reconnect, endpoint), wants);
    let frames = stream::unfold(
        init,
        move |(mut first, mut rx, mut state, mut more, wants)| async move {
            if !first.is_empty() {
                let f = first.remove(0);
                return Some((
                    Ok::<_, Infallible>(Frame::data(Bytes::from(f))),
                    (first, rx, state, more, wants),
                ));
            }
            let (layers, reconnect, endpoint) = &mut more;
            loop {
                let next = tokio::select! {
                    r = rx.recv() => match r {
                        Ok(e) if wants(event_name(&e)) => Some(Bytes::from(sse_frame(&e))),
                        Ok(_) => None,
                        Err(broadcast::error::RecvError::Lagged(_)) => return None,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                    c = state.changed() => {
                        c.ok()?; // the session ended
                        let active = matches!(*state.borrow_and_update(), ViewerState::Watching(_));
                        let name = if active { "active" } else { "inactive" };
                        wants(name).then(|| Bytes::from(format!("event: {name}\ndata: {{}}\n\n")))
                    }
                    c = reconnect.changed() => {
                    c.ok()?;
                    let why = reconnect.borrow_and_update().clone();
                    match why {
                        Some(reason) if wants("reconnect") => {
                            let data = serde_json::json!({ "url": endpoint, "reason": reason });
                            Some(Bytes::from(format!("event: reconnect\ndata: {data}\n\n")))
                        }
                        _ => None,
                    }
                }
                c = layers.changed() => {
                        c.ok()?;
                        let data = layers.borrow_and_update().as_ref().map(layers_json);
                        data.filter(|_| wants("layers"))
                            .map(|data| Bytes::from(format!("event: layers\ndata: {data}\n\n")))
                    }
                    _ = tokio::time::sleep(keepalive) => Some(Bytes::from_static(b": keep-alive\n\n")),
                };
                if let Some(b) = next {
                    return Some((Ok(Frame::data(b)), (first, rx, state, more, wants)));
                }
            }
        },
    );
    Ok(sse_response(StreamBody::new(frames).boxed()))
}

/// The WHEP `layers` event data: an object keyed by the m-line index of each video slot that
/// shows someone, each that publisher's layers lowest first, as
/// `{"bitrate": …, "rid"?: …, "width"?: …, "height"?: …}`.
pub fn layers_json(layers: &crate::sfu::room::Layers) -> String {
    let mut data = serde_json::Map::new();
    for (i, list) in layers {
        let list: Vec<serde_json::Value> = list
            .iter()
            .map(|l| {
                let mut o = serde_json::json!({ "bitrate": l.bitrate });
                if let Some(r) = &l.rid {
                    o["rid"] = r.clone().into();
                }
                if let Some((w, h)) = l.dims {
                    o["width"] = w.into();
                    o["height"] = h.into();
                }
                o
            })
            .collect();
        data.insert(i.to_string(), list.into());
    }
    serde_json::Value::Object(data).to_string()
}

/// The SSE `event:` name of a room event.
pub fn event_name(e: &RoomEvent) -> &'static str {
    match e {
        RoomEvent::Roster { .. } => "roster",
        RoomEvent::Joined { .. } => "joined",
        RoomEvent::Left { .. } => "left",
        RoomEvent::Tracks { .. } => "tracks",
        RoomEvent::Speaking { .. } => "speaking",
        RoomEvent::ActiveSpeaker { .. } => "active-speaker",
        RoomEvent::Slots { .. } => "slots",
        RoomEvent::Viewercount { .. } => "viewercount",
        RoomEvent::Closing { .. } => "closing",
        RoomEvent::State { .. } => "state",
        RoomEvent::Chat { .. } => "chat",
    }
}

/// One SSE frame: `event:` and a single-line JSON `data:`.
pub fn sse_frame(e: &RoomEvent) -> String {
    let data = serde_json::to_string(e).unwrap_or_else(|_| "{}".into());
    format!("event: {}\ndata: {data}\n\n", event_name(e))
}

/// A `200 text/event-stream` response around a streaming body, never cached.
fn sse_response(body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /rooms/{room}/access` → `{"access": "...", "expiresIn": 300}` (`null`s when the
/// server needs no credential).
pub fn access(auth: &crate::auth::Auth, room: &RoomId) -> Response<Body> {
    let body = match auth.mint_events(room) {
        Some(t) => serde_json::json!({"access": t, "expiresIn": crate::auth::ACCESS_TTL.as_secs()}),
        None => serde_json::json!({"access": null, "expiresIn": null}),
    };
    headers::with_body(StatusCode::OK, "application/json", body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_frames() {
        let e = RoomEvent::Speaking {
            id: "abc".into(),
            speaking: true,
            level: 90,
        };
        assert_eq!(
            sse_frame(&e),
            "event: speaking\ndata: {\"type\":\"speaking\",\"id\":\"abc\",\"speaking\":true,\"level\":90}\n\n"
        );
        assert_eq!(
            event_name(&RoomEvent::ActiveSpeaker { id: "x".into() }),
            "active-speaker"
        );
    }
}
