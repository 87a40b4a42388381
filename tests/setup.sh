#!/usr/bin/env bash
# Installs what the test suite needs on Debian 12: GStreamer (with libnice and x264), promtool
# (package prometheus; its service is not needed and is stopped), redis-server (the cluster
# tests start their own), ffmpeg (ffprobe and ffmpeg check recordings and HLS), the
# Python GObject bindings, iproute2 and nftables for the lab namespaces (NAT test), curl for the conformance suite,
# Chromium and Firefox ESR for the browser tests; then
# builds the GStreamer WHIP/WHEP elements (crate gst-plugin-webrtchttp, from crates.io) into
# target/gst-webrtchttp. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

PKGS="gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-nice libgstreamer1.0-dev
libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev python3-gi gir1.2-gstreamer-1.0
gir1.2-gst-plugins-base-1.0 gir1.2-gst-plugins-bad-1.0 iproute2 curl pkg-config libssl-dev util-linux
chromium firefox-esr openssl nftables python3-venv prometheus coturn redis-server ffmpeg bc"
missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
if [ -n "$missing" ]; then
  $SUDO apt-get update -q
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
  # The package starts a Prometheus server; the tests need only promtool.
  $SUDO systemctl stop prometheus 2>/dev/null || $SUDO pkill -x prometheus || true
  # coturn is here for its test client (turnutils_uclient); its server must not run.
  $SUDO systemctl stop coturn 2>/dev/null || $SUDO pkill -x turnserver || true
  # redis-server: the cluster tests start their own on free ports; the packaged one must not run.
  $SUDO systemctl stop redis-server 2>/dev/null || $SUDO pkill -x redis-server || true
fi

GST_VER=0.15.4
OUT=target/gst-webrtchttp
if [ ! -f "$OUT/target/release/libgstwebrtchttp.so" ]; then
  # Fetch the crate's source through cargo (crates.io only), then build it with its own
  # Cargo.lock. Debian 12 ships GStreamer 1.22, hence no default (1.24) features.
  fetch=target/gst-fetch
  mkdir -p "$fetch/src"
  cat >"$fetch/Cargo.toml" <<TOML
[package]
name = "gst-fetch"
version = "0.0.0"
edition = "2021"
[dependencies]
gst-plugin-webrtchttp = { version = "=$GST_VER", default-features = false }
[workspace]
TOML
  echo "fn main() {}" >"$fetch/src/main.rs"
  cargo fetch --manifest-path "$fetch/Cargo.toml" -q
  src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/gst-plugin-webrtchttp-$GST_VER | head -1)
  rm -rf "$OUT" && cp -r "$src" "$OUT"
  echo "[workspace]" >>"$OUT/Cargo.toml"
  cargo build --release --locked --manifest-path "$OUT/Cargo.toml" \
    --no-default-features --features rustls-ring -q
fi
# aiortc (PyPI) for the interop matrix's aiortc publisher and player, in its own venv.
if ! target/aiortc-venv/bin/python -c "import aiortc, numpy" 2>/dev/null; then
  rm -rf target/aiortc-venv
  python3 -m venv target/aiortc-venv
  target/aiortc-venv/bin/pip install -q --disable-pip-version-check aiortc==1.16.0 numpy==2.4.6
fi
# schemathesis (PyPI), the admin API's contract tester, in its own venv.
if ! target/schemathesis-venv/bin/schemathesis --version >/dev/null 2>&1; then
  rm -rf target/schemathesis-venv
  python3 -m venv target/schemathesis-venv
  target/schemathesis-venv/bin/pip install -q --disable-pip-version-check schemathesis==4.32.5
fi
# cargo-fuzz (crates.io) builds the fuzz targets on the machine's nightly toolchain, which
# only the fuzz crate uses (wisp builds on stable).
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "setup: the fuzz targets need a nightly toolchain (rustup toolchain list)" >&2
  exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked -q
fi
# playwright-core drives Debian's chromium, puppeteer-core Debian's firefox-esr (WebDriver
# BiDi); neither downloads a browser.
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/puppeteer-core ]; then
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi
echo "setup ok: GStreamer $(gst-launch-1.0 --version | head -1 | awk '{print $NF}'), whipsink/whepsrc in $OUT/target/release"
