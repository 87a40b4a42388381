//! Webhooks: wisp tells another system what happens (`--webhook`), and asks it before it
//! admits a session (`--auth-webhook`).
//!
//! - **Events** (`events.rs`): a listener of the rooms' notices (`Sfu::notices`) POSTs one JSON
//!   event per change — `participant.joined`, `participant.left`, `publish.started`,
//!   `publish.stopped`, `room.closed` — signed with HMAC-SHA256 over `<timestamp>.<body>`
//!   (`X-Wisp-Timestamp`, `X-Wisp-Signature: sha256=<hex>`). Delivery is in order from one task
//!   with bounded retries and backoff; a receiver that is down or slow costs a log line and,
//!   past the queue, the oldest events — never media or signalling time.
//! - **Admission** (`admission.rs`): before a WHIP or WHEP POST is served, the receiver is
//!   asked (room, action, name, token claims, client address); a non-2xx answer refuses with
//!   `403` and the receiver's reason, no answer within `--auth-webhook-timeout` with `503`.

mod admission;
mod events;

pub use admission::{Admission, AdmissionHook, Claims};
pub use events::{EventHook, sign};
