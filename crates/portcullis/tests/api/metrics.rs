//! `GET /metrics`: counters that move as the flows run.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

both!(
    counters_move_as_flows_run,
    mail_failures_and_the_outbox_are_counted
);

/// The metrics as served, and their content type.
async fn scrape(app: &TestApp) -> (String, String) {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (content_type, response.text().await.unwrap())
}

/// The value of the sample whose name and labels are `series`, or 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

async fn counters_move_as_flows_run(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("login_account_budget", "2/15m");
    })
    .await;
    let (content_type, before) = scrape(&app).await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(before.trim_end().ends_with("# EOF"), "{before}");
    let login_401 = r#"portcullis_http_requests_total{route="/v1/auth/login",status="401"}"#;
    assert_eq!(sample(&before, login_401), 0.0);

    let tokens = app.signup("counted@example.com").await;
    let wrong = json!({ "email_or_username": "counted@example.com", "password": "not it at all" });
    for _ in 0..2 {
        assert_eq!(app.post("/v1/auth/login", wrong.clone()).await.0, 401);
    }
    assert_eq!(app.post("/v1/auth/login", wrong).await.0, 429);
    let refresh = json!({ "refresh_token": tokens["refresh_token"] });
    assert_eq!(
        app.post("/v1/auth/refresh", refresh).await.0,
        StatusCode::OK
    );
    assert_eq!(app.get("/v1/nothing-here").await.0, 404);
    // Forward-auth answers outside the router, and is counted like the rest.
    assert_eq!(app.get("/v1/auth/check").await.0, 401);

    let (_, after) = scrape(&app).await;
    let counted = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(counted(login_401), 2.0, "{after}");
    assert_eq!(
        counted(r#"portcullis_http_requests_total{route="/v1/auth/login",status="429"}"#),
        1.0
    );
    assert_eq!(
        counted(r#"portcullis_http_requests_total{route="/v1/auth/register",status="200"}"#),
        1.0
    );
    assert_eq!(
        counted(r#"portcullis_http_requests_total{route="unmatched",status="404"}"#),
        1.0
    );
    assert_eq!(
        counted(r#"portcullis_http_requests_total{route="/v1/auth/check",status="401"}"#),
        1.0
    );
    assert_eq!(
        counted(r#"portcullis_http_request_duration_seconds_count{route="/v1/auth/login"}"#),
        3.0
    );
    assert!(
        sample(
            &after,
            r#"portcullis_http_request_duration_seconds_sum{route="/v1/auth/login"}"#
        ) > 0.0
    );
    assert_eq!(
        counted(r#"portcullis_security_events_total{event="login_failed"}"#),
        2.0
    );
    assert_eq!(
        counted(r#"portcullis_security_events_total{event="budget_exhausted"}"#),
        1.0
    );
    assert_eq!(
        counted(r#"portcullis_security_events_total{event="code_sent"}"#),
        1.0
    );
    assert_eq!(
        counted(r#"portcullis_security_events_total{event="registered"}"#),
        1.0
    );
    assert_eq!(counted(r#"portcullis_refreshes_total{holder="user"}"#), 1.0);
    assert_eq!(sample(&after, "portcullis_hashing_queue_depth"), 0.0);
}

async fn mail_failures_and_the_outbox_are_counted(backend: Backend) {
    // A mail server that is not there: every delivery fails and the message waits.
    let app = TestApp::start(backend, |s| {
        s.set("smtp_url", "smtp://127.0.0.1:9");
    })
    .await;
    app.register("waiting@example.com").await;
    let (_, text) = scrape(&app).await;
    assert_eq!(sample(&text, "portcullis_outbox_depth"), 1.0, "{text}");
    eventually("a failed delivery to be counted", || async {
        let (_, text) = scrape(&app).await;
        (sample(&text, "portcullis_mail_delivery_failures_total") >= 1.0).then_some(())
    })
    .await;
}
