//! The planner: from (declared resources, stored state) to a [`Plan`] and the [`Schedule`] that
//! runs it. The same decision function runs at preview time, with outputs that are not yet known
//! marked unknown, and again at apply time with real outputs, where the executor checks that a
//! step does no more than the plan showed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;
use stackwright_core::value::{contains_unknown, is_secret, reveal, secret, unknown};
use stackwright_core::{
    CheckFailure, DiffOptions, ErasedHandler, Path, PropertyChange, Provider, Resolve, ResolvedResource, Urn, diff,
    resolve_with,
};
use stackwright_state::{ResourceState, StackState};

use crate::error::{DeclarationError, EngineError};
use crate::plan::{Plan, PlannedStep, StepOp};
use crate::stack::{Registration, Stack};

/// A handler with the name of the provider instance it belongs to.
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
    /// The handler of the provider instance that manages a stored resource (removed, retired or
    /// pending). Only that instance will do: another instance of the same type talks to another
    /// server or team, where the object does not live.
    pub fn handler_for_state(&self, provider: &str, type_token: &str) -> Option<Bound> {
        let handler = self.providers.iter().find(|p| p.name() == provider).and_then(|p| p.handler(type_token))?;
        Some(Bound { provider: provider.to_owned(), handler: handler.clone() })
    }

    /// The handler a new resource of `type_token` named `urn` would get: its declaration's if the
    /// program declares it, else the first registered provider of that type (for `import`).
    pub fn handler_for_type(&self, urn: &Urn, type_token: &str) -> Option<Bound> {
        if let Some(i) = self.regs.iter().position(|r| &r.urn == urn && r.type_token == type_token) {
            return Some(self.bound[i].clone());
        }
        self.providers
            .iter()
            .find_map(|p| p.handler(type_token).map(|h| Bound { provider: p.name().to_owned(), handler: h.clone() }))
    }

    /// The error for a stored resource whose provider instance is not registered.
    pub fn missing_provider(resource: &ResourceState, doing: &str) -> String {
        format!(
            "provider instance `{}` (type `{}`), which manages it, is not registered in the program; register it again \
             to {doing}, or `state rm {}` to forget the object",
            resource.provider, resource.type_token, resource.urn
        )
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

/// Serializes a registration's arguments with its dependencies' outputs taken from `known`. A
/// panic in one of the program's `map` closures is an error of this resource, not of the process.
pub(crate) fn resolve_args(
    reg: &Registration,
    known: impl Fn(&Urn) -> Option<(Option<String>, Value)>,
) -> Result<Value, String> {
    let map = reg.deps.iter().filter_map(|d| known(d).map(|v| (d.clone(), v))).collect();
    let resolver: Arc<dyn Resolve> = Arc::new(MapResolver(map));
    match crate::panics::catch(|| resolve_with(resolver, || (reg.args)())) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("its arguments could not be resolved: {e}")),
        Err(panic) => Err(format!("a closure computing its arguments panicked: {panic}")),
    }
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
    /// Why the step is a replacement beyond its own changes.
    pub reason: Option<String>,
}

/// Decides what to do with one declared resource given its resolved arguments, the provider
/// instance it is bound to now, and whether a dependency's delete-before-create replacement forces
/// it to be replaced too (`forced`, with the reason).
pub(crate) fn decide(
    reg: &Registration,
    bound: &Bound,
    old: Option<&ResourceState>,
    resolved: Value,
    forced: Option<&str>,
) -> Decision {
    let handler = bound.handler.as_ref();
    let mut inputs = mark_secret_fields(resolved, handler.args_schema());
    let Some(old) = old else {
        let changes = diff(&Value::Object(Default::default()), &inputs, &DiffOptions::default());
        return Decision { op: StepOp::Create, changes, inputs, reason: None };
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
    let moved = (old.provider != bound.provider).then(|| {
        format!(
            "it moves from provider instance `{}` to `{}`, where the object does not exist",
            old.provider, bound.provider
        )
    });
    let delete_first = reg.opts.delete_before_replace || handler.delete_before_replace();
    let (op, reason) = if let Some(why) = forced {
        (StepOp::Replace { delete_before_create: true }, Some(why.to_owned()))
    } else if let Some(why) = moved {
        (StepOp::Replace { delete_before_create: delete_first }, Some(why))
    } else if changes.is_empty() {
        (StepOp::Same, None)
    } else if changes.iter().any(|c| c.replaces) || old.type_token != reg.type_token {
        (StepOp::Replace { delete_before_create: delete_first }, None)
    } else {
        (StepOp::Update, None)
    };
    Decision { op, changes, inputs, reason }
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

/// What one node of a [`Schedule`] does.
#[derive(Debug, Clone)]
pub(crate) enum Work {
    /// Declared resource `reg`'s step: same, create, update, a create-before-delete replacement,
    /// or the create half of a delete-before-create one.
    Apply { reg: usize },
    /// The delete half of `reg`'s delete-before-create replacement: deletes its stored object.
    DeleteOld { reg: usize, old: ResourceState },
    /// Deletes the old object of `reg`'s create-before-delete replacement, once the new one exists
    /// and every resource that used the old one has moved.
    RetireOld { reg: usize, old: ResourceState },
    /// Deletes a resource removed from the program (or, with `retired`, the old object of an
    /// earlier replacement).
    Delete { old: ResourceState, retired: bool },
}

/// One node: the plan step it belongs to, its work, the nodes that must succeed first, and the
/// provider instance whose limits it counts against.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub step: usize,
    pub work: Work,
    pub deps: Vec<usize>,
    pub provider: String,
}

/// The plan's steps as a graph of nodes, in the order the executor may run them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Schedule {
    pub nodes: Vec<Node>,
}

