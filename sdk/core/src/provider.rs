//! The provider contract. Authors implement the typed [`Handler`] for each resource type and
//! bundle handlers into a [`Provider`]; the engine talks to them through [`ErasedHandler`],
//! which moves plain JSON values (secrets already revealed) in and out.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diff::PropertyChange;
use crate::error::ProviderError;
use crate::output::Urn;
use crate::path::Path;
use crate::resource::{Args, FieldSchema, Outputs, Resource};

/// What a provider call knows about the operation it is part of.
#[derive(Debug, Clone)]
pub struct OpContext {
    /// The resource's unique name in the stack.
    pub urn: Urn,
    /// The stack being updated.
    pub stack: String,
    /// A unique id for this operation, recorded durably before the call. A provider that can
    /// tag what it creates with it can find the object again after a crash (see
    /// [`Handler::find`]).
    pub operation_id: String,
}

/// A problem with a resource's arguments found before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckFailure {
    /// The offending argument, if the failure is about one.
    pub path: Option<Path>,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl CheckFailure {
    /// A failure about the argument at `path` (e.g. `"name"`).
    pub fn at(path: &str, message: impl Into<String>) -> Self {
        CheckFailure { path: Path::parse(path).ok(), message: message.into() }
    }
}

/// The result of a successful create.
#[derive(Debug, Clone)]
pub struct Created<O> {
    /// The id the provider assigned.
    pub id: String,
    /// The resource's outputs.
    pub outputs: O,
}

/// What [`Handler::find`] learnt about an interrupted create.
#[derive(Debug, Clone)]
pub enum Found<O> {
    /// The object the create made, recognised by the marker it was given (e.g. the operation id
    /// in a tag): it is adopted.
    Object(Created<O>),
    /// Proved absent: the create made nothing.
    Absent,
    /// The provider cannot tell (it has no way to recognise its own objects). The engine keeps the
    /// operation pending and asks the user to resolve it (`stack pending resolve`).
    Unknown,
}

/// A resource as the provider observes it now.
#[derive(Debug, Clone)]
pub struct Observed<R: Resource> {
    /// The provider's id.
    pub id: String,
    /// The arguments as they are in the real world. Parts that cannot be read back (write-only
    /// secrets) should be copied from the stored arguments.
    pub args: R::Args,
    /// The outputs as they are now.
    pub outputs: R::Outputs,
}

/// A resource as recorded in the stack's state.
#[derive(Debug, Clone)]
pub struct Stored<R: Resource> {
    /// The provider's id.
    pub id: String,
    /// The arguments last applied.
    pub args: R::Args,
    /// The outputs last returned.
    pub outputs: R::Outputs,
}

/// The typed operations a provider implements for one resource type.
#[async_trait]
pub trait Handler<R: Resource>: Send + Sync + 'static {
    /// Validates arguments before anything runs (preview included). Unknown values are absent
    /// from checks: only arguments fully known at preview time are checked.
    fn check(&self, _args: &R::Args) -> Vec<CheckFailure> {
        Vec::new()
    }

    /// Creates the resource.
    async fn create(&self, ctx: &OpContext, args: &R::Args) -> Result<Created<R::Outputs>, ProviderError>;

    /// Reads the resource as it is now; `None` if it no longer exists.
    async fn read(&self, ctx: &OpContext, stored: &Stored<R>) -> Result<Option<Observed<R>>, ProviderError>;

    /// Updates the resource in place to match `args`; `changes` lists what differs.
    async fn update(
        &self,
        ctx: &OpContext,
        stored: &Stored<R>,
        args: &R::Args,
        changes: &[PropertyChange],
    ) -> Result<R::Outputs, ProviderError>;

    /// Deletes the resource. Deleting something already gone should succeed.
    async fn delete(&self, ctx: &OpContext, stored: &Stored<R>) -> Result<(), ProviderError>;

    /// After a crash (or an answer that never came) during a create, finds the object that create
    /// may have made, so it is adopted rather than orphaned or duplicated. Recognise the object by a
    /// marker written at create time ([`OpContext::operation_id`]), never by name alone. The default
    /// cannot tell ([`Found::Unknown`]): the engine then stops and asks the user.
    async fn find(&self, _ctx: &OpContext, _args: &R::Args) -> Result<Found<R::Outputs>, ProviderError> {
        Ok(Found::Unknown)
    }

    /// Reads an existing object by its id so it can be adopted into the stack.
    async fn import(&self, _ctx: &OpContext, id: &str) -> Result<Option<Observed<R>>, ProviderError> {
        Err(ProviderError::invalid_input(format!("{} does not support import (id {id})", R::TYPE)))
    }

    /// Whether a replacement must delete the old object before creating the new one, because
    /// the two cannot coexist (a database name is unique on its server, say). The program can
    /// also ask for it per resource.
    fn delete_before_replace(&self) -> bool {
        false
    }

    /// Whether create, update and delete change anything outside the stack's state. A resource
    /// that lives only in state (like `Data`) returns false, and the engine skips the durable
    /// pending record for it.
    fn has_side_effects(&self) -> bool {
        true
    }
}

