//! The resource lifecycle, as a specification: create → update → replace → rename through an
//! alias → protect refusal → delete, plus the resource options that shape each step.

mod common;

use common::*;
use serde_json::{Value, json};
use stackwright::builtin::testing::{Faults, Item, ItemArgs, TestProvider, World};
use stackwright::{EngineError, ResourceOptions, StepOp};
use stackwright::{PreviewOptions, UpOptions};

fn item(value: Value, key: &str) -> ItemArgs {
    ItemArgs { value: value.into(), key: Some(key.to_owned().into()), secret: None }
}

fn world_values(tp: &TestProvider) -> Vec<(String, Value)> {
    let mut v: Vec<_> = tp.world().items().into_values().map(|i| (i.urn, i.value)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[tokio::test]
async fn lifecycle_create_update_replace_rename_protect_delete() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let tp = TestProvider::new(World::memory(), Faults::default());

    // A program with `a`, and `b` whose value is derived from `a`'s.
    let version = |a_value: i64, a_key: &'static str, b_name: &'static str, protect_a: bool| {
        let tp = tp.clone();
        program(move |s| {
            s.provider(tp.provider());
            let opts = if protect_a { ResourceOptions::new().protect() } else { ResourceOptions::new() };
            let a = s.resource_with::<Item>("a", item(json!(a_value), a_key), opts);
            let derived = a.value.map(|v| json!({ "from_a": v }));
            s.resource_with::<Item>(
                b_name,
                ItemArgs { value: derived.into(), key: Some("b".to_owned().into()), secret: None },
                ResourceOptions::new().alias("b"),
            );
        })
    };

    // Create: both resources are created, `b` after `a`, and a second run changes nothing.
    let p = version(1, "k1", "b", false);
    let preview = engine.preview(STACK, &p, PreviewOptions::default()).await.unwrap();
    assert_eq!(changes(&preview.plan), vec![("a".into(), StepOp::Create), ("b".into(), StepOp::Create)]);
    let report = engine.up(STACK, &p, UpOptions::default(), &yes).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.failures);
    assert_eq!(world_values(&tp), vec![("a".into(), json!(1)), ("b".into(), json!({"from_a": 1}))]);
    assert!(!engine.preview(STACK, &p, PreviewOptions::default()).await.unwrap().plan.has_changes());

    // Update: changing `a`'s value updates it in place and flows into `b`.
    let p = version(2, "k1", "b", false);
    let preview = engine.preview(STACK, &p, PreviewOptions::default()).await.unwrap();
    assert_eq!(op_of(&preview.plan, "a"), Some(StepOp::Update));
    assert_eq!(op_of(&preview.plan, "b"), Some(StepOp::Update), "b's input is known only after a is updated");
    let ids_before: Vec<String> = tp.world().items().into_keys().collect();
    assert!(engine.up(STACK, &p, UpOptions::default(), &yes).await.unwrap().succeeded());
    assert_eq!(tp.world().items().into_keys().collect::<Vec<_>>(), ids_before, "updates keep the objects");
    assert_eq!(world_values(&tp)[1].1, json!({"from_a": 2}));

    // Replace: a change to a replace-forcing field creates a new object, then deletes the old.
    let p = version(2, "k2", "b", false);
    let preview = engine.preview(STACK, &p, PreviewOptions::default()).await.unwrap();
    assert_eq!(op_of(&preview.plan, "a"), Some(StepOp::Replace { delete_before_create: false }));
    let calls_before = tp.calls().len();
    assert!(engine.up(STACK, &p, UpOptions::default(), &yes).await.unwrap().succeeded());
    let calls: Vec<_> = tp.calls()[calls_before..].iter().map(|c| (c.op, c.urn.clone())).collect();
    assert_eq!(calls, vec![("create", "a".to_string()), ("delete", "a".to_string())], "create before delete");
    assert_eq!(tp.world().items().len(), 2);
    let state = engine.state(STACK).await.unwrap().unwrap();
    assert!(state.retired.is_empty(), "the replaced object is deleted and forgotten");

    // Rename through an alias: `b` becomes `b2` without touching the object.
    let p = version(2, "k2", "b2", false);
    let preview = engine.preview(STACK, &p, PreviewOptions::default()).await.unwrap();
    let step = preview.plan.steps.iter().find(|s| s.urn.as_str() == "b2").unwrap();
    assert_eq!((step.op, step.renamed_from.as_ref().map(|u| u.to_string())), (StepOp::Same, Some("b".to_string())));
    let calls_before = tp.calls().len();
    assert!(engine.up(STACK, &p, UpOptions::default(), &yes).await.unwrap().succeeded());
    assert_eq!(tp.calls().len(), calls_before, "a rename calls no provider");
    let state = engine.state(STACK).await.unwrap().unwrap();
    assert_eq!(state.resources.keys().map(|u| u.to_string()).collect::<Vec<_>>(), vec!["a", "b2"]);

    // Protect: with `a` protected, neither a replacement nor a delete is allowed, and nothing
    // runs.
    assert!(engine.up(STACK, &version(2, "k2", "b2", true), UpOptions::default(), &yes).await.unwrap().succeeded());
    let files =
        || ["stacks/dev.json", "stacks/dev.journal"].map(|f| std::fs::read(dir.path().join(f)).unwrap_or_default());
    let before = files();
    let err = engine.up(STACK, &version(2, "k3", "b2", true), UpOptions::default(), &yes).await.unwrap_err();
    assert!(matches!(&err, EngineError::Protected(p) if p == &vec![("a".to_string(), "replace")]), "{err}");
    assert!(err.to_string().contains("protected resource `a`"), "{err}");
    let only_b = {
        let tp = tp.clone();
        program(move |s| {
            s.provider(tp.provider());
        })
    };
    let err = engine.up(STACK, &only_b, UpOptions::default(), &yes).await.unwrap_err();
    assert!(err.to_string().contains("delete protected resource `a`"), "{err}");
    assert_eq!(tp.world().items().len(), 2, "nothing was deleted");
    let state = engine.state(STACK).await.unwrap().unwrap();
    assert_eq!(state.resources.len(), 2, "state is intact after a refusal");
    assert_eq!(files(), before, "a refused update leaves the state files untouched");

    // Delete: after unprotecting, removing everything deletes `b2` before `a` (it depends on a).
    assert!(engine.up(STACK, &version(2, "k2", "b2", false), UpOptions::default(), &yes).await.unwrap().succeeded());
    let calls_before = tp.calls().len();
    assert!(engine.up(STACK, &only_b, UpOptions::default(), &yes).await.unwrap().succeeded());
    let calls: Vec<_> = tp.calls()[calls_before..].iter().map(|c| (c.op, c.urn.clone())).collect();
    assert_eq!(calls, vec![("delete", "b2".to_string()), ("delete", "a".to_string())]);
    assert!(tp.world().items().is_empty());
    assert!(engine.state(STACK).await.unwrap().unwrap().resources.is_empty());
}

