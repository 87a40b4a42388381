//! `GET /hls/{room}[/{participant}]/…`: the room's LL-HLS playlist and media (see `hls`).
//! Playlists are short-lived in caches; segments, parts and the init are immutable (their
//! URIs name one object forever), so any HTTP cache or CDN in front can serve the audience.

use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};

use crate::cluster::Placement;
use crate::error::{Error, Result};
use crate::http::App;
use crate::http::api::{Req, query_param};
use crate::http::cluster::from_peer_node;
use crate::http::files::may_watch;
use crate::http::headers::{self, Body};
use crate::sfu::{ParticipantId, RoomId};

pub const PLAYLIST: &str = "application/vnd.apple.mpegurl";

pub(super) async fn serve(
    app: &App,
    req: Req,
    room: RoomId,
    participant: Option<ParticipantId>,
    file: &str,
) -> Result<Response<Body>> {
    may_watch(app, &req, &room)?;
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return Err(Error::MethodNotAllowed { allow: "GET, HEAD" });
    }
    // In cluster mode a room owned elsewhere is packaged here from the cascade.
    if let Some(c) = &app.cluster
        && !from_peer_node(app, req.headers())
        && let Placement::There { url, .. } = c.place(&room).await?
    {
        c.edge(&room, &url).await?;
    }
    let packager = app.hls.get(&app.sfu, &room, participant).await?;
    let (ct, cache, body) = if file == "index.m3u8" {
        let block = match query_param(&req, "_HLS_msn") {
            None => None,
            Some(m) => {
                let msn = m.parse().map_err(|_| {
                    Error::BadRequest("_HLS_msn must be a media sequence number.".into())
                })?;
                let part = query_param(&req, "_HLS_part")
                    .map(|p| p.parse())
                    .transpose()
                    .map_err(|_| Error::BadRequest("_HLS_part must be a part index.".into()))?;
                Some((msn, part))
            }
        };
        let text = packager.playlist(block, &credential_query(&req)).await?;
        (PLAYLIST, "max-age=1", bytes::Bytes::from(text))
    } else {
        let ct = if file.ends_with(".mp4") {
            "video/mp4"
        } else {
            "video/iso.segment"
        };
        let body = packager.media(file).await?;
        (ct, "public, max-age=31536000, immutable", body)
    };
    let mut r = headers::with_body(
        StatusCode::OK,
        ct,
        if *req.method() == Method::HEAD {
            bytes::Bytes::new()
        } else {
            body
        },
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(r)
}

/// The request's own `token`/`access` query, for the URIs in the playlist (players that
/// cannot send headers carry the credential in each URI).
fn credential_query(req: &Req) -> String {
    let q: Vec<String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| kv.starts_with("token=") || kv.starts_with("access="))
        .map(str::to_owned)
        .collect();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}
