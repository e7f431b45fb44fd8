//! A signed-in user: requests with the access token, refreshed (once, and
//! then the request retried) when the server says it expired.

use portcullis_proto::{
    ApiKeysResponse, CreatedApiKeyResponse, ErrorCode, MessageResponse, SessionsResponse,
    TokenResponse, UserBody,
};
use reqwest::{Method, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::{Client, Error};

/// A device session's tokens, used by one task or shared by many.
#[derive(Debug)]
pub struct Session {
    client: Client,
    tokens: Mutex<Tokens>,
}

#[derive(Debug, Clone)]
struct Tokens {
    access: SecretString,
    refresh: SecretString,
}

impl Session {
    pub(crate) fn new(client: Client, access: SecretString, refresh: SecretString) -> Session {
        Session {
            client,
            tokens: Mutex::new(Tokens { access, refresh }),
        }
    }

    /// The current access token, for calls to the team's own API.
    pub async fn access_token(&self) -> SecretString {
        self.tokens.lock().await.access.clone()
    }

    /// The current refresh token, to keep for [`Client::resume`].
    pub async fn refresh_token(&self) -> SecretString {
        self.tokens.lock().await.refresh.clone()
    }

    pub async fn me(&self) -> Result<UserBody, Error> {
        self.call(Method::GET, "/v1/auth/me", None).await
    }

    /// The account's live device sessions.
    pub async fn sessions(&self) -> Result<SessionsResponse, Error> {
        self.call(Method::GET, "/v1/auth/sessions", None).await
    }

    /// Ends the session on one of the account's devices.
    pub async fn revoke_session(&self, device_id: &str) -> Result<MessageResponse, Error> {
        let path = self.client.path(&["v1", "auth", "sessions", device_id])?;
        self.call(Method::DELETE, &path, None).await
    }

    /// A new API key of this account; its secret (`key`) is shown only here.
    pub async fn create_api_key(
        &self,
        name: &str,
        scopes: &[&str],
    ) -> Result<CreatedApiKeyResponse, Error> {
        let body = json!({ "name": name, "scopes": scopes });
        self.call(Method::POST, "/v1/api-keys", Some(&body)).await
    }

    pub async fn api_keys(&self) -> Result<ApiKeysResponse, Error> {
        self.call(Method::GET, "/v1/api-keys", None).await
    }

    pub async fn revoke_api_key(&self, id: &str) -> Result<MessageResponse, Error> {
        let path = self.client.path(&["v1", "api-keys", id])?;
        self.call(Method::DELETE, &path, None).await
    }

    /// New tokens now, without waiting for the access token to expire.
    pub async fn refresh(&self) -> Result<(), Error> {
        let seen = self.access_token().await;
        self.refresh_unless_done(&seen).await
    }

    /// Ends this session.
    pub async fn logout(&self) -> Result<MessageResponse, Error> {
        self.call(Method::POST, "/v1/auth/logout", Some(&json!({})))
            .await
    }

    /// Ends every session of the account, this one included.
    pub async fn logout_all(&self) -> Result<MessageResponse, Error> {
        self.call(Method::POST, "/v1/auth/logout-all", Some(&json!({})))
            .await
    }

    /// A request with the access token; if the server finds it expired (or
    /// otherwise invalid), one refresh and one retry. A failed refresh is
    /// the answer: the session is over.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T, Error> {
        let access = self.access_token().await;
        let first = self
            .client
            .call(method.clone(), path, Some(&access), body)
            .await;
        match first {
            Err(Error::Api {
                code: ErrorCode::TokenExpired | ErrorCode::InvalidToken,
                ..
            }) => {
                self.refresh_unless_done(&access).await?;
                let access = self.access_token().await;
                self.client.call(method, path, Some(&access), body).await
            }
            answer => answer,
        }
    }

    /// Refreshes, unless a concurrent request already replaced `seen`.
    async fn refresh_unless_done(&self, seen: &SecretString) -> Result<(), Error> {
        let mut tokens = self.tokens.lock().await;
        if tokens.access.expose_secret() != seen.expose_secret() {
            return Ok(());
        }
        let body = json!({ "refresh_token": tokens.refresh.expose_secret() });
        let answer: TokenResponse = self
            .client
            .call(Method::POST, "/v1/auth/refresh", None, Some(&body))
            .await?;
        *tokens = Tokens {
            access: answer.access_token.into(),
            refresh: answer.refresh_token.into(),
        };
        Ok(())
    }
}

impl Client {
    /// A path of `segments`, each percent-encoded as needed.
    pub(crate) fn path(&self, segments: &[&str]) -> Result<String, Error> {
        let mut url = Url::parse("http://base/").map_err(|e| Error::Unexpected {
            status: 0,
            body: e.to_string(),
        })?;
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        Ok(url.path().to_owned())
    }
}
