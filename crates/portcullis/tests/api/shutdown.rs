//! Graceful shutdown of the real binary: SIGTERM during a load run stops
//! accepting, lets the requests in flight finish, and exits in time; every
//! request that was answered is in the database.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

both!(sigterm_during_load_loses_no_acknowledged_request);

async fn sigterm_during_load_loses_no_acknowledged_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let (base, mut server) = app.another_process();
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let http = reqwest::Client::new();
    let mut load = Vec::new();
    for worker in 0..16 {
        let (base, http, acknowledged) = (base.clone(), http.clone(), acknowledged.clone());
        load.push(tokio::spawn(async move {
            for n in 0.. {
                let email = format!("load-{worker}-{n}@example.com");
                let body = json!({ "email": email, "password": PASSWORD });
                let sent = http
                    .post(format!("{base}/v1/auth/register"))
                    .json(&body)
                    .send();
                let Ok(response) = sent.await else {
                    return; // no longer accepted: the server is going away
                };
                if response.status() == 200 && response.json::<serde_json::Value>().await.is_ok() {
                    acknowledged.lock().unwrap().push(email);
                }
            }
        }));
    }
    eventually("registrations are being answered", || async {
        (acknowledged.lock().unwrap().len() >= 20).then_some(())
    })
    .await;

    let pid = server.0.id().to_string();
    let signalled = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        // The drain bound is 10 s; a hang shows here, not a slow machine.
        assert!(
            signalled.elapsed() < Duration::from_secs(30),
            "still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status}");
    for task in load {
        tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .unwrap()
            .unwrap();
    }

    let acknowledged = acknowledged.lock().unwrap().clone();
    let db = app.db().await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT email FROM users")
        .fetch_all(db.pool())
        .await
        .unwrap();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|e| !stored.contains(e))
        .collect();
    assert!(missing.is_empty(), "answered but not stored: {missing:?}");
    assert!(acknowledged.len() >= 20);
}
