//! The WHIP/WHEP request handlers: validate the request, call `sfu`, shape the response.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::auth::{Action, Grant};
use crate::cluster::Placement;
use crate::error::{Error, Result};
use crate::http::App;
use crate::http::cluster::{from_peer_node, here, redirect, verify};
use crate::http::headers::{self, Body, SDP, SDPFRAG};
use crate::http::paths::{self, Route};
use crate::sfu::{Patched, RoomId, SessionId, SessionKind};

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

const ENDPOINT_METHODS: &str = "POST, OPTIONS, GET, HEAD";
const SESSION_METHODS: &str = "PATCH, DELETE, OPTIONS, GET";

pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = read_body(&parts.headers, body).await;
    let req = Request::from_parts(parts, body);
    let route = paths::route(req.uri().path()).name();
    let limited = match (req.method(), req.extensions().get::<std::net::SocketAddr>()) {
        (&Method::POST | &Method::PATCH, Some(peer)) => app
            .limiter
            .request(peer.ip(), std::time::Instant::now())
            .err(),
        _ => None,
    };
    let answer = match limited {
        Some(retry_after) => Err(Error::RateLimited { retry_after }),
        None => dispatch(&app, req).await,
    };
    let mut resp = match answer {
        Ok(r) => r,
        Err(e) => headers::error(&e),
    };
    crate::http::ops::count(&app, route, resp.status());
    headers::cors(&mut resp, &app.config.cors_origin);
    resp
}

fn is_preflight(req: &Req) -> bool {
    req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// 404 for an unknown session, else whether `grant` covers it: its own room, and the action
/// that made it (publishing for a WHIP session, taking part for a WHEP one).
pub(super) fn session_allowed(app: &App, grant: &Grant, id: SessionId) -> Result<()> {
    let s = app.sfu.session(id).ok_or(Error::NotFound)?;
    let action = match s.kind {
        SessionKind::Publisher(_) => Action::Publish,
        SessionKind::Viewer(_) => Action::Participate,
    };
    grant.allows(Some(&s.room.id), action)
}

/// Bodies larger than this are not even drained: the stream is reset.
const DRAIN_LIMIT: usize = 2 * 1024 * 1024;

/// Reads the whole request body before any answer is chosen: an HTTP/2 response sent while
/// the client is still sending makes the server reset the stream, and clients (curl among
/// them) then report an error instead of the status. Keeps at most [`MAX_BODY`] bytes and
/// drains up to [`DRAIN_LIMIT`], so an oversized body still gets its 413.
async fn read_body(h: &HeaderMap, mut body: Incoming) -> Result<Bytes> {
    let declared = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > DRAIN_LIMIT) {
        return Err(Error::PayloadTooLarge { limit: MAX_BODY });
    }
    let mut kept = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| Error::BadRequest("The request body could not be read.".into()))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen > DRAIN_LIMIT {
                break;
            }
            if seen <= MAX_BODY {
                kept.extend_from_slice(&data);
            }
        }
    }
    if seen > MAX_BODY {
        return Err(Error::PayloadTooLarge { limit: MAX_BODY });
    }
    Ok(kept.freeze())
}

/// A request whose body has been read (or found unacceptable) already.
pub(super) type Req = Request<Result<Bytes>>;

pub(super) fn body_text(req: Req) -> Result<String> {
    let bytes = req.into_body()?;
    String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::BadRequest("The request body is not UTF-8 text.".into()))
}

pub(super) fn query_param(req: &Req, key: &str) -> Option<String> {
    let q = req.uri().query()?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| paths::percent_decode(v))
    })
}

