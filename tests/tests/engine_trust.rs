//! Regression tests for the engine review ("an engine you can trust with production"): each test
//! is named after what it guards — the plan that was shown is the plan that runs, replacements
//! never delete what something still uses, moving between provider instances is never silent,
//! unknown outcomes never orphan an object, and a panic fails one step, not the process.

mod common;

use stackwright::{PreviewOptions, UpOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use common::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stackwright::builtin::testing::{Faults, Item, ItemArgs, TestProvider, World};
use stackwright::core::{
    Args, Created, ErrorKind, Handler, Input, Observed, OpContext, Outputs, PropertyChange, Provider, ProviderError,
    Resource, Stored,
};
use stackwright::{EngineError, FailureReason, Resolution, ResourceOptions, StepError, StepOp, Urn};

fn item(value: Value, key: &str) -> ItemArgs {
    ItemArgs { value: value.into(), key: Some(key.to_owned().into()), secret: None }
}

fn urns_in(tp: &TestProvider) -> Vec<String> {
    let mut v: Vec<String> = tp.world().items().into_values().map(|i| i.urn).collect();
    v.sort();
    v
}

fn failure<'a>(report: &'a stackwright::UpReport, urn: &str) -> &'a stackwright::Failure {
    report.failures.iter().find(|f| f.urn.as_str() == urn).unwrap_or_else(|| panic!("no failure for {urn}"))
}

// A provider whose `update` issues a new token that its schema does not mark as computed, as some
// real APIs do: the plan assumes the token stays, and only the apply learns otherwise.
struct Rotating;

impl Resource for Rotating {
    const TYPE: &'static str = "rot:Thing";
    type Args = RotArgs;
    type Outputs = RotOutputs;
}

#[derive(Clone, Serialize, Deserialize, Args)]
struct RotArgs {
    label: Input<String>,
}

#[derive(Clone, Serialize, Deserialize, Outputs)]
struct RotOutputs {
    label: String,
    token: String,
}

struct RotHandler(Arc<AtomicU64>);

#[async_trait]
impl Handler<Rotating> for RotHandler {
    async fn create(&self, _: &OpContext, args: &RotArgs) -> Result<Created<RotOutputs>, ProviderError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Ok(Created {
            id: format!("rot-{n}"),
            outputs: RotOutputs { label: args.label.get().clone(), token: format!("t{n}") },
        })
    }
    async fn read(&self, _: &OpContext, s: &Stored<Rotating>) -> Result<Option<Observed<Rotating>>, ProviderError> {
        Ok(Some(Observed { id: s.id.clone(), args: s.args.clone(), outputs: s.outputs.clone() }))
    }
    async fn update(
        &self,
        _: &OpContext,
        _: &Stored<Rotating>,
        args: &RotArgs,
        _: &[PropertyChange],
    ) -> Result<RotOutputs, ProviderError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Ok(RotOutputs { label: args.label.get().clone(), token: format!("t{n}") })
    }
    async fn delete(&self, _: &OpContext, _: &Stored<Rotating>) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[tokio::test]