/// A resource's id, arguments and outputs as plain JSON.
///
/// Its `Debug` shows the id and the shape of the arguments and outputs (keys, and the type of
/// each value) but no value: a `RawState` crosses the provider boundary with its secrets
/// revealed, so nothing in it says which values were secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct RawState {
    /// The provider's id.
    pub id: String,
    /// The arguments.
    pub args: Value,
    /// The outputs.
    pub outputs: Value,
}

/// `v` with every scalar replaced by the name of its type, and markers as
/// [`crate::value::redact`] shows them.
fn outline(v: &Value) -> Value {
    if crate::value::is_secret(v) || crate::value::is_unknown(v) {
        return crate::value::redact(v);
    }
    match v {
        Value::Array(items) => Value::Array(items.iter().map(outline).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), outline(v))).collect()),
        other => Value::String(shape(other).to_owned()),
    }
}

impl std::fmt::Debug for RawState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawState")
            .field("id", &self.id)
            .field("args", &format_args!("{}", outline(&self.args)))
            .field("outputs", &format_args!("{}", outline(&self.outputs)))
            .finish()
    }
}

/// A handler with its types erased, as the engine sees it.
#[async_trait]
pub trait ErasedHandler: Send + Sync {
    /// The resource type token.
    fn type_token(&self) -> &'static str;
    /// Schema facts of the arguments.
    fn args_schema(&self) -> &'static [FieldSchema];
    /// Schema facts of the outputs.
    fn outputs_schema(&self) -> &'static [FieldSchema];
    /// See [`Handler::has_side_effects`].
    fn has_side_effects(&self) -> bool;
    /// See [`Handler::delete_before_replace`].
    fn delete_before_replace(&self) -> bool;
    /// See [`Handler::check`].
    fn check(&self, args: &Value) -> Vec<CheckFailure>;
    /// See [`Handler::create`].
    async fn create(&self, ctx: &OpContext, args: &Value) -> Result<(String, Value), ProviderError>;
    /// See [`Handler::read`].
    async fn read(&self, ctx: &OpContext, stored: &RawState) -> Result<Option<RawState>, ProviderError>;
    /// See [`Handler::update`].
    async fn update(
        &self,
        ctx: &OpContext,
        stored: &RawState,
        args: &Value,
        changes: &[PropertyChange],
    ) -> Result<Value, ProviderError>;
    /// See [`Handler::delete`].
    async fn delete(&self, ctx: &OpContext, stored: &RawState) -> Result<(), ProviderError>;
    /// See [`Handler::find`].
    async fn find(&self, ctx: &OpContext, args: &Value) -> Result<Found<Value>, ProviderError>;
    /// See [`Handler::import`].
    async fn import(&self, ctx: &OpContext, id: &str) -> Result<Option<RawState>, ProviderError>;
}

struct Typed<R, H> {
    handler: H,
    _resource: PhantomData<fn() -> R>,
}

