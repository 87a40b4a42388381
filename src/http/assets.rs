//! The pages and their modules, embedded at compile time (no build step). For work on the
//! pages, `WISP_WEB_DIR=web` serves the same files from that directory instead, read at each
//! request, so an edit shows on reload without a rebuild; only the names listed here are
//! served either way.

use bytes::Bytes;

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! embedded {
    ($($name:literal => $ct:ident),* $(,)?) => {
        &[$(($name, $ct, include_str!(concat!("../../web/", $name)))),*]
    };
}

/// (file name, content type, contents).
const ASSETS: &[(&str, &str, &str)] = embedded![
    "index.html" => HTML,
    "app.js" => JS,
    "prejoin.js" => JS,
    "devices.js" => JS,
    "tiles.js" => JS,
    "roomview.js" => JS,
    "chat.js" => JS,
    "share.js" => JS,
    "netstats.js" => JS,
    "whip.js" => JS,
    "style.css" => CSS,
    "publish.html" => HTML,
    "watch.html" => HTML,
    "watch.js" => JS,
    "publish.js" => JS,
    "admin.html" => HTML,
    "admin.js" => JS,
    "test.html" => HTML,
    "test.js" => JS,
    "echo.js" => JS,
    // hls.js (npm, Apache-2.0), the player /watch falls back to for LL-HLS.
    "vendor/hls.light.min.mjs" => JS,
];

/// The content type and body of the page file `name`, if it is one.
pub fn asset(name: &str) -> Option<(&'static str, Bytes)> {
    let &(name, ct, embedded) = ASSETS.iter().find(|(n, _, _)| *n == name)?;
    if let Some(dir) = std::env::var_os("WISP_WEB_DIR")
        && let Ok(text) = std::fs::read(std::path::Path::new(&dir).join(name))
    {
        return Some((ct, Bytes::from(text)));
    }
    Some((ct, Bytes::from_static(embedded.as_bytes())))
}
