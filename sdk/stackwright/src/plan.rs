//! From (declared resources, stored state) to a plan: a list of steps, each with its
//! property-level diff. The same decision function runs at preview time, with outputs that are
//! not yet known marked unknown, and again at apply time with real outputs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;
use serde_json::Value;
use stackwright_core::value::{contains_unknown, is_secret, reveal, secret, unknown};
use stackwright_core::{
    CheckFailure, DiffOptions, ErasedHandler, Path, PropertyChange, Provider, Resolve, ResolvedResource, Urn, diff,
    resolve_with,
};
use stackwright_state::{ResourceState, StackState};

use crate::error::{DeclarationError, EngineError};
use crate::stack::{Registration, Stack};

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum StepOp {
    /// Nothing changes.
    Same,
    /// Create a new resource.
    Create,
    /// Update in place.
    Update,
    /// Replace: create the new one and delete the old one, in the order given.
    Replace {
        /// Delete the old object before creating the new one.
        delete_before_create: bool,
    },
    /// Delete a resource removed from the program.
    Delete,
    /// Delete the old object of an earlier create-before-delete replacement.
    DeleteReplaced,
}

impl StepOp {
    /// Whether the step changes anything.
    pub fn is_change(self) -> bool {
        self != StepOp::Same
    }
}

/// One step of a plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStep {
    /// The resource.
    pub urn: Urn,
    /// Its type token.
    #[serde(rename = "type")]
    pub type_token: String,
    /// What happens.
    #[serde(flatten)]
    pub op: StepOp,
    /// Property-level changes (for creates: every argument, as additions).
    pub changes: Vec<PropertyChange>,
    /// The name it is moving from, when renamed through an alias.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<Urn>,
    /// The arguments after the step (absent for deletions). Secrets are wrapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Value>,
}

/// A plan: every step of an update, in dependency order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// The steps.
    pub steps: Vec<PlannedStep>,
}

/// Counts of steps by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PlanCounts {
    /// Creates.
    pub create: usize,
    /// Updates.
    pub update: usize,
    /// Replacements.
    pub replace: usize,
    /// Deletes (including old objects of replacements).
    pub delete: usize,
    /// Unchanged.
    pub same: usize,
}

impl Plan {
    /// Counts the steps by kind.
    pub fn counts(&self) -> PlanCounts {
        let mut c = PlanCounts::default();
        for s in &self.steps {
            match s.op {
                StepOp::Same if s.renamed_from.is_some() => c.update += 1,
                StepOp::Same => c.same += 1,
                StepOp::Create => c.create += 1,
                StepOp::Update => c.update += 1,
                StepOp::Replace { .. } => c.replace += 1,
                StepOp::Delete | StepOp::DeleteReplaced => c.delete += 1,
            }
        }
        c
    }

    /// Whether applying the plan would change anything.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.op.is_change() || s.renamed_from.is_some())
    }
}

/// A handler with the name of the provider it belongs to.
#[derive(Clone)]
pub(crate) struct Bound {
    pub provider: String,
    pub handler: Arc<dyn ErasedHandler>,
}

/// The program's declarations, checked and ordered, matched against the stored state.
pub(crate) struct Prepared {
    pub regs: Vec<Registration>,
    /// Topological order of `regs`.
    pub order: Vec<usize>,
    /// Indices of each registration's dependencies.
    pub deps: Vec<Vec<usize>>,
    pub bound: Vec<Bound>,
    /// The stored resource each registration continues (its own name or an alias).
    pub previous: Vec<Option<Urn>>,
    /// Stored resources no longer declared.
    pub removed: Vec<Urn>,
    pub providers: Vec<Provider>,
    pub policies: Vec<crate::policy::Policy>,
    pub config: Arc<crate::config::Config>,
    pub provider_limits: HashMap<String, usize>,
    pub exports: Vec<(String, crate::stack::ArgsFn)>,
}

