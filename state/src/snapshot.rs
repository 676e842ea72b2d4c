//! The snapshot file: self-describing JSON with a format name, a format version and a SHA-256
//! checksum over the exact bytes of the state, so corruption and truncation are detected.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::error::StateError;
use crate::model::{FORMAT_VERSION, StackState};
use crate::secrets::{Cipher, seal, unseal};

/// The format name written into every snapshot.
pub const FORMAT_NAME: &str = "stackwright-state";

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    format: &'static str,
    version: u32,
    checksum: String,
    state: &'a RawValue,
}

#[derive(Deserialize)]
struct EnvelopeHeader {
    format: Option<String>,
    version: Option<u32>,
}

#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    checksum: String,
    #[serde(borrow)]
    state: &'a RawValue,
}

/// The checksum text of some bytes: `sha256:<hex>`.
pub fn checksum(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Serializes a state into snapshot bytes, every secret sealed with `cipher`.
pub fn encode(state: &StackState, cipher: Option<&Cipher>) -> Result<Vec<u8>, StateError> {
    encode_with_serial(state, state.serial, cipher)
}

/// Like [`encode`], recording `serial` instead of the state's own: a backend writing the next
/// snapshot needs no copy of the whole state to change one number.
pub fn encode_with_serial(state: &StackState, serial: u64, cipher: Option<&Cipher>) -> Result<Vec<u8>, StateError> {
    let body = state_json(state, serial, cipher)?;
    let raw = RawValue::from_string(body).expect("serialized state is valid JSON");
    let envelope = EnvelopeOut {
        format: FORMAT_NAME,
        version: FORMAT_VERSION,
        checksum: checksum(raw.get().as_bytes()),
        state: &raw,
    };
    let mut out = serde_json::to_vec(&envelope).expect("envelope serializes");
    out.push(b'\n');
    Ok(out)
}

/// One part of the state as JSON text, secrets sealed.
fn sealed_json<T: Serialize>(part: &T, stack: &str, cipher: Option<&Cipher>) -> Result<String, StateError> {
    let mut value = serde_json::to_value(part).expect("state serializes");
    seal(&mut value, cipher).map_err(|source| StateError::Secrets { stack: stack.to_owned(), source })?;
    Ok(serde_json::to_string(&value).expect("state serializes"))
}

/// The state as JSON text, written one resource at a time: a JSON tree of the whole state costs
/// several times the state itself. The text is the same as that tree's: keys in the order a JSON
/// object sorts them, empty collections left out as the model's `skip_serializing_if` says.
fn state_json(state: &StackState, serial: u64, cipher: Option<&Cipher>) -> Result<String, StateError> {
    let stack = state.stack.as_str();
    let mut body = String::from("{");
    if !state.exports.is_empty() {
        body.push_str("\"exports\":");
        body.push_str(&sealed_json(&state.exports, stack, cipher)?);
        body.push(',');
    }
    if !state.pending.is_empty() {
        body.push_str("\"pending\":");
        body.push_str(&sealed_json(&state.pending, stack, cipher)?);
        body.push(',');
    }
    body.push_str("\"resources\":{");
    for (i, (urn, resource)) in state.resources.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&serde_json::to_string(urn).expect("names serialize"));
        body.push(':');
        body.push_str(&sealed_json(resource, stack, cipher)?);
    }
    body.push('}');
    if !state.retired.is_empty() {
        body.push_str(",\"retired\":");
        body.push_str(&sealed_json(&state.retired, stack, cipher)?);
    }
    body.push_str(&format!(",\"serial\":{serial},\"stack\":"));
    body.push_str(&serde_json::to_string(stack).expect("names serialize"));
    body.push('}');
    Ok(body)
}

