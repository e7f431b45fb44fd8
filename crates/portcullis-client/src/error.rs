//! The client's errors: the API's own (its envelope, with the stable code),
//! or a failure to reach it or to read its answer.

use portcullis_proto::{ErrorCode, ErrorEnvelope};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused, with a code of the API's contract.
    #[error("{code:?} ({status}): {message} [trace {trace_id}]")]
    Api {
        status: u16,
        code: ErrorCode,
        message: String,
        /// The `trace_id` to quote when asking the server's operators.
        trace_id: String,
    },
    /// The server could not be reached, or the connection broke.
    #[error("cannot reach the server: {0}")]
    Transport(#[from] reqwest::Error),
    /// An answer that is not the documented one (a proxy's page, say).
    #[error("unexpected answer ({status}): {body}")]
    Unexpected { status: u16, body: String },
}

impl Error {
    /// The API's code, if the server refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn from_answer(status: u16, body: &str) -> Error {
        match serde_json::from_str::<ErrorEnvelope>(body) {
            Ok(envelope) => Error::Api {
                status,
                code: envelope.error.code,
                message: envelope.error.message,
                trace_id: envelope.error.trace_id,
            },
            Err(_) => Error::Unexpected {
                status,
                body: body.chars().take(512).collect(),
            },
        }
    }
}
