//! Secrets never leak: a unique canary secret goes through the configuration, a provider input,
//! a provider output, a failing and a retried provider call, and every command; stdout, stderr
//! (with debug logging), state and configuration files must not contain it in plain text. Also
//! the passphrase's bad paths: wrong, missing, rotated, and tampered ciphertext.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_fixture-program");
const PASSPHRASE: &str = "a long passphrase for tests";

struct Project {
    _root: tempfile::TempDir,
    root: PathBuf,
}

impl Project {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().to_owned();
        common::write_project_config(&path.join("project"), "dev", PASSPHRASE);
        Project { _root: root, root: path }
    }

    fn command(&self, args: &[&str], passphrase: Option<&str>) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .args(["--stack", "dev", "--state-dir"])
            .arg(self.root.join("state"))
            .arg("--project-dir")
            .arg(self.root.join("project"))
            .env("SW_WORLD", self.root.join("world"))
            .env("SW_N", "3")
            .env("STACKWRIGHT_LOG", "debug")
            .env_remove("STACKWRIGHT_PASSPHRASE")
            .env_remove("STACKWRIGHT_NEW_PASSPHRASE")
            .stdin(Stdio::null());
        if let Some(p) = passphrase {
            c.env("STACKWRIGHT_PASSPHRASE", p);
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args, Some(PASSPHRASE)).output().unwrap()
    }

    /// Every file under the project, state and world directories.
    fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.insert(p.clone(), std::fs::read(&p).unwrap());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.root.join("state"), &mut out);
        walk(&self.root.join("project"), &mut out);
        out
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn count(haystack: &[u8], needle: &str) -> usize {
    haystack.windows(needle.len()).filter(|w| *w == needle.as_bytes()).count()
}

