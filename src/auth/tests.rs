use std::time::Duration;

use base64::Engine;

use super::*;

const SECRET: &str = "a-secret-of-sixteen+";

fn hs() -> JwtConfig {
    JwtConfig {
        secret: Some(SECRET.into()),
        ..Default::default()
    }
}

fn auth(jwt: JwtConfig, token: Option<&str>) -> Auth {
    Auth::new(&AuthConfig {
        token: token.map(Into::into),
        jwt,
    })
    .unwrap()
}

fn token(c: &JwtConfig, room: &str, role: Role, name: Option<&str>) -> String {
    let claims = claims(c, room, role, Duration::from_secs(60), name.map(Into::into));
    mint_token(c, None, &claims).unwrap()
}

fn room(s: &str) -> RoomId {
    RoomId::parse(s).unwrap()
}

fn unauthorized(r: Result<Grant>) -> String {
    match r {
        Err(Error::Unauthorized(why)) => why,
        other => panic!("expected 401, got {other:?}"),
    }
}

#[test]
fn open_server_grants_everything() {
    let a = auth(JwtConfig::default(), None);
    assert!(!a.required());
    let g = a.verify(None).unwrap();
    assert!(g.allows(None, Action::Administer).is_ok());
    assert_eq!(a.mint_events(&room("r")), None);
}

#[test]
fn static_token_is_an_admin_of_every_room() {
    let a = auth(hs(), Some("static-admin"));
    let g = a.verify(Some("static-admin")).unwrap();
    assert_eq!((g.rooms.clone(), g.role), (Rooms::All, Role::Admin));
    assert!(g.allows(Some(&room("any")), Action::Publish).is_ok());
    assert!(unauthorized(a.verify(None)).contains("Authorization: Bearer"));
    assert!(unauthorized(a.verify(Some("static-admiN"))).contains("well-formed JWT"));
    let only_static = auth(JwtConfig::default(), Some("static-admin"));
    assert_eq!(
        unauthorized(only_static.verify(Some("nope"))),
        "The bearer token is not valid."
    );
}

#[test]
fn roles_and_rooms() {
    let c = hs();
    let a = auth(c.clone(), None);
    let sub = a
        .verify(Some(&token(&c, "demo", Role::Subscribe, None)))
        .unwrap();
    let demo = room("demo");
    assert!(sub.allows(Some(&demo), Action::Watch).is_ok());
    assert!(sub.allows(Some(&demo), Action::Participate).is_ok());
    let Err(Error::Forbidden(why)) = sub.allows(Some(&demo), Action::Publish) else {
        panic!("subscribe must not publish")
    };
    assert_eq!(
        why,
        "The token's role 'subscribe' does not allow it to publish."
    );
    let Err(Error::Forbidden(why)) = sub.allows(Some(&room("other")), Action::Watch) else {
        panic!("another room")
    };
    assert_eq!(why, "The token is for room 'demo', not 'other'.");
    assert!(matches!(
        sub.allows(None, Action::Administer),
        Err(Error::Forbidden(_))
    ));

    let publ = a
        .verify(Some(&token(&c, "demo", Role::Publish, Some("Ada"))))
        .unwrap();
    assert_eq!(publ.name.as_deref(), Some("Ada"));
    assert!(publ.allows(Some(&demo), Action::Publish).is_ok());
    assert!(publ.allows(Some(&demo), Action::Participate).is_ok());
    assert!(
        publ.allows(Some(&demo), Action::Watch).is_err(),
        "a publish token is not a viewer's"
    );
    assert!(publ.allows(Some(&demo), Action::Administer).is_err());

    let admin_one = a
        .verify(Some(&token(&c, "demo", Role::Admin, None)))
        .unwrap();
    assert!(admin_one.allows(Some(&demo), Action::Administer).is_ok());
    assert!(admin_one.allows(None, Action::Administer).is_err());
    assert!(admin_one.covers("demo") && !admin_one.covers("x"));

    let admin_all = a.verify(Some(&token(&c, "*", Role::Admin, None))).unwrap();
    assert!(admin_all.allows(None, Action::Administer).is_ok());
}

