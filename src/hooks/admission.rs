//! The admission webhook (see the module above).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::auth::{Grant, Rooms};
use crate::error::{Error, Result};

/// What the receiver is asked about one WHIP or WHEP POST.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Admission {
    pub room: String,
    /// `publish` (WHIP), `watch` (a WHEP player) or `participate` (a conference
    /// participant's WHEP).
    pub action: &'static str,
    /// The display name the session would get.
    pub name: Option<String>,
    /// The verified token's claims (`null` on a server with no tokens).
    pub claims: Option<Claims>,
    /// The client's address as wisp sees it.
    pub client: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Claims {
    pub room: String,
    pub role: String,
    pub name: Option<String>,
}

impl Claims {
    pub fn of(g: &Grant) -> Claims {
        Claims {
            room: match &g.rooms {
                Rooms::All => "*".into(),
                Rooms::One(r) => r.clone(),
            },
            role: g.role.to_string(),
            name: g.name.clone(),
        }
    }
}

/// `--auth-webhook URL`.
pub struct AdmissionHook {
    url: String,
    timeout: Duration,
    client: reqwest::Client,
}

/// The longest reason taken from a refusal's body.
const REASON_MAX: usize = 200;

impl AdmissionHook {
    pub fn new(url: String, timeout: Duration) -> std::result::Result<AdmissionHook, String> {
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| format!("admission client: {e}"))?;
        Ok(AdmissionHook {
            url,
            timeout,
            client,
        })
    }

    /// `Ok` when the receiver answers 2xx in time; `403` with its reason when it answers
    /// anything else; `503` when it does not answer in time or cannot be reached.
    pub async fn check(&self, a: &Admission, client: Option<SocketAddr>) -> Result<()> {
        let mut a = a.clone();
        a.client = client.map(|c| c.ip().to_string());
        let body = serde_json::to_string(&a).map_err(|e| Error::Internal(e.to_string()))?;
        let ask = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send();
        let answer = async {
            let r = ask.await?;
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            Ok::<_, reqwest::Error>((status, text))
        };
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok((status, _))) if status.is_success() => Ok(()),
            Ok(Ok((status, text))) => {
                let reason: String = text
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(REASON_MAX)
                    .collect();
                let reason = reason.trim();
                tracing::info!(room = %a.room, action = a.action, %status, "admission refused");
                Err(Error::Forbidden(if reason.is_empty() {
                    "The admission service refused this request.".into()
                } else {
                    format!("The admission service refused this request: {reason}")
                }))
            }
            Ok(Err(e)) => {
                tracing::warn!(room = %a.room, "admission service unreachable: {e}");
                Err(Error::AdmissionUnavailable)
            }
            Err(_) => {
                tracing::warn!(room = %a.room, timeout_ms = self.timeout.as_millis() as u64, "admission service did not answer in time");
                Err(Error::AdmissionUnavailable)
            }
        }
    }
}
