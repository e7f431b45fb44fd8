//! The Rust SDK (`portcullis-client`) against the real server: the user
//! flows with typed errors, the automatic refresh, and machine clients.

use portcullis_client::proto::ErrorCode;
use portcullis_client::{Client, Error, LoginStep};
use secrecy::{ExposeSecret, SecretString};

use crate::helpers::*;

both!(
    the_sdk_walks_the_user_flows,
    the_sdk_refreshes_an_expired_token_once,
    the_sdk_logs_machine_clients_in,
);

fn password() -> SecretString {
    SecretString::from(PASSWORD)
}

async fn the_sdk_walks_the_user_flows(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = Client::new(&app.base);
    let step = client
        .register("sdk@example.com", &password(), Some("sdk"))
        .await
        .unwrap();
    let code = app.code_for("sdk@example.com").await;
    let wrong = client.verify(&step.email_key, &wrong_code(&code)).await;
    assert!(
        matches!(
            wrong,
            Err(Error::Api {
                code: ErrorCode::InvalidVerificationCode,
                status: 401,
                ..
            })
        ),
        "{wrong:?}"
    );
    let session = client.verify(&step.email_key, &code).await.unwrap();
    let me = session.me().await.unwrap();
    assert_eq!(
        (me.email.as_str(), me.username.as_deref()),
        ("sdk@example.com", Some("sdk"))
    );

    // Login: the code is emailed, then exchanged.
    let LoginStep::CodeSent(step) = client.login("sdk", &password(), None).await.unwrap() else {
        panic!("a code is emailed");
    };
    let too_soon = client.resend(&step.email_key).await.unwrap_err();
    assert_eq!(too_soon.code(), Some(ErrorCode::ResendTooSoon));
    let code = app.code_for("sdk@example.com").await;
    let laptop = client.verify(&step.email_key, &code).await.unwrap();
    let sessions = laptop.sessions().await.unwrap().sessions;
    assert_eq!(sessions.len(), 2);
    let bad = client
        .login("sdk", &SecretString::from("wrong password!"), None)
        .await;
    assert_eq!(bad.unwrap_err().code(), Some(ErrorCode::InvalidCredentials));

    let key = laptop.create_api_key("ci", &["sessions"]).await.unwrap();
    assert!(key.key.starts_with("ak_"));
    let keys = laptop.api_keys().await.unwrap().api_keys;
    assert_eq!((keys.len(), keys[0].id.as_str()), (1, key.id.as_str()));
    laptop.revoke_api_key(&key.id).await.unwrap();
    let again = laptop.revoke_api_key(&key.id).await.unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::NotFound));

    // The first session ends the second's device session, then logs itself out.
    let other = sessions.iter().find(|s| !s.current).unwrap();
    laptop
        .revoke_session(&other.device.device_id)
        .await
        .unwrap();
    let ended = session.me().await.unwrap_err();
    assert_eq!(
        ended.code(),
        Some(ErrorCode::RefreshTokenInvalid),
        "{ended:?}"
    );
    laptop.logout().await.unwrap();
    assert!(laptop.me().await.is_err());
}

async fn the_sdk_refreshes_an_expired_token_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.signup("auto@example.com").await;
    let client = Client::new(&app.base);
    let LoginStep::CodeSent(step) = client
        .login("auto@example.com", &password(), None)
        .await
        .unwrap()
    else {
        panic!("a code is emailed");
    };
    let code = app.code_for("auto@example.com").await;
    let session = client.verify(&step.email_key, &code).await.unwrap();
    let first_refresh = session.refresh_token().await;

    let ttl = app.settings.build().unwrap().access_ttl.as_secs() as i64;
    app.clock.advance(ttl + 1);
    let me = session.me().await.unwrap();
    assert_eq!(me.email, "auto@example.com");
    let second_refresh = session.refresh_token().await;
    assert_ne!(
        first_refresh.expose_secret(),
        second_refresh.expose_secret(),
        "rotated"
    );
    // The old refresh token is spent: the SDK kept the new one.
    session.me().await.unwrap();

    // Once the session is over, the error comes back; there is no loop.
    session.logout_all().await.unwrap();
    let over = session.me().await.unwrap_err();
    assert_eq!(
        over.code(),
        Some(ErrorCode::RefreshTokenInvalid),
        "{over:?}"
    );
}

async fn the_sdk_logs_machine_clients_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = app.cli_json(&["client", "create", "--name", "sdk-svc", "--json"]);
    let client = Client::new(&app.base);
    let secret = SecretString::from(created["api_secret"].as_str().unwrap());
    let tokens = client
        .client_login(created["api_key"].as_str().unwrap(), &secret)
        .await
        .unwrap();
    assert_eq!(tokens.client_id, created["client_id"].as_i64().unwrap());
    let printed = format!("{tokens:?}");
    for token in [&tokens.access_token, &tokens.refresh_token] {
        assert!(!printed.contains(token.expose_secret()), "{printed}");
    }
    let me = client.client_me(&tokens.access_token).await.unwrap();
    assert_eq!(me.data.name, "sdk-svc");
    let renewed = client.client_refresh(&tokens.refresh_token).await.unwrap();
    assert_ne!(
        renewed.refresh_token.expose_secret(),
        tokens.refresh_token.expose_secret()
    );
    assert_eq!(
        client
            .client_me(&renewed.access_token)
            .await
            .unwrap()
            .data
            .name,
        "sdk-svc"
    );
    let wrong = client
        .client_login(
            created["api_key"].as_str().unwrap(),
            &SecretString::from("nope"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            wrong,
            Error::Api {
                code: ErrorCode::Unauthorized,
                status: 401,
                ..
            }
        ),
        "{wrong:?}"
    );
}
