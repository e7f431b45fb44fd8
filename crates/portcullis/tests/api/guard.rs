//! The guard of `portcullis-client` (feature `guard`): a Rust service that
//! verifies Portcullis access tokens itself, from the published keys.

use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis_client::guard::{Guard, GuardError, Verified};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

both!(
    the_guard_accepts_tokens_and_refuses_the_battery,
    the_guard_serves_an_axum_api,
    the_guard_follows_a_key_rotation,
);

fn guard(app: &TestApp) -> Guard {
    let config = app.settings.build().unwrap();
    Guard::new(&app.base, &config.issuer, &config.audience)
}

fn segments(token: &str) -> Vec<Value> {
    token
        .split('.')
        .take(2)
        .map(|s| serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).unwrap()).unwrap())
        .collect()
}

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// `token` with its header or payload changed, and its signature kept.
fn altered(token: &str, change: impl FnOnce(&mut Value, &mut Value)) -> String {
    let mut parts = segments(token);
    let (header, payload) = parts.split_at_mut(1);
    change(&mut header[0], &mut payload[0]);
    let signature = token.rsplit('.').next().unwrap();
    format!("{}.{}.{signature}", encode(&parts[0]), encode(&parts[1]))
}

async fn the_guard_accepts_tokens_and_refuses_the_battery(backend: Backend) {
    let app = spawn_app(backend).await;
    let guard = guard(&app);
    let tokens = app.signup("guarded@example.com").await;
    let token = tokens["access_token"].as_str().unwrap();
    let claims = guard.verify(token).await.unwrap();
    let (_, me) = app.get_auth("/v1/auth/me", token).await;
    assert_eq!(claims.sub, me["id"].as_str().unwrap());
    assert!(claims.sid.starts_with("ses_"));
    assert_eq!(claims.email.as_deref(), Some("guarded@example.com"));

    let (_, jwks) = app.get("/.well-known/jwks.json").await;
    let public = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let [header, payload] = <[Value; 2]>::try_from(segments(token)).unwrap();
    let unsigned = |header: &Value| format!("{}.{}", encode(header), encode(&payload));
    let none = format!(
        "{}.",
        unsigned(&json!({ "alg": "none", "typ": "at+jwt", "kid": header["kid"] }))
    );
    let hs256 = {
        let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": header["kid"] });
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public);
        let signature = ring::hmac::sign(&key, unsigned(&header).as_bytes());
        format!(
            "{}.{}",
            unsigned(&header),
            URL_SAFE_NO_PAD.encode(signature)
        )
    };
    let battery = [
        ("alg none", none),
        ("HS256 keyed with the public key", hs256),
        (
            "an unknown kid",
            altered(token, |h, _| h["kid"] = json!("0000000000000000")),
        ),
        (
            "a changed subject",
            altered(token, |_, p| p["sub"] = json!("usr_admin")),
        ),
        ("typ JWT", altered(token, |h, _| h["typ"] = json!("JWT"))),
        (
            "a jku to follow",
            altered(token, |h, _| h["jku"] = json!("http://evil.example/jwks")),
        ),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (case, forged) in &battery {
        let refused = guard.verify(forged).await;
        assert!(
            matches!(refused, Err(GuardError::Invalid)),
            "{case}: {refused:?}"
        );
    }

    // Validly signed by the same keys, but not for this guard: another
    // instance on the same database with its own issuer and audience.
    let (other, _stop) = app
        .another_instance_with(|s| {
            s.set("issuer", "http://elsewhere.test");
        })
        .await;
    let config = app.settings.build().unwrap();
    let elsewhere = Guard::new(&other, "http://elsewhere.test", "http://elsewhere.test");
    assert!(
        matches!(elsewhere.verify(token).await, Err(GuardError::Invalid)),
        "wrong iss and aud"
    );
    let wrong_aud = Guard::new(&app.base, &config.issuer, "http://elsewhere.test");
    assert!(
        matches!(wrong_aud.verify(token).await, Err(GuardError::Invalid)),
        "wrong aud"
    );

    // Lifetimes, on the server's clock.
    let ttl = config.access_ttl.as_secs() as i64;
    app.clock.advance(-(ttl + 600));
    let old = app
        .login("guarded@example.com", json!({ "device_id": "old" }))
        .await;
    app.clock.advance(ttl + 600 + 3600);
    let early = app
        .login("guarded@example.com", json!({ "device_id": "early" }))
        .await;
    app.clock.advance(-3600);
    let expired = guard.verify(old["access_token"].as_str().unwrap()).await;
    assert!(matches!(expired, Err(GuardError::Expired)), "{expired:?}");
    let not_yet = guard.verify(early["access_token"].as_str().unwrap()).await;
    assert!(matches!(not_yet, Err(GuardError::Invalid)), "{not_yet:?}");
}

async fn the_guard_serves_an_axum_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let guard = Arc::new(guard(&app));
    async fn handler(Verified(claims): Verified) -> Json<Value> {
        Json(json!({ "user": claims.sub }))
    }
    let api = Router::new()
        .route("/v1/responses", get(handler))
        .with_state(guard);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });

    let tokens = app.signup("api@example.com").await;
    let response = app
        .http
        .get(format!("{base}/v1/responses"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"], tokens["user"]["id"]);

    for (auth, code) in [
        (None, "AUTHENTICATION_REQUIRED"),
        (Some("Bearer x.y.z"), "INVALID_TOKEN"),
    ] {
        let mut request = app.http.get(format!("{base}/v1/responses"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (body["success"].clone(), body["error"]["code"].clone()),
            (json!(false), json!(code))
        );
    }
}

async fn the_guard_follows_a_key_rotation(backend: Backend) {
    let app = spawn_app(backend).await;
    let eager = guard(&app).refetch_floor(Duration::ZERO);
    let patient = guard(&app);
    let tokens = app.signup("rotate@example.com").await;
    let before = tokens["access_token"].as_str().unwrap();
    eager.verify(before).await.unwrap();
    patient.verify(before).await.unwrap();
    let kid = |t: &str| segments(t)[0]["kid"].clone();

    app.cli(&["keys", "rotate"]);
    let after = eventually("a token signed by the new key", || async {
        let tokens = app.login("rotate@example.com", json!({})).await;
        let token = tokens["access_token"].as_str().unwrap().to_owned();
        (kid(&token) != kid(before)).then_some(token)
    })
    .await;
    // An unknown kid makes the guard fetch the keys again...
    eager.verify(&after).await.unwrap();
    eager.verify(before).await.unwrap();
    // ...but not more often than its floor (30 s by default).
    assert!(matches!(
        patient.verify(&after).await,
        Err(GuardError::Invalid)
    ));
}
