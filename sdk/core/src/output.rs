//! `Output<T>` — a value known now or only after apply, carrying the resources it depends on and
//! whether it is secret — and `Input<T>`, a resource argument that is a literal or an output.
//!
//! Arguments are plain serde structs. When the engine serializes them it installs a resolver for
//! the current thread, so each output field turns into its value (or into the unknown marker
//! during preview), wrapped as secret when it is one. Dependencies are found the same way,
//! by serializing once in collecting mode.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::path::Path;
use crate::value::{contains_secret, contains_unknown, redact, reveal, secret, unknown};

/// The unique name of a resource within a stack.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Urn(pub String);

impl Urn {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Urn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Urn {
    fn from(s: &str) -> Self {
        Urn(s.to_owned())
    }
}

/// What a resolver knows about one resource.
pub struct ResolvedResource<'a> {
    /// The provider's id, if known.
    pub id: Option<&'a str>,
    /// The resource's outputs; parts may be unknown markers.
    pub outputs: &'a Value,
}

/// Looks up the outputs of resources while arguments are being resolved.
pub trait Resolve: Send + Sync {
    /// The resource's id and outputs, or `None` if nothing about it is known yet.
    fn lookup(&self, urn: &Urn) -> Option<ResolvedResource<'_>>;
}

enum Mode {
    Resolve(Arc<dyn Resolve>),
    Collect(BTreeSet<Urn>),
}

thread_local! {
    static MODE: RefCell<Option<Mode>> = const { RefCell::new(None) };
}

struct ModeGuard(Option<Mode>);

impl Drop for ModeGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        MODE.with(|m| *m.borrow_mut() = previous);
    }
}

/// Runs `f` (typically a serialization of resource arguments) with outputs resolved by
/// `resolver`.
pub fn resolve_with<R>(resolver: Arc<dyn Resolve>, f: impl FnOnce() -> R) -> R {
    let previous = MODE.with(|m| m.borrow_mut().replace(Mode::Resolve(resolver)));
    let _guard = ModeGuard(previous);
    f()
}

/// Runs `f` (typically a serialization of resource arguments) and returns the set of resources
/// whose outputs it touched.
pub fn collect_dependencies<R>(f: impl FnOnce() -> R) -> (R, BTreeSet<Urn>) {
    let previous = MODE.with(|m| m.borrow_mut().replace(Mode::Collect(BTreeSet::new())));
    let guard = ModeGuard(previous);
    let result = f();
    let collected = MODE.with(|m| m.borrow_mut().take());
    drop(guard);
    let deps = match collected {
        Some(Mode::Collect(deps)) => deps,
        _ => BTreeSet::new(),
    };
    (result, deps)
}

type Evaluator = dyn Fn(&dyn Resolve) -> Result<Value, String> + Send + Sync;

enum Source {
    Known(Value),
    Field { urn: Urn, path: Path },
    Id(Urn),
    Derived(Box<Evaluator>),
}

struct Node {
    deps: BTreeSet<Urn>,
    secret: bool,
    source: Source,
}

/// A value that may only be known after apply, with the resources it depends on and a secret
/// flag that survives every `map`, `zip` and `all`.
pub struct Output<T> {
    node: Arc<Node>,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Output<T> {
    fn clone(&self) -> Self {
        Output { node: self.node.clone(), _type: PhantomData }
    }
}

impl<T> fmt::Debug for Output<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let deps: Vec<&str> = self.node.deps.iter().map(Urn::as_str).collect();
        // A secret output shows neither its value nor anything derived from it.
        match &self.node.source {
            Source::Known(_) if self.node.secret => write!(f, "Output([secret])"),
            Source::Known(v) => write!(f, "Output({})", redact(v)),
            _ if self.node.secret => write!(f, "Output([secret] from {deps:?})"),
            _ => write!(f, "Output(from {deps:?})"),
        }
    }
}

impl<T> Output<T> {
    fn from_node(deps: BTreeSet<Urn>, secret: bool, source: Source) -> Self {
        Output { node: Arc::new(Node { deps, secret, source }), _type: PhantomData }
    }

    /// The output field `path` of resource `urn`. Used by the derived output handles.
    #[doc(hidden)]
    pub fn field(urn: &Urn, path: &str) -> Self {
        Self::from_node(
            BTreeSet::from([urn.clone()]),
            false,
            Source::Field { urn: urn.clone(), path: Path::field(path) },
        )
    }

