//! Machine clients as `reference/client-credentials-login.txt` documents
//! them, with base URL `http://HOST/v1/clients`: the Go snippet's request and
//! every documented answer, IP allowlists, and the operator's `client` commands.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis::clock::Clock as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

both!(
    the_documented_request_gets_tokens,
    the_documented_errors,
    a_disabled_clients_tokens_stop_at_once,
    refresh_rotates_and_reuse_ends_the_session,
    allowlists_match_addresses_and_ranges,
    forwarding_headers_count_only_from_trusted_proxies,
    client_logins_have_budgets,
    an_address_out_of_tries_is_refused_for_every_client,
    concurrent_wrong_secrets_spend_the_budget_exactly,
    operators_manage_clients_from_the_cli,
);

/// Makes a client with the CLI; returns its `--json` answer.
fn create_client(app: &TestApp, extra: &[&str]) -> Value {
    let args = [&["client", "create", "--name", "billing-sync"], extra].concat();
    app.cli_json(&args)
}

/// The Go snippet's request: `{username, password}` to `{base}/auth/login`.
async fn login(app: &TestApp, username: &str, password: &str) -> (StatusCode, Value) {
    login_from(
        app,
        None,
        json!({ "username": username, "password": password }),
    )
    .await
}

async fn login_from(
    app: &TestApp,
    forwarded_for: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let base = app.url("/v1/clients");
    let mut request = app.http.post(format!("{base}/auth/login")).json(&body);
    if let Some(ip) = forwarded_for {
        request = request.header("X-Forwarded-For", ip);
    }
    read(request.send().await.unwrap()).await
}

fn credentials(client: &Value) -> (String, String) {
    (
        client["api_key"].as_str().unwrap().to_owned(),
        client["api_secret"].as_str().unwrap().to_owned(),
    )
}

/// The claims of a JWT, unverified (the server verifies; the test reads).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn at(text: &Value) -> i64 {
    let text = text.as_str().unwrap();
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

async fn client_me(app: &TestApp, token: &str) -> (StatusCode, Value) {
    app.get_auth("/v1/clients/me", token).await
}

/// The client API's envelope: its documented name, code and message.
#[track_caller]
fn assert_client_error(status: StatusCode, body: &Value, expected: u16, code: &str, message: &str) {
    assert_error(status, body, expected, code);
    assert_eq!(body["error"]["message"], message, "{body}");
}

async fn the_documented_request_gets_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = create_client(&app, &["--scope", "billing:read"]);
    let (api_key, api_secret) = credentials(&client);
    let now = app.clock.now();

    let (status, body) = login(&app, &api_key, &api_secret).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // What the Go snippet decodes, field for field and type for type.
    assert_eq!(body["success"], true);
    let data = &body["data"];
    let mut fields: Vec<&str> = data
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "access_expires_at",
            "access_token",
            "client_id",
            "refresh_expires_at",
            "refresh_token"
        ]
    );
    assert!(data["client_id"].is_i64(), "{data}");
    assert_eq!(data["client_id"], client["client_id"]);
    assert_eq!(at(&data["access_expires_at"]), now + 3600);
    assert_eq!(at(&data["refresh_expires_at"]), now + 7 * 86_400);
    let access = data["access_token"].as_str().unwrap();
    let claims = claims(access);
    assert_eq!(claims["client_id"], client["client_id"]);
    assert_eq!(claims["scope"], "billing:read");
    assert_eq!(claims["sub"], client["client_id"].to_string());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );

    let (status, me) = client_me(&app, access).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["data"]["client_id"], client["client_id"]);
    assert_eq!(me["data"]["scopes"], json!(["billing:read"]));
    // A client's token is no user's, and a user's is no client's.
    let (status, body) = app.get_auth("/v1/auth/me", access).await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    let user = app.signup("user@example.com").await;
    let (status, body) = client_me(&app, user["access_token"].as_str().unwrap()).await;
    assert_error(status, &body, 401, "UNAUTHORIZED");
}

