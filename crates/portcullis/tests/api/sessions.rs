//! Login policies, device sessions, logout, disabled accounts.

use portcullis::admin::Admin;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

both!(
    wrong_password_and_unknown_user_get_the_same_answer,
    a_disabled_account_is_refused_after_a_correct_password,
    policy_never_returns_tokens_at_step_one,
    policy_new_device_asks_for_a_code_only_on_new_devices,
    an_unverified_account_gets_a_registration_code_at_login,
    revoking_a_device_ends_only_that_session,
    logout_all_ends_every_session,
    a_new_login_on_the_same_device_replaces_its_session,
    instances_sharing_a_database_share_sessions_and_revocations,
);

async fn wrong_password_and_unknown_user_get_the_same_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("known@example.com").await;
    let (s1, wrong) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": "known@example.com", "password": "nope nope nope" }),
        )
        .await;
    let (s2, unknown) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": "ghost@example.com", "password": "nope nope nope" }),
        )
        .await;
    assert_error(s1, &wrong, 401, "INVALID_CREDENTIALS");
    assert_error(s2, &unknown, 401, "INVALID_CREDENTIALS");
    assert_eq!(wrong["error"]["message"], unknown["error"]["message"]);
    assert_eq!(wrong["error"]["details"], unknown["error"]["details"]);
}

async fn a_disabled_account_is_refused_after_a_correct_password(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("off@example.com").await;
    let admin = Admin::connect(app.settings.build().unwrap()).await.unwrap();
    admin.set_disabled("off@example.com", true).await.unwrap();
    // Its sessions ended at once.
    let (status, body) = app
        .get_auth("/v1/auth/me", tokens["token"].as_str().unwrap())
        .await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    let (status, body) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": "off@example.com", "password": "wrong password" }),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    let (status, body) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": "off@example.com", "password": PASSWORD }),
        )
        .await;
    assert_error(status, &body, 403, "ACCOUNT_DISABLED");
    admin.set_disabled("off@example.com", false).await.unwrap();
    app.login("off@example.com", json!({})).await;
}

async fn policy_never_returns_tokens_at_step_one(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("login_verification", "never");
    })
    .await;
    app.signup("never@example.com").await;
    let (status, body) = app
        .post("/v1/auth/login", json!({ "email_or_username": "never@example.com", "password": PASSWORD, "device_id": "d1" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["device_id"], "d1");
    assert_eq!(body["requires_2fa"], false);
    let (status, _) = app
        .get_auth("/v1/auth/me", body["token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn policy_new_device_asks_for_a_code_only_on_new_devices(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("login_verification", "new_device");
    })
    .await;
    app.signup("nd@example.com").await;
    let login = json!({ "email_or_username": "nd@example.com", "password": PASSWORD, "device_id": "laptop" });
    let (_, step1) = app.post("/v1/auth/login", login.clone()).await;
    assert_eq!(step1["next_step"], "email_verification", "{step1}");
    let code = app.code_for("nd@example.com").await;
    let (status, tokens) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": step1["email_key"], "verification_code": code }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["device_id"], "laptop");

    let (status, again) = app.post("/v1/auth/login", login.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        again["access_token"].is_string(),
        "known device gets tokens: {again}"
    );

    let (_, other) = app.post("/v1/auth/login", json!({ "email_or_username": "nd@example.com", "password": PASSWORD, "device_id": "phone" })).await;
    assert_eq!(other["next_step"], "email_verification", "{other}");
    let (_, none) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": "nd@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(none["next_step"], "email_verification", "{none}");
}

async fn an_unverified_account_gets_a_registration_code_at_login(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("login_verification", "never");
    })
    .await;
    app.register("late@example.com").await;
    app.code_for("late@example.com").await;
    let (status, step1) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": "late@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{step1}");
    assert_eq!(step1["is_register"], true);
    let code = app.code_for("late@example.com").await;
    let (status, tokens) = app
        .post("/v1/auth/verify", json!({ "email_key": step1["email_key"], "verification_code": code, "is_register": true }))
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["user"]["verified"], true);
}

async fn revoking_a_device_ends_only_that_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("two@example.com").await;
    let laptop = app
        .login("two@example.com", json!({ "device_id": "laptop" }))
        .await;
    let phone = app
        .login("two@example.com", json!({ "device_id": "phone" }))
        .await;
    let laptop_token = laptop["token"].as_str().unwrap();
    let phone_token = phone["token"].as_str().unwrap();
    let response = app
        .http
        .delete(app.url("/v1/auth/sessions/phone"))
        .bearer_auth(laptop_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = app.get_auth("/v1/auth/me", phone_token).await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    let (status, body) = app
        .post(
            "/v1/auth/refresh",
            json!({ "refresh_token": phone["refresh_token"] }),
        )
        .await;
    assert_error(status, &body, 401, "REFRESH_TOKEN_INVALID");
    let (status, _) = app.get_auth("/v1/auth/me", laptop_token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = read(
        app.http
            .delete(app.url("/v1/auth/sessions/phone"))
            .bearer_auth(laptop_token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 404, "NOT_FOUND");
}

async fn logout_all_ends_every_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.signup("all@example.com").await;
    let second = app
        .login("all@example.com", json!({ "device_id": "second" }))
        .await;
    let (status, body) = app
        .post_auth(
            "/v1/auth/logout-all",
            second["token"].as_str().unwrap(),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for tokens in [&first, &second] {
        let (status, body) = app
            .get_auth("/v1/auth/me", tokens["token"].as_str().unwrap())
            .await;
        assert_error(status, &body, 401, "INVALID_TOKEN");
    }
}

async fn a_new_login_on_the_same_device_replaces_its_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("same@example.com").await;
    let old = app
        .login(
            "same@example.com",
            json!({ "device_id": "tablet", "platform": "tablet" }),
        )
        .await;
    let new = app
        .login("same@example.com", json!({ "device_id": "tablet" }))
        .await;
    let (status, body) = app
        .get_auth("/v1/auth/me", old["token"].as_str().unwrap())
        .await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    let (_, sessions) = app
        .get_auth("/v1/auth/sessions", new["token"].as_str().unwrap())
        .await;
    let tablets = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["device_id"] == "tablet")
        .count();
    assert_eq!(tablets, 1, "{sessions}");
}

async fn instances_sharing_a_database_share_sessions_and_revocations(backend: Backend) {
    let app = spawn_app(backend).await;
    let (other, _stop) = app.another_instance().await;
    let tokens = app.signup("cluster@example.com").await;
    let token = tokens["token"].as_str().unwrap();
    let me_on_other = || async {
        read(
            app.http
                .get(format!("{other}/v1/auth/me"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    assert_eq!(
        me_on_other().await.0,
        StatusCode::OK,
        "the other instance verifies tokens it did not sign"
    );
    let refreshed = app
        .http
        .post(format!("{other}/v1/auth/refresh"))
        .json(&json!({ "refresh_token": tokens["refresh_token"] }));
    let (status, body) = read(refreshed.send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    app.post_auth("/v1/auth/logout", token, json!({})).await;
    // Within a second: the other instance follows the revocation log.
    let (status, body) = eventually("the other instance refuses the token", || async {
        let (status, body) = me_on_other().await;
        (status == StatusCode::UNAUTHORIZED).then_some((status, body))
    })
    .await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
}