#[test]
fn bad_tokens_say_why() {
    let c = hs();
    let a = auth(c.clone(), None);
    assert!(unauthorized(a.verify(Some("not.a.jwt"))).contains("well-formed"));
    let forged = token(
        &JwtConfig {
            secret: Some("another-secret-16chars".into()),
            ..Default::default()
        },
        "demo",
        Role::Admin,
        None,
    );
    assert!(unauthorized(a.verify(Some(&forged))).contains("signature"));
    let mut expired = claims(&c, "demo", Role::Publish, Duration::from_secs(1), None);
    expired.exp -= 3600;
    let expired = mint_token(&c, None, &expired).unwrap();
    assert_eq!(
        unauthorized(a.verify(Some(&expired))),
        "The bearer token has expired."
    );
    // Signed, but without a role.
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let no_role = jsonwebtoken::encode(
        &header,
        &serde_json::json!({"room": "demo", "exp": u64::MAX / 2}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert!(unauthorized(a.verify(Some(&no_role))).contains("'role' claim"));
    let no_exp = jsonwebtoken::encode(
        &header,
        &serde_json::json!({"room": "demo", "role": "admin"}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert!(unauthorized(a.verify(Some(&no_exp))).contains("'exp'"));
}

#[test]
fn issuer_and_audience_are_checked() {
    let c = JwtConfig {
        issuer: Some("https://auth.example".into()),
        audience: Some("wisp".into()),
        ..hs()
    };
    let a = auth(c.clone(), None);
    assert!(
        a.verify(Some(&token(&c, "demo", Role::Publish, None)))
            .is_ok()
    );
    let other_iss = JwtConfig {
        issuer: Some("https://evil.example".into()),
        ..c.clone()
    };
    assert!(
        unauthorized(a.verify(Some(&token(&other_iss, "d", Role::Admin, None)))).contains("iss")
    );
    let other_aud = JwtConfig {
        audience: Some("someone-else".into()),
        ..c.clone()
    };
    assert!(
        unauthorized(a.verify(Some(&token(&other_aud, "d", Role::Admin, None)))).contains("aud")
    );
    // Without them at all.
    assert!(
        a.verify(Some(&token(&hs(), "d", Role::Admin, None)))
            .is_err()
    );
}

fn temp(name: &str, body: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("wisp-auth-{}-{name}", std::process::id()));
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn es256_with_a_pem_public_key_and_with_a_jwks() {
    let key = rcgen::KeyPair::generate().unwrap(); // ECDSA P-256
    let private = temp("es.key", &key.serialize_pem());
    let public = temp("es.pub", &key.public_key_pem());
    let c = JwtConfig {
        public_key: Some(public.clone()),
        ..Default::default()
    };
    let a = auth(c.clone(), None);
    let signed = mint_token(
        &c,
        Some(&private),
        &claims(&c, "demo", Role::Subscribe, Duration::from_secs(60), None),
    )
    .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&signed).unwrap().alg,
        jsonwebtoken::Algorithm::ES256
    );
    assert_eq!(a.verify(Some(&signed)).unwrap().role, Role::Subscribe);
    // An HS256 token is refused by a server that holds only a public key.
    assert!(
        unauthorized(a.verify(Some(&token(&hs(), "demo", Role::Admin, None)))).contains("HS256")
    );

    // The same key as a JWKS entry.
    let raw = key.public_key_raw(); // 0x04 || x || y
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
    }]});
    let jwks = temp("jwks.json", &jwks.to_string());
    let c = JwtConfig {
        jwks: Some(jwks.clone()),
        ..Default::default()
    };
    let a = auth(c, None);
    assert!(
        a.verify(Some(&signed)).is_ok(),
        "no kid: any key of the set"
    );
    for p in [private, public, jwks] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn bad_key_files_stop_the_start() {
    let p = temp("junk.pem", "not a key");
    let c = AuthConfig {
        token: None,
        jwt: JwtConfig {
            public_key: Some(p.clone()),
            ..Default::default()
        },
    };
    assert!(Auth::new(&c).err().unwrap().contains("not a PEM"));
    let short = AuthConfig {
        token: None,
        jwt: JwtConfig {
            secret: Some("short".into()),
            ..Default::default()
        },
    };
    assert!(Auth::new(&short).is_err());
    let _ = std::fs::remove_file(p);
}

#[test]
fn ttls() {
    assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
    assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_ttl("7d").unwrap(), Duration::from_secs(7 * 86400));
    // Found by the `bodies` fuzz target: the multiplication overflowed.
    assert!(parse_ttl("4414244142444481100d").is_err());
    assert!(parse_ttl("1y").is_err() && parse_ttl("0s").is_err() && parse_ttl("h").is_err());
}

#[test]
fn event_tokens_are_room_scoped_and_unforgeable() {
    let a = auth(hs(), Some("static"));
    let b = auth(hs(), Some("other-static"));
    let r = room("a");
    let t = a.mint_events(&r).unwrap();
    assert!(a.verify_events(&r, &t));
    assert!(!a.verify_events(&room("b"), &t), "another room");
    assert!(!b.verify_events(&r, &t), "forged with another key");
    assert!(!a.verify_events(&r, "0.00"), "expired");
    assert!(!a.verify_events(&r, "garbage"));
    assert!(!a.verify_events(&r, "99999999999.zz"));
}
