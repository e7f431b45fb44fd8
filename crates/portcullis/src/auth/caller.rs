//! Who is asking: where a request came from, and the holder of a token.

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
