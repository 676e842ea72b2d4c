//! Property tests of the planner and executor on random dependency graphs with random prior
//! states: no step starts before its dependencies finish, deletions run in reverse dependency
//! order, the old half of a replacement is deleted only after every resource that used it has
//! moved (and a delete-before-create replacement's users are deleted before it), the world
//! matches the state, and an `up` right after a successful `up` plans only `Same`.
//!
//! Prior states come two ways: from an earlier `up` of a random program, and generated directly
//! (random recorded dependencies that the program no longer declares, retired objects awaiting
//! deletion, and pending operations whose work was or was not done), which an `up` never leaves
//! behind all at once.

mod common;

use stackwright::{PreviewOptions, UpOptions};
use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::*;
use proptest::prelude::*;
use serde_json::json;
use stackwright::builtin::testing::{CallRecord, Faults, Item, ItemArgs, TestProvider, World, WorldItem};
use stackwright::state::{OpKind, PendingOperation, StackState};
use stackwright::testing::ProgramTest;
use stackwright::{Input, Program, ResourceOptions, Urn};

#[derive(Debug, Clone)]
struct Node {
    deps: Vec<usize>,
    old: Option<(i64, u8)>,
    new: Option<(i64, u8)>,
    explicit: bool,
    dbr: bool,
}

fn arb_graph() -> impl Strategy<Value = Vec<Node>> {
    (1usize..10).prop_flat_map(|n| {
        let nodes: Vec<_> = (0..n)
            .map(|i| {
                (
                    prop::collection::vec(0..i.max(1), 0..3),
                    prop::option::weighted(0.7, (0i64..3, 0u8..2)),
                    prop::option::weighted(0.8, (0i64..3, 0u8..2)),
                    any::<bool>(),
                    any::<bool>(),
                )
                    .prop_map(move |(deps, old, new, explicit, dbr)| Node {
                        deps: if i == 0 {
                            vec![]
                        } else {
                            deps.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
                        },
                        old,
                        new,
                        explicit,
                        dbr,
                    })
            })
            .collect();
        nodes
    })
}

fn build(nodes: &[Node], use_new: bool, tp: &TestProvider) -> Program {
    let nodes = nodes.to_vec();
    let tp = tp.clone();
    program(move |s| {
        s.provider(tp.provider());
        let mut handles: HashMap<usize, stackwright::ResourceRef<Item>> = HashMap::new();
        for (i, node) in nodes.iter().enumerate() {
            let Some((value, key)) = (if use_new { node.new } else { node.old }) else { continue };
            let present: Vec<usize> = node.deps.iter().copied().filter(|d| handles.contains_key(d)).collect();
            let mut opts = ResourceOptions::new();
            if node.dbr {
                opts = opts.delete_before_replace();
            }
            let value: Input<serde_json::Value> = if node.explicit || present.is_empty() {
                for d in &present {
                    opts = opts.depends_on(&handles[d]);
                }
                json!(value).into()
            } else {
                let parts = present.iter().map(|d| handles[d].value.clone());
                stackwright::all(parts).map(move |vs| json!({ "own": value, "deps": vs })).into()
            };
            let h = s.resource_with::<Item>(
                &format!("n{i}"),
                ItemArgs { value, key: Some(format!("k{key}").into()), secret: None },
                opts,
            );
            handles.insert(i, h);
        }
    })
}

fn deps_in(nodes: &[Node], use_new: bool) -> BTreeMap<String, Vec<String>> {
    let present = |n: &Node| if use_new { n.new.is_some() } else { n.old.is_some() };
    nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| present(n))
        .map(|(i, n)| {
            (format!("n{i}"), n.deps.iter().filter(|d| present(&nodes[**d])).map(|d| format!("n{d}")).collect())
        })
        .collect()
}

fn check_world_matches_state(tp: &TestProvider, state: &stackwright::state::StackState) -> Result<(), TestCaseError> {
    let world = tp.world().items();
    let state_ids: BTreeSet<&String> = state.resources.values().map(|r| &r.id).collect();
    let world_ids: BTreeSet<&String> = world.keys().collect();
    prop_assert_eq!(state_ids, world_ids, "every object is in the state and nothing more");
    let mut urns: Vec<&String> = world.values().map(|i| &i.urn).collect();
    urns.sort();
    let before = urns.len();
    urns.dedup();
    prop_assert_eq!(before, urns.len(), "no resource has two objects");
    Ok(())
}

