//! JWTs scoped to a room and a role (the `jsonwebtoken` crate, on the `ring` that rustls
//! already brings): HS256 with a shared secret, ES256/RS256/EdDSA with a public key in PEM or
//! a JWKS file; `iss` and `aud` checked when configured; `exp` always required.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use super::{Grant, Role, Rooms};
use crate::error::{Error, Result};

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 10;

/// Where JWT keys come from and what the claims must say.
#[derive(Debug, Clone, Default)]
pub struct JwtConfig {
    /// `--jwt-secret`: HS256.
    pub secret: Option<String>,
    /// `--jwt-public-key`: a PEM public key (EC P-256, RSA or Ed25519).
    pub public_key: Option<PathBuf>,
    /// `--jwt-jwks`: a JSON Web Key Set file.
    pub jwks: Option<PathBuf>,
    /// `--jwt-issuer`: the `iss` every token must carry.
    pub issuer: Option<String>,
    /// `--jwt-audience`: the `aud` every token must carry.
    pub audience: Option<String>,
}

impl JwtConfig {
    /// True when some key is configured (JWTs are accepted).
    pub fn is_set(&self) -> bool {
        self.secret.is_some() || self.public_key.is_some() || self.jwks.is_some()
    }
}

/// The claims wisp reads and writes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// A room name, or `*` for every room.
    pub room: String,
    pub role: Role,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The participant's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// What wisp needs from a presented token (`iss`/`aud` are checked by the library on the raw
/// claims, in whichever shape they come).
#[derive(serde::Deserialize)]
struct Presented {
    room: String,
    role: Role,
    #[serde(default)]
    name: Option<String>,
}

struct Key {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

/// Checks JWTs against the configured keys and claims.
pub(super) struct Verifier {
    keys: Vec<Key>,
    issuer: Option<String>,
    audience: Option<String>,
}

fn family(key: &AlgorithmParameters) -> Vec<Algorithm> {
    match key {
        AlgorithmParameters::EllipticCurve(_) => vec![Algorithm::ES256, Algorithm::ES384],
        AlgorithmParameters::RSA(_) => vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
        AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
        AlgorithmParameters::OctetKey(_) => vec![Algorithm::HS256],
    }
}

fn public_key(path: &Path) -> std::result::Result<Key, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (key, algorithms) = if let Ok(k) = DecodingKey::from_ec_pem(&pem) {
        (k, vec![Algorithm::ES256, Algorithm::ES384])
    } else if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
        (
            k,
            vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
        )
    } else if let Ok(k) = DecodingKey::from_ed_pem(&pem) {
        (k, vec![Algorithm::EdDSA])
    } else {
        return Err(format!(
            "{}: not a PEM EC (P-256), RSA or Ed25519 public key",
            path.display()
        ));
    };
    Ok(Key {
        kid: None,
        algorithms,
        key,
    })
}

