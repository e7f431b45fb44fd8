//! Abuse resistance (SPEC §6), tried as an attacker would: codes cannot be
//! guessed across keys, flows or instances; logins are budgeted per account
//! and per IP; and no answer tells whether an address has an account.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::helpers::*;

both!(
    guessing_reset_codes_across_new_keys_stops_within_the_budget,
    guessing_login_codes_across_new_keys_stops_within_the_budget,
    guessing_the_code_of_someone_elses_registration_stops_within_the_budget,
    fifty_keys_with_one_wrong_code_each_evaluate_at_most_ten,
    fifty_concurrent_wrong_guesses_on_one_key_evaluate_exactly_five,
    two_server_processes_share_the_code_budget,
    a_hundred_wrong_codes_in_a_row_lock_code_flows_for_a_day_and_tell_the_owner,
    login_failures_are_budgeted_per_account_across_instances,
    login_failures_are_budgeted_per_ip_and_forwarding_headers_only_count_from_trusted_proxies,
    a_login_refused_by_its_ips_budget_spends_nothing_of_the_accounts,
    answers_are_the_same_for_known_and_unknown_addresses,
);

/// A code of `digits` digits that is not `right`.
fn wrong_code(right: &str, nth: u32) -> String {
    let digits = right.len();
    let modulus = 10u64.pow(digits as u32);
    let right: u64 = right.parse().unwrap();
    format!("{:0digits$}", (right + 1 + u64::from(nth)) % modulus)
}

/// How many guesses the server compared: its audit log, as a reviewer reads it.
async fn guesses_evaluated(app: &TestApp) -> usize {
    let log = app.audit_log().await;
    log.iter().filter(|(e, _, _)| e == "code_failed").count()
        + app.audit_tally("code_failed").await as usize
}

#[track_caller]
fn assert_rate_limited(status: StatusCode, body: &Value) {
    assert_error(status, body, 429, "RATE_LIMITED");
    assert!(
        body["error"]["details"]["retry_after"].as_i64().unwrap() > 0,
        "{body}"
    );
}

/// The takeover loop of the security review: mint a key with `mint`, guess
/// five wrong codes on it at `path`, again and again, until the server
/// answers 429. Returns how many wrong-code answers came before it.
async fn guess_until_limited<M, F>(
    app: &TestApp,
    email: &str,
    path: &str,
    mint: M,
    extra: Value,
) -> usize
where
    M: Fn() -> F,
    F: std::future::Future<Output = String>,
{
    let mut wrong_answers = 0;
    for _ in 0..20 {
        let key = mint().await;
        let right = app.code_for(email).await;
        for nth in 0..5 {
            let mut guess =
                json!({ "email_key": key, "verification_code": wrong_code(&right, nth) });
            guess
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().cloned().unwrap_or_default());
            let (status, body) = app.post(path, guess).await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                assert_rate_limited(status, &body);
                return wrong_answers;
            }
            assert_error(status, &body, 401, "INVALID_VERIFICATION_CODE");
            wrong_answers += 1;
        }
    }
    panic!("100 wrong codes and no 429");
}

