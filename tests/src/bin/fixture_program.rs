//! A Stackwright program for process-level tests (crashes, signals, bad input). Its resources
//! are test items stored in a directory "world" that outlives the process, so a test can check
//! after a SIGKILL that nothing was orphaned or duplicated.
//!
//! Environment: `SW_WORLD` (world directory, required), `SW_N` (resources, default 30),
//! `SW_GEN` (generation: changes values, replaces some items, removes some), `SW_LATENCY_MS`,
//! `SW_FAIL_AT` (fail the Nth provider call), `SW_FAIL_KIND` (`invalid_input`, default transient),
//! `SW_ERROR_RATE` (random errors), `SW_ECHO_ESCAPED` (injected errors echo the request JSON- and
//! URL-encoded, and the first item's value nests the secret). A secret config key `db_password`
//! is threaded into resources. `SW_REQUIRE_CONFIG` names a plain config key the program requires;
//! `SW_MISTAKE` adds a declaration mistake (`cycle`, `duplicate`, `no_provider`) or makes the
//! program `panic`. `SW_PANIC_AT` makes the Nth provider call panic; `SW_READ_FAILURES` makes
//! the first N reads and finds fail with `SW_FAIL_KIND`.
//!
//! Realistic-provider faults: `SW_SERVER_IDS=1` (the provider picks random object ids; `find`
//! searches the tag written at create time), `SW_NO_FIND=1` (`find` answers "unknown", so an
//! interrupted create must be resolved by the user), `SW_UNIQUE_KEYS=1` (every item gets its own
//! key and creating a taken key is a conflict), `SW_LOSE_ANSWER_AT` (the Nth call does its work
//! and then fails with a transient error), `SW_REPLACE_EVERY_RUN=1` (with unique keys, every
//! item's key changes with the generation, so every run is creates and deletes).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use stackwright::builtin::testing::{Faults, Item, ItemArgs, TestProvider, World};
use stackwright::core::ErrorKind;
use stackwright::{Data, DataArgs, Input, Program, ResourceOptions};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

fn main() -> ExitCode {
    stackwright::run_with_args(std::env::args(), program())
}

fn program() -> Program {
    let world = std::env::var("SW_WORLD").expect("SW_WORLD must name the world directory");
    let n: usize = env("SW_N", 30);
    let generation: u64 = env("SW_GEN", 0);
    let unique_keys = flag("SW_UNIQUE_KEYS");
    let replace_every_run = flag("SW_REPLACE_EVERY_RUN");
    let faults = Faults {
        // Half before the work and half after, so a kill can land while a response is on its way.
        latency: Duration::from_micros(env("SW_LATENCY_MS", 0) * 500),
        response_latency: Duration::from_micros(env("SW_LATENCY_MS", 0) * 500),
        fail_at_call: std::env::var("SW_FAIL_AT").ok().and_then(|v| v.parse().ok()),
        error_rate: env("SW_ERROR_RATE", 0.0),
        error_kind: match std::env::var("SW_FAIL_KIND").as_deref() {
            Ok("invalid_input") => ErrorKind::InvalidInput,
            _ => ErrorKind::Transient,
        },
        seed: env("SW_SEED", 1),
        echo_escaped: std::env::var_os("SW_ECHO_ESCAPED").is_some(),
        panic_at_call: std::env::var("SW_PANIC_AT").ok().and_then(|v| v.parse().ok()),
        read_failures: env("SW_READ_FAILURES", 0),
        server_ids: flag("SW_SERVER_IDS"),
        find: !flag("SW_NO_FIND"),
        unique_keys,
        lose_answer_at_call: std::env::var("SW_LOSE_ANSWER_AT").ok().and_then(|v| v.parse().ok()),
        ..Faults::default()
    };
    let provider = TestProvider::new(World::directory(world), faults);
    Arc::new(move |stack| {
        stack.provider(provider.provider());
        // A secret from the stack's configuration, threaded into an item and a derived value.
        let password = stack.config().get_secret::<String>("db_password")?;
        // Later generations drop the last few items, so deletes happen too.
        let count = n - (generation as usize % 4).min(n);
        let mut items: Vec<stackwright::ResourceRef<Item>> = Vec::with_capacity(count);
        for i in 0..count {
            let value: Input<serde_json::Value> = if i == 0 {
                match &password {
                    Some(pw) if std::env::var_os("SW_ECHO_ESCAPED").is_some() => {
                        pw.map(move |p| json!({ "gen": generation, "i": 0, "nested": { "password": p } })).into()
                    }
                    _ => json!({ "gen": generation, "i": 0 }).into(),
                }
            } else {
                let parent = &items[(i - 1) / 2];
                parent.value.map(move |p| json!({ "gen": p["gen"], "i": i })).into()
            };
            let key = if unique_keys {
                // Unique per item, and a changed key never comes back, so a replacement never
                // collides with an old object still awaiting its delete.
                if replace_every_run {
                    format!("k{generation}-{i}")
                } else if i % 5 == 0 {
                    format!("k{}-{i}", generation / 3)
                } else {
                    format!("k-{i}")
                }
            } else if i % 5 == 0 && generation % 3 == 2 {
                format!("k{generation}")
            } else {
                "k".to_owned()
            };
            let mut opts = ResourceOptions::new();
            if i % 7 == 3 {
                opts = opts.delete_before_replace();
            }
            let secret = if i == 0 { password.clone().map(Input::from) } else { None };
            let item = stack.resource_with::<Item>(
                &format!("item-{i}"),
                ItemArgs { value, key: Some(key.into()), secret },
                opts,
            );
            items.push(item);
        }
        if let Some(first) = items.first() {
            stack.export("first_value", first.value.clone());
        }
        if let Some(pw) = password {
            let url = pw.map(|p| json!({ "url": format!("postgres://app:{p}@db.internal/app") }));
            let echo = stack.resource::<Data>("database-url", DataArgs::new(url));
            stack.export("database_url", echo.output.clone());
        }
        if let Ok(key) = std::env::var("SW_REQUIRE_CONFIG") {
            let value: String = stack.config().require(&key)?;
            stack.resource::<Data>("configured", DataArgs::new(json!(value)));
        }
        match std::env::var("SW_MISTAKE").as_deref() {
            Ok("cycle") => {
                let loop_b = stackwright::ResourceRef::<Data>::new("loop-b".into());
                let a = stack.resource_with::<Data>(
                    "loop-a",
                    DataArgs::new(json!(1)),
                    ResourceOptions::new().depends_on(&loop_b),
                );
                stack.resource::<Data>("loop-b", DataArgs::new(a.output.clone()));
            }
            Ok("duplicate") => {
                stack.resource::<Data>("twin", DataArgs::new(json!(1)));
                stack.resource::<Data>("twin", DataArgs::new(json!(2)));
            }
            Ok("no_provider") => {
                let args = ItemArgs { value: json!(1).into(), key: None, secret: None };
                stack.resource_with::<Item>("orphan", args, ResourceOptions::new().provider("nowhere"));
            }
            Ok("panic") => panic!("the fixture was told to panic"),
            _ => {}
        }
        Ok(())
    })
}
