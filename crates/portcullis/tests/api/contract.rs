//! The API's contract: `/openapi.json` states every answer an operation
//! gives, each error in the envelope, and the server keeps to it.

use portcullis::clock::{rfc3339, Clock};
use portcullis_proto::ErrorCode;
use serde_json::{json, Value};

use crate::helpers::*;

both!(
    every_error_answer_is_documented_with_the_envelope,
    flows_document_the_codes_they_return,
    unreadable_path_parameters_answer_in_the_envelope,
    error_timestamps_follow_the_server_clock,
);

async fn openapi(app: &TestApp) -> Value {
    let (status, doc) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    doc
}

/// Every (method, path, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            found.push((method.to_uppercase(), path.clone(), operation.clone()));
        }
    }
    found
}

/// The codes a response's description names: its upper-case words that are codes.
fn codes_in(description: &str) -> Vec<ErrorCode> {
    description
        .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
        .filter(|word| word.len() > 1)
        .filter_map(|word| match serde_json::from_value(json!(word)) {
            Ok(code) => Some(code),
            // Upper-case words without `_` may be plain words ("IP", "JWT").
            Err(_) if word.contains('_') => panic!("{word} in {description:?} is no error code"),
            Err(_) => None,
        })
        .collect()
}

async fn every_error_answer_is_documented_with_the_envelope(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = openapi(&app).await;
    let operations = operations(&doc);
    assert!(operations.len() >= 18, "{}", operations.len());
    for (method, path, operation) in operations {
        let responses = operation["responses"].as_object().unwrap();
        let has = |status: &str| responses.contains_key(status);
        let mut expected = Vec::new();
        if !operation["requestBody"].is_null() {
            expected.extend(["400", "408", "413", "422", "500", "503"]);
        }
        if operation["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
        {
            expected.extend(["401", "500", "503"]);
        }
        let parameters = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if parameters.iter().any(|p| p["in"] == "path") {
            expected.push("404");
        }
        for status in expected {
            assert!(has(status), "{method} {path} does not document {status}");
        }
        for (status, response) in responses {
            if status.starts_with('2') {
                continue;
            }
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorEnvelope",
                "{method} {path} {status}"
            );
            let description = response["description"].as_str().unwrap();
            let codes = codes_in(description);
            assert!(!codes.is_empty(), "{method} {path} {status}: no code named");
            for code in codes {
                assert_eq!(
                    code.status().to_string(),
                    *status,
                    "{method} {path}: {code:?} documented under {status}"
                );
            }
        }
    }
    let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    for code in [
        "VALIDATION_ERROR",
        "RATE_LIMITED",
        "INSUFFICIENT_PERMISSIONS",
    ] {
        assert!(codes.as_array().unwrap().contains(&json!(code)), "{codes}");
    }
}

async fn flows_document_the_codes_they_return(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = openapi(&app).await;
    let cases: &[(&str, &str, &[&str])] = &[
        ("post", "/v1/auth/register", &["WEAK_PASSWORD"]),
        (
            "post",
            "/v1/auth/login",
            &["INVALID_CREDENTIALS", "ACCOUNT_DISABLED"],
        ),
        (
            "post",
            "/v1/auth/verify",
            &[
                "INVALID_VERIFICATION_CODE",
                "VERIFICATION_EXPIRED",
                "VERIFICATION_ATTEMPTS_EXCEEDED",
                "ACCOUNT_DISABLED",
            ],
        ),
        (
            "post",
            "/v1/auth/resend-email",
            &[
                "VERIFICATION_EXPIRED",
                "VERIFICATION_ATTEMPTS_EXCEEDED",
                "RESEND_TOO_SOON",
            ],
        ),
        (
            "post",
            "/v1/auth/refresh",
            &["REFRESH_TOKEN_INVALID", "REFRESH_TOKEN_REUSED"],
        ),
        (
            "delete",
            "/v1/auth/sessions/{device_id}",
            &["NOT_FOUND", "INVALID_TOKEN"],
        ),
        (
            "post",
            "/v1/auth/password/reset",
            &[
                "INVALID_VERIFICATION_CODE",
                "VERIFICATION_EXPIRED",
                "VERIFICATION_ATTEMPTS_EXCEEDED",
                "WEAK_PASSWORD",
            ],
        ),
        (
            "post",
            "/v1/auth/password/change",
            &["INVALID_CREDENTIALS", "TOKEN_EXPIRED", "WEAK_PASSWORD"],
        ),
        ("get", "/readyz", &["SERVICE_UNAVAILABLE"]),
    ];
    for (method, path, codes) in cases {
        let responses = &doc["paths"][path][method]["responses"];
        for code in *codes {
            let code: ErrorCode = serde_json::from_value(json!(code)).unwrap();
            let answer = &responses[code.status().to_string()];
            let description = answer["description"].as_str().unwrap_or_default();
            assert!(
                codes_in(description).contains(&code),
                "{method} {path} does not document {code:?}: {responses}"
            );
        }
    }
}

async fn unreadable_path_parameters_answer_in_the_envelope(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("path@example.com").await;
    // %FF decodes to a byte that is not UTF-8: axum alone answers 400 text/plain.
    let response = app
        .http
        .delete(app.url("/v1/auth/sessions/%FF"))
        .bearer_auth(tokens["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "{response:?}"
    );
    let (status, body) = read(response).await;
    assert_error(status, &body, 404, "NOT_FOUND");

    let doc = openapi(&app).await;
    let answer = &doc["paths"]["/v1/auth/sessions/{device_id}"]["delete"]["responses"]["404"];
    assert!(!answer.is_null(), "404 is not documented");
}

async fn error_timestamps_follow_the_server_clock(backend: Backend) {
    let app = spawn_app(backend).await;
    app.clock.advance(10 * 86_400);
    let expected = rfc3339(app.clock.now());
    // One from the fallback, one from an extractor inside a route.
    let (status, body) = app.get("/v1/no/such/page").await;
    assert_error(status, &body, 404, "NOT_FOUND");
    assert_eq!(body["error"]["timestamp"], expected.as_str(), "{body}");
    let (status, body) = app.get("/v1/auth/me").await;
    assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");
    assert_eq!(body["error"]["timestamp"], expected.as_str(), "{body}");
}
