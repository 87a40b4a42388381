//! Simulcast: a publisher sends three layers (rids q, h, f); a viewer gets exactly one, the
//! best by default, switches on a keyframe of the layer it selects through the WHEP layer
//! extension with continuous sequence numbers, and learns the layers from the `layers` event.

use std::sync::Arc;
use std::time::Duration;

use crate::harness::*;
use bytes::Bytes;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use wisp::http::paths;
use wisp::rtc::client::client_codec;

const RIDS: [&str; 3] = ["q", "h", "f"];
/// Payload sizes per layer, so the server can rank them by bitrate.
const SIZES: [usize; 3] = [60, 300, 900];

pub(crate) struct SimulcastPublisher {
    _peer: Peer,
    track: Arc<TrackLocalStaticRTP>,
    ssrcs: [u32; 3],
    /// Negotiated ids of the MID and RID header extensions: a browser stamps them on each
    /// layer's packets so the receiver can tell the layers apart (RFC 8852/8843).
    mid_ext: u8,
    rid_ext: u8,
    mid: String,
    session: String,
}

fn extmap(sdp: &str, uri: &str) -> u8 {
    sdp.lines()
        .find_map(|l| {
            let rest = l.strip_prefix("a=extmap:")?;
            let (id, u) = rest.split_once(' ')?;
            (u.trim() == uri).then(|| id.split('/').next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("{uri} not negotiated"))
}

impl SimulcastPublisher {
    pub(crate) async fn join(server: &wisp::Server, room: &str) -> SimulcastPublisher {
        let peer = Peer::new().await;
        let ssrcs = [rand::random(), rand::random(), rand::random()];
        let encodings = RIDS
            .iter()
            .zip(ssrcs)
            .map(|(rid, ssrc)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: rid.to_string(),
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: client_codec(RtpCodecKind::Video),
                ..Default::default()
            })
            .collect();
        let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            "sim".into(),
            "sim-video".into(),
            "sim".into(),
            RtpCodecKind::Video,
            encodings,
        )));
        peer.send_only(&track).await;
        let offer = peer.offer().await;
        assert!(offer.contains("a=simulcast:send"), "{offer}");
        let r = post_sdp(&url(server, &paths::whip(room)), &offer).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert!(r.body.contains("a=simulcast:recv"), "{}", r.body);
        peer.accept(r.body.clone()).await;
        peer.connected().await;
        let mid = r
            .body
            .lines()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .unwrap()
            .trim()
            .to_string();
        SimulcastPublisher {
            _peer: peer,
            track,
            ssrcs,
            mid_ext: extmap(&r.body, "urn:ietf:params:rtp-hdrext:sdes:mid"),
            rid_ext: extmap(&r.body, "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"),
            mid,
            session: r.location.unwrap(),
        }
    }

    /// Frame `n` on every layer: payload = VP8 descriptor (each layer numbers its pictures
    /// on its own, as Chromium's do: a 15-bit PictureID and a TL0PICIDX far apart), the
    /// frame tag, then the layer index.
    pub(crate) async fn send(&self, n: u16, key: bool) {
        for (layer, ssrc) in self.ssrcs.iter().enumerate() {
            let picture = (n + 10_000 * layer as u16) & 0x7fff;
            let tl0 = ((n / 4) as u8).wrapping_add(60 * layer as u8);
            let [hi, lo] = picture.to_be_bytes();
            let mut p = vec![0x90, 0xc0, 0x80 | hi, lo, tl0, u8::from(!key), layer as u8];
            p.resize(SIZES[layer], layer as u8);
            let mut header = rtc::rtp::header::Header {
                version: 2,
                marker: true,
                payload_type: 96,
                sequence_number: n,
                timestamp: n as u32 * 3000,
                ssrc: *ssrc,
                ..Default::default()
            };
            header
                .set_extension(self.mid_ext, Bytes::from(self.mid.clone()))
                .unwrap();
            header
                .set_extension(self.rid_ext, Bytes::from(RIDS[layer]))
                .unwrap();
            let pkt = rtc::rtp::packet::Packet {
                header,
                payload: Bytes::from(p),
            };
            let _ = self.track.write_rtp(pkt).await;
        }
    }
}

