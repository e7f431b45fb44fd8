//! Seeds a Portcullis database for `bench/run.sh`, faster than its flows
//! could (each of which would cost a password hash): verified accounts,
//! login keys with known codes for `/v1/auth/verify`, and device sessions
//! with their refresh tokens for `/v1/auth/refresh`.
//!
//! `bench-seed USERS KEYS SESSIONS DIR` reads the server's own settings
//! (`PORTCULLIS_DATABASE_URL`, `PORTCULLIS_MASTER_KEY`, …) and writes
//! `DIR/keys.txt` (`email_key code` per line) and `DIR/refresh.txt` (one
//! refresh token per line). The accounts are `bench<N>@example.com`, with
//! the password [`PASSWORD`]; keys and sessions go to all but `bench0`, whose
//! own logins would retire its keys.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use portcullis::audit::{self, Event, Kind};
use portcullis::clock::{Clock, SystemClock};
use portcullis::crypto::{new_refresh_token, token_hash, Secrets};
use portcullis::domain::Device;
use portcullis::password::Hasher;
use portcullis::store::keys::{self, NewKey, Purpose};
use portcullis::store::sessions::{self, NewSession};
use portcullis::store::users::{self, NewUser};
use portcullis::store::{Batch, Db};
use portcullis::Settings;
use secrecy::SecretString;

const PASSWORD: &str = "bench password of the load run";
/// Rows per transaction.
const BATCH: usize = 1000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let usage = "usage: bench-seed USERS KEYS SESSIONS DIR";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [users, keys, sessions, dir] = args.as_slice() else {
        anyhow::bail!(usage);
    };
    let (users, keys, sessions): (usize, usize, usize) =
        (users.parse()?, keys.parse()?, sessions.parse()?);
    anyhow::ensure!(users > 1, usage);
    let dir = PathBuf::from(dir);

    let config = Settings::load(None)?.build()?;
    let secrets = Arc::new(Secrets::load(&config)?);
    let db = Db::connect(&config.database_url).await?;
    db.migrate().await?;
    let now = SystemClock.now();
    let ids: Vec<String> = (0..users).map(|_| secrets.random_id("usr_")).collect();

    let hash = Hasher::new(1, 0)?
        .hash(&secrets, &SecretString::from(PASSWORD))
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    for (batch, chunk) in ids.chunks(BATCH).enumerate() {
        let mut tx = db.begin().await?;
        for (i, id) in chunk.iter().enumerate() {
            let email = format!("bench{}@example.com", batch * BATCH + i);
            let user = NewUser {
                id,
                email: &email,
                username: None,
                name: None,
                password_hash: &hash,
                verified: true,
            };
            users::insert(&mut tx, &user, now).await?;
        }
        tx.commit().await?;
    }

    let mut lines = String::new();
    for first in (0..keys).step_by(BATCH) {
        let mut tx = db.begin().await?;
        for n in first..keys.min(first + BATCH) {
            let email_key = secrets.random_uuid();
            let code = secrets.random_code(config.code_digits);
            let key = NewKey {
                email_key: &email_key,
                user_id: Some(&ids[owner(n, users)]),
                email: &format!("bench{}@example.com", owner(n, users)),
                purpose: Purpose::Login,
                code_hash: &secrets.code_hash(&email_key, &code),
                expires_at: now + 3600,
                device: None,
                password_hash: None,
                username: None,
                second_factor: false,
            };
            let mut batch = Batch::default();
            keys::insert(&mut batch, &key, now)?;
            batch.run(&mut tx).await?;
            writeln!(lines, "{email_key} {code}")?;
        }
        tx.commit().await?;
    }
    std::fs::write(dir.join("keys.txt"), lines).context("keys.txt")?;

    let mut lines = String::new();
    let device = Device::default();
    for first in (0..sessions).step_by(BATCH) {
        let mut tx = db.begin().await?;
        for n in first..sessions.min(first + BATCH) {
            let session_id = secrets.random_id("ses_");
            let expires_at = now + 86_400;
            let session = NewSession {
                id: &session_id,
                user_id: &ids[owner(n, users)],
                device_id: &secrets.random_id("dev_"),
                device: &device,
                ip: None,
                user_agent: None,
                expires_at,
            };
            let token = new_refresh_token(&secrets);
            let event = Event::new(Kind::LoginSucceeded)
                .user(session.user_id)
                .session(&session_id)
                .detail("seed");
            let entry = audit::entry(&event, now);
            let mut batch = Batch::default();
            sessions::open(&mut batch, &session, &token_hash(&token), &entry, now);
            batch.run(&mut tx).await?;
            writeln!(lines, "{token}")?;
        }
        tx.commit().await?;
    }
    std::fs::write(dir.join("refresh.txt"), lines).context("refresh.txt")?;
    db.close().await;
    println!("seeded {users} accounts, {keys} login keys, {sessions} sessions");
    Ok(())
}

/// The account of the `n`th key or session: any but the first.
fn owner(n: usize, users: usize) -> usize {
    1 + n % (users - 1)
}
