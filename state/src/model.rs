//! The state of one stack — its resources with ids, inputs, outputs and dependencies, replaced
//! resources awaiting deletion, operations started but not confirmed, and exports — and the
//! journal records that change it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stackwright_core::Urn;
use stackwright_core::value::redact;

/// The newest state format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

fn is_false(b: &bool) -> bool {
    !*b
}

/// One resource as last applied.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
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
#[derive(Clone, PartialEq, Serialize, Deserialize)]
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
    /// `succeeded`, `failed`, `interrupted`, `cancelled` or `refused`; `started` while a run is
    /// going (read back as `running` or `did not finish`).
    pub result: String,
    /// Changes applied, by kind (`create`, `update`, `replace`, `delete`).
    pub changes: BTreeMap<String, usize>,
    /// The fencing token of the run that wrote it: pairs a run's `started` entry with its
    /// final one (absent in entries written before runs recorded their start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u64>,
}

/// Shows a property value with its secrets as `[secret]` and its unknowns as
/// `(known after apply)`, as JSON text, for the hand-written `Debug` impls below: the values in
/// state keep their secrets wrapped, and a derived `Debug` would print what is inside.
struct Redacted<'a>(&'a Value);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", redact(self.0))
    }
}

/// The values of a map of property values, redacted.
fn redacted_map(map: &BTreeMap<String, Value>) -> BTreeMap<&str, Redacted<'_>> {
    map.iter().map(|(k, v)| (k.as_str(), Redacted(v))).collect()
}

impl std::fmt::Debug for ResourceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceState")
            .field("urn", &self.urn)
            .field("type_token", &self.type_token)
            .field("provider", &self.provider)
            .field("id", &self.id)
            .field("inputs", &Redacted(&self.inputs))
            .field("outputs", &Redacted(&self.outputs))
            .field("dependencies", &self.dependencies)
            .field("protect", &self.protect)
            .field("retain_on_delete", &self.retain_on_delete)
            .finish()
    }
}

impl std::fmt::Debug for PendingOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingOperation")
            .field("kind", &self.kind)
            .field("urn", &self.urn)
            .field("type_token", &self.type_token)
            .field("provider", &self.provider)
            .field("id", &self.id)
            .field("inputs", &Redacted(&self.inputs))
            .field("started_at", &self.started_at)
            .finish()
    }
}

impl std::fmt::Debug for StackState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackState")
            .field("stack", &self.stack)
            .field("serial", &self.serial)
            .field("resources", &self.resources)
            .field("retired", &self.retired)
            .field("pending", &self.pending)
            .field("exports", &redacted_map(&self.exports))
            .finish()
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Record::Begin { op, pending } => f.debug_struct("Begin").field("op", op).field("pending", pending).finish(),
            Record::Upsert { op, resource, retire_previous } => f
                .debug_struct("Upsert")
                .field("op", op)
                .field("resource", resource)
                .field("retire_previous", retire_previous)
                .finish(),
            Record::Remove { op, urn } => f.debug_struct("Remove").field("op", op).field("urn", urn).finish(),
            Record::RemoveRetired { op, urn, id } => {
                f.debug_struct("RemoveRetired").field("op", op).field("urn", urn).field("id", id).finish()
            }
            Record::Rename { from, to } => f.debug_struct("Rename").field("from", from).field("to", to).finish(),
            Record::Abort { op } => f.debug_struct("Abort").field("op", op).finish(),
            Record::Exports { exports } => f.debug_struct("Exports").field("exports", &redacted_map(exports)).finish(),
        }
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;
    use serde_json::json;
    use stackwright_core::value::secret;

    const CANARY: &str = "canary-\"q\"\\b\ne\tx é🦀 &=+ %/";

    fn leaks(text: &str) -> bool {
        // Every form of the canary, plain or escaped, starts with `canary`; the short secret
        // would show as a JSON string.
        ["canary", "\"ab\""].iter().any(|needle| text.contains(needle))
    }

    fn resource() -> ResourceState {
        ResourceState {
            urn: Urn::from("db"),
            type_token: "test:Item".into(),
            provider: "test".into(),
            id: "id-1".into(),
            inputs: json!({"password": secret(json!(CANARY)), "nested": {"list": [secret(json!({"k": CANARY}))]}}),
            outputs: json!({"token": secret(json!("ab")), "name": "visible"}),
            dependencies: vec![],
            protect: false,
            retain_on_delete: false,
        }
    }

    fn pending() -> PendingOperation {
        PendingOperation {
            kind: OpKind::Create,
            urn: Urn::from("db"),
            type_token: "test:Item".into(),
            provider: "test".into(),
            id: None,
            inputs: json!({"password": secret(json!(CANARY)), "short": secret(json!("ab"))}),
            started_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn debug_of_resource_and_pending_redacts_secrets_and_keeps_field_names() {
        for text in [format!("{:?}", resource()), format!("{:#?}", resource()), format!("{:?}", pending())] {
            assert!(!leaks(&text), "{text}");
            assert!(text.contains("[secret]") && text.contains("inputs"), "{text}");
        }
        let text = format!("{:?}", resource());
        assert!(text.contains("visible") && text.contains("retain_on_delete") && text.contains("outputs"), "{text}");
    }

    #[test]
    fn debug_of_stack_state_and_every_record_redacts_secrets() {
        let mut state = StackState::new("dev");
        state.resources.insert(Urn::from("db"), resource());
        state.retired.push(resource());
        state.pending.insert("op-1".into(), pending());
        state.exports.insert("url".into(), secret(json!(CANARY)));
        state.exports.insert("short".into(), secret(json!("ab")));
        let exports = state.exports.clone();
        let records = [
            Record::Begin { op: "op-1".into(), pending: pending() },
            Record::Upsert { op: None, resource: resource(), retire_previous: false },
            Record::Exports { exports },
        ];
        let mut texts = vec![format!("{state:?}"), format!("{state:#?}")];
        texts.extend(records.iter().map(|r| format!("{r:?}")));
        for text in texts {
            assert!(!leaks(&text), "{text}");
            assert!(text.contains("[secret]"), "{text}");
        }
        assert!(format!("{state:?}").contains("exports"));
    }
}
