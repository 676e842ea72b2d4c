//! The rules for editing a stack's state by hand (`state rm`, `state mv`) and for removing a stack's state (`stack rm`), kept
//! here rather than in the command line so that tests and every front end get the same checks.
//! Each function looks at a [`StackState`] and returns the journal records to apply, or says
//! why the edit is refused; none of them writes anything.

use stackwright_core::Urn;
use stackwright_state::{Record, StackState};

use crate::error::EngineError;

/// Why a hand edit of the state was refused. Nothing has been changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateEditError {
    /// The resource is not in the stack's state.
    #[error("no resource named `{resource}` in the stack; `state ls` lists them")]
    UnknownResource {
        /// The name asked for.
        resource: String,
    },
    /// The resource is protected and `force` was not given.
    #[error("cannot change `{resource}` in the state: it is protected; pass --force to forget it anyway")]
    Protected {
        /// The resource.
        resource: String,
    },
    /// Other resources depend on it and `force` was not given.
    #[error("cannot change `{resource}` in the state: it is used by {}; pass --force to forget it anyway", users.join(", "))]
    InUse {
        /// The resource.
        resource: String,
        /// The resources whose recorded dependencies name it.
        users: Vec<String>,
    },
    /// An interrupted run left an operation on the resource that is not reconciled yet; editing
    /// it now would leave that operation pointing at a name the state no longer has.
    #[error(
        "cannot change `{resource}` in the state: an interrupted run left a pending {kind} on it; run `up` or `refresh` first to reconcile it"
    )]
    Pending {
        /// The resource.
        resource: String,
        /// The kind of pending operation (`create`, `update`, `delete`, …).
        kind: String,
    },
    /// The new name is already taken by a resource in the state.
    #[error("cannot change `{resource}` in the state: a resource with that name already exists")]
    NameTaken {
        /// The name asked for.
        resource: String,
    },
    /// The new name is empty.
    #[error("cannot rename `{resource}` to an empty name; give a resource name")]
    EmptyName {
        /// The resource being renamed.
        resource: String,
    },
}

impl From<StateEditError> for EngineError {
    fn from(e: StateEditError) -> Self {
        // Keeps the engine's single error type for `Engine::edit_state`, with the same wording
        // the command line has always printed.
        match e {
            StateEditError::UnknownResource { resource } => EngineError::UnknownResource(resource),
            StateEditError::Protected { resource } => {
                EngineError::StateEdit { resource, message: "it is protected; pass --force to forget it anyway".into() }
            }
            StateEditError::InUse { resource, users } => EngineError::StateEdit {
                resource,
                message: format!("it is used by {}; pass --force to forget it anyway", users.join(", ")),
            },
            StateEditError::Pending { resource, kind } => EngineError::StateEdit {
                resource,
                message: format!(
                    "an interrupted run left a pending {kind} on it; run `up` or `refresh` first to reconcile it"
                ),
            },
            StateEditError::NameTaken { resource } => {
                EngineError::StateEdit { resource, message: "a resource with that name already exists".into() }
            }
            StateEditError::EmptyName { resource } => {
                EngineError::StateEdit { resource, message: "the new name is empty; give a resource name".into() }
            }
        }
    }
}

/// Why a stack's state may not be removed: it still records resources or pending operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "stack `{stack}` still has {resources} resource(s){}; run `destroy --stack {stack}` first, or pass --force to forget them (they are not deleted)",
    if *pending > 0 { format!(" and {pending} pending operation(s) from an interrupted run") } else { String::new() }
)]
pub struct StackNotEmpty {
    /// The stack.
    pub stack: String,
    /// Resources in its state.
    pub resources: usize,
    /// Operations from an interrupted run, not reconciled yet.
    pub pending: usize,
}

/// How [`remove`] treats a resource that is protected or that others depend on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoveOptions {
    /// Forget it even if it is protected or other resources depend on it.
    pub force: bool,
}

/// How [`check_remove_stack`] treats a stack that still has resources.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoveStackOptions {
    /// Remove the state even though it still records resources (they are forgotten, not deleted).
    pub force: bool,
}

/// The first pending operation on `urn`, as its kind in lower case.
fn pending_on(state: &StackState, urn: &Urn) -> Option<String> {
    state.pending.values().find(|p| &p.urn == urn).map(|p| format!("{:?}", p.kind).to_lowercase())
}