/// The JSON type of a value, said in words, in place of the value itself.
fn shape(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Why `v` does not deserialize as `T`: the field path (when serde can tell) and a message that
/// names the expected type but never quotes a value. The values reaching a handler have their
/// secrets revealed, and serde's own messages quote them (`invalid type: string "hunter2",
/// expected u32`).
fn mismatch<T: serde::de::DeserializeOwned>(v: &Value) -> (Option<Path>, String) {
    let Err(err) = serde_path_to_error::deserialize::<_, T>(v) else {
        return (None, "a value that is not accepted".to_owned());
    };
    let mut path = Path::root();
    for segment in err.path().iter() {
        match segment {
            serde_path_to_error::Segment::Map { key } => path = path.key(key),
            serde_path_to_error::Segment::Seq { index } => path = path.index(*index),
            _ => break,
        }
    }
    let found = path.get(v).map(shape);
    let inner = err.into_inner().to_string();
    // Of serde's messages only these two carry no value: they name fields of the type.
    let detail = if inner.starts_with("missing field `") || inner.starts_with("unknown field `") {
        match inner.split_once(", expected") {
            Some((head, _)) => head.to_owned(),
            None => inner,
        }
    } else {
        let expected = inner.rsplit_once(", expected ").map(|(_, e)| e.trim_end_matches('.'));
        match (found, expected) {
            (Some(found), Some(expected)) => format!("found {found}, expected {expected}"),
            (None, Some(expected)) => format!("expected {expected}"),
            (Some(found), None) => format!("{found} that is not accepted here"),
            (None, None) => "a value that is not accepted here".to_owned(),
        }
    };
    let at = if path.0.is_empty() { "at the top level".to_owned() } else { format!("at `{path}`") };
    let path = (!path.0.is_empty()).then_some(path);
    (path, format!("{at}: {detail} (the value is not shown, as it may be secret)"))
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, token: &str, v: &Value) -> Result<T, ProviderError> {
    T::deserialize(v).map_err(|_| {
        let (_, why) = mismatch::<T>(v);
        ProviderError::invalid_input(format!("{token}: the {what} do not match the resource's schema {why}"))
    })
}

fn to_json<T: Serialize>(token: &str, v: &T) -> Result<Value, ProviderError> {
    serde_json::to_value(v).map_err(|e| ProviderError::other(format!("{token}: outputs could not be serialized: {e}")))
}

impl<R: Resource, H: Handler<R>> Typed<R, H> {
    fn stored(&self, raw: &RawState) -> Result<Stored<R>, ProviderError> {
        Ok(Stored {
            id: raw.id.clone(),
            args: from_json("stored arguments", R::TYPE, &raw.args)?,
            outputs: from_json("stored outputs", R::TYPE, &raw.outputs)?,
        })
    }

    fn observed(&self, o: Observed<R>) -> Result<RawState, ProviderError> {
        Ok(RawState { id: o.id, args: to_json(R::TYPE, &o.args)?, outputs: to_json(R::TYPE, &o.outputs)? })
    }
}

#[async_trait]
impl<R: Resource, H: Handler<R>> ErasedHandler for Typed<R, H> {
    fn type_token(&self) -> &'static str {
        R::TYPE
    }
    fn args_schema(&self) -> &'static [FieldSchema] {
        <R::Args as Args>::schema()
    }
    fn outputs_schema(&self) -> &'static [FieldSchema] {
        <R::Outputs as Outputs>::schema()
    }
    fn has_side_effects(&self) -> bool {
        self.handler.has_side_effects()
    }
    fn delete_before_replace(&self) -> bool {
        self.handler.delete_before_replace()
    }
    fn check(&self, args: &Value) -> Vec<CheckFailure> {
        match R::Args::deserialize(args) {
            Ok(a) => self.handler.check(&a),
            Err(_) => {
                let (path, why) = mismatch::<R::Args>(args);
                vec![CheckFailure { path, message: format!("arguments do not match {} {why}", R::TYPE) }]
            }
        }
    }
    async fn create(&self, ctx: &OpContext, args: &Value) -> Result<(String, Value), ProviderError> {
        let args: R::Args = from_json("arguments", R::TYPE, args)?;
        let created = self.handler.create(ctx, &args).await?;
        Ok((created.id, to_json(R::TYPE, &created.outputs)?))
    }
    async fn read(&self, ctx: &OpContext, stored: &RawState) -> Result<Option<RawState>, ProviderError> {
        let stored = self.stored(stored)?;
        match self.handler.read(ctx, &stored).await? {
            Some(o) => Ok(Some(self.observed(o)?)),
            None => Ok(None),
        }
    }
    async fn update(
        &self,
        ctx: &OpContext,
        stored: &RawState,
        args: &Value,
        changes: &[PropertyChange],
    ) -> Result<Value, ProviderError> {
        let stored = self.stored(stored)?;
        let args: R::Args = from_json("arguments", R::TYPE, args)?;
        let outputs = self.handler.update(ctx, &stored, &args, changes).await?;
        to_json(R::TYPE, &outputs)
    }
    async fn delete(&self, ctx: &OpContext, stored: &RawState) -> Result<(), ProviderError> {
        let stored = self.stored(stored)?;
        self.handler.delete(ctx, &stored).await
    }
    async fn find(&self, ctx: &OpContext, args: &Value) -> Result<Found<Value>, ProviderError> {
        let args: R::Args = from_json("arguments", R::TYPE, args)?;
        Ok(match self.handler.find(ctx, &args).await? {
            Found::Object(c) => Found::Object(Created { outputs: to_json(R::TYPE, &c.outputs)?, id: c.id }),
            Found::Absent => Found::Absent,
            Found::Unknown => Found::Unknown,
        })
    }
    async fn import(&self, ctx: &OpContext, id: &str) -> Result<Option<RawState>, ProviderError> {
        match self.handler.import(ctx, id).await? {
            Some(o) => Ok(Some(self.observed(o)?)),
            None => Ok(None),
        }
    }
}