async fn the_documented_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = create_client(&app, &[]);
    let (api_key, api_secret) = credentials(&client);

    // 400: missing or empty fields.
    for body in [
        json!({}),
        json!({ "username": api_key }),
        json!({ "password": api_secret }),
        json!({ "username": "", "password": api_secret }),
        json!({ "username": api_key, "password": "" }),
        json!({ "username": 42, "password": api_secret }),
    ] {
        let (status, answer) = login_from(&app, None, body).await;
        assert_client_error(
            status,
            &answer,
            400,
            "VALIDATION_FAILURE",
            "Username and password are required",
        );
        assert_eq!(answer["error"]["name"], "ValidationException");
    }
    // 401: an unknown client and a wrong secret are one answer.
    let (status, wrong) = login(&app, &api_key, "cs_wrong").await;
    assert_client_error(status, &wrong, 401, "UNAUTHORIZED", "Invalid credentials");
    assert_eq!(wrong["error"]["name"], "UnauthorizedError");
    let (status, unknown) = login(&app, "ck_nobody", &api_secret).await;
    assert_client_error(status, &unknown, 401, "UNAUTHORIZED", "Invalid credentials");
    let strip = |v: &Value| {
        let mut v = v.clone();
        v["error"]["trace_id"] = Value::Null;
        v["error"]["timestamp"] = Value::Null;
        v
    };
    assert_eq!(strip(&wrong), strip(&unknown));
    // 401: disabled.
    let id = client["client_id"].to_string();
    app.cli_json(&["client", "disable", &id]);
    let (status, body) = login(&app, &api_key, &api_secret).await;
    assert_client_error(
        status,
        &body,
        401,
        "UNAUTHORIZED",
        "Client account is not active",
    );
    // ... but a wrong secret still says only that.
    let (status, body) = login(&app, &api_key, "cs_wrong").await;
    assert_client_error(status, &body, 401, "UNAUTHORIZED", "Invalid credentials");
    // 403: the address is not on the list.
    app.cli_json(&["client", "enable", &id]);
    app.cli_json(&["client", "allow-ip", &id, "203.0.113.0/24"]);
    let (status, body) = login(&app, &api_key, &api_secret).await;
    assert_client_error(status, &body, 403, "FORBIDDEN", "IP address not authorized");
    assert_eq!(body["error"]["name"], "ForbiddenError");
}

async fn a_disabled_clients_tokens_stop_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = create_client(&app, &[]);
    let (api_key, api_secret) = credentials(&client);
    let (_, body) = login(&app, &api_key, &api_secret).await;
    let access = body["data"]["access_token"].as_str().unwrap().to_owned();
    let refresh = body["data"]["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(client_me(&app, &access).await.0, StatusCode::OK);

    app.cli_json(&["client", "disable", &client["client_id"].to_string()]);
    let (status, body) = client_me(&app, &access).await;
    assert_error(status, &body, 401, "UNAUTHORIZED");
    let (status, body) = app
        .post(
            "/v1/clients/auth/refresh",
            json!({ "refresh_token": refresh }),
        )
        .await;
    assert_error(status, &body, 401, "UNAUTHORIZED");
    // Enabled again, the old session stays ended: a new login is needed.
    app.cli_json(&["client", "enable", &client["client_id"].to_string()]);
    let (status, body) = client_me(&app, &access).await;
    assert_error(status, &body, 401, "UNAUTHORIZED");
    assert_eq!(login(&app, &api_key, &api_secret).await.0, StatusCode::OK);
}