async fn guessing_reset_codes_across_new_keys_stops_within_the_budget(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("victim@example.com").await;
    let forgot = || async {
        let (status, body) = app
            .post(
                "/v1/auth/password/forgot",
                json!({ "email": "victim@example.com" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["email_key"].as_str().unwrap().to_owned()
    };
    let planted = json!({ "new_password": "the attacker's password" });
    let wrong_answers = guess_until_limited(
        &app,
        "victim@example.com",
        "/v1/auth/password/reset",
        forgot,
        planted,
    )
    .await;
    assert_eq!(
        wrong_answers, 10,
        "the address's budget is 10 wrong codes per 15 minutes"
    );
    assert_eq!(guesses_evaluated(&app).await, 10);
    // The owner's password still works; the attacker's does not.
    app.login_key("victim@example.com", json!({})).await;
    let (status, body) = app
        .post(
            "/v1/auth/login",
            json!({ "email": "victim@example.com", "password": "the attacker's password" }),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
}

async fn guessing_login_codes_across_new_keys_stops_within_the_budget(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("known@example.com").await;
    let login = || app.login_key("known@example.com", json!({}));
    let wrong_answers = guess_until_limited(
        &app,
        "known@example.com",
        "/v1/auth/verify",
        login,
        json!({}),
    )
    .await;
    assert_eq!(wrong_answers, 10);
    assert_eq!(guesses_evaluated(&app).await, 10);
    // Even the right code waits for the window; then the owner gets in.
    let key = app.login_key("known@example.com", json!({})).await;
    let right = app.code_for("known@example.com").await;
    let (status, body) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": key, "verification_code": right }),
        )
        .await;
    assert_rate_limited(status, &body);
    app.clock.advance(15 * 60);
    app.login("known@example.com", json!({})).await;
}

async fn guessing_the_code_of_someone_elses_registration_stops_within_the_budget(backend: Backend) {
    let app = spawn_app(backend).await;
    let register = || app.register("not-mine@example.com");
    let wrong_answers = guess_until_limited(
        &app,
        "not-mine@example.com",
        "/v1/auth/verify",
        register,
        json!({}),
    )
    .await;
    assert_eq!(wrong_answers, 10);
    assert_eq!(guesses_evaluated(&app).await, 10);
    let db = app.db().await;
    let verified: i64 = sqlx::query_scalar("SELECT verified FROM users WHERE email = $1")
        .bind("not-mine@example.com")
        .fetch_one(db.pool())
        .await
        .unwrap();
    db.close().await;
    assert_eq!(verified, 0, "the address was not proven");
}

/// `n` login keys of one account, all live, with the code of each.
async fn live_keys(app: &TestApp, email: &str, n: usize) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    for _ in 0..n {
        let key = app.login_key(email, json!({})).await;
        keys.push((key, app.code_for(email).await));
    }
    keys
}

/// Sends every guess at once, spread over `bases`; returns the answers.
async fn guess_concurrently(
    app: &TestApp,
    bases: &[String],
    guesses: Vec<(String, String)>,
) -> Vec<(StatusCode, Value)> {
    let mut set = JoinSet::new();
    for (i, (key, code)) in guesses.into_iter().enumerate() {
        let http = app.http.clone();
        let url = format!("{}/v1/auth/verify", bases[i % bases.len()]);
        set.spawn(async move {
            let body = json!({ "email_key": key, "verification_code": code });
            read(http.post(url).json(&body).send().await.unwrap()).await
        });
    }
    set.join_all().await
}

fn count(answers: &[(StatusCode, Value)], code: &str) -> usize {
    answers
        .iter()
        .filter(|(_, body)| body["error"]["code"] == code)
        .count()
}

async fn fifty_keys_with_one_wrong_code_each_evaluate_at_most_ten(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("live_keys_per_account", "100");
    })
    .await;
    app.signup("many@example.com").await;
    let keys = live_keys(&app, "many@example.com", 50).await;
    let guesses = keys
        .iter()
        .map(|(key, right)| (key.clone(), wrong_code(right, 0)))
        .collect();
    let answers = guess_concurrently(&app, std::slice::from_ref(&app.base), guesses).await;
    assert_eq!(
        count(&answers, "INVALID_VERIFICATION_CODE"),
        10,
        "{answers:?}"
    );
    assert_eq!(count(&answers, "RATE_LIMITED"), 40, "{answers:?}");
    assert_eq!(guesses_evaluated(&app).await, 10);
}

async fn fifty_concurrent_wrong_guesses_on_one_key_evaluate_exactly_five(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("one-key@example.com").await;
    let (key, right) = live_keys(&app, "one-key@example.com", 1).await.remove(0);
    let guesses = (0..50)
        .map(|_| (key.clone(), wrong_code(&right, 0)))
        .collect();
    let answers = guess_concurrently(&app, std::slice::from_ref(&app.base), guesses).await;
    assert_eq!(
        count(&answers, "INVALID_VERIFICATION_CODE"),
        5,
        "{answers:?}"
    );
    assert_eq!(
        count(&answers, "VERIFICATION_ATTEMPTS_EXCEEDED"),
        45,
        "{answers:?}"
    );
    assert_eq!(guesses_evaluated(&app).await, 5);
}

async fn two_server_processes_share_the_code_budget(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("live_keys_per_account", "100");
    })
    .await;
    // A second process of the real binary, as a second node of a cluster.
    let (other, _other) = app.another_process();
    app.signup("cluster@example.com").await;
    let keys = live_keys(&app, "cluster@example.com", 30).await;
    let guesses = keys
        .iter()
        .map(|(key, right)| (key.clone(), wrong_code(right, 0)))
        .collect();
    let answers = guess_concurrently(&app, &[app.base.clone(), other], guesses).await;
    assert_eq!(
        count(&answers, "INVALID_VERIFICATION_CODE"),
        10,
        "{answers:?}"
    );
    assert_eq!(count(&answers, "RATE_LIMITED"), 20, "{answers:?}");
    assert_eq!(guesses_evaluated(&app).await, 10);
}