#[tokio::test]
async fn delete_before_replace_deletes_first_and_retain_on_delete_keeps_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let tp = TestProvider::new(World::memory(), Faults::default());
    let p = |key: &'static str, with_kept: bool| {
        let tp = tp.clone();
        program(move |s| {
            s.provider(tp.provider());
            s.resource_with::<Item>("unique", item(json!(1), key), ResourceOptions::new().delete_before_replace());
            if with_kept {
                s.resource_with::<Item>("kept", item(json!(2), "k"), ResourceOptions::new().retain_on_delete());
            }
        })
    };
    assert!(engine.up(STACK, &p("k1", true), UpOptions::default(), &yes).await.unwrap().succeeded());
    let n = tp.calls().len();
    assert!(engine.up(STACK, &p("k2", false), UpOptions::default(), &yes).await.unwrap().succeeded());
    let calls: Vec<_> = tp.calls()[n..].iter().map(|c| (c.op, c.urn.clone())).collect();
    assert_eq!(calls, vec![("delete", "unique".to_string()), ("create", "unique".to_string())]);
    let urns: Vec<String> = tp.world().items().into_values().map(|i| i.urn).collect();
    assert!(urns.contains(&"kept".to_string()), "a retained resource stays in the world: {urns:?}");
    let state = engine.state(STACK).await.unwrap().unwrap();
    assert!(!state.resources.keys().any(|u| u.as_str() == "kept"), "but leaves the state");
}

