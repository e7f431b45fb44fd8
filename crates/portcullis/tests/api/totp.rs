//! The second factor: setting up TOTP, logging in with it as the
//! login-with-TOTP document shows, recovery codes, and what a login waiting
//! for its TOTP code can (nothing) obtain.

use std::process::Command;

use portcullis::clock::Clock as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::helpers::*;

both!(
    login_with_totp_answers_as_the_document_shows,
    login_with_totp_then_the_emailed_code,
    codes_one_step_either_side_are_accepted_and_two_steps_are_not,
    a_code_is_accepted_once,
    recovery_codes_each_work_once_ten_in_all,
    a_login_waiting_for_its_totp_code_holds_nothing,
    a_key_issued_before_totp_was_enabled_cannot_complete_the_login,
    wrong_totp_codes_spend_the_login_budget,
    enabling_and_disabling_end_the_other_sessions,
    setup_and_enable_refuse_what_makes_no_sense,
    the_secret_is_encrypted_at_rest,
    codes_of_an_independent_implementation_are_accepted,
    an_operator_resets_a_lost_authenticator,
);

/// The account's authenticator, as the test holds it.
struct Authenticator(TOTP);

impl Authenticator {
    fn from_base32(secret: &str) -> Self {
        let bytes = Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
        Self(TOTP::new_unchecked(
            Algorithm::SHA1,
            6,
            1,
            30,
            bytes,
            None,
            String::new(),
        ))
    }

    /// The code at `time`, shifted by `steps` time steps.
    fn code(&self, time: i64, steps: i64) -> String {
        self.0.generate((time + steps * 30) as u64)
    }
}

/// Signs up `email`, sets up TOTP and enables it with the current code; returns
/// the token body of the session that did it, the authenticator and the
/// recovery codes. The clock is then moved past the steps the enable used.
async fn with_totp(app: &TestApp, email: &str) -> (Value, Authenticator, Vec<String>) {
    let tokens = app.signup(email).await;
    let token = tokens["access_token"].as_str().unwrap();
    let (status, setup) = app
        .post_auth("/v1/auth/2fa/totp/setup", token, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let authenticator = Authenticator::from_base32(setup["secret"].as_str().unwrap());
    let code = authenticator.code(app.clock.now(), 0);
    let (status, enabled) = app
        .post_auth("/v1/auth/2fa/totp/enable", token, json!({ "code": code }))
        .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    let codes: Vec<String> = enabled["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    app.clock.advance(90);
    (tokens, authenticator, codes)
}

/// The document's request: email, password, totp_code and the device fields.
fn seed_login(email: &str, totp_code: Option<&str>) -> Value {
    let mut body = json!({
        "email": email,
        "password": PASSWORD,
        "device_id": "550e8400-e29b-41d4-a716-446655440000",
        "platform": "ios",
        "device_name": "iPhone 15 Pro",
        "fcm_token": "eyJhbGciOiJIUzI1NiIs..."
    });
    if let Some(code) = totp_code {
        body["totp_code"] = json!(code);
    }
    body
}

async fn login_with_totp_answers_as_the_document_shows(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("login_verification", "never");
    })
    .await;
    let email = "seed@example.com";
    let (_, authenticator, _) = with_totp(&app, email).await;

    // Without a code: asked for one, and nothing else.
    let (status, body) = app.post("/v1/auth/login", seed_login(email, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "success": true, "requires_2fa": true, "next_step": "totp" })
    );

    // With it: the document's 200, field for field.
    let now = app.clock.now();
    let code = authenticator.code(now, 0);
    let (status, body) = app
        .post("/v1/auth/login", seed_login(email, Some(&code)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    let data = &body["data"];
    assert_eq!(data["requires_2fa"], false);
    let user = &data["user"];
    assert!(user["id"].as_str().unwrap().starts_with("usr_"), "{user}");
    assert_eq!(user["uuid"], user["id"]);
    assert_eq!(user["username"], Value::Null);
    assert_eq!(user["email"], email);
    assert_eq!(user["role"], "USER");
    assert_eq!(user["active"], true);
    let tokens = &data["tokens"];
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["access_token"], body["access_token"]);
    assert_eq!(tokens["refresh_token"], body["refresh_token"]);
    let at = |field: &str| {
        let text = tokens[field].as_str().unwrap();
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp()
    };
    assert_eq!(at("access_token_expires_at"), now + 24 * 3600);
    assert_eq!(at("refresh_token_expires_at"), now + 30 * 86_400);
    assert_eq!(data["subscription"], Value::Null);
    // The flat token body is there too, for the documented Python and JavaScript clients.
    assert_eq!(body["requires_2fa"], false);
    assert_eq!(body["device_id"], "550e8400-e29b-41d4-a716-446655440000");
    assert_eq!(body["user"]["totp_enabled"], true);
    let (status, me) = app
        .get_auth("/v1/auth/me", body["token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");

    // The document's 401 and 422.
    let mut wrong = seed_login(email, Some(&code));
    wrong["password"] = json!("not the password");
    let (status, body) = app.post("/v1/auth/login", wrong).await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    let (status, body) = app.post("/v1/auth/login", json!({ "email": email })).await;
    assert_error_details(
        status,
        &body,
        422,
        "VALIDATION_ERROR",
        json!({ "password": "This field is required" }),
    );
}

async fn login_with_totp_then_the_emailed_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = "order@example.com";
    let (_, authenticator, _) = with_totp(&app, email).await;

    let code = authenticator.code(app.clock.now(), 0);
    let (status, step) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": email, "password": PASSWORD, "totp_code": code }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{step}");
    assert_eq!(step["next_step"], "email_verification");
    assert!(step.get("access_token").is_none(), "{step}");
    let mailed = app.code_for(email).await;
    let (status, tokens) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": step["email_key"], "verification_code": mailed }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["user"]["totp_enabled"], true);
}

