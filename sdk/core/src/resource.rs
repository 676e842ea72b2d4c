//! Typed resources: a type token, an arguments struct and an outputs struct, with per-field
//! schema facts (forces replacement, secret, computed) declared by `#[derive(Args, Outputs)]`.

use std::ops::Deref;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::output::{Output, Urn};

/// Schema facts about one top-level field of a resource's arguments or outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSchema {
    /// The field's name as serialized.
    pub name: &'static str,
    /// A change to this argument forces the resource to be replaced.
    pub replace: bool,
    /// The value is secret: encrypted at rest and shown as `[secret]`.
    pub secret: bool,
    /// The value is computed by the provider, so it is unknown until a create or update returns.
    pub computed: bool,
}

/// A resource's arguments. Derive it with `#[derive(Args)]`; mark fields with
/// `#[sw(replace)]` or `#[sw(secret)]`.
pub trait Args: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Schema facts for each field.
    fn schema() -> &'static [FieldSchema];
}

/// A resource's outputs. Derive it with `#[derive(Outputs)]`; mark fields with `#[sw(secret)]` or
/// `#[sw(computed)]`. The derive also generates a handle struct of typed `Output`s.
pub trait Outputs: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The struct of typed outputs a program uses for wiring (`site.url`).
    type Refs: Clone + Send + Sync + 'static;
    /// Schema facts for each field.
    fn schema() -> &'static [FieldSchema];
    /// The typed outputs of resource `urn`.
    fn refs(urn: &Urn) -> Self::Refs;
}

/// A type of resource, such as a Vercel project or a PostgreSQL role.
pub trait Resource: Send + Sync + 'static {
    /// The type token, `provider:Kind`, e.g. `vercel:Project`.
    const TYPE: &'static str;
    /// The arguments the program gives.
    type Args: Args;
    /// The outputs the provider returns.
    type Outputs: Outputs;
}

/// A declared resource: its name, its id and its typed outputs (reached through `Deref`, so
/// `site.url` is an `Output<String>`).
pub struct ResourceRef<R: Resource> {
    urn: Urn,
    refs: <R::Outputs as Outputs>::Refs,
}

impl<R: Resource> Clone for ResourceRef<R> {
    fn clone(&self) -> Self {
        ResourceRef { urn: self.urn.clone(), refs: self.refs.clone() }
    }
}

impl<R: Resource> ResourceRef<R> {
    /// The handle of resource `urn`.
    pub fn new(urn: Urn) -> Self {
        let refs = <R::Outputs as Outputs>::refs(&urn);
        ResourceRef { urn, refs }
    }

    /// The resource's unique name in the stack.
    pub fn urn(&self) -> &Urn {
        &self.urn
    }

    /// The provider-assigned id, known after the resource is created.
    pub fn id(&self) -> Output<String> {
        Output::id_of(&self.urn)
    }
}

impl<R: Resource> Deref for ResourceRef<R> {
    type Target = <R::Outputs as Outputs>::Refs;
    fn deref(&self) -> &Self::Target {
        &self.refs
    }
}

impl<R: Resource> std::fmt::Debug for ResourceRef<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({})", R::TYPE, self.urn)
    }
}
