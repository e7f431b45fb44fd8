//! The documented Python and JavaScript clients, run against the real server
//! with only their base URL changed.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::*;

both!(
    python_client_logs_in_calls_and_refreshes,
    javascript_client_logs_in_calls_and_refreshes
);

async fn python_client_logs_in_calls_and_refreshes(backend: Backend) {
    run_client(backend, "python3", "freddy_auth.py").await;
}

async fn javascript_client_logs_in_calls_and_refreshes(backend: Backend) {
    run_client(backend, "node", "freddy_auth.mjs").await;
}

/// Runs a client script: it logs in, reads the emailed code on stdin, calls
/// the API, then refreshes after a refused token and calls it again.
async fn run_client(backend: Backend, program: &str, script: &str) {
    let app = spawn_app(backend).await;
    app.signup("client@example.com").await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/");
    let mut child = Command::new(program)
        .arg(format!("{path}{script}"))
        .args([&app.base, "client@example.com", PASSWORD])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());
    let prompt = tokio::task::block_in_place(|| {
        wait_for(&stdout, "the client's prompt", |line| {
            line.contains("Check your email").then(String::new)
        })
    });
    assert!(prompt.is_empty());
    let code = app.code_for("client@example.com").await;
    writeln!(child.stdin.take().unwrap(), "{code}").unwrap();
    let results: Vec<Value> = tokio::task::block_in_place(|| {
        (0..2)
            .map(|i| {
                // Python's input() prompt shares the line with the next output.
                let line = wait_for(&stdout, &format!("API result {i}"), |line| {
                    line.find('{').map(|at| line[at..].to_owned())
                });
                serde_json::from_str(&line).unwrap_or_else(|_| {
                    let errors: Vec<String> = stderr.try_iter().collect();
                    panic!("{program} printed {line}; stderr: {}", errors.join("\n"))
                })
            })
            .collect()
    });
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    assert!(
        status.success(),
        "{program} failed: {}",
        stderr.try_iter().collect::<Vec<_>>().join("\n")
    );
    for result in results {
        assert_eq!(result["email"], "client@example.com", "{result}");
    }
}