/// Logs in (policy `never`) with `totp_code`; returns the status and body.
async fn totp_login(app: &TestApp, email: &str, code: &str) -> (StatusCode, Value) {
    app.post(
        "/v1/auth/login",
        json!({ "email_or_username": email, "password": PASSWORD, "totp_code": code }),
    )
    .await
}

async fn codes_one_step_either_side_are_accepted_and_two_steps_are_not(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("login_verification", "never");
    })
    .await;
    let email = "skew@example.com";
    let (_, authenticator, _) = with_totp(&app, email).await;
    let now = app.clock.now();

    let (status, body) = totp_login(&app, email, &authenticator.code(now, -2)).await;
    assert_error(status, &body, 401, "INVALID_TOTP_CODE");
    // Steps are accepted in increasing order only (each once), so the oldest goes first.
    for steps in [-1, 0, 1] {
        let (status, body) = totp_login(&app, email, &authenticator.code(now, steps)).await;
        assert_eq!(status, StatusCode::OK, "step {steps}: {body}");
        assert!(body["access_token"].is_string(), "{body}");
    }
    let (status, body) = totp_login(&app, email, &authenticator.code(now, 2)).await;
    assert_error(status, &body, 401, "INVALID_TOTP_CODE");
}

async fn a_code_is_accepted_once(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("login_verification", "never");
    })
    .await;
    let email = "replay@example.com";
    let (_, authenticator, _) = with_totp(&app, email).await;
    let code = authenticator.code(app.clock.now(), 0);

    let (status, body) = totp_login(&app, email, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = totp_login(&app, email, &code).await;
    assert_error(status, &body, 401, "INVALID_TOTP_CODE");
    // Nor is an older step's code, once a later one was used.
    let older = authenticator.code(app.clock.now(), -1);
    let (status, body) = totp_login(&app, email, &older).await;
    assert_error(status, &body, 401, "INVALID_TOTP_CODE");
    // The next step's code works.
    app.clock.advance(30);
    let next = authenticator.code(app.clock.now(), 0);
    let (status, body) = totp_login(&app, email, &next).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn recovery_codes_each_work_once_ten_in_all(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("login_verification", "never");
    })
    .await;
    let email = "recovery@example.com";
    let (_, _, codes) = with_totp(&app, email).await;
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);

    for (i, code) in codes.iter().enumerate() {
        // Typed as people type them: any case, with or without the dashes.
        let typed = match i {
            0 => code.to_uppercase(),
            1 => code.replace('-', ""),
            _ => code.clone(),
        };
        let (status, body) = totp_login(&app, email, &typed).await;
        assert_eq!(status, StatusCode::OK, "code {i}: {body}");
        assert!(body["access_token"].is_string(), "{body}");
    }
    let (status, body) = totp_login(&app, email, &codes[3]).await;
    assert_error(status, &body, 401, "INVALID_TOTP_CODE");
    let used: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'recovery_code_used'")
            .fetch_one(app.db().await.pool())
            .await
            .unwrap();
    assert_eq!(used, 10);
}

