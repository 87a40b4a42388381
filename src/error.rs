//! The one error type of wisp's signalling surface.
//!
//! Every failure a request can meet is a variant here, and [`Error::status`] is the only place
//! in the crate where an HTTP status code is chosen. The `Display` text is the one-sentence body
//! the client receives, so it must say what was wrong without leaking internals.

use std::time::Duration;

/// What went wrong with a request, in terms a client can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body's content type is not the one the endpoint takes.
    #[error("Content-Type must be {expected}.")]
    UnsupportedMediaType { expected: &'static str },
    /// The SDP offer or answer did not parse.
    #[error("The SDP could not be parsed: {0}.")]
    BadSdp(String),
    /// The trickle-ice-sdpfrag body did not parse.
    #[error("The SDP fragment could not be parsed: {0}.")]
    BadFragment(String),
    /// Any other malformed request (bad room name, bad query).
    #[error("{0}")]
    BadRequest(String),
    /// The offer parsed but cannot be served (no usable media, wrong direction, too many tracks).
    #[error("The offer cannot be accepted: {0}.")]
    Unprocessable(String),
    /// The request changes ICE in a way this session cannot (e.g. a failed ICE restart).
    #[error("The ICE restart could not be applied: {0}.")]
    RestartFailed(String),
    /// No such session or resource.
    #[error("No such resource.")]
    NotFound,
    /// The method is not served on this resource.
    #[error("This method is not allowed here.")]
    MethodNotAllowed { allow: &'static str },
    /// A PATCH without `If-Match`.
    #[error("A PATCH must carry an If-Match header with the session's ETag or \"*\".")]
    PreconditionRequired,
    /// A PATCH whose `If-Match` names an old ETag.
    #[error("The If-Match entity-tag does not match the session's current ETag.")]
    PreconditionFailed,
    /// No credential, or one that is malformed, badly signed, expired or not for this server:
    /// the sentence says which.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid credential that does not cover this room or this action.
    #[error("{0}")]
    Forbidden(String),
    /// Body over the size limit.
    #[error("The request body is larger than {limit} bytes.")]
    PayloadTooLarge { limit: usize },
    /// A resource (ports, session slots) is exhausted; try again later.
    #[error("The server is out of {what}; retry later.")]
    Unavailable {
        what: &'static str,
        retry_after: Duration,
    },
    /// This client address sent POSTs or PATCHes faster than `--request-rate`.
    #[error("Too many requests from this address; retry in {retry_after} s.")]
    RateLimited { retry_after: u64 },
    /// One sender's messages (a participant's chat) came faster than their limit.
    #[error("{what}; retry in {retry_after} s.")]
    SlowDown { what: String, retry_after: u64 },
    /// The request does not fit the resource's kind (e.g. a player's session told a
    /// publisher's state).
    #[error("{0}")]
    Conflict(String),
    /// The admission webhook did not answer in time or could not be reached.
    #[error("The admission service did not answer in time; retry shortly.")]
    AdmissionUnavailable,
    /// The server is draining before it stops (SIGTERM): no new sessions.
    #[error("The server is shutting down and takes no new sessions; retry shortly.")]
    Draining,
    /// Cluster mode: the directory (Redis) that says which node serves a room cannot be
    /// reached; sessions already running are not affected.
    #[error("The cluster directory cannot be reached; retry shortly.")]
    DirectoryUnavailable,
    /// A `Range` header outside the file (RFC 9110 §15.5.17).
    #[error("The requested byte range is not within the file's {size} bytes.")]
    RangeNotSatisfiable { size: u64 },
    /// A bug or an unexpected library failure; details go to the log, not the client.
    #[error("Internal error.")]
    Internal(String),
}

impl Error {
    /// The HTTP status for this error: the single mapping of failures to codes.
    pub fn status(&self) -> u16 {
        match self {
            Error::UnsupportedMediaType { .. } => 415,
            Error::BadSdp(_) | Error::BadFragment(_) | Error::BadRequest(_) => 400,
            Error::Unprocessable(_) | Error::RestartFailed(_) => 422,
            Error::NotFound => 404,
            Error::MethodNotAllowed { .. } => 405,
            Error::PreconditionRequired => 428,
            Error::PreconditionFailed => 412,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) => 403,
            Error::PayloadTooLarge { .. } => 413,
            Error::RateLimited { .. } | Error::SlowDown { .. } => 429,
            Error::Conflict(_) => 409,
            Error::Unavailable { .. }
            | Error::Draining
            | Error::AdmissionUnavailable
            | Error::DirectoryUnavailable => 503,
            Error::RangeNotSatisfiable { .. } => 416,
            Error::Internal(_) => 500,
        }
    }

    /// Seconds for `Retry-After`, where the status calls for one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::Unavailable { retry_after, .. } => Some(retry_after.as_secs().max(1)),
            Error::Draining | Error::AdmissionUnavailable => Some(DRAIN_RETRY_AFTER.as_secs()),
            Error::RateLimited { retry_after } | Error::SlowDown { retry_after, .. } => {
                Some(*retry_after)
            }
            Error::DirectoryUnavailable => Some(DIRECTORY_RETRY_AFTER.as_secs()),
            _ => None,
        }
    }
}

/// What a client refused while the server drains is told to wait before it tries again.
pub const DRAIN_RETRY_AFTER: Duration = Duration::from_secs(5);

/// How long a client refused for want of the cluster directory waits: the node reconnects
/// to Redis by itself within about this long.
pub const DIRECTORY_RETRY_AFTER: Duration = Duration::from_secs(2);

/// Result alias for signalling operations.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_documented_ones() {
        assert_eq!(
            Error::UnsupportedMediaType {
                expected: "application/sdp"
            }
            .status(),
            415
        );
        assert_eq!(Error::BadSdp("x".into()).status(), 400);
        assert_eq!(Error::Unprocessable("x".into()).status(), 422);
        assert_eq!(Error::PreconditionRequired.status(), 428);
        assert_eq!(Error::PreconditionFailed.status(), 412);
        assert_eq!(Error::PayloadTooLarge { limit: 1 }.status(), 413);
        let e = Error::Unavailable {
            what: "ports",
            retry_after: Duration::from_secs(0),
        };
        assert_eq!((e.status(), e.retry_after()), (503, Some(1)));
    }

    #[test]
    fn every_body_is_one_sentence() {
        for e in [
            Error::NotFound,
            Error::Unauthorized("The bearer token has expired.".into()),
            Error::Forbidden("The token is for room 'a', not 'b'.".into()),
            Error::PreconditionFailed,
            Error::BadSdp("missing v= line".into()),
        ] {
            let s = e.to_string();
            assert!(s.ends_with('.'), "{s}");
            assert_eq!(s.matches(". ").count(), 0, "{s}");
        }
    }
}
