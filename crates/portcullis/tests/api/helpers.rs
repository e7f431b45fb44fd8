//! `TestApp`: the real server on port 0 with a fresh database, a manual
//! clock and an SMTP sink, plus typed helpers for the flows.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::sync::{mpsc, Arc, Once};
use std::time::Duration;

use portcullis::clock::ManualClock;
use portcullis::{App, Settings};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::smtp::{Mail, SmtpSink};

pub const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares each listed `async fn name(backend: Backend)` as two tests,
/// `name::sqlite` and `name::postgres`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if crate::helpers::postgres_tests_run().await {
                    super::$name(crate::helpers::Backend::Postgres).await
                }
            }
        }
    )*};
}

fn postgres_admin_url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Whether the PostgreSQL tests run. They need PostgreSQL: an unreachable one
/// fails them, unless `PORTCULLIS_TEST_SKIP_POSTGRES` is set (and honoured only
/// outside CI), and then they pass without running and the terminal says so.
pub async fn postgres_tests_run() -> bool {
    let in_ci = truthy("CI");
    if !in_ci && truthy("PORTCULLIS_TEST_SKIP_POSTGRES") {
        static SAID: Once = Once::new();
        SAID.call_once(|| {
            // Straight to stderr: libtest keeps what `eprintln!` prints in a passing test.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!! PORTCULLIS_TEST_SKIP_POSTGRES is set: the PostgreSQL tests pass WITHOUT RUNNING !!!!!!!!\n"
            );
        });
        return false;
    }
    let connect = sqlx::PgConnection::connect(&postgres_admin_url());
    let why = match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            return true;
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => "timed out".into(),
    };
    let url = postgres_admin_url();
    if in_ci {
        panic!("PostgreSQL is required in CI but unreachable at {url}: {why}");
    }
    panic!(
        "PostgreSQL is unreachable at {url} ({why}): start it, point PORTCULLIS_TEST_POSTGRES \
         at one, or set PORTCULLIS_TEST_SKIP_POSTGRES=1 to skip the PostgreSQL tests"
    );
}

/// A variable set to something other than empty, `0`, `false`, `no` or `off`
/// (CI systems set `CI=true`; `CI=false` is not CI).
fn truthy(name: &str) -> bool {
    std::env::var(name).is_ok_and(|value| {
        !matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "" | "0" | "false" | "no" | "off"
        )
    })
}

/// A database for one test, removed when the test ends.
enum TestDb {
    Sqlite,
    Postgres { name: String },
}