/// No create or update starts before every dependency's create or update finished.
fn check_dependency_order(calls: &[CallRecord], new_deps: &BTreeMap<String, Vec<String>>) -> Result<(), TestCaseError> {
    for call in calls.iter().filter(|c| c.op == "create" || c.op == "update") {
        for dep in new_deps.get(&call.urn).into_iter().flatten() {
            for d in calls.iter().filter(|c| &c.urn == dep && (c.op == "create" || c.op == "update")) {
                prop_assert!(
                    d.finished < call.started,
                    "{} {} started before its dependency {} finished",
                    call.op,
                    call.urn,
                    dep
                );
            }
        }
    }
    Ok(())
}

/// An object is deleted only after every object that used it (by the dependencies recorded with
/// it, by name, as the engine records them) is done with it: the user's updates finished (it
/// moved to the new object, or away) and the user's own delete finished (reverse dependency
/// order; for a user replaced create-before-delete, that delete follows its successful create).
/// So the old half of a replacement outlives every user that has not succeeded, and a
/// delete-before-create replacement's users are deleted before it. Objects that only start
/// using it now use the new object and are not constrained. `users` maps each recorded object's
/// id to the names it depended on.
fn check_old_halves(calls: &[CallRecord], users: &BTreeMap<String, Vec<String>>) -> Result<(), TestCaseError> {
    for delete in calls.iter().filter(|c| c.op == "delete") {
        let x = &delete.urn;
        let user_ids = users.iter().filter(|(_, deps)| deps.contains(x)).map(|(id, _)| id);
        for w in user_ids {
            for c in calls.iter().filter(|c| c.id.as_ref() == Some(w) && (c.op == "update" || c.op == "delete")) {
                prop_assert!(
                    c.finished < delete.started,
                    "the delete of {x} started before the {} of {} ({w}), which used it, finished; calls: {:?}",
                    c.op,
                    c.urn,
                    calls.iter().map(|c| format!("{} {} {:?}", c.op, c.urn, c.id)).collect::<Vec<_>>()
                );
            }
        }
    }
    Ok(())
}

/// Each recorded object's id (resources and retired objects) with the names it depended on.
fn recorded_users(state: &StackState) -> BTreeMap<String, Vec<String>> {
    state
        .resources
        .values()
        .chain(&state.retired)
        .map(|r| (r.id.clone(), r.dependencies.iter().map(ToString::to_string).collect()))
        .collect()
}

fn run_case(nodes: Vec<Node>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let tp = TestProvider::new(
            World::memory(),
            Faults { latency: std::time::Duration::from_micros(200), ..Faults::default() },
        );
        let old = build(&nodes, false, &tp);
        let report = engine.up(STACK, &old, UpOptions::default(), &yes).await.unwrap();
        prop_assert!(report.succeeded(), "{:?}", report.failures);
        let state = engine.state(STACK).await.unwrap().unwrap();
        check_world_matches_state(&tp, &state)?;

        let prior = state;
        let first_run = tp.calls().len();
        let new = build(&nodes, true, &tp);
        let report = engine.up(STACK, &new, UpOptions::default(), &yes).await.unwrap();
        prop_assert!(report.succeeded(), "{:?}", report.failures);
        let calls: Vec<CallRecord> = tp.calls()[first_run..].to_vec();

        let new_deps = deps_in(&nodes, true);
        check_dependency_order(&calls, &new_deps)?;
        // A removed resource is deleted only after the removed resources that depended on it.
        let old_deps = deps_in(&nodes, false);
        let deletes: HashMap<&String, &CallRecord> =
            calls.iter().filter(|c| c.op == "delete").map(|c| (&c.urn, c)).collect();
        for (urn, deps) in &old_deps {
            if new_deps.contains_key(urn) {
                continue;
            }
            let Some(mine) = deletes.get(urn) else {
                return Err(TestCaseError::fail(format!("removed resource {urn} was not deleted")));
            };
            for d in deps.iter().filter(|d| !new_deps.contains_key(*d)) {
                let theirs = deletes[d];
                prop_assert!(mine.finished < theirs.started, "{d} was deleted before {urn}, which depended on it");
            }
        }
        check_old_halves(&calls, &recorded_users(&prior))?;
        let state = engine.state(STACK).await.unwrap().unwrap();
        check_world_matches_state(&tp, &state)?;
        prop_assert!(state.pending.is_empty() && state.retired.is_empty());

        // Right after a successful update, the plan is all `Same`.
        let preview = engine.preview(STACK, &new, PreviewOptions::default()).await.unwrap();
        prop_assert!(!preview.plan.has_changes(), "{:?}", changes(&preview.plan));
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_graphs_apply_in_dependency_order_and_converge(nodes in arb_graph()) {
        run_case(nodes)?;
    }
}

