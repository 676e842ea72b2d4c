//! Property values are JSON with two in-band markers — *secret* and *unknown* — so that a
//! value keeps its secret-ness and its "known after apply" status through every transformation.

pub use serde_json::Value;
use serde_json::{Map, json};

/// The key that marks a JSON object as a Stackwright marker rather than user data.
pub const MARKER_KEY: &str = "$stackwright";

/// Wraps a value as secret. Wrapping an already secret value returns it unchanged.
pub fn secret(value: Value) -> Value {
    if is_secret(&value) {
        return value;
    }
    json!({ MARKER_KEY: "secret", "value": value })
}

/// The marker for a value that is only known after apply.
pub fn unknown() -> Value {
    json!({ MARKER_KEY: "unknown" })
}

fn marker(value: &Value) -> Option<&str> {
    match value {
        Value::Object(map) => map.get(MARKER_KEY).and_then(Value::as_str),
        _ => None,
    }
}

/// Whether this value (at its top level) is the unknown marker.
pub fn is_unknown(value: &Value) -> bool {
    marker(value) == Some("unknown")
}

/// Whether this value (at its top level) is a secret wrapper.
pub fn is_secret(value: &Value) -> bool {
    marker(value) == Some("secret")
}

/// The plain value inside a secret wrapper, if this is one.
pub fn secret_inner(value: &Value) -> Option<&Value> {
    if is_secret(value) { value.get("value") } else { None }
}

/// Whether an unknown marker occurs anywhere in the value.
pub fn contains_unknown(value: &Value) -> bool {
    if is_unknown(value) {
        return true;
    }
    match value {
        Value::Array(items) => items.iter().any(contains_unknown),
        Value::Object(map) => map.values().any(contains_unknown),
        _ => false,
    }
}

/// Whether a secret wrapper occurs anywhere in the value.
pub fn contains_secret(value: &Value) -> bool {
    if is_secret(value) {
        return true;
    }
    match value {
        Value::Array(items) => items.iter().any(contains_secret),
        Value::Object(map) => map.values().any(contains_secret),
        _ => false,
    }
}

/// Removes every secret wrapper, returning the plain value and whether any secret was inside.
pub fn reveal(value: Value) -> (Value, bool) {
    let mut found = false;
    let plain = reveal_inner(value, &mut found);
    (plain, found)
}

fn reveal_inner(value: Value, found: &mut bool) -> Value {
    if is_secret(&value) {
        *found = true;
        let inner = match value {
            Value::Object(mut map) => map.remove("value").unwrap_or(Value::Null),
            _ => Value::Null,
        };
        return reveal_inner(inner, found);
    }
    match value {
        Value::Array(items) => Value::Array(items.into_iter().map(|v| reveal_inner(v, found)).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, reveal_inner(v, found))).collect::<Map<_, _>>())
        }
        other => other,
    }
}

/// The text shown in place of a secret in every rendering.
pub const SECRET_PLACEHOLDER: &str = "[secret]";
/// The text shown in place of a value that is only known after apply.
pub const UNKNOWN_PLACEHOLDER: &str = "(known after apply)";

/// Replaces secrets by `[secret]` and unknowns by `(known after apply)` for display.
pub fn redact(value: &Value) -> Value {
    if is_secret(value) {
        return Value::String(SECRET_PLACEHOLDER.to_owned());
    }
    if is_unknown(value) {
        return Value::String(UNKNOWN_PLACEHOLDER.to_owned());
    }
    match value {
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), redact(v))).collect()),
        other => other.clone(),
    }
}

/// Collects every plain string found inside secret wrappers, so that text from elsewhere (a
/// provider's error message, say) can be scrubbed of them.
pub fn secret_strings(value: &Value, into: &mut Vec<String>) {
    if let Some(inner) = secret_inner(value) {
        let (plain, _) = reveal(inner.clone());
        leaf_strings(&plain, into);
        return;
    }
    match value {
        Value::Array(items) => items.iter().for_each(|v| secret_strings(v, into)),
        Value::Object(map) => map.values().for_each(|v| secret_strings(v, into)),
        _ => {}
    }
}

fn leaf_strings(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::String(s) if !s.is_empty() => into.push(s.clone()),
        Value::Number(n) => into.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| leaf_strings(v, into)),
        Value::Object(map) => map.values().for_each(|v| leaf_strings(v, into)),
        _ => {}
    }
}

/// Replaces every occurrence of any of `secrets` in `text` by `[secret]`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| s.len() >= 3).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for s in sorted {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), SECRET_PLACEHOLDER);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reveal_strips_nested_secrets_and_reports_them() {
        let v = json!({"a": secret(json!("pw")), "b": [1, secret(json!({"c": 2}))]});
        let (plain, found) = reveal(v);
        assert!(found);
        assert_eq!(plain, json!({"a": "pw", "b": [1, {"c": 2}]}));
        let (_, found) = reveal(json!({"a": 1}));
        assert!(!found);
    }

    #[test]
    fn redact_hides_secrets_and_unknowns() {
        let v = json!({"a": secret(json!("pw")), "b": unknown()});
        assert_eq!(redact(&v), json!({"a": "[secret]", "b": "(known after apply)"}));
    }

    #[test]
    fn scrub_replaces_secret_substrings() {
        let mut secrets = vec![];
        secret_strings(&json!({"x": secret(json!("hunter22"))}), &mut secrets);
        assert_eq!(scrub("login failed for hunter22!", &secrets), "login failed for [secret]!");
    }
}