impl Prepared {
    /// The handler for a stored resource (removed, retired or pending).
    pub fn handler_for_state(&self, provider: &str, type_token: &str) -> Option<Bound> {
        let by_name = self.providers.iter().find(|p| p.name() == provider).and_then(|p| p.handler(type_token));
        let any = || self.providers.iter().find_map(|p| p.handler(type_token).map(|h| (p.name(), h)));
        match by_name {
            Some(h) => Some(Bound { provider: provider.to_owned(), handler: h.clone() }),
            None => any().map(|(name, h)| Bound { provider: name.to_owned(), handler: h.clone() }),
        }
    }
}

fn find_cycle(graph: &DiGraph<usize, ()>, scc: &[NodeIndex]) -> Vec<NodeIndex> {
    let members: HashSet<NodeIndex> = scc.iter().copied().collect();
    let start = *scc.iter().min_by_key(|n| graph[**n]).expect("non-empty scc");
    // Depth-first search inside the component for a path back to the start.
    let mut stack = vec![(start, graph.neighbors(start).filter(|n| members.contains(n)).collect::<Vec<_>>())];
    let mut seen = HashSet::from([start]);
    while let Some((_, next)) = stack.last_mut() {
        match next.pop() {
            Some(n) if n == start => return stack.iter().map(|(n, _)| *n).collect(),
            Some(n) if seen.insert(n) => {
                let out = graph.neighbors(n).filter(|m| members.contains(m)).collect();
                stack.push((n, out));
            }
            Some(_) => {}
            None => {
                stack.pop();
            }
        }
    }
    scc.to_vec()
}

/// A topological order that keeps declaration order wherever dependencies allow, so plans read
/// like the program. Shorter than the input when there is a cycle.
fn declaration_order_topo(deps: &[Vec<usize>]) -> Vec<usize> {
    let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents = vec![Vec::new(); deps.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> =
        (0..deps.len()).filter(|i| remaining[*i] == 0).map(std::cmp::Reverse).collect();
    let mut order = Vec::with_capacity(deps.len());
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for &d in &dependents[i] {
            remaining[d] -= 1;
            if remaining[d] == 0 {
                ready.push(std::cmp::Reverse(d));
            }
        }
    }
    order
}

/// Checks the declarations, builds the dependency graph and matches resources to state.
pub(crate) fn prepare(stack: Stack) -> Result<Prepared, EngineError> {
    let mut errors = stack.errors.clone();
    let regs = stack.registrations;
    let index: HashMap<&Urn, usize> = regs.iter().enumerate().map(|(i, r)| (&r.urn, i)).collect();
    let mut graph = DiGraph::<usize, ()>::with_capacity(regs.len(), regs.len());
    let nodes: Vec<NodeIndex> = (0..regs.len()).map(|i| graph.add_node(i)).collect();
    let mut deps = vec![Vec::new(); regs.len()];
    for (i, r) in regs.iter().enumerate() {
        for d in &r.deps {
            match index.get(d) {
                Some(&j) => {
                    deps[i].push(j);
                    graph.add_edge(nodes[j], nodes[i], ());
                }
                None => errors.push(DeclarationError::UnknownDependency {
                    resource: r.urn.to_string(),
                    location: r.location.to_string(),
                    dependency: d.to_string(),
                }),
            }
        }
    }
    let mut bound = Vec::with_capacity(regs.len());
    for r in &regs {
        let found = match &r.opts.provider {
            Some(name) => {
                stack.providers.iter().find(|p| p.name() == name).and_then(|p| p.handler(r.type_token).map(|h| (p, h)))
            }
            None => stack.providers.iter().find_map(|p| p.handler(r.type_token).map(|h| (p, h))),
        };
        match found {
            Some((p, h)) => bound.push(Some(Bound { provider: p.name().to_owned(), handler: h.clone() })),
            None => {
                errors.push(DeclarationError::NoProvider {
                    resource: r.urn.to_string(),
                    location: r.location.to_string(),
                    type_token: r.type_token.to_owned(),
                    provider: r.opts.provider.clone(),
                });
                bound.push(None);
            }
        }
    }
    let order = declaration_order_topo(&deps);
    if order.len() < regs.len() {
        for scc in tarjan_scc(&graph) {
            let cyclic = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
            if cyclic {
                let path = find_cycle(&graph, &scc);
                let mut cycle: Vec<String> = path.iter().map(|n| regs[graph[*n]].urn.to_string()).collect();
                cycle.push(cycle[0].clone());
                errors.push(DeclarationError::Cycle { cycle });
            }
        }
    }
    if !errors.is_empty() {
        return Err(EngineError::Declarations(errors));
    }
    let bound: Vec<Bound> =
        bound.into_iter().map(|b| b.expect("every resource has a provider when there are no errors")).collect();

    let provider_limits =
        stack.providers.iter().filter_map(|p| p.concurrency_limit().map(|l| (p.name().to_owned(), l))).collect();
    Ok(Prepared {
        regs,
        order,
        deps,
        bound,
        previous: Vec::new(),
        removed: Vec::new(),
        providers: stack.providers,
        policies: stack.policies,
        config: stack.config.clone(),
        provider_limits,
        exports: stack.exports,
    })
}