/// The outcome of planning: the plan, its schedule, and what the checks found.
pub(crate) struct Planned {
    pub plan: Plan,
    pub schedule: Schedule,
    pub protected: Vec<(String, &'static str)>,
    pub check_failures: Vec<(String, CheckFailure)>,
    /// Resources whose stored object belongs to a provider instance the program no longer registers.
    pub orphaned: Vec<(String, String)>,
}

/// Decides every declared resource, in dependency order, with the delete-before-create
/// replacements forced on dependents in `forced` (stored name → reason).
struct Decided {
    decisions: Vec<Option<Decision>>,
    check_failures: Vec<(String, CheckFailure)>,
}

/// What a dependent may assume about a decided resource: its stored id and outputs (borrowed,
/// so planning an unchanged stack copies none of them) or what its step will produce.
enum Assumed<'a> {
    Stored(&'a ResourceState),
    Planned(Option<String>, Value),
}

fn decide_all(prepared: &Prepared, state: &StackState, forced: &HashMap<Urn, String>) -> Result<Decided, EngineError> {
    let mut planned: HashMap<&Urn, Assumed<'_>> = HashMap::with_capacity(prepared.regs.len());
    let mut decisions: Vec<Option<Decision>> = (0..prepared.regs.len()).map(|_| None).collect();
    let mut check_failures = Vec::new();
    for &i in &prepared.order {
        let reg = &prepared.regs[i];
        let bound = &prepared.bound[i];
        let old = prepared.previous[i].as_ref().and_then(|u| state.resources.get(u));
        let resolved = resolve_args(reg, |d| {
            planned.get(d).map(|a| match a {
                Assumed::Stored(r) => (Some(r.id.clone()), r.outputs.clone()),
                Assumed::Planned(id, outputs) => (id.clone(), outputs.clone()),
            })
        })
        .map_err(|m| {
            EngineError::Declarations(vec![DeclarationError::Arguments {
                resource: reg.urn.to_string(),
                location: reg.location.to_string(),
                message: m,
            }])
        })?;
        let why = prepared.previous[i].as_ref().and_then(|u| forced.get(u)).map(String::as_str);
        let decision = decide(reg, bound, old, resolved, why);
        if !contains_unknown(&decision.inputs) {
            let (plain, _) = reveal(decision.inputs.clone());
            let mut secrets = Vec::new();
            stackwright_core::value::secret_strings(&decision.inputs, &mut secrets);
            for mut failure in bound.handler.check(&plain) {
                failure.message = stackwright_core::value::scrub(&failure.message, &secrets);
                check_failures.push((reg.urn.to_string(), failure));
            }
        }
        let assumed = match old {
            // What `planned_outputs` gives for an unchanged resource, without copying it.
            Some(old) if decision.op == StepOp::Same => Assumed::Stored(old),
            _ => {
                let (id, outputs) = planned_outputs(decision.op, bound.handler.as_ref(), &decision.inputs, old);
                Assumed::Planned(id, outputs)
            }
        };
        planned.insert(&reg.urn, assumed);
        decisions[i] = Some(decision);
    }
    Ok(Decided { decisions, check_failures })
}

/// The stored resources that a delete-before-create replacement forces to be replaced (declared)
/// or deleted first (removed): everything whose stored object uses a replaced one, transitively.
/// Returns stored name → reason, for the declared ones not already replaced delete-first.
fn forced_by_delete_first(prepared: &Prepared, state: &StackState, decided: &Decided) -> HashMap<Urn, String> {
    // Stored name → declared index.
    let declared: HashMap<&Urn, usize> =
        prepared.previous.iter().enumerate().filter_map(|(i, p)| p.as_ref().map(|p| (p, i))).collect();
    let mut users: HashMap<&Urn, Vec<&Urn>> = HashMap::new();
    for r in state.resources.values() {
        for d in &r.dependencies {
            users.entry(d).or_default().push(&r.urn);
        }
    }
    // A declared resource that uses a replaced one in the program (not only in state) counts too.
    for (i, me) in prepared.previous.iter().enumerate() {
        let Some(me) = me.as_ref() else { continue };
        for &d in &prepared.deps[i] {
            if let Some(dep) = prepared.previous[d].as_ref() {
                users.entry(dep).or_default().push(me);
            }
        }
    }
    let mut queue: Vec<(&Urn, &Urn)> = Vec::new();
    let mut seen: HashSet<&Urn> = HashSet::new();
    for (i, d) in decided.decisions.iter().enumerate() {
        if let (Some(d), Some(prev)) = (d, prepared.previous[i].as_ref())
            && d.op == (StepOp::Replace { delete_before_create: true })
        {
            seen.insert(prev);
            queue.push((prev, prev));
        }
    }
    let mut forced = HashMap::new();
    while let Some((urn, root)) = queue.pop() {
        for &user in users.get(urn).into_iter().flatten() {
            if seen.insert(user) {
                if declared.contains_key(user) {
                    forced.insert(
                        user.clone(),
                        format!("it uses `{urn}`, which is replaced with delete-before-create (because of `{root}`)"),
                    );
                }
                queue.push((user, root));
            }
        }
    }
    forced
}

/// Plans an update (or, with `destroy`, the deletion of everything).
pub(crate) fn plan(prepared: &Prepared, state: &StackState, destroy: bool) -> Result<Planned, EngineError> {
    let mut steps = Vec::with_capacity(if destroy { 0 } else { prepared.regs.len() });
    let mut protected = Vec::new();
    let mut check_failures = Vec::new();
    let mut orphaned = Vec::new();
    let mut decisions: Vec<Option<Decision>> = Vec::new();
    let mut step_of_reg = vec![usize::MAX; prepared.regs.len()];
    if !destroy {
        let mut forced = HashMap::new();
        let mut decided = decide_all(prepared, state, &forced)?;
        // Forcing dependents changes what their own dependents may assume, so decide again until
        // nothing new is forced (once or twice in practice).
        loop {
            let more = forced_by_delete_first(prepared, state, &decided);
            if more.keys().all(|k| forced.contains_key(k)) {
                break;
            }
            forced.extend(more);
            decided = decide_all(prepared, state, &forced)?;
        }
        check_failures = decided.check_failures;
        decisions = decided.decisions;
        for &i in &prepared.order {
            let reg = &prepared.regs[i];
            let decision = decisions[i].as_mut().expect("every declared resource is decided");
            let old = prepared.previous[i].as_ref().and_then(|u| state.resources.get(u));
            if let StepOp::Replace { .. } = decision.op
                && (reg.opts.protect || old.is_some_and(|o| o.protect))
            {
                protected.push((reg.urn.to_string(), "replace"));
            }
            if let Some(old) = old
                && old.provider != prepared.bound[i].provider
                && prepared.handler_for_state(&old.provider, &old.type_token).is_none()
            {
                orphaned.push((
                    reg.urn.to_string(),
                    format!(
                        "it moves from provider instance `{}` to `{}`, but `{}` is not registered, so its object \
                         cannot be deleted; register `{}` again to replace it, or `state rm {}` to forget the old object",
                        old.provider, prepared.bound[i].provider, old.provider, old.provider, reg.urn
                    ),
                ));
            }
            step_of_reg[i] = steps.len();
            steps.push(PlannedStep {
                urn: reg.urn.clone(),
                type_token: reg.type_token.to_owned(),
                provider: prepared.bound[i].provider.clone(),
                op: decision.op,
                // Moved, not copied: only the op of a decision is needed after this.
                changes: std::mem::take(&mut decision.changes),
                renamed_from: prepared.previous[i].clone().filter(|p| p != &reg.urn),
                reason: decision.reason.take(),
                id: None,
                inputs: Some(decision.inputs.take()),
            });
        }
    }
    // Deletions: removed resources (everything, for a destroy) and old objects of replacements.
    let removed: Vec<&ResourceState> = if destroy {
        state.resources.values().collect()
    } else {
        prepared.removed.iter().filter_map(|u| state.resources.get(u)).collect()
    };
    // Borrowed: each is copied once, into its node.
    let mut deletes: Vec<(&ResourceState, bool)> = removed.into_iter().map(|r| (r, false)).collect();
    deletes.extend(state.retired.iter().map(|r| (r, true)));
    let mut nodes: Vec<Node> = Vec::with_capacity(steps.len() + deletes.len());
    steps.reserve_exact(deletes.len());
    let mut apply_node = vec![usize::MAX; prepared.regs.len()];
    let mut delete_old_node = vec![usize::MAX; prepared.regs.len()];
    if !destroy {
        for &i in &prepared.order {
            let step = step_of_reg[i];
            let op = decisions[i].as_ref().map(|d| d.op).unwrap_or(StepOp::Same);
            let old = prepared.previous[i].as_ref().and_then(|u| state.resources.get(u));
            if let (StepOp::Replace { delete_before_create: true }, Some(old)) = (op, old) {
                delete_old_node[i] = nodes.len();
                nodes.push(Node {
                    step,
                    work: Work::DeleteOld { reg: i, old: old.clone() },
                    deps: Vec::new(),
                    provider: old.provider.clone(),
                });
            }
            apply_node[i] = nodes.len();
            nodes.push(Node {
                step,
                work: Work::Apply { reg: i },
                deps: Vec::new(),
                provider: prepared.bound[i].provider.clone(),
            });
        }
        for i in 0..prepared.regs.len() {
            let mut deps: Vec<usize> = prepared.deps[i].iter().map(|&d| apply_node[d]).collect();
            if delete_old_node[i] != usize::MAX {
                deps.push(delete_old_node[i]);
            }
            nodes[apply_node[i]].deps = deps;
        }
        for &i in &prepared.order {
            let op = decisions[i].as_ref().map(|d| d.op).unwrap_or(StepOp::Same);
            let old = prepared.previous[i].as_ref().and_then(|u| state.resources.get(u));
            if let (StepOp::Replace { delete_before_create: false }, Some(old)) = (op, old) {
                let retired = ResourceState { urn: prepared.regs[i].urn.clone(), ..old.clone() };
                nodes.push(Node {
                    step: step_of_reg[i],
                    work: Work::RetireOld { reg: i, old: retired },
                    deps: vec![apply_node[i]],
                    provider: old.provider.clone(),
                });
            }
        }
    }
    // Delete steps, in an order that deletes users before what they use.
    let delete_deps = delete_dependencies(deletes.iter().map(|(r, _)| *r));
    let order = toposort_indices(&delete_deps);
    let mut delete_node = vec![usize::MAX; deletes.len()];
    for &k in &order {
        let (r, retired) = &deletes[k];
        if r.protect && !retired {
            protected.push((r.urn.to_string(), "delete"));
        }
        let step = steps.len();
        steps.push(PlannedStep {
            urn: r.urn.clone(),
            type_token: r.type_token.clone(),
            provider: r.provider.clone(),
            op: if *retired { StepOp::DeleteReplaced } else { StepOp::Delete },
            changes: Vec::new(),
            renamed_from: None,
            reason: None,
            id: Some(r.id.clone()),
            inputs: None,
        });
        delete_node[k] = nodes.len();
        nodes.push(Node {
            step,
            work: Work::Delete { old: (*r).clone(), retired: *retired },
            deps: Vec::new(),
            provider: r.provider.clone(),
        });
    }
    link_deletions(prepared, state, &decisions, &apply_node, &delete_old_node, &mut nodes);
    let schedule = Schedule { nodes };
    if let Some(cycle) = schedule_cycle(&schedule, &steps) {
        return Err(EngineError::Unschedulable(cycle));
    }
    Ok(Planned { plan: Plan { steps }, schedule, protected, check_failures, orphaned })
}

/// The stored object a deleting node removes, and the name under which other stored objects
/// refer to it.
fn deleted_object<'a>(prepared: &'a Prepared, node: &'a Node) -> Option<(&'a ResourceState, &'a Urn)> {
    match &node.work {
        Work::Apply { .. } => None,
        Work::DeleteOld { reg, old } | Work::RetireOld { reg, old } => {
            Some((old, prepared.previous[*reg].as_ref().unwrap_or(&old.urn)))
        }
        Work::Delete { old, .. } => Some((old, &old.urn)),
    }
}

