//! Dev-login as `reference/dev-login.txt` documents it: an API key with the
//! `dev_login` scope, then the password, and tokens with no emailed code.

use reqwest::StatusCode;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::binary::portcullis;
use crate::helpers::*;
use portcullis::clock::Clock as _;

both!(
    dev_login_answers_as_documented,
    dev_login_refuses_as_documented,
    dev_login_does_not_exist_unless_enabled,
    dev_login_still_asks_for_totp,
    a_key_logs_in_only_its_own_account,
    dev_login_has_a_budget_per_key,
);

async fn with_dev_login(backend: Backend) -> TestApp {
    TestApp::start(backend, |s| {
        s.set("dev_login", "true");
    })
    .await
}

/// Creates an API key for the session `token` with `scopes`; returns the key.
async fn api_key(app: &TestApp, token: &str, scopes: &[&str]) -> String {
    let (status, body) = app
        .post_auth(
            "/v1/api-keys",
            token,
            json!({ "name": "dev", "scopes": scopes }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["key"].as_str().unwrap().to_owned()
}

/// The documented request: `X-API-Key` and the login name and password.
async fn dev_login(
    app: &TestApp,
    header: &str,
    key: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = app.http.post(app.url("/v1/auth/dev-login")).json(&body);
    if let Some(key) = key {
        request = request.header(header, key);
    }
    read(request.send().await.unwrap()).await
}

fn credentials(login: &str) -> Value {
    json!({ "email_or_username": login, "password": PASSWORD })
}

async fn dev_login_answers_as_documented(backend: Backend) {
    let app = with_dev_login(backend).await;
    let email = "dev@example.com";
    let tokens = app.signup(email).await;
    let key = api_key(
        &app,
        tokens["access_token"].as_str().unwrap(),
        &["dev_login"],
    )
    .await;
    let keys_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM email_keys")
        .fetch_one(app.db().await.pool())
        .await
        .unwrap();

    let (status, body) = dev_login(&app, "X-API-Key", Some(&key), credentials(email)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The documented fields.
    assert!(body["refresh_token"].is_string(), "{body}");
    assert!(body["access_token"].is_string(), "{body}");
    assert!(body["token_type"].is_string(), "{body}");
    assert!(body["expires_in"].is_i64(), "{body}");
    assert!(body["device_id"].is_string(), "{body}");
    assert_eq!(body["user"]["email"], email);
    assert_eq!(body["requires_2fa"], false);
    // No emailed code.
    let keys_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM email_keys")
        .fetch_one(app.db().await.pool())
        .await
        .unwrap();
    assert_eq!(keys_after, keys_before);
    let (status, me) = app
        .get_auth("/v1/auth/me", body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], email);

    // The `api-key` header works too, and the device fields are kept.
    let mut with_device = credentials(email);
    with_device["device_information"] = json!({ "device_id": "laptop", "platform": "linux" });
    let (status, body) = dev_login(&app, "api-key", Some(&key), with_device).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["device_id"], "laptop");

    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE event = 'login_succeeded' AND detail = 'dev_login'",
    )
    .fetch_one(app.db().await.pool())
    .await
    .unwrap();
    assert_eq!(audited, 2);
}

