//! Operations: health, OpenAPI, JWKS, trace ids, restarts, mail transports,
//! and the binary as a newcomer runs it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis::clock::Clock;
use portcullis::mail::SENDS_AT_ONCE;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

both!(
    health_and_readiness,
    openapi_documents_every_endpoint,
    access_tokens_verify_with_the_published_jwks,
    trace_id_is_in_the_header_and_the_body,
    users_sessions_and_queued_mail_survive_restarts,
    messages_are_sent_side_by_side,
    sent_messages_are_marked_and_their_codes_dropped,
    a_handed_message_whose_lease_ran_short_waits_for_the_poll,
    file_transport_writes_eml_files,
    a_sent_message_is_not_sent_again_when_the_clock_jumps_past_its_lease,
);

async fn health_and_readiness(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/healthz").await.0, StatusCode::OK);
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn openapi_documents_every_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/auth/register", "post"),
        ("/v1/auth/login", "post"),
        ("/v1/auth/verify", "post"),
        ("/v1/auth/resend-email", "post"),
        ("/v1/auth/refresh", "post"),
        ("/v1/auth/logout", "post"),
        ("/v1/auth/logout-all", "post"),
        ("/v1/auth/me", "get"),
        ("/v1/auth/me", "post"),
        ("/v1/auth/sessions", "get"),
        ("/v1/auth/sessions/{device_id}", "delete"),
        ("/v1/auth/password/forgot", "post"),
        ("/v1/auth/password/reset", "post"),
        ("/v1/auth/password/change", "post"),
        ("/.well-known/jwks.json", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/openapi.json", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "TokenResponse",
        "StepOneResponse",
        "VerifyRequest",
        "LoginRequest",
        "ErrorEnvelope",
        "LoginResponse",
        "UserBody",
    ] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
}

async fn access_tokens_verify_with_the_published_jwks(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("jwt@example.com").await;
    let token = tokens["access_token"].as_str().unwrap();
    let (_, jwks) = app.get("/.well-known/jwks.json").await;
    let parts: Vec<&str> = token.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("kid in JWKS");
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    let public = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let signed = format!("{}.{}", parts[0], parts[1]);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public)
        .verify(signed.as_bytes(), &signature)
        .expect("signature verifies with the JWKS key");
    for claim in ["iss", "aud", "sub", "sid", "jti", "iat", "nbf", "exp"] {
        assert!(!claims[claim].is_null(), "claim {claim}");
    }
    assert_eq!(claims["iss"], "http://portcullis.test");
    assert_eq!(claims["sub"], tokens["user"]["id"]);

    // A token signed with another key, or unsigned, is refused.
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        URL_SAFE_NO_PAD.encode([0u8; 64])
    );
    let (status, body) = app.get_auth("/v1/auth/me", &forged).await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
    let (status, body) = app
        .get_auth("/v1/auth/me", &format!("{none_header}.{}.", parts[1]))
        .await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
}

async fn trace_id_is_in_the_header_and_the_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.http.get(app.url("/no/such/page")).send().await.unwrap();
    let header = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, body) = read(response).await;
    assert_error(status, &body, 404, "NOT_FOUND");
    assert_eq!(body["error"]["trace_id"], header.as_str());
    let response = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert!(response.headers().contains_key("x-request-id"));
}