    /// The provider-assigned id of resource `urn`.
    #[doc(hidden)]
    pub fn id_of(urn: &Urn) -> Self {
        Self::from_node(BTreeSet::from([urn.clone()]), false, Source::Id(urn.clone()))
    }

    /// The resources this output depends on.
    pub fn dependencies(&self) -> &BTreeSet<Urn> {
        &self.node.deps
    }

    /// Whether this output is known to be secret before it is resolved.
    pub fn is_secret(&self) -> bool {
        self.node.secret
    }

    /// This output, marked secret.
    pub fn into_secret(self) -> Self {
        let inner = self.node.clone();
        Self::from_node(inner.deps.clone(), true, Source::Derived(Box::new(move |r| evaluate_node(&inner, r))))
    }

    /// Resolves the output to a property value: possibly the unknown marker, wrapped as secret
    /// when it is secret.
    pub fn evaluate(&self, resolver: &dyn Resolve) -> Result<Value, String> {
        evaluate_node(&self.node, resolver)
    }
}

fn evaluate_node(node: &Node, resolver: &dyn Resolve) -> Result<Value, String> {
    {
        let value = match &node.source {
            Source::Known(v) => v.clone(),
            Source::Field { urn, path } => match resolver.lookup(urn) {
                None => unknown(),
                Some(r) => path.get(r.outputs).cloned().unwrap_or(Value::Null),
            },
            Source::Id(urn) => match resolver.lookup(urn).and_then(|r| r.id) {
                None => unknown(),
                Some(id) => Value::String(id.to_owned()),
            },
            Source::Derived(f) => f(resolver)?,
        };
        Ok(if node.secret && !contains_unknown(&value) { secret(value) } else { value })
    }
}

impl<T> Output<T> {
    /// An output from a property value known now; a secret wrapper anywhere inside makes it a
    /// secret output (the wrappers are removed, so the whole value is treated as secret).
    /// Used for values read from elsewhere, such as another stack's outputs.
    pub fn from_value(value: Value) -> Self {
        let secret_now = contains_secret(&value);
        let plain = reveal(value).0;
        Self::from_node(BTreeSet::new(), secret_now, Source::Known(plain))
    }
}

impl<T: Serialize> Output<T> {
    /// An output whose value is known now. It is secret if the value holds a
    /// [`crate::Secret`].
    pub fn new(value: T) -> Self {
        let v = serde_json::to_value(value).unwrap_or(Value::Null);
        let secret_now = contains_secret(&v);
        Self::from_node(BTreeSet::new(), secret_now, Source::Known(reveal(v).0))
    }

    /// A secret output whose value is known now.
    pub fn secret(value: T) -> Self {
        let v = serde_json::to_value(value).unwrap_or(Value::Null);
        Self::from_node(BTreeSet::new(), true, Source::Known(v))
    }
}

fn typed<T: DeserializeOwned>(value: Value) -> Result<Option<(T, bool)>, String> {
    if contains_unknown(&value) {
        return Ok(None);
    }
    let (plain, was_secret) = reveal(value);
    let t = serde_json::from_value(plain).map_err(|e| format!("an output has an unexpected shape: {e}"))?;
    Ok(Some((t, was_secret)))
}

fn finish<U: Serialize>(u: U, secret_result: bool) -> Result<Value, String> {
    let v = serde_json::to_value(u).map_err(|e| format!("a mapped output could not be serialized: {e}"))?;
    Ok(if secret_result { secret(v) } else { v })
}

impl<T: DeserializeOwned + 'static> Output<T> {
    /// Transforms the value once it is known. The result is secret if this output is.
    pub fn map<U: Serialize + 'static>(&self, f: impl Fn(T) -> U + Send + Sync + 'static) -> Output<U> {
        let inner = self.clone();
        Output::from_node(
            self.node.deps.clone(),
            self.node.secret,
            Source::Derived(Box::new(move |r| match typed::<T>(inner.evaluate(r)?)? {
                None => Ok(unknown()),
                Some((t, s)) => finish(f(t), s),
            })),
        )
    }
}

