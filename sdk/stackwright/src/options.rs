//! Per-resource options: explicit dependencies, protection, ignored and replace-forcing paths,
//! replacement order, retention, aliases, timeouts and an explicit provider.

use std::time::Duration;

use stackwright_core::{Resource, ResourceRef, Urn};

/// How long each kind of provider call may take, retries included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Limit for a create.
    pub create: Duration,
    /// Limit for an update.
    pub update: Duration,
    /// Limit for a delete.
    pub delete: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let twenty_minutes = Duration::from_secs(20 * 60);
        Timeouts { create: twenty_minutes, update: twenty_minutes, delete: twenty_minutes }
    }
}

/// Options for one resource, built with chained calls:
/// `ResourceOptions::new().protect().depends_on(&db)`.
#[derive(Debug, Clone, Default)]
pub struct ResourceOptions {
    pub(crate) depends_on: Vec<Urn>,
    pub(crate) protect: bool,
    pub(crate) ignore_changes: Vec<String>,
    pub(crate) replace_on_changes: Vec<String>,
    pub(crate) delete_before_replace: bool,
    pub(crate) retain_on_delete: bool,
    pub(crate) aliases: Vec<Urn>,
    pub(crate) timeouts: Option<Timeouts>,
    pub(crate) provider: Option<String>,
}

impl ResourceOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs after `other` even though no output of it is used.
    pub fn depends_on<R: Resource>(mut self, other: &ResourceRef<R>) -> Self {
        self.depends_on.push(other.urn().clone());
        self
    }

    /// Refuses any plan that would delete or replace this resource.
    pub fn protect(mut self) -> Self {
        self.protect = true;
        self
    }

    /// Ignores changes at these argument paths (e.g. `"tags.owner"`); the stored value is kept.
    pub fn ignore_changes<S: Into<String>>(mut self, paths: impl IntoIterator<Item = S>) -> Self {
        self.ignore_changes.extend(paths.into_iter().map(Into::into));
        self
    }

    /// Replaces the resource when these argument paths change, in addition to the schema's.
    pub fn replace_on_changes<S: Into<String>>(mut self, paths: impl IntoIterator<Item = S>) -> Self {
        self.replace_on_changes.extend(paths.into_iter().map(Into::into));
        self
    }

    /// On replacement, deletes the old object before creating the new one (for objects whose
    /// name must be unique).
    pub fn delete_before_replace(mut self) -> Self {
        self.delete_before_replace = true;
        self
    }

    /// When removed from the program (or replaced), forgets the object instead of deleting it.
    pub fn retain_on_delete(mut self) -> Self {
        self.retain_on_delete = true;
        self
    }

    /// A former name of this resource, so a rename moves it instead of replacing it.
    pub fn alias(mut self, old_name: &str) -> Self {
        self.aliases.push(Urn::from(old_name));
        self
    }

    /// Custom limits for create, update and delete.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = Some(timeouts);
        self
    }

    /// Uses the named provider rather than the one registered for the resource's type.
    pub fn provider(mut self, name: &str) -> Self {
        self.provider = Some(name.to_owned());
        self
    }
}