#[test]
fn a_canary_secret_never_appears_in_plain_text() {
    let canary = format!("canary-{:016x}", rand::random::<u64>());
    let p = Project::new();
    let mut transcript: Vec<(String, Output)> = Vec::new();
    let mut run_text = |name: &str, cmd: &mut Command| {
        let out = cmd.output().unwrap();
        let result = (out.status.code(), text(&out));
        transcript.push((name.to_owned(), out));
        result
    };
    macro_rules! run {
        ($name:expr, $cmd:expr) => {
            run_text($name, $cmd).0
        };
    }

    assert_eq!(
        run!("config set", &mut p.command(&["config", "set", "db_password", &canary, "--secret"], Some(PASSPHRASE))),
        Some(0)
    );
    assert_eq!(
        run!("config set plain", &mut p.command(&["config", "set", "region", "eu-west-1"], Some(PASSPHRASE))),
        Some(0)
    );
    assert_eq!(run!("config ls", &mut p.command(&["config", "ls"], Some(PASSPHRASE))), Some(0));
    assert_eq!(run!("config get", &mut p.command(&["config", "get", "db_password"], Some(PASSPHRASE))), Some(0));
    assert_eq!(run!("preview", &mut p.command(&["preview"], Some(PASSPHRASE))), Some(0));
    assert_eq!(run!("preview json", &mut p.command(&["preview", "--json"], Some(PASSPHRASE))), Some(0));
    let plan_file = p.root.join("project/plan.json");
    let save = ["preview", "--save-plan", plan_file.to_str().unwrap()];
    assert_eq!(run!("preview save-plan", &mut p.command(&save, Some(PASSPHRASE))), Some(0));
    assert!(plan_file.exists());
    // The provider echoes the secret in its errors: once retried, once for good.
    let (retried, retried_text) =
        run_text("up retried", p.command(&["up", "--yes"], Some(PASSPHRASE)).env("SW_FAIL_AT", "1"));
    assert_eq!(retried, Some(0));
    p.command(&["destroy", "--yes"], Some(PASSPHRASE)).output().unwrap();
    let (failed, failed_text) = run_text(
        "up failing",
        p.command(&["up", "--yes"], Some(PASSPHRASE)).env("SW_FAIL_AT", "1").env("SW_FAIL_KIND", "invalid_input"),
    );
    assert_eq!(failed, Some(1));
    assert_eq!(run!("up", &mut p.command(&["up", "--yes"], Some(PASSPHRASE))), Some(0));
    assert_eq!(run!("output", &mut p.command(&["output"], Some(PASSPHRASE))), Some(0));
    assert_eq!(run!("output json", &mut p.command(&["output", "--json"], Some(PASSPHRASE))), Some(0));
    assert_eq!(run!("state ls", &mut p.command(&["state", "ls"], Some(PASSPHRASE))), Some(0));
    assert_eq!(run!("refresh", &mut p.command(&["refresh"], Some(PASSPHRASE))), Some(0));
    assert_eq!(run!("preview refresh", &mut p.command(&["preview", "--refresh", "--json"], Some(PASSPHRASE))), Some(0));
    assert_eq!(run!("stack ls", &mut p.command(&["stack", "ls"], Some(PASSPHRASE))), Some(0));
    assert_eq!(run!("graph", &mut p.command(&["graph"], Some(PASSPHRASE))), Some(0));

    assert!(retried_text.contains("request secret=[secret]"), "the retried error was shown, scrubbed: {retried_text}");
    assert!(failed_text.contains("request secret=[secret]"), "the final error was shown, scrubbed: {failed_text}");
    let mut leaks = Vec::new();
    for (name, out) in &transcript {
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            if count(bytes, &canary) > 0 {
                leaks.push(format!("{name} {stream}"));
            }
        }
    }
    for (path, bytes) in p.files() {
        if count(&bytes, &canary) > 0 {
            leaks.push(path.display().to_string());
        }
    }
    println!(
        "canary scan: {} command outputs and {} files, {} plain-text occurrences",
        transcript.len() * 2,
        p.files().len(),
        leaks.len()
    );
    assert!(leaks.is_empty(), "the canary leaked into: {leaks:?}");

    // Positive control: the canary really went through, and an explicit flag shows it.
    let shown = p.run(&["output", "database_url", "--show-secrets"]);
    assert!(text(&shown).contains(&canary), "{}", text(&shown));
    let shown = p.run(&["config", "get", "db_password", "--show-secrets"]);
    assert!(text(&shown).contains(&canary), "{}", text(&shown));
}

/// The forms in which an API could echo `secret`, each with a name for the failure message.
fn echoed_forms(secret: &str) -> Vec<(&'static str, String)> {
    let json = serde_json::to_string(secret).unwrap();
    let debug = format!("{secret:?}");
    vec![
        ("plain", secret.to_owned()),
        ("JSON-escaped", json[1..json.len() - 1].to_owned()),
        ("Debug-escaped", debug[1..debug.len() - 1].to_owned()),
        (
            "percent-encoded",
            percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC).to_string(),
        ),
        ("form-encoded", form_urlencoded::byte_serialize(secret.as_bytes()).collect()),
    ]
}

