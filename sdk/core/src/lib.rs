//! The small core of Stackwright: typed resources, outputs and inputs, property diffs and the
//! provider contract. It performs no I/O, so providers and the engine can both depend on it.

pub mod diff;
pub mod error;
pub mod output;
pub mod path;
pub mod provider;
pub mod resource;
pub mod secret;
pub mod value;

pub use diff::{ChangeKind, DiffOptions, PropertyChange, apply_changes, diff};
pub use error::{ErrorKind, ProviderError};
pub use output::{Input, Output, Resolve, ResolvedResource, Urn, all, collect_dependencies, resolve_with, zip};
pub use path::{Path, Segment};
pub use provider::{
    CheckFailure, Created, ErasedHandler, Found, Handler, Observed, OpContext, Provider, RawState, Stored,
};
pub use resource::{Args, FieldSchema, Outputs, Resource, ResourceRef};
pub use secret::Secret;
pub use stackwright_derive::{Args, Outputs};
pub use value::Value;
