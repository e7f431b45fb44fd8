//! Who is asking: where a request came from, and the holder of a token.

use crate::audit::{Event, Kind};

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