async fn a_step_that_would_do_more_than_the_plan_showed_fails_naming_the_field_and_skips_its_dependents() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let tp = TestProvider::new(World::memory(), Faults::default());
    let counter = Arc::new(AtomicU64::new(0));
    let version = |label: &'static str| {
        let (tp, counter) = (tp.clone(), counter.clone());
        program(move |s| {
            s.provider(tp.provider());
            s.provider(Provider::new("rot").resource::<Rotating>(RotHandler(counter.clone())));
            let source = s.resource::<Rotating>("source", RotArgs { label: label.to_owned().into() });
            // `key` forces a replacement; it comes from the token the plan expects to stay.
            let user = s.resource::<Item>(
                "user",
                ItemArgs { value: json!(1).into(), key: Some(source.token.clone().into()), secret: None },
            );
            s.resource::<Item>("downstream", ItemArgs { value: user.value.clone().into(), key: None, secret: None });
            s.resource::<Item>("neighbour", item(json!(2), "n"));
        })
    };
    assert!(engine.up(STACK, &version("a"), UpOptions::default(), &yes).await.unwrap().succeeded());
    let before = tp.world().items();

    let p = version("b");
    let plan = engine.preview(STACK, &p, PreviewOptions::default()).await.unwrap().plan;
    assert_eq!(changes(&plan), vec![("source".to_string(), StepOp::Update)], "the plan shows only the update");
    let report = engine.up(STACK, &p, UpOptions::default(), &yes).await.unwrap();
    let user = failure(&report, "user");
    match &user.reason {
        FailureReason::Failed { error: StepError::PlanChanged { path, .. } } => {
            assert_eq!(path.as_ref().map(ToString::to_string).as_deref(), Some("key"))
        }
        other => panic!("expected a plan change naming `key`, got {other:?}"),
    }
    assert!(user.message.contains("field `key`") && user.message.contains("nothing was done"), "{}", user.message);
    assert!(matches!(failure(&report, "downstream").reason, FailureReason::Skipped { .. }));
    assert_eq!(report.failures.len(), 2, "{:#?}", report.failures);
    assert_eq!(tp.world().items(), before, "nothing the plan did not show was done to the test items");
    let state = engine.state(STACK).await.unwrap().unwrap();
    assert_eq!(
        state.resources[&Urn::from("user")].id,
        before.keys().find(|id| before[*id].urn == "user").unwrap().clone()
    );
}

#[tokio::test]
async fn mandatory_policies_run_again_on_values_known_only_at_apply_time() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let tp = TestProvider::new(World::memory(), Faults::default());
    let tp2 = tp.clone();
    let p = program(move |s| {
        s.provider(tp2.provider());
        let source = s.resource::<Item>("source", item(json!(1), "s"));
        // The value is the provider-made token: unknown at preview.
        s.resource::<Item>("copy", ItemArgs { value: source.token.map(|t| json!(t)).into(), key: None, secret: None });
        s.policy("no-tokens-in-values", stackwright::Enforcement::Mandatory, |ctx| {
            ctx.changes()
                .filter(|st| st.input("value").and_then(|v| v.as_str().map(|s| s.starts_with("tok-"))) == Some(true))
                .map(|st| (st.urn().clone(), "values must not carry tokens".to_string()))
                .collect()
        });
    });
    assert!(engine.preview(STACK, &p, PreviewOptions::default()).await.is_ok(), "the value is unknown at preview");
    let report = engine.up(STACK, &p, UpOptions::default(), &yes).await.unwrap();
    match &failure(&report, "copy").reason {
        FailureReason::Failed { error: StepError::Policy { violations } } => {
            assert_eq!(violations[0].policy, "no-tokens-in-values")
        }
        other => panic!("expected a policy refusal, got {other:?}"),
    }
    assert_eq!(urns_in(&tp), vec!["source".to_string()], "the refused step created nothing");
}

