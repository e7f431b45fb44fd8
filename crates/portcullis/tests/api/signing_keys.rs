//! Signing-key rotation with no downtime: the new key signs, the old one
//! verifies until its tokens have expired, and every instance of a cluster
//! picks the change up within seconds, without a restart.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis::clock::Clock as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

both!(
    a_rotation_signs_with_the_new_key_and_keeps_the_old_one_verifying,
    another_instance_picks_up_a_rotation_within_seconds,
    instances_starting_together_make_one_key,
    tokens_verify_in_an_independent_implementation,
);

/// The `kid` in a JWT's header.
fn kid(token: &str) -> String {
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn jwks_kids(http: &reqwest::Client, base: &str) -> Vec<String> {
    let jwks: Value = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

fn sorted(mut kids: Vec<String>) -> Vec<String> {
    kids.sort();
    kids
}

async fn me_at(http: &reqwest::Client, base: &str, token: &str) -> (StatusCode, Value) {
    read(
        http.get(format!("{base}/v1/auth/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn a_rotation_signs_with_the_new_key_and_keeps_the_old_one_verifying(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("login_verification", "never");
    })
    .await;
    let tokens = app.signup("rotate@example.com").await;
    let before = tokens["access_token"].as_str().unwrap().to_owned();
    let old = kid(&before);
    let keys = app.cli_json(&["keys", "list"]);
    assert_eq!(keys.as_array().unwrap().len(), 1);
    assert_eq!(keys[0]["kid"], old);
    assert_eq!(keys[0]["state"], "signing");

    // The operator's key lifetime here is shorter than the server's tokens,
    // so that the old key leaves while a token it signed is still unexpired.
    let rotated = {
        let out = app.cli(&["--json", "keys", "rotate"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let new = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rotated["superseded"], old);
    let keys = app.cli_json(&["keys", "list"]);
    assert_eq!(keys[0]["kid"], new);
    assert_eq!(keys[0]["state"], "signing");
    assert_eq!(keys[1]["kid"], old);
    assert_eq!(keys[1]["state"], "verifying");
    assert_eq!(
        keys[1]["verifies_until"],
        rotated["superseded_verifies_until"]
    );

    // Within seconds: JWKS lists both, and new tokens carry the new kid.
    let both_kids = sorted(vec![old.clone(), new.clone()]);
    eventually("JWKS to list both keys", || async {
        (jwks_kids(&app.http, &app.base).await == both_kids).then_some(())
    })
    .await;
    let login = json!({ "email_or_username": "rotate@example.com", "password": PASSWORD });
    let after = eventually("a token signed with the new key", || async {
        let (_, body) = app.post("/v1/auth/login", login.clone()).await;
        let token = body["access_token"].as_str()?.to_owned();
        (kid(&token) == new).then_some(token)
    })
    .await;
    // Both verify.
    assert_eq!(me_at(&app.http, &app.base, &before).await.0, StatusCode::OK);
    assert_eq!(me_at(&app.http, &app.base, &after).await.0, StatusCode::OK);

    // Once every token of the old key has expired (by the access lifetime the
    // rotation was made with), the old key leaves JWKS and verifies nothing.
    let verifies_until = rotated["superseded_verifies_until"].as_str().unwrap();
    let until = time::OffsetDateTime::parse(
        verifies_until,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    app.clock.advance(until - app.clock.now() + 1);
    eventually("the old key to leave JWKS", || async {
        (jwks_kids(&app.http, &app.base).await == vec![new.clone()]).then_some(())
    })
    .await;
    // Its token (expired by now too: a key outlives its last token) names a key no longer known.
    let (status, body) = me_at(&app.http, &app.base, &before).await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
    let fresh = app.post("/v1/auth/login", login).await.1;
    let fresh = fresh["access_token"].as_str().unwrap();
    assert_eq!(kid(fresh), new);
    assert_eq!(me_at(&app.http, &app.base, fresh).await.0, StatusCode::OK);
}

async fn another_instance_picks_up_a_rotation_within_seconds(backend: Backend) {
    let app = TestApp::start(backend, |s| {
        s.set("login_verification", "never");
    })
    .await;
    let (other, _stop) = app.another_instance().await;
    app.signup("cluster@example.com").await;
    let rotated = app.cli_json(&["keys", "rotate"]);
    let new = rotated["kid"].as_str().unwrap().to_owned();

    let login = json!({ "email_or_username": "cluster@example.com", "password": PASSWORD });
    let token = eventually("the first instance to sign with the new key", || async {
        let (_, body) = app.post("/v1/auth/login", login.clone()).await;
        let token = body["access_token"].as_str()?.to_owned();
        (kid(&token) == new).then_some(token)
    })
    .await;
    // The other instance, never restarted, accepts it and lists the key.
    eventually("the other instance to accept the new key", || async {
        (me_at(&app.http, &other, &token).await.0 == StatusCode::OK).then_some(())
    })
    .await;
    assert!(jwks_kids(&app.http, &other).await.contains(&new));
}

async fn instances_starting_together_make_one_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let db = app.db().await;
    sqlx::query("DELETE FROM signing_keys")
        .execute(db.pool())
        .await
        .unwrap();
    // Two instances start at once on a database without a key.
    let ((first, _stop_first), (second, _stop_second)) =
        tokio::join!(app.another_instance(), app.another_instance());
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(count, 1);
    assert_eq!(
        jwks_kids(&app.http, &first).await,
        jwks_kids(&app.http, &second).await
    );
    db.close().await;
}

/// Verifies `token` with PyJWT against the keys of `/.well-known/jwks.json`,
/// as a service in another language would; returns its claims.
fn pyjwt_claims(jwks: &Value, token: &str, issuer: &str, audience: &str) -> Value {
    let script = "import sys, json, jwt\n\
        jwks = json.loads(sys.argv[1]); token = sys.argv[2]\n\
        kid = jwt.get_unverified_header(token)['kid']\n\
        key = jwt.PyJWK(next(k for k in jwks['keys'] if k['kid'] == kid))\n\
        print(json.dumps(jwt.decode(token, key.key, algorithms=['EdDSA'], \
        issuer=sys.argv[3], audience=sys.argv[4], options={'require': ['exp', 'iat', 'sub']})))";
    let out = std::process::Command::new("python3")
        .args(["-c", script, &jwks.to_string(), token, issuer, audience])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "PyJWT refused the token (pip install 'pyjwt[crypto]'; .ci/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn tokens_verify_in_an_independent_implementation(backend: Backend) {
    let app = spawn_app(backend).await;
    let tokens = app.signup("pyjwt@example.com").await;
    let config = app.settings.build().unwrap();
    let (_, jwks) = app.get("/.well-known/jwks.json").await;
    let token = tokens["access_token"].as_str().unwrap();
    let claims = pyjwt_claims(&jwks, token, &config.issuer, &config.audience);
    let (_, me) = app.get_auth("/v1/auth/me", token).await;
    assert_eq!(claims["sub"], me["id"]);
    assert_eq!(claims["email"], "pyjwt@example.com");

    // After a rotation, tokens of the new key verify with the published set too.
    app.cli(&["keys", "rotate"]);
    let old = kid(token);
    let fresh = eventually("a token signed by the new key", || async {
        let tokens = app.login("pyjwt@example.com", json!({})).await;
        let token = tokens["access_token"].as_str().unwrap().to_owned();
        (kid(&token) != old).then_some(token)
    })
    .await;
    let (_, jwks) = app.get("/.well-known/jwks.json").await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "{jwks}");
    pyjwt_claims(&jwks, &fresh, &config.issuer, &config.audience);
    pyjwt_claims(&jwks, token, &config.issuer, &config.audience);
}
