//! Property tests of the planner and executor on random dependency graphs with random prior
//! states: no step starts before its dependencies finish, deletions run in reverse dependency
//! order, the world matches the state, and an `up` right after a successful `up` plans only
//! `Same`.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use common::*;
use proptest::prelude::*;
use serde_json::json;
use stackwright::builtin::testing::{CallRecord, Faults, Item, ItemArgs, TestProvider, World};
use stackwright::{Input, Program, ResourceOptions};

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
        let report = engine.up(STACK, &old, false, &yes).await.unwrap();
        prop_assert!(report.succeeded(), "{:?}", report.failures);
        let state = engine.state(STACK).await.unwrap().unwrap();
        check_world_matches_state(&tp, &state)?;

        let first_run = tp.calls().len();
        let new = build(&nodes, true, &tp);
        let report = engine.up(STACK, &new, false, &yes).await.unwrap();
        prop_assert!(report.succeeded(), "{:?}", report.failures);
        let calls: Vec<CallRecord> = tp.calls()[first_run..].to_vec();

        // No create or update starts before every dependency's create or update finished.
        let new_deps = deps_in(&nodes, true);
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
        let state = engine.state(STACK).await.unwrap().unwrap();
        check_world_matches_state(&tp, &state)?;
        prop_assert!(state.pending.is_empty() && state.retired.is_empty());

        // Right after a successful update, the plan is all `Same`.
        let preview = engine.preview(STACK, &new, false, false).await.unwrap();
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