/// Combines two outputs into one pair; known when both are, secret when either is.
pub fn zip<A, B>(a: &Output<A>, b: &Output<B>) -> Output<(A, B)>
where
    A: DeserializeOwned + Serialize + 'static,
    B: DeserializeOwned + Serialize + 'static,
{
    let (a2, b2) = (a.clone(), b.clone());
    let deps = a.node.deps.union(&b.node.deps).cloned().collect();
    Output::from_node(
        deps,
        a.node.secret || b.node.secret,
        Source::Derived(Box::new(move |r| {
            let (va, vb) = (typed::<A>(a2.evaluate(r)?)?, typed::<B>(b2.evaluate(r)?)?);
            match (va, vb) {
                (Some((x, sx)), Some((y, sy))) => finish((x, y), sx || sy),
                _ => Ok(unknown()),
            }
        })),
    )
}

/// Combines any number of outputs into one list; known when all are, secret when any is.
pub fn all<T>(outputs: impl IntoIterator<Item = Output<T>>) -> Output<Vec<T>>
where
    T: DeserializeOwned + Serialize + 'static,
{
    let outputs: Vec<Output<T>> = outputs.into_iter().collect();
    let deps = outputs.iter().flat_map(|o| o.node.deps.iter().cloned()).collect();
    let secret_now = outputs.iter().any(|o| o.node.secret);
    Output::from_node(
        deps,
        secret_now,
        Source::Derived(Box::new(move |r| {
            let mut values = Vec::with_capacity(outputs.len());
            let mut any_secret = false;
            for o in &outputs {
                match typed::<T>(o.evaluate(r)?)? {
                    None => return Ok(unknown()),
                    Some((t, s)) => {
                        any_secret |= s;
                        values.push(t);
                    }
                }
            }
            finish(values, any_secret)
        })),
    )
}

impl<T> Serialize for Output<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = MODE.with(|m| match &mut *m.borrow_mut() {
            Some(Mode::Resolve(r)) => {
                let r = r.clone();
                Some(self.evaluate(r.as_ref()))
            }
            Some(Mode::Collect(deps)) => {
                deps.extend(self.node.deps.iter().cloned());
                None
            }
            None => None,
        });
        let value = match value {
            Some(v) => v.map_err(serde::ser::Error::custom)?,
            None => match &self.node.source {
                Source::Known(v) if self.node.secret => secret(v.clone()),
                Source::Known(v) => v.clone(),
                _ => unknown(),
            },
        };
        value.serialize(serializer)
    }
}

impl<'de, T: Serialize + Deserialize<'de>> Deserialize<'de> for Output<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Output::new(T::deserialize(d)?))
    }
}

/// A resource argument: a literal value or another resource's output.
#[derive(Clone)]
pub enum Input<T> {
    /// A value known when the program runs.
    Value(T),
    /// A value that comes from an output.
    Output(Output<T>),
}

impl<T> Input<T> {
    /// The value. Providers receive resolved arguments, in which every input is a value.
    ///
    /// # Panics
    /// If called on an unresolved output, which only happens outside a provider call.
    pub fn get(&self) -> &T {
        match self {
            Input::Value(v) => v,
            Input::Output(_) => panic!("Input::get called on an unresolved output; providers receive resolved inputs"),
        }
    }

    /// The value, if this input is a literal.
    pub fn value(&self) -> Option<&T> {
        match self {
            Input::Value(v) => Some(v),
            Input::Output(_) => None,
        }
    }
}

impl<T: Default> Default for Input<T> {
    fn default() -> Self {
        Input::Value(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for Input<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Value(v) => v.fmt(f),
            Input::Output(o) => o.fmt(f),
        }
    }
}

impl<T: PartialEq> PartialEq for Input<T> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Input::Value(a), Input::Value(b)) => a == b,
            (Input::Output(a), Input::Output(b)) => Arc::ptr_eq(&a.node, &b.node),
            _ => false,
        }
    }
}

impl<T> From<T> for Input<T> {
    fn from(v: T) -> Self {
        Input::Value(v)
    }
}

impl<T> From<Output<T>> for Input<T> {
    fn from(o: Output<T>) -> Self {
        Input::Output(o)
    }
}

impl<T> From<&Output<T>> for Input<T> {
    fn from(o: &Output<T>) -> Self {
        Input::Output(o.clone())
    }
}

impl From<&str> for Input<String> {
    fn from(s: &str) -> Self {
        Input::Value(s.to_owned())
    }
}

