//! Who is asking: where a request came from, and the holder of a token or an API key.

use crate::audit::{Event, Kind};
use crate::clock::Timestamp;
use crate::error::ApiError;

/// Where a request came from, as recorded on its device session and in the audit log.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The holder of a valid access token of a live session.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub session_id: String,
}

/// The holder of a live API key.
#[derive(Debug, Clone)]
pub struct KeyHolder {
    pub user_id: String,
    pub email: String,
    pub key_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<Timestamp>,
}

impl KeyHolder {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Whoever an endpoint that takes a token or an API key serves.
#[derive(Debug, Clone)]
pub enum Principal {
    Session(Caller),
    Key(KeyHolder),
}

impl Principal {
    pub fn user_id(&self) -> &str {
        match self {
            Principal::Session(caller) => &caller.user_id,
            Principal::Key(key) => &key.user_id,
        }
    }

    pub fn session_id(&self) -> Option<&str> {
        match self {
            Principal::Session(caller) => Some(&caller.session_id),
            Principal::Key(_) => None,
        }
    }

    /// A session may do anything its user may; a key only what its scopes name.
    pub fn require(&self, scope: &str) -> Result<(), ApiError> {
        match self {
            Principal::Session(_) => Ok(()),
            Principal::Key(key) if key.has_scope(scope) => Ok(()),
            Principal::Key(_) => Err(ApiError::InsufficientPermissions),
        }
    }
}

impl Client {
    /// An audit event of a request from here.
    pub fn event(&self, kind: Kind) -> Event<'_> {
        Event::new(kind).from(self.ip.as_deref(), self.user_agent.as_deref())
    }
}

/// Whom an audit event is about, and where the request came from.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub client: &'a Client,
    pub user_id: Option<&'a str>,
    pub device_id: Option<&'a str>,
}

impl<'a> Who<'a> {
    pub fn event(self, kind: Kind) -> Event<'a> {
        let event = Event {
            user_id: self.user_id,
            ..self.client.event(kind)
        };
        event.device(self.device_id)
    }
}
