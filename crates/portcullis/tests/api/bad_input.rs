//! Bad input on every endpoint gets the envelope with its documented code, never a 5xx.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

both!(
    malformed_bodies_get_the_documented_codes,
    wrong_fields_name_the_field,
    unknown_fields_are_refused_except_on_login_and_verify,
    wrong_methods_and_paths
);

const BODY_ENDPOINTS: &[&str] = &[
    "/v1/auth/register",
    "/v1/auth/login",
    "/v1/auth/verify",
    "/v1/auth/resend-email",
    "/v1/auth/refresh",
    "/v1/auth/password/forgot",
    "/v1/auth/password/reset",
    "/v1/auth/password/change",
];

async fn send(
    app: &TestApp,
    path: &str,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let request = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body);
    read(request.send().await.unwrap()).await
}

async fn malformed_bodies_get_the_documented_codes(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("bad@example.com").await;
    let token = tokens["token"].as_str().unwrap();
    let json = "application/json";
    for path in BODY_ENDPOINTS {
        let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
            (json, b"{\"email\": ".to_vec(), 400, "INVALID_JSON"),
            (json, b"".to_vec(), 400, "INVALID_JSON"),
            (json, b"[1, 2]".to_vec(), 400, "INVALID_JSON"),
            (json, b"\"text\"".to_vec(), 400, "INVALID_JSON"),
            (
                json,
                b"{\"email\": \"\xff\xfe\"}".to_vec(),
                400,
                "INVALID_JSON",
            ),
            ("text/plain", b"{}".to_vec(), 400, "INVALID_JSON"),
            (
                json,
                format!("{{\"email\": \"{}\"}}", "a".repeat(70 * 1024)).into_bytes(),
                413,
                "PAYLOAD_TOO_LARGE",
            ),
            (json, b"{}".to_vec(), 422, "VALIDATION_ERROR"),
        ];
        for (content_type, body, status, code) in cases {
            let (got, body) = send(&app, path, token, content_type, body).await;
            assert_error(got, &body, status, code);
        }
    }
}

async fn wrong_fields_name_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("fields@example.com").await;
    let token = tokens["token"].as_str().unwrap();
    let cases = [
        (
            "/v1/auth/register",
            json!({ "email": "x@example.com" }),
            "password",
        ),
        (
            "/v1/auth/register",
            json!({ "email": 12, "password": PASSWORD }),
            "email",
        ),
        (
            "/v1/auth/register",
            json!({ "email": "not an email", "password": PASSWORD }),
            "email",
        ),
        (
            "/v1/auth/register",
            json!({ "email": "x@example.com", "password": PASSWORD, "pasword": "typo" }),
            "pasword",
        ),
        (
            "/v1/auth/register",
            json!({ "email": "x@example.com", "password": PASSWORD, "username": "a b" }),
            "username",
        ),
        (
            "/v1/auth/login",
            json!({ "password": PASSWORD }),
            "email_or_username",
        ),
        (
            "/v1/auth/login",
            json!({ "email_or_username": "x", "password": 5 }),
            "password",
        ),
        (
            "/v1/auth/login",
            json!({ "email_or_username": "x", "password": "y", "platform": "toaster" }),
            "platform",
        ),
        (
            "/v1/auth/verify",
            json!({ "email_key": "k" }),
            "verification_code",
        ),
        (
            "/v1/auth/verify",
            json!({ "email_key": "k", "verification_code": -1 }),
            "verification_code",
        ),
        (
            "/v1/auth/verify",
            json!({ "email_key": "k", "verification_code": 1.5 }),
            "verification_code",
        ),
        (
            "/v1/auth/verify",
            json!({ "email_key": "k", "verification_code": "12345" }),
            "verification_code",
        ),
        (
            "/v1/auth/verify",
            json!({ "email_key": 1, "verification_code": 1234 }),
            "email_key",
        ),
        (
            "/v1/auth/verify",
            json!({ "email_key": "k", "verification_code": 1, "is_register": "yes" }),
            "is_register",
        ),
        (
            "/v1/auth/verify",
            json!({ "email_key": "k", "verification_code": 1, "device_info": { "latitude": 91 } }),
            "latitude",
        ),
        ("/v1/auth/resend-email", json!({}), "email_key"),
        ("/v1/auth/refresh", json!({}), "refresh_token"),
        (
            "/v1/auth/password/forgot",
            json!({ "email": "nope" }),
            "email",
        ),
        (
            "/v1/auth/password/reset",
            json!({ "email_key": "k", "verification_code": 1 }),
            "new_password",
        ),
        (
            "/v1/auth/password/change",
            json!({ "current_password": PASSWORD }),
            "new_password",
        ),
        (
            "/v1/auth/verify",
            json!({ "email_key": "k\u{0}", "verification_code": 1 }),
            "email_key",
        ),
        (
            "/v1/auth/login",
            json!({ "email_or_username": "x", "password": "y", "device_info": { "device": "\u{0}" } }),
            "device",
        ),
    ];
    for (path, body, field) in cases {
        let (status, response) = app.post_auth(path, token, body.clone()).await;
        assert_error(status, &response, 422, "VALIDATION_ERROR");
        let details = &response["error"]["details"];
        assert!(
            details
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.contains(field)),
            "{path} {body}: expected details about {field}, got {details}"
        );
    }
}