#[test]
fn an_escaped_canary_echoed_by_the_provider_never_appears_in_any_form() {
    // The random part is alphanumeric, so every escaping keeps it as is: finding it anywhere
    // finds a leak in any encoding, including ones this test does not list.
    let token = format!("{:016x}", rand::random::<u64>());
    let canary = format!("canary-{token}-\"q\" \\b\ne\tx é🦀 &=+ %/");
    let forms = echoed_forms(&canary);
    assert!(forms.iter().all(|(_, f)| f.contains(&token)));
    assert!(forms[1..].iter().all(|(_, f)| *f != canary), "every listed form is escaped");
    let p = Project::new();
    let cmd = |args: &[&str]| {
        let mut c = p.command(args, Some(PASSPHRASE));
        c.env("SW_ECHO_ESCAPED", "1");
        c
    };
    let mut transcript: Vec<(String, Output)> = Vec::new();
    let mut run = |name: &str, mut c: Command| {
        let out = c.output().unwrap();
        let code = out.status.code();
        transcript.push((name.to_owned(), out));
        code
    };
    assert_eq!(run("config set", cmd(&["config", "set", "db_password", &canary, "--secret"])), Some(0));
    assert_eq!(run("config get", cmd(&["config", "get", "db_password"])), Some(0));
    assert_eq!(run("preview", cmd(&["preview"])), Some(0));
    assert_eq!(run("preview json", cmd(&["preview", "--json"])), Some(0));
    let mut retried = cmd(&["up", "--yes"]);
    retried.env("SW_FAIL_AT", "1");
    assert_eq!(run("up retried", retried), Some(0));
    assert_eq!(run("destroy", cmd(&["destroy", "--yes"])), Some(0));
    let mut failing = cmd(&["up", "--yes"]);
    failing.env("SW_FAIL_AT", "1").env("SW_FAIL_KIND", "invalid_input");
    assert_eq!(run("up failing", failing), Some(1));
    assert_eq!(run("destroy again", cmd(&["destroy", "--yes"])), Some(0));
    // A provider call that panics with the request (and so the canary) in its message: the step
    // fails with the scrubbed message, and its create stays pending.
    let mut panicking = cmd(&["up", "--yes"]);
    panicking.env("SW_PANIC_AT", "1");
    assert_eq!(run("up panicking", panicking), Some(1));
    // Reconciling that create fails with an error that echoes the request.
    let mut reconcile = cmd(&["up", "--yes"]);
    reconcile.env("SW_READ_FAILURES", "1").env("SW_FAIL_KIND", "invalid_input");
    assert_eq!(run("up reconcile failing", reconcile), Some(1));
    assert_eq!(run("up", cmd(&["up", "--yes"])), Some(0));
    assert_eq!(run("output", cmd(&["output"])), Some(0));
    assert_eq!(run("output json", cmd(&["output", "--json"])), Some(0));
    assert_eq!(run("state ls", cmd(&["state", "ls"])), Some(0));
    assert_eq!(run("refresh", cmd(&["refresh"])), Some(0));
    assert_eq!(run("preview refresh", cmd(&["preview", "--refresh", "--json"])), Some(0));

    // Positive control: the provider did echo the request in each form, and each was scrubbed
    // where it stood.
    for (name, out) in transcript.iter().filter(|(name, _)| name.starts_with("up ")) {
        let t = text(out);
        if name == "up panicking" {
            assert!(t.contains("create panicked: injected panic at call 1"), "{name}: {t}");
        }
        if name == "up reconcile failing" {
            assert!(t.contains("could not reconcile") && t.contains("injected failure of a read"), "{name}: {t}");
        }
        for shown in [
            r#""secret":"[secret]""#,
            r#""nested":{"password":"[secret]"}"#,
            "https://api.test/items/[secret]?secret=[secret]",
        ] {
            assert!(t.contains(shown), "{name}: `{shown}` not in: {t}");
        }
    }
    let mut leaks = Vec::new();
    for (name, out) in &transcript {
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            for (form, f) in forms.iter().map(|(n, f)| (*n, f.as_str())).chain([("random part", token.as_str())]) {
                if count(bytes, f) > 0 {
                    leaks.push(format!("{name} {stream}: {form}"));
                }
            }
        }
    }
    let files = p.files();
    for (path, bytes) in &files {
        if count(bytes, &token) > 0 {
            leaks.push(path.display().to_string());
        }
    }
    println!(
        "escaped canary scan: {} command outputs and {} files, {} forms each, {} leaks",
        transcript.len() * 2,
        files.len(),
        forms.len() + 1,
        leaks.len()
    );
    assert!(leaks.is_empty(), "the canary leaked: {leaks:?}");
    let shown = p.run(&["config", "get", "db_password", "--show-secrets"]);
    assert!(text(&shown).contains(&canary), "the canary went through: {}", text(&shown));
}

