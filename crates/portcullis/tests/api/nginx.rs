//! A real nginx, with the repository's `deploy/nginx/portcullis.conf`, in
//! front of a small API: `auth_request` against `/v1/auth/check` decides.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

both!(nginx_lets_in_only_who_portcullis_names);

/// nginx, stopped when dropped.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nginx_binary() -> Option<PathBuf> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts nginx with the repository's config, its three addresses replaced.
async fn start_nginx(binary: &Path, dir: &Path, portcullis: &str, api: &str) -> (Nginx, String) {
    let config = include_str!("../../../../deploy/nginx/portcullis.conf");
    let listen = format!("127.0.0.1:{}", free_port());
    let config = config
        .replace("127.0.0.1:8080", portcullis)
        .replace("127.0.0.1:3000", api)
        .replace("127.0.0.1:8000", &listen);
    std::fs::write(dir.join("portcullis.conf"), config).unwrap();
    let d = dir.display();
    let main = format!(
        "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n\
         access_log off;\nclient_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
         include {d}/portcullis.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let child = Command::new(binary)
        .args(["-p", &d.to_string(), "-c", &format!("{d}/nginx.conf")])
        .args(["-g", "daemon off; master_process off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let nginx = Nginx(child);
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(&listen).await.is_ok() {
            return (nginx, format!("http://{listen}"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    panic!("nginx did not start: {log}");
}

/// The protected API: it answers with the identity headers it was given.
async fn start_api() -> String {
    async fn whoami(headers: HeaderMap) -> Json<Value> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Json(json!({
            "user_id": header("x-auth-user-id"),
            "email": header("x-auth-email"),
            "session_id": header("x-auth-session-id"),
            "client_id": header("x-auth-client-id"),
            "scopes": header("x-auth-scopes"),
        }))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let app = Router::new().route("/v1/responses", get(whoami).post(whoami));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

async fn nginx_lets_in_only_who_portcullis_names(backend: Backend) {
    let Some(binary) = nginx_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx is missing: .ci/run installs nginx-light"
        );
        eprintln!(
            "SKIPPED: nginx is not installed (apt-get install nginx-light); CI runs this test"
        );
        return;
    };
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let api = start_api().await;
    let portcullis = app.base.trim_start_matches("http://").to_owned();
    let (_nginx, front) = start_nginx(&binary, dir.path(), &portcullis, &api).await;
    let http = reqwest::Client::new();
    let call = |auth: Option<(&'static str, String)>| {
        let mut request = http
            .get(format!("{front}/v1/responses"))
            // A client cannot name itself: nginx replaces these.
            .header("x-auth-user-id", "usr_forged")
            .header("x-auth-client-id", "1");
        if let Some((name, value)) = auth {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };

    let (status, body) = call(None).await;
    assert_error(status, &body, 401, "AUTHENTICATION_REQUIRED");
    let (status, body) = call(Some(("authorization", "Bearer forged".into()))).await;
    assert_error(status, &body, 401, "INVALID_TOKEN");

    // Portcullis's own endpoints pass through the same front door.
    let tokens = app.signup("nginx@example.com").await;
    let (status, me) = read(
        http.get(format!("{front}/v1/auth/me"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let bearer = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    let (status, seen) = call(Some(("authorization", bearer.clone()))).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["user_id"], me["id"]);
    assert_eq!(seen["email"], "nginx@example.com");
    assert!(seen["session_id"].as_str().unwrap().starts_with("ses_"));
    assert_eq!(
        seen["client_id"],
        Value::Null,
        "the forged header was dropped"
    );

    let (status, key) = app
        .post_auth(
            "/v1/api-keys",
            tokens["access_token"].as_str().unwrap(),
            json!({ "name": "batch", "scopes": ["reports"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{key}");
    let (status, seen) = call(Some(("x-api-key", key["key"].as_str().unwrap().to_owned()))).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(
        (seen["user_id"].clone(), seen["scopes"].clone()),
        (me["id"].clone(), json!("reports"))
    );

    // Logged out: the very next request through nginx is refused.
    app.post_auth(
        "/v1/auth/logout",
        tokens["access_token"].as_str().unwrap(),
        json!({}),
    )
    .await;
    let (status, body) = call(Some(("authorization", bearer))).await;
    assert_error(status, &body, 401, "INVALID_TOKEN");
}