/// Matches declared resources to stored ones: by name, or through an alias for a rename. Stored
/// resources left unmatched are to be deleted.
pub(crate) fn match_state(prepared: &mut Prepared, state: &StackState) {
    let declared: HashSet<&Urn> = prepared.regs.iter().map(|r| &r.urn).collect();
    let mut claimed: HashSet<Urn> = HashSet::new();
    let mut previous = Vec::with_capacity(prepared.regs.len());
    for r in &prepared.regs {
        let prev = if state.resources.contains_key(&r.urn) {
            Some(r.urn.clone())
        } else {
            r.opts
                .aliases
                .iter()
                .find(|a| state.resources.contains_key(*a) && !declared.contains(a) && !claimed.contains(*a))
                .cloned()
        };
        if let Some(p) = &prev {
            claimed.insert(p.clone());
        }
        previous.push(prev);
    }
    prepared.removed = state.resources.keys().filter(|u| !claimed.contains(*u)).cloned().collect();
    prepared.previous = previous;
}

/// A resolver over a small map of known resources.
pub(crate) struct MapResolver(pub HashMap<Urn, (Option<String>, Value)>);

impl Resolve for MapResolver {
    fn lookup(&self, urn: &Urn) -> Option<ResolvedResource<'_>> {
        self.0.get(urn).map(|(id, outputs)| ResolvedResource { id: id.as_deref(), outputs })
    }
}

/// Serializes a registration's arguments with its dependencies' outputs taken from `known`.
pub(crate) fn resolve_args(
    reg: &Registration,
    known: impl Fn(&Urn) -> Option<(Option<String>, Value)>,
) -> Result<Value, String> {
    let map = reg.deps.iter().filter_map(|d| known(d).map(|v| (d.clone(), v))).collect();
    let resolver: Arc<dyn Resolve> = Arc::new(MapResolver(map));
    resolve_with(resolver, || (reg.args)())
        .map_err(|e| format!("resource `{}`: its arguments could not be resolved: {e}", reg.urn))
}

/// Wraps the top-level fields a schema marks secret.
pub(crate) fn mark_secret_fields(mut value: Value, schema: &[stackwright_core::FieldSchema]) -> Value {
    if let Value::Object(map) = &mut value {
        for f in schema.iter().filter(|f| f.secret) {
            if let Some(v) = map.get_mut(f.name)
                && !v.is_null()
                && !is_secret(v)
                && !contains_unknown(v)
            {
                *v = secret(v.take());
            }
        }
    }
    value
}

/// Marks provider outputs secret where the schema says so, and wherever an output carries a
/// secret input's value (echoed or embedded), so secrets stay secret through providers.
pub(crate) fn mark_secret_outputs(outputs: Value, schema: &[stackwright_core::FieldSchema], inputs: &Value) -> Value {
    let mut outputs = mark_secret_fields(outputs, schema);
    let mut secrets = Vec::new();
    stackwright_core::value::secret_strings(inputs, &mut secrets);
    if secrets.is_empty() {
        return outputs;
    }
    if let Value::Object(out) = &mut outputs {
        for v in out.values_mut() {
            if !is_secret(v) && carries_secret(v, &secrets) {
                *v = secret(v.take());
            }
        }
    }
    outputs
}

