//! Route paths, in one place: the server, the tests and the conformance suite all build URLs
//! with these.

use crate::sfu::{ParticipantId, RoomId, SessionId};

pub const WHIP: &str = "/whip/";
pub const WHEP: &str = "/whep/";
pub const SESSION: &str = "/session/";
pub const ROOMS: &str = "/rooms/";

/// The room's event stream (server-sent events).
pub fn room_events(room: &str) -> String {
    format!("{ROOMS}{room}/events")
}

/// Mints a short-lived token for the room's event stream (for EventSource, which cannot send
/// an Authorization header).
pub fn room_access(room: &str) -> String {
    format!("{ROOMS}{room}/access")
}

pub fn whip(room: &str) -> String {
    format!("{WHIP}{room}")
}

pub fn whep(room: &str) -> String {
    format!("{WHEP}{room}")
}

pub fn whep_participant(room: &str, participant: &str) -> String {
    format!("{WHEP}{room}/{participant}")
}

pub fn session(id: &SessionId) -> String {
    format!("{SESSION}{id}")
}

/// The WHEP server-sent-events extension entry point of a session.
pub fn session_sse(id: &SessionId) -> String {
    format!("{SESSION}{id}/sse")
}

/// The extension's Link relation.
pub const SSE_REL: &str = "urn:ietf:params:whep:ext:core:server-sent-events";
/// The WHEP video layer selection extension.
pub const LAYER_REL: &str = "urn:ietf:params:whep:ext:core:layer";

pub fn session_layer(id: &SessionId) -> String {
    format!("{SESSION}{id}/layer")
}

/// A publisher's own state (mute, camera, connection), for display.
pub fn session_state(id: &SessionId) -> String {
    format!("{SESSION}{id}/state")
}

/// A room's chat.
pub fn room_chat(room: &str) -> String {
    format!("{ROOMS}{room}/chat")
}

/// The admin API (JSON, the admin role).
pub const API: &str = "/api/";
/// Its OpenAPI document.
pub const OPENAPI: &str = "/api/openapi.json";

pub fn api_rooms() -> String {
    format!("{API}rooms")
}

pub fn api_room(room: &str) -> String {
    format!("{API}rooms/{room}")
}

pub fn api_participant(room: &str, participant: &str) -> String {
    format!("{API}rooms/{room}/participants/{participant}")
}

/// Liveness and readiness, for load balancers and orchestrators (no token needed).
pub const HEALTH: &str = "/healthz";
pub const READY: &str = "/readyz";
pub const METRICS: &str = "/metrics";

/// Recorded files, by room.
pub const RECORDINGS: &str = "/recordings/";

pub fn recording(room: &str, file: &str) -> String {
    format!("{RECORDINGS}{room}/{file}")
}

/// A room's recordings (JSON).
pub fn api_recordings(room: &str) -> String {
    format!("{API}rooms/{room}/recordings")
}

/// HLS, by room (and participant).
pub const HLS: &str = "/hls/";

/// A room's LL-HLS playlist.
pub fn hls_playlist(room: &str) -> String {
    format!("{HLS}{room}/index.m3u8")
}

/// What an admin API path names.
#[derive(Debug, PartialEq, Eq)]
pub enum ApiRoute {
    /// `GET /api/openapi.json`.
    OpenApi,
    /// `GET /api/rooms`.
    Rooms,
    /// `GET`, `DELETE /api/rooms/{room}`.
    Room(RoomId),
    /// `DELETE /api/rooms/{room}/participants/{participant}`.
    Participant(RoomId, ParticipantId),
}

/// What a request path names.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Page,
    /// `GET /healthz`: the process is alive.
    Health,
    /// `GET /readyz`: accepting sessions (`503` while draining).
    Ready,
    /// `GET /metrics`: OpenMetrics text (behind the token).
    Metrics,
    /// A file of the web page under `/web/`.
    Asset(String),
    Whip(RoomId),
    Whep(RoomId, Option<ParticipantId>),
    Session(SessionId),
    RoomEvents(RoomId),
    RoomAccess(RoomId),
    /// WHEP server-sent-events extension entry point of a session.
    SessionSse(SessionId),
    /// `POST /session/{id}/layer`: WHEP video layer selection.
    SessionLayer(SessionId),
    /// `POST /session/{id}/state`: a publisher's own word on its microphone, camera and
    /// connection (display only).
    SessionState(SessionId),
    /// `POST /rooms/{room}/chat`: a participant's chat message.
    RoomChat(RoomId),
    /// One event stream created there.
    SessionSseStream(SessionId, String),
    /// `/api/…`: the admin API.
    Api(ApiRoute),
    /// `GET /recordings/{room}/{file}`.
    Recording(RoomId, String),
    /// `GET /api/rooms/{room}/recordings`: served to the room's viewers too.
    Recordings(RoomId),
    /// `GET /hls/{room}[/{participant}]/{file}`.
    Hls(RoomId, Option<ParticipantId>, String),
    /// A well-formed prefix with a bad room/participant name: 400 rather than 404.
    BadName(String),
    NotFound,
}

