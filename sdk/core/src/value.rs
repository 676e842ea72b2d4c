//! Property values are JSON with two in-band markers — *secret* and *unknown* — so that a
//! value keeps its secret-ness and its "known after apply" status through every transformation.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
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

/// Secrets shorter than this many bytes are not scrubbed from free text: replacing every `ab`
/// or `1` in a message would destroy the message and reveal the secret by where the gaps are.
/// Such secrets are still redacted wherever the engine formats values itself (markers,
/// [`crate::Secret`], `Debug` of inputs, outputs and state).
pub const MIN_SCRUB_LEN: usize = 3;

/// Characters a percent-encoder for a URI component (RFC 3986) leaves as they are.
const URI_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
/// What JavaScript's `encodeURIComponent` leaves as it is.
const JS_URI_COMPONENT: &AsciiSet = &URI_UNRESERVED.remove(b'!').remove(b'*').remove(b'\'').remove(b'(').remove(b')');

/// The text between the quotes of `s` as a JSON string (serde_json's escaping).
fn json_escaped(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default().to_owned()
}

/// The text between the quotes of `s` formatted with `{:?}`.
fn debug_escaped(s: &str) -> String {
    let quoted = format!("{s:?}");
    quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default().to_owned()
}

/// `s` with the characters `escape` picks written as `\uXXXX` (UTF-16 units, as JSON
/// encoders with an ASCII-only or HTML-safe option write them).
fn unicode_escaped(s: &str, upper: bool, escape: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    let mut units = [0u16; 2];
    for c in s.chars() {
        if escape(c) {
            for unit in c.encode_utf16(&mut units) {
                if upper {
                    out.push_str(&format!("\\u{unit:04X}"));
                } else {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Percent-encoded text with lower-case hex digits (encoders differ in case; the crate writes
/// upper case).
fn lower_hex_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut hex_left = 0;
    for c in encoded.chars() {
        if hex_left > 0 {
            out.push(c.to_ascii_lowercase());
            hex_left -= 1;
        } else {
            if c == '%' {
                hex_left = 2;
            }
            out.push(c);
        }
    }
    out
}

/// The forms in which `secret` can appear in text from elsewhere: as is, JSON- and
/// `{:?}`-escaped (once and twice), with `\uXXXX` escapes, with doubled backslashes, and
/// percent-encoded (`%20` and `+` for spaces, either case of hex).
pub fn escaped_forms(secret: &str) -> Vec<String> {
    let json = json_escaped(secret);
    let html = |c: char| matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}');
    let mut forms = vec![
        secret.to_owned(),
        secret.replace('\\', "\\\\"),
        debug_escaped(secret),
        json_escaped(&json),
        debug_escaped(&json),
        json.clone(),
    ];
    for upper in [false, true] {
        forms.push(unicode_escaped(&json, upper, |c| !c.is_ascii()));
        forms.push(unicode_escaped(&json, upper, html));
        forms.push(unicode_escaped(&json, upper, |c| !c.is_ascii() || html(c)));
    }
    for set in [NON_ALPHANUMERIC, URI_UNRESERVED, JS_URI_COMPONENT] {
        let encoded = utf8_percent_encode(secret, set).to_string();
        forms.push(lower_hex_escapes(&encoded));
        forms.push(encoded);
    }
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    forms.push(lower_hex_escapes(&form));
    forms.push(form);
    forms.sort();
    forms.dedup();
    forms
}

/// Replaces every occurrence of any of `secrets` in `text` by `[secret]`, in each of its
/// [`escaped_forms`], longest first, so that a provider's message that quotes a secret
/// inside JSON, a URL or a `{:?}` rendering is scrubbed too. Secrets shorter than
/// [`MIN_SCRUB_LEN`] bytes are left alone (see there).
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut forms: Vec<String> =
        secrets.iter().filter(|s| s.len() >= MIN_SCRUB_LEN).flat_map(|s| escaped_forms(s)).collect();
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    forms.dedup();
    let mut out = text.to_owned();
    for form in forms {
        if out.contains(form.as_str()) {
            out = out.replace(form.as_str(), SECRET_PLACEHOLDER);
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

    /// Every character that some encoding escapes: quotes, backslash, newline, tab, non-ASCII
    /// (two bytes and an astral-plane emoji), and what URL and HTML-safe encodings touch.
    const CANARY: &str = "canary-\"q\"\\b\ne\tx é🦀 &=+ %/<>";

    fn scrubbed(text: &str) -> String {
        scrub(text, &[CANARY.to_owned()])
    }

    fn assert_scrubbed(form: &str, encoded: &str) {
        assert_ne!(encoded, CANARY, "{form}: the test must use an escaped form");
        let text = format!("error: request {{{encoded}}} failed");
        assert_eq!(scrubbed(&text), "error: request {[secret]} failed", "{form}: {encoded}");
    }

    #[test]
    fn scrub_replaces_the_json_escaped_form() {
        let quoted = serde_json::to_string(CANARY).unwrap();
        assert_scrubbed("json", &quoted[1..quoted.len() - 1]);
        // A whole JSON document quoting the secret, as an API error body would.
        let body = serde_json::to_string(&json!({"error": {"request": {"password": CANARY}}})).unwrap();
        assert_eq!(scrubbed(&body), r#"{"error":{"request":{"password":"[secret]"}}}"#);
    }

    #[test]
    fn scrub_replaces_the_debug_form() {
        let debug = format!("{CANARY:?}");
        assert_scrubbed("debug", &debug[1..debug.len() - 1]);
        assert_eq!(scrubbed(&format!("{:?}", Some(CANARY))), "Some(\"[secret]\")");
    }

    #[test]
    fn scrub_replaces_unicode_escapes_in_both_cases_of_hex() {
        let quoted = serde_json::to_string(CANARY).unwrap();
        let json = &quoted[1..quoted.len() - 1];
        let lower = json.replace('é', "\\u00e9").replace('🦀', "\\ud83e\\udd80");
        let upper = json.replace('é', "\\u00E9").replace('🦀', "\\uD83E\\uDD80");
        assert_scrubbed("unicode, lower-case hex", &lower);
        assert_scrubbed("unicode, upper-case hex", &upper);
        // Go's encoder escapes <, > and & too.
        let html = json.replace('&', "\\u0026").replace('<', "\\u003c").replace('>', "\\u003e");
        assert_scrubbed("html-safe", &html);
        assert_scrubbed(
            "html-safe and ascii-only",
            &lower.replace('&', "\\u0026").replace('<', "\\u003c").replace('>', "\\u003e"),
        );
    }

    #[test]
    fn scrub_replaces_doubled_backslashes_and_double_json_escaping() {
        assert_scrubbed("doubled backslashes", &CANARY.replace('\\', "\\\\"));
        let once = serde_json::to_string(CANARY).unwrap();
        let twice = serde_json::to_string(&json!({"body": once})).unwrap();
        assert_eq!(scrubbed(&twice), r#"{"body":"\"[secret]\""}"#);
    }

    #[test]
    fn scrub_replaces_percent_encoded_forms() {
        let all = percent_encoding::utf8_percent_encode(CANARY, NON_ALPHANUMERIC).to_string();
        assert!(all.contains("%20") && all.contains("%C3%A9"), "{all}");
        assert_scrubbed("percent, %20", &all);
        assert_scrubbed("percent, lower-case hex", &lower_hex_escapes(&all));
        let form: String = form_urlencoded::byte_serialize(CANARY.as_bytes()).collect();
        assert!(form.contains('+') && !form.contains("%20"), "{form}");
        assert_scrubbed("form, + for space", &form);
        let component = percent_encoding::utf8_percent_encode(CANARY, URI_UNRESERVED).to_string();
        assert_scrubbed("URI component", &component);
        // In a query string, and in a URL inside a JSON body.
        let url = format!("https://api.example/v1?token={form}&x=1");
        assert_eq!(scrubbed(&url), "https://api.example/v1?token=[secret]&x=1");
        let body = serde_json::to_string(&json!({"url": format!("https://h/{all}")})).unwrap();
        assert_eq!(scrubbed(&body), r#"{"url":"https://h/[secret]"}"#);
    }

    #[test]
    fn scrub_replaces_secrets_nested_in_json_values() {
        let mut secrets = vec![];
        secret_strings(&json!({"a": secret(json!({"deep": [CANARY, 12345]}))}), &mut secrets);
        assert_eq!(secrets, vec![CANARY.to_owned(), "12345".to_owned()]);
        let echoed = serde_json::to_string(&json!({"deep": [CANARY, 12345]})).unwrap();
        assert_eq!(scrub(&echoed, &secrets), r#"{"deep":["[secret]",[secret]]}"#);
    }

    #[test]
    fn scrub_goes_longest_first_so_no_part_of_a_longer_secret_is_left() {
        let secrets = vec!["abc".to_owned(), "abcdef-long".to_owned()];
        assert_eq!(scrub("x abcdef-long y abc", &secrets), "x [secret] y [secret]");
    }

    #[test]
    fn scrub_leaves_secrets_shorter_than_the_minimum() {
        // Documented limit: a one- or two-byte secret cannot be scrubbed from text.
        let secrets = vec!["ab".to_owned(), "x".to_owned()];
        assert_eq!(scrub("a cab, x", &secrets), "a cab, x");
        assert_eq!(scrub("abc", &["abc".to_owned()]), SECRET_PLACEHOLDER);
    }

    #[test]
    fn scrub_replaces_secret_substrings() {
        let mut secrets = vec![];
        secret_strings(&json!({"x": secret(json!("hunter22"))}), &mut secrets);
        assert_eq!(scrub("login failed for hunter22!", &secrets), "login failed for [secret]!");
    }
}
