//! Secret canaries: a unique token and unique secret values must never appear in rendered
//! plans, drift, progress events, failure messages, or the provider's debug logs.

use std::sync::{Arc, Mutex};

use serde_json::json;
use stackwright::events::Event;
use stackwright::{Output, Settings, render};
use stackwright_vercel::{EnvTarget, EnvironmentVariable, EnvironmentVariableArgs, Project, ProjectArgs};
use stackwright_vercel_emulator::FaultConfig;

use crate::common::*;

#[tokio::test]
async fn secret_canaries_never_appear_in_plans_messages_or_logs() {
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = events.clone();
    let settings = Settings {
        observer: Arc::new(move |e: &Event| {
            if let Some(line) = render::event(e) {
                sink.lock().expect("events lock").push(line);
            }
        }),
        ..settings()
    };
    let h = harness_full(|b| b, |c| c, settings).await;
    let encrypted = unique("canary-encrypted-");
    let sensitive = unique("canary-sensitive-");
    let wired = unique("canary-wired-");
    let (dup_a, dup_b) = (unique("canary-dup-a-"), unique("canary-dup-b-"));
    let drifted = unique("canary-drifted-");

    let program = {
        let (encrypted, sensitive, wired, dup_a, dup_b) =
            (encrypted.clone(), sensitive.clone(), wired.clone(), dup_a.clone(), dup_b.clone());
        h.program(move |s| {
            let web = s.resource::<Project>("web", ProjectArgs::new("canaries"));
            s.resource::<EnvironmentVariable>("enc", EnvironmentVariableArgs::new(web.id(), "ENC", encrypted.as_str()));
            s.resource::<EnvironmentVariable>(
                "sens",
                EnvironmentVariableArgs::new(web.id(), "SENS", sensitive.as_str()).sensitive(),
            );
            // A secret output mapped through another resource's output stays secret.
            let value = Output::secret(wired.clone()).map(|w| format!("postgres://u:{w}@db/app"));
            s.resource::<EnvironmentVariable>("wired", EnvironmentVariableArgs::new(web.id(), "DATABASE_URL", value));
            // Two declarations of one variable: one of them fails with a conflict.
            let dup = |v: &str| EnvironmentVariableArgs::new(web.id(), "TAKEN", v).targets([EnvTarget::Production]);
            s.resource::<EnvironmentVariable>("dup-a", dup(&dup_a));
            s.resource::<EnvironmentVariable>("dup-b", dup(&dup_b));
        })
    };
    let mut shown = Vec::new();
    shown.push(render::plan(&h.preview(&program, false).await.plan));
    // Half the variable creates first fail with 503, so retries and their messages happen too.
    h.emu
        .set_faults(FaultConfig {
            error_rate: 0.5,
            error_statuses: vec![503],
            methods: vec!["POST".into()],
            path_prefixes: vec!["/v10/projects/".into()],
            seed: Some(3),
            ..FaultConfig::default()
        })
        .expect("faults are valid");
    let report = h.try_up(&program, false).await;
    h.emu.set_faults(FaultConfig::default()).expect("no faults");
    shown.push(render::plan(&report.plan));
    shown.push(render::summary(&report, "update"));
    assert_eq!(report.failures.len(), 1, "exactly one duplicate fails: {:#?}", report.failures);
    assert!(report.failures[0].message.contains("already exists"), "{}", report.failures[0].message);

    // Drift of a secret value, shown by a refresh.
    let project = h.id("web").await;
    let enc_id = h.id("enc").await;
    h.drift_env(&project, &enc_id, json!({ "value": drifted })).await;
    let preview = h.preview(&program, true).await;
    assert!(!preview.drift.is_empty());
    shown.push(render::drift(&preview.drift));
    shown.push(render::plan(&preview.plan));
    let report = h.try_up(&program, true).await;
    shown.push(render::summary(&report, "update"));
    shown.extend(report.failures.iter().map(|f| f.message.clone()));
    shown.push(format!("{:?} {:?}", h.vercel, h.vercel.config()));
    shown.extend(events.lock().expect("events lock").iter().cloned());
    // The logs of every test so far, this one's included.
    let log = logs().text();
    shown.push(log.clone());
    let everything = shown.join("\n");

    // The canaries really were sent (so the test can fail) ...
    let sent = h.object("envs", "key", "ENC");
    assert_eq!(sent["value"], encrypted.as_str(), "drift was repaired");
    assert_eq!(h.object("envs", "key", "SENS")["value"], sensitive.as_str());
    assert!(everything.contains("[secret]"), "plans show secrets as [secret]");
    let ours = format!("→ POST {}/v10/projects/{project}/env", h.emu.base_url());
    assert!(log.contains(&ours) && log.contains("\"value\":\"[redacted]\""), "requests are logged");
    assert!(log.contains("\"key\":\"ENC\"") && log.contains("← 503"), "keys and failures are logged");
    assert!(everything.contains("will be retried"), "retries happened");
    // ... and never shown.
    for canary in [&h.token, &encrypted, &sensitive, &wired, &dup_a, &dup_b, &drifted] {
        assert!(!everything.contains(canary.as_str()), "`{canary}` leaked:\n{everything}");
    }
}
