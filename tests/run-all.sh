#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what it needs, then
# formatting and lints, unit + integration tests, the GStreamer lab interop, and the
# conformance suite against a wisp on loopback. Non-zero exit on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says when it starts (seconds into the run), so a slow CI run shows where.
step() { printf '\n=== [%d s] %s\n' "$SECONDS" "$*"; }

step "setup"
bash tests/setup.sh

step "format and lints"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings

step "unit and integration tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  cargo test --locked --no-fail-fast
fi

step "fuzzing: each target 20 s from its seeds and corpus (cargo-fuzz on nightly), a crash fails"
bash tests/fuzz/run.sh 20

step "release build"
cargo build --release --locked

step "real clients in the lab: GStreamer whipsink/whepsrc and aiortc, publishers x players"
bash tests/interop/gst_lab.sh target/release/wisp target/gst-webrtchttp/target/release \
  target/aiortc-venv/bin/python

step "join time mid-GOP in the lab: PLI-ignoring x264 and Chromium publishers, ten late viewers each"
bash tests/interop/join_lab.sh target/release/wisp target/gst-webrtchttp/target/release \
  target/aiortc-venv/bin/python

step "SIGTERM drains, with a real publisher in the lab"
bash tests/interop/drain_lab.sh target/release/wisp target/gst-webrtchttp/target/release

step "scoped tokens with real clients in the lab: whipsink, whepsrc, Chromium pages"
bash tests/interop/auth_lab.sh target/release/wisp target/gst-webrtchttp/target/release

step "TURN abuse with coturn's own client: allocation floods, unpermitted data, negative tests, DOS mode"
bash tests/interop/turn_abuse.sh target/release/wisp

step "cluster on a real Redis in the lab: three nodes, whipsink and whepsrc, a 307, the cascade, kill -9 of the owner"
bash tests/interop/cluster_lab.sh target/release/wisp target/gst-webrtchttp/target/release

step "recording and LL-HLS in the lab: whipsink to MP4/WebM, A/V sync, kill -9, ranges, ffmpeg and hls.js on HLS"
bash tests/interop/record_lab.sh target/release/wisp target/gst-webrtchttp/target/release

step "the admin API against its OpenAPI document (schemathesis), with real media in the lab"
bash tests/interop/api_contract.sh target/release/wisp target/gst-webrtchttp/target/release \
  target/schemathesis-venv/bin/schemathesis

step "the admin page in Chromium: three participants, their legs, kick (screenshot target/admin.png)"
bash tests/browser/admin_lab.sh target/release/wisp

step "real browsers in the lab: headless Chromium on the conference page"
bash tests/browser/lab.sh target/release/wisp

step "the pages in Chromium: pre-join, grid and speaker views, mute state, chat, screen share, pin, /watch, /publish, axe-core, 44 px touch targets (screenshots target/pages/)"
bash tests/browser/pages_lab.sh target/release/wisp

step "Firefox ESR with Chromium in the lab: each publishes, the other plays, both in one conference room"
bash tests/browser/firefox_lab.sh target/release/wisp

step "bandwidth estimation: a Chromium viewer of a simulcast publisher across a tc-shaped link"
bash tests/browser/bwe_lab.sh target/release/wisp

step "behind a NAT with UDP blocked: Chromium joins through wisp's TURN over TCP"
bash tests/nat/lab.sh target/release/wisp

if [ -x conformance/run ]; then
  step "conformance suite against wisp"
  bash tests/conformance.sh target/release/wisp
fi

step "all tests passed"