async fn refresh_rotates_and_reuse_ends_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = create_client(&app, &[]);
    let (api_key, api_secret) = credentials(&client);
    let (_, first) = login(&app, &api_key, &api_secret).await;
    let old = first["data"]["refresh_token"].as_str().unwrap().to_owned();

    app.clock.advance(10);
    let (status, second) = app
        .post("/v1/clients/auth/refresh", json!({ "refresh_token": old }))
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let new = second["data"]["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(second["data"]["client_id"], client["client_id"]);
    assert_eq!(
        second["data"]["refresh_expires_at"],
        first["data"]["refresh_expires_at"]
    );
    let access = second["data"]["access_token"].as_str().unwrap().to_owned();
    assert_eq!(client_me(&app, &access).await.0, StatusCode::OK);

    // The old token after the grace window: the session ends.
    app.clock.advance(60);
    let (status, body) = app
        .post("/v1/clients/auth/refresh", json!({ "refresh_token": old }))
        .await;
    assert_error(status, &body, 401, "UNAUTHORIZED");
    let (status, body) = client_me(&app, &access).await;
    assert_error(status, &body, 401, "UNAUTHORIZED");
    let (status, body) = app
        .post("/v1/clients/auth/refresh", json!({ "refresh_token": new }))
        .await;
    assert_error(status, &body, 401, "UNAUTHORIZED");
    let (status, body) = app.post("/v1/clients/auth/refresh", json!({})).await;
    assert_client_error(
        status,
        &body,
        400,
        "VALIDATION_FAILURE",
        "refresh_token is required",
    );
}

/// A server that believes the loopback proxy's `X-Forwarded-For`.
async fn behind_a_proxy(backend: Backend) -> TestApp {
    TestApp::start(backend, |s| {
        s.set("trusted_proxies", "127.0.0.1/32");
    })
    .await
}

async fn allowlists_match_addresses_and_ranges(backend: Backend) {
    let app = behind_a_proxy(backend).await;
    let client = create_client(&app, &[]);
    let (api_key, api_secret) = credentials(&client);
    let id = client["client_id"].to_string();
    let body = json!({ "username": api_key, "password": api_secret });
    let status_from = |ip: &'static str| {
        let body = body.clone();
        let app = &app;
        async move { login_from(app, Some(ip), body).await.0.as_u16() }
    };

    // No list: every address.
    assert_eq!(status_from("198.51.100.1").await, 200);
    assert_eq!(status_from("2001:db8::1").await, 200);

    // One address, exactly (a bare address is its /32).
    app.cli_json(&["client", "allow-ip", &id, "203.0.113.7"]);
    assert_eq!(status_from("203.0.113.7").await, 200);
    assert_eq!(status_from("203.0.113.8").await, 403);
    // An IPv4-mapped IPv6 address is the IPv4 address it carries.
    assert_eq!(status_from("::ffff:203.0.113.7").await, 200);
    assert_eq!(status_from("::ffff:203.0.113.8").await, 403);

    // IPv6: one address (/128) and a /64.
    app.cli_json(&["client", "deny-ip", &id, "203.0.113.7/32"]);
    app.cli_json(&["client", "allow-ip", &id, "2001:db8::1/128"]);
    assert_eq!(status_from("2001:db8::1").await, 200);
    assert_eq!(status_from("2001:db8::2").await, 403);
    assert_eq!(status_from("203.0.113.7").await, 403);
    app.cli_json(&["client", "allow-ip", &id, "2001:db8:1::/64"]);
    assert_eq!(status_from("2001:db8:1::ffff").await, 200);
    assert_eq!(status_from("2001:db8:1:0:ffff:ffff:ffff:ffff").await, 200);
    assert_eq!(status_from("2001:db8:1:1::").await, 403);

    // /0: every IPv4 address, no IPv6 one outside the other ranges.
    app.cli_json(&["client", "allow-ip", &id, "0.0.0.0/0"]);
    assert_eq!(status_from("192.0.2.200").await, 200);
    assert_eq!(status_from("2001:db8:2::1").await, 403);

    // Refreshing is held to the list as well.
    let (_, tokens) = login_from(&app, Some("192.0.2.200"), body.clone()).await;
    let refresh = tokens["data"]["refresh_token"].clone();
    let response = app
        .http
        .post(app.url("/v1/clients/auth/refresh"))
        .header("X-Forwarded-For", "2001:db8:2::1")
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .unwrap();
    let (status, answer) = read(response).await;
    assert_error(status, &answer, 403, "FORBIDDEN");
}