/// A pending operation in a generated prior state.
#[derive(Debug, Clone, Copy)]
enum Pending {
    /// A create (of a resource the state does not have) or, for one it has, an update.
    CreateOrUpdate,
    /// A delete (of a resource the state has; otherwise a create).
    Delete,
}

/// A prior state generated directly, and the program to apply to it.
#[derive(Debug, Clone)]
struct Generated {
    /// The program now (`new`, `deps`, `explicit`, `dbr`) and the resources recorded (`old`).
    nodes: Vec<Node>,
    /// Dependencies recorded in the state, unrelated to what the program declares.
    state_deps: Vec<Vec<usize>>,
    /// Whether each resource has a retired object (the old half of an earlier replacement).
    retired: Vec<bool>,
    /// A pending operation per resource, and whether its work was done before the interruption.
    pending: Vec<Option<(Pending, bool)>>,
}

fn arb_generated() -> impl Strategy<Value = Generated> {
    arb_graph().prop_flat_map(|nodes| {
        let n = nodes.len();
        let state_deps: Vec<_> = (0..n).map(|i| prop::collection::btree_set(0..i.max(1), 0..3)).collect();
        let retired = prop::collection::vec(prop::bool::weighted(0.25), n);
        let pending = prop::collection::vec(
            prop::option::weighted(
                0.3,
                (prop_oneof![Just(Pending::CreateOrUpdate), Just(Pending::Delete)], any::<bool>()),
            ),
            n,
        );
        (Just(nodes), state_deps, retired, pending).prop_map(|(nodes, state_deps, retired, pending)| Generated {
            state_deps: state_deps
                .into_iter()
                .enumerate()
                .map(|(i, d)| d.into_iter().filter(|d| *d < i).collect())
                .collect(),
            nodes,
            retired,
            pending,
        })
    })
}

fn world_item(urn: &str, value: serde_json::Value, key: &str, tag: Option<String>) -> WorldItem {
    WorldItem {
        urn: urn.to_owned(),
        value,
        key: Some(key.to_owned()),
        secret: None,
        revision: 1,
        token: format!("tok-{urn}"),
        tag,
    }
}

