//! `vercel:Project`: create, update in place (rename, settings, repository), drift, delete.

use reqwest::Method;
use serde_json::json;
use stackwright::PreviewOptions;
use stackwright::StepOp;
use stackwright_vercel::{GitProvider, GitRepository, Project, ProjectArgs};

use crate::common::*;

fn args(name: &str, build: Option<&str>, git: Option<GitRepository>) -> ProjectArgs {
    ProjectArgs {
        framework: Some("nextjs".into()),
        build_command: build.map(Into::into),
        output_directory: Some("out".into()),
        git_repository: git,
        ..ProjectArgs::new(name)
    }
}

#[tokio::test]
async fn project_lifecycle_updates_in_place_and_relinks_repositories() {
    let h = harness().await;
    let v1 = h.program(|s| {
        s.resource::<Project>(
            "web",
            args(
                "shop-web",
                Some("npm run build"),
                Some(GitRepository::github("acme/shop").production_branch("release")),
            ),
        );
    });
    let report = h.up(&v1).await;
    assert_eq!(step(&report.plan, "web"), StepOp::Create);
    let id = h.id("web").await;
    assert!(id.starts_with("prj_"), "{id}");
    let p = h.object("projects", "id", &id);
    assert_eq!(p["name"], "shop-web");
    assert_eq!(p["framework"], "nextjs");
    assert_eq!(p["buildCommand"], "npm run build");
    assert_eq!(p["outputDirectory"], "out");
    assert_eq!((text(&p, "/link/org"), text(&p, "/link/repo")), ("acme".into(), "shop".into()));
    assert_eq!(p["link"]["productionBranch"], "release");
    let outputs = h.outputs("web").await;
    assert_eq!(outputs["name"], "shop-web");
    assert_eq!(outputs["account_id"], TEAM);
    assert_no_changes(&h.preview(&v1, true).await.plan);

    // Rename, change and clear settings, move to a GitLab repository: all in place.
    let v2 = h.program(|s| {
        let git =
            GitRepository { provider: GitProvider::Gitlab, repo: "acme/web/shop".into(), production_branch: None };
        s.resource::<Project>("web", ProjectArgs { output_directory: None, ..args("shop", Some(""), Some(git)) });
    });
    let preview = h.preview(&v2, false).await;
    assert_eq!(step(&preview.plan, "web"), StepOp::Update);
    let mut paths = changed_paths(&preview.plan, "web");
    paths.sort();
    assert_eq!(
        paths,
        [
            "build_command",
            "git_repository.production_branch",
            "git_repository.provider",
            "git_repository.repo",
            "name",
            "output_directory"
        ]
    );
    h.up(&v2).await;
    assert_eq!(h.id("web").await, id, "updated in place");
    let p = h.object("projects", "id", &id);
    assert_eq!(p["name"], "shop");
    assert_eq!(p["buildCommand"], "", "an explicit empty command");
    assert!(p["outputDirectory"].is_null(), "None resets to auto-detect");
    assert_eq!(p["link"]["type"], "gitlab");
    assert_eq!((text(&p, "/link/projectNamespace"), text(&p, "/link/projectName")), ("acme/web".into(), "shop".into()));
    assert_no_changes(&h.preview(&v2, true).await.plan);

    h.destroy(&v2).await;
    assert!(h.objects("projects").is_empty());
}

#[tokio::test]
async fn project_drift_is_shown_and_repaired_while_unmanaged_settings_are_left_alone() {
    let h = harness().await;
    let program = h.program(|s| {
        s.resource::<Project>("web", args("drifty", Some("make"), Some(GitRepository::github("acme/drifty"))));
    });
    h.up(&program).await;
    let id = h.id("web").await;
    h.drift_project(&id, json!({ "buildCommand": "rm -rf /", "devCommand": "next dev --turbo", "link": null })).await;

    let preview = h.preview(&program, true).await;
    let drift = preview.drift.iter().find(|d| d.urn.as_str() == "web").expect("drift on web");
    let drifted: Vec<String> = drift.changes.iter().map(|c| c.path.to_string()).collect();
    assert!(
        drifted.contains(&"build_command".to_string()) && drifted.contains(&"git_repository".to_string()),
        "{drifted:?}"
    );
    // dev_command is not declared, so it is not managed and not drift.
    assert!(!drifted.iter().any(|p| p == "dev_command"), "{drifted:?}");
    assert_eq!(step(&preview.plan, "web"), StepOp::Update);

    h.up_refresh(&program).await;
    let p = h.object("projects", "id", &id);
    assert_eq!(p["buildCommand"], "make");
    assert_eq!(p["devCommand"], "next dev --turbo", "unmanaged settings are kept");
    assert_eq!(text(&p, "/link/repo"), "drifty");
    assert_no_changes(&h.preview(&program, true).await.plan);

    // Deleted behind our back: refresh sees it gone, up creates it again.
    h.admin(Method::DELETE, &format!("/teams/{TEAM}/projects/{id}"), json!({})).await;
    let preview = h.preview(&program, true).await;
    assert!(preview.drift.iter().any(|d| d.urn.as_str() == "web" && d.gone));
    assert_eq!(step(&preview.plan, "web"), StepOp::Create);
    h.up_refresh(&program).await;
    assert_ne!(h.id("web").await, id);
    assert_eq!(h.objects("projects").len(), 1);
}

#[tokio::test]
async fn invalid_arguments_are_refused_before_anything_runs() {
    let h = harness().await;
    let program = h.program(|s| {
        s.resource::<Project>("web", ProjectArgs { root_directory: Some("".into()), ..ProjectArgs::new("Not Valid") });
    });
    let err = h.engine.preview(STACK, &program, PreviewOptions::default()).await.expect_err("preview refuses");
    let text = err.to_string();
    assert!(text.contains("`Not Valid` is not a valid project name") && text.contains("root_directory"), "{text}");
    assert_eq!(h.stats().requests_total, 0);
}

#[tokio::test]
async fn a_token_without_access_to_the_team_is_unauthorized() {
    let h = harness_with(|b| b, |c| c.with_team_id("team_someone_else")).await;
    let program = h.program(|s| {
        s.resource::<Project>("web", ProjectArgs::new("nope"));
    });
    let report = h.try_up(&program, false).await;
    let failure = report.failures.iter().find(|f| f.urn.as_str() == "web").expect("web failed");
    assert!(failure.message.contains("unauthorized") && failure.message.contains("403"), "{}", failure.message);
    assert_eq!(h.stats().requests("POST /v11/projects"), 1, "not retried");
}

#[tokio::test]
async fn a_create_that_fails_after_the_project_exists_adopts_it_on_retry() {
    let h = harness().await;
    // The production branch is set by a second call, after the project exists; it is
    // throttled once, so the engine retries the whole create.
    h.emu
        .set_faults(stackwright_vercel_emulator::FaultConfig {
            burst_429: 1,
            retry_after_secs: 0,
            methods: vec!["PATCH".into()],
            path_prefixes: vec!["/v9/projects/".into()],
            ..Default::default()
        })
        .expect("faults are valid");
    let program = h.program(|s| {
        s.resource::<Project>(
            "web",
            args("two-steps", None, Some(GitRepository::github("acme/two").production_branch("release"))),
        );
    });
    h.up(&program).await;
    let stats = h.stats();
    assert_eq!(stats.status_count("PATCH /v9/projects/{id_or_name}/branch", 429), 1, "{stats:#?}");
    assert_eq!(stats.requests("POST /v11/projects"), 1, "the retry adopted the project instead of creating it again");
    assert_eq!(h.object("projects", "name", "two-steps")["link"]["productionBranch"], "release");
}
