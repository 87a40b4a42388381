//! Screen shares, pins, participants' own state and chat, as the plan rules them.

use super::*;
use crate::sfu::plan::social::{CHAT_BURST, CHAT_HISTORY, CHAT_MAX_CHARS, ChatRefused};

impl Room {
    fn screen_of(&mut self, owner: &ParticipantId) -> ParticipantId {
        let id = ParticipantId::new();
        self.go(Input::PublisherJoined {
            id: id.clone(),
            name: "p".into(),
            joined_at_ms: 0,
            expected: vec![(MediaKind::Video, vp8())],
            screen_of: Some(owner.clone()),
        });
        id
    }
}

#[test]
fn a_screen_share_takes_a_slot_first_and_its_owner_never_sees_it() {
    let mut r = Room::new();
    let a = r.publisher();
    let b = r.publisher();
    let va = r.track(&a, MediaKind::Video, None);
    let _vb = r.track(&b, MediaKind::Video, None);
    let carol = r.viewer(None, 0, 1); // one video slot: a holds it (join order)
    let bob = r.viewer(Some(&b), 0, 2);
    assert_eq!(r.shows(carol), vec![Some(va)]);
    let s = r.screen_of(&b);
    let vs = r.track(&s, MediaKind::Video, None);
    let info = r.plan.info(&s).unwrap();
    assert_eq!(info.screen_of.as_deref(), Some(b.as_str()));
    // The share outranks the speaker-less ranking, once a's dwell is over.
    r.at(3100).tick(&[], &[]);
    assert_eq!(
        r.shows(carol),
        vec![Some(vs)],
        "the screen takes the one slot"
    );
    // b sees a, never its own screen, though the screen ranks first.
    assert_eq!(r.shows(bob), vec![Some(va), None]);
    // Even speaking does not push a screen out.
    r.voice(&a, true, 100);
    r.at(3100).tick(&[], &[]);
    assert_eq!(r.shows(carol), vec![Some(vs)]);
}

#[test]
fn a_pinned_participant_keeps_a_slot_whoever_speaks() {
    let mut r = Room::new();
    let a = r.publisher();
    let b = r.publisher();
    let va = r.track(&a, MediaKind::Video, None);
    let vb = r.track(&b, MediaKind::Video, None);
    let v = r.viewer(None, 0, 1);
    assert_eq!(r.shows(v), vec![Some(va)]);
    r.go(Input::Pin {
        viewer: v,
        participant: Some(a.clone()),
    });
    r.at(100);
    r.voice(&b, true, 120);
    r.at(3100).tick(&[], &[]);
    assert_eq!(r.shows(v), vec![Some(va)], "pinned a stays while b speaks");
    r.go(Input::Pin {
        viewer: v,
        participant: None,
    });
    r.at(100).tick(&[], &[]);
    assert_eq!(r.shows(v), vec![Some(vb)], "unpinned: the speaker takes it");
}

#[test]
fn state_is_said_once_per_change_and_shown_in_the_roster() {
    let mut r = Room::new();
    let a = r.publisher();
    let state = |muted, camera_off, weak| Input::State {
        id: a.clone(),
        muted,
        camera_off,
        weak,
    };
    let out = r.go(state(Some(true), None, None));
    assert!(matches!(
        events(&out)[..],
        [RoomEvent::State { state, .. }] if state.muted && !state.camera_off && !state.weak
    ));
    assert!(events(&r.go(state(Some(true), None, None))).is_empty());
    let out = r.go(state(None, Some(true), Some(true)));
    assert!(matches!(
        events(&out)[..],
        [RoomEvent::State { state, .. }] if state.muted && state.camera_off && state.weak
    ));
    assert!(r.plan.info(&a).unwrap().state.camera_off);
    // Someone unknown changes nothing.
    let out = r.go(Input::State {
        id: ParticipantId::new(),
        muted: Some(true),
        camera_off: None,
        weak: None,
    });
    assert!(out.is_empty());
}

#[test]
fn chat_is_bounded_in_length_rate_and_history() {
    let mut r = Room::new();
    let a = r.publisher();
    let now = r.now;
    let chat = |r: &mut Room, at: Instant, text: &str| r.plan.chat(at, &a, text, 0);
    assert_eq!(chat(&mut r, now, "   "), Err(ChatRefused::Empty));
    let long = "é".repeat(CHAT_MAX_CHARS + 1);
    assert_eq!(chat(&mut r, now, &long), Err(ChatRefused::TooLong));
    assert!(chat(&mut r, now, &"é".repeat(CHAT_MAX_CHARS)).is_ok());
    assert_eq!(
        r.plan.chat(now, &ParticipantId::new(), "hi", 0),
        Err(ChatRefused::NotHere)
    );
    // The burst (one spent above), then refused until the allowance grows again.
    for _ in 1..CHAT_BURST as usize {
        assert!(chat(&mut r, now, "<b>hi</b>").is_ok());
    }
    let Err(ChatRefused::TooFast(wait)) = chat(&mut r, now, "again") else {
        panic!("the sixth message at once must be refused");
    };
    assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
    let later = now + Duration::from_secs(1);
    let Ok(Output::Event(RoomEvent::Chat { text, .. })) = chat(&mut r, later, "  later ") else {
        panic!("one per second after the burst");
    };
    assert_eq!(text, "later", "trimmed, markup and all kept as text");
    // History keeps the latest CHAT_HISTORY, oldest first.
    for i in 0..CHAT_HISTORY + 7 {
        let at = later + Duration::from_secs(1 + i as u64);
        chat(&mut r, at, &format!("m{i}")).unwrap();
    }
    let history = r.plan.chat_history();
    assert_eq!(history.len(), CHAT_HISTORY);
    assert!(matches!(&history[0], RoomEvent::Chat { text, .. } if text == "m7"));
}