async fn a_login_waiting_for_its_totp_code_holds_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = "pending@example.com";
    let (tokens, _, _) = with_totp(&app, email).await;
    let user_id = tokens["user"]["id"].as_str().unwrap();
    let keys_before = email_keys_of(&app, user_id).await;
    let sessions_before = sessions_of(&app, user_id).await;

    let (status, body) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": email, "password": PASSWORD, "device_id": "pending-device" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({ "success": true, "requires_2fa": true, "next_step": "totp" })
    );
    // No email key (so nothing for verify), no session (so no refresh token).
    assert_eq!(email_keys_of(&app, user_id).await, keys_before);
    assert_eq!(sessions_of(&app, user_id).await, sessions_before);
}

async fn email_keys_of(app: &TestApp, user_id: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM email_keys WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(app.db().await.pool())
        .await
        .unwrap()
}

async fn sessions_of(app: &TestApp, user_id: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(app.db().await.pool())
        .await
        .unwrap()
}

async fn a_key_issued_before_totp_was_enabled_cannot_complete_the_login(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = "race@example.com";
    let tokens = app.signup(email).await;
    // Login step 1 while TOTP is still off: a key, and its code in the mail.
    let key = app.login_key(email, json!({})).await;
    let code = app.code_for(email).await;

    let token = tokens["access_token"].as_str().unwrap();
    let (_, setup) = app
        .post_auth("/v1/auth/2fa/totp/setup", token, json!({}))
        .await;
    let authenticator = Authenticator::from_base32(setup["secret"].as_str().unwrap());
    let enable = json!({ "code": authenticator.code(app.clock.now(), 0) });
    let (status, body) = app
        .post_auth("/v1/auth/2fa/totp/enable", token, enable)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": key, "verification_code": code }),
        )
        .await;
    assert_error(status, &body, 401, "VERIFICATION_EXPIRED");
}

async fn wrong_totp_codes_spend_the_login_budget(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("login_verification", "never")
            .set("login_account_budget", "3/15m");
    })
    .await;
    let email = "budget@example.com";
    let (_, authenticator, _) = with_totp(&app, email).await;
    let now = app.clock.now();
    let wrong = wrong_code(&authenticator.code(now, 0));
    for _ in 0..3 {
        let (status, body) = totp_login(&app, email, &wrong).await;
        assert_error(status, &body, 401, "INVALID_TOTP_CODE");
    }
    // The right code no longer gets a hearing.
    let (status, body) = totp_login(&app, email, &authenticator.code(now, 0)).await;
    assert_error(status, &body, 429, "TOO_MANY_LOGIN_ATTEMPTS");
    let failed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE event = 'login_failed' AND detail = 'invalid_totp_code'",
    )
    .fetch_one(app.db().await.pool())
    .await
    .unwrap();
    assert_eq!(failed, 3);
}

