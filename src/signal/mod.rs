//! Pure SDP and sdpfrag handling: parsing, validation and policy, with no I/O and no
//! webrtc-rs session state. Everything a client sends is checked here before it reaches
//! `rtc/`, so malformed input becomes a typed [`crate::error::Error`], never a panic.

pub mod candidate;
pub mod codec;
pub mod frag;
pub mod offer;
pub mod red;

pub use candidate::{Candidate, CandidateFilter};
pub use codec::CodecSpec;
pub use frag::Fragment;
pub use offer::{Direction, MediaKind, OfferSummary, Role};
