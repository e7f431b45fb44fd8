//! An async client for Portcullis: the user flows (register, login, the
//! emailed code, refresh, logout, sessions, API keys) and machine clients'
//! login, with the API's error codes as typed errors. A signed-in
//! [`Session`] refreshes its access token and retries once when a request
//! is refused for an expired token, as the documented sample client does.
//!
//! With the `guard` feature, [`guard`] verifies Portcullis access tokens in
//! another service from the published keys, without a call per request.

mod error;
#[cfg(feature = "guard")]
pub mod guard;
mod session;

use portcullis_proto::{
    ClientMeResponse, ClientTokenResponse, LoginResponse, StepOneResponse, TokenResponse,
};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

pub use error::Error;
pub use portcullis_proto as proto;
pub use session::Session;

/// Where a Portcullis server is, and the connections to it.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

/// A machine client's tokens. They are secrets: `Debug` prints them redacted.
#[derive(Debug)]
pub struct ClientTokens {
    /// A JWT with `client_id` and `scope` claims.
    pub access_token: SecretString,
    /// Opaque; it rotates at each [`Client::client_refresh`].
    pub refresh_token: SecretString,
    /// RFC 3339, as the server wrote them.
    pub access_expires_at: String,
    pub refresh_expires_at: String,
    pub client_id: i64,
}

impl From<ClientTokenResponse> for ClientTokens {
    fn from(response: ClientTokenResponse) -> Self {
        let tokens = response.data;
        ClientTokens {
            access_token: tokens.access_token.into(),
            refresh_token: tokens.refresh_token.into(),
            access_expires_at: tokens.access_expires_at,
            refresh_expires_at: tokens.refresh_expires_at,
            client_id: tokens.client_id,
        }
    }
}

/// What login step 1 answered.
#[derive(Debug)]
pub enum LoginStep {
    /// A code was emailed: pass it to [`Client::verify`] with this key.
    CodeSent(StepOneResponse),
    /// The account has TOTP: log in again with the code of the authenticator.
    TotpRequired,
    /// Signed in at once (the server's policy asks for no emailed code here).
    SignedIn(Session),
}

impl Client {
    /// A client of the server at `base_url`, e.g. `https://auth.example.com`.
    pub fn new(base_url: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Starts a registration: a code is emailed to `email`.
    pub async fn register(
        &self,
        email: &str,
        password: &SecretString,
        username: Option<&str>,
    ) -> Result<StepOneResponse, Error> {
        let body =
            json!({ "email": email, "password": password.expose_secret(), "username": username });
        self.call(Method::POST, "/v1/auth/register", None, Some(&body))
            .await
    }

    /// Login step 1: the password, and the TOTP code if the account has one.
    pub async fn login(
        &self,
        email_or_username: &str,
        password: &SecretString,
        totp_code: Option<&SecretString>,
    ) -> Result<LoginStep, Error> {
        let body = json!({
            "email_or_username": email_or_username,
            "password": password.expose_secret(),
            "totp_code": totp_code.map(|c| c.expose_secret()),
        });
        let answer: LoginResponse = self
            .call(Method::POST, "/v1/auth/login", None, Some(&body))
            .await?;
        Ok(match answer {
            LoginResponse::Code(step) => LoginStep::CodeSent(step),
            LoginResponse::SecondFactor(_) => LoginStep::TotpRequired,
            LoginResponse::Tokens(tokens) => LoginStep::SignedIn(self.session(&tokens)),
        })
    }

    /// Step 2 of a login or a registration: the emailed code for tokens.
    pub async fn verify(&self, email_key: &str, code: &str) -> Result<Session, Error> {
        let body = json!({ "email_key": email_key, "verification_code": code });
        let tokens: TokenResponse = self
            .call(Method::POST, "/v1/auth/verify", None, Some(&body))
            .await?;
        Ok(self.session(&tokens))
    }

    /// Emails the code of `email_key` again.
    pub async fn resend(&self, email_key: &str) -> Result<StepOneResponse, Error> {
        let body = json!({ "email_key": email_key });
        self.call(Method::POST, "/v1/auth/resend-email", None, Some(&body))
            .await
    }

    /// A session from tokens kept earlier (a refresh token is enough: the
    /// first request refreshes).
    pub fn resume(&self, access_token: SecretString, refresh_token: SecretString) -> Session {
        Session::new(self.clone(), access_token, refresh_token)
    }

    fn session(&self, tokens: &TokenResponse) -> Session {
        self.resume(
            tokens.access_token.clone().into(),
            tokens.refresh_token.clone().into(),
        )
    }

    /// A machine client's login with its API key and secret (`/v1/clients`).
    pub async fn client_login(
        &self,
        api_key: &str,
        api_secret: &SecretString,
    ) -> Result<ClientTokens, Error> {
        let body = json!({ "username": api_key, "password": api_secret.expose_secret() });
        let answer: ClientTokenResponse = self
            .call(Method::POST, "/v1/clients/auth/login", None, Some(&body))
            .await?;
        Ok(answer.into())
    }

    /// New tokens for a machine client (the refresh token rotates).
    pub async fn client_refresh(
        &self,
        refresh_token: &SecretString,
    ) -> Result<ClientTokens, Error> {
        let body = json!({ "refresh_token": refresh_token.expose_secret() });
        let answer: ClientTokenResponse = self
            .call(Method::POST, "/v1/clients/auth/refresh", None, Some(&body))
            .await?;
        Ok(answer.into())
    }

    /// The machine client a client access token belongs to.
    pub async fn client_me(&self, access_token: &SecretString) -> Result<ClientMeResponse, Error> {
        self.call(Method::GET, "/v1/clients/me", Some(access_token), None)
            .await
    }

    /// One request: the answer's body as `T`, or the envelope's error.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&SecretString>,
        body: Option<&Value>,
    ) -> Result<T, Error> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token.expose_secret());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text)
                .map_err(|_| Error::Unexpected { status, body: text });
        }
        Err(Error::from_answer(status, &text))
    }
}