impl Route {
    /// A fixed name per route, for metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            Route::Page | Route::Asset(_) => "page",
            Route::Health => "healthz",
            Route::Ready => "readyz",
            Route::Metrics => "metrics",
            Route::Whip(_) => "whip",
            Route::Whep(..) => "whep",
            Route::Session(_) => "session",
            Route::RoomEvents(_) => "room_events",
            Route::RoomAccess(_) => "room_access",
            Route::SessionSse(_) | Route::SessionSseStream(..) => "session_sse",
            Route::SessionLayer(_) => "session_layer",
            Route::SessionState(_) => "session_state",
            Route::RoomChat(_) => "room_chat",
            Route::Api(_) => "api",
            Route::Recording(..) | Route::Recordings(_) => "recordings",
            Route::Hls(..) => "hls",
            Route::BadName(_) | Route::NotFound => "other",
        }
    }
}

pub fn route(path: &str) -> Route {
    if path == "/" || path == "/index.html" {
        return Route::Page;
    }
    if path == HEALTH {
        return Route::Health;
    }
    if path == READY {
        return Route::Ready;
    }
    if path == METRICS {
        return Route::Metrics;
    }
    if let Some(name) = path.strip_prefix("/web/") {
        return Route::Asset(name.to_string());
    }
    if path == "/admin" {
        return Route::Asset("admin.html".into());
    }
    if path == "/test" {
        return Route::Asset("test.html".into());
    }
    if let Some(rest) = path.strip_prefix(API) {
        return api_route(rest);
    }
    if let Some(rest) = path.strip_prefix(RECORDINGS) {
        return match rest.split_once('/') {
            Some((room, file)) if !file.contains('/') => match RoomId::parse(room) {
                Ok(r) => Route::Recording(r, file.to_string()),
                Err(e) => Route::BadName(e.to_string()),
            },
            _ => Route::NotFound,
        };
    }
    if let Some(rest) = path.strip_prefix(HLS) {
        let parts: Vec<&str> = rest.split('/').collect();
        let (room, participant, file) = match parts.as_slice() {
            [r, f] => (*r, None, *f),
            [r, p, f] => (*r, Some(*p), *f),
            _ => return Route::NotFound,
        };
        return match (
            RoomId::parse(room),
            participant.map(ParticipantId::parse).transpose(),
        ) {
            (Ok(r), Ok(p)) => Route::Hls(r, p, file.to_string()),
            (Err(e), _) | (_, Err(e)) => Route::BadName(e.to_string()),
        };
    }
    if path == "/publish" {
        return Route::Asset("publish.html".into());
    }
    if let Some(room) = path.strip_prefix("/watch/") {
        return match RoomId::parse(room) {
            Ok(_) => Route::Asset("watch.html".into()),
            Err(e) => Route::BadName(e.to_string()),
        };
    }
    if let Some(rest) = path.strip_prefix(WHIP) {
        return match RoomId::parse(rest) {
            Ok(r) => Route::Whip(r),
            Err(e) => Route::BadName(e.to_string()),
        };
    }
    if let Some(rest) = path.strip_prefix(WHEP) {
        let (room, participant) = match rest.split_once('/') {
            Some((r, p)) => (r, Some(p)),
            None => (rest, None),
        };
        let room = match RoomId::parse(room) {
            Ok(r) => r,
            Err(e) => return Route::BadName(e.to_string()),
        };
        return match participant.map(ParticipantId::parse).transpose() {
            Ok(p) => Route::Whep(room, p),
            Err(e) => Route::BadName(e.to_string()),
        };
    }
    if let Some(rest) = path.strip_prefix(ROOMS) {
        let Some((room, what)) = rest.split_once('/') else {
            return Route::NotFound;
        };
        let room = match RoomId::parse(room) {
            Ok(r) => r,
            Err(e) => return Route::BadName(e.to_string()),
        };
        return match what {
            "events" => Route::RoomEvents(room),
            "access" => Route::RoomAccess(room),
            "chat" => Route::RoomChat(room),
            _ => Route::NotFound,
        };
    }
    if let Some(rest) = path.strip_prefix(SESSION) {
        let mut parts = rest.splitn(3, '/');
        let Some(id) = parts.next().and_then(SessionId::parse) else {
            return Route::NotFound;
        };
        return match (parts.next(), parts.next()) {
            (None, _) => Route::Session(id),
            (Some("sse"), None) => Route::SessionSse(id),
            (Some("layer"), None) => Route::SessionLayer(id),
            (Some("state"), None) => Route::SessionState(id),
            (Some("sse"), Some(stream)) if !stream.is_empty() && stream.len() <= 64 => {
                Route::SessionSseStream(id, stream.to_string())
            }
            _ => Route::NotFound,
        };
    }
    Route::NotFound
}