/// A configured provider: a name, the handlers for its resource types and its own limit on
/// concurrent calls.
#[derive(Clone)]
pub struct Provider {
    name: String,
    max_concurrency: Option<usize>,
    handlers: BTreeMap<&'static str, Arc<dyn ErasedHandler>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("max_concurrency", &self.max_concurrency)
            .field("types", &self.handlers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Provider {
    /// A provider with no resource types yet.
    pub fn new(name: impl Into<String>) -> Self {
        Provider { name: name.into(), max_concurrency: None, handlers: BTreeMap::new() }
    }

    /// Adds the handler for resource type `R`.
    pub fn resource<R: Resource>(mut self, handler: impl Handler<R>) -> Self {
        self.handlers.insert(R::TYPE, Arc::new(Typed::<R, _> { handler, _resource: PhantomData }));
        self
    }

    /// Limits how many calls to this provider run at once.
    pub fn max_concurrency(mut self, limit: usize) -> Self {
        self.max_concurrency = Some(limit.max(1));
        self
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its limit on concurrent calls, if it set one.
    pub fn concurrency_limit(&self) -> Option<usize> {
        self.max_concurrency
    }

    /// The handler for a resource type token.
    pub fn handler(&self, type_token: &str) -> Option<&Arc<dyn ErasedHandler>> {
        self.handlers.get(type_token)
    }

    /// The resource types this provider handles.
    pub fn types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.handlers.keys().copied()
    }
}

impl<O> Found<O> {
    /// The object found, if one was.
    pub fn object(self) -> Option<Created<O>> {
        match self {
            Found::Object(c) => Some(c),
            Found::Absent | Found::Unknown => None,
        }
    }
}

impl<O> From<Option<Created<O>>> for Found<O> {
    /// `Some` is the object to adopt; `None` proves the create made nothing.
    fn from(found: Option<Created<O>>) -> Self {
        match found {
            Some(c) => Found::Object(c),
            None => Found::Absent,
        }
    }
}
