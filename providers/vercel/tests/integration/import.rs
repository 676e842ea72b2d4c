//! Import: objects made outside Stackwright are read by id into the stack's state, after which a
//! matching program plans no change; creates that collide with them say how to import them.

use reqwest::Method;
use serde_json::json;
use stackwright::StepOp;
use stackwright::options::ResourceOptions;
use stackwright_vercel::{
    Deployment, DeploymentArgs, DeploymentTarget, EnvTarget, EnvironmentVariable, EnvironmentVariableArgs,
    GitRepository, Project, ProjectArgs, ProjectDomain, ProjectDomainArgs, Promotion, PromotionArgs,
};

use crate::common::*;

fn legacy(build: &'static str, dir: std::path::PathBuf) -> impl Fn(&mut stackwright::Stack) + Send + Sync + 'static {
    move |s| {
        let web = s.resource::<Project>(
            "web",
            ProjectArgs {
                framework: Some("vite".into()),
                build_command: Some(build.into()),
                git_repository: Some(GitRepository::github("acme/legacy").production_branch("main")),
                ..ProjectArgs::new("legacy")
            },
        );
        s.resource::<EnvironmentVariable>(
            "api-url",
            EnvironmentVariableArgs::new(web.id(), "API_URL", "https://api.legacy.dev")
                .targets([EnvTarget::Production, EnvTarget::Preview]),
        );
        s.resource::<EnvironmentVariable>(
            "secret",
            EnvironmentVariableArgs::new(web.id(), "SECRET", "s3cr3t-value")
                .sensitive()
                .targets([EnvTarget::Production]),
        );
        let apex = s.resource::<ProjectDomain>("apex", ProjectDomainArgs::new(web.id(), "legacy.dev"));
        s.resource::<ProjectDomain>(
            "www",
            ProjectDomainArgs::new(web.id(), "www.legacy.dev").redirect_to(apex.name.clone(), 308),
        );
        // Vercel does not list a deployment's files: an imported one keeps its own.
        let site = s.resource_with::<Deployment>(
            "site",
            DeploymentArgs::from_dir(&web, &dir, DeploymentTarget::Production).expect("site reads"),
            ResourceOptions::new().ignore_changes(["files", "directory"]),
        );
        s.resource::<Promotion>("live", PromotionArgs::promote(web.id(), site.id()));
    }
}

#[tokio::test]
async fn existing_objects_are_imported_and_managed_from_then_on() {
    let h = harness().await;
    let project = h
        .api_ok(
            Method::POST,
            "/v11/projects",
            Some(json!({ "name": "legacy", "framework": "vite", "buildCommand": "vite build",
                         "gitRepository": { "type": "github", "repo": "acme/legacy" } })),
        )
        .await;
    let project_id = text(&project, "/id");
    let env = |key: &str, value: &str, kind: &str, target: serde_json::Value| json!({ "key": key, "value": value, "type": kind, "target": target });
    let path = format!("/v10/projects/{project_id}/env");
    h.api_ok(
        Method::POST,
        &path,
        Some(env("API_URL", "https://api.legacy.dev", "encrypted", json!(["production", "preview"]))),
    )
    .await;
    let secret =
        h.api_ok(Method::POST, &path, Some(env("SECRET", "s3cr3t-value", "sensitive", json!(["production"])))).await;
    let secret_id = text(&secret, "/created/id");
    let domains = format!("/v10/projects/{project_id}/domains");
    h.api_ok(Method::POST, &domains, Some(json!({ "name": "legacy.dev" }))).await;
    h.api_ok(
        Method::POST,
        &domains,
        Some(json!({ "name": "www.legacy.dev", "redirect": "legacy.dev", "redirectStatusCode": 308 })),
    )
    .await;

    let deployment = json!({ "name": "legacy", "project": project_id, "target": "production",
                             "files": [{ "file": "index.html", "data": "legacy" }] });
    let deployment_id = text(&h.api_ok(Method::POST, "/v13/deployments", Some(deployment)).await, "/id");
    h.emu.advance_clock(std::time::Duration::from_secs(1));
    let dir = site(h.dir.path(), "legacy", &[("index.html", "legacy")]);

    h.import::<Project>("web", "legacy").await;
    h.import::<EnvironmentVariable>("api-url", "legacy/API_URL").await;
    h.import::<EnvironmentVariable>("secret", &format!("{project_id}/{secret_id}")).await;
    h.import::<ProjectDomain>("apex", "legacy/legacy.dev").await;
    h.import::<ProjectDomain>("www", "legacy/www.legacy.dev").await;
    h.import::<Deployment>("site", &deployment_id).await;
    h.import::<Promotion>("live", "legacy").await;
    assert_eq!(h.id("web").await, project_id);
    assert_eq!(h.outputs("live").await["deployment_id"], deployment_id.as_str());

    let program = h.program(legacy("vite build", dir.clone()));
    let plan = h.preview(&program, true).await.plan;
    for urn in ["web", "api-url", "apex", "www", "site", "live"] {
        assert_eq!(step(&plan, urn), StepOp::Same, "{urn}: {:#?}", plan.steps);
    }
    // A sensitive value cannot be read, so the declared one is written once.
    assert_eq!(step(&plan, "secret"), StepOp::Update);
    assert_eq!(changed_paths(&plan, "secret"), ["value"]);
    h.emu.reset_stats();
    h.up(&program).await;
    assert_eq!(h.stats().requests("PATCH /v9/projects/{id_or_name}/env/{env_id}"), 1);
    assert_eq!(h.stats().requests("POST /v11/projects"), 0, "nothing was created");
    assert_no_changes(&h.preview(&program, true).await.plan);

    let changed = h.program(legacy("vite build --mode production", dir));
    h.up(&changed).await;
    assert_eq!(h.object("projects", "id", &project_id)["buildCommand"], "vite build --mode production");
}

#[tokio::test]
async fn creates_that_collide_with_existing_objects_suggest_import() {
    let h = harness().await;
    h.api_ok(Method::POST, "/v11/projects", Some(json!({ "name": "taken" }))).await;
    let host = h.api_ok(Method::POST, "/v11/projects", Some(json!({ "name": "host" }))).await;
    let host_id = text(&host, "/id");
    let env =
        json!({ "key": "DUP", "value": "x", "type": "plain", "target": ["production", "preview", "development"] });
    h.api_ok(Method::POST, &format!("/v10/projects/{host_id}/env"), Some(env)).await;
    h.api_ok(Method::POST, &format!("/v10/projects/{host_id}/domains"), Some(json!({ "name": "dup.dev" }))).await;
    h.import::<Project>("host", "host").await;
    h.emu.reset_stats();

    let program = h.program(|s| {
        s.resource::<Project>("taken", ProjectArgs::new("taken"));
        let host = s.resource::<Project>("host", ProjectArgs::new("host"));
        s.resource::<EnvironmentVariable>("dup", EnvironmentVariableArgs::new(host.id(), "DUP", "y"));
        s.resource::<ProjectDomain>("domain", ProjectDomainArgs::new(host.id(), "dup.dev"));
    });
    let report = h.try_up(&program, false).await;
    let message = |urn: &str| {
        report.failures.iter().find(|f| f.urn.as_str() == urn).map(|f| f.message.clone()).unwrap_or_default()
    };
    let taken = message("taken");
    assert!(taken.contains("conflict") && taken.contains("Project \"taken\" already exists"), "{taken}");
    assert!(taken.contains("import it (import id `taken`)"), "{taken}");
    let dup = message("dup");
    assert!(dup.contains("conflict") && dup.contains(&format!("import id `{host_id}/<variable id>`")), "{dup}");
    let domain = message("domain");
    assert!(domain.contains("conflict") && domain.contains(&format!("import id `{host_id}/dup.dev`")), "{domain}");
    assert_eq!(report.failures.len(), 3, "{:#?}", report.failures);
    let stats = h.stats();
    assert_eq!(stats.requests("POST /v11/projects"), 1, "a conflict is not retried");
    assert_eq!(stats.requests("POST /v10/projects/{id_or_name}/env"), 1);
    assert_eq!(h.object("envs", "key", "DUP")["value"], "x", "the existing variable is untouched");
}
