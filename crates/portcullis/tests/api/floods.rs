//! Abuse by volume (SPEC §6, §8): login floods whose clients hang up, slow
//! clients and more connections than the server takes.

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::password::Gauge;
use portcullis::{App, Limits};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::binary::{portcullis, Server};
use crate::helpers::*;

both!(
    a_login_flood_of_clients_that_hang_up_stays_within_the_hashing_bound,
    a_login_flood_stays_under_the_memory_ceiling_and_gives_it_back,
    half_sent_requests_are_closed_and_health_answers_throughout,
    a_body_that_never_arrives_gets_408_and_the_connection_closes,
    past_the_connection_cap_only_health_probes_are_answered,
);

/// Password hashes at once in the flood tests.
const HASHING: usize = 2;

/// A login budget no flood here reaches: these tests load hashing, not budgets.
const UNLIMITED: &str = "1000000/1m";

/// One flood at a time in this test binary: each measures the server under
/// its own flood, not under the others'.
static FLOODING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn a_login_flood_of_clients_that_hang_up_stays_within_the_hashing_bound(backend: Backend) {
    // The flood is of one unknown login name: its budget would turn it away
    // before any hashing, which is what this test loads.
    let app = TestApp::start(backend, |s| {
        s.set("hash_concurrency", HASHING.to_string())
            .set("login_account_budget", UNLIMITED);
    })
    .await;
    let token = app.signup("me@example.com").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = instance(&app, Limits::default()).await;

    let _alone = FLOODING.lock().await;
    let flood = tokio::spawn(flood(server.address.clone()));
    eventually("a hash of the flood", || server.hashing.running() > 0).await;
    let mut latencies = Vec::new();
    while latencies.len() < 200 && !flood.is_finished() {
        let started = Instant::now();
        let (status, body) = read(
            app.http
                .get(format!("http://{}/v1/auth/me", server.address))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        latencies.push(started.elapsed());
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_eq!(
        latencies.len(),
        200,
        "the flood ended before 200 calls to /me"
    );
    flood.await.unwrap();

    assert_eq!(
        server.hashing.peak(),
        HASHING,
        "the flood fills the hashing threads and never runs more hashes at once"
    );
    latencies.sort();
    assert!(
        latencies[197] < Duration::from_millis(50),
        "p99 of /me during the flood: {:?}; all of them: {latencies:?}",
        latencies[197]
    );
}

async fn a_login_flood_stays_under_the_memory_ceiling_and_gives_it_back(backend: Backend) {
    // Resident memory is the process's: run the real binary, on this test's database.
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = portcullis(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "PORTCULLIS_DATABASE_URL",
            app.settings.get("database_url").unwrap(),
        )
        .env(
            "PORTCULLIS_MASTER_KEY",
            app.settings.get("master_key").unwrap(),
        )
        .env("PORTCULLIS_HASH_CONCURRENCY", HASHING.to_string())
        .env("PORTCULLIS_LOGIN_ACCOUNT_BUDGET", UNLIMITED)
        .env("PORTCULLIS_LOGIN_IP_BUDGET", UNLIMITED)
        .env("PORTCULLIS_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = lines(child.stderr.take().unwrap());
    let pid = child.id();
    let _server = Server(child);
    let address = listening_address(&stderr);
    let ready = app
        .http
        .get(format!("http://{address}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let idle = kib(pid, "VmRSS");

    let _alone = FLOODING.lock().await;
    flood(address).await;

    // SPEC §8: 64 MB plus the hashing bound times argon2's 19 MiB.
    let ceiling = (64_000_000 + HASHING as u64 * 19 * 1024 * 1024) / 1024;
    let peak = kib(pid, "VmHWM");
    assert!(
        peak < ceiling,
        "peak RSS {peak} KiB over the ceiling of {ceiling} KiB (idle {idle} KiB)"
    );
    // Idle hashing threads give argon2's memory back.
    let near_idle = idle + 8 * 1024;
    eventually("RSS back near idle", || kib(pid, "VmRSS") < near_idle).await;
}

async fn half_sent_requests_are_closed_and_health_answers_throughout(backend: Backend) {
    let app = spawn_app(backend).await;
    let header_timeout = Duration::from_secs(1);
    let server = instance(
        &app,
        Limits {
            header_timeout,
            ..Limits::default()
        },
    )
    .await;
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(&server.address).await.unwrap();
        stream
            .write_all(b"POST /v1/auth/login HTTP/1.1\r\nHost: portcullis\r\nContent-Ty")
            .await
            .unwrap();
        slow.push(stream);
    }
    let deadline = tokio::time::Instant::now() + header_timeout + SLACK;

    // A new connection each time: the probe has to get in past the slow ones.
    let probe = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut answered = 0;
    let mut all_closed = std::pin::pin!(async move {
        for stream in slow {
            read_until_closed(stream, deadline).await;
        }
    });
    loop {
        tokio::select! {
            () = &mut all_closed => break,
            () = tokio::time::sleep(Duration::from_millis(50)) => {
                let health = probe
                    .get(format!("http://{}/healthz", server.address))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(health.status(), StatusCode::OK);
                answered += 1;
            }
        }
    }
    assert!(
        answered > 0,
        "/healthz was never asked while the slow requests were open"
    );
}

async fn a_body_that_never_arrives_gets_408_and_the_connection_closes(backend: Backend) {
    let app = spawn_app(backend).await;
    let request_timeout = Duration::from_secs(1);
    let server = instance(
        &app,
        Limits {
            request_timeout,
            ..Limits::default()
        },
    )
    .await;
    let mut stream = TcpStream::connect(&server.address).await.unwrap();
    stream
        .write_all(
            b"POST /v1/auth/login HTTP/1.1\r\nHost: portcullis\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"email_or_username\":",
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + request_timeout + SLACK;
    let answer = read_until_closed(stream, deadline).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-request-id: req_"),
        "{answer}"
    );
    assert!(answer.contains("\"code\":\"REQUEST_TIMEOUT\""), "{answer}");
}

async fn past_the_connection_cap_only_health_probes_are_answered(backend: Backend) {
    let app = spawn_app(backend).await;
    let server = instance(
        &app,
        Limits {
            max_connections: 20,
            // Long enough that the idle connections below stay open during the test.
            header_timeout: Duration::from_secs(120),
            ..Limits::default()
        },
    )
    .await;
    let url = |path: &str| format!("http://{}{path}", server.address);
    // Twenty clients, each keeping its connection open once answered.
    let mut holders = Vec::new();
    for _ in 0..20 {
        let client = reqwest::Client::new();
        let health = client.get(url("/healthz")).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        holders.push(client);
    }

    let fresh = reqwest::Client::new();
    for probe in ["/healthz", "/readyz"] {
        let answer = fresh.get(url(probe)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{probe}");
    }
    // Forward-auth, which answers outside the router, is held to it too.
    for path in ["/openapi.json", "/v1/auth/check"] {
        let refused = fresh.get(url(path)).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(refused.headers().contains_key("retry-after"));
        let (_, body) = read(refused).await;
        assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE", "{body}");
    }

    // Their connections close with them, and room comes back.
    drop(holders);
    let started = Instant::now();
    while fresh
        .get(url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .status()
        != StatusCode::OK
    {
        assert!(
            started.elapsed() < SLACK,
            "no room after the connections closed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Allowance over a stated timeout before a test calls it missed.
const SLACK: Duration = Duration::from_secs(5);

/// A second instance of `app`'s server, with these limits, that the test
/// can look into; it stops when dropped.
struct Instance {
    address: String,
    hashing: Arc<Gauge>,
    _stop: oneshot::Sender<()>,
}

async fn instance(app: &TestApp, limits: Limits) -> Instance {
    let config = app.settings.build().unwrap();
    let server = App::build_with_clock(config, app.clock.clone())
        .await
        .unwrap()
        .with_limits(limits);
    let address = format!("127.0.0.1:{}", server.port());
    let hashing = server.hashing();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    Instance {
        address,
        hashing,
        _stop: stop,
    }
}

/// 1,000 logins to unknown accounts, from 5 clients at once (some 300 a
/// second, five times what two threads hash), each hanging up 15 ms after
/// sending its request.
async fn flood(address: String) {
    let body = r#"{"email_or_username":"nobody@example.com","password":"not the password"}"#;
    let request = format!(
        "POST /v1/auth/login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let clients: Vec<_> = (0..5)
        .map(|_| {
            let (address, request) = (address.clone(), request.clone());
            tokio::spawn(async move {
                for _ in 0..200 {
                    let mut stream = TcpStream::connect(&address).await.unwrap();
                    stream.write_all(request.as_bytes()).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
}

/// What the server sends until it closes the connection (an error such as a
/// reset counts as closed); panics if it is still open at `deadline`.
async fn read_until_closed(mut stream: TcpStream, deadline: tokio::time::Instant) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return received,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("the connection is still open past its deadline"),
        }
    }
}

/// Waits for `condition`, checking every 10 ms, for at most 20 s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} did not happen"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A size from /proc/PID/status, in KiB.
fn kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .parse()
        .unwrap()
}