/// Parses and verifies snapshot bytes read from `file` for stack `stack`.
pub fn decode(file: &Path, stack: &str, bytes: &[u8], cipher: Option<&Cipher>) -> Result<StackState, StateError> {
    let corrupt = |reason: String| StateError::Corrupt { file: file.to_owned(), reason };
    let header: EnvelopeHeader = serde_json::from_slice(bytes).map_err(|e| {
        corrupt(if e.is_eof() {
            format!("the file ends early (truncated?): {e}")
        } else {
            format!("not valid JSON: {e}")
        })
    })?;
    if header.format.as_deref() != Some(FORMAT_NAME) {
        return Err(corrupt(format!("it is not a Stackwright state file (expected \"format\": \"{FORMAT_NAME}\")")));
    }
    let version = header.version.ok_or_else(|| corrupt("it has no format version".into()))?;
    if version > FORMAT_VERSION {
        return Err(StateError::NewerFormat { file: file.to_owned(), found: version, supported: FORMAT_VERSION });
    }
    let envelope: EnvelopeIn<'_> =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("malformed envelope: {e}")))?;
    let actual = checksum(envelope.state.get().as_bytes());
    if actual != envelope.checksum {
        return Err(corrupt(format!("checksum mismatch (recorded {}, computed {actual})", envelope.checksum)));
    }
    let body = envelope.state.get();
    #[derive(Deserialize)]
    struct StackName {
        stack: String,
    }
    let found = serde_json::from_str::<StackName>(body).map(|s| s.stack).unwrap_or_default();
    if found != stack {
        return Err(StateError::WrongStack { file: file.to_owned(), found, expected: stack.to_owned() });
    }
    let schema = |e: serde_json::Error| corrupt(format!("the state does not match the schema: {e}"));
    // Without sealed secrets there is nothing to open: parse straight into the model.
    if !body.contains("\"ciphertext\"") {
        return serde_json::from_str(body).map_err(schema);
    }
    let mut value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| corrupt(format!("the state is not valid JSON: {e}")))?;
    unseal(&mut value, cipher).map_err(|source| StateError::Secrets { stack: stack.to_owned(), source })?;
    serde_json::from_value(value).map_err(schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StackState {
        let mut s = StackState::new("dev");
        s.serial = 7;
        s
    }

    #[test]
    fn round_trips() {
        let bytes = encode(&sample(), None).unwrap();
        assert_eq!(decode(Path::new("x"), "dev", &bytes, None).unwrap(), sample());
    }

    /// The snapshot text as a JSON tree of the whole state gives it.
    fn whole_tree(state: &StackState) -> String {
        serde_json::to_string(&serde_json::to_value(state).unwrap()).unwrap()
    }

    #[test]
    fn the_state_text_written_part_by_part_is_the_whole_trees_text() {
        use crate::model::{OpKind, PendingOperation, ResourceState};
        use serde_json::json;
        use stackwright_core::Urn;
        let mut state = StackState::new("dev \"quoted\"");
        state.serial = 3;
        assert_eq!(state_json(&state, 3, None).unwrap(), whole_tree(&state), "empty");
        let resource = |name: &str, deps: Vec<Urn>| ResourceState {
            urn: Urn::from(name),
            type_token: "test:Item".into(),
            provider: "test".into(),
            id: format!("id-{name}"),
            inputs: json!({"value": [1, {"z": null, "a": "x"}], "key": name}),
            outputs: json!({"value": 1.5}),
            dependencies: deps,
            protect: name == "b",
            retain_on_delete: name == "c",
        };
        for name in ["c", "a", "b\u{e9}"] {
            state.resources.insert(Urn::from(name), resource(name, vec![Urn::from("a")]));
        }
        assert_eq!(state_json(&state, 3, None).unwrap(), whole_tree(&state), "resources only");
        state.retired.push(resource("old", Vec::new()));
        state.exports.insert("url".into(), json!({"host": "h", "port": 1}));
        state.pending.insert(
            "op-1".into(),
            PendingOperation {
                kind: OpKind::Create,
                urn: Urn::from("d"),
                type_token: "test:Item".into(),
                provider: "test".into(),
                id: None,
                inputs: json!({}),
                started_at: "t".into(),
            },
        );
        assert_eq!(state_json(&state, 3, None).unwrap(), whole_tree(&state), "every part");
    }

    #[test]
    fn a_snapshot_with_another_serial_is_the_snapshot_of_the_state_with_that_serial() {
        let mut next = sample();
        next.serial = 8;
        assert_eq!(encode_with_serial(&sample(), 8, None).unwrap(), encode(&next, None).unwrap());
    }

    #[test]
    fn detects_truncation_tampering_newer_format_and_wrong_stack() {
        let bytes = encode(&sample(), None).unwrap();
        let p = Path::new("dev.json");
        let truncated = &bytes[..bytes.len() / 2];
        assert!(matches!(decode(p, "dev", truncated, None), Err(StateError::Corrupt { .. })));
        let tampered = String::from_utf8(bytes.clone()).unwrap().replace("\"serial\":7", "\"serial\":8");
        let err = decode(p, "dev", tampered.as_bytes(), None).unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        let newer = String::from_utf8(bytes.clone()).unwrap().replace("\"version\":1", "\"version\":9");
        assert!(matches!(decode(p, "dev", newer.as_bytes(), None), Err(StateError::NewerFormat { found: 9, .. })));
        assert!(matches!(decode(p, "prod", &bytes, None), Err(StateError::WrongStack { .. })));
        assert!(matches!(decode(p, "dev", b"{\"hello\":1}", None), Err(StateError::Corrupt { .. })));
    }
}