/// A typo in a field changes what happens on most endpoints (a misspelt
/// `new_password` is not set), so unknown fields are refused there; login and
/// verify ignore them because clients send device fields of their own.
async fn unknown_fields_are_refused_except_on_login_and_verify(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("extra@example.com").await;
    let token = tokens["token"].as_str().unwrap();
    let refusing = [
        (
            "/v1/auth/register",
            json!({ "email": "new@example.com", "password": PASSWORD }),
        ),
        (
            "/v1/auth/password/forgot",
            json!({ "email": "extra@example.com" }),
        ),
        (
            "/v1/auth/password/reset",
            json!({ "email_key": "k", "verification_code": 1234, "new_password": "a brand new secret" }),
        ),
        (
            "/v1/auth/password/change",
            json!({ "current_password": PASSWORD, "new_password": "a brand new secret" }),
        ),
        ("/v1/auth/resend-email", json!({ "email_key": "k" })),
        (
            "/v1/auth/refresh",
            json!({ "refresh_token": tokens["refresh_token"] }),
        ),
    ];
    for (path, mut body) in refusing {
        body["remember_me"] = json!(true);
        let (status, response) = app.post_auth(path, token, body).await;
        assert_error_details(
            status,
            &response,
            422,
            "VALIDATION_ERROR",
            json!({ "remember_me": "Unknown field" }),
        );
    }
    // Refused before anything happened: the refresh token was not spent.
    let (status, body) = app
        .post(
            "/v1/auth/refresh",
            json!({ "refresh_token": tokens["refresh_token"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, step1) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": "extra@example.com", "password": PASSWORD, "app_version": "2.1" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{step1}");
    let code = app.code_for("extra@example.com").await;
    let (status, body) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": step1["email_key"], "verification_code": code, "app_version": "2.1" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The OpenAPI document says which is which.
    let (_, doc) = app.get("/openapi.json").await;
    let schemas = &doc["components"]["schemas"];
    for refusing in [
        "RegisterRequest",
        "ForgotPasswordRequest",
        "ResetPasswordRequest",
        "ChangePasswordRequest",
        "EmailKeyRequest",
        "RefreshRequest",
    ] {
        let schema = &schemas[refusing];
        assert_eq!(
            schema["additionalProperties"], false,
            "{refusing}: {schema}"
        );
    }
    for tolerant in ["LoginRequest", "VerifyRequest"] {
        let schema = &schemas[tolerant];
        assert_ne!(
            schema["additionalProperties"], false,
            "{tolerant}: {schema}"
        );
        let description = schema["description"].as_str().unwrap_or_default();
        assert!(
            description.contains("Unknown fields are ignored"),
            "{tolerant}: {schema}"
        );
    }
}

async fn wrong_methods_and_paths(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = read(
        app.http
            .get(app.url("/v1/auth/login"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 405, "METHOD_NOT_ALLOWED");
    let (status, body) = read(
        app.http
            .delete(app.url("/v1/auth/me"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 405, "METHOD_NOT_ALLOWED");
    let tokens = app.signup("paths@example.com").await;
    let response = app
        .http
        .delete(app.url("/v1/auth/sessions/a%00b"))
        .bearer_auth(tokens["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_error(status, &body, 404, "NOT_FOUND");
    let (status, body) = app.get("/v1/nothing").await;
    assert_error(status, &body, 404, "NOT_FOUND");
    for (header, code) in [
        ("Bearer", "AUTHENTICATION_REQUIRED"),
        ("Bearer ", "AUTHENTICATION_REQUIRED"),
        ("Basic dXNlcjpwYXNz", "AUTHENTICATION_REQUIRED"),
        ("bearer a.b.c", "INVALID_TOKEN"),
        ("Token xyz", "AUTHENTICATION_REQUIRED"),
    ] {
        let response = app
            .http
            .get(app.url("/v1/auth/me"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        let (status, body) = read(response).await;
        assert_error(status, &body, 401, code);
    }
}
