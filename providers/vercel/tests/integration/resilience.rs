//! The API misbehaving: rate limits, transient faults, lost answers, read lag, and a crash in
//! the middle of creates. Every apply must converge without duplicates.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use stackwright::core::value::secret;
use stackwright::core::{OpContext, Urn};
use stackwright::events::Event;
use stackwright::state::{OpKind, PendingOperation, StackState};
use stackwright::{Settings, StepOp};
use stackwright_vercel::{
    Deployment, DeploymentArgs, DeploymentTarget, EnvTarget, EnvironmentVariable, EnvironmentVariableArgs, Project,
    ProjectArgs, ProjectDomain, ProjectDomainArgs, Promotion, PromotionArgs,
};
use stackwright_vercel_emulator::FaultConfig;

use crate::common::*;

const ENV_CREATE: &str = "POST /v10/projects/{id_or_name}/env";

#[tokio::test]
async fn two_hundred_variables_apply_under_a_rate_limit_without_duplicates() {
    let throttled = Arc::new(AtomicUsize::new(0));
    let counter = throttled.clone();
    let settings = Settings {
        observer: Arc::new(move |e: &Event| {
            if let Event::Retrying { message, .. } = e
                && message.starts_with("throttled")
            {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }),
        ..settings()
    };
    let h = harness_full(|b| b.rate_limit(60, Duration::from_millis(400)), |c| c, settings).await;
    let program = h.program(|s| {
        let web = s.resource::<Project>("web", ProjectArgs::new("many-vars"));
        for i in 0..200 {
            s.resource::<EnvironmentVariable>(
                &format!("var-{i}"),
                EnvironmentVariableArgs::new(web.id(), format!("VAR_{i}"), format!("value-{i}"))
                    .targets([EnvTarget::Production]),
            );
        }
    });
    h.up(&program).await;

    let stats = h.stats();
    let limited = stats.status_count(ENV_CREATE, 429);
    assert!(limited > 0, "the rate limit was hit: {stats:#?}");
    assert_eq!(stats.successes(ENV_CREATE), 200, "each variable created once");
    assert_eq!(stats.requests(ENV_CREATE), 200 + limited, "every other answer was a 429 that was retried");
    assert_eq!(stats.successes("POST /v11/projects"), 1);
    assert_eq!(throttled.load(Ordering::SeqCst) as u64, stats.rate_limited, "every 429 was waited out and retried");
    let keys: BTreeSet<String> = h.objects("envs").iter().map(|e| text(e, "/key")).collect();
    assert_eq!(keys.len(), 200);
    assert_eq!(h.object("envs", "key", "VAR_0")["value"], "value-0");

    // Lists are paginated (at most 100 a page): finding the oldest variable walks to the end.
    let provider = h.vercel.provider();
    let handler = provider.handler("vercel:EnvironmentVariable").expect("handled");
    let project = h.id("web").await;
    let args = serde_json::to_value(
        EnvironmentVariableArgs::new(project.as_str(), "VAR_0", "value-0").targets([EnvTarget::Production]),
    )
    .expect("args serialize");
    let ctx = OpContext { urn: Urn::from("var-0"), stack: STACK.into(), operation_id: "op-find".into() };
    let before = h.stats().requests("GET /v10/projects/{id_or_name}/env");
    let id = handler.find(&ctx, &args).await.expect("find runs").object().expect("found").id;
    assert_eq!(id, h.id("var-0").await);
    assert!(h.stats().requests("GET /v10/projects/{id_or_name}/env") - before >= 2, "more than one page was read");

    // Reads are throttled too, and still converge.
    assert_no_changes(&h.preview(&program, true).await.plan);
}

fn site_files(h: &Harness) -> std::path::PathBuf {
    site(h.dir.path(), "site", &[("index.html", "<h1>ok</h1>"), ("a.js", "1"), ("b.css", "2")])
}

fn full_stack(h: &Harness, vars: usize) -> stackwright::Program {
    let dir = site_files(h);
    h.program(move |s| {
        let web = s.resource::<Project>("web", ProjectArgs::new("faulty"));
        for i in 0..vars {
            s.resource::<EnvironmentVariable>(
                &format!("var-{i}"),
                EnvironmentVariableArgs::new(web.id(), format!("K{i}"), format!("v{i}")),
            );
        }
        let apex = s.resource::<ProjectDomain>("apex", ProjectDomainArgs::new(web.id(), "faulty.dev"));
        s.resource::<ProjectDomain>(
            "www",
            ProjectDomainArgs::new(web.id(), "www.faulty.dev").redirect_to(apex.name.clone(), 308),
        );
        let site = s.resource::<Deployment>(
            "site",
            DeploymentArgs::from_dir(&web, &dir, DeploymentTarget::Production).expect("site reads"),
        );
        s.resource::<Promotion>("live", PromotionArgs::promote(web.id(), site.id()));
    })
}

fn twenty_percent() -> FaultConfig {
    FaultConfig {
        error_rate: 0.12,
        reset_rate: 0.04,
        fail_after_commit_rate: 0.04,
        error_statuses: vec![500, 502, 503],
        seed: Some(11),
        ..FaultConfig::default()
    }
}

#[tokio::test]
async fn twenty_percent_transient_faults_still_converge_without_duplicates() {
    let h = harness().await;
    let program = full_stack(&h, 40);
    h.emu.set_faults(twenty_percent()).expect("faults are valid");
    h.up(&program).await;
    let stats = h.stats();
    let injected = stats.injected_errors + stats.connection_resets + stats.injected_after_commit;
    assert!(injected >= 5, "faults were injected: {stats:#?}");
    h.emu.set_faults(FaultConfig::default()).expect("no faults");

    assert_eq!(h.objects("projects").len(), 1);
    assert_eq!(h.objects("envs").len(), 40);
    assert_eq!(h.objects("domains").len(), 2);
    let deployments = h.objects("deployments");
    assert_eq!(deployments.len(), 1, "one build, however many retries: {deployments:#?}");
    let production = text(&h.object("projects", "name", "faulty"), "/targets/production/id");
    assert_eq!(production, h.id("site").await);
    assert_no_changes(&h.preview(&program, true).await.plan);

    h.emu.set_faults(twenty_percent()).expect("faults are valid");
    h.destroy(&program).await;
    h.emu.set_faults(FaultConfig::default()).expect("no faults");
    assert!(h.objects("projects").is_empty() && h.objects("envs").is_empty() && h.objects("deployments").is_empty());
}

#[tokio::test]
async fn creates_whose_answers_are_lost_adopt_what_they_made() {
    let h = harness().await;
    h.emu
        .set_faults(FaultConfig {
            fail_after_commit_rate: 1.0,
            error_statuses: vec![502],
            methods: vec!["POST".into()],
            path_prefixes: vec!["/v11/projects".into(), "/v10/projects/".into()],
            ..FaultConfig::default()
        })
        .expect("faults are valid");
    let program = h.program(|s| {
        let web = s.resource::<Project>("web", ProjectArgs::new("lossy"));
        s.resource::<EnvironmentVariable>("var", EnvironmentVariableArgs::new(web.id(), "K", "v"));
        s.resource::<ProjectDomain>("domain", ProjectDomainArgs::new(web.id(), "lossy.dev"));
    });
    h.up(&program).await;
    let stats = h.stats();
    assert_eq!(stats.injected_after_commit, 3, "every create's answer was lost: {stats:#?}");
    for route in ["POST /v11/projects", ENV_CREATE, "POST /v10/projects/{id_or_name}/domains"] {
        assert_eq!(stats.requests(route), 1, "{route} was not sent again");
    }
    assert_eq!((h.objects("projects").len(), h.objects("envs").len(), h.objects("domains").len()), (1, 1, 1));
    h.emu.set_faults(FaultConfig::default()).expect("no faults");
    assert_no_changes(&h.preview(&program, true).await.plan);
}

#[tokio::test]
async fn reads_right_after_creates_wait_out_the_api_read_lag() {
    let h =
        harness_with(|b| b.consistency(2, Duration::ZERO), |c| c.with_consistency_grace(Duration::from_secs(30))).await;
    let program = full_stack(&h, 2);
    h.up(&program).await;
    let preview = h.preview(&program, true).await;
    assert!(preview.drift.iter().all(|d| !d.gone), "nothing is taken for gone: {:#?}", preview.drift);
    assert_no_changes(&preview.plan);
    let stats = h.stats();
    assert!(stats.status_count("GET /v13/deployments/{id_or_url}", 404) >= 2, "the build was not visible at once");
    assert!(stats.status_count("GET /v9/projects/{id_or_name}", 404) >= 2, "nor was the project");
}

#[tokio::test]
async fn creates_interrupted_by_a_crash_are_adopted_on_the_next_run() {
    let h = harness().await;
    // What a run that was killed mid-create had already made, tagged as the provider tags it.
    let project = h.api_ok(Method::POST, "/v11/projects", Some(json!({ "name": "crashy" }))).await;
    let project_id = text(&project, "/id");
    let env =
        json!({ "key": "K", "value": "v", "type": "encrypted", "target": ["production", "preview", "development"] });
    h.api_ok(Method::POST, &format!("/v10/projects/{project_id}/env"), Some(env)).await;
    let deployment = json!({
        "name": "crashy",
        "project": project_id,
        "target": "production",
        "files": [{ "file": "index.html", "data": "crash" }],
        "meta": { stackwright_vercel::deployment::OPERATION_META_KEY: "op-site" },
    });
    h.api_ok(Method::POST, "/v13/deployments", Some(deployment)).await;
    h.emu.reset_stats();

    let dir = site(h.dir.path(), "crashy", &[("index.html", "crash")]);
    let project_args = ProjectArgs::new("crashy");
    let mut env_args = serde_json::to_value(EnvironmentVariableArgs::new(project_id.as_str(), "K", "v")).expect("ser");
    env_args["value"] = secret(json!("v"));
    let site_args =
        DeploymentArgs::for_project(project_id.as_str(), "crashy", &dir, DeploymentTarget::Production).expect("reads");
    let pending = |kind_urn: (&str, &str), inputs: Value| PendingOperation {
        kind: OpKind::Create,
        urn: Urn::from(kind_urn.1),
        type_token: kind_urn.0.into(),
        provider: "vercel".into(),
        id: None,
        inputs,
        started_at: "2026-01-01T00:00:00Z".into(),
    };
    let mut state = StackState::new(STACK);
    state
        .pending
        .insert("op-web".into(), pending(("vercel:Project", "web"), serde_json::to_value(&project_args).unwrap()));
    state.pending.insert("op-var".into(), pending(("vercel:EnvironmentVariable", "var"), env_args));
    state
        .pending
        .insert("op-site".into(), pending(("vercel:Deployment", "site"), serde_json::to_value(&site_args).unwrap()));
    stackwright::testing::seed_state(h.engine.backend().as_ref(), &state).await.expect("state seeded");

    let program = h.program(move |s| {
        let web = s.resource::<Project>("web", ProjectArgs::new("crashy"));
        s.resource::<EnvironmentVariable>("var", EnvironmentVariableArgs::new(web.id(), "K", "v"));
        s.resource::<Deployment>(
            "site",
            DeploymentArgs::from_dir(&web, &dir, DeploymentTarget::Production).expect("site reads"),
        );
    });
    let report = h.up(&program).await;
    let adopted = report.reconciled.iter().filter(|m| m.contains("adopted")).count();
    assert_eq!(adopted, 3, "{:#?}", report.reconciled);
    assert!(report.plan.steps.iter().all(|s| s.op == StepOp::Same), "{:#?}", report.plan.steps);
    let stats = h.stats();
    for route in ["POST /v11/projects", ENV_CREATE, "POST /v13/deployments"] {
        assert_eq!(stats.requests(route), 0, "{route}: nothing created twice");
    }
    assert_eq!(h.id("web").await, project_id);
    assert_eq!((h.objects("projects").len(), h.objects("envs").len(), h.objects("deployments").len()), (1, 1, 1));
}