fn preflight(methods: &'static str) -> Response<Body> {
    // RFC 9725 §4.6 speaks of the "200 OK" response to OPTIONS.
    let mut r = headers::empty(StatusCode::OK);
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(headers::ALLOW_METHODS),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(headers::ALLOW_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    if methods == ENDPOINT_METHODS {
        h.insert("accept-post", HeaderValue::from_static(SDP));
    } else {
        h.insert("accept-patch", HeaderValue::from_static(SDPFRAG));
    }
    r
}

async fn dispatch(app: &App, req: Req) -> Result<Response<Body>> {
    let route = paths::route(req.uri().path());
    let preflight_req = is_preflight(&req);
    match route {
        Route::Page | Route::Asset(_) => {
            let name = match &route {
                Route::Asset(n) => n.as_str(),
                _ => "index.html",
            };
            let (ct, body) = crate::http::asset(name).ok_or(Error::NotFound)?;
            return match *req.method() {
                Method::GET | Method::HEAD => Ok(headers::with_body(StatusCode::OK, ct, body)),
                _ => Err(Error::MethodNotAllowed { allow: "GET, HEAD" }),
            };
        }
        Route::Health | Route::Ready => return crate::http::ops::health(app, &route, req.method()),
        Route::NotFound => return Err(Error::NotFound),
        Route::BadName(msg) => return Err(Error::BadRequest(msg)),
        _ => {}
    }
    let is_endpoint = !matches!(route, Route::Session(_) | Route::Api(_));
    if preflight_req {
        // CORS preflight: no auth, no ICE servers (RFC 9725 §4.6).
        return Ok(preflight(if is_endpoint {
            ENDPOINT_METHODS
        } else {
            SESSION_METHODS
        }));
    }
    if let Route::RoomEvents(room) = &route {
        // EventSource cannot send Authorization: accept a room-scoped access token too.
        let by_access =
            query_param(&req, "access").is_some_and(|t| app.auth.verify_events(room, &t));
        if !by_access {
            verify(app, req.headers())?.allows(Some(room), Action::Participate)?;
        }
        return match *req.method() {
            Method::GET => {
                // In cluster mode a room owned elsewhere is followed through the cascade, so
                // its events here are the owner's.
                // (Another node's request — an edge following this owner — is served here.)
                if let Some(c) = &app.cluster
                    && !from_peer_node(app, req.headers())
                    && let Placement::There { url, .. } = c.place(room).await?
                {
                    c.edge(room, &url).await?;
                }
                crate::http::events::stream(&app.sfu, room, app.limiter.limits.keepalive()).await
            }
            _ => Err(Error::MethodNotAllowed { allow: "GET" }),
        };
    }
    match route {
        Route::Recordings(room) => return crate::http::files::list(app, req, room).await,
        Route::Recording(room, file) => {
            return crate::http::files::file(app, req, room, &file).await;
        }
        Route::Hls(room, participant, file) => {
            return crate::http::hls::serve(app, req, room, participant, &file).await;
        }
        _ => {}
    }
    if let Route::Api(api) = route {
        let grant = verify(app, req.headers());
        return crate::http::admin::handle(app, req.method(), api, grant).await;
    }
    let grant = verify(app, req.headers())?;
    match &route {
        Route::Session(id)
        | Route::SessionSse(id)
        | Route::SessionLayer(id)
        | Route::SessionState(id)
        | Route::SessionSseStream(id, _) => session_allowed(app, &grant, *id)?,
        _ => {}
    }
    match route {
        Route::Metrics => {
            grant.allows(None, Action::Administer)?;
            crate::http::ops::metrics(app, &req).await
        }
        Route::RoomAccess(room) => {
            grant.allows(Some(&room), Action::Participate)?;
            match *req.method() {
                Method::POST => Ok(crate::http::events::access(&app.auth, &room)),
                _ => Err(Error::MethodNotAllowed { allow: "POST" }),
            }
        }
        Route::Whip(room) => {
            grant.allows(Some(&room), Action::Publish)?;
            endpoint(app, req, room, None, (&grant, action_word(Action::Publish))).await
        }
        Route::Whep(room, participant) => {
            // A conference participant (`?self=`) may hold a publish token.
            let action = match (&participant, query_param(&req, "self")) {
                (None, Some(_)) => Action::Participate,
                _ => Action::Watch,
            };
            grant.allows(Some(&room), action)?;
            endpoint(
                app,
                req,
                room,
                Some(participant),
                (&grant, action_word(action)),
            )
            .await
        }
        Route::Session(id) => session(app, req, id).await,
        Route::SessionSse(id) => crate::http::whep_ext::sse(app, req, id).await,
        Route::SessionLayer(id) => crate::http::whep_ext::layer(app, req, id).await,
        Route::SessionState(id) => crate::http::social::state(app, req, id).await,
        Route::RoomChat(room) => {
            grant.allows(Some(&room), Action::Participate)?;
            let sender = crate::http::social::sender(req.headers())?;
            session_allowed(app, &grant, sender)?;
            crate::http::social::chat(app, req, &room, sender).await
        }
        Route::SessionSseStream(id, sid) => {
            crate::http::whep_ext::sse_stream(app, req, id, &sid).await
        }
        _ => Err(Error::NotFound),
    }
}

/// The admission webhook's word for an action.
fn action_word(a: Action) -> &'static str {
    match a {
        Action::Publish => "publish",
        Action::Watch => "watch",
        _ => "participate",
    }
}