#[tokio::test]
async fn create_before_delete_keeps_the_old_object_until_every_user_has_moved() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let world = World::memory();
    let version = |tp: TestProvider, key: &'static str| {
        program(move |s| {
            s.provider(tp.provider().max_concurrency(1));
            let base = s.resource::<Item>("base", item(json!(1), key));
            s.resource::<Item>(
                "user",
                ItemArgs { value: base.token.map(|t| json!(t)).into(), key: None, secret: None },
            );
        })
    };
    let tp = TestProvider::new(world.clone(), Faults::default());
    assert!(engine.up(STACK, &version(tp.clone(), "k1"), UpOptions::default(), &yes).await.unwrap().succeeded());
    let old_base = engine.state(STACK).await.unwrap().unwrap().resources[&Urn::from("base")].id.clone();

    // The key change replaces `base` create-first; the user's update (call 2) fails for good.
    let failing = TestProvider::new(
        world.clone(),
        Faults { fail_at_call: Some(2), error_kind: ErrorKind::InvalidInput, ..Faults::default() },
    );
    let report = engine.up(STACK, &version(failing, "k2"), UpOptions::default(), &yes).await.unwrap();
    assert!(matches!(failure(&report, "user").reason, FailureReason::Failed { .. }));
    assert!(
        matches!(&failure(&report, "base").reason, FailureReason::KeptReplaced { because } if because.as_str() == "user"),
        "{:#?}",
        report.failures
    );
    assert!(world.items().contains_key(&old_base), "the old object the user still uses is not deleted");
    let state = engine.state(STACK).await.unwrap().unwrap();
    assert_eq!(state.retired.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), vec![old_base.clone()]);

    // The next successful run moves the user and only then deletes the old object.
    let plan = engine.preview(STACK, &version(tp.clone(), "k2"), PreviewOptions::default()).await.unwrap().plan;
    assert!(
        plan.steps.iter().any(|s| s.urn.as_str() == "base" && s.op == StepOp::DeleteReplaced),
        "the kept object is planned for deletion: {:?}",
        changes(&plan)
    );
    let report = engine.up(STACK, &version(tp.clone(), "k2"), UpOptions::default(), &yes).await.unwrap();
    assert!(report.succeeded(), "{:#?}", report.failures);
    assert!(!world.items().contains_key(&old_base));
    let calls = tp.calls();
    let user_update = calls.iter().position(|c| c.op == "update" && c.urn == "user").expect("user updated");
    let old_delete = calls.iter().position(|c| c.op == "delete" && c.urn == "base").expect("old base deleted");
    assert!(user_update < old_delete, "the user moved before the old object was deleted: {calls:?}");
    assert!(engine.state(STACK).await.unwrap().unwrap().retired.is_empty());
}

#[tokio::test]
async fn delete_before_replace_replaces_the_users_first_in_reverse_dependency_order() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let tp = TestProvider::new(World::memory(), Faults::default());
    let version = |key: &'static str| {
        let tp = tp.clone();
        program(move |s| {
            s.provider(tp.provider());
            let db =
                s.resource_with::<Item>("db", item(json!("db"), key), ResourceOptions::new().delete_before_replace());
            // The schema's arguments do not change when the database is replaced: by value it
            // would plan `Same`, although dropping the database drops it.
            let schema =
                s.resource_with::<Item>("schema", item(json!("schema"), "s"), ResourceOptions::new().depends_on(&db));
            s.resource_with::<Item>("grant", item(json!("grant"), "g"), ResourceOptions::new().depends_on(&schema));
            s.resource::<Item>("unrelated", item(json!("u"), "u"));
        })
    };
    assert!(engine.up(STACK, &version("v1"), UpOptions::default(), &yes).await.unwrap().succeeded());
    let plan = engine.preview(STACK, &version("v2"), PreviewOptions::default()).await.unwrap().plan;
    let first = StepOp::Replace { delete_before_create: true };
    assert_eq!(
        changes(&plan),
        vec![("db".to_string(), first), ("schema".to_string(), first), ("grant".to_string(), first)]
    );
    let schema = plan.steps.iter().find(|s| s.urn.as_str() == "schema").unwrap();
    assert!(schema.reason.as_deref().is_some_and(|r| r.contains("`db`")), "{:?}", schema.reason);
    let shown = stackwright::render::plan(&plan);
    assert!(shown.contains("schema (test:Item) replace (delete first)\n      because it uses `db`"), "{shown}");

    let start = tp.calls().len();
    let report = engine.up(STACK, &version("v2"), UpOptions::default(), &yes).await.unwrap();
    assert!(report.succeeded(), "{:#?}", report.failures);
    let order: Vec<(String, String)> = tp.calls()[start..].iter().map(|c| (c.op.to_string(), c.urn.clone())).collect();
    let pos = |op: &str, urn: &str| order.iter().position(|(o, u)| o == op && u == urn).unwrap();
    assert!(pos("delete", "grant") < pos("delete", "schema"), "{order:?}");
    assert!(pos("delete", "schema") < pos("delete", "db"), "{order:?}");
    assert!(pos("delete", "db") < pos("create", "db"), "{order:?}");
    assert!(pos("create", "db") < pos("create", "schema"), "{order:?}");
    assert!(pos("create", "schema") < pos("create", "grant"), "{order:?}");
    assert!(!order.iter().any(|(_, u)| u == "unrelated"), "{order:?}");
    assert_eq!(urns_in(&tp), vec!["db", "grant", "schema", "unrelated"]);
    assert!(!engine.preview(STACK, &version("v2"), PreviewOptions::default()).await.unwrap().plan.has_changes());
}

