//! The functions on hot paths (SPEC §8), at the server's parameters:
//! password hashing, access-token signing and verifying, refresh-token
//! hashing and successor derivation, and the `/v1/auth/check` decision.
//!
//! `cargo bench -p portcullis-bench`
#![allow(clippy::expect_used)] // a benchmark that cannot set up has nothing to say

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::clock::{Clock, SystemClock};
use portcullis::crypto::{new_refresh_token, token_hash, Secrets};
use portcullis::password::Hasher;
use portcullis::revocations::Revocations;
use portcullis::store::Db;
use portcullis::tokens::{Subject, Tokens};
use secrecy::SecretString;
use tokio::runtime::Runtime;

/// More distinct tokens than the verified-token cache holds, so that each
/// verification of them is a cold one.
const COLD_TOKENS: usize = 20_000;

fn passwords(c: &mut Criterion) {
    let rt = runtime();
    let secrets = Arc::new(Secrets::from_key([7; 32]));
    let hasher = Hasher::new(1, 0).expect("hasher");
    let password = SecretString::from("correct horse battery staple");
    let stored = rt.block_on(hasher.hash(&secrets, &password)).expect("hash");
    let mut group = c.benchmark_group("password (argon2id 19 MiB, t=2, p=1)");
    group.sample_size(10);
    group.bench_function("hash", |b| {
        b.iter(|| rt.block_on(hasher.hash(&secrets, &password)).expect("hash"))
    });
    group.bench_function("verify", |b| {
        b.iter(|| {
            rt.block_on(hasher.verify(&password, Some(&stored)))
                .expect("verify")
        })
    });
    group.finish();
}

fn access_tokens(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let secrets = Secrets::from_key([7; 32]);
    let now = SystemClock.now();
    let (tokens, revocations) = rt.block_on(async {
        let db = Db::connect(&url).await.expect("db");
        db.migrate().await.expect("migrate");
        let tokens = Tokens::load(&db, &secrets, "http://bench", "bench", 86_400, now)
            .await
            .expect("tokens");
        let revocations = Revocations::load(&db, 86_400, now)
            .await
            .expect("revocations");
        (tokens, revocations)
    });
    let issue = |n: usize| {
        let session_id = format!("ses_{n:032}");
        let subject = Subject {
            user_id: "usr_00000000000000000000000000000001",
            email: "bench@example.com",
            session_id: &session_id,
            session_ends: now + 86_400,
        };
        tokens.issue(&secrets, subject, now).expect("issue").token
    };

    let mut group = c.benchmark_group("access token (EdDSA)");
    group.bench_function("sign", |b| b.iter(|| issue(black_box(1))));
    let cold: Vec<String> = (0..COLD_TOKENS).map(issue).collect();
    let mut next = cold.iter().cycle();
    group.bench_function("verify, not seen before", |b| {
        b.iter(|| {
            tokens
                .verify(next.next().expect("cycle"), now)
                .expect("valid")
        })
    });
    let warm = issue(0);
    group.bench_function("check decision, token seen before", |b| {
        b.iter(|| {
            let claims = tokens.verify(black_box(&warm), now).expect("valid");
            assert!(!revocations.session_revoked(&claims.sid));
        })
    });
    group.finish();
}

fn refresh_tokens(c: &mut Criterion) {
    let secrets = Secrets::from_key([7; 32]);
    let token = new_refresh_token(&secrets);
    let mut group = c.benchmark_group("refresh token");
    group.bench_function("new", |b| b.iter(|| new_refresh_token(&secrets)));
    group.bench_function("hash", |b| b.iter(|| token_hash(black_box(&token))));
    group.bench_function("successor", |b| {
        b.iter(|| secrets.successor_refresh_token(black_box(&token)))
    });
    group.finish();
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

criterion_group!(benches, passwords, access_tokens, refresh_tokens);
criterion_main!(benches);
