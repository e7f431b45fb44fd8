//! A database outage: the server fails closed (503, no token) and recovers by itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::*;

/// A TCP forwarder to PostgreSQL that can be cut and restored.
pub struct Proxy {
    pub port: u16,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            tasks: Default::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Refuses new connections and breaks the open ones.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    pub async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_fails_closed_and_recovers() {
    if !postgres_tests_run().await {
        return;
    }
    let proxy = Proxy::start().await;
    let app = TestApp::start(Backend::Postgres, |s| {
        let direct = s.get("database_url").unwrap().to_owned();
        s.set(
            "database_url",
            direct.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port)),
        );
    })
    .await;
    let tokens = app.signup("outage@example.com").await;
    let login = json!({ "email_or_username": "outage@example.com", "password": PASSWORD });

    proxy.cut();
    let (status, body) = app.get("/readyz").await;
    assert_error(status, &body, 503, "SERVICE_UNAVAILABLE");
    let token = tokens["token"].as_str().unwrap();
    let (login, me, refresh) = tokio::join!(
        app.http.post(app.url("/v1/auth/login")).json(&login).send(),
        app.get_auth("/v1/auth/me", token),
        app.post(
            "/v1/auth/refresh",
            json!({ "refresh_token": tokens["refresh_token"] })
        ),
    );
    let login = login.unwrap();
    assert!(login.headers().contains_key("retry-after"));
    let (status, body) = read(login).await;
    assert_error(status, &body, 503, "SERVICE_UNAVAILABLE");
    assert_error(me.0, &me.1, 503, "SERVICE_UNAVAILABLE");
    assert_error(refresh.0, &refresh.1, 503, "SERVICE_UNAVAILABLE");

    proxy.restore().await;
    let mut ready = false;
    for _ in 0..100 {
        if app.get("/readyz").await.0 == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the server became ready again");
    let (status, _) = app
        .get_auth("/v1/auth/me", tokens["token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    app.login("outage@example.com", json!({})).await;
}