#[test]
fn a_two_character_secret_is_never_shown_by_the_engines_own_formatting() {
    // Too short to scrub from free text (see the book), so this runs without injected errors:
    // everything printed here is the engine's own rendering, which must redact it anyway.
    let p = Project::new();
    assert!(p.run(&["config", "set", "db_password", "ab", "--secret"]).status.success());
    let commands: &[&[&str]] = &[
        &["config", "ls"],
        &["config", "get", "db_password"],
        &["preview"],
        &["preview", "--json"],
        &["up", "--yes"],
        &["output"],
        &["output", "--json"],
        &["state", "ls"],
        &["refresh"],
        &["preview", "--refresh", "--json"],
    ];
    // How the secret would show: as a JSON or Debug string, inside the derived URL, as a
    // `key=value` echo.
    let needles = ["\"ab\"", ":ab@", "=ab", " ab\n"];
    let mut leaks = Vec::new();
    for args in commands {
        let out = p.run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            for needle in needles {
                if count(bytes, needle) > 0 {
                    leaks.push(format!("{args:?} {stream}: {needle}"));
                }
            }
        }
    }
    for (path, bytes) in p.files() {
        for needle in needles {
            if count(&bytes, needle) > 0 {
                leaks.push(format!("{}: {needle}", path.display()));
            }
        }
    }
    assert!(leaks.is_empty(), "the short secret was shown: {leaks:?}");
    // Positive control: it went through, and the explicit flag shows it.
    let shown = p.run(&["output", "database_url", "--show-secrets"]);
    assert!(text(&shown).contains(":ab@"), "{}", text(&shown));
}

#[test]
fn wrong_missing_and_rotated_passphrases() {
    let p = Project::new();
    assert!(p.run(&["config", "set", "db_password", "hunter22-secret", "--secret"]).status.success());
    assert!(p.run(&["up", "--yes"]).status.success());
    let before = p.files();

    let out = p.command(&["up", "--yes"], Some("not the passphrase")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("passphrase is wrong for stack `dev`"), "{}", text(&out));
    let out = p.command(&["preview"], None).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("STACKWRIGHT_PASSPHRASE"), "{}", text(&out));
    assert_eq!(p.files(), before, "failed commands change nothing on disk");

    let out = p
        .command(&["stack", "change-passphrase"], Some(PASSPHRASE))
        .env("STACKWRIGHT_NEW_PASSPHRASE", "the new passphrase")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !p.command(&["preview"], Some(PASSPHRASE)).output().unwrap().status.success(),
        "the old passphrase no longer works"
    );
    let out = p.command(&["preview", "--detailed-exitcode"], Some("the new passphrase")).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "rotation touches no resource: {}", text(&out));
    let out =
        p.command(&["config", "get", "db_password", "--show-secrets"], Some("the new passphrase")).output().unwrap();
    assert!(text(&out).contains("hunter22-secret"));
}

#[test]
fn tampered_ciphertext_and_malformed_config_files_are_refused() {
    let p = Project::new();
    assert!(p.run(&["config", "set", "db_password", "hunter22-secret", "--secret"]).status.success());
    let file = p.root.join("project/Stackwright.dev.toml");
    let original = std::fs::read_to_string(&file).unwrap();
    let start = original.find("secure = \"v1:").unwrap() + "secure = \"v1:".len();
    let mut tampered = original.clone().into_bytes();
    tampered[start + 20] = if tampered[start + 20] == b'A' { b'B' } else { b'A' };
    std::fs::write(&file, &tampered).unwrap();
    let out = p.run(&["preview"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("db_password") && text(&out).contains("altered"), "{}", text(&out));
    assert_eq!(std::fs::read(&file).unwrap(), tampered, "left as it was");

    std::fs::write(&file, "encryption_salt = [unclosed\n").unwrap();
    let out = p.run(&["preview"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("Stackwright.dev.toml") && text(&out).contains("not a valid"), "{}", text(&out));

    std::fs::write(&file, &original).unwrap();
    let out = p.run(&["config", "get", "nope"]);
    assert!(text(&out).contains("`nope` is not set"), "{}", text(&out));
}
