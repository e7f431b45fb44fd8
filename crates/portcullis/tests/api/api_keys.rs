//! User API keys: shown once, stored hashed, accepted in the `api-key` and
//! `X-API-Key` headers (never a query string), scoped, revocable at once.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

both!(
    a_key_is_shown_once_and_stored_hashed,
    a_key_acts_for_its_account_in_either_header,
    a_key_in_the_query_string_is_ignored,
    a_key_stops_working_when_revoked_expired_or_disabled,
    a_key_of_one_user_never_acts_for_another,
    scopes_are_enforced,
    bad_keys_are_refused_with_reasons,
    last_use_is_recorded_without_a_write_per_request,
    operators_manage_keys_from_the_cli,
);

/// Creates a key with `body` for the session `token`; returns the answer.
async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, created) = app.post_auth("/v1/api-keys", token, body).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    created
}

/// `GET path` with the key in `header`.
async fn get_with_key(app: &TestApp, path: &str, header: &str, key: &str) -> (StatusCode, Value) {
    read(
        app.http
            .get(app.url(path))
            .header(header, key)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn send_with_key(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Value) {
    read(
        app.http
            .request(method, app.url(path))
            .header("X-API-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn token(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

async fn a_key_is_shown_once_and_stored_hashed(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("once@example.com").await;
    let created = create(
        &app,
        token(&tokens),
        json!({ "name": "  CI deploys ", "scopes": ["sessions", "deploy:write", "sessions"] }),
    )
    .await;
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("ak_") && key.len() == 46, "{key}");
    assert!(created["id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(created["name"], "CI deploys");
    assert_eq!(created["scopes"], json!(["deploy:write", "sessions"]));
    assert_eq!(created["expires_at"], Value::Null);
    assert!(created["created_at"].is_string());

    let (status, list) = app.get_auth("/v1/api-keys", token(&tokens)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["api_keys"].as_array().unwrap().len(), 1);
    assert_eq!(list["api_keys"][0]["id"], created["id"]);
    assert!(list["api_keys"][0].get("key").is_none());
    assert!(!list.to_string().contains(key));

    let rows: Vec<(String, String, String, String)> =
        sqlx::query_as("SELECT id, user_id, name, key_hash FROM api_keys")
            .fetch_all(app.db().await.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    let (id, user_id, name, hash) = &rows[0];
    for column in [id, user_id, name, hash] {
        assert!(!column.contains(&key[3..]), "{column}");
    }
    assert_eq!(hash.len(), 64);
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE event = 'api_key_created' AND detail = $1",
    )
    .bind(id)
    .fetch_one(app.db().await.pool())
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

async fn a_key_acts_for_its_account_in_either_header(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("headers@example.com").await;
    let created = create(&app, token(&tokens), json!({ "name": "k" })).await;
    let key = created["key"].as_str().unwrap();
    for header in ["X-API-Key", "api-key"] {
        let (status, me) = get_with_key(&app, "/v1/auth/me", header, key).await;
        assert_eq!(status, StatusCode::OK, "{header}: {me}");
        assert_eq!(me["id"], tokens["user"]["id"]);
        assert_eq!(me["email"], "headers@example.com");
    }
}

async fn a_key_in_the_query_string_is_ignored(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("query@example.com").await;
    let created = create(&app, token(&tokens), json!({ "name": "k" })).await;
    let key = created["key"].as_str().unwrap();
    for name in ["api_key", "api-key", "key", "x-api-key"] {
        let (status, body) = app.get(&format!("/v1/auth/me?{name}={key}")).await;
        assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");
    }
}

async fn a_key_stops_working_when_revoked_expired_or_disabled(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("ends@example.com").await;
    let t = token(&tokens);

    // Revoked: the next request is refused.
    let revoked = create(&app, t, json!({ "name": "revoked" })).await;
    let key = revoked["key"].as_str().unwrap();
    assert_eq!(
        get_with_key(&app, "/v1/auth/me", "X-API-Key", key).await.0,
        200
    );
    let id = revoked["id"].as_str().unwrap();
    let response = app
        .http
        .delete(app.url(&format!("/v1/api-keys/{id}")))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = get_with_key(&app, "/v1/auth/me", "X-API-Key", key).await;
    assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");
    let (_, list) = app.get_auth("/v1/api-keys", t).await;
    assert!(list["api_keys"].as_array().unwrap().is_empty(), "{list}");
    // Revoking it again finds nothing.
    let response = app
        .http
        .delete(app.url(&format!("/v1/api-keys/{id}")))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_error(status, &body, 404, "NOT_FOUND");

    // Expired: past its time by the server's clock.
    let in_an_hour = rfc3339(app_now(&app) + 3600);
    let expiring = create(
        &app,
        t,
        json!({ "name": "expiring", "expires_at": in_an_hour }),
    )
    .await;
    assert_eq!(expiring["expires_at"], in_an_hour);
    let key = expiring["key"].as_str().unwrap();
    assert_eq!(
        get_with_key(&app, "/v1/auth/me", "api-key", key).await.0,
        200
    );
    app.clock.advance(3600);
    let (status, body) = get_with_key(&app, "/v1/auth/me", "api-key", key).await;
    assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");

    // The account disabled: its keys stop with it.
    let live = create(&app, t, json!({ "name": "live" })).await;
    let key = live["key"].as_str().unwrap();
    assert_eq!(
        get_with_key(&app, "/v1/auth/me", "api-key", key).await.0,
        200
    );
    sqlx::query("UPDATE users SET disabled = 1 WHERE email = 'ends@example.com'")
        .execute(app.db().await.pool())
        .await
        .unwrap();
    // Written behind the server's back, as the CLI does: it knows within a second.
    let (status, body) = eventually("the disabled account's key is refused", || async {
        let (status, body) = get_with_key(&app, "/v1/auth/me", "api-key", key).await;
        (status == StatusCode::UNAUTHORIZED && body["error"]["code"] == "AUTHENTICATION_REQUIRED")
            .then_some((status, body))
    })
    .await;
    assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");
}

fn app_now(app: &TestApp) -> i64 {
    use portcullis::clock::Clock as _;
    app.clock.now()
}

fn rfc3339(at: i64) -> String {
    portcullis::clock::rfc3339(at)
}

async fn a_key_of_one_user_never_acts_for_another(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.signup("a@example.com").await;
    let b = app.signup("b@example.com").await;
    let a_key = create(
        &app,
        token(&a),
        json!({ "name": "a", "scopes": ["sessions"] }),
    )
    .await;

    let (_, me) = get_with_key(
        &app,
        "/v1/auth/me",
        "X-API-Key",
        a_key["key"].as_str().unwrap(),
    )
    .await;
    assert_eq!(me["email"], "a@example.com");
    // B sees none of A's keys and cannot revoke one.
    let (_, list) = app.get_auth("/v1/api-keys", token(&b)).await;
    assert!(list["api_keys"].as_array().unwrap().is_empty(), "{list}");
    let id = a_key["id"].as_str().unwrap();
    let response = app
        .http
        .delete(app.url(&format!("/v1/api-keys/{id}")))
        .bearer_auth(token(&b))
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_error(status, &body, 404, "NOT_FOUND");
    // No account is ever named in the body (better-auth's CVE-2025-61928).
    let (status, body) = app
        .post_auth(
            "/v1/api-keys",
            token(&b),
            json!({ "name": "for a", "user_id": a["user"]["id"] }),
        )
        .await;
    assert_error_details(
        status,
        &body,
        422,
        "VALIDATION_ERROR",
        json!({ "user_id": "Unknown field" }),
    );
    let (_, list) = app.get_auth("/v1/api-keys", token(&a)).await;
    assert_eq!(list["api_keys"].as_array().unwrap().len(), 1);
    // A's key lists and ends A's sessions, never B's.
    let (_, sessions) = get_with_key(
        &app,
        "/v1/auth/sessions",
        "X-API-Key",
        a_key["key"].as_str().unwrap(),
    )
    .await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
    let b_device = b["device_id"].as_str().unwrap();
    let (status, body) = send_with_key(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/auth/sessions/{b_device}"),
        a_key["key"].as_str().unwrap(),
        json!({}),
    )
    .await;
    assert_error(status, &body, 404, "NOT_FOUND");
    assert_eq!(app.get_auth("/v1/auth/me", token(&b)).await.0, 200);
}

async fn scopes_are_enforced(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("scopes@example.com").await;
    let t = token(&tokens);
    let plain = create(&app, t, json!({ "name": "plain" })).await;
    let plain = plain["key"].as_str().unwrap();
    let sessions = create(
        &app,
        t,
        json!({ "name": "sessions", "scopes": ["sessions"] }),
    )
    .await;
    let sessions = sessions["key"].as_str().unwrap();
    let device = tokens["device_id"].as_str().unwrap().to_owned();

    // Without `sessions`: 403 on every session operation.
    use reqwest::Method;
    let session_operations = [
        (Method::GET, "/v1/auth/sessions".to_owned()),
        (Method::DELETE, format!("/v1/auth/sessions/{device}")),
        (Method::POST, "/v1/auth/logout-all".to_owned()),
    ];
    for (method, path) in &session_operations {
        let (status, body) = send_with_key(&app, method.clone(), path, plain, json!({})).await;
        assert_error(status, &body, 403, "INSUFFICIENT_PERMISSIONS");
    }
    // Keys never manage keys, log out, or change credentials, whatever their scopes.
    let session_only = [
        (Method::POST, "/v1/api-keys", json!({ "name": "minted" })),
        (Method::GET, "/v1/api-keys", json!({})),
        (Method::DELETE, "/v1/api-keys/key_0", json!({})),
        (Method::POST, "/v1/auth/logout", json!({})),
        (
            Method::POST,
            "/v1/auth/password/change",
            json!({ "current_password": PASSWORD, "new_password": "another long secret" }),
        ),
        (Method::POST, "/v1/auth/2fa/totp/setup", json!({})),
    ];
    for (method, path, body) in session_only {
        let (status, answer) = send_with_key(&app, method, path, sessions, body).await;
        assert_error(status, &answer, 403, "INSUFFICIENT_PERMISSIONS");
    }
    let (status, body) = get_with_key(&app, "/v1/auth/sessions", "api-key", sessions).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sessions"][0]["current"], false);
    let (status, body) = send_with_key(
        &app,
        Method::DELETE,
        &format!("/v1/auth/sessions/{device}"),
        sessions,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get_auth("/v1/auth/me", t).await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    let (status, body) = send_with_key(
        &app,
        Method::POST,
        "/v1/auth/logout-all",
        sessions,
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn bad_keys_are_refused_with_reasons(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("bad@example.com").await;
    let t = token(&tokens);
    let cases = [
        (
            json!({ "name": "   " }),
            json!({ "name": "Must be 1 to 100 characters" }),
        ),
        (
            json!({ "name": "x".repeat(101) }),
            json!({ "name": "Must be 1 to 100 characters" }),
        ),
        (
            json!({ "name": "k", "scopes": ["Admin"] }),
            json!({ "scopes": "`Admin` is not a scope: 1 to 64 of a-z, 0-9, '_', '.', ':', '-', starting with a letter" }),
        ),
        (
            json!({ "name": "k", "scopes": (0..33).map(|i| format!("s{i}")).collect::<Vec<_>>() }),
            json!({ "scopes": "At most 32 scopes" }),
        ),
        (
            json!({ "name": "k", "expires_at": rfc3339(app_now(&app) - 1) }),
            json!({ "expires_at": "Must be in the future" }),
        ),
        (
            json!({ "name": "k", "expires_at": "tomorrow" }),
            json!({ "expires_at": "Must be an RFC 3339 time" }),
        ),
    ];
    for (body, details) in cases {
        let (status, answer) = app.post_auth("/v1/api-keys", t, body.clone()).await;
        assert_error_details(status, &answer, 422, "VALIDATION_ERROR", details);
    }
    for key in ["ak_not_a_key", "not even prefixed", ""] {
        let (status, body) = get_with_key(&app, "/v1/auth/me", "X-API-Key", key).await;
        assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");
    }
}

async fn last_use_is_recorded_without_a_write_per_request(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("api_key_usage_flush", "1s");
    })
    .await;
    let tokens = app.signup("used@example.com").await;
    let t = token(&tokens);
    let created = create(&app, t, json!({ "name": "used" })).await;
    let (_, list) = app.get_auth("/v1/api-keys", t).await;
    assert_eq!(list["api_keys"][0]["last_used_at"], Value::Null);
    let key = created["key"].as_str().unwrap();
    for _ in 0..3 {
        assert_eq!(
            get_with_key(&app, "/v1/auth/me", "api-key", key).await.0,
            200
        );
    }
    let used_at = eventually("the key's last use to be written", || async {
        let (_, list) = app.get_auth("/v1/api-keys", t).await;
        list["api_keys"][0]["last_used_at"]
            .as_str()
            .map(str::to_owned)
    })
    .await;
    assert_eq!(used_at, rfc3339(app_now(&app)));
}

async fn operators_manage_keys_from_the_cli(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("ops@example.com").await;
    let created = app.cli_json(&[
        "apikey",
        "create",
        "--user",
        "ops@example.com",
        "--name",
        "deploy",
        "--scope",
        "sessions",
        "--scope",
        "dev_login",
        "--expires",
        "30d",
    ]);
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("ak_"));
    assert!(created["id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(created["scopes"], json!(["dev_login", "sessions"]));
    assert!(created["expires_at"].is_string());
    let (status, me) = get_with_key(&app, "/v1/auth/me", "X-API-Key", key).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], tokens["user"]["id"]);

    let list = app.cli_json(&["apikey", "list", "--user", "ops@example.com"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], created["id"]);
    assert!(!list.to_string().contains(key));

    let revoked = app.cli_json(&["apikey", "revoke", created["id"].as_str().unwrap()]);
    assert_eq!(revoked["revoked"], true);
    assert_eq!(revoked["user_id"], tokens["user"]["id"]);
    // The server learns of it within a second (it polls SQLite, hears PostgreSQL).
    let (status, body) = eventually("the revoked key is refused", || async {
        let (status, body) = get_with_key(&app, "/v1/auth/me", "X-API-Key", key).await;
        (status == StatusCode::UNAUTHORIZED).then_some((status, body))
    })
    .await;
    assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");

    // Mistakes: a clear message and a failing exit.
    let out = app.cli(&["apikey", "revoke", created["id"].as_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no live API key"));
    let out = app.cli(&[
        "apikey",
        "create",
        "--user",
        "nobody@example.com",
        "--name",
        "x",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user with email or id"));
    let out = app.cli(&[
        "apikey",
        "create",
        "--user",
        "ops@example.com",
        "--name",
        "x",
        "--scope",
        "BAD",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scopes:"));
}