impl<T: Serialize> Serialize for Input<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Input::Value(v) => v.serialize(serializer),
            Input::Output(o) => o.serialize(serializer),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Input<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Input::Value(T::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    struct Fixed(HashMap<Urn, Value>);
    impl Resolve for Fixed {
        fn lookup(&self, urn: &Urn) -> Option<ResolvedResource<'_>> {
            self.0.get(urn).map(|v| ResolvedResource { id: Some("id-1"), outputs: v })
        }
    }

    #[derive(Serialize)]
    struct Args {
        name: Input<String>,
        port: Input<u16>,
    }

    #[test]
    fn outputs_resolve_map_and_keep_secrets() {
        let db = Urn::from("db");
        let host: Output<String> = Output::field(&db, "host");
        let url = zip(&host, &Output::secret("pw".to_owned())).map(|(h, p)| format!("postgres://u:{p}@{h}"));
        assert!(url.is_secret());
        assert_eq!(url.dependencies(), &BTreeSet::from([db.clone()]));

        let known = Fixed(HashMap::from([(db.clone(), json!({"host": "h1"}))]));
        assert_eq!(url.evaluate(&known).unwrap(), secret(json!("postgres://u:pw@h1")));
        let empty = Fixed(HashMap::new());
        assert_eq!(url.evaluate(&empty).unwrap(), unknown());
    }

    #[test]
    fn serializing_args_collects_dependencies_then_resolves() {
        let web = Urn::from("web");
        let args =
            Args { name: Output::<String>::field(&web, "name").map(|n| format!("{n}-api")).into(), port: 80.into() };
        let (value, deps) = collect_dependencies(|| serde_json::to_value(&args).unwrap());
        assert_eq!(deps, BTreeSet::from([web.clone()]));
        assert_eq!(value, json!({"name": unknown(), "port": 80}));

        let resolver: Arc<dyn Resolve> = Arc::new(Fixed(HashMap::from([(web, json!({"name": "site"}))])));
        let value = resolve_with(resolver, || serde_json::to_value(&args).unwrap());
        assert_eq!(value, json!({"name": "site-api", "port": 80}));
    }

    const CANARY: &str = "canary-\"q\"\\b\ne\tx é🦀 &=+ %/";

    fn assert_hidden(text: &str) {
        assert!(!text.contains("canary") && !text.contains("\"ab\"") && text.contains("[secret]"), "{text}");
    }

    #[test]
    fn debug_of_secret_outputs_and_inputs_never_shows_the_value() {
        for value in [CANARY, "ab"] {
            let known = Output::secret(value.to_owned());
            let mapped = known.map(|v| json!({ "nested": { "pw": v } }));
            let from_nested = Output::<Value>::from_value(json!({"a": {"b": secret(json!(value))}}));
            let from_new = Output::new(json!({"a": secret(json!(value))}));
            let input: Input<String> = known.clone().into();
            let with_deps = Output::<String>::field(&Urn::from("db"), "pw").into_secret();
            for text in [
                format!("{known:?}"),
                format!("{mapped:?}"),
                format!("{from_nested:?}"),
                format!("{from_new:?}"),
                format!("{input:?}"),
                format!("{:?}", Input::<String>::from(with_deps.clone())),
                format!("{:#?}", Some(&input)),
            ] {
                assert_hidden(&text);
            }
            assert!(from_nested.is_secret() && from_new.is_secret());
            assert_eq!(format!("{with_deps:?}"), "Output([secret] from [\"db\"])");
        }
        assert_eq!(format!("{:?}", Output::new("plain".to_owned())), "Output(\"plain\")");
        assert_eq!(format!("{:?}", Input::Value(3)), "3");
    }

    #[test]
    fn a_nested_secret_read_from_elsewhere_stays_secret_when_resolved() {
        let out = Output::<Value>::from_value(json!({"a": {"b": secret(json!(CANARY))}}));
        let v = out.evaluate(&Fixed(HashMap::new())).unwrap();
        assert_eq!(v, secret(json!({"a": {"b": CANARY}})));
    }

    #[test]
    fn all_is_unknown_until_every_part_is_known() {
        let a = Urn::from("a");
        let parts = vec![Output::<i64>::field(&a, "n"), Output::new(2)];
        let sum = all(parts).map(|v: Vec<i64>| v.iter().sum::<i64>());
        let known = Fixed(HashMap::from([(a, json!({"n": 40}))]));
        assert_eq!(sum.evaluate(&known).unwrap(), json!(42));
        assert_eq!(sum.evaluate(&Fixed(HashMap::new())).unwrap(), unknown());
    }
}
