//! The documented flow end to end, as a newcomer walks it.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

both!(
    register_verify_login_verify_me_refresh_sessions_logout,
    login_by_username_and_alias_fields
);

async fn register_verify_login_verify_me_refresh_sessions_logout(backend: Backend) {
    let app = spawn_app(backend).await;

    // Register: step-1 body, code by email.
    let (status, body) = app
        .post("/v1/auth/register", json!({ "email": "Ada@Example.com", "password": PASSWORD, "username": "ada", "name": "Ada" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["requires_verification"], true);
    assert_eq!(body["next_step"], "email_verification");
    let key = body["email_key"].as_str().unwrap().to_owned();
    let mail = app.mail_to("ada@example.com").await;
    assert!(
        mail.data.contains("multipart/alternative"),
        "text and HTML parts: {}",
        mail.data
    );
    assert!(mail.data.contains("text/html"));
    let code = code_in(&mail.data);
    assert_eq!(code.len(), 4);

    // Verify the registration: the token body with its aliases.
    let (status, body) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": key, "verification_code": code.parse::<u32>().unwrap(), "is_register": true,
                    "device_info": { "device": "Chrome Browser", "platform": "web", "operating_system": "macOS 14.1",
                                     "device_id": "device-123", "location": "Zurich", "latitude": 47.37, "longitude": 8.54 } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 86_400);
    assert_eq!(body["refresh_expires_in"], 30 * 86_400);
    assert_eq!(body["device_id"], "device-123");
    assert_eq!(body["requires_2fa"], false);
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["refreshToken"], body["refresh_token"]);
    let user = &body["user"];
    assert!(
        user["id"].as_str().unwrap().starts_with("usr_")
            && user["id"].as_str().unwrap().len() == 36
    );
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["username"], "ada");
    assert_eq!(user["verified"], true);
    assert_eq!(user["totp_enabled"], false);
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));

    // Log in again (the documented client: step 1, then the code as a number).
    let (status, step1) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": "ada@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{step1}");
    assert_eq!(
        step1["message"],
        "Login credentials verified. Please check your email for verification code."
    );
    assert_eq!(step1["email"], "ada@example.com");
    assert!(
        step1.get("access_token").is_none(),
        "no token before the code"
    );
    let code = app.code_for("ada@example.com").await;
    let (status, tokens) = app
        .post("/v1/auth/verify", json!({ "email_key": step1["email_key"], "verification_code": code.parse::<u32>().unwrap() }))
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["token"].as_str().unwrap();

    // Me, with the Bearer token.
    let (status, me) = app.get_auth("/v1/auth/me", access).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["name"], "Ada");

    // Refresh: a new access token, and the documented `token` alias.
    let (status, refreshed) = app
        .post(
            "/v1/auth/refresh",
            json!({ "refresh_token": tokens["refreshToken"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert!(refreshed["token"].as_str().unwrap().len() > 20);
    assert_eq!(refreshed["device_id"], tokens["device_id"]);
    let (status, _) = app
        .get_auth("/v1/auth/me", refreshed["token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);

    // Sessions: the first device and this one.
    let (status, sessions) = app.get_auth("/v1/auth/sessions", access).await;
    assert_eq!(status, StatusCode::OK, "{sessions}");
    let list = sessions["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{sessions}");
    let first = list
        .iter()
        .find(|s| s["device_id"] == "device-123")
        .unwrap();
    assert_eq!(first["device_name"], "Chrome Browser");
    assert_eq!(first["platform"], "web");
    assert_eq!(first["operating_system"], "macOS 14.1");
    assert_eq!(first["location"], "Zurich");
    assert_eq!(first["latitude"], 47.37);
    assert_eq!(first["ip"], "127.0.0.1");
    assert_eq!(first["current"], false);
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);

    // Revoke the first device, then log out of this one.
    let response = app
        .http
        .delete(app.url("/v1/auth/sessions/device-123"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, sessions) = app.get_auth("/v1/auth/sessions", access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
    let (status, body) = app.post_auth("/v1/auth/logout", access, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get_auth("/v1/auth/me", access).await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    let (status, body) = app
        .post(
            "/v1/auth/refresh",
            json!({ "refresh_token": tokens["refresh_token"] }),
        )
        .await;
    assert_error(status, &body, 401, "REFRESH_TOKEN_INVALID");
}

async fn login_by_username_and_alias_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = app
        .post(
            "/v1/auth/register",
            json!({ "email": "lin@example.com", "username": "Lin", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = app.code_for("lin@example.com").await;
    let (status, _) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": body["email_key"], "code": code, "is_register": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // `email` alias, username in another case, top-level device fields as the mobile docs send them.
    let (status, step1) = app
        .post(
            "/v1/auth/login",
            json!({ "email": "LIN", "password": PASSWORD, "device_id": "550e8400-e29b-41d4-a716-446655440000",
                    "platform": "ios", "device_name": "iPhone 15 Pro", "fcm_token": "fcm-abc" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{step1}");
    let code = app.code_for("lin@example.com").await;
    let (status, tokens) = app
        .post("/v1/auth/verify", json!({ "email_key": step1["email_key"], "verification_code": code, "is_register": false }))
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["device_id"], "550e8400-e29b-41d4-a716-446655440000");
    let (_, sessions) = app
        .get_auth("/v1/auth/sessions", tokens["token"].as_str().unwrap())
        .await;
    let current = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()
        .clone();
    assert_eq!(current["platform"], "ios");
    assert_eq!(current["device_name"], "iPhone 15 Pro");

    // No device id: one is generated.
    let tokens = app.login("lin@example.com", json!({})).await;
    assert!(!tokens["device_id"].as_str().unwrap().is_empty());
}