/// A WHIP (`whep: None`) or WHEP (`whep: Some(by participant)`) endpoint, for a request
/// `grant`ed (its token's display name wins over `?name=`) to do `action`.
async fn endpoint(
    app: &App,
    req: Req,
    room: RoomId,
    whep: Option<Option<crate::sfu::ParticipantId>>,
    (grant, action): (&Grant, &'static str),
) -> Result<Response<Body>> {
    let whip = whep.is_none();
    let name = grant.name.clone();
    match *req.method() {
        Method::OPTIONS => {
            let mut r = headers::empty(StatusCode::OK);
            r.headers_mut()
                .insert("accept-post", HeaderValue::from_static(SDP));
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(ENDPOINT_METHODS));
            // For stacks that must know ICE servers before making the offer (RFC 9725 §4.6);
            // never on a CORS preflight, which is answered before this.
            ice_server_links(app, &room, r.headers_mut());
            Ok(r)
        }
        Method::GET => Ok(headers::empty(StatusCode::NO_CONTENT)),
        Method::HEAD => {
            let mut r = headers::empty(StatusCode::OK);
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
            Ok(r)
        }
        Method::POST => {
            headers::content_type_is(req.headers(), SDP)?;
            // Another node's upstream leg is served here: it asked the directory already.
            if let Some(cluster) = &app.cluster
                && !from_peer_node(app, req.headers())
                && let Placement::There { node, url } = cluster.place(&room).await?
            {
                // A plain player is served here, from the owner through the cascade; a
                // publisher or a conference participant lives on the owner.
                let plain_player = !whip && query_param(&req, "self").is_none();
                if !plain_player {
                    return Ok(redirect(&node, &url, req.uri()));
                }
                cluster.edge(&room, &url).await?;
            }
            let resume = crate::sfu::Resume {
                secret: req
                    .headers()
                    .get(headers::RESUME)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
                    .or_else(|| query_param(&req, "resume")),
                named_by_token: name.is_some(),
            };
            let name = name.or_else(|| query_param(&req, "name"));
            if let Some(hook) = &app.admission {
                let ask = crate::hooks::Admission {
                    room: room.to_string(),
                    action,
                    name: name.clone(),
                    claims: app.auth.required().then(|| crate::hooks::Claims::of(grant)),
                    client: None,
                };
                hook.check(
                    &ask,
                    req.extensions().get::<std::net::SocketAddr>().copied(),
                )
                .await?;
            }
            let relay = from_peer_node(app, req.headers());
            let exclude = query_param(&req, "self")
                .map(|s| crate::sfu::ParticipantId::parse(&s))
                .transpose()?;
            let parts_headers = req.headers().clone();
            let offer = body_text(req)?;
            let created = if whip {
                let screen_of = crate::http::social::screen_of(&parts_headers)?;
                app.sfu
                    .publish(&room, name, &resume, &offer, screen_of)
                    .await?
            } else {
                app.sfu
                    .play(&room, whep.flatten(), exclude, &offer, relay)
                    .await?
            };
            let mut r = match created.counter_offer {
                None => headers::with_body(StatusCode::CREATED, SDP, created.answer),
                Some(counter) => {
                    // WHEP draft-03 §4.2: 406 + our offer; the client PATCHes its answer.
                    let mut r = headers::with_body(StatusCode::NOT_ACCEPTABLE, SDP, created.answer);
                    let ct = format!(
                        "application/sdp; valid-until=\"{}\"",
                        httpdate::fmt_http_date(counter.until)
                    );
                    if let Ok(v) = HeaderValue::from_str(&ct) {
                        r.headers_mut().insert(header::CONTENT_TYPE, v);
                    }
                    // The body is SDP, not words: say why in a sentence too.
                    if let Ok(v) = HeaderValue::from_str(&counter.reason) {
                        r.headers_mut().insert(headers::REASON, v);
                    }
                    r
                }
            };
            let h = r.headers_mut();
            let location = here(app, &paths::session(&created.session));
            h.insert(
                header::LOCATION,
                HeaderValue::from_str(&location).map_err(|e| Error::Internal(e.to_string()))?,
            );
            h.insert(
                header::ETAG,
                HeaderValue::from_str(&headers::etag(&created.version))
                    .map_err(|e| Error::Internal(e.to_string()))?,
            );
            h.insert("accept-patch", HeaderValue::from_static(SDPFRAG));
            ice_server_links(app, &room, h);
            if let Some(p) = created.participant
                && let Ok(v) = HeaderValue::from_str(p.as_str())
            {
                h.insert("x-wisp-participant", v);
            }
            if let Some(r) = created.resume
                && let Ok(v) = HeaderValue::from_str(&r)
            {
                h.insert(headers::RESUME, v);
            }
            if !whip {
                let link = format!(
                    "<{}>; rel=\"{}\"; events=\"{}\"",
                    here(app, &paths::session_sse(&created.session)),
                    paths::SSE_REL,
                    crate::http::streams::WHEP_EVENTS.join(",")
                );
                if let Ok(v) = HeaderValue::from_str(&link) {
                    h.append(header::LINK, v);
                }
                let link = format!(
                    "<{}>; rel=\"{}\"",
                    here(app, &paths::session_layer(&created.session)),
                    paths::LAYER_REL
                );
                if let Ok(v) = HeaderValue::from_str(&link) {
                    h.append(header::LINK, v);
                }
            }
            Ok(r)
        }
        _ => Err(Error::MethodNotAllowed {
            allow: ENDPOINT_METHODS,
        }),
    }
}