async fn forwarding_headers_count_only_from_trusted_proxies(backend: Backend) {
    // No trusted proxy: the TCP peer (loopback) is the address, whatever the header says.
    let app = spawn_app(backend).await;
    let client = create_client(&app, &["--allow-ip", "203.0.113.7/32"]);
    let (api_key, api_secret) = credentials(&client);
    let body = json!({ "username": api_key, "password": api_secret });
    let (status, answer) = login_from(&app, Some("203.0.113.7"), body.clone()).await;
    assert_error(status, &answer, 403, "FORBIDDEN");
    app.cli_json(&[
        "client",
        "allow-ip",
        &client["client_id"].to_string(),
        "127.0.0.1",
    ]);
    let (status, answer) = login_from(&app, Some("198.51.100.9"), body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // Behind a trusted proxy, the header names the client.
    let proxied = behind_a_proxy(backend).await;
    let client = create_client(&proxied, &["--allow-ip", "203.0.113.7/32"]);
    let (api_key, api_secret) = credentials(&client);
    let body = json!({ "username": api_key, "password": api_secret });
    let (status, answer) = login_from(&proxied, Some("203.0.113.7"), body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, answer) = login_from(&proxied, None, body).await;
    assert_error(status, &answer, 403, "FORBIDDEN");
}

async fn client_logins_have_budgets(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("client_login_budget", "3/1m");
    })
    .await;
    let client = create_client(&app, &[]);
    let (api_key, api_secret) = credentials(&client);
    for _ in 0..3 {
        let (status, body) = login(&app, &api_key, "cs_wrong").await;
        assert_error(status, &body, 401, "UNAUTHORIZED");
    }
    let (status, body) = login(&app, &api_key, &api_secret).await;
    assert_error(status, &body, 429, "RATE_LIMITED");
    assert!(body["error"]["details"]["retry_after"].as_i64().unwrap() > 0);
    app.clock.advance(60);
    assert_eq!(login(&app, &api_key, &api_secret).await.0, StatusCode::OK);
}

/// The address's bucket is checked with the client's: once wrong secrets
/// from one address have spent it, another client's right secret from there
/// is refused too, until its window ends.
async fn an_address_out_of_tries_is_refused_for_every_client(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("client_ip_budget", "3/1m");
    })
    .await;
    let (first_key, _) = credentials(&create_client(&app, &[]));
    let (other_key, other_secret) = credentials(&create_client(&app, &[]));
    for _ in 0..3 {
        let (status, body) = login(&app, &first_key, "cs_wrong").await;
        assert_error(status, &body, 401, "UNAUTHORIZED");
    }
    let (status, body) = login(&app, &other_key, &other_secret).await;
    assert_error(status, &body, 429, "RATE_LIMITED");
    let retry_after = body["error"]["details"]["retry_after"].as_i64().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    app.clock.advance(60);
    assert_eq!(
        login(&app, &other_key, &other_secret).await.0,
        StatusCode::OK
    );
}

/// A success costs the budget nothing; wrong secrets sent all at once spend
/// it exactly, and none past it is answered 401.
async fn concurrent_wrong_secrets_spend_the_budget_exactly(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("client_login_budget", "5/1m");
    })
    .await;
    let client = create_client(&app, &[]);
    let (api_key, api_secret) = credentials(&client);
    for _ in 0..8 {
        assert_eq!(login(&app, &api_key, &api_secret).await.0, StatusCode::OK);
    }
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let (http, url) = (app.http.clone(), app.url("/v1/clients/auth/login"));
        let body = json!({ "username": api_key, "password": "cs_wrong" });
        set.spawn(async move { read(http.post(url).json(&body).send().await.unwrap()).await });
    }
    let answers = set.join_all().await;
    let refused = |status| answers.iter().filter(|(s, _)| *s == status).count();
    assert_eq!(refused(StatusCode::UNAUTHORIZED), 5, "{answers:?}");
    assert_eq!(refused(StatusCode::TOO_MANY_REQUESTS), 25, "{answers:?}");
    let (status, body) = login(&app, &api_key, &api_secret).await;
    assert_error(status, &body, 429, "RATE_LIMITED");
}