#[tokio::test]
async fn moving_a_resource_to_another_provider_instance_replaces_it_or_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let east = TestProvider::new(World::memory(), Faults::default()).named("east");
    let west = TestProvider::new(World::memory(), Faults::default()).named("west");
    let version = |on: &'static str, register_east: bool| {
        let (east, west) = (east.clone(), west.clone());
        program(move |s| {
            if register_east {
                s.provider(east.provider());
            }
            s.provider(west.provider());
            s.resource_with::<Item>("thing", item(json!(1), "k"), ResourceOptions::new().provider(on));
        })
    };
    assert!(engine.up(STACK, &version("east", true), UpOptions::default(), &yes).await.unwrap().succeeded());
    assert_eq!(urns_in(&east), vec!["thing"]);

    // Without the old instance registered, the move is refused and names both instances.
    let err = engine.preview(STACK, &version("west", false), PreviewOptions::default()).await.unwrap_err();
    assert!(matches!(err, EngineError::ProviderMissing(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("`east`") && text.contains("`west`"), "{text}");
    let before = engine.state(STACK).await.unwrap();
    assert!(engine.up(STACK, &version("west", false), UpOptions::default(), &yes).await.is_err());
    assert_eq!(engine.state(STACK).await.unwrap(), before, "a refused move changes nothing");

    // With both registered, it is a replacement with the reason, and the old object goes.
    let plan = engine.preview(STACK, &version("west", true), PreviewOptions::default()).await.unwrap().plan;
    let step = plan.steps.iter().find(|s| s.urn.as_str() == "thing").unwrap();
    assert!(matches!(step.op, StepOp::Replace { .. }), "{:?}", step.op);
    assert!(step.reason.as_deref().is_some_and(|r| r.contains("`east`") && r.contains("`west`")));
    assert!(engine.up(STACK, &version("west", true), UpOptions::default(), &yes).await.unwrap().succeeded());
    assert!(urns_in(&east).is_empty(), "the object on the old instance is deleted");
    assert_eq!(urns_in(&west), vec!["thing"]);
    assert_eq!(engine.state(STACK).await.unwrap().unwrap().resources[&Urn::from("thing")].provider, "west");
}

#[tokio::test]
async fn a_lost_answer_followed_by_a_conflict_keeps_the_create_pending_and_the_next_up_adopts_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let world = World::memory();
    let realistic = Faults { server_ids: true, unique_keys: true, ..Faults::default() };
    let p = |tp: TestProvider| {
        program(move |s| {
            s.provider(tp.provider());
            s.resource::<Item>("thing", item(json!(1), "unique-name"));
        })
    };
    // The create commits and its answer is lost (transient); before retrying, the engine asks
    // `find`, whose read lags behind the write and answers "absent"; the retry hits the taken name.
    let lossy =
        TestProvider::new(world.clone(), Faults { lose_answer_at_call: Some(1), stale_finds: 1, ..realistic.clone() });
    let report = engine.up(STACK, &p(lossy), UpOptions::default(), &yes).await.unwrap();
    match &failure(&report, "thing").reason {
        FailureReason::Failed { error: StepError::Provider { kind, uncertain, attempts, .. } } => {
            assert_eq!(*kind, ErrorKind::Conflict);
            assert_eq!(*attempts, 2);
            assert!(uncertain, "the first attempt may have created it");
        }
        other => panic!("{other:?}"),
    }
    let state = engine.state(STACK).await.unwrap().unwrap();
    assert_eq!(state.pending.len(), 1, "the create stays pending");
    assert_eq!(world.items().len(), 1);

    // The next up finds it by the tag it was given and adopts it: no duplicate, no orphan.
    let tp = TestProvider::new(world.clone(), realistic);
    let report = engine.up(STACK, &p(tp), UpOptions::default(), &yes).await.unwrap();
    assert!(report.succeeded(), "{:#?}", report.failures);
    assert_eq!(report.reconciled.len(), 1, "{:?}", report.reconciled);
    let state = engine.state(STACK).await.unwrap().unwrap();
    assert!(state.pending.is_empty());
    let ids: Vec<String> = world.items().into_keys().collect();
    assert_eq!(ids, vec![state.resources[&Urn::from("thing")].id.clone()]);
}

