//! Security events reach the audit log, and no secret does.

use serde_json::json;

use crate::helpers::*;

both!(security_events_are_recorded);

async fn security_events_are_recorded(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("audit@example.com").await;
    let user_id = tokens["user"]["id"].as_str().unwrap().to_owned();
    for who in ["audit@example.com", "nobody@example.com"] {
        let (status, body) = app
            .post(
                "/v1/auth/login",
                json!({ "email_or_username": who, "password": "wrong password" }),
            )
            .await;
        assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    }
    let key = app.login_key("audit@example.com", json!({})).await;
    let code = app.code_for("audit@example.com").await;
    for malformed in [json!("not-it"), json!(10_000)] {
        let (status, body) = app
            .post(
                "/v1/auth/verify",
                json!({ "email_key": key, "verification_code": malformed }),
            )
            .await;
        assert_error(status, &body, 422, "VALIDATION_ERROR");
    }
    let (status, first) = app
        .post(
            "/v1/auth/refresh",
            json!({ "refresh_token": tokens["refresh_token"] }),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    app.clock.advance(31);
    let (status, body) = app
        .post(
            "/v1/auth/refresh",
            json!({ "refresh_token": tokens["refresh_token"] }),
        )
        .await;
    assert_error(status, &body, 401, "REFRESH_TOKEN_REUSED");

    let log = app.audit_log().await;
    let has = |event: &str, detail: Option<&str>| {
        log.iter()
            .any(|(e, _, d)| e == event && (detail.is_none() || d.as_deref() == detail))
    };
    assert!(has("registered", None), "{log:?}");
    assert!(has("code_sent", Some("register")), "{log:?}");
    assert!(has("code_sent", Some("login")), "{log:?}");
    assert!(has("login_succeeded", Some("code")), "{log:?}");
    assert!(has("refresh_reused", None), "{log:?}");
    let failures: Vec<_> = log.iter().filter(|(e, _, _)| e == "login_failed").collect();
    assert_eq!(failures.len(), 1, "{log:?}");
    assert_eq!(failures[0].1.as_deref(), Some(user_id.as_str()));
    // An unknown account's failure is counted, not logged row by row.
    assert_eq!(app.audit_tally("login_failed").await, 1);
    // Neither the malformed nor the out-of-range code reached a key: no code_failed yet.
    assert!(!has("code_failed", None), "{log:?}");
    let (status, body) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": key, "verification_code": wrong_code(&code) }),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_VERIFICATION_CODE");
    let log = app.audit_log().await;
    assert!(log.iter().any(|(e, _, _)| e == "code_failed"), "{log:?}");

    let fresh = app
        .login("audit@example.com", json!({ "device_id": "desk" }))
        .await;
    let token = fresh["token"].as_str().unwrap();
    let change = json!({ "current_password": PASSWORD, "new_password": "another long secret" });
    let (status, body) = app
        .post_auth("/v1/auth/password/change", token, change)
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.post_auth("/v1/auth/logout", token, json!({})).await;
    assert_eq!(status, 200, "{body}");
    let log = app.audit_log().await;
    assert!(
        log.iter().any(|(e, _, _)| e == "password_changed"),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|(e, _, d)| e == "session_revoked" && d.as_deref() == Some("logout")),
        "{log:?}"
    );
    for (_, _, detail) in &log {
        assert!(!detail.as_deref().unwrap_or_default().contains(PASSWORD));
    }
}