#[tokio::test]
async fn ignore_changes_and_replace_on_changes_shape_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let tp = TestProvider::new(World::memory(), Faults::default());
    let p = |owner: &'static str, size: i64| {
        let tp = tp.clone();
        program(move |s| {
            s.provider(tp.provider());
            let v = json!({ "owner": owner, "size": size });
            s.resource_with::<Item>(
                "ignored",
                item(v.clone(), "k"),
                ResourceOptions::new().ignore_changes(["value.owner"]),
            );
            s.resource_with::<Item>("forced", item(v, "k"), ResourceOptions::new().replace_on_changes(["value.size"]));
        })
    };
    assert!(engine.up(STACK, &p("alice", 1), UpOptions::default(), &yes).await.unwrap().succeeded());
    let plan = engine.preview(STACK, &p("bob", 1), PreviewOptions::default()).await.unwrap().plan;
    assert_eq!(op_of(&plan, "ignored"), Some(StepOp::Same), "an ignored path never causes a change");
    assert_eq!(op_of(&plan, "forced"), Some(StepOp::Update));
    let plan = engine.preview(STACK, &p("alice", 2), PreviewOptions::default()).await.unwrap().plan;
    assert_eq!(op_of(&plan, "ignored"), Some(StepOp::Update));
    assert_eq!(op_of(&plan, "forced"), Some(StepOp::Replace { delete_before_create: false }));
    let change = &plan.steps.iter().find(|s| s.urn.as_str() == "forced").unwrap().changes[0];
    assert_eq!((change.path.to_string(), change.replaces), ("value.size".to_string(), true));
}

#[tokio::test]
async fn a_failure_stops_its_dependents_not_its_neighbours_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    // The first provider call fails for good: `root` fails, `child` is skipped, `other` is made.
    let tp = TestProvider::new(
        World::memory(),
        Faults { fail_at_call: Some(1), error_kind: stackwright::core::ErrorKind::InvalidInput, ..Faults::default() },
    );
    let tp3 = tp.clone();
    let p_independent = program(move |s| {
        s.provider(tp3.provider().max_concurrency(1));
        let root = s.resource::<Item>("root", item(json!(1), "k"));
        s.resource::<Item>("child", ItemArgs { value: root.value.clone().into(), key: None, secret: None });
        s.resource::<Item>("other", item(json!(3), "k"));
    });
    let report = engine.up(STACK, &p_independent, UpOptions::default(), &yes).await.unwrap();
    assert!(!report.succeeded());
    let mut failures: Vec<(String, String)> =
        report.failures.iter().map(|f| (f.urn.to_string(), f.message.clone())).collect();
    failures.sort();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].0 == "child" && failures[0].1.contains("skipped because `root` failed"), "{failures:?}");
    assert!(failures[1].0 == "root" && failures[1].1.contains("injected failure"), "{failures:?}");
    let urns: Vec<String> = tp.world().items().into_values().map(|i| i.urn).collect();
    assert_eq!(urns, vec!["other".to_string()]);
    // The next run finishes the job.
    assert!(engine.up(STACK, &p_independent, UpOptions::default(), &yes).await.unwrap().succeeded());
    assert_eq!(tp.world().items().len(), 3);
}