/// POSTs the WHEP layer request for rid "q" on m-line 1 (the harness viewer's video) to the
/// session's layer URL, and expects `200`.
pub(crate) async fn ask_low_layer(layer_url: &str) {
    let r = http()
        .post(layer_url)
        .header("content-type", "application/json")
        .body(r#"{"mediaId":"1","rid":"q"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// One video packet as the viewer got it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Got {
    pub(crate) layer: u8,
    seq: u16,
    picture: u16,
    tl0: u8,
}

/// Sends frames (keyframe every 10) until `done` says enough about the viewer's packets.
pub(crate) async fn pump(
    publisher: &SimulcastPublisher,
    viewer: &mut Viewer,
    n: &mut u16,
    mut done: impl FnMut(&[Got]) -> bool,
) -> Vec<Got> {
    let mut got: Vec<Got> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let start = *n;
    loop {
        assert!(
            *n - start < 1500,
            "the viewer never got what it waited for: {:?}",
            &got[got.len().saturating_sub(20)..]
        );
        ticker.tick().await;
        publisher.send(*n, n.is_multiple_of(10)).await;
        *n += 1;
        while let Ok((kind, p)) = viewer.packets.try_recv() {
            if kind == RtpCodecKind::Video {
                let d = &p.payload;
                got.push(Got {
                    layer: d[6],
                    seq: p.header.sequence_number,
                    picture: u16::from_be_bytes([d[2], d[3]]) & 0x7fff,
                    tl0: d[4],
                });
            }
        }
        if done(&got) {
            return got;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_gets_one_layer_and_switches_on_request() {
    let server = start().await;
    let publisher = SimulcastPublisher::join(&server, "sim").await;
    let mut viewer = Viewer::join(&server, &paths::whep("sim")).await;
    let mut n = 0u16;

    // By default the best layer: once the ranking settles, 30 packets in a row from "f".
    let got = pump(&publisher, &mut viewer, &mut n, |g| {
        g.len() >= 30 && g[g.len() - 30..].iter().all(|g| g.layer == 2)
    })
    .await;
    let tail = &got[got.len() - 30..];
    assert!(
        tail.windows(2)
            .all(|w| w[1].seq == w[0].seq.wrapping_add(1)),
        "one layer, no gaps: {tail:?}"
    );

    // The viewer asks for the low layer (m-line 1 is its video).
    ask_low_layer(&url(&server, &format!("{}/layer", viewer.session))).await;
    let before = *got.last().unwrap();
    let got = pump(&publisher, &mut viewer, &mut n, |g| {
        g.len() >= 30 && g[g.len() - 30..].iter().all(|g| g.layer == 0)
    })
    .await;
    // Sequence numbers run on across the switch: no gap, no repeat. So do VP8's picture
    // numbers (one packet per frame here), though q's own are 20,000 behind f's: a receiver
    // finds references by them.
    let mut last = before;
    for g in &got {
        assert_eq!(
            g.seq,
            last.seq.wrapping_add(1),
            "continuous across the switch: {got:?}"
        );
        assert_eq!(g.picture, (last.picture + 1) & 0x7fff, "PictureID: {got:?}");
        assert!(g.tl0.wrapping_sub(last.tl0) <= 1, "TL0PICIDX: {got:?}");
        last = *g;
    }
    let layers: Vec<u8> = got.iter().map(|g| g.layer).collect();
    let first_low = layers.iter().position(|l| *l == 0).unwrap();
    assert!(
        layers[first_low..].iter().all(|l| *l == 0),
        "no flapping back: {layers:?}"
    );

    // A rid nobody sends is refused in words.
    let r = http()
        .post(url(&server, &format!("{}/layer", viewer.session)))
        .body(r#"{"mediaId":"1","rid":"zz"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("zz"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_event_lists_the_simulcast_layers() {
    let server = start().await;
    let publisher = SimulcastPublisher::join(&server, "sim2").await;
    let mut viewer = Viewer::join(&server, &paths::whep("sim2")).await;
    let mut n = 0u16;
    pump(&publisher, &mut viewer, &mut n, |g| g.len() >= 20).await;

    let sse = url(&server, &format!("{}/sse", viewer.session));
    let r = http()
        .post(&sse)
        .body(r#"["layers"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let stream = url(&server, r.headers()["location"].to_str().unwrap());
    let mut resp = http().get(&stream).send().await.unwrap();
    let mut text = String::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    // Until every layer's rate is known the layers tie (and keep their arrival order); the
    // event is sent again when the ranking changes, so read until all three are measured.
    let data = within("a layers event with every layer measured", async {
        let mut read = 0;
        loop {
            tokio::select! {
                chunk = resp.chunk() => {
                    text.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
                    while let Some(i) = text[read..].find("event: layers\ndata: ") {
                        let start = read + i + 20;
                        let Some(end) = text[start..].find('\n') else { break };
                        read = start + end;
                        let data = text[start..read].to_string();
                        let v: serde_json::Value = serde_json::from_str(&data).unwrap();
                        let measured = v["1"].as_array().is_some_and(|l| {
                            l.len() == 3 && l.iter().all(|l| l["bitrate"].as_u64() > Some(0))
                        });
                        if measured {
                            return data;
                        }
                    }
                }
                _ = ticker.tick() => {
                    publisher.send(n, n.is_multiple_of(10)).await;
                    n += 1;
                }
            }
        }
    })
    .await;
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    let layers = v["1"].as_array().expect("m-line 1 has layers");
    let rids: Vec<&str> = layers.iter().filter_map(|l| l["rid"].as_str()).collect();
    assert_eq!(rids, vec!["q", "h", "f"], "lowest first: {data}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automatic_layer_follows_the_viewers_bandwidth_estimate() {
    let server = start().await;
    let publisher = SimulcastPublisher::join(&server, "sim3").await;
    let mut viewer = Viewer::join(&server, &paths::whep("sim3")).await;
    let mut n = 0u16;
    // Layers run at about 48, 240 and 720 kbit/s: no estimate, the best one.
    pump(&publisher, &mut viewer, &mut n, |g| {
        g.len() >= 30 && g[g.len() - 30..].iter().all(|g| g.layer == 2)
    })
    .await;
    // The viewer's REMB says 150 kbit/s: only q fits.
    viewer.send_estimate(150_000.0).await;
    pump(&publisher, &mut viewer, &mut n, |g| {
        g.len() >= 30 && g[g.len() - 30..].iter().all(|g| g.layer == 0)
    })
    .await;
    // Plenty again: back up to f (a 75 % headroom rule, so no flapping at the edge).
    viewer.send_estimate(5_000_000.0).await;
    pump(&publisher, &mut viewer, &mut n, |g| {
        g.len() >= 30 && g[g.len() - 30..].iter().all(|g| g.layer == 2)
    })
    .await;
}

/// webrtc-rs restarts ICE by renegotiating, which re-binds simulcast receive tracks to SSRCs it
/// must learn again from header extensions browsers no longer send: refused in words, and the
/// session goes on (RFC 9725 §4.3.2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ice_restart_of_a_simulcast_publisher_is_refused_and_the_session_goes_on() {
    let server = start().await;
    let publisher = SimulcastPublisher::join(&server, "sim-restart").await;
    let r = http()
        .patch(url(&server, &publisher.session))
        .header("content-type", "application/trickle-ice-sdpfrag")
        .header("if-match", "*")
        .body("a=ice-ufrag:rst1\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("cannot restart ICE on a simulcast publisher"),
        "{body}"
    );
    assert!(body.contains("X-Wisp-Resume"), "{body}");
    let r = http()
        .get(url(&server, &publisher.session))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "the session goes on");
    server.shutdown().await.unwrap();
}
