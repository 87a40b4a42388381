//! The integration tests: one binary (one link of the crate), a module per concern, and the
//! harness they share (`harness/`: the in-process server, client peers, the lossy relay).

mod harness;

mod admin;
mod auth;
mod cluster;
mod conference;
mod events;
mod forwarding;
mod fuzz_regressions;
mod hooks;
mod hostile;
mod hostile_publisher;
mod http;
mod limits;
mod loss;
mod malformed;
mod network;
mod operate;
mod reconnect;
mod record;
mod simulcast;
mod soak;
mod social;
mod tls;
mod turn;
mod turn_abuse;