impl TestDb {
    async fn create(backend: Backend, dir: &std::path::Path) -> (Self, String) {
        match backend {
            Backend::Sqlite => (
                TestDb::Sqlite,
                format!("sqlite://{}", dir.join("test.db").display()),
            ),
            Backend::Postgres => {
                let mut bytes = [0u8; 8];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                    .unwrap();
                let name = format!("portcullis_test_{}", portcullis::crypto::hex(&bytes));
                let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
                    .await
                    .unwrap();
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let base = postgres_admin_url();
                let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
                (TestDb::Postgres { name }, url)
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { name } = self {
            let name = name.clone();
            // Drop cannot await: finish the clean-up on a runtime of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut conn)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub smtp: SmtpSink,
    pub settings: Settings,
    _dir: tempfile::TempDir,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    _db: TestDb,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    TestApp::start(backend, |_| {}).await
}

impl TestApp {
    /// Starts a server; `configure` may change settings before it is built.
    pub async fn start(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let smtp = SmtpSink::start().await;
        let (db, url) = TestDb::create(backend, dir.path()).await;
        let mut settings = Settings::default();
        settings
            .set("listen", "127.0.0.1:0")
            .set("database_url", url)
            .set("master_key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
            .set("issuer", "http://portcullis.test")
            .set("mail_transport", "smtp")
            .set("smtp_url", smtp.url())
            // Every test's requests come from one address: the per-IP and
            // per-address mail budgets are for the tests of budgets to set.
            .set("login_ip_budget", "10000/1m")
            .set("code_ip_budget", "10000/1m")
            .set("mail_ip_budget", "10000/1h")
            .set("mail_address_budget", "10000/1h");
        configure(&mut settings);
        let mut app = TestApp {
            base: String::new(),
            http: reqwest::Client::new(),
            clock: ManualClock::new(),
            smtp,
            settings,
            _dir: dir,
            server: None,
            _db: db,
        };
        app.launch().await;
        app
    }

    async fn launch(&mut self) {
        let (base, server) = self.serve().await;
        self.base = base;
        self.server = Some(server);
    }

    /// Starts a server on this test's settings, database and clock.
    async fn serve(&self) -> (String, (oneshot::Sender<()>, JoinHandle<()>)) {
        self.serve_with(&self.settings).await
    }

    async fn serve_with(
        &self,
        settings: &Settings,
    ) -> (String, (oneshot::Sender<()>, JoinHandle<()>)) {
        let config = settings.build().unwrap();
        let app = App::build_with_clock(config, self.clock.clone())
            .await
            .unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        (base, (stop, handle))
    }

    /// A second instance on the same database, as in a cluster; it stops when the
    /// returned sender is dropped.
    pub async fn another_instance(&self) -> (String, oneshot::Sender<()>) {
        self.another_instance_with(|_| {}).await
    }

    /// Another instance whose settings `configure` changes (its database URL, say).
    pub async fn another_instance_with(
        &self,
        configure: impl FnOnce(&mut Settings),
    ) -> (String, oneshot::Sender<()>) {
        let mut settings = self.settings.clone();
        configure(&mut settings);
        let (base, (stop, _)) = self.serve_with(&settings).await;
        (base, stop)
    }

    /// A second server process, the real binary, on this test's database and
    /// settings, as another node of a cluster; it stops when the guard drops.
    /// Returns once it listens (read from its log, blocking).
    pub fn another_process(&self) -> (String, crate::binary::Server) {
        let dir = tempfile::tempdir().unwrap();
        let mut command = crate::binary::portcullis(dir.path());
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("PORTCULLIS_LOG_FORMAT", "json")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for key in [
            "database_url",
            "master_key",
            "issuer",
            // Both processes' mail workers deliver from the one outbox.
            "mail_transport",
            "smtp_url",
            "live_keys_per_account",
            "login_ip_budget",
            "code_ip_budget",
            "mail_ip_budget",
            "mail_address_budget",
        ] {
            if let Some(value) = self.settings.get(key) {
                command.env(format!("PORTCULLIS_{}", key.to_uppercase()), value);
            }
        }
        let mut child = command.spawn().unwrap();
        let stderr = lines(child.stderr.take().unwrap());
        let server = crate::binary::Server(child);
        let address = listening_address(&stderr);
        // Keep reading its log: a closed pipe would fail the server's next log line.
        std::thread::spawn(move || stderr.into_iter().for_each(drop));
        (format!("http://{address}"), server)
    }

    /// Stops the server gracefully.
    pub async fn stop(&mut self) {
        if let Some((stop, handle)) = self.server.take() {
            let _ = stop.send(());
            handle.await.unwrap();
        }
    }

    /// Stops the server and starts a new one on the same database and clock.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        read(
            self.http
                .post(self.url(path))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_auth(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        read(
            self.http
                .post(self.url(path))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> (StatusCode, Value) {
        read(
            self.http
                .get(self.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        read(self.http.get(self.url(path)).send().await.unwrap()).await
    }

    /// The next message delivered to `email` (waits for the outbox worker).
    pub async fn mail_to(&self, email: &str) -> Mail {
        for _ in 0..200 {
            {
                let mut received = self.smtp.received.lock().unwrap();
                if let Some(i) = received
                    .iter()
                    .position(|m| m.to.iter().any(|to| to == email))
                {
                    return received.remove(i);
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no mail for {email} arrived");
    }

    /// The code in the next message to `email`, as the user reads it.
    pub async fn code_for(&self, email: &str) -> String {
        code_in(&self.mail_to(email).await.data)
    }

    /// Registers and returns the `email_key`.
    pub async fn register(&self, email: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/auth/register",
                json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["email_key"].as_str().unwrap().to_owned()
    }

    /// Registers and verifies; returns the token body.
    pub async fn signup(&self, email: &str) -> Value {
        let key = self.register(email).await;
        let code = self.code_for(email).await;
        let (status, body) = self
            .post(
                "/v1/auth/verify",
                json!({ "email_key": key, "verification_code": code, "is_register": true }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Login step 1 with the default password; returns the `email_key`.
    pub async fn login_key(&self, email: &str, extra: Value) -> String {
        let mut body = json!({ "email_or_username": email, "password": PASSWORD });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        let (status, body) = self.post("/v1/auth/login", body).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["next_step"], "email_verification", "{body}");
        body["email_key"].as_str().unwrap().to_owned()
    }

    /// Both login steps; returns the token body.
    pub async fn login(&self, email: &str, device: Value) -> Value {
        let key = self.login_key(email, json!({})).await;
        let code = self.code_for(email).await;
        let (status, body) = self
            .post(
                "/v1/auth/verify",
                json!({ "email_key": key, "verification_code": code, "device_info": device }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((stop, _)) = self.server.take() {
            let _ = stop.send(());
        }
    }
}

/// Reads a JSON answer. Every answer carries its trace id in `X-Request-Id`,
/// and an error envelope repeats it as `trace_id`.
pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    let request_id = request_id.unwrap_or_else(|| panic!("no X-Request-Id ({status}): {text}"));
    assert!(request_id.starts_with("req_"), "{request_id}");
    if let Some(trace_id) = body["error"].get("trace_id") {
        assert_eq!(trace_id, request_id.as_str(), "{text}");
    }
    (status, body)
}

/// The digits after "code is: " in a message.
pub fn code_in(message: &str) -> String {
    let at = message
        .find("code is: ")
        .unwrap_or_else(|| panic!("no code in: {message}"));
    message[at + 9..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

/// A code of the same length as `code` that is not `code`.
pub fn wrong_code(code: &str) -> String {
    let modulus = 10u32.pow(code.len() as u32);
    let next = (code.parse::<u32>().unwrap() + 1) % modulus;
    format!("{next:0width$}", width = code.len())
}

/// Polls `check` until it finds something, for at most ten seconds.
pub async fn eventually<T, F>(what: &str, mut check: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Option<T>>,
{
    for _ in 0..400 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} did not happen within ten seconds");
}

/// Asserts the whole error envelope (SPEC §4): `code` and `status`, the name
/// and type of that status, non-empty messages, an RFC 3339 timestamp, a
/// `req_` trace id, and details: `{}` for the codes that carry none, and the
/// documented fields for those that do.
#[track_caller]
pub fn assert_error(status: StatusCode, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status.as_u16(), expected_status, "{body}");
    assert_eq!(keys(body), ["error", "success"], "{body}");
    assert_eq!(body["success"], false, "{body}");
    let error = &body["error"];
    assert_eq!(
        keys(error),
        [
            "code",
            "details",
            "message",
            "name",
            "status",
            "system_message",
            "timestamp",
            "trace_id",
            "type"
        ],
        "{body}"
    );
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["status"], expected_status, "{body}");
    let (name, kind) = name_and_type(expected_status);
    // The client API documents its own name for this one.
    let name = if code == "VALIDATION_FAILURE" {
        "ValidationException"
    } else {
        name
    };
    assert_eq!(error["name"], name, "{body}");
    assert_eq!(error["type"], kind, "{body}");
    for text in ["message", "system_message"] {
        let text = error[text].as_str().unwrap_or_default();
        assert!(!text.trim().is_empty(), "{body}");
    }
    let timestamp = error["timestamp"].as_str().unwrap_or_default();
    assert!(
        time::OffsetDateTime::parse(timestamp, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "timestamp: {body}"
    );
    let trace_id = error["trace_id"].as_str().unwrap_or_default();
    assert!(trace_id.starts_with("req_") && trace_id.len() > 4, "{body}");
    let details = &error["details"];
    assert!(details.is_object(), "{body}");
    match code {
        "VALIDATION_ERROR" => {
            let fields = details.as_object().unwrap();
            assert!(!fields.is_empty(), "{body}");
            for message in fields.values() {
                assert!(message.as_str().is_some_and(|m| !m.is_empty()), "{body}");
            }
        }
        "INVALID_VERIFICATION_CODE" => {
            assert_eq!(keys(details), ["attempts_remaining"], "{body}");
            assert!(details["attempts_remaining"].is_u64(), "{body}");
        }
        "RESEND_TOO_SOON" | "RATE_LIMITED" | "TOO_MANY_LOGIN_ATTEMPTS" => {
            assert_eq!(keys(details), ["retry_after"], "{body}");
            assert!(
                details["retry_after"].as_u64().is_some_and(|s| s > 0),
                "{body}"
            );
        }
        _ => assert_eq!(details, &json!({}), "{body}"),
    }
}

/// [`assert_error`], and the details are exactly `details`.
#[track_caller]
pub fn assert_error_details(
    status: StatusCode,
    body: &Value,
    expected_status: u16,
    code: &str,
    details: Value,
) {
    assert_error(status, body, expected_status, code);
    assert_eq!(body["error"]["details"], details, "{body}");
}

/// An object's keys, sorted.
fn keys(value: &Value) -> Vec<&str> {
    let keys: BTreeSet<&str> = value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.into_iter().collect()
}

/// `error.name` and `error.type` by status (SPEC §4).
fn name_and_type(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("BadRequestError", "invalid_request_error"),
        401 => ("UnauthorizedError", "authentication_error"),
        403 => ("ForbiddenError", "authorization_error"),
        404 => ("NotFoundError", "invalid_request_error"),
        405 => ("MethodNotAllowedError", "invalid_request_error"),
        413 => ("PayloadTooLargeError", "invalid_request_error"),
        422 => ("ValidationError", "validation_error"),
        429 => ("RateLimitError", "rate_limit_error"),
        500 => ("InternalServerError", "server_error"),
        503 => ("ServiceUnavailableError", "server_error"),
        other => panic!("no error answer has status {other}"),
    }
}

/// Forwards a stream's lines to a channel.
pub fn lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The address in the JSON log line a server writes once it listens.
pub fn listening_address(log: &mpsc::Receiver<String>) -> String {
    wait_for(log, "the listening log line", |line| {
        let entry: Value = serde_json::from_str(line).ok()?;
        (entry["fields"]["message"] == "portcullis listening")
            .then(|| entry["fields"]["address"].as_str().unwrap().to_owned())
    })
}

pub fn wait_for(
    rx: &mpsc::Receiver<String>,
    what: &str,
    mut matches: impl FnMut(&str) -> Option<String>,
) -> String {
    let mut seen = String::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                if let Some(found) = matches(&line) {
                    return found;
                }
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => panic!("{what} did not appear; output so far:\n{seen}"),
        }
    }
}

impl TestApp {
    /// Runs the real `portcullis` binary with `args` on this test's database
    /// and master key, as an operator would beside the running server.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let dir = tempfile::tempdir().unwrap();
        crate::binary::portcullis(dir.path())
            .env(
                "PORTCULLIS_DATABASE_URL",
                self.settings.get("database_url").unwrap(),
            )
            .env(
                "PORTCULLIS_MASTER_KEY",
                self.settings.get("master_key").unwrap(),
            )
            .args(args)
            .output()
            .unwrap()
    }

    /// [`TestApp::cli`] with `--json`; the command must succeed.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.cli(&[&["--json"], args].concat());
        assert!(
            out.status.success(),
            "portcullis {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A connection pool of its own to this test's database, for looking inside.
    pub async fn db(&self) -> portcullis::store::Db {
        portcullis::store::Db::connect(self.settings.get("database_url").unwrap())
            .await
            .unwrap()
    }

    /// How many events of `kind` that named no account were counted.
    pub async fn audit_tally(&self, kind: &str) -> i64 {
        let db = self.db().await;
        let count: i64 = sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM audit_tally WHERE event = $1",
        )
        .bind(kind)
        .fetch_one(db.pool())
        .await
        .unwrap();
        db.close().await;
        count
    }

    /// The audit log, oldest first: (event, user id, detail).
    pub async fn audit_log(&self) -> Vec<(String, Option<String>, Option<String>)> {
        let db = self.db().await;
        let rows = sqlx::query_as("SELECT event, user_id, detail FROM audit_log ORDER BY id")
            .fetch_all(db.pool())
            .await
            .unwrap();
        db.close().await;
        rows
    }
}
