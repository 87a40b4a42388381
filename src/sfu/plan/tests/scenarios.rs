//! One scenario per planning rule.

use super::*;
use crate::sfu::layers::LayerPref;

#[test]
fn a_viewer_waits_then_watches_and_media_flows_only_once_connected() {
    let mut r = Room::new();
    let v = r.join(None, None, &[MediaKind::Audio, MediaKind::Video]);
    let out = r.out.clone();
    assert!(matches!(
        events(&out)[..],
        [
            RoomEvent::Viewercount { viewercount: 1 },
            RoomEvent::Slots { .. }
        ]
    ));
    let p = r.publisher();
    let video = r.track(&p, MediaKind::Video, None);
    assert_eq!(
        r.shows(v),
        vec![None, None],
        "not connected: nothing attached"
    );
    assert!(r.out.iter().any(|o| matches!(o,
        Output::ViewerState { state: ViewerState::Watching(w), .. } if *w == p)));
    let before = r.out.len();
    r.connect(v, &vp8());
    let out = r.out[before..].to_vec();
    assert_eq!(
        out,
        vec![Output::Switch {
            viewer: v,
            slot: 1,
            from: None,
            to: Some(video)
        }]
    );
    let audio = r.track(&p, MediaKind::Audio, None);
    assert_eq!(r.shows(v), vec![Some(audio), Some(video)]);
    // The publisher leaves: both slots let go, the viewer waits again.
    let out = r.go(Input::PublisherLeft { id: p.clone() });
    assert!(out.contains(&Output::Switch {
        viewer: v,
        slot: 0,
        from: Some(audio),
        to: None
    }));
    assert!(out.contains(&Output::ViewerState {
        viewer: v,
        state: ViewerState::Waiting
    }));
    assert_eq!(r.shows(v), vec![None, None]);
}

#[test]
fn a_conference_viewer_never_sees_itself_and_by_participant_sees_only_its_target() {
    let mut r = Room::new();
    let a = r.publisher();
    let b = r.publisher();
    let va = r.track(&a, MediaKind::Video, None);
    let vb = r.track(&b, MediaKind::Video, None);
    let me = r.viewer(Some(&a), 0, 2);
    assert_eq!(r.shows(me), vec![Some(vb), None]);
    let only_a = r.join(Some(&a), None, &[MediaKind::Video, MediaKind::Video]);
    r.connect(only_a, &vp8());
    assert_eq!(r.shows(only_a), vec![Some(va), None]);
}

#[test]
fn last_n_follows_a_new_speaker_after_the_holders_dwell() {
    let mut r = Room::new();
    let a = r.publisher();
    let b = r.publisher();
    let va = r.track(&a, MediaKind::Video, None);
    let vb = r.track(&b, MediaKind::Video, None);
    let feed = r.viewer(None, 0, 1); // the program feed: one video slot
    assert_eq!(r.shows(feed), vec![Some(va)], "join order first");
    r.at(1000);
    r.voice(&b, true, 100);
    assert_eq!(
        r.shows(feed),
        vec![Some(va)],
        "a holds its slot for the dwell"
    );
    r.at(1000).tick(&[], &[]);
    assert_eq!(r.shows(feed), vec![Some(va)]);
    r.at(1100).tick(&[], &[]);
    assert_eq!(
        r.shows(feed),
        vec![Some(vb)],
        "3 s after a took it, b takes it"
    );
}

#[test]
fn speaking_dominance_and_silence_when_reports_stop() {
    let mut r = Room::new();
    let a = r.publisher();
    let b = r.publisher();
    let out = r.voice(&a, true, 60);
    assert!(events(&out).contains(&&RoomEvent::Speaking {
        id: a.to_string(),
        speaking: true,
        level: 60
    }));
    r.voice(&b, true, 90);
    let out = r.at(100).tick(&[], &[]);
    assert!(
        events(&out).contains(&&RoomEvent::ActiveSpeaker { id: b.to_string() }),
        "the loudest speaker"
    );
    assert!(r.voice(&a, true, 60).is_empty(), "no change, nothing said");
    // b's reports stop (DTX): silent after the timeout, and a takes the floor.
    for _ in 0..8 {
        r.at(250);
        r.voice(&a, true, 60);
        r.tick(&[], &[]);
    }
    let said = events(&r.out).into_iter().cloned().collect::<Vec<_>>();
    assert!(said.contains(&RoomEvent::Speaking {
        id: b.to_string(),
        speaking: false,
        level: 0
    }));
    assert!(said.contains(&RoomEvent::ActiveSpeaker { id: a.to_string() }));
    assert!(
        matches!(r.plan.roster(), RoomEvent::Roster { active_speaker: Some(s), .. } if s == a.to_string())
    );
    r.go(Input::PublisherLeft { id: a.clone() });
    assert!(
        matches!(
            r.plan.roster(),
            RoomEvent::Roster {
                active_speaker: None,
                ..
            }
        ),
        "a departed speaker is not the active one"
    );
}

