//! Refresh tokens: rotation, the grace window, reuse detection, lifetime.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

both!(
    rotation_returns_a_new_token_and_retires_the_old,
    two_concurrent_refreshes_with_one_token_get_the_same_successor,
    reuse_after_the_grace_window_revokes_the_session,
    with_rotation_off_the_first_token_stays_valid,
    a_refresh_token_past_30_days_is_rejected,
    access_tokens_expire_with_the_clock,
);

async fn refresh(app: &TestApp, token: &Value) -> (StatusCode, Value) {
    app.post("/v1/auth/refresh", json!({ "refresh_token": token }))
        .await
}

async fn rotation_returns_a_new_token_and_retires_the_old(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("rot@example.com").await;
    let (status, first) = refresh(&app, &tokens["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_ne!(first["refresh_token"], tokens["refresh_token"]);
    assert_eq!(first["refreshToken"], first["refresh_token"]);
    // The successor works, and its own successor too (the camelCase alias is accepted).
    let (status, second) = app
        .post(
            "/v1/auth/refresh",
            json!({ "refreshToken": first["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let (status, body) = refresh(&app, &json!("rt_not-a-token")).await;
    assert_error(status, &body, 401, "REFRESH_TOKEN_INVALID");

    // Once the grace window has passed, the old token is refused and its session revoked.
    let grace = app.settings.build().unwrap().refresh_grace;
    app.clock.advance(grace.as_secs() as i64 + 1);
    let (status, body) = refresh(&app, &tokens["refresh_token"]).await;
    assert_error(status, &body, 401, "REFRESH_TOKEN_REUSED");
    let (status, body) = refresh(&app, &second["refresh_token"]).await;
    assert_error(status, &body, 401, "REFRESH_TOKEN_INVALID");
    let access = second["access_token"].as_str().unwrap();
    let (status, body) = app.get_auth("/v1/auth/me", access).await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
}

async fn two_concurrent_refreshes_with_one_token_get_the_same_successor(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("race@example.com").await;
    let (a, b) = tokio::join!(
        refresh(&app, &tokens["refresh_token"]),
        refresh(&app, &tokens["refresh_token"])
    );
    assert_eq!(a.0, StatusCode::OK, "{}", a.1);
    assert_eq!(b.0, StatusCode::OK, "{}", b.1);
    assert_eq!(a.1["refresh_token"], b.1["refresh_token"]);
    // Within the window a third try still gets the same answer.
    app.clock.advance(29);
    let (status, c) = refresh(&app, &tokens["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["refresh_token"], a.1["refresh_token"]);
    let (status, _) = refresh(&app, &a.1["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK);
}

async fn reuse_after_the_grace_window_revokes_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("reuse@example.com").await;
    let (status, next) = refresh(&app, &tokens["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance(31);
    let (status, body) = refresh(&app, &tokens["refresh_token"]).await;
    assert_error(status, &body, 401, "REFRESH_TOKEN_REUSED");
    // The whole device session is gone: its successor and its access tokens.
    let (status, body) = refresh(&app, &next["refresh_token"]).await;
    assert_error(status, &body, 401, "REFRESH_TOKEN_INVALID");
    for access in [&tokens["access_token"], &next["access_token"]] {
        let (status, body) = app.get_auth("/v1/auth/me", access.as_str().unwrap()).await;
        assert_error(status, &body, 401, "INVALID_TOKEN");
    }
}

async fn with_rotation_off_the_first_token_stays_valid(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("refresh_rotation", "false");
    })
    .await;
    let tokens = app.signup("keep@example.com").await;
    for _ in 0..3 {
        app.clock.advance(3600);
        let (status, body) = refresh(&app, &tokens["refresh_token"]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["refresh_token"], tokens["refresh_token"]);
        let (status, _) = app
            .get_auth("/v1/auth/me", body["token"].as_str().unwrap())
            .await;
        assert_eq!(status, StatusCode::OK);
    }
}

async fn a_refresh_token_past_30_days_is_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("old@example.com").await;
    app.clock.advance(30 * 86_400 - 10);
    let (status, fresh) = refresh(&app, &tokens["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    assert_eq!(fresh["refresh_expires_in"], 10);
    app.clock.advance(11);
    let (status, body) = refresh(&app, &fresh["refresh_token"]).await;
    assert_error(status, &body, 401, "REFRESH_TOKEN_INVALID");
}

async fn access_tokens_expire_with_the_clock(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("ttl@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    app.clock.advance(86_400 - 1);
    let (status, _) = app.get_auth("/v1/auth/me", access).await;
    assert_eq!(status, StatusCode::OK);
    app.clock.advance(1);
    let (status, body) = app.get_auth("/v1/auth/me", access).await;
    assert_error(status, &body, 401, "TOKEN_EXPIRED");
    let (status, body) = app.get_auth("/v1/auth/me", "not.a.jwt").await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    let (status, body) = app.get("/v1/auth/me").await;
    assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");
}