fn carries_secret(v: &Value, secrets: &[String]) -> bool {
    match v {
        Value::String(s) => secrets.iter().any(|x| s.contains(x.as_str())),
        Value::Number(n) => secrets.iter().any(|x| *x == n.to_string()),
        Value::Array(items) => items.iter().any(|i| carries_secret(i, secrets)),
        Value::Object(map) => map.values().any(|i| carries_secret(i, secrets)),
        _ => false,
    }
}

/// The decision for one declared resource.
pub(crate) struct Decision {
    pub op: StepOp,
    pub changes: Vec<PropertyChange>,
    /// The arguments to send, with ignored paths kept at their stored values and secrets marked.
    pub inputs: Value,
}

/// Decides what to do with one declared resource given its resolved arguments.
pub(crate) fn decide(
    reg: &Registration,
    handler: &dyn ErasedHandler,
    old: Option<&ResourceState>,
    resolved: Value,
) -> Decision {
    let mut inputs = mark_secret_fields(resolved, handler.args_schema());
    let Some(old) = old else {
        let changes = diff(&Value::Object(Default::default()), &inputs, &DiffOptions::default());
        return Decision { op: StepOp::Create, changes, inputs };
    };
    for path in &reg.ignore {
        match path.get(&old.inputs) {
            Some(v) => {
                path.set(&mut inputs, v.clone());
            }
            None => {
                path.remove(&mut inputs);
            }
        }
    }
    let mut replace: Vec<Path> =
        handler.args_schema().iter().filter(|f| f.replace).map(|f| Path::field(f.name)).collect();
    replace.extend(reg.replace_paths.iter().cloned());
    if old.type_token != reg.type_token {
        replace = vec![Path::root()];
    }
    let options = DiffOptions { ignore: reg.ignore.clone(), replace };
    let mut changes = diff(&old.inputs, &inputs, &options);
    if old.type_token != reg.type_token && changes.is_empty() {
        changes = diff(&Value::Null, &inputs, &options);
    }
    let op = if changes.is_empty() {
        StepOp::Same
    } else if changes.iter().any(|c| c.replaces) || old.type_token != reg.type_token {
        StepOp::Replace { delete_before_create: reg.opts.delete_before_replace || handler.delete_before_replace() }
    } else {
        StepOp::Update
    };
    Decision { op, changes, inputs }
}

/// What dependents may assume about a resource's id and outputs before it is applied.
pub(crate) fn planned_outputs(
    op: StepOp,
    handler: &dyn ErasedHandler,
    inputs: &Value,
    old: Option<&ResourceState>,
) -> (Option<String>, Value) {
    if op == StepOp::Same
        && let Some(old) = old
    {
        return (Some(old.id.clone()), old.outputs.clone());
    }
    let fresh = !matches!(op, StepOp::Update);
    let mut out = serde_json::Map::new();
    for f in handler.outputs_schema() {
        let v = if f.computed {
            unknown()
        } else if let Some(v) = inputs.get(f.name) {
            v.clone()
        } else if !fresh && let Some(v) = old.and_then(|o| o.outputs.get(f.name)) {
            v.clone()
        } else {
            unknown()
        };
        out.insert(f.name.to_owned(), v);
    }
    let id = if fresh { None } else { old.map(|o| o.id.clone()) };
    (id, Value::Object(out))
}