/// The records that forget resource `name` (the real object is not touched).
///
/// Refused when the resource is unknown or has a pending operation from an interrupted run
/// (even with `force`: the next run's reconciliation needs the resource), and, unless
/// `options.force`, when it is protected or another resource depends on it.
pub fn remove(state: &StackState, name: &str, options: RemoveOptions) -> Result<Vec<Record>, StateEditError> {
    let urn = Urn::from(name);
    let resource =
        state.resources.get(&urn).ok_or_else(|| StateEditError::UnknownResource { resource: name.to_owned() })?;
    if let Some(kind) = pending_on(state, &urn) {
        return Err(StateEditError::Pending { resource: name.to_owned(), kind });
    }
    if !options.force {
        if resource.protect {
            return Err(StateEditError::Protected { resource: name.to_owned() });
        }
        let users: Vec<String> = state
            .resources
            .values()
            .filter(|o| o.dependencies.contains(&urn))
            .map(|o| o.urn.as_str().to_owned())
            .collect();
        if !users.is_empty() {
            return Err(StateEditError::InUse { resource: name.to_owned(), users });
        }
    }
    Ok(vec![Record::Remove { op: None, urn }])
}

/// The records that rename resource `from` to `to` (dependents' recorded dependencies follow).
///
/// Refused when `from` is unknown, `to` is empty or already taken, or either name has a pending
/// operation from an interrupted run.
pub fn rename(state: &StackState, from: &str, to: &str) -> Result<Vec<Record>, StateEditError> {
    let (old, new) = (Urn::from(from), Urn::from(to));
    if !state.resources.contains_key(&old) {
        return Err(StateEditError::UnknownResource { resource: from.to_owned() });
    }
    if to.trim().is_empty() {
        return Err(StateEditError::EmptyName { resource: from.to_owned() });
    }
    if state.resources.contains_key(&new) {
        return Err(StateEditError::NameTaken { resource: to.to_owned() });
    }
    for (name, urn) in [(from, &old), (to, &new)] {
        if let Some(kind) = pending_on(state, urn) {
            return Err(StateEditError::Pending { resource: name.to_owned(), kind });
        }
    }
    Ok(vec![Record::Rename { from: old, to: new }])
}