async fn a_hundred_wrong_codes_in_a_row_lock_code_flows_for_a_day_and_tell_the_owner(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.signup("streak@example.com").await;
    for round in 0..10 {
        for (key, right) in live_keys(&app, "streak@example.com", 2).await {
            for nth in 0..5 {
                let guess =
                    json!({ "email_key": key, "verification_code": wrong_code(&right, nth) });
                let (status, body) = app.post("/v1/auth/verify", guess).await;
                assert_error(status, &body, 401, "INVALID_VERIFICATION_CODE");
            }
        }
        if round < 9 {
            // Past the 15-minute window: the run of failures goes on, the window's budget does not.
            app.clock.advance(15 * 60);
        }
    }
    let notice = app.mail_to("streak@example.com").await;
    assert!(
        notice.data.contains("too many wrong codes"),
        "{}",
        notice.data
    );
    assert!(notice.data.contains("24 hours"), "{}", notice.data);
    app.clock.advance(15 * 60);
    // Locked: even the right code is refused, for a day.
    let (key, right) = live_keys(&app, "streak@example.com", 1).await.remove(0);
    let (status, body) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": key, "verification_code": right }),
        )
        .await;
    assert_rate_limited(status, &body);
    assert!(
        body["error"]["details"]["retry_after"].as_i64().unwrap() > 20 * 3600,
        "{body}"
    );
    let log = app.audit_log().await;
    assert_eq!(
        log.iter().filter(|(e, _, _)| e == "codes_locked").count(),
        1,
        "{log:?}"
    );
    app.clock.advance(24 * 3600);
    app.login("streak@example.com", json!({})).await;
}

async fn login_with(
    app: &TestApp,
    base: &str,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .http
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({ "email_or_username": email, "password": password }));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

