//! Everything a request needs, built once at start.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::Secrets;
use crate::mail::Mailer;
use crate::password::Hasher;
use crate::store::Db;
use crate::tokens::Tokens;

pub struct Services {
    pub config: Config,
    pub db: Db,
    pub secrets: Arc<Secrets>,
    pub tokens: Tokens,
    pub hasher: Hasher,
    pub mailer: Mailer,
    pub clock: Arc<dyn Clock>,
}

impl Services {
    pub fn now(&self) -> crate::clock::Timestamp {
        self.clock.now()
    }
}
