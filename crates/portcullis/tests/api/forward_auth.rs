//! Telling the team's other services who is calling: `/v1/auth/check`
//! (forward-auth) and `/v1/auth/introspect` (RFC 7662), and revocations
//! reaching every instance and every process without a database read per
//! request.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::outage::Proxy;

both!(
    check_names_the_user_of_a_token,
    check_names_the_holder_of_an_api_key_and_a_client_token,
    check_refuses_in_the_envelope,
    check_answers_without_the_database,
    revocations_by_the_cli_reach_the_server,
    logout_on_one_instance_ends_the_token_on_another,
    introspection_describes_each_kind_of_token,
    introspection_is_for_clients_and_keys_with_the_scope,
);

/// Forward-auth with `headers`; returns the status, the `x-auth-*` headers and the body.
async fn check(
    base: &str,
    method: Method,
    headers: &[(&str, &str)],
) -> (StatusCode, Vec<(String, String)>, Value) {
    let http = reqwest::Client::new();
    let mut request = http.request(method, format!("{base}/v1/auth/check"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let mut auth: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-auth-"))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    auth.sort();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, auth, body)
}

fn bearer(token: &Value) -> String {
    format!("Bearer {}", token.as_str().unwrap())
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = expected
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    pairs.sort();
    pairs
}

async fn api_key(app: &TestApp, token: &Value, scopes: Value) -> Value {
    let (status, key) = app
        .post_auth(
            "/v1/api-keys",
            token.as_str().unwrap(),
            json!({ "name": "service", "scopes": scopes }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    key
}

/// A machine client's access token, from the documented client login.
async fn client_token(app: &TestApp) -> (Value, Value) {
    let client = app.cli_json(&["client", "create", "--name", "gateway", "--json"]);
    let (status, body) = app
        .post(
            "/v1/clients/auth/login",
            json!({ "username": client["api_key"], "password": client["api_secret"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (client, body["data"].clone())
}

async fn check_names_the_user_of_a_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("ada@example.com").await;
    let me = app
        .get_auth("/v1/auth/me", tokens["access_token"].as_str().unwrap())
        .await
        .1;
    let session = app
        .get_auth(
            "/v1/auth/sessions",
            tokens["access_token"].as_str().unwrap(),
        )
        .await
        .1;
    let auth = bearer(&tokens["access_token"]);
    // Proxies send the original method: every one is answered alike.
    for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
        let (status, headers, _) = check(&app.base, method, &[("authorization", &auth)]).await;
        assert_eq!(status, StatusCode::OK);
        let sid = headers
            .iter()
            .find(|(n, _)| n == "x-auth-session-id")
            .map(|(_, v)| v.clone())
            .expect("a session id");
        assert_eq!(
            headers,
            pairs(&[
                ("x-auth-user-id", me["id"].as_str().unwrap()),
                ("x-auth-email", "ada@example.com"),
                ("x-auth-session-id", &sid),
            ])
        );
        assert!(sid.starts_with("ses_"), "{session}");
    }
    let (status, headers, _) = check(&app.base, Method::HEAD, &[("authorization", &auth)]).await;
    assert_eq!((status, headers.len()), (StatusCode::OK, 3));

    // Ended by logout: refused at once on this instance.
    app.post_auth(
        "/v1/auth/logout",
        tokens["access_token"].as_str().unwrap(),
        json!({}),
    )
    .await;
    let (status, headers, body) = check(&app.base, Method::GET, &[("authorization", &auth)]).await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    assert!(headers.is_empty());
}

async fn check_names_the_holder_of_an_api_key_and_a_client_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("keys@example.com").await;
    let user_id = app
        .get_auth("/v1/auth/me", tokens["access_token"].as_str().unwrap())
        .await
        .1["id"]
        .clone();
    let key = api_key(&app, &tokens["access_token"], json!(["reports", "billing"])).await;
    let key = key["key"].as_str().unwrap();
    for header in ["x-api-key", "api-key"] {
        let (status, headers, _) = check(&app.base, Method::GET, &[(header, key)]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers,
            pairs(&[
                ("x-auth-user-id", user_id.as_str().unwrap()),
                ("x-auth-email", "keys@example.com"),
                ("x-auth-scopes", "billing reports"),
            ])
        );
    }

    let (client, data) = client_token(&app).await;
    let auth = bearer(&data["access_token"]);
    let (status, headers, _) = check(&app.base, Method::GET, &[("authorization", &auth)]).await;
    assert_eq!(status, StatusCode::OK);
    let client_id = client["client_id"].to_string();
    assert!(headers.contains(&("x-auth-client-id".into(), client_id)));
    assert!(headers
        .iter()
        .any(|(n, v)| n == "x-auth-session-id" && v.starts_with("cls_")));
    assert!(!headers.iter().any(|(n, _)| n == "x-auth-user-id"));

    // Disabling the client ends its tokens (the CLI is another process).
    let id = client["client_id"].to_string();
    app.cli(&["client", "disable", &id]);
    eventually("the disabled client's token is refused", || async {
        let (status, _, _) = check(&app.base, Method::GET, &[("authorization", &auth)]).await;
        (status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
}

async fn check_refuses_in_the_envelope(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("no@example.com").await;
    let (status, headers, body) = check(&app.base, Method::GET, &[]).await;
    assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");
    assert!(headers.is_empty());
    let (status, _, body) = check(
        &app.base,
        Method::GET,
        &[("authorization", "Bearer not.a.token")],
    )
    .await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    let (status, _, body) = check(&app.base, Method::GET, &[("x-api-key", "ak_unknown")]).await;
    assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");
    // Forged identity headers from the caller are not echoed back.
    let (status, headers, _) = check(
        &app.base,
        Method::GET,
        &[
            ("x-auth-user-id", "usr_admin"),
            ("authorization", "Bearer x"),
        ],
    )
    .await;
    assert_eq!((status, headers.len()), (StatusCode::UNAUTHORIZED, 0));

    let auth = bearer(&tokens["access_token"]);
    let ttl = app.settings.build().unwrap().access_ttl.as_secs() as i64;
    app.clock.advance(ttl);
    let (status, _, body) = check(&app.base, Method::GET, &[("authorization", &auth)]).await;
    assert_error(status, &body, 401, "TOKEN_EXPIRED");
}

/// The check path reads nothing from the database: with the database gone
/// (every connection cut), a token and a key seen before still pass.
async fn check_answers_without_the_database(backend: Backend) {
    let proxy = Proxy::start().await;
    let app = TestApp::start(backend, |s| {
        if backend == Backend::Postgres {
            let direct = s.get("database_url").unwrap().to_owned();
            let through = format!("127.0.0.1:{}", proxy.port);
            s.set("database_url", direct.replace("127.0.0.1:5432", &through));
        }
    })
    .await;
    let tokens = app.signup("offline@example.com").await;
    let key = api_key(&app, &tokens["access_token"], json!([])).await;
    let key = key["key"].as_str().unwrap();
    let auth = bearer(&tokens["access_token"]);
    assert_eq!(
        check(&app.base, Method::GET, &[("x-api-key", key)]).await.0,
        StatusCode::OK
    );

    match backend {
        Backend::Postgres => proxy.cut(),
        // SQLite cannot be cut off: take its tables away instead.
        Backend::Sqlite => {
            let db = app.db().await;
            for table in ["sessions", "api_keys", "users"] {
                sqlx::query(&format!("ALTER TABLE {table} RENAME TO gone_{table}"))
                    .execute(db.pool())
                    .await
                    .unwrap();
            }
        }
    }
    let (status, body) = app
        .get_auth("/v1/auth/me", tokens["access_token"].as_str().unwrap())
        .await;
    assert!(status.is_server_error(), "{status} {body}");
    for _ in 0..3 {
        assert_eq!(
            check(&app.base, Method::GET, &[("authorization", &auth)])
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            check(&app.base, Method::GET, &[("x-api-key", key)]).await.0,
            StatusCode::OK
        );
    }
}

async fn revocations_by_the_cli_reach_the_server(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("cli@example.com").await;
    let key = api_key(&app, &tokens["access_token"], json!([])).await;
    let (key, key_id) = (key["key"].as_str().unwrap(), key["id"].as_str().unwrap());
    let auth = bearer(&tokens["access_token"]);
    let refused = |headers: Vec<(&'static str, String)>| {
        let base = app.base.clone();
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let (status, _, _) = check(&base, Method::GET, &headers).await;
            (status == StatusCode::UNAUTHORIZED).then_some(())
        }
    };
    assert_eq!(
        check(&app.base, Method::GET, &[("x-api-key", key)]).await.0,
        StatusCode::OK
    );
    app.cli(&["apikey", "revoke", key_id]);
    eventually("the revoked key is refused", || {
        refused(vec![("x-api-key", key.to_owned())])
    })
    .await;

    assert_eq!(
        check(&app.base, Method::GET, &[("authorization", &auth)])
            .await
            .0,
        StatusCode::OK
    );
    app.cli(&["session", "revoke", "--user", "cli@example.com"]);
    eventually("the revoked session is refused", || {
        refused(vec![("authorization", auth.clone())])
    })
    .await;

    // Disabling the account refuses its keys, which were remembered.
    let tokens = app.login("cli@example.com", json!({})).await;
    let key = api_key(&app, &tokens["access_token"], json!([])).await;
    let key = key["key"].as_str().unwrap();
    assert_eq!(
        check(&app.base, Method::GET, &[("x-api-key", key)]).await.0,
        StatusCode::OK
    );
    app.cli(&["user", "disable", "cli@example.com"]);
    eventually("the disabled account's key is refused", || {
        refused(vec![("x-api-key", key.to_owned())])
    })
    .await;
    let auth = bearer(&tokens["access_token"]);
    eventually("the disabled account's token is refused", || {
        refused(vec![("authorization", auth.clone())])
    })
    .await;
}

/// Two instances on one database: a logout on one ends the token on the
/// other; on PostgreSQL also after the other lost its database connections
/// while the logout happened (it catches up once it is back).
async fn logout_on_one_instance_ends_the_token_on_another(backend: Backend) {
    let app = spawn_app(backend).await;
    let proxy = Proxy::start().await;
    let (other, _stop) = app
        .another_instance_with(|s| {
            if backend == Backend::Postgres {
                let direct = s.get("database_url").unwrap().to_owned();
                let through = format!("127.0.0.1:{}", proxy.port);
                s.set("database_url", direct.replace("127.0.0.1:5432", &through));
            }
        })
        .await;
    let ended_on_other = |auth: String| {
        let other = other.clone();
        move || {
            let (other, auth) = (other.clone(), auth.clone());
            async move {
                let (status, _, _) = check(&other, Method::GET, &[("authorization", &auth)]).await;
                (status == StatusCode::UNAUTHORIZED).then_some(())
            }
        }
    };
    let first = app.signup("two@example.com").await;
    let auth = bearer(&first["access_token"]);
    assert_eq!(
        check(&other, Method::GET, &[("authorization", &auth)])
            .await
            .0,
        StatusCode::OK
    );
    app.post_auth(
        "/v1/auth/logout",
        first["access_token"].as_str().unwrap(),
        json!({}),
    )
    .await;
    eventually("the other instance refuses the token", ended_on_other(auth)).await;

    if backend == Backend::Postgres {
        let second = app
            .login("two@example.com", json!({ "device_id": "b" }))
            .await;
        let auth = bearer(&second["access_token"]);
        assert_eq!(
            check(&other, Method::GET, &[("authorization", &auth)])
                .await
                .0,
            StatusCode::OK
        );
        proxy.cut();
        app.post_auth(
            "/v1/auth/logout",
            second["access_token"].as_str().unwrap(),
            json!({}),
        )
        .await;
        // Cut off, the other instance cannot have heard of it.
        assert_eq!(
            check(&other, Method::GET, &[("authorization", &auth)])
                .await
                .0,
            StatusCode::OK
        );
        proxy.restore().await;
        eventually("the other instance catches up", ended_on_other(auth)).await;
    }
}

async fn introspect(app: &TestApp, auth: (&str, &str), body: Value) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url("/v1/auth/introspect"))
        .header(auth.0, auth.1)
        .json(&body)
        .send()
        .await
        .unwrap();
    read(response).await
}

async fn introspection_describes_each_kind_of_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("intro@example.com").await;
    let me = app
        .get_auth("/v1/auth/me", tokens["access_token"].as_str().unwrap())
        .await
        .1;
    let (client, data) = client_token(&app).await;
    let caller = bearer(&data["access_token"]);
    let caller = ("authorization", caller.as_str());

    let (status, body) = introspect(&app, caller, json!({ "token": tokens["access_token"] })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "access_token");
    assert_eq!(body["sub"], me["id"]);
    assert_eq!(body["email"], "intro@example.com");
    assert_eq!(body["iss"], "http://portcullis.test");
    let exp = body["exp"].as_i64().unwrap();
    assert_eq!(
        exp - body["iat"].as_i64().unwrap(),
        tokens["expires_in"].as_i64().unwrap()
    );
    assert!(body["sid"].as_str().unwrap().starts_with("ses_"));

    let (_, body) = introspect(&app, caller, json!({ "token": tokens["refresh_token"] })).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["sub"], me["id"]);
    assert!(body.get("client_id").is_none());

    let (_, body) = introspect(&app, caller, json!({ "token": data["refresh_token"] })).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], client["client_id"].to_string());

    let key = api_key(&app, &tokens["access_token"], json!(["reports"])).await;
    let (_, body) = introspect(&app, caller, json!({ "token": key["key"] })).await;
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(
        (body["token_type"].as_str(), body["scope"].as_str()),
        (Some("api_key"), Some("reports"))
    );
    assert_eq!(body["jti"], key["id"]);

    // A form, as OAuth libraries send it (RFC 7662 §2.1).
    let response = app
        .http
        .post(app.url("/v1/auth/introspect"))
        .header(caller.0, caller.1)
        .form(&[
            ("token", tokens["access_token"].as_str().unwrap()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(
        (status, &body["active"]),
        (StatusCode::OK, &json!(true)),
        "{body}"
    );

    // Anything not valid now is only `{"active": false}`.
    let rotated = app
        .post(
            "/v1/auth/refresh",
            json!({ "refresh_token": tokens["refresh_token"] }),
        )
        .await
        .1;
    for token in [
        json!("garbage"),
        json!("rt_unknown"),
        json!("ak_unknown"),
        tokens["refresh_token"].clone(),
    ] {
        let (status, body) = introspect(&app, caller, json!({ "token": token })).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!({ "active": false })),
            "{token}"
        );
    }
    app.post_auth(
        "/v1/auth/logout",
        rotated["access_token"].as_str().unwrap(),
        json!({}),
    )
    .await;
    for token in [
        &rotated["access_token"],
        &rotated["refresh_token"],
        &tokens["access_token"],
    ] {
        let (_, body) = introspect(&app, caller, json!({ "token": token })).await;
        assert_eq!(body, json!({ "active": false }));
    }
    let (status, body) = introspect(&app, caller, json!({})).await;
    assert_error_details(
        status,
        &body,
        422,
        "VALIDATION_ERROR",
        json!({ "token": "This field is required" }),
    );
}

async fn introspection_is_for_clients_and_keys_with_the_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("who@example.com").await;
    let token = json!({ "token": tokens["access_token"] });
    let (status, body) = app.post("/v1/auth/introspect", token.clone()).await;
    assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");
    let user = bearer(&tokens["access_token"]);
    let (status, body) = introspect(&app, ("authorization", &user), token.clone()).await;
    assert_error(status, &body, 403, "INSUFFICIENT_PERMISSIONS");
    let plain = api_key(&app, &tokens["access_token"], json!([])).await;
    let (status, body) = introspect(
        &app,
        ("x-api-key", plain["key"].as_str().unwrap()),
        token.clone(),
    )
    .await;
    assert_error(status, &body, 403, "INSUFFICIENT_PERMISSIONS");
    let scoped = api_key(&app, &tokens["access_token"], json!(["introspect"])).await;
    let (status, body) =
        introspect(&app, ("x-api-key", scoped["key"].as_str().unwrap()), token).await;
    assert_eq!(
        (status, &body["active"]),
        (StatusCode::OK, &json!(true)),
        "{body}"
    );
}
