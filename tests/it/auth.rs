//! Scoped, expiring tokens over HTTP: which token opens which route, 401 against 403 in words,
//! the token's name winning over `?name=`, and the static token as an all-rooms admin.

use std::time::Duration;

use crate::harness::*;
use wisp::auth::{JwtConfig, Role, claims, mint_token};
use wisp::http::paths;

const SECRET: &str = "jwt-secret-for-the-tests";

fn jwt() -> JwtConfig {
    JwtConfig {
        secret: Some(SECRET.into()),
        issuer: Some("wisp-tests".into()),
        ..Default::default()
    }
}

fn token(room: &str, role: Role, name: Option<&str>) -> String {
    let c = claims(
        &jwt(),
        room,
        role,
        Duration::from_secs(300),
        name.map(Into::into),
    );
    mint_token(&jwt(), None, &c).unwrap()
}

async fn server() -> wisp::Server {
    let mut c = test_config();
    c.auth.token = Some("static-admin".into());
    c.auth.jwt = jwt();
    start_with(c).await
}

async fn get(u: &str, bearer: Option<&str>) -> (u16, String) {
    let mut r = http().get(u);
    if let Some(t) = bearer {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    // An event stream never ends: read its status only.
    if status == 200 {
        return (status, String::new());
    }
    (status, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_route_takes_the_token_it_needs_and_says_why_not() {
    let server = server().await;
    let at = |p: &str| url(&server, p);
    let publish = token("demo", Role::Publish, Some("Ada (token)"));
    let watch = token("demo", Role::Subscribe, None);

    // A publisher with a publish token; its token's name wins over ?name=.
    let publisher = Publisher::join_token(&server, "demo?name=Mallory", &publish).await;
    let mut room = Sse::open(
        &http(),
        &format!(
            "{}?access={}",
            at(&paths::room_events("demo")),
            access(&server, "demo", &watch).await
        ),
    )
    .await;
    let (name, roster) = room.next().await;
    assert_eq!(name, "roster");
    assert_eq!(roster["participants"][0]["name"], "Ada (token)", "{roster}");

    // A viewer with a subscribe token.
    let viewer = Viewer::join_token(&server, &paths::whep("demo"), &watch).await;

    // 401: no credential at all, in words.
    let offer = publisher.answer.replace("a=recvonly", "a=sendonly");
    let whip = at(&paths::whip("demo"));
    let r = post_sdp_as(&whip, &offer, None).await;
    assert_eq!(
        (r.status, r.headers["www-authenticate"].to_str().unwrap()),
        (401, "Bearer")
    );
    assert_eq!(
        r.body.trim(),
        "This request needs a token in an Authorization: Bearer header."
    );
    // 401: expired.
    let mut old = claims(&jwt(), "demo", Role::Publish, Duration::from_secs(1), None);
    old.exp -= 600;
    let old = mint_token(&jwt(), None, &old).unwrap();
    let r = post_sdp_as(&whip, &offer, Some(&old)).await;
    assert_eq!(
        (r.status, r.body.trim()),
        (401, "The bearer token has expired.")
    );
    // 401: another issuer.
    let stranger = JwtConfig {
        issuer: Some("elsewhere".into()),
        ..jwt()
    };
    let c = claims(
        &stranger,
        "demo",
        Role::Publish,
        Duration::from_secs(60),
        None,
    );
    let r = post_sdp_as(
        &whip,
        &offer,
        Some(&mint_token(&stranger, None, &c).unwrap()),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("issuer (iss)"), "{}", r.body);
    // 403: the wrong role, the wrong room.
    let r = post_sdp_as(&whip, &offer, Some(&watch)).await;
    assert_eq!(
        (r.status, r.body.trim()),
        (
            403,
            "The token's role 'subscribe' does not allow it to publish."
        )
    );
    let r = post_sdp_as(&at(&paths::whip("other")), &offer, Some(&publish)).await;
    assert_eq!(
        (r.status, r.body.trim()),
        (403, "The token is for room 'demo', not 'other'.")
    );
    // A publish token is not a viewer's, unless it takes part in the conference (?self=).
    let r = post_sdp_as(&at(&paths::whep("demo")), &offer, Some(&publish)).await;
    assert_eq!(r.status, 403, "{}", r.body);

    // Sessions: only a token for the session's room and kind reaches it.
    let elsewhere = token("other", Role::Admin, None);
    let r = http()
        .delete(at(&viewer.session))
        .bearer_auth(&elsewhere)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http()
        .delete(at(&publisher.session))
        .bearer_auth(&watch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a viewer's token cannot end the publisher");

    // Metrics: an admin of every room only.
    let metrics = at(paths::METRICS);
    assert_eq!(get(&metrics, None).await.0, 401);
    let (status, body) = get(&metrics, Some(&token("demo", Role::Admin, None))).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        get(&metrics, Some(&token("*", Role::Admin, None))).await.0,
        200
    );
    assert_eq!(get(&metrics, Some("static-admin")).await.0, 200);

    // Room events: a subscribe or publish token of the room, or an access token of the room.
    let events = at(&paths::room_events("demo"));
    assert_eq!(get(&events, Some(&publish)).await.0, 200);
    assert_eq!(
        get(&events, Some(&token("x", Role::Subscribe, None)))
            .await
            .0,
        403
    );
    let (status, body) = get(&events, Some("garbage")).await;
    assert_eq!(
        (status, body.trim()),
        (401, "The bearer token is not a well-formed JWT.")
    );

    // The right tokens end their own sessions.
    for (session, t) in [(&viewer.session, &watch), (&publisher.session, &publish)] {
        let r = http()
            .delete(at(session))
            .bearer_auth(t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    server.shutdown().await.unwrap();
}

/// An event-stream access token for `room`, minted with `bearer`.
async fn access(server: &wisp::Server, room: &str, bearer: &str) -> String {
    let r = http()
        .post(url(server, &paths::room_access(room)))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    v["access"].as_str().unwrap().to_string()
}

/// `wisp token` prints a token the server then takes, with the configuration's issuer.
#[test]
fn the_token_subcommand_mints_what_the_server_accepts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args([
            "--jwt-secret",
            SECRET,
            "--jwt-issuer",
            "wisp-tests",
            "token",
            "--room",
            "demo",
            "--role",
            "publish",
            "--ttl",
            "1h",
            "--name",
            "alice",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = String::from_utf8(out.stdout).unwrap();
    let auth = wisp::auth::Auth::new(&wisp::auth::AuthConfig {
        token: None,
        jwt: jwt(),
    })
    .unwrap();
    let g = auth.verify(Some(t.trim())).unwrap();
    assert_eq!((g.role, g.name.as_deref()), (Role::Publish, Some("alice")));
    assert!(g.covers("demo") && !g.covers("other"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wisp"))
        .args(["token", "--room", "demo", "--role", "admin"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--jwt-secret"));
}
