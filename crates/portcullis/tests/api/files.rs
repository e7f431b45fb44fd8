//! What the server leaves on disk is its own: the database and its journal,
//! mail files holding codes, the development key; and it refuses keys that
//! others could read or that were made by hand.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use serde_json::json;

use crate::binary::{portcullis, Server};
use crate::helpers::*;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_database_its_journal_and_mail_files_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = portcullis(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("PORTCULLIS_LOG_FORMAT", "json")
        .env("PORTCULLIS_MAIL_TRANSPORT", "file")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = lines(child.stderr.take().unwrap());
    let _server = Server(child);
    let address = listening_address(&stderr);
    let (status, body) = read(
        reqwest::Client::new()
            .post(format!("http://{address}/v1/auth/register"))
            .json(&json!({ "email": "disk@example.com", "password": PASSWORD }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mail = dir.path().join("mail");
    let eml = wait_for_file(&mail, ".eml").await;
    assert_eq!(mode(&eml), 0o600, "{}", eml.display());
    assert_eq!(mode(&mail), 0o700);
    for file in ["portcullis.db", "portcullis.db-wal", "portcullis.db-shm"] {
        assert_eq!(mode(&dir.path().join(file)), 0o600, "{file}");
    }
}

async fn wait_for_file(dir: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    for _ in 0..200 {
        let found = std::fs::read_dir(dir).ok().and_then(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(suffix))
        });
        if let Some(path) = found {
            return path;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("no {suffix} file appeared in {}", dir.display());
}

/// Runs `serve` expecting it to refuse to start; returns what it said.
fn refusal(dir: &std::path::Path, env: &[(&str, &str)]) -> String {
    let out = portcullis(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{env:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("portcullis.key");
    std::fs::write(&key, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let said = refusal(dir.path(), &[]);
    assert!(said.contains("can be read by other users"), "{said}");
    let out = portcullis(dir.path())
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn production_refuses_a_master_key_made_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("PORTCULLIS_MODE", "production"),
        ("PORTCULLIS_MAIL_TRANSPORT", "file"),
        // 32 zero bytes.
        (
            "PORTCULLIS_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
    ];
    let said = refusal(dir.path(), &env);
    assert!(said.contains("made by hand"), "{said}");
    // `config check` says so too, as a configuration error.
    let out = portcullis(dir.path())
        .args(["config", "check"])
        .envs(env)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("made by hand"));
}

#[test]
fn a_database_password_never_reaches_an_error() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        // Mistyped: refused by the configuration check.
        "postgress://portcullis:hunter2-secret@127.0.0.1:1/db",
        // Well formed, but nothing listens there.
        "postgres://portcullis:hunter2-secret@127.0.0.1:1/db",
    ] {
        for command in [&["config", "check"][..], &["migrate"], &["user", "list"]] {
            let out = portcullis(dir.path())
                .args(command)
                .env("PORTCULLIS_DATABASE_URL", url)
                .output()
                .unwrap();
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!said.contains("hunter2"), "{command:?} with {url}: {said}");
        }
    }
    let said = refusal(
        dir.path(),
        &[(
            "PORTCULLIS_DATABASE_URL",
            "postgres://portcullis:hunter2-secret@127.0.0.1:1/db",
        )],
    );
    assert!(!said.contains("hunter2"), "{said}");
    assert!(said.contains("database"), "{said}");
}

#[tokio::test]
async fn the_open_file_limit_is_raised_to_what_the_connection_cap_needs() {
    let dir = tempfile::tempdir().unwrap();
    // A soft limit of 1,024, as many systems start services with.
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -Sn 1024 && exec "$0" serve --listen 127.0.0.1:0"#)
        .arg(env!("CARGO_BIN_EXE_portcullis"))
        .current_dir(dir.path())
        .env("PORTCULLIS_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = lines(child.stderr.take().unwrap());
    let pid = child.id();
    let _server = Server(child);
    wait_for(&stderr, "the listening log line", |line| {
        line.contains("portcullis listening").then(String::new)
    });
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap();
    let hard: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    // 1,024 connections, 32 for probes, 128 for the rest.
    assert!(soft >= 1_184.min(hard), "{limits}");
}

#[tokio::test]
async fn a_server_whose_log_pipe_closes_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = portcullis(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("PORTCULLIS_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _server = Server(child);
    let log = lines(stderr);
    let address = listening_address(&log);
    // Whoever read the log has gone: the pipe closes once the reader notices.
    drop(log);
    let http = reqwest::Client::new();
    for _ in 0..50 {
        let response = http
            .get(format!("http://{address}/v1/auth/me"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
}
