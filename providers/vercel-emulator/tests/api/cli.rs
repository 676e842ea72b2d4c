//! The standalone binary: flags are parsed and the server answers.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the child even when an assertion fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_serves_with_cli_flags() {
    let child = Command::new(env!("CARGO_BIN_EXE_vercel-emulator"))
        .args(["--port", "0", "--token", "cli-tok", "--team", "team_cli:cli", "--seed", "3"])
        .args(["--rate-limit", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let mut running = Running(child);
    let stdout = running.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let base = line
        .trim()
        .strip_prefix("vercel-emulator listening on ")
        .unwrap_or_else(|| panic!("unexpected banner {line:?}"))
        .to_owned();
    let client = reqwest::Client::new();
    let get = |token: &'static str| client.get(format!("{base}/v9/projects/x?slug=cli")).bearer_auth(token).send();
    assert_eq!(get("nope").await.unwrap().status(), 403);
    assert_eq!(get("cli-tok").await.unwrap().status(), 404);
    assert_eq!(get("cli-tok").await.unwrap().status(), 404);
    let limited = get("cli-tok").await.unwrap();
    assert_eq!(limited.status(), 429, "--rate-limit 2 applies");
    assert!(limited.headers().contains_key("retry-after"));
    drop(running);
}