/// Whether a stack's state may be removed: it must record no resources and no pending
/// operations, unless `options.force` (they are then forgotten; no real object is deleted).
pub fn check_remove_stack(state: &StackState, options: RemoveStackOptions) -> Result<(), StackNotEmpty> {
    if options.force || (state.resources.is_empty() && state.pending.is_empty()) {
        return Ok(());
    }
    Err(StackNotEmpty { stack: state.stack.clone(), resources: state.resources.len(), pending: state.pending.len() })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use stackwright_state::{OpKind, PendingOperation, ResourceState};

    use super::*;

    fn resource(name: &str, deps: &[&str], protect: bool) -> ResourceState {
        ResourceState {
            urn: Urn::from(name),
            type_token: "test:Item".into(),
            provider: "test".into(),
            id: format!("id-{name}"),
            inputs: json!({}),
            outputs: json!({}),
            dependencies: deps.iter().map(|d| Urn::from(*d)).collect(),
            protect,
            retain_on_delete: false,
        }
    }

    fn pending(name: &str, kind: OpKind) -> PendingOperation {
        PendingOperation {
            kind,
            urn: Urn::from(name),
            type_token: "test:Item".into(),
            provider: "test".into(),
            id: None,
            inputs: json!({}),
            started_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    /// `db` (protected) ← `api` ← `web`, and a lone `cache`.
    fn state() -> StackState {
        let mut s = StackState::new("dev");
        for r in [
            resource("db", &[], true),
            resource("api", &["db"], false),
            resource("web", &["api"], false),
            resource("cache", &[], false),
        ] {
            s.resources.insert(r.urn.clone(), r);
        }
        s
    }

    fn applied(mut s: StackState, records: &[Record]) -> StackState {
        records.iter().for_each(|r| s.apply(r));
        s
    }

    #[test]
    fn remove_forgets_an_unprotected_resource_nobody_uses() {
        let s = state();
        let records = remove(&s, "cache", RemoveOptions::default()).unwrap();
        let after = applied(s, &records);
        assert!(!after.resources.contains_key(&Urn::from("cache")));
        assert_eq!(after.resources.len(), 3);
    }

    #[test]
    fn remove_refuses_a_protected_resource_without_force_and_allows_it_with_force() {
        let s = state();
        // `db` is both protected and used; protection is what is reported.
        assert_eq!(
            remove(&s, "db", RemoveOptions::default()),
            Err(StateEditError::Protected { resource: "db".into() })
        );
        let records = remove(&s, "db", RemoveOptions { force: true }).unwrap();
        assert_eq!(records, vec![Record::Remove { op: None, urn: Urn::from("db") }]);
    }

    #[test]
    fn remove_refuses_a_resource_others_depend_on_and_names_them() {
        let s = state();
        let err = remove(&s, "api", RemoveOptions::default()).unwrap_err();
        assert_eq!(err, StateEditError::InUse { resource: "api".into(), users: vec!["web".into()] });
        assert!(err.to_string().contains("used by web") && err.to_string().contains("--force"), "{err}");
        assert!(remove(&s, "api", RemoveOptions { force: true }).is_ok());
    }

    #[test]
    fn remove_of_an_unknown_name_says_how_to_list_resources() {
        let err = remove(&state(), "nope", RemoveOptions { force: true }).unwrap_err();
        assert_eq!(err, StateEditError::UnknownResource { resource: "nope".into() });
        assert!(err.to_string().contains("state ls"), "{err}");
    }

    #[test]
    fn remove_refuses_a_resource_with_a_pending_operation_even_with_force() {
        let mut s = state();
        s.pending.insert("op-1".into(), pending("cache", OpKind::Update));
        let err = remove(&s, "cache", RemoveOptions { force: true }).unwrap_err();
        assert_eq!(err, StateEditError::Pending { resource: "cache".into(), kind: "update".into() });
        assert!(err.to_string().contains("run `up` or `refresh` first"), "{err}");
    }

    #[test]
    fn rename_moves_the_resource_and_its_dependents_follow() {
        let s = state();
        let records = rename(&s, "api", "backend").unwrap();
        let after = applied(s, &records);
        assert!(!after.resources.contains_key(&Urn::from("api")));
        assert_eq!(after.resources[&Urn::from("backend")].urn, Urn::from("backend"));
        assert_eq!(after.resources[&Urn::from("web")].dependencies, vec![Urn::from("backend")]);
    }

    #[test]
    fn rename_refuses_a_taken_empty_or_unknown_name() {
        let s = state();
        assert_eq!(rename(&s, "api", "web"), Err(StateEditError::NameTaken { resource: "web".into() }));
        assert_eq!(rename(&s, "api", " "), Err(StateEditError::EmptyName { resource: "api".into() }));
        assert_eq!(rename(&s, "nope", "x"), Err(StateEditError::UnknownResource { resource: "nope".into() }));
    }

    #[test]
    fn rename_refuses_when_either_name_has_a_pending_operation() {
        let mut s = state();
        s.pending.insert("op-1".into(), pending("cache", OpKind::Delete));
        assert!(
            matches!(rename(&s, "cache", "c2"), Err(StateEditError::Pending { resource, .. }) if resource == "cache")
        );
        // A pending create of `fresh` is not in `resources` yet, but the name is spoken for.
        s.pending.insert("op-2".into(), pending("fresh", OpKind::Create));
        assert!(
            matches!(rename(&s, "api", "fresh"), Err(StateEditError::Pending { resource, .. }) if resource == "fresh")
        );
    }

    #[test]
    fn a_stack_with_resources_or_pending_operations_is_removed_only_with_force() {
        let s = state();
        let err = check_remove_stack(&s, RemoveStackOptions::default()).unwrap_err();
        assert!(err.to_string().contains("still has 4 resource(s)") && err.to_string().contains("--force"), "{err}");
        assert!(check_remove_stack(&s, RemoveStackOptions { force: true }).is_ok());
        let mut only_pending = StackState::new("dev");
        only_pending.pending.insert("op-1".into(), pending("x", OpKind::Create));
        let err = check_remove_stack(&only_pending, RemoveStackOptions::default()).unwrap_err();
        assert!(err.to_string().contains("1 pending operation(s)"), "{err}");
        assert!(check_remove_stack(&StackState::new("dev"), RemoveStackOptions::default()).is_ok());
    }

    #[test]
    fn engine_errors_keep_the_command_line_wording() {
        let e: EngineError = StateEditError::InUse { resource: "api".into(), users: vec!["web".into()] }.into();
        assert_eq!(
            e.to_string(),
            "cannot change `api` in the state: it is used by web; pass --force to forget it anyway; nothing was changed"
        );
        let e: EngineError = StateEditError::UnknownResource { resource: "x".into() }.into();
        assert_eq!(e.to_string(), "no resource named `x` in the stack; `state ls` lists them");
    }
}