#[tokio::test]
async fn a_provider_without_find_stops_the_next_up_until_the_pending_create_is_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let world = World::memory();
    let blind = Faults { server_ids: true, unique_keys: true, find: false, ..Faults::default() };
    let p = |tp: TestProvider, with_other: bool| {
        program(move |s| {
            s.provider(tp.provider());
            s.resource::<Item>("thing", item(json!(1), "k"));
            if with_other {
                s.resource::<Item>("other", item(json!(2), "o"));
            }
        })
    };
    let lossy = TestProvider::new(world.clone(), Faults { lose_answer_at_call: Some(1), ..blind.clone() });
    let report = engine.up(STACK, &p(lossy, false), UpOptions::default(), &yes).await.unwrap();
    assert!(!report.succeeded());
    assert_eq!(world.items().len(), 1, "the lost answer's object exists");
    assert!(engine.state(STACK).await.unwrap().unwrap().resources.is_empty(), "and the state does not know it");

    // The next up stops before changing anything and says how to resolve it.
    let tp = TestProvider::new(world.clone(), blind.clone());
    let err = engine.up(STACK, &p(tp.clone(), true), UpOptions::default(), &yes).await.unwrap_err();
    let EngineError::Uncertain(ops) = &err else { panic!("expected an uncertain operation, got {err}") };
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].resource, "thing");
    let text = err.to_string();
    assert!(text.contains("stack pending resolve thing --created ID") && text.contains("--absent"), "{text}");
    assert_eq!(world.items().len(), 1, "`other` was not created");
    assert_eq!(engine.pending(STACK).await.unwrap().len(), 1);

    // The user looks, finds the object, and says so.
    let made = world.items().into_keys().next().unwrap();
    let done = engine
        .resolve_pending(STACK, &p(tp.clone(), true), "thing", Resolution::Created { id: made.clone() })
        .await
        .unwrap();
    assert!(done.contains(&made), "{done}");
    let state = engine.state(STACK).await.unwrap().unwrap();
    assert!(state.pending.is_empty());
    assert_eq!(state.resources[&Urn::from("thing")].id, made);
    let report = engine.up(STACK, &p(tp.clone(), true), UpOptions::default(), &yes).await.unwrap();
    assert!(report.succeeded(), "{:#?}", report.failures);
    assert!(!report.plan.steps.iter().any(|s| s.urn.as_str() == "thing" && s.op.is_change()));
    let state = engine.state(STACK).await.unwrap().unwrap();
    let mut ids: Vec<String> = world.items().into_keys().collect();
    ids.sort();
    let mut recorded: Vec<String> = state.resources.values().map(|r| r.id.clone()).collect();
    recorded.sort();
    assert_eq!(ids, recorded, "no orphan and no duplicate");
}

#[tokio::test]
async fn resolving_a_pending_create_as_absent_lets_the_next_up_create_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let world = World::memory();
    let blind = Faults { find: false, ..Faults::default() };
    let p = |tp: TestProvider| {
        program(move |s| {
            s.provider(tp.provider());
            s.resource::<Item>("thing", item(json!(1), "k"));
        })
    };
    // A create that panics before doing anything: its outcome is unknown to the engine.
    let panicky = TestProvider::new(world.clone(), Faults { panic_at_call: Some(1), ..blind.clone() });
    let report = engine.up(STACK, &p(panicky), UpOptions::default(), &yes).await.unwrap();
    assert!(matches!(failure(&report, "thing").reason, FailureReason::Failed { error: StepError::Panicked { .. } }));
    let tp = TestProvider::new(world.clone(), blind);
    assert!(matches!(
        engine.up(STACK, &p(tp.clone()), UpOptions::default(), &yes).await,
        Err(EngineError::Uncertain(_))
    ));
    engine.resolve_pending(STACK, &p(tp.clone()), "thing", Resolution::Absent).await.unwrap();
    assert!(engine.up(STACK, &p(tp.clone()), UpOptions::default(), &yes).await.unwrap().succeeded());
    assert_eq!(world.items().len(), 1);
}