/// `Link: rel="ice-server"` headers with fresh TURN credentials for `room`.
fn ice_server_links(app: &App, room: &RoomId, h: &mut hyper::HeaderMap) {
    if let Some(turn) = &app.turn {
        for link in turn.links(room.as_str()) {
            if let Ok(v) = HeaderValue::from_str(&link) {
                h.append(header::LINK, v);
            }
        }
    }
}

async fn session(app: &App, req: Req, id: SessionId) -> Result<Response<Body>> {
    match *req.method() {
        Method::PATCH => {
            let session = app.sfu.session(id).ok_or(Error::NotFound)?;
            if session.awaiting_answer() && headers::content_type_is(req.headers(), SDP).is_ok() {
                // The answer to a WHEP counter-offer (draft-03 §4.2).
                let answer = body_text(req)?;
                session.answer(&answer).await?;
                return Ok(headers::empty(StatusCode::NO_CONTENT));
            }
            headers::content_type_is(req.headers(), SDPFRAG)?;
            let precondition = headers::if_match(req.headers())?;
            let body = body_text(req)?;
            match session.patch(precondition, &body).await? {
                Patched::Trickled => Ok(headers::empty(StatusCode::NO_CONTENT)),
                Patched::Restarted { version, sdpfrag } => {
                    let mut r = headers::with_body(StatusCode::OK, SDPFRAG, sdpfrag);
                    r.headers_mut().insert(
                        header::ETAG,
                        HeaderValue::from_str(&headers::etag(&version))
                            .map_err(|e| Error::Internal(e.to_string()))?,
                    );
                    Ok(r)
                }
            }
        }
        Method::DELETE => {
            app.sfu.remove(id).await?;
            Ok(headers::empty(StatusCode::OK))
        }
        Method::GET | Method::HEAD => {
            app.sfu.session(id).ok_or(Error::NotFound)?;
            Ok(headers::empty(StatusCode::NO_CONTENT))
        }
        Method::OPTIONS => {
            app.sfu.session(id).ok_or(Error::NotFound)?;
            let mut r = headers::empty(StatusCode::OK);
            r.headers_mut()
                .insert("accept-patch", HeaderValue::from_static(SDPFRAG));
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(SESSION_METHODS));
            Ok(r)
        }
        _ => Err(Error::MethodNotAllowed {
            allow: SESSION_METHODS,
        }),
    }
}