/// Orders every deleting node after (1) the deletion of every stored object that uses what it
/// deletes, and (2) the step of every declared resource whose stored object used it, so that
/// nothing is deleted while something still uses it. A declared user replaced delete-first is
/// waited for through its own delete half.
fn link_deletions(
    prepared: &Prepared,
    state: &StackState,
    decisions: &[Option<Decision>],
    apply_node: &[usize],
    delete_old_node: &[usize],
    nodes: &mut [Node],
) {
    // Stored name → deleting nodes of objects with that name.
    let mut deleting: HashMap<Urn, Vec<usize>> = HashMap::new();
    for (n, node) in nodes.iter().enumerate() {
        if let Some((_, name)) = deleted_object(prepared, node) {
            deleting.entry(name.clone()).or_default().push(n);
        }
    }
    // Stored name → declared resources whose stored object used it.
    let mut declared_users: HashMap<&Urn, Vec<usize>> = HashMap::new();
    for (i, prev) in prepared.previous.iter().enumerate() {
        if let Some(old) = prev.as_ref().and_then(|u| state.resources.get(u)) {
            for d in &old.dependencies {
                declared_users.entry(d).or_default().push(i);
            }
        }
    }
    let mut extra: Vec<(usize, usize)> = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        let Some((_, name)) = deleted_object(prepared, node) else { continue };
        for &u in declared_users.get(name).into_iter().flatten() {
            let forced_first = decisions.get(u).and_then(Option::as_ref).map(|d| d.op)
                == Some(StepOp::Replace { delete_before_create: true });
            let wait = if forced_first { delete_old_node[u] } else { apply_node[u] };
            if wait != usize::MAX && wait != n && !matches!(node.work, Work::DeleteOld { reg, .. } if reg == u) {
                extra.push((n, wait));
            }
        }
    }
    // Users' deletions first: index the deleting nodes by the names their objects depend on.
    for (n, node) in nodes.iter().enumerate() {
        let Some((old, _)) = deleted_object(prepared, node) else { continue };
        for d in &old.dependencies {
            for &m in deleting.get(d).into_iter().flatten() {
                if m != n {
                    extra.push((m, n));
                }
            }
        }
    }
    for (n, wait) in extra {
        if !nodes[n].deps.contains(&wait) {
            nodes[n].deps.push(wait);
        }
    }
}

