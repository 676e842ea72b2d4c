//! Test harness: starts an emulator and wraps reqwest with team-scoped helpers.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stackwright_vercel_emulator::{DeploymentConfig, Emulator, EmulatorBuilder, EmulatorHandle};

pub const TOKEN: &str = "tok_main";
pub const TEAM: &str = "team_alpha";
pub const OTHER_TEAM: &str = "team_beta";

/// A response: status, headers and JSON body (`Null` when the body is empty or not JSON).
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub raw: String,
}

impl Resp {
    pub fn code(&self) -> u16 {
        self.status.as_u16()
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// A client bound to one team and token.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub team: String,
    pub token: String,
}

/// A running emulator plus a client for the main team.
pub struct Harness {
    pub emu: EmulatorHandle,
    pub api: Api,
}

impl std::ops::Deref for Harness {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Deployment timings long enough that only `advance_clock` moves builds along.
pub fn manual_builds() -> DeploymentConfig {
    DeploymentConfig {
        queued_ms: 1_000,
        initializing_ms: 0,
        building_ms: 5_000,
        alias_delay_ms: 0,
        promote_delay_ms: 0,
        ..DeploymentConfig::default()
    }
}

pub async fn start() -> Harness {
    start_with(|b| b).await
}

pub async fn start_with(f: impl FnOnce(EmulatorBuilder) -> EmulatorBuilder) -> Harness {
    let builder = Emulator::builder()
        .token(TOKEN)
        .team(TEAM, "alpha")
        .team(OTHER_TEAM, "beta")
        .seed(42)
        .deployments(manual_builds());
    let emu = f(builder).start().await.expect("emulator starts");
    let api =
        Api { base: emu.base_url().to_owned(), http: reqwest::Client::new(), team: TEAM.into(), token: TOKEN.into() };
    Harness { emu, api }
}

impl Api {
    /// The same client acting in another team.
    pub fn in_team(&self, team: &str) -> Api {
        Api { team: team.into(), ..self.clone() }
    }

    /// The same client with another token.
    pub fn with_token(&self, token: &str) -> Api {
        Api { token: token.into(), ..self.clone() }
    }

    pub fn url(&self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}teamId={}", self.base, self.team)
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.send_url(method, &self.url(path), body, Some(&self.token)).await
    }

    pub async fn send_url(&self, method: Method, url: &str, body: Option<Value>, token: Option<&str>) -> Resp {
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request completes");
        let status = resp.status();
        let headers = resp.headers().clone();
        let raw = resp.text().await.expect("body");
        let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Resp { status, headers, body, raw }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let url = format!("{}/_emulator{path}", self.base);
        self.send_url(method, &url, body, None).await
    }

    pub async fn create_project(&self, name: &str) -> Value {
        let r = self.post("/v11/projects", json!({ "name": name })).await;
        assert_eq!(r.code(), 200, "create project: {}", r.raw);
        r.body
    }

    /// Uploads `content` and returns its SHA-1.
    pub async fn upload(&self, content: &[u8]) -> String {
        let sha = sha1_hex(content);
        let r = self
            .http
            .post(self.url("/v2/files"))
            .bearer_auth(&self.token)
            .header("x-vercel-digest", &sha)
            .body(content.to_vec())
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status(), 200, "upload: {}", r.text().await.unwrap_or_default());
        sha
    }

    /// Creates a deployment of one uploaded file.
    pub async fn deploy(&self, project: &str, target: Option<&str>, content: &[u8]) -> Value {
        let sha = self.upload(content).await;
        let mut body = json!({
            "name": project,
            "project": project,
            "files": [{ "file": "index.html", "sha": sha, "size": content.len() }],
        });
        if let Some(t) = target {
            body["target"] = json!(t);
        }
        let r = self.post("/v13/deployments?skipAutoDetectionConfirmation=1", body).await;
        assert_eq!(r.code(), 200, "deploy: {}", r.raw);
        r.body
    }
}

pub fn sha1_hex(content: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(content))
}