async fn dev_login_refuses_as_documented(backend: Backend) {
    let app = with_dev_login(backend).await;
    let email = "refused@example.com";
    let tokens = app.signup(email).await;
    let token = tokens["access_token"].as_str().unwrap();

    for key in [None, Some("ak_not_a_key"), Some("")] {
        let (status, body) = dev_login(&app, "X-API-Key", key, credentials(email)).await;
        assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");
        assert_eq!(
            body["error"]["message"],
            "Authentication required. Please provide a valid API key."
        );
        assert_eq!(
            body["error"]["system_message"],
            "Missing or invalid authorization header"
        );
        assert_eq!(body["error"]["details"], json!({}));
    }

    let unscoped = api_key(&app, token, &["sessions"]).await;
    let (status, body) = dev_login(&app, "X-API-Key", Some(&unscoped), credentials(email)).await;
    assert_error(status, &body, 403, "INSUFFICIENT_PERMISSIONS");
    assert_eq!(
        body["error"]["message"],
        "You do not have permission to access this resource."
    );
    assert_eq!(
        body["error"]["system_message"],
        "Insufficient permissions for this operation"
    );
    assert_eq!(body["error"]["details"], json!({}));

    let key = api_key(&app, token, &["dev_login"]).await;
    let wrong = json!({ "email_or_username": email, "password": "not the password" });
    let (status, body) = dev_login(&app, "X-API-Key", Some(&key), wrong).await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    // A revoked key is no key.
    let (_, list) = app.get_auth("/v1/api-keys", token).await;
    let id = list["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["scopes"] == json!(["dev_login"]))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .http
        .delete(app.url(&format!("/v1/api-keys/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = dev_login(&app, "X-API-Key", Some(&key), credentials(email)).await;
    assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");
}

async fn dev_login_does_not_exist_unless_enabled(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = "off@example.com";
    let tokens = app.signup(email).await;
    let key = api_key(
        &app,
        tokens["access_token"].as_str().unwrap(),
        &["dev_login"],
    )
    .await;
    let (status, body) = dev_login(&app, "X-API-Key", Some(&key), credentials(email)).await;
    assert_error(status, &body, 404, "NOT_FOUND");
    let (_, openapi) = app.get("/openapi.json").await;
    assert!(openapi["paths"].get("/v1/auth/dev-login").is_none());

    let on = with_dev_login(backend).await;
    let (_, openapi) = on.get("/openapi.json").await;
    assert!(openapi["paths"].get("/v1/auth/dev-login").is_some());
}

async fn dev_login_still_asks_for_totp(backend: Backend) {
    let app = with_dev_login(backend).await;
    let email = "dev-totp@example.com";
    let tokens = app.signup(email).await;
    let token = tokens["access_token"].as_str().unwrap();
    let key = api_key(&app, token, &["dev_login"]).await;
    let (_, setup) = app
        .post_auth("/v1/auth/2fa/totp/setup", token, json!({}))
        .await;
    let secret = Secret::Encoded(setup["secret"].as_str().unwrap().to_owned());
    let totp = TOTP::new_unchecked(
        Algorithm::SHA1,
        6,
        1,
        30,
        secret.to_bytes().unwrap(),
        None,
        String::new(),
    );
    let code = |time: i64| totp.generate(time as u64);
    let (status, body) = app
        .post_auth(
            "/v1/auth/2fa/totp/enable",
            token,
            json!({ "code": code(app.clock.now()) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.clock.advance(60);
    let sessions = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
            .fetch_one(app.db().await.pool())
            .await
            .unwrap()
    };
    let before = sessions().await;

    let (status, body) = dev_login(&app, "X-API-Key", Some(&key), credentials(email)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "success": true, "requires_2fa": true, "next_step": "totp" })
    );
    assert_eq!(sessions().await, before);

    let mut wrong = credentials(email);
    wrong["totp_code"] = json!(wrong_code(&code(app.clock.now())));
    let (status, body) = dev_login(&app, "X-API-Key", Some(&key), wrong).await;
    assert_error(status, &body, 401, "INVALID_TOTP_CODE");

    let mut right = credentials(email);
    right["totp_code"] = json!(code(app.clock.now()));
    let (status, body) = dev_login(&app, "X-API-Key", Some(&key), right).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
}

async fn a_key_logs_in_only_its_own_account(backend: Backend) {
    let app = with_dev_login(backend).await;
    let a = app.signup("a@example.com").await;
    app.signup("b@example.com").await;
    let key = api_key(&app, a["access_token"].as_str().unwrap(), &["dev_login"]).await;
    // B's right password with A's key: the answer of a wrong password.
    let (status, body) =
        dev_login(&app, "X-API-Key", Some(&key), credentials("b@example.com")).await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    let (status, body) =
        dev_login(&app, "X-API-Key", Some(&key), credentials("a@example.com")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["email"], "a@example.com");
}

async fn dev_login_has_a_budget_per_key(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("dev_login", "true")
            .set("dev_login_key_budget", "2/1m");
    })
    .await;
    let email = "busy@example.com";
    let tokens = app.signup(email).await;
    let key = api_key(
        &app,
        tokens["access_token"].as_str().unwrap(),
        &["dev_login"],
    )
    .await;
    for _ in 0..2 {
        let (status, body) = dev_login(&app, "X-API-Key", Some(&key), credentials(email)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = dev_login(&app, "X-API-Key", Some(&key), credentials(email)).await;
    assert_error(status, &body, 429, "RATE_LIMITED");
    app.clock.advance(60);
    let (status, body) = dev_login(&app, "X-API-Key", Some(&key), credentials(email)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Production refuses dev-login without the second opt-in, as `config check` shows.
#[test]
fn production_needs_a_second_opt_in_for_dev_login() {
    let dir = tempfile::tempdir().unwrap();
    let check = |opt_in: &str| {
        portcullis(dir.path())
            .args(["config", "check"])
            .env("PORTCULLIS_MODE", "production")
            .env("PORTCULLIS_MAIL_TRANSPORT", "file")
            .env(
                "PORTCULLIS_MASTER_KEY",
                "q8PZb8bgJXi3LJZqx1MV2Yk4iV2t6FQ7d3mXU1lzc0E=",
            )
            .env("PORTCULLIS_DEV_LOGIN", "true")
            .env("PORTCULLIS_DEV_LOGIN_IN_PRODUCTION", opt_in)
            .output()
            .unwrap()
    };
    let refused = check("false");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("PORTCULLIS_DEV_LOGIN_IN_PRODUCTION"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let accepted = check("true");
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
}