async fn users_sessions_and_queued_mail_survive_restarts(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let tokens = app.signup("stay@example.com").await;
    let sink = app.settings.clone();

    // Mail cannot be delivered: the message waits in the outbox.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    app.settings
        .set("smtp_url", format!("smtp://127.0.0.1:{dead_port}"));
    app.restart().await;
    let key = app.register("queued@example.com").await;
    // The worker has tried: the failure is recorded, and nothing reached the sink.
    let db = app.db().await;
    let error = eventually("a failed delivery", || async {
        let (attempts, error) = sqlx::query_as::<_, (i64, Option<String>)>(
            "SELECT attempts, last_error FROM outbox WHERE recipient = 'queued@example.com'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        (attempts > 0).then_some(error)
    })
    .await;
    db.close().await;
    assert!(error.is_some());
    assert!(app.smtp.received.lock().unwrap().is_empty());

    // Back on the working server, past the retry delay: it arrives.
    app.settings = sink;
    app.restart().await;
    app.clock.advance(15);
    let code = app.code_for("queued@example.com").await;
    let (status, body) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": key, "verification_code": code }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The session from before both restarts still works.
    let (status, _) = app
        .get_auth("/v1/auth/me", tokens["token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post(
            "/v1/auth/refresh",
            json!({ "refresh_token": tokens["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The worker sends several messages at once: a mail server that is slow to
/// answer one does not hold up the others.
async fn messages_are_sent_side_by_side(backend: Backend) {
    let app = spawn_app(backend).await;
    // The mail server receives each message and holds its answer.
    let hold = app.smtp.held.write().await;
    app.register("first@example.com").await;
    app.mail_to("first@example.com").await;
    app.register("second@example.com").await;
    app.mail_to("second@example.com").await;
    drop(hold);
}

/// Sent messages are marked in the outbox together, a little after they
/// went: marked sent, tried once, and no longer holding their codes.
async fn sent_messages_are_marked_and_their_codes_dropped(backend: Backend) {
    let app = spawn_app(backend).await;
    let addresses = ["one@example.com", "two@example.com", "three@example.com"];
    for address in addresses {
        app.register(address).await;
    }
    for address in addresses {
        app.mail_to(address).await;
    }
    let db = app.db().await;
    let rows = eventually("three messages marked sent", || async {
        let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT attempts, message FROM outbox WHERE sent_at IS NOT NULL ORDER BY recipient",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        (rows.len() == addresses.len()).then_some(rows)
    })
    .await;
    db.close().await;
    assert_eq!(rows, [(1, None), (1, None), (1, None)]);
}

/// The worker sends a message handed to it only with half its lease (a
/// minute) left; one held up in its queue longer is sent by the outbox's poll
/// once the lease is over, so that no other worker can be sending it too.
async fn a_handed_message_whose_lease_ran_short_waits_for_the_poll(backend: Backend) {
    let app = spawn_app(backend).await;
    // The mail server receives as many messages as are sent at once, and
    // holds its answers.
    let hold = app.smtp.held.write().await;
    for n in 0..SENDS_AT_ONCE {
        let busy = format!("busy{n}@example.com");
        app.register(&busy).await;
        app.mail_to(&busy).await;
    }
    app.register("second@example.com").await;
    // Queued behind them, the second's lease runs down to 15 s.
    app.clock.advance(45);
    drop(hold);
    // A third message, handed over after the second, arrives: the worker
    // has passed the second over.
    app.register("third@example.com").await;
    app.mail_to("third@example.com").await;
    let early = app.smtp.received.lock().unwrap().clone();
    assert!(early.is_empty(), "{early:?}");
    // Its lease over, the poll sends it, once.
    app.clock.advance(20);
    app.mail_to("second@example.com").await;
    // Marked a little after it went (the worker marks sent messages together).
    let db = app.db().await;
    let attempts: i64 = eventually("the second message marked", || async {
        let attempts: i64 = sqlx::query_scalar(
            "SELECT attempts FROM outbox WHERE recipient = 'second@example.com'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        (attempts > 0).then_some(attempts)
    })
    .await;
    db.close().await;
    assert_eq!(attempts, 1);
}

async fn file_transport_writes_eml_files(backend: Backend) {
    let mail_dir = tempfile::tempdir().unwrap();
    let path = mail_dir.path().to_owned();
    let app = TestApp::start(backend, |s| {
        s.set("mail_transport", "file")
            .set("mail_dir", path.display().to_string());
    })
    .await;
    let key = app.register("file@example.com").await;
    let mut message = None;
    for _ in 0..200 {
        let files: Vec<_> = std::fs::read_dir(&path).unwrap().flatten().collect();
        if let Some(file) = files
            .iter()
            .find(|f| f.path().extension().is_some_and(|e| e == "eml"))
        {
            message = Some(std::fs::read_to_string(file.path()).unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let message = message.expect("an .eml file");
    assert!(message.contains("To: file@example.com"), "{message}");
    let code = code_in(&message);
    let (status, body) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": key, "verification_code": code }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

both!(
    ended_rows_are_purged_and_live_ones_kept,
    accounts_never_verified_are_purged_after_a_week
);

async fn accounts_never_verified_are_purged_after_a_week(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("kept@example.com").await;
    let body = json!({ "email": "idle@example.com", "username": "idle", "password": PASSWORD });
    let (status, _) = app.post("/v1/auth/register", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    app.code_for("idle@example.com").await;
    let db = app.db().await;
    let users = || async {
        let emails: Vec<String> = sqlx::query_scalar("SELECT email FROM users ORDER BY email")
            .fetch_all(db.pool())
            .await
            .unwrap();
        emails
    };
    let purge = |days: i64| {
        portcullis::store::retention::purge(&db, app.clock.now() + days * 86_400, 7 * 86_400)
    };
    purge(6).await.unwrap();
    assert_eq!(users().await, ["idle@example.com", "kept@example.com"]);
    purge(8).await.unwrap();
    assert_eq!(users().await, ["kept@example.com"]);
    db.close().await;
    // The address and the username are free again.
    app.clock.advance(8 * 86_400);
    let (status, step) = app.post("/v1/auth/register", body).await;
    assert_eq!(status, StatusCode::OK, "{step}");
    let code = app.code_for("idle@example.com").await;
    let verify = json!({ "email_key": step["email_key"], "verification_code": code });
    let (status, tokens) = app.post("/v1/auth/verify", verify).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["user"]["username"], "idle", "{tokens}");
}

async fn ended_rows_are_purged_and_live_ones_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    let old = app.signup("old@example.com").await;
    app.post_auth("/v1/auth/logout", old["token"].as_str().unwrap(), json!({}))
        .await;
    app.login_key("old@example.com", json!({})).await;
    app.code_for("old@example.com").await;
    app.clock.advance(2 * 86_400);
    let live = app
        .login("old@example.com", json!({ "device_id": "live" }))
        .await;

    let db = app.db().await;
    let count = |table: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(db.pool())
                .await
                .unwrap()
        }
    };
    let before = (count("sessions").await, count("email_keys").await);
    let week = 7 * 86_400;
    let deleted = portcullis::store::retention::purge(&db, app.clock.now(), week)
        .await
        .unwrap();
    assert!(
        deleted >= 3,
        "the logged-out session and the spent keys: {deleted}"
    );
    assert_eq!(
        count("sessions").await,
        before.0 - 1,
        "only the live session stays"
    );
    assert!(count("email_keys").await < before.1);
    assert_eq!(count("users").await, 1);

    let (status, _) = app
        .get_auth("/v1/auth/me", live["token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post(
            "/v1/auth/refresh",
            json!({ "refresh_token": old["refresh_token"] }),
        )
        .await;
    assert_error(status, &body, 401, "REFRESH_TOKEN_INVALID");
    db.close().await;
}

both!(mail_refused_for_good_is_not_retried);

async fn mail_refused_for_good_is_not_retried(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.register("bounce@example.com").await;
    app.signup("fine@example.com").await;
    let db = app.db().await;
    let state = || async {
        sqlx::query_as::<_, (i64, Option<i64>, Option<String>)>(
            "SELECT attempts, refused_at, last_error FROM outbox WHERE recipient = 'bounce@example.com'",
        )
        .fetch_one(db.pool())
        .await
        .unwrap()
    };
    let refused = eventually("the refusal", || async {
        let refused = state().await;
        refused.1.is_some().then_some(refused)
    })
    .await;
    assert_eq!(refused.0, 1, "{refused:?}");
    assert!(refused.2.unwrap().contains("550"));
    // Hours later, a new message is delivered and the refused one was not tried again.
    // Had it been due, it would have gone first: a worker reads the outbox as it
    // starts, before it takes a new message.
    app.clock.advance(3 * 3600);
    app.restart().await;
    let (status, body) = app
        .post(
            "/v1/auth/password/forgot",
            json!({ "email": "fine@example.com" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.mail_to("fine@example.com").await;
    assert_eq!(state().await.0, 1);
    db.close().await;
}

/// A message sent is marked in the outbox a little later (with others);
/// should the clock jump past its lease meanwhile, the outbox's poll must not
/// take it for due and send it again. Two messages sent close together leave
/// the second waiting for its mark; the poll comes once a second, so not every
/// round finds that gap (without the fix, four runs in four failed).
async fn a_sent_message_is_not_sent_again_when_the_clock_jumps_past_its_lease(backend: Backend) {
    let app = spawn_app(backend).await;
    let addresses = ["first@example.com", "second@example.com"];
    for address in addresses {
        app.signup(address).await;
    }
    for _ in 0..12 {
        for address in addresses {
            let forgot = json!({ "email": address });
            let (status, body) = app.post("/v1/auth/password/forgot", forgot).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        for address in addresses {
            app.mail_to(address).await;
        }
        app.clock.advance(15 * 60);
        // Past the next poll.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let again: Vec<_> = app.smtp.received.lock().unwrap().drain(..).collect();
        assert!(
            again.is_empty(),
            "sent again: {:?}",
            again.iter().map(|m| &m.to).collect::<Vec<_>>()
        );
    }
}
