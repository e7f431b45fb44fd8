//! The one integration-test binary: each test starts the real server on
//! port 0 and talks HTTP to it, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod helpers;
mod smtp;

mod abuse;
mod api_keys;
mod audit;
mod bad_input;
mod binary;
mod clients;
mod codes;
mod contract;
mod dev_login;
mod files;
mod floods;
mod flow;
mod forward_auth;
mod guard;
mod machine_clients;
mod metrics;
mod nginx;
mod operations;
mod operator_cli;
mod outage;
mod password;
mod refresh;
mod sdk;
mod sessions;
mod shutdown;
mod signing_keys;
mod totp;