fn jwks(path: &Path) -> std::result::Result<Vec<Key>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let set: JwkSet =
        serde_json::from_str(&text).map_err(|e| format!("{}: not a JWKS: {e}", path.display()))?;
    let keys = set
        .keys
        .iter()
        .map(|jwk| {
            let key = DecodingKey::from_jwk(jwk)
                .map_err(|e| format!("{}: unusable key: {e}", path.display()))?;
            let algorithms = match jwk.common.key_algorithm.map(|a| a.to_string()) {
                Some(a) => vec![a.parse::<Algorithm>().map_err(|_| {
                    format!(
                        "{}: key algorithm {a} is not for signatures",
                        path.display()
                    )
                })?],
                None => family(&jwk.algorithm),
            };
            Ok(Key {
                kid: jwk.common.key_id.clone(),
                algorithms,
                key,
            })
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    if keys.is_empty() {
        return Err(format!("{}: the key set is empty", path.display()));
    }
    Ok(keys)
}

fn unauthorized(s: &str) -> Error {
    Error::Unauthorized(s.into())
}

impl Verifier {
    pub(super) fn new(c: &JwtConfig) -> std::result::Result<Verifier, String> {
        let mut keys = Vec::new();
        if let Some(s) = &c.secret {
            if s.len() < 16 {
                return Err("--jwt-secret must be at least 16 characters".into());
            }
            keys.push(Key {
                kid: None,
                algorithms: vec![Algorithm::HS256],
                key: DecodingKey::from_secret(s.as_bytes()),
            });
        }
        if let Some(p) = &c.public_key {
            keys.push(public_key(p)?);
        }
        if let Some(p) = &c.jwks {
            keys.extend(jwks(p)?);
        }
        Ok(Verifier {
            keys,
            issuer: c.issuer.clone(),
            audience: c.audience.clone(),
        })
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.issuer {
            Some(iss) => {
                v.set_issuer(&[iss]);
                required.push("iss");
            }
            None => v.iss = None,
        }
        match &self.audience {
            Some(aud) => {
                v.set_audience(&[aud]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        v.set_required_spec_claims(&required);
        v
    }

    pub(super) fn verify(&self, token: &str) -> Result<Grant> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthorized("The bearer token is not a well-formed JWT."))?;
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| k.algorithms.contains(&header.alg))
            .filter(|k| match (&k.kid, &header.kid) {
                (Some(mine), Some(theirs)) => mine == theirs,
                _ => true,
            })
            .peekable();
        if candidates.peek().is_none() {
            return Err(Error::Unauthorized(format!(
                "The bearer token is signed with {:?} or a key id this server does not accept.",
                header.alg
            )));
        }
        let mut last = unauthorized("The bearer token's signature does not verify.");
        for key in candidates {
            match jsonwebtoken::decode::<Presented>(token, &key.key, &self.validation(header.alg)) {
                Ok(data) => {
                    let c = data.claims;
                    return Ok(Grant {
                        rooms: if c.room == "*" {
                            Rooms::All
                        } else {
                            Rooms::One(c.room)
                        },
                        role: c.role,
                        name: c.name.filter(|n| !n.trim().is_empty()),
                    });
                }
                Err(e) => {
                    last = match e.kind() {
                        ErrorKind::InvalidSignature => continue,
                        ErrorKind::ExpiredSignature => {
                            unauthorized("The bearer token has expired.")
                        }
                        ErrorKind::ImmatureSignature => {
                            unauthorized("The bearer token is not valid yet (its nbf is ahead).")
                        }
                        ErrorKind::InvalidIssuer => unauthorized(
                            "The bearer token's issuer (iss) is not the one this server accepts.",
                        ),
                        ErrorKind::InvalidAudience => {
                            unauthorized("The bearer token's audience (aud) is not this server.")
                        }
                        ErrorKind::MissingRequiredClaim(c) => {
                            Error::Unauthorized(format!("The bearer token lacks the '{c}' claim."))
                        }
                        ErrorKind::Json(_) => unauthorized(
                            "The bearer token needs a 'room' claim and a 'role' claim of subscribe, publish or admin.",
                        ),
                        _ => unauthorized("The bearer token is not a well-formed JWT."),
                    };
                    break;
                }
            }
        }
        Err(last)
    }
}

/// Parses a lifetime such as `90s`, `15m`, `1h`, `7d` or plain seconds.
pub fn parse_ttl(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a lifetime such as 90s, 15m, 1h or 7d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => {
            return Err(format!(
                "'{s}' is not a lifetime such as 90s, 15m, 1h or 7d"
            ));
        }
    };
    // Found by fuzzing: `n * 86400` overflowed for a long enough number of days.
    let secs = n
        .checked_mul(scale)
        .ok_or_else(|| format!("'{s}' is longer than any lifetime a token can have"))?;
    if secs == 0 {
        return Err("a token's lifetime must be more than zero".into());
    }
    Ok(Duration::from_secs(secs))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Claims for `room` and `role` that expire in `ttl`, with the configured `iss` and `aud`.
pub fn claims(
    c: &JwtConfig,
    room: &str,
    role: Role,
    ttl: Duration,
    name: Option<String>,
) -> Claims {
    let now = now_secs();
    Claims {
        room: room.to_owned(),
        role,
        exp: now.saturating_add(ttl.as_secs()),
        iat: Some(now),
        name,
        iss: c.issuer.clone(),
        aud: c.audience.clone(),
    }
}

/// Signs `claims`: with the PEM private key at `key` (ES256, RS256 or EdDSA by its type), or
/// with `--jwt-secret` (HS256).
pub fn mint_token(
    c: &JwtConfig,
    key: Option<&Path>,
    claims: &Claims,
) -> std::result::Result<String, String> {
    let (alg, key) = match key {
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if let Ok(k) = EncodingKey::from_ec_pem(&pem) {
                (Algorithm::ES256, k)
            } else if let Ok(k) = EncodingKey::from_rsa_pem(&pem) {
                (Algorithm::RS256, k)
            } else if let Ok(k) = EncodingKey::from_ed_pem(&pem) {
                (Algorithm::EdDSA, k)
            } else {
                return Err(format!(
                    "{}: not a PEM (PKCS#8) EC P-256, RSA or Ed25519 private key",
                    path.display()
                ));
            }
        }
        None => match &c.secret {
            Some(s) => (Algorithm::HS256, EncodingKey::from_secret(s.as_bytes())),
            None => {
                return Err(
                    "a token needs --jwt-secret (HS256) or --key with a PEM private key".into(),
                );
            }
        },
    };
    jsonwebtoken::encode(&Header::new(alg), claims, &key).map_err(|e| format!("signing: {e}"))
}