fn api_route(rest: &str) -> Route {
    if rest == "openapi.json" {
        return Route::Api(ApiRoute::OpenApi);
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let room = |r: &str| RoomId::parse(r);
    match parts.as_slice() {
        ["rooms"] => Route::Api(ApiRoute::Rooms),
        ["rooms", r] => match room(r) {
            Ok(r) => Route::Api(ApiRoute::Room(r)),
            Err(e) => Route::BadName(e.to_string()),
        },
        ["rooms", r, "recordings"] => match room(r) {
            Ok(r) => Route::Recordings(r),
            Err(e) => Route::BadName(e.to_string()),
        },
        ["rooms", r, "participants", p] => match (room(r), ParticipantId::parse(p)) {
            (Ok(r), Ok(p)) => Route::Api(ApiRoute::Participant(r, p)),
            (Err(e), _) | (_, Err(e)) => Route::BadName(e.to_string()),
        },
        _ => Route::NotFound,
    }
}

/// A query value decoded (`%XX` and `+`); a malformed escape is kept as written.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_names() {
        assert_eq!(percent_decode("Ada%20L"), "Ada L");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
        assert_eq!(percent_decode("end%2"), "end%2");
        assert_eq!(percent_decode("%"), "%");
    }

    #[test]
    fn routes() {
        assert_eq!(route("/"), Route::Page);
        assert!(matches!(route("/whip/room1"), Route::Whip(_)));
        assert!(matches!(route("/whep/room1"), Route::Whep(_, None)));
        assert!(matches!(
            route("/whep/room1/abc123"),
            Route::Whep(_, Some(_))
        ));
        assert!(matches!(route("/whip/a/b"), Route::BadName(_)));
        assert_eq!(route("/session/nope"), Route::NotFound);
        assert_eq!(route("/nothing"), Route::NotFound);
        assert_eq!(route("/publish"), Route::Asset("publish.html".into()));
        assert_eq!(route("/watch/r1"), Route::Asset("watch.html".into()));
        assert!(matches!(route("/watch/a b"), Route::BadName(_)));
        let id = SessionId::new();
        assert_eq!(route(&session(&id)), Route::Session(id));
        assert_eq!(route(OPENAPI), Route::Api(ApiRoute::OpenApi));
        assert_eq!(route(&api_rooms()), Route::Api(ApiRoute::Rooms));
        assert!(matches!(
            route(&api_room("r1")),
            Route::Api(ApiRoute::Room(_))
        ));
        assert!(matches!(
            route(&api_participant("r1", "abc123")),
            Route::Api(ApiRoute::Participant(..))
        ));
        assert!(matches!(
            route(&api_participant("r1", "a b")),
            Route::BadName(_)
        ));
        assert_eq!(route("/api/rooms/r1/other"), Route::NotFound);
        assert_eq!(route("/admin"), Route::Asset("admin.html".into()));
        assert!(
            matches!(route(&recording("r1", "a-1.mp4")), Route::Recording(_, f) if f == "a-1.mp4")
        );
        assert_eq!(route("/recordings/r1/a/b"), Route::NotFound);
        assert!(matches!(route(&api_recordings("r1")), Route::Recordings(_)));
        assert!(matches!(route(&hls_playlist("r1")), Route::Hls(_, None, f) if f == "index.m3u8"));
        assert!(matches!(
            route("/hls/r1/abc123/index.m3u8"),
            Route::Hls(_, Some(_), _)
        ));
    }
}