/// The steps on a cycle of the schedule, if it has one (the plan cannot be run safely).
fn schedule_cycle(schedule: &Schedule, steps: &[PlannedStep]) -> Option<Vec<String>> {
    let deps: Vec<Vec<usize>> = schedule.nodes.iter().map(|n| n.deps.clone()).collect();
    let order = toposort_indices(&deps);
    if order.len() == deps.len() {
        return None;
    }
    let placed: HashSet<usize> = order.into_iter().collect();
    let names: BTreeSet<String> = (0..deps.len())
        .filter(|n| !placed.contains(n))
        .map(|n| steps[schedule.nodes[n].step].urn.to_string())
        .collect();
    Some(names.into_iter().collect())
}

/// A topological order of nodes given each node's prerequisites; shorter than the input when
/// there is a cycle.
fn toposort_indices(deps: &[Vec<usize>]) -> Vec<usize> {
    let mut graph = DiGraph::<usize, ()>::with_capacity(deps.len(), deps.len());
    let nodes: Vec<NodeIndex> = (0..deps.len()).map(|i| graph.add_node(i)).collect();
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            graph.add_edge(nodes[d], nodes[i], ());
        }
    }
    match toposort(&graph, None) {
        Ok(order) => order.into_iter().map(|n| graph[n]).collect(),
        Err(_) => declaration_order_topo(deps),
    }
}

/// For each deletion, the deletions that must finish before it: those of resources that
/// depended on it according to the state.
pub(crate) fn delete_dependencies<'a>(items: impl Iterator<Item = &'a ResourceState>) -> Vec<Vec<usize>> {
    let items: Vec<&ResourceState> = items.collect();
    let mut by_urn: HashMap<&Urn, Vec<usize>> = HashMap::new();
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
