//! Mistakes in a program's declarations are found before anything runs, and each error names
//! the resources and where they were declared.

mod common;

use common::*;
use serde_json::json;
use stackwright::builtin::testing::{Faults, Item, ItemArgs, TestProvider, World};
use stackwright::{Data, DataArgs, EngineError, ResourceOptions};
use stackwright::{PreviewOptions, UpOptions};

fn message(result: Result<stackwright::PreviewReport, EngineError>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn a_cycle_names_every_resource_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = program(|s| {
        // a → b → c → a through explicit dependencies declared by name order.
        let a_ref = stackwright::ResourceRef::<Data>::new("a".into());
        let c_ref = stackwright::ResourceRef::<Data>::new("c".into());
        let a = s.resource_with::<Data>("a", DataArgs::new(json!(1)), ResourceOptions::new().depends_on(&c_ref));
        let b = s.resource_with::<Data>("b", DataArgs::new(a.output.clone()), ResourceOptions::new());
        s.resource_with::<Data>("c", DataArgs::new(b.output.clone()), ResourceOptions::new().depends_on(&a_ref));
        s.resource::<Data>("bystander", DataArgs::new(json!(0)));
    });
    let m = message(engine(dir.path()).preview(STACK, &p, PreviewOptions::default()).await);
    assert!(m.contains("dependency cycle: a → b → c → a"), "{m}");
    assert!(!m.contains("bystander"), "{m}");
}

#[tokio::test]
async fn a_duplicate_name_names_both_declarations() {
    let dir = tempfile::tempdir().unwrap();
    let p = program(|s| {
        s.resource::<Data>("web", DataArgs::new(json!(1)));
        s.resource::<Data>("web", DataArgs::new(json!(2)));
    });
    let m = message(engine(dir.path()).preview(STACK, &p, PreviewOptions::default()).await);
    assert!(m.contains("resource name `web` is declared twice"), "{m}");
    assert_eq!(m.matches("tests/declarations.rs:").count(), 2, "both locations are given: {m}");
}

#[tokio::test]
async fn missing_providers_unknown_dependencies_and_bad_paths_are_reported_together() {
    let dir = tempfile::tempdir().unwrap();
    let p = program(|s| {
        let ghost = stackwright::ResourceRef::<Data>::new("ghost".into());
        s.resource::<Item>("item", ItemArgs { value: json!(1).into(), key: None, secret: None });
        s.resource_with::<Data>(
            "d",
            DataArgs::new(json!(1)),
            ResourceOptions::new().depends_on(&ghost).ignore_changes(["a..b"]),
        );
    });
    let m = message(engine(dir.path()).preview(STACK, &p, PreviewOptions::default()).await);
    assert!(m.contains("3 problem(s)"), "{m}");
    assert!(m.contains("`item`") && m.contains("test:Item") && m.contains("stack.provider"), "{m}");
    assert!(m.contains("depends on `ghost`"), "{m}");
    assert!(m.contains("ignore_changes") && m.contains("a..b"), "{m}");
}

#[tokio::test]
async fn refresh_shows_drift_in_preview_and_up_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let tp = TestProvider::new(World::memory(), Faults::default());
    let tp2 = tp.clone();
    let p = program(move |s| {
        s.provider(tp2.provider());
        s.resource::<Item>("drifty", ItemArgs { value: json!({"size": 1}).into(), key: None, secret: None });
        s.resource::<Item>("gone", ItemArgs { value: json!(2).into(), key: None, secret: None });
    });
    assert!(engine.up(STACK, &p, UpOptions::default(), &yes).await.unwrap().succeeded());
    // Someone edits one object by hand and deletes the other.
    let items = tp.world().items();
    for (id, mut item) in items {
        if item.urn == "drifty" {
            item.value = json!({"size": 5});
            tp.world().put(&id, item).unwrap();
        } else {
            tp.world().remove(&id);
        }
    }
    let without = engine.preview(STACK, &p, PreviewOptions::default()).await.unwrap();
    assert!(!without.plan.has_changes(), "without refresh the stored state looks current");
    let with = engine.preview(STACK, &p, PreviewOptions::refreshed()).await.unwrap();
    let drift: Vec<(String, bool)> = with.drift.iter().map(|d| (d.urn.to_string(), d.gone)).collect();
    assert_eq!(drift, vec![("drifty".to_string(), false), ("gone".to_string(), true)]);
    assert!(with.drift[0].changes.iter().any(|c| c.path.to_string() == "value.size"));
    assert_eq!(
        changes(&with.plan),
        vec![("drifty".into(), stackwright::StepOp::Update), ("gone".into(), stackwright::StepOp::Create)]
    );
    // Preview changed nothing; refresh records the drift; up repairs it.
    assert!(!engine.preview(STACK, &p, PreviewOptions::default()).await.unwrap().plan.has_changes());
    assert_eq!(engine.refresh(STACK, &p).await.unwrap().len(), 2);
    assert!(engine.preview(STACK, &p, PreviewOptions::default()).await.unwrap().plan.has_changes());
    assert!(engine.up(STACK, &p, UpOptions::default(), &yes).await.unwrap().succeeded());
    let values: Vec<serde_json::Value> = tp.world().items().into_values().map(|i| i.value).collect();
    assert!(values.contains(&json!({"size": 1})) && values.contains(&json!(2)), "{values:?}");
    assert!(!engine.preview(STACK, &p, PreviewOptions::refreshed()).await.unwrap().plan.has_changes());
}

#[tokio::test]
async fn secrets_stay_secret_through_maps_providers_plans_and_state_rendering() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let tp = TestProvider::new(World::memory(), Faults::default());
    let canary = "canary-7f3a9c1e";
    let tp2 = tp.clone();
    let p = program(move |s| {
        s.provider(tp2.provider());
        let pw = stackwright::Output::secret(canary.to_string());
        let item = s.resource::<Item>(
            "db",
            ItemArgs {
                value: pw.map(|p| json!({ "url": format!("postgres://u:{p}@h/db") })).into(),
                key: None,
                secret: Some(pw.clone().into()),
            },
        );
        s.resource::<Data>("echo", DataArgs::new(item.value.clone()));
        s.export("url", item.value.clone());
    });
    let preview = engine.preview(STACK, &p, PreviewOptions::default()).await.unwrap();
    let rendered = stackwright::render::plan(&preview.plan);
    assert!(!rendered.contains(canary), "{rendered}");
    assert!(rendered.contains("[secret]"), "{rendered}");
    assert!(engine.up(STACK, &p, UpOptions::default(), &yes).await.unwrap().succeeded());
    let state = engine.state(STACK).await.unwrap().unwrap();
    for r in state.resources.values() {
        for (what, v) in [("inputs", &r.inputs), ("outputs", &r.outputs)] {
            let shown = stackwright::render::value(v);
            assert!(!shown.contains(canary), "{} {what} renders the secret: {shown}", r.urn);
        }
    }
    let exported = stackwright::render::value(&state.exports["url"]);
    assert_eq!(exported, "[secret]");
}
