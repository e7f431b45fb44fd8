//! Portcullis: a self-hosted authentication server.
//!
//! [`App`] builds what `portcullis serve` runs; the integration tests start
//! exactly that on port 0.

pub mod admin;
mod app;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod password;
pub mod revocations;
mod server;
pub mod services;
pub mod store;
pub mod tokens;

pub use app::App;
pub use config::{Config, Settings};
pub use server::Limits;