async fn operators_manage_clients_from_the_cli(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = create_client(
        &app,
        &["--allow-ip", "10.0.0.0/8", "--scope", "b", "--scope", "a"],
    );
    let id = created["client_id"].as_i64().unwrap();
    let id_text = id.to_string();
    assert!(created["api_key"].as_str().unwrap().starts_with("ck_"));
    assert!(created["api_secret"].as_str().unwrap().starts_with("cs_"));
    assert_eq!(created["name"], "billing-sync");
    assert_eq!(created["status"], "active");
    assert_eq!(created["scopes"], json!(["a", "b"]));
    assert_eq!(created["allowed_ips"], json!(["10.0.0.0/8"]));

    let list = app.cli_json(&["client", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["client_id"], id);
    assert!(list[0].get("api_secret").is_none());
    let shown = app.cli_json(&["client", "show", &id_text]);
    assert_eq!(shown["api_key"], created["api_key"]);
    assert!(!shown
        .to_string()
        .contains(created["api_secret"].as_str().unwrap()));

    let allowed = app.cli_json(&["client", "allow-ip", &id_text, "2001:db8::/32"]);
    assert_eq!(
        allowed["allowed_ips"],
        json!(["10.0.0.0/8", "2001:db8::/32"])
    );
    let denied = app.cli_json(&["client", "deny-ip", &id_text, "10.0.0.0/8"]);
    assert_eq!(denied["allowed_ips"], json!(["2001:db8::/32"]));
    let denied = app.cli_json(&["client", "deny-ip", &id_text, "2001:db8::/32"]);
    assert_eq!(denied["allowed_ips"], json!([]));
    assert_eq!(
        app.cli_json(&["client", "disable", &id_text])["status"],
        "disabled"
    );
    assert_eq!(
        app.cli_json(&["client", "enable", &id_text])["status"],
        "active"
    );

    // A new secret: the old one and the sessions it opened end.
    let (api_key, old_secret) = credentials(&created);
    let (_, tokens) = login(&app, &api_key, &old_secret).await;
    let access = tokens["data"]["access_token"].as_str().unwrap().to_owned();
    let rotated = app.cli_json(&["client", "rotate-secret", &id_text]);
    let new_secret = rotated["api_secret"].as_str().unwrap();
    assert_ne!(new_secret, old_secret);
    assert_eq!(
        login(&app, &api_key, &old_secret).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(client_me(&app, &access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, &api_key, new_secret).await.0, StatusCode::OK);

    let events: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT event, detail FROM audit_log WHERE client_id = $1 AND event LIKE 'client_c%' ORDER BY id",
    )
    .bind(id)
    .fetch_all(app.db().await.pool())
    .await
    .unwrap();
    let details: Vec<&str> = events
        .iter()
        .map(|(_, d)| d.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(
        details,
        [
            "cli",
            "allow_ip",
            "deny_ip",
            "deny_ip",
            "disabled",
            "enabled",
            "secret_rotated"
        ]
    );

    // Mistakes: a clear message and a failing exit.
    for (args, says) in [
        (vec!["client", "show", "999999"], "no client with id 999999"),
        (
            vec!["client", "allow-ip", &id_text, "not-a-range"],
            "is not an IP address or CIDR range",
        ),
        (
            vec!["client", "create", "--name", " "],
            "name: Must be 1 to 100 characters",
        ),
    ] {
        let out = app.cli(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
