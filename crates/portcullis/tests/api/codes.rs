//! Emailed codes: expiry, format, attempts, resends.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

both!(
    code_is_accepted_at_4_59_and_rejected_at_5_01,
    codes_work_as_numbers_and_strings_with_leading_zeros,
    wrong_is_register_is_refused_without_spending_an_attempt,
    a_code_from_another_key_is_wrong,
    a_used_code_is_refused,
    the_old_code_stops_working_after_a_resend,
    five_wrong_codes_burn_the_key,
    concurrent_wrong_guesses_never_exceed_the_budget,
    a_right_code_sent_many_times_at_once_opens_one_session,
    resend_has_a_cooldown_and_a_cap,
    only_three_keys_per_account_stay_live,
    registering_a_taken_address_answers_alike_and_warns_the_owner,
    re_registering_an_unverified_address_cannot_plant_a_password,
);

async fn verify(
    app: &TestApp,
    key: &str,
    code: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    app.post(
        "/v1/auth/verify",
        json!({ "email_key": key, "verification_code": code }),
    )
    .await
}

async fn code_is_accepted_at_4_59_and_rejected_at_5_01(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("exp@example.com").await;

    let key = app.login_key("exp@example.com", json!({})).await;
    let code = app.code_for("exp@example.com").await;
    app.clock.advance(4 * 60 + 59);
    let (status, body) = verify(&app, &key, json!(code)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let key = app.login_key("exp@example.com", json!({})).await;
    let code = app.code_for("exp@example.com").await;
    app.clock.advance(5 * 60 + 1);
    let (status, body) = verify(&app, &key, json!(code)).await;
    assert_error(status, &body, 401, "VERIFICATION_EXPIRED");
}

async fn codes_work_as_numbers_and_strings_with_leading_zeros(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("zero@example.com").await;
    // Codes are random: log in until one starts with 0, then send it as the documented client does.
    for _ in 0..200 {
        let key = app.login_key("zero@example.com", json!({})).await;
        let code = app.code_for("zero@example.com").await;
        if code.starts_with('0') {
            let number: u32 = code.parse().unwrap();
            assert!(number < 1000);
            let (status, body) = verify(&app, &key, json!(number)).await;
            assert_eq!(status, StatusCode::OK, "{code} sent as {number}: {body}");
            let key = app.login_key("zero@example.com", json!({})).await;
            let code = app.code_for("zero@example.com").await;
            let (status, body) = verify(&app, &key, json!(code)).await;
            assert_eq!(status, StatusCode::OK, "as a string: {body}");
            return;
        }
    }
    panic!("no code with a leading zero in 200 logins");
}

async fn wrong_is_register_is_refused_without_spending_an_attempt(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.register("flag@example.com").await;
    let code = app.code_for("flag@example.com").await;
    let (status, body) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": key, "verification_code": code, "is_register": false }),
        )
        .await;
    assert_error_details(
        status,
        &body,
        422,
        "VALIDATION_ERROR",
        json!({ "is_register": "This key was issued for a registration" }),
    );
    let (status, body) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": key, "verification_code": "9999x" }),
        )
        .await;
    assert_error(status, &body, 422, "VALIDATION_ERROR");
    // Neither refusal spent an attempt: a wrong code still finds all five.
    let (status, body) = verify(&app, &key, json!(wrong_code(&code))).await;
    assert_error_details(
        status,
        &body,
        401,
        "INVALID_VERIFICATION_CODE",
        json!({ "attempts_remaining": 4 }),
    );
    let (status, body) = app
        .post(
            "/v1/auth/verify",
            json!({ "email_key": key, "verification_code": code, "is_register": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a_code_from_another_key_is_wrong(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.register("one@example.com").await;
    let first_code = app.code_for("one@example.com").await;
    // Codes are random: register until the other key's code differs from the first's.
    let mut tries = 0;
    let (second, second_code) = loop {
        tries += 1;
        assert!(tries <= 20, "twenty codes in a row were {first_code}");
        let email = format!("two{tries}@example.com");
        let key = app.register(&email).await;
        let code = app.code_for(&email).await;
        if code != first_code {
            break (key, code);
        }
    };
    let (status, body) = verify(&app, &first, json!(second_code)).await;
    assert_error_details(
        status,
        &body,
        401,
        "INVALID_VERIFICATION_CODE",
        json!({ "attempts_remaining": 4 }),
    );
    let (status, _) = verify(&app, &second, json!(second_code)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = verify(&app, &first, json!(first_code)).await;
    assert_eq!(status, StatusCode::OK);
}

async fn a_used_code_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.register("used@example.com").await;
    let code = app.code_for("used@example.com").await;
    let (status, _) = verify(&app, &key, json!(code)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = verify(&app, &key, json!(code)).await;
    assert_error(status, &body, 401, "VERIFICATION_EXPIRED");
    let (status, body) = verify(&app, "no-such-key", json!(code)).await;
    assert_error(status, &body, 401, "VERIFICATION_EXPIRED");
}

async fn the_old_code_stops_working_after_a_resend(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.register("resend@example.com").await;
    let old = app.code_for("resend@example.com").await;
    // Codes are random: resend until the new one differs from the old.
    let new = loop {
        app.clock.advance(61);
        let (status, body) = app
            .post("/v1/auth/resend-email", json!({ "email_key": key }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["email_key"], key.as_str());
        let new = app.code_for("resend@example.com").await;
        if new != old {
            break new;
        }
    };
    let (status, body) = verify(&app, &key, json!(old)).await;
    assert_error(status, &body, 401, "INVALID_VERIFICATION_CODE");
    let (status, body) = verify(&app, &key, json!(new)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn five_wrong_codes_burn_the_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.register("burn@example.com").await;
    let code = app.code_for("burn@example.com").await;
    let wrong = wrong_code(&code);
    for remaining in (0..5).rev() {
        let (status, body) = verify(&app, &key, json!(wrong)).await;
        assert_error_details(
            status,
            &body,
            401,
            "INVALID_VERIFICATION_CODE",
            json!({ "attempts_remaining": remaining }),
        );
    }
    let (status, body) = verify(&app, &key, json!(code)).await;
    assert_error(status, &body, 429, "VERIFICATION_ATTEMPTS_EXCEEDED");
    // A resend does not restore the budget.
    app.clock.advance(61);
    let (status, body) = app
        .post("/v1/auth/resend-email", json!({ "email_key": key }))
        .await;
    assert_error(status, &body, 429, "VERIFICATION_ATTEMPTS_EXCEEDED");
}

async fn concurrent_wrong_guesses_never_exceed_the_budget(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.register("race@example.com").await;
    let code = app.code_for("race@example.com").await;
    let wrong = wrong_code(&code);
    let guesses = (0..30).map(|_| verify(&app, &key, json!(wrong)));
    let results = futures_join_all(guesses).await;
    let counted = results
        .iter()
        .filter(|(_, b)| b["error"]["code"] == "INVALID_VERIFICATION_CODE")
        .count();
    let refused = results
        .iter()
        .filter(|(_, b)| b["error"]["code"] == "VERIFICATION_ATTEMPTS_EXCEEDED")
        .count();
    assert_eq!(counted, 5, "{results:?}");
    assert_eq!(refused, 25, "{results:?}");
    let (status, body) = verify(&app, &key, json!(code)).await;
    assert_error(status, &body, 429, "VERIFICATION_ATTEMPTS_EXCEEDED");
}

/// The key is used by the first request that gives its code: the others,
/// however close behind, find it used.
async fn a_right_code_sent_many_times_at_once_opens_one_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("at-once@example.com").await;
    let key = app.login_key("at-once@example.com", json!({})).await;
    let code = app.code_for("at-once@example.com").await;
    let results = futures_join_all((0..5).map(|_| verify(&app, &key, json!(code)))).await;
    let opened = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK);
    assert_eq!(opened.count(), 1, "{results:?}");
    let expired = results
        .iter()
        .filter(|(_, b)| b["error"]["code"] == "VERIFICATION_EXPIRED");
    assert_eq!(expired.count(), 4, "{results:?}");
}

/// Runs the futures concurrently on the test's runtime.
async fn futures_join_all<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out = Vec::new();
    let mut pending: Vec<_> = set.into_iter().map(Some).collect();
    // Poll all of them together.
    std::future::poll_fn(|cx| {
        let mut done = true;
        for slot in pending.iter_mut() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        out.push(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out
}

async fn resend_has_a_cooldown_and_a_cap(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.register("cool@example.com").await;
    app.code_for("cool@example.com").await;
    let response = app
        .http
        .post(app.url("/v1/auth/resend-email"))
        .json(&json!({ "email_key": key }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["retry-after"], "60");
    let (status, body) = read(response).await;
    assert_error_details(
        status,
        &body,
        429,
        "RESEND_TOO_SOON",
        json!({ "retry_after": 60 }),
    );

    app.clock.advance(30);
    let (status, body) = app
        .post("/v1/auth/resend-email", json!({ "email_key": key }))
        .await;
    assert_error_details(
        status,
        &body,
        429,
        "RESEND_TOO_SOON",
        json!({ "retry_after": 30 }),
    );

    for _ in 0..5 {
        app.clock.advance(60);
        let (status, body) = app
            .post("/v1/auth/resend-email", json!({ "email_key": key }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        app.code_for("cool@example.com").await;
    }
    app.clock.advance(60);
    let (status, body) = app
        .post("/v1/auth/resend-email", json!({ "email_key": key }))
        .await;
    assert_error(status, &body, 429, "VERIFICATION_ATTEMPTS_EXCEEDED");
}

async fn only_three_keys_per_account_stay_live(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("keys@example.com").await;
    let mut keys = Vec::new();
    for _ in 0..4 {
        app.clock.advance(1);
        let key = app.login_key("keys@example.com", json!({})).await;
        keys.push((key, app.code_for("keys@example.com").await));
    }
    let (status, body) = verify(&app, &keys[0].0, json!(keys[0].1)).await;
    assert_error(status, &body, 401, "VERIFICATION_EXPIRED");
    let (status, body) = verify(&app, &keys[3].0, json!(keys[3].1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn registering_a_taken_address_answers_alike_and_warns_the_owner(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("taken@example.com").await;
    let (status, body) = app
        .post(
            "/v1/auth/register",
            json!({ "email": "taken@example.com", "password": "another password 1" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["requires_verification"], true);
    let notice = app.mail_to("taken@example.com").await;
    assert!(notice.data.contains("already has one"), "{}", notice.data);
    assert!(!notice.data.contains("code is: "));
    // The decoy key never verifies, and the original password still works.
    for guess in ["0000", "1234"] {
        let (status, body) = verify(&app, body["email_key"].as_str().unwrap(), json!(guess)).await;
        assert_error(status, &body, 401, "INVALID_VERIFICATION_CODE");
    }
    app.login("taken@example.com", json!({})).await;

    // A taken username changes nothing in register's answer: only the verified
    // owner of the address learns, at verify time, whether they got it.
    let register = |email: &'static str, username: &'static str| {
        let body = json!({ "email": email, "username": username, "password": PASSWORD });
        app.post("/v1/auth/register", body)
    };
    let (status, first) = register("u1@example.com", "sam").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, second) = register("u2@example.com", "SAM").await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let shape = |body: &serde_json::Value| {
        let mut body = body.clone();
        body["email_key"] = json!("");
        body["email"] = json!("");
        body
    };
    assert_eq!(shape(&first), shape(&second));
    for (body, email, username) in [
        (&first, "u1@example.com", json!("sam")),
        (&second, "u2@example.com", json!(null)),
    ] {
        let code = app.code_for(email).await;
        let (status, tokens) = verify(&app, body["email_key"].as_str().unwrap(), json!(code)).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(tokens["user"]["username"], username, "{tokens}");
    }
}

async fn re_registering_an_unverified_address_cannot_plant_a_password(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner_key = app.register("victim@example.com").await;
    let owner_code = app.code_for("victim@example.com").await;
    // Someone else registers the same address with their own password; the code goes to the owner.
    let (status, planted) = app
        .post(
            "/v1/auth/register",
            json!({ "email": "victim@example.com", "password": "attacker password 1" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{planted}");
    let planted_code = app.code_for("victim@example.com").await;

    // The owner verifies their own key: their password holds, the other does not.
    let (status, body) = verify(&app, &owner_key, json!(owner_code)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app
        .post(
            "/v1/auth/login",
            json!({ "email_or_username": "victim@example.com", "password": "attacker password 1" }),
        )
        .await;
    assert_error(status, &body, 401, "INVALID_CREDENTIALS");
    app.login("victim@example.com", json!({})).await;
    // The second key's code would have set the second password, but that key is now spent.
    let (status, body) = verify(
        &app,
        planted["email_key"].as_str().unwrap(),
        json!(planted_code),
    )
    .await;
    assert_error(status, &body, 401, "VERIFICATION_EXPIRED");
}