/// The outcome of planning: the plan plus what the checks found.
pub(crate) struct Planned {
    pub plan: Plan,
    pub protected: Vec<(String, &'static str)>,
    pub check_failures: Vec<(String, CheckFailure)>,
}

/// Plans an update (or, with `destroy`, the deletion of everything).
pub(crate) fn plan(prepared: &Prepared, state: &StackState, destroy: bool) -> Result<Planned, EngineError> {
    let mut steps = Vec::new();
    let mut protected = Vec::new();
    let mut check_failures = Vec::new();
    if !destroy {
        let mut planned: HashMap<Urn, (Option<String>, Value)> = HashMap::with_capacity(prepared.regs.len());
        for &i in &prepared.order {
            let reg = &prepared.regs[i];
            let handler = prepared.bound[i].handler.as_ref();
            let old = prepared.previous[i].as_ref().and_then(|u| state.resources.get(u));
            let resolved = resolve_args(reg, |d| planned.get(d).cloned()).map_err(|m| {
                EngineError::Declarations(vec![DeclarationError::Arguments {
                    resource: reg.urn.to_string(),
                    location: reg.location.to_string(),
                    message: m,
                }])
            })?;
            let decision = decide(reg, handler, old, resolved);
            if !contains_unknown(&decision.inputs) {
                let (plain, _) = reveal(decision.inputs.clone());
                let mut secrets = Vec::new();
                stackwright_core::value::secret_strings(&decision.inputs, &mut secrets);
                for mut failure in handler.check(&plain) {
                    failure.message = stackwright_core::value::scrub(&failure.message, &secrets);
                    check_failures.push((reg.urn.to_string(), failure));
                }
            }
            if let StepOp::Replace { .. } = decision.op
                && (reg.opts.protect || old.is_some_and(|o| o.protect))
            {
                protected.push((reg.urn.to_string(), "replace"));
            }
            planned.insert(reg.urn.clone(), planned_outputs(decision.op, handler, &decision.inputs, old));
            let renamed_from = prepared.previous[i].clone().filter(|p| p != &reg.urn);
            steps.push(PlannedStep {
                urn: reg.urn.clone(),
                type_token: reg.type_token.to_owned(),
                op: decision.op,
                changes: decision.changes,
                renamed_from,
                inputs: Some(decision.inputs),
            });
        }
    }
    let removed: Vec<&ResourceState> = if destroy {
        state.resources.values().collect()
    } else {
        prepared.removed.iter().filter_map(|u| state.resources.get(u)).collect()
    };
    let mut deletes: Vec<(&ResourceState, StepOp)> = removed.into_iter().map(|r| (r, StepOp::Delete)).collect();
    deletes.extend(state.retired.iter().map(|r| (r, StepOp::DeleteReplaced)));
    for (r, op) in delete_order(&deletes) {
        if r.protect && op == StepOp::Delete {
            protected.push((r.urn.to_string(), "delete"));
        }
        steps.push(PlannedStep {
            urn: r.urn.clone(),
            type_token: r.type_token.clone(),
            op,
            changes: Vec::new(),
            renamed_from: None,
            inputs: None,
        });
    }
    Ok(Planned { plan: Plan { steps }, protected, check_failures })
}

/// Orders deletions so that a resource is deleted after everything that depended on it.
pub(crate) fn delete_order<'a>(deletes: &[(&'a ResourceState, StepOp)]) -> Vec<(&'a ResourceState, StepOp)> {
    let deps = delete_dependencies(deletes.iter().map(|(r, _)| *r));
    let mut graph = DiGraph::<usize, ()>::new();
    let nodes: Vec<NodeIndex> = (0..deletes.len()).map(|i| graph.add_node(i)).collect();
    for (i, waits) in deps.iter().enumerate() {
        for &j in waits {
            graph.add_edge(nodes[j], nodes[i], ());
        }
    }
    match toposort(&graph, None) {
        Ok(order) => order.into_iter().map(|n| deletes[graph[n]]).collect(),
        Err(_) => deletes.to_vec(),
    }
}

/// For each deletion, the deletions that must finish before it: those of resources that
/// depended on it according to the state.
pub(crate) fn delete_dependencies<'a>(items: impl Iterator<Item = &'a ResourceState>) -> Vec<Vec<usize>> {
    let items: Vec<&ResourceState> = items.collect();
    let mut by_urn: BTreeMap<&Urn, Vec<usize>> = BTreeMap::new();
    for (i, r) in items.iter().enumerate() {
        by_urn.entry(&r.urn).or_default().push(i);
    }
    let mut waits = vec![Vec::new(); items.len()];
    for (j, r) in items.iter().enumerate() {
        for d in &r.dependencies {
            for &i in by_urn.get(d).into_iter().flatten() {
                if i != j {
                    // `i` is depended on by `j`: delete `j` first.
                    waits[i].push(j);
                }
            }
        }
    }
    waits
}