async fn enabling_and_disabling_end_the_other_sessions(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("login_verification", "never");
    })
    .await;
    let email = "sessions@example.com";
    let tokens = app.signup(email).await;
    let token = tokens["access_token"].as_str().unwrap();
    let login = json!({ "email_or_username": email, "password": PASSWORD, "device_id": "other" });
    let (status, other) = app.post("/v1/auth/login", login).await;
    assert_eq!(status, StatusCode::OK, "{other}");
    let other = other["access_token"].as_str().unwrap();
    let (_, setup) = app
        .post_auth("/v1/auth/2fa/totp/setup", token, json!({}))
        .await;
    let authenticator = Authenticator::from_base32(setup["secret"].as_str().unwrap());
    let enable = json!({ "code": authenticator.code(app.clock.now(), 0) });
    let (status, body) = app
        .post_auth("/v1/auth/2fa/totp/enable", token, enable)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get_auth("/v1/auth/me", other).await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    let (status, me) = app.get_auth("/v1/auth/me", token).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["totp_enabled"], true);

    app.clock.advance(90);
    let now = app.clock.now();
    let second = totp_login(&app, email, &authenticator.code(now, -1))
        .await
        .1;
    let second = second["access_token"].as_str().unwrap().to_owned();
    let disable = |password: &str, code: &str| json!({ "password": password, "code": code });
    let (status, body) = app
        .post_auth(
            "/v1/auth/2fa/totp/disable",
            token,
            disable("wrong password", &authenticator.code(now, 0)),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    let wrong = wrong_code(&authenticator.code(now, 0));
    let (status, body) = app
        .post_auth(
            "/v1/auth/2fa/totp/disable",
            token,
            disable(PASSWORD, &wrong),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_TOTP_CODE");
    let (status, body) = app
        .post_auth(
            "/v1/auth/2fa/totp/disable",
            token,
            disable(PASSWORD, &authenticator.code(now, 0)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get_auth("/v1/auth/me", &second).await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    let (_, me) = app.get_auth("/v1/auth/me", token).await;
    assert_eq!(me["totp_enabled"], false);
    // Without TOTP the login needs no code again.
    let (status, body) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
    let events: Vec<String> =
        sqlx::query_scalar("SELECT event FROM audit_log WHERE event LIKE 'totp_%' ORDER BY id")
            .fetch_all(app.db().await.pool())
            .await
            .unwrap();
    assert_eq!(events, ["totp_enabled", "totp_disabled"]);
}

async fn setup_and_enable_refuse_what_makes_no_sense(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("refuse@example.com").await;
    let token = tokens["access_token"].as_str().unwrap();
    let (status, body) = app
        .post_auth(
            "/v1/auth/2fa/totp/enable",
            token,
            json!({ "code": "123456" }),
        )
        .await;
    assert_error_details(
        status,
        &body,
        422,
        "VALIDATION_ERROR",
        json!({ "code": "No authenticator is being set up; call /v1/auth/2fa/totp/setup first" }),
    );
    let (status, body) = app
        .post_auth(
            "/v1/auth/2fa/totp/disable",
            token,
            json!({ "password": PASSWORD, "code": "123456" }),
        )
        .await;
    assert_error_details(
        status,
        &body,
        422,
        "VALIDATION_ERROR",
        json!({ "code": "Two-factor authentication is not enabled" }),
    );

    let (_, setup) = app
        .post_auth("/v1/auth/2fa/totp/setup", token, json!({}))
        .await;
    let authenticator = Authenticator::from_base32(setup["secret"].as_str().unwrap());
    let now = app.clock.now();
    let (status, body) = app
        .post_auth(
            "/v1/auth/2fa/totp/enable",
            token,
            json!({ "code": wrong_code(&authenticator.code(now, 0)) }),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_TOTP_CODE");
    let (status, body) = app
        .post_auth(
            "/v1/auth/2fa/totp/enable",
            token,
            json!({ "code": authenticator.code(now, 0), "user_id": "usr_someone_else" }),
        )
        .await;
    assert_error_details(
        status,
        &body,
        422,
        "VALIDATION_ERROR",
        json!({ "user_id": "Unknown field" }),
    );
    let (status, body) = app
        .post_auth(
            "/v1/auth/2fa/totp/enable",
            token,
            json!({ "code": authenticator.code(now, 0) }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post_auth("/v1/auth/2fa/totp/setup", token, json!({}))
        .await;
    assert_error_details(
        status,
        &body,
        422,
        "VALIDATION_ERROR",
        json!({ "totp": "Two-factor authentication is already enabled; disable it first" }),
    );
    let (status, body) = app
        .post_auth(
            "/v1/auth/2fa/totp/enable",
            token,
            json!({ "code": authenticator.code(now, 1) }),
        )
        .await;
    assert_error_details(
        status,
        &body,
        422,
        "VALIDATION_ERROR",
        json!({ "totp": "Two-factor authentication is already enabled; disable it first" }),
    );
    let (status, body) = app.post("/v1/auth/2fa/totp/setup", json!({})).await;
    assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");
}

async fn the_secret_is_encrypted_at_rest(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("rest@example.com").await;
    let token = tokens["access_token"].as_str().unwrap();
    let (status, setup) = app
        .post_auth("/v1/auth/2fa/totp/setup", token, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let secret = setup["secret"].as_str().unwrap();
    assert!(
        secret.len() >= 32,
        "160 bits are 32 base32 characters: {secret}"
    );
    let uri = setup["otpauth_uri"].as_str().unwrap();
    assert_eq!(
        uri,
        format!("otpauth://totp/Portcullis:rest%40example.com?secret={secret}&issuer=Portcullis")
    );
    let svg = setup["qr_svg"].as_str().unwrap();
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );

    let stored: Option<String> =
        sqlx::query_scalar("SELECT totp_pending FROM users WHERE email = $1")
            .bind("rest@example.com")
            .fetch_one(app.db().await.pool())
            .await
            .unwrap();
    let stored = stored.unwrap();
    assert!(stored.starts_with("v2:"), "{stored}");
    let raw = Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    let raw_hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!stored.contains(secret) && !stored.contains(&raw_hex));
}

/// The code pyotp (an independent implementation, from PyPI) computes at
/// `time` for the account an otpauth URI describes: the URI is read by
/// pyotp, as an authenticator app would.
fn pyotp_code(uri: &str, time: i64) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, pyotp; print(pyotp.parse_uri(sys.argv[1]).at(int(sys.argv[2])))",
            uri,
            &time.to_string(),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "pyotp is needed (pip install pyotp; .ci/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn codes_of_an_independent_implementation_are_accepted(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("login_verification", "never");
    })
    .await;
    let email = "pyotp@example.com";
    let tokens = app.signup(email).await;
    let token = tokens["access_token"].as_str().unwrap();
    let (_, setup) = app
        .post_auth("/v1/auth/2fa/totp/setup", token, json!({}))
        .await;
    let uri = setup["otpauth_uri"].as_str().unwrap();
    let enable = json!({ "code": pyotp_code(uri, app.clock.now()) });
    let (status, body) = app
        .post_auth("/v1/auth/2fa/totp/enable", token, enable)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.clock.advance(60);
    let (status, body) = totp_login(&app, email, &pyotp_code(uri, app.clock.now())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
}

async fn an_operator_resets_a_lost_authenticator(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = "lost@example.com";
    let (tokens, _, _) = with_totp(&app, email).await;
    let printed = app.cli_json(&["user", "totp-reset", email]);
    assert_eq!(printed["id"], tokens["user"]["id"]);
    assert_eq!(printed["totp_enabled"], false);

    let (status, body) = eventually("the reset account's sessions end", || async {
        let token = tokens["access_token"].as_str().unwrap();
        let (status, body) = app.get_auth("/v1/auth/me", token).await;
        (status == StatusCode::UNAUTHORIZED).then_some((status, body))
    })
    .await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    // Password and emailed code again, no TOTP code.
    let after = app.login(email, json!({})).await;
    assert_eq!(after["user"]["totp_enabled"], false);
    let events: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE event = 'totp_reset' AND detail = 'cli'",
    )
    .fetch_one(app.db().await.pool())
    .await
    .unwrap();
    assert_eq!(events, 1);

    // A second reset has nothing to clear: a clear message and a failing exit.
    let out = app.cli(&["user", "totp-reset", email]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not have TOTP enabled"));
}