async fn login_failures_are_budgeted_per_account_across_instances(backend: Backend) {
    let app = spawn_app(backend).await;
    let (other, _stop) = app.another_instance().await;
    app.signup("slowed@example.com").await;
    let bases = [app.base.clone(), other];
    for i in 0..5 {
        let response = login_with(
            &app,
            &bases[i % 2],
            "slowed@example.com",
            "wrong password",
            None,
        )
        .await;
        let (status, body) = read(response).await;
        assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    }
    // The sixth try, on either instance, even with the right password, waits.
    for base in &bases {
        let response = login_with(&app, base, "slowed@example.com", PASSWORD, None).await;
        let retry_after: i64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let (status, body) = read(response).await;
        assert_error(status, &body, 429, "TOO_MANY_LOGIN_ATTEMPTS");
        assert_eq!(
            body["error"]["details"]["retry_after"], retry_after,
            "{body}"
        );
        assert!((1..=15 * 60).contains(&retry_after), "{body}");
    }
    // Slowed, never locked out: after the window the owner gets in.
    app.clock.advance(15 * 60);
    app.login("slowed@example.com", json!({})).await;
    // An unknown account is budgeted the same way.
    for _ in 0..5 {
        let (status, _) =
            read(login_with(&app, &app.base, "ghost@example.com", "x", None).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) =
        read(login_with(&app, &app.base, "ghost@example.com", "x", None).await).await;
    assert_error(status, &body, 429, "TOO_MANY_LOGIN_ATTEMPTS");
}

async fn login_failures_are_budgeted_per_ip_and_forwarding_headers_only_count_from_trusted_proxies(
    backend: Backend,
) {
    // Not behind a proxy: a forged X-Forwarded-For changes nothing, on either instance.
    let app = TestApp::start(backend, |s| {
        s.set("login_ip_budget", "20/1m");
    })
    .await;
    let (other, _stop) = app.another_instance().await;
    for i in 0..20 {
        let forged = format!("203.0.113.{i}");
        let base = if i % 2 == 0 { &app.base } else { &other };
        let response = login_with(
            &app,
            base,
            &format!("nobody{i}@example.com"),
            "x",
            Some(&forged),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = login_with(
        &app,
        &app.base,
        "fresh@example.com",
        "x",
        Some("198.51.100.7"),
    )
    .await;
    let (status, body) = read(response).await;
    assert_error(status, &body, 429, "TOO_MANY_LOGIN_ATTEMPTS");
    app.clock.advance(60);
    let response = login_with(&app, &app.base, "fresh@example.com", "x", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Behind a trusted proxy, each client behind it has its own budget.
    let app = TestApp::start(backend, |s| {
        s.set("login_ip_budget", "20/1m")
            .set("trusted_proxies", "127.0.0.1/32");
    })
    .await;
    for i in 0..20 {
        let response = login_with(
            &app,
            &app.base,
            &format!("nobody{i}@example.com"),
            "x",
            Some("203.0.113.1"),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let (status, body) = read(
        login_with(
            &app,
            &app.base,
            "other@example.com",
            "x",
            Some("203.0.113.1"),
        )
        .await,
    )
    .await;
    assert_error(status, &body, 429, "TOO_MANY_LOGIN_ATTEMPTS");
    let response = login_with(
        &app,
        &app.base,
        "other@example.com",
        "x",
        Some("203.0.113.2"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// A login with a wrong password from `ip`: its status, error code and
/// `retry_after`.
async fn wrong_password(app: &TestApp, email: &str, ip: &str) -> (StatusCode, Value, Value) {
    let response = login_with(app, &app.base, email, "wrong", Some(ip)).await;
    let (status, body) = read(response).await;
    let error = &body["error"];
    (
        status,
        error["code"].clone(),
        error["details"]["retry_after"].clone(),
    )
}

/// The IP's bucket is spent first, and the account's only if the IP had a
/// try: a client whose address is spent cannot go on using up its victim's
/// budget, which the owner logs in with.
async fn a_login_refused_by_its_ips_budget_spends_nothing_of_the_accounts(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("login_ip_budget", "2/1m")
            .set("trusted_proxies", "127.0.0.1/32");
    })
    .await;
    app.signup("victim@example.com").await;
    let attempt = |ip| wrong_password(&app, "victim@example.com", ip);
    for _ in 0..2 {
        assert_eq!(attempt("203.0.113.1").await.0, StatusCode::UNAUTHORIZED);
    }
    for _ in 0..5 {
        let (status, _, retry_after) = attempt("203.0.113.1").await;
        assert_eq!(
            (status, retry_after),
            (StatusCode::TOO_MANY_REQUESTS, json!(60))
        );
    }
    // The account's budget (5 in 15 minutes) still has its other 3 tries,
    // from addresses with tries of their own.
    for ip in ["203.0.113.2", "203.0.113.3", "203.0.113.4"] {
        assert_eq!(attempt(ip).await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, code, retry_after) = attempt("203.0.113.5").await;
    assert_eq!(
        (status, code),
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!("TOO_MANY_LOGIN_ATTEMPTS")
        )
    );
    assert!(
        retry_after.as_i64() > Some(60),
        "the account's window: {retry_after}"
    );
}

/// A body with what must differ between two requests (keys, addresses, trace ids, times) blanked.
fn shape(body: &Value) -> Value {
    let mut body = body.clone();
    for field in ["email_key", "email"] {
        if body.get(field).is_some() {
            body[field] = json!("");
        }
    }
    if body.get("error").is_some() {
        body["error"]["trace_id"] = json!("");
        body["error"]["timestamp"] = json!("");
    }
    body
}

async fn answers_are_the_same_for_known_and_unknown_addresses(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("known@example.com").await;
    let register = |email: &str, username: &str| {
        app.post(
            "/v1/auth/register",
            json!({ "email": email, "username": username, "password": PASSWORD }),
        )
    };
    let (_, taken_address) = register("known@example.com", "fresh_name").await;
    let (_, new_address) = register("new@example.com", "other_name").await;
    let (_, taken_username) = register("newer@example.com", "fresh_name").await;
    assert_eq!(shape(&taken_address), shape(&new_address));
    assert_eq!(shape(&taken_username), shape(&new_address));

    let login = |email: &str| {
        app.post(
            "/v1/auth/login",
            json!({ "email": email, "password": "wrong password" }),
        )
    };
    let (known_status, known) = login("known@example.com").await;
    let (unknown_status, unknown) = login("nobody@example.com").await;
    assert_eq!(
        (known_status, shape(&known)),
        (unknown_status, shape(&unknown))
    );

    let forgot = |email: &str| app.post("/v1/auth/password/forgot", json!({ "email": email }));
    let (_, known) = forgot("known@example.com").await;
    let (_, unknown) = forgot("nobody@example.com").await;
    assert_eq!(shape(&known), shape(&unknown));

    app.clock.advance(61);
    let resend = |key: &Value| app.post("/v1/auth/resend-email", json!({ "email_key": key }));
    let (_, known) = resend(&known["email_key"]).await;
    let (_, unknown) = resend(&unknown["email_key"]).await;
    assert_eq!(shape(&known), shape(&unknown));
    assert!(known["success"].as_bool().unwrap(), "{known}");
}

both!(known_and_unknown_addresses_take_the_same_time);

/// Mann–Whitney U test, normal approximation: the z score of "the first
/// sample tends to be larger than the second".
fn mann_whitney_z(a: &[f64], b: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    // Ranks from 1, ties share their mean rank.
    let mut rank_sum_a = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_a += all[i..=j].iter().filter(|(_, in_a)| *in_a).count() as f64 * rank;
        i = j + 1;
    }
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let sd = (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt();
    (u - mean) / sd
}

/// Times `request(known)` against `request(unknown)`, interleaved so that
/// drift in the machine's load falls on both alike.
async fn timings<F, Fut>(samples: usize, mut request: F) -> (Vec<f64>, Vec<f64>)
where
    F: FnMut(bool, usize) -> Fut,
    Fut: std::future::Future<Output = StatusCode>,
{
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..samples {
        for is_known in [i % 2 == 0, i % 2 != 0] {
            let started = std::time::Instant::now();
            let status = request(is_known, i).await;
            let elapsed = started.elapsed().as_secs_f64();
            assert!(
                status.is_success() || status == StatusCode::UNAUTHORIZED,
                "{status}"
            );
            if is_known {
                known.push(elapsed)
            } else {
                unknown.push(elapsed)
            }
        }
    }
    (known, unknown)
}

/// |z| above 3.29 would mean p < 0.001: the two could be told apart. A leak
/// shows in every measurement, while the other tests running beside this one
/// can fool a single one; so a difference counts only when three measurements
/// in a row find it, each the same way round.
async fn assert_indistinguishable<F, Fut>(what: &str, mut measure: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (Vec<f64>, Vec<f64>)>,
{
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2] * 1000.0
    };
    let mut found: Vec<(f64, String)> = Vec::new();
    for _ in 0..3 {
        let (known, unknown) = measure().await;
        let z = mann_whitney_z(&known, &unknown);
        let turned = found
            .last()
            .is_some_and(|(last, _)| last.signum() != z.signum());
        if z.abs() < 3.29 || turned {
            return;
        }
        found.push((
            z,
            format!(
                "known {:.2} ms vs unknown {:.2} ms (medians), Mann–Whitney z = {z:.2}",
                median(&known),
                median(&unknown)
            ),
        ));
    }
    let found: Vec<_> = found.into_iter().map(|(_, line)| line).collect();
    panic!("{what}: told apart three times: {}", found.join("; "));
}

async fn known_and_unknown_addresses_take_the_same_time(backend: Backend) {
    // Budgets and the live-key cap would end the runs early; they are tested above.
    let app = TestApp::start(backend, |s| {
        s.set("login_account_budget", "1000/15m")
            .set("live_keys_per_account", "1000");
    })
    .await;
    let app = &app;
    app.signup("timed@example.com").await;
    let address = |known: bool| {
        if known {
            "timed@example.com"
        } else {
            "untimed@example.com"
        }
    };

    assert_indistinguishable("forgot", || {
        timings(200, |is_known, _| {
            let body = json!({ "email": address(is_known) });
            async { app.post("/v1/auth/password/forgot", body).await.0 }
        })
    })
    .await;

    assert_indistinguishable("login", || {
        timings(20, |is_known, _| {
            let body =
                json!({ "email_or_username": address(is_known), "password": "wrong password" });
            async { app.post("/v1/auth/login", body).await.0 }
        })
    })
    .await;

    assert_indistinguishable("resend", || async {
        let mut keys = HashMap::new();
        for i in 0..30 {
            for is_known in [true, false] {
                let (_, body) = app
                    .post(
                        "/v1/auth/password/forgot",
                        json!({ "email": address(is_known) }),
                    )
                    .await;
                keys.insert(
                    (is_known, i),
                    body["email_key"].as_str().unwrap().to_owned(),
                );
            }
        }
        app.clock.advance(61);
        timings(30, |is_known, i| {
            let key = keys[&(is_known, i)].clone();
            async move {
                app.post("/v1/auth/resend-email", json!({ "email_key": key }))
                    .await
                    .0
            }
        })
        .await
    })
    .await;
}
