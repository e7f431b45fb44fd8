//! The yardstick of `/v1/auth/check` (SPEC §8): an axum handler that does no
//! work and answers with one header, on the runtime the server uses.
//!
//! `bare-axum [ADDR]` listens on ADDR (default 127.0.0.1:0) and prints
//! `listening on ADDR` once it is ready.

use axum::routing::get;
use axum::Router;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let app = Router::new().route(
        "/",
        get(|| async { ([("x-auth-user-id", "usr_bench")], "") }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
