//! `/api/…`: the admin API over `sfu::admin` (JSON), and its OpenAPI document. Every route but
//! the document needs the admin role for the room it names (the list: for every room, or it
//! shows the grant's own room only).

use hyper::{Method, Response, StatusCode};
use serde::Serialize;

use crate::auth::{Action, Grant};
use crate::error::{Error, Result};
use crate::http::App;
use crate::http::headers::{self, Body};
use crate::http::paths::ApiRoute;
use crate::sfu::admin;

const JSON: &str = "application/json";

/// The OpenAPI 3.1 document of this API, kept beside the code it describes and checked
/// against the live server by schemathesis (`tests/interop/api_contract.sh`).
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

fn json<T: Serialize>(value: &T) -> Result<Response<Body>> {
    let body = serde_json::to_string(value).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(headers::with_body(StatusCode::OK, JSON, body))
}

/// `{"ended": n}`: how many sessions an action ended.
#[derive(Serialize)]
struct Ended {
    ended: usize,
}

pub async fn handle(
    app: &App,
    method: &Method,
    route: ApiRoute,
    grant: Result<Grant>,
) -> Result<Response<Body>> {
    if route == ApiRoute::OpenApi {
        return match *method {
            Method::GET | Method::HEAD => {
                Ok(headers::with_body(StatusCode::OK, JSON, OPENAPI_JSON))
            }
            _ => Err(Error::MethodNotAllowed { allow: "GET, HEAD" }),
        };
    }
    let grant = grant?;
    match route {
        ApiRoute::OpenApi => Err(Error::NotFound),
        ApiRoute::Rooms => {
            if *method != Method::GET {
                return Err(Error::MethodNotAllowed { allow: "GET" });
            }
            if grant.role != crate::auth::Role::Admin {
                return Err(Error::Forbidden(format!(
                    "The token's role '{}' does not allow it to administer.",
                    grant.role
                )));
            }
            // In cluster mode, every node's rooms, from the directory.
            let all = match &app.cluster {
                Some(c) => c.rooms().await?,
                None => admin::rooms(&app.sfu).await,
            };
            let rooms: Vec<_> = all.into_iter().filter(|r| grant.covers(&r.id)).collect();
            json(&serde_json::json!({ "rooms": rooms }))
        }
        ApiRoute::Room(room) => {
            grant.allows(Some(&room), Action::Administer)?;
            match *method {
                Method::GET => json(&admin::room(&app.sfu, &room).await.ok_or(Error::NotFound)?),
                Method::DELETE => json(&Ended {
                    ended: admin::close(&app.sfu, &room).await?,
                }),
                _ => Err(Error::MethodNotAllowed {
                    allow: "GET, DELETE",
                }),
            }
        }
        ApiRoute::Participant(room, participant) => {
            grant.allows(Some(&room), Action::Administer)?;
            match *method {
                Method::DELETE => json(&Ended {
                    ended: admin::kick(&app.sfu, &room, &participant).await?,
                }),
                _ => Err(Error::MethodNotAllowed { allow: "DELETE" }),
            }
        }
    }
}
