//! Password reset by emailed code, password change, the password policy.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

both!(
    reset_by_code_sets_the_password_and_ends_every_session,
    forgot_answers_alike_for_unknown_addresses,
    change_needs_the_current_password_and_ends_other_sessions,
    weak_passwords_are_refused,
);

async fn reset_by_code_sets_the_password_and_ends_every_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("reset@example.com").await;
    let (status, body) = app
        .post(
            "/v1/auth/password/forgot",
            json!({ "email": "Reset@example.com" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mail = app.mail_to("reset@example.com").await;
    assert!(mail.data.contains("password reset"), "{}", mail.data);
    let code = code_in(&mail.data);
    assert_eq!(code.len(), 6, "reset codes are longer than login codes");
    // A reset key is not a login key.
    let (status, wrong_use) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": body["email_key"], "verification_code": &code[..4] }),
        )
        .await;
    assert_error(status, &wrong_use, 401, "VERIFICATION_EXPIRED");
    let (status, reset) = app
        .post(
            "/v1/auth/password/reset",
            json!({ "email_key": body["email_key"], "verification_code": code, "new_password": "a brand new secret" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    let (status, me) = app
        .get_auth("/v1/auth/me", tokens["token"].as_str().unwrap())
        .await;
    assert_error(status, &me, 401, "INVALID_TOKEN");
    let (status, old) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": "reset@example.com", "password": PASSWORD }),
        )
        .await;
    assert_error(status, &old, 401, "INVALID_CREDENTIALS");
    let (status, new) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": "reset@example.com", "password": "a brand new secret" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{new}");
}

async fn forgot_answers_alike_for_unknown_addresses(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("real@example.com").await;
    let (s1, real) = app
        .post(
            "/v1/auth/password/forgot",
            json!({ "email": "real@example.com" }),
        )
        .await;
    let (s2, ghost) = app
        .post(
            "/v1/auth/password/forgot",
            json!({ "email": "ghost@example.com" }),
        )
        .await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(real["message"], ghost["message"]);
    assert_eq!(
        real.as_object().unwrap().keys().collect::<Vec<_>>(),
        ghost.as_object().unwrap().keys().collect::<Vec<_>>()
    );
    let (status, body) = app
        .post("/v1/auth/password/reset", json!({ "email_key": ghost["email_key"], "verification_code": "1234", "new_password": "whatever it is 9" }))
        .await;
    assert_error(status, &body, 401, "INVALID_VERIFICATION_CODE");
    // Mail queued a second later arrives, so anything for the unknown address
    // would have arrived before it: the worker sends in order of due time.
    app.clock.advance(1);
    let (status, body) = app
        .post(
            "/v1/auth/password/forgot",
            json!({ "email": "real@example.com" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.mail_to("real@example.com").await;
    app.mail_to("real@example.com").await;
    let received = app.smtp.received.lock().unwrap();
    assert!(received.is_empty(), "{received:?}");
}

async fn change_needs_the_current_password_and_ends_other_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.signup("chg@example.com").await;
    let this = app
        .login("chg@example.com", json!({ "device_id": "this" }))
        .await;
    let token = this["token"].as_str().unwrap();
    // A login half done with the old password.
    let pending = app.login_key("chg@example.com", json!({})).await;
    let pending_code = app.code_for("chg@example.com").await;
    let (status, body) = app
        .post_auth(
            "/v1/auth/password/change",
            token,
            json!({ "current_password": "not my password", "new_password": "fresh secret words" }),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    let (status, body) = app
        .post_auth(
            "/v1/auth/password/change",
            token,
            json!({ "current_password": PASSWORD, "new_password": "fresh secret words" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app.get_auth("/v1/auth/me", token).await;
    assert_eq!(status, StatusCode::OK, "the session that changed it stays");
    let (status, body) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": pending, "verification_code": pending_code }),
        )
        .await;
    assert_error(status, &body, 401, "VERIFICATION_EXPIRED");
    let (status, body) = app
        .get_auth("/v1/auth/me", other["token"].as_str().unwrap())
        .await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    let (status, body) = app
        .post(
            "/v1/auth/password/change",
            json!({ "current_password": PASSWORD, "new_password": "x" }),
        )
        .await;
    assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");
}

async fn weak_passwords_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    for weak in ["short", "password123", &"a".repeat(257)] {
        let (status, body) = app
            .post(
                "/v1/auth/register",
                json!({ "email": "weak@example.com", "password": weak }),
            )
            .await;
        assert_error(status, &body, 422, "WEAK_PASSWORD");
    }
    let (status, _) = app
        .post(
            "/v1/auth/register",
            json!({ "email": "weak@example.com", "password": "ünïcødé pässwörd" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
