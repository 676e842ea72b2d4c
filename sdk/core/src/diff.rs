//! Property-level diffs between two property values: which paths were added, deleted or
//! changed, and whether a change forces the resource to be replaced.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::path::{Path, Segment};
use crate::value::{is_secret, is_unknown};

/// What happened at one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// The path exists only in the new value.
    Add,
    /// The path exists only in the old value.
    Delete,
    /// The path exists in both with different values.
    Update,
}

/// One property-level change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyChange {
    /// Where the change is.
    pub path: Path,
    /// Whether it is an addition, a deletion or an update.
    pub kind: ChangeKind,
    /// The old value (absent for additions). May be a secret wrapper.
    pub old: Option<Value>,
    /// The new value (absent for deletions). May be a secret wrapper or the unknown marker.
    pub new: Option<Value>,
    /// Whether this change forces the resource to be replaced.
    pub replaces: bool,
}

/// Which paths a diff skips and which force replacement.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// Changes at or below these paths are not reported.
    pub ignore: Vec<Path>,
    /// Changes at or below these paths force replacement.
    pub replace: Vec<Path>,
}

/// Computes the property-level changes that turn `old` into `new`.
///
/// Objects are compared key by key and arrays index by index; secret wrappers and unknown
/// markers are compared as whole values, so a change inside a secret is reported at the secret.
pub fn diff(old: &Value, new: &Value, options: &DiffOptions) -> Vec<PropertyChange> {
    let mut out = Vec::new();
    walk(&mut Path::root(), old, new, options, &mut out);
    out
}

fn ignored(path: &Path, options: &DiffOptions) -> bool {
    options.ignore.iter().any(|p| path.starts_with(p))
}

fn is_leaf(v: &Value) -> bool {
    is_secret(v) || is_unknown(v) || !(v.is_object() || v.is_array())
}

fn push(
    out: &mut Vec<PropertyChange>,
    path: &Path,
    kind: ChangeKind,
    old: Option<&Value>,
    new: Option<&Value>,
    options: &DiffOptions,
) {
    if ignored(path, options) {
        return;
    }
    let replaces = options.replace.iter().any(|p| path.starts_with(p) || p.starts_with(path));
    out.push(PropertyChange { path: path.clone(), kind, old: old.cloned(), new: new.cloned(), replaces });
}

fn walk(path: &mut Path, old: &Value, new: &Value, options: &DiffOptions, out: &mut Vec<PropertyChange>) {
    if ignored(path, options) {
        return;
    }
    if is_unknown(new) {
        push(out, path, ChangeKind::Update, Some(old), Some(new), options);
        return;
    }
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) if !is_leaf(old) && !is_leaf(new) => {
            for (k, va) in a {
                path.0.push(Segment::Key(k.clone()));
                match b.get(k) {
                    Some(vb) => walk(path, va, vb, options, out),
                    None => push(out, path, ChangeKind::Delete, Some(va), None, options),
                }
                path.0.pop();
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    path.0.push(Segment::Key(k.clone()));
                    push(out, path, ChangeKind::Add, None, Some(vb), options);
                    path.0.pop();
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                path.0.push(Segment::Index(i));
                match (a.get(i), b.get(i)) {
                    (Some(va), Some(vb)) => walk(path, va, vb, options, out),
                    (Some(va), None) => push(out, path, ChangeKind::Delete, Some(va), None, options),
                    (None, Some(vb)) => push(out, path, ChangeKind::Add, None, Some(vb), options),
                    (None, None) => {}
                }
                path.0.pop();
            }
        }
        _ => push(out, path, ChangeKind::Update, Some(old), Some(new), options),
    }
}

/// Applies changes produced by [`diff`] to `base`.
///
/// Additions and updates are applied in order (array additions are at the tail, in ascending
/// index order); deletions are applied last, deepest and highest index first, so that removing
/// array elements never shifts an element another change refers to.
pub fn apply_changes(base: &Value, changes: &[PropertyChange]) -> Value {
    let mut out = base.clone();
    for change in changes.iter().filter(|c| c.kind != ChangeKind::Delete) {
        if let Some(new) = &change.new {
            change.path.set(&mut out, new.clone());
        }
    }
    let mut deletes: Vec<&PropertyChange> = changes.iter().filter(|c| c.kind == ChangeKind::Delete).collect();
    deletes.sort_by(|a, b| b.path.cmp(&a.path));
    for change in deletes {
        change.path.remove(&mut out);
    }
    out
}

/// Whether any of the changes forces replacement.
pub fn replaces(changes: &[PropertyChange]) -> bool {
    changes.iter().any(|c| c.replaces)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{secret, unknown};
    use proptest::prelude::*;
    use serde_json::json;

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-50i64..50).prop_map(|n| json!(n)),
            "[a-c]{0,3}".prop_map(Value::String),
            "[a-c]{1,3}".prop_map(|s| secret(Value::String(s))),
        ];
        leaf.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-e]", inner, 0..5).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_paths() -> impl Strategy<Value = Vec<Path>> {
        prop::collection::vec(
            prop::collection::vec(
                prop_oneof!["[a-e]".prop_map(Segment::Key), (0usize..4).prop_map(Segment::Index)],
                1..3,
            )
            .prop_map(Path),
            0..3,
        )
    }

    proptest! {
        #[test]
        fn diff_of_a_value_with_itself_is_empty(a in arb_value()) {
            prop_assert!(diff(&a, &a, &DiffOptions::default()).is_empty());
        }

        #[test]
        fn applying_the_diff_yields_the_new_value(a in arb_value(), b in arb_value()) {
            let changes = diff(&a, &b, &DiffOptions::default());
            prop_assert_eq!(apply_changes(&a, &changes), b.clone());
            prop_assert_eq!(changes.is_empty(), a == b);
        }

        #[test]
        fn ignored_paths_never_appear(a in arb_value(), b in arb_value(), ignore in arb_paths()) {
            let options = DiffOptions { ignore: ignore.clone(), replace: vec![] };
            for change in diff(&a, &b, &options) {
                prop_assert!(!ignore.iter().any(|p| change.path.starts_with(p)), "{} is ignored", change.path);
            }
        }

        #[test]
        fn replacement_is_flagged_exactly_under_replace_paths(a in arb_value(), b in arb_value(), replace in arb_paths()) {
            let options = DiffOptions { ignore: vec![], replace: replace.clone() };
            for change in diff(&a, &b, &options) {
                let expected = replace.iter().any(|p| change.path.starts_with(p) || p.starts_with(&change.path));
                prop_assert_eq!(change.replaces, expected);
            }
        }
    }

    #[test]
    fn unknown_new_values_are_always_changes() {
        let changes = diff(&json!({"a": 1}), &json!({"a": unknown()}), &DiffOptions::default());
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path.to_string(), "a");
    }

    #[test]
    fn a_change_inside_a_secret_is_reported_at_the_secret() {
        let old = json!({"pw": secret(json!({"x": 1}))});
        let new = json!({"pw": secret(json!({"x": 2}))});
        let changes = diff(&old, &new, &DiffOptions::default());
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path.to_string(), "pw");
    }
}