#[tokio::test]
async fn transient_and_throttled_errors_are_retried_until_the_apply_converges() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let tp = TestProvider::new(
        World::memory(),
        Faults { error_rate: 0.3, error_kind: stackwright::core::ErrorKind::Throttled, seed: 7, ..Faults::default() },
    );
    let tp2 = tp.clone();
    let p = program(move |s| {
        s.provider(tp2.provider().max_concurrency(3));
        for i in 0..40 {
            s.resource::<Item>(&format!("r{i}"), item(json!(i), "k"));
        }
    });
    let report = engine.up(STACK, &p, UpOptions::default(), &yes).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.failures);
    assert!(tp.calls().iter().any(|c| !c.ok), "some calls were throttled");
    // Throttling refuses the request before any work, so these retries cannot duplicate
    // anything; lost answers after the work are covered by the tests below.
    assert_eq!(tp.world().items().len(), 40, "every resource exists once");
    assert!(tp.max_in_flight() <= 3, "the provider's own limit holds: {}", tp.max_in_flight());
}

/// Objects in the world that the state does not record (orphans), and resources with more than
/// one object (duplicates), after comparing the world with the stack's state.
async fn orphans_and_duplicates(engine: &stackwright::Engine, tp: &TestProvider) -> (Vec<String>, Vec<String>) {
    let state = engine.state(STACK).await.unwrap().unwrap();
    let known: std::collections::BTreeSet<String> =
        state.resources.values().map(|r| r.id.clone()).chain(state.retired.iter().map(|r| r.id.clone())).collect();
    let world = tp.world().items();
    let orphans = world.keys().filter(|id| !known.contains(*id)).cloned().collect();
    let mut per_urn: std::collections::BTreeMap<String, usize> = Default::default();
    for item in world.values() {
        *per_urn.entry(item.urn.clone()).or_default() += 1;
    }
    let duplicates = per_urn.into_iter().filter(|(_, n)| *n > 1).map(|(urn, _)| urn).collect();
    (orphans, duplicates)
}

/// Applies 40 items, then changes every value and drops ten, with answers lost after the work
/// on a third of the calls, and runs `up` until it succeeds. Returns how many calls lost their
/// answer.
async fn converge_with_lost_answers(engine: &stackwright::Engine, faults: Faults) -> (TestProvider, usize) {
    let world = World::memory();
    let version = |tp: TestProvider, generation: u64, count: usize| {
        program(move |s| {
            s.provider(tp.provider().max_concurrency(4));
            for i in 0..count {
                s.resource::<Item>(&format!("r{i}"), item(json!({ "i": i, "gen": generation }), &format!("k{i}")));
            }
        })
    };
    let lossy = Faults { lose_answer_rate: 0.33, seed: 11, ..faults.clone() };
    let mut lost = 0;
    for (generation, count) in [(0, 40), (1, 30)] {
        // Each run uses a provider with a fresh seed, as the network would.
        for attempt in 0..5 {
            let tp = TestProvider::new(world.clone(), Faults { seed: 11 + attempt, ..lossy.clone() });
            let report =
                engine.up(STACK, &version(tp.clone(), generation, count), UpOptions::default(), &yes).await.unwrap();
            lost += tp.calls().iter().filter(|c| !c.ok && c.op != "find" && c.op != "read").count();
            if report.succeeded() {
                break;
            }
        }
    }
    let clean = TestProvider::new(world, faults);
    let p = version(clean.clone(), 1, 30);
    assert!(engine.up(STACK, &p, UpOptions::default(), &yes).await.unwrap().succeeded());
    assert!(!engine.preview(STACK, &p, PreviewOptions::default()).await.unwrap().plan.has_changes());
    (clean, lost)
}

/// Retries reuse the operation id, so a provider that derives the object from it (an idempotency
/// key) makes each object once however many answers are lost.
#[tokio::test]
async fn answers_lost_after_the_work_are_retried_without_duplicates_or_orphans_when_ids_are_operation_ids() {
    lost_answers_leave_the_world_matching_the_state(Faults::default()).await;
}