#[test]
fn simulcast_layers_follow_the_estimate_with_hysteresis_and_the_viewers_wish() {
    let mut r = Room::new();
    let p = r.publisher();
    let q = r.track(&p, MediaKind::Video, Some("q"));
    let h = r.track(&p, MediaKind::Video, Some("h"));
    let f = r.track(&p, MediaKind::Video, Some("f"));
    let rates = [(q, 150_000), (h, 500_000), (f, 1_500_000)];
    let v = r.viewer(None, 0, 1);
    r.tick(&rates, &[]);
    assert_eq!(r.shows(v), vec![Some(f)], "no estimate: the best");
    r.tick(&rates, &[(v, 700_000)]);
    assert_eq!(
        r.shows(v),
        vec![Some(h)],
        "f no longer fits; h does, with 25 % headroom"
    );
    r.tick(&rates, &[(v, 1_900_000)]);
    assert_eq!(r.shows(v), vec![Some(h)], "f needs 25 % headroom");
    r.tick(&rates, &[(v, 2_100_000)]);
    assert_eq!(r.shows(v), vec![Some(f)]);
    // The viewer's wish wins; a rid nobody sends is refused in words.
    let out = r.go(Input::SetLayer {
        viewer: v,
        slot: 0,
        pref: LayerPref::Rid("x".into()),
    });
    assert!(matches!(&out[..], [Output::Refused { reason }] if reason.contains("\"x\"")));
    r.go(Input::SetLayer {
        viewer: v,
        slot: 0,
        pref: LayerPref::Rid("q".into()),
    });
    assert_eq!(r.shows(v), vec![Some(q)]);
    // The layers event went out with the first rates (lowest first), and not again until
    // its shape changes or 2 s pass.
    let layers = |out: &[Output]| {
        out.iter()
            .filter(|o| matches!(o, Output::Layers { .. }))
            .count()
    };
    assert_eq!(layers(&r.out), 1);
    assert!(r.out.iter().any(|o| matches!(o, Output::Layers { layers, .. }
        if layers.len() == 1 && layers[0].1.iter().map(|l| l.rid.as_deref()).eq([Some("q"), Some("h"), Some("f")]))));
    let out = r.at(2000).tick(&rates, &[]);
    assert_eq!(layers(&out), 1, "repeated with fresh bitrates");
}

#[test]
fn the_budget_never_underflows_whatever_the_rates() {
    // Room ~560 of the old code computed `used - rate(slot)` on u64 with `used` summing video
    // slots only: an audio slot of an audio-only publisher under a REMB panicked in debug
    // builds. Here: audio far above the video, zero and huge estimates, huge rates.
    let mut r = Room::new();
    let talker = r.publisher();
    let audio = r.track(&talker, MediaKind::Audio, None);
    let v = r.viewer(None, 1, 1);
    r.tick(&[(audio, 5_000_000)], &[(v, 10_000)]);
    r.tick(&[(audio, u64::MAX)], &[(v, 0)]);
    let p = r.publisher();
    let q = r.track(&p, MediaKind::Video, Some("q"));
    let f = r.track(&p, MediaKind::Video, Some("f"));
    r.tick(
        &[(q, u64::MAX), (f, u64::MAX), (audio, u64::MAX)],
        &[(v, u64::MAX)],
    );
    r.tick(&[(q, 1), (f, u64::MAX)], &[(v, 1)]);
    assert_eq!(r.shows(v)[0], Some(audio));
}

#[test]
fn a_codec_the_viewer_did_not_negotiate_is_told_once() {
    let mut r = Room::new();
    let a = r.publisher();
    let b = r.publisher();
    let v = r.join(None, None, &[MediaKind::Video, MediaKind::Video]);
    r.connect(v, &codec("video/H264", 90000));
    r.track(&a, MediaKind::Video, None);
    r.track(&b, MediaKind::Video, None);
    let told: Vec<&Output> = r
        .out
        .iter()
        .filter(|o| matches!(o, Output::Unplayable { .. }))
        .collect();
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        matches!(told[0], Output::Unplayable { reason, .. } if reason == "m-line 0 did not negotiate video/VP8")
    );
}

#[test]
fn layers_rank_by_picture_size_once_every_layer_has_told_it() {
    let mut r = Room::new();
    let p = r.publisher();
    let q = r.track(&p, MediaKind::Video, Some("q"));
    let h = r.track(&p, MediaKind::Video, Some("h"));
    let f = r.track(&p, MediaKind::Video, Some("f"));
    let v = r.viewer(None, 0, 1);
    let rate = |source, bitrate, dims| TrackRate {
        source,
        bitrate,
        peak: bitrate,
        dims,
    };
    let tick = |r: &mut Room, f_dims| {
        r.go(Input::Tick {
            rates: vec![
                rate(q, 150_000, Some((320, 180))),
                rate(h, 400_000, Some((640, 360))),
                rate(f, 300_000, f_dims),
            ],
            estimates: vec![],
        })
    };
    // f ramps up below h's rate. While its size is unknown, rates rank: h looks best.
    tick(&mut r, None);
    assert_eq!(r.shows(v), vec![Some(h)]);
    // Every layer's size is known: the biggest picture is the best, whatever its rate.
    tick(&mut r, Some((1280, 720)));
    assert_eq!(r.shows(v), vec![Some(f)]);
}
