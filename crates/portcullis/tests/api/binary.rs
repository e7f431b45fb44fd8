//! The `portcullis` binary as a newcomer and an operator use it: no
//! configuration, SQLite in the working folder, codes on the console.

use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use crate::helpers::{code_in, lines, listening_address, read, wait_for, PASSWORD};

pub(crate) fn portcullis(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.current_dir(dir);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("PORTCULLIS_")) {
        cmd.env_remove(name);
    }
    cmd
}

/// Kills the server when the test ends, however it ends.
pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_with_no_configuration_walks_the_whole_flow() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = portcullis(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("PORTCULLIS_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());
    let _server = Server(child);
    let address = listening_address(&stderr);
    let base = format!("http://{address}");
    let http = reqwest::Client::new();

    let (status, step1) = read(
        http.post(format!("{base}/v1/auth/register"))
            .json(&json!({ "email": "new@example.com", "password": PASSWORD }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{step1}");
    let code = wait_for(&stdout, "the emailed code", |line| {
        line.contains("code is: ").then(|| code_in(line))
    });
    let (status, tokens) = read(
        http.post(format!("{base}/v1/auth/verify"))
            .json(&json!({ "email_key": step1["email_key"], "verification_code": code, "is_register": true }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let (status, me) = read(
        http.get(format!("{base}/v1/auth/me"))
            .bearer_auth(tokens["token"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{me}");

    // Each request has one log line with its trace id; no line holds a password or token
    // (a 4-digit code cannot be told from other digits, so it is not searched for).
    let response = http
        .get(format!("{base}/no/such/page"))
        .send()
        .await
        .unwrap();
    let trace_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut logged = Vec::new();
    wait_for(&stderr, "the request's log line", |line| {
        logged.push(line.to_owned());
        line.contains(&trace_id).then(String::new)
    });
    let secrets = [
        PASSWORD,
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
    ];
    for line in &logged {
        assert!(
            secrets.iter().all(|secret| !line.contains(secret)),
            "a secret in the log: {line}"
        );
    }
    assert!(logged.len() > 3, "{logged:?}");

    // The defaults: a SQLite file and a private development key in the working folder.
    assert!(dir.path().join("portcullis.db").exists());
    let key = dir.path().join("portcullis.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

/// Runs a `--json` command that must succeed, and returns what it printed.
fn json_command(dir: &std::path::Path, args: &[&str]) -> Value {
    let out = portcullis(dir).arg("--json").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn user_commands_print_json_for_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let create = [
        "user",
        "create",
        "--email",
        "Ops@Example.com",
        "--password",
        PASSWORD,
    ];
    let created = json_command(dir.path(), &[&create[..], &["--username", "ops"]].concat());
    assert_eq!(created["email"], "ops@example.com");
    assert_eq!(created["verified"], true);

    let again = portcullis(dir.path()).args(create).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    json_command(dir.path(), &["user", "disable", "ops@example.com"]);
    let users = json_command(dir.path(), &["user", "list"]);
    assert_eq!(users[0]["disabled"], true);
}

#[test]
fn production_mode_refuses_unsafe_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("PORTCULLIS_MODE", "production")],
            "console mail transport",
        ),
        (
            &[
                ("PORTCULLIS_MODE", "production"),
                ("PORTCULLIS_MAIL_TRANSPORT", "file"),
            ],
            "PORTCULLIS_MASTER_KEY",
        ),
        (
            &[("PORTCULLIS_ACCESS_TTL", "soon")],
            "PORTCULLIS_ACCESS_TTL",
        ),
    ];
    for (env, complaint) in cases {
        let out = portcullis(dir.path())
            .args(["config", "check"])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{env:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(complaint), "{env:?}: {stderr}");
    }
    let out = portcullis(dir.path())
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