/// Converges a 30-item program under lost answers with `faults` and checks the world matches the
/// state exactly.
async fn lost_answers_leave_the_world_matching_the_state(faults: Faults) {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let (tp, lost) = converge_with_lost_answers(&engine, faults).await;
    assert!(lost >= 10, "enough answers were lost to prove something: {lost}");
    let (orphans, duplicates) = orphans_and_duplicates(&engine, &tp).await;
    assert_eq!((orphans, duplicates), (vec![], vec![]), "the world matches the state");
    assert_eq!(tp.world().items().len(), 30);
}

/// With unique names and server-chosen ids, the retry of a create that committed first asks
/// `find`, which adopts the object by its tag (or, if the retry conflicts, the create stays
/// pending and the next run adopts it).
#[tokio::test]
async fn answers_lost_after_the_work_leave_no_duplicates_or_orphans_with_unique_names_and_server_ids() {
    lost_answers_leave_the_world_matching_the_state(Faults {
        server_ids: true,
        unique_keys: true,
        ..Faults::default()
    })
    .await;
}

/// With server-chosen ids and no unique names, nothing stops the retry of a committed create
/// from making a second object, unless the engine asks `find` before retrying.
#[tokio::test]
async fn answers_lost_after_the_work_leave_no_duplicates_or_orphans_with_server_ids() {
    lost_answers_leave_the_world_matching_the_state(Faults { server_ids: true, ..Faults::default() }).await;
}

#[tokio::test]
async fn a_retry_after_hint_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let hint = std::time::Duration::from_millis(150);
    let tp = TestProvider::new(
        World::memory(),
        Faults {
            fail_at_call: Some(1),
            error_kind: stackwright::core::ErrorKind::Throttled,
            retry_after: Some(hint),
            ..Faults::default()
        },
    );
    let tp2 = tp.clone();
    let p = program(move |s| {
        s.provider(tp2.provider());
        s.resource::<Item>("r", item(json!(1), "k"));
    });
    let report = engine.up(STACK, &p, UpOptions::default(), &yes).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.failures);
    let calls = tp.calls();
    assert_eq!(calls.iter().filter(|c| c.op == "create").count(), 2, "one throttled attempt and one retry");
    assert!(report.elapsed >= hint, "waited {:?}, less than the hint {hint:?}", report.elapsed);
}

#[tokio::test]
async fn import_adopts_an_existing_object_so_a_matching_program_plans_no_change() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let tp = TestProvider::new(World::memory(), Faults::default());
    let made_by_hand = stackwright::builtin::testing::WorldItem {
        urn: "elsewhere".into(),
        value: json!({"size": 3}),
        key: Some("k".into()),
        secret: Some("hand-made-secret".into()),
        revision: 4,
        token: "tok-hand".into(),
        tag: None,
    };
    tp.world().put("obj-1", made_by_hand).unwrap();
    let tp2 = tp.clone();
    let p = program(move |s| {
        s.provider(tp2.provider());
        s.resource::<Item>(
            "adopted",
            ItemArgs {
                value: json!({"size": 3}).into(),
                key: Some("k".to_owned().into()),
                secret: Some("hand-made-secret".to_owned().into()),
            },
        );
    });
    let err = engine.import(STACK, &p, "test:Item", "adopted", "missing").await.unwrap_err().to_string();
    assert!(err.contains("no `test:Item` with id `missing`"), "{err}");
    let imported = engine.import(STACK, &p, "test:Item", "adopted", "obj-1").await.unwrap();
    assert_eq!(imported.id, "obj-1");
    assert_eq!(stackwright::render::value(&imported.inputs["secret"]), "[secret]", "secret arguments stay secret");
    let preview = engine.preview(STACK, &p, PreviewOptions::default()).await.unwrap();
    assert!(!preview.plan.has_changes(), "{:?}", changes(&preview.plan));
    let err = engine.import(STACK, &p, "test:Item", "adopted", "obj-1").await.unwrap_err().to_string();
    assert!(err.contains("already has a resource named `adopted`"), "{err}");
    assert_eq!(tp.world().items().len(), 1, "nothing was created");
}