#[tokio::test]
async fn reconciliation_retries_transient_errors_instead_of_aborting_the_update() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let world = World::memory();
    let p = |tp: TestProvider| {
        program(move |s| {
            s.provider(tp.provider());
            s.resource::<Item>("thing", item(json!(1), "k"));
        })
    };
    let once = TestProvider::new(
        world.clone(),
        Faults {
            lose_answer_at_call: Some(1),
            stale_finds: 1,
            unique_keys: true,
            server_ids: true,
            ..Faults::default()
        },
    );
    let report = engine.up(STACK, &p(once), UpOptions::default(), &yes).await.unwrap();
    assert!(!report.succeeded());
    assert_eq!(engine.state(STACK).await.unwrap().unwrap().pending.len(), 1);
    // Reconciliation's `find` fails twice with transient errors, then works.
    let flaky = TestProvider::new(
        world.clone(),
        Faults { read_failures: 2, unique_keys: true, server_ids: true, ..Faults::default() },
    );
    let report = engine.up(STACK, &p(flaky.clone()), UpOptions::default(), &yes).await.unwrap();
    assert!(report.succeeded(), "{:#?}", report.failures);
    assert_eq!(flaky.calls().iter().filter(|c| c.op == "find").count(), 3, "two failures, then the answer");
    assert_eq!(world.items().len(), 1);
}

#[tokio::test]
async fn a_panic_in_a_provider_call_fails_that_step_and_the_rest_finish_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let tp = TestProvider::new(World::memory(), Faults { panic_at_call: Some(1), ..Faults::default() });
    let tp2 = tp.clone();
    let p = program(move |s| {
        s.provider(tp2.provider().max_concurrency(1));
        let first = s.resource::<Item>("first", item(json!(1), "a"));
        s.resource::<Item>("child", ItemArgs { value: first.value.clone().into(), key: None, secret: None });
        s.resource::<Item>("neighbour", item(json!(2), "b"));
    });
    let report = engine.up(STACK, &p, UpOptions::default(), &yes).await.unwrap();
    let first = failure(&report, "first");
    assert!(
        matches!(&first.reason, FailureReason::Failed { error: StepError::Panicked { message, .. } } if message.contains("injected panic"))
    );
    assert!(matches!(failure(&report, "child").reason, FailureReason::Skipped { .. }));
    assert_eq!(report.failures.len(), 2);
    let state = engine.state(STACK).await.unwrap().unwrap();
    assert!(state.resources.contains_key(&Urn::from("neighbour")), "independent work finished and was persisted");
    assert_eq!(urns_in(&tp), vec!["neighbour"]);
}

#[tokio::test]
async fn a_panic_in_an_output_map_closure_fails_that_step_only() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let tp = TestProvider::new(World::memory(), Faults::default());
    let tp2 = tp.clone();
    let p = program(move |s| {
        s.provider(tp2.provider());
        let first = s.resource::<Item>("first", item(json!(1), "a"));
        let bad = first.token.map(|t| -> Value { panic!("cannot use token {t}") });
        let broken = s.resource::<Item>("broken", ItemArgs { value: bad.into(), key: None, secret: None });
        s.resource::<Item>("after", ItemArgs { value: broken.value.clone().into(), key: None, secret: None });
        s.resource::<Item>("neighbour", item(json!(2), "b"));
    });
    let report = engine.up(STACK, &p, UpOptions::default(), &yes).await.unwrap();
    let broken = failure(&report, "broken");
    match &broken.reason {
        FailureReason::Failed { error: StepError::Arguments { message } } => {
            assert!(message.contains("panicked"), "{message}");
            assert!(!message.contains("tok-"), "the secret token is scrubbed from the panic message: {message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(failure(&report, "after").reason, FailureReason::Skipped { .. }));
    assert_eq!(urns_in(&tp), vec!["first", "neighbour"]);
}
