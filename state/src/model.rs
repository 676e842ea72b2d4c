//! The state of one stack — its resources with ids, inputs, outputs and dependencies, replaced
//! resources awaiting deletion, operations started but not confirmed, and exports — and the
//! journal records that change it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stackwright_core::Urn;

/// The newest state format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

fn is_false(b: &bool) -> bool {
    !*b
}

/// One resource as last applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    /// Unique name in the stack.
    pub urn: Urn,
    /// Type token, e.g. `vercel:Project`.
    #[serde(rename = "type")]
    pub type_token: String,
    /// Name of the provider that manages it.
    pub provider: String,
    /// The provider's id.
    pub id: String,
    /// The arguments last applied (secrets wrapped).
    pub inputs: Value,
    /// The outputs last returned (secrets wrapped).
    pub outputs: Value,
    /// Resources it depended on when last applied; deletes run in reverse of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Urn>,
    /// Refuse to delete or replace it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
    /// On delete, forget it instead of deleting the real object.
    #[serde(default, skip_serializing_if = "is_false")]
    pub retain_on_delete: bool,
}

/// The kind of a provider call that changes the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// A create.
    Create,
    /// An update in place.
    Update,
    /// A delete.
    Delete,
}

/// An operation that was started (its record is durable) but whose result is not yet known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingOperation {
    /// What the call does.
    pub kind: OpKind,
    /// The resource it is for.
    pub urn: Urn,
    /// The resource's type token.
    #[serde(rename = "type")]
    pub type_token: String,
    /// The provider.
    pub provider: String,
    /// The provider id, for updates and deletes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The arguments sent (secrets wrapped).
    pub inputs: Value,
    /// When it started (RFC 3339).
    pub started_at: String,
}

/// The whole state of one stack.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StackState {
    /// The stack's name.
    pub stack: String,
    /// Increases with each snapshot written.
    pub serial: u64,
    /// The resources, by unique name.
    #[serde(default)]
    pub resources: BTreeMap<Urn, ResourceState>,
    /// Old resources replaced create-before-delete whose delete has not yet succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<ResourceState>,
    /// Operations started but not confirmed, by operation id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pending: BTreeMap<String, PendingOperation>,
    /// The stack's exported outputs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exports: BTreeMap<String, Value>,
}

/// One durable change to a stack's state, appended to its journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// A provider call is about to start.
    Begin {
        /// The operation id.
        op: String,
        /// What is being done.
        pending: PendingOperation,
    },
    /// A resource was created, updated, refreshed or adopted. With `retire_previous`, the
    /// resource it replaces moves to the retired list to be deleted later.
    Upsert {
        /// The operation this completes, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        op: Option<String>,
        /// The resource as it is now.
        resource: ResourceState,
        /// Keep the previous resource under this name as retired.
        #[serde(default, skip_serializing_if = "is_false")]
        retire_previous: bool,
    },
    /// A resource was deleted (or forgotten).
    Remove {
        /// The operation this completes, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        op: Option<String>,
        /// The resource.
        urn: Urn,
    },
    /// A retired resource was deleted.
    RemoveRetired {
        /// The operation this completes, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        op: Option<String>,
        /// Its name.
        urn: Urn,
        /// Its provider id.
        id: String,
    },
    /// A resource was renamed (through an alias) without touching the real object.
    Rename {
        /// The old name.
        from: Urn,
        /// The new name.
        to: Urn,
    },
    /// A provider call failed and changed nothing we know of.
    Abort {
        /// The operation id.
        op: String,
    },
    /// The stack's exports were set.
    Exports {
        /// All exports.
        exports: BTreeMap<String, Value>,
    },
}

impl StackState {
    /// An empty state for a new stack.
    pub fn new(stack: &str) -> Self {
        StackState { stack: stack.to_owned(), ..Default::default() }
    }

    /// Applies one journal record. Replaying a journal and running live use this same function,
    /// so what is durable is exactly what the run saw.
    pub fn apply(&mut self, record: &Record) {
        let finish = |pending: &mut BTreeMap<String, PendingOperation>, op: &Option<String>| {
            if let Some(op) = op {
                pending.remove(op);
            }
        };
        match record {
            Record::Begin { op, pending } => {
                self.pending.insert(op.clone(), pending.clone());
            }
            Record::Upsert { op, resource, retire_previous } => {
                finish(&mut self.pending, op);
                let previous = self.resources.insert(resource.urn.clone(), resource.clone());
                if let (true, Some(prev)) = (*retire_previous, previous) {
                    self.retired.push(prev);
                }
            }
            Record::Remove { op, urn } => {
                finish(&mut self.pending, op);
                self.resources.remove(urn);
            }
            Record::RemoveRetired { op, urn, id } => {
                finish(&mut self.pending, op);
                self.retired.retain(|r| !(&r.urn == urn && &r.id == id));
            }
            Record::Rename { from, to } => {
                if let Some(mut r) = self.resources.remove(from) {
                    r.urn = to.clone();
                    self.resources.insert(to.clone(), r);
                }
                for r in self.resources.values_mut() {
                    for d in r.dependencies.iter_mut() {
                        if d == from {
                            *d = to.clone();
                        }
                    }
                }
            }
            Record::Abort { op } => {
                self.pending.remove(op);
            }
            Record::Exports { exports } => self.exports = exports.clone(),
        }
    }
}

/// One line of a stack's update history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When the operation started (RFC 3339).
    pub started_at: String,
    /// When it ended (RFC 3339).
    pub finished_at: String,
    /// Who ran it.
    pub user: String,
    /// On which host.
    pub host: String,
    /// The command (`up`, `destroy`, `refresh`, `import`, …).
    pub command: String,
    /// `succeeded`, `failed`, `interrupted`, `cancelled` or `refused`.
    pub result: String,
    /// Changes applied, by kind (`create`, `update`, `replace`, `delete`).
    pub changes: BTreeMap<String, usize>,
}
