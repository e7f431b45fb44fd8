//! The operator's `session` and `audit` commands, through the real binary,
//! on the running server's database; their `--json` parsed.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

both!(
    operators_list_and_end_sessions,
    operators_read_the_audit_log,
);

async fn operators_list_and_end_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = "sessions@example.com";
    let first = app.signup(email).await;
    let second = app.login(email, json!({ "device_id": "phone" })).await;

    let sessions = app.cli_json(&["session", "list", "--user", email]);
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let devices: Vec<&str> = sessions
        .iter()
        .map(|s| s["device_id"].as_str().unwrap())
        .collect();
    assert!(devices.contains(&"phone"), "{devices:?}");
    assert!(sessions
        .iter()
        .all(|s| s["session_id"].as_str().unwrap().starts_with("ses_")));

    let revoked = app.cli_json(&["session", "revoke", "--user", email, "--device", "phone"]);
    assert_eq!(revoked["revoked"], 1);
    let token = |t: &serde_json::Value| t["access_token"].as_str().unwrap().to_owned();
    // The server learns of it within a second (it polls SQLite, hears PostgreSQL).
    let (status, body) = eventually("the revoked session is refused", || async {
        let (status, body) = app.get_auth("/v1/auth/me", &token(&second)).await;
        (status == StatusCode::UNAUTHORIZED).then_some((status, body))
    })
    .await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    assert_eq!(
        app.get_auth("/v1/auth/me", &token(&first)).await.0,
        StatusCode::OK
    );

    let revoked = app.cli_json(&[
        "session",
        "revoke",
        "--user",
        first["user"]["id"].as_str().unwrap(),
    ]);
    assert_eq!(revoked["revoked"], 1);
    let (status, body) = eventually("the revoked session is refused", || async {
        let (status, body) = app.get_auth("/v1/auth/me", &token(&first)).await;
        (status == StatusCode::UNAUTHORIZED).then_some((status, body))
    })
    .await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    assert!(app
        .cli_json(&["session", "list", "--user", email])
        .as_array()
        .unwrap()
        .is_empty());

    let out = app.cli(&["session", "revoke", "--user", email]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no live session"));
    let out = app.cli(&["session", "list", "--user", "nobody@example.com"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user with email or id"));
}

async fn operators_read_the_audit_log(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = "audited@example.com";
    let tokens = app.signup(email).await;
    let (status, _) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": email, "password": "not the password" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let client = app.cli_json(&["client", "create", "--name", "audited"]);

    let events = app.cli_json(&["audit", "list", "--user", email]);
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    // Newest first.
    assert_eq!(kinds.first(), Some(&"login_failed"), "{kinds:?}");
    assert!(
        kinds.contains(&"registered") && kinds.contains(&"login_succeeded"),
        "{kinds:?}"
    );
    assert!(events
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["user_id"] == tokens["user"]["id"]));

    let failed = app.cli_json(&["audit", "list", "--kind", "login_failed"]);
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert_eq!(failed[0]["detail"], "invalid_credentials");
    assert!(failed[0]["at"].is_string());

    let created = app.cli_json(&["audit", "list", "--kind", "client_created"]);
    assert_eq!(created[0]["client_id"], client["client_id"]);

    let recent = app.cli_json(&["audit", "list", "--since", "1h", "--limit", "2"]);
    assert_eq!(recent.as_array().unwrap().len(), 2);
    let future = app.cli_json(&["audit", "list", "--since", "2999-01-01T00:00:00Z"]);
    assert!(future.as_array().unwrap().is_empty());

    let out = app.cli(&["audit", "list", "--since", "yesterday"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
}