/// Builds the generated prior state over `world`: an `up` of the recorded resources (so their
/// formats are real), then recorded dependencies, retired objects and pending operations written
/// in, with the world changed to match what each interrupted operation did.
async fn generated_prior(g: &Generated, world: &World) -> StackState {
    let recorded: Vec<Node> = g.nodes.iter().map(|n| Node { deps: vec![], new: n.old, ..n.clone() }).collect();
    let tp = TestProvider::new(world.clone(), Faults::default());
    let setup = ProgramTest::new(STACK);
    prop_assume_ok(setup.up(&build(&recorded, true, &tp)).await.unwrap().succeeded());
    let mut state = setup.state().await.unwrap();
    let name = |i: usize| format!("n{i}");
    for (i, deps) in g.state_deps.iter().enumerate() {
        if let Some(r) = state.resources.get_mut(&Urn::from(name(i).as_str())) {
            r.dependencies =
                deps.iter().filter(|d| g.nodes[**d].old.is_some()).map(|d| Urn::from(name(*d).as_str())).collect();
        }
    }
    let template = state.resources.values().next().cloned();
    for (i, retired) in g.retired.iter().enumerate() {
        let Some(template) = template.clone().filter(|_| *retired) else { continue };
        let id = format!("retired-{}", name(i));
        world.put(&id, world_item(&name(i), json!("old"), "kold", None)).unwrap();
        // Like a resource's, a retired object's dependencies name objects the state records.
        let deps = g.state_deps[i]
            .iter()
            .filter(|d| g.nodes[**d].old.is_some())
            .map(|d| Urn::from(name(*d).as_str()))
            .collect();
        state.retired.push(stackwright::state::ResourceState {
            urn: Urn::from(name(i).as_str()),
            id,
            inputs: json!({ "value": "old", "key": "kold" }),
            dependencies: deps,
            ..template
        });
    }
    for (i, pending) in g.pending.iter().enumerate() {
        let Some((kind, done)) = pending else { continue };
        let urn = name(i);
        let op = format!("op-generated-{i}");
        let existing = state.resources.get(&Urn::from(urn.as_str())).cloned();
        let (kind, id) = match (&existing, kind) {
            (None, _) => (OpKind::Create, None),
            (Some(r), Pending::CreateOrUpdate) => (OpKind::Update, Some(r.id.clone())),
            (Some(r), Pending::Delete) => (OpKind::Delete, Some(r.id.clone())),
        };
        let key = existing.as_ref().and_then(|r| r.inputs["key"].as_str().map(str::to_owned)).unwrap_or("kp".into());
        if *done {
            match (kind, &id) {
                (OpKind::Create, _) => {
                    world.put(&format!("pending-{urn}"), world_item(&urn, json!("p"), &key, Some(op.clone()))).unwrap()
                }
                (OpKind::Update, Some(id)) => {
                    let mut item = world.items()[id].clone();
                    item.value = json!("p");
                    item.revision += 1;
                    world.put(id, item).unwrap();
                }
                (OpKind::Delete, Some(id)) => world.remove(id),
                _ => unreachable!("updates and deletes have ids"),
            }
        }
        state.pending.insert(
            op,
            PendingOperation {
                kind,
                urn: Urn::from(urn.as_str()),
                type_token: "test:Item".into(),
                provider: "test".into(),
                id,
                inputs: json!({ "value": "p", "key": key }),
                started_at: "2026-12-01T00:00:00Z".into(),
            },
        );
    }
    state
}

/// Setting up the prior state must work; a failure there is a test bug, not a case to shrink.
fn prop_assume_ok(ok: bool) {
    assert!(ok, "setting up the generated prior state failed");
}

fn run_generated_case(g: Generated) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let world = World::memory();
        let prior = generated_prior(&g, &world).await;
        let tp =
            TestProvider::new(world, Faults { latency: std::time::Duration::from_micros(200), ..Faults::default() });
        let test = ProgramTest::new(STACK).with_prior_state(prior.clone());
        let new = build(&g.nodes, true, &tp);
        let report = test.up(&new).await.unwrap();
        prop_assert!(report.succeeded(), "{:?}", report.failures);
        let calls: Vec<CallRecord> = tp.calls().into_iter().filter(|c| c.op != "find" && c.op != "read").collect();

        let new_deps = deps_in(&g.nodes, true);
        check_dependency_order(&calls, &new_deps)?;
        check_old_halves(&calls, &recorded_users(&prior))?;
        // Every resource the program no longer declares is gone, and every retired object.
        let world_now = tp.world().items();
        for r in prior.resources.values().filter(|r| !new_deps.contains_key(r.urn.as_str())) {
            prop_assert!(!world_now.contains_key(&r.id), "removed resource {} still exists", r.urn);
        }
        for r in &prior.retired {
            prop_assert!(!world_now.contains_key(&r.id), "retired object {} of {} still exists", r.id, r.urn);
        }
        let state = test.state().await.unwrap();
        check_world_matches_state(&tp, &state)?;
        prop_assert!(state.pending.is_empty() && state.retired.is_empty(), "{:?} {:?}", state.pending, state.retired);
        let preview = test.preview(&new).await.unwrap();
        prop_assert!(!preview.plan.has_changes(), "{:?}", changes(&preview.plan));
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn generated_prior_states_with_retired_and_pending_operations_apply_safely_and_converge(g in arb_generated()) {
        run_generated_case(g)?;
    }
}
