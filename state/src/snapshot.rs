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
    let mut value = serde_json::to_value(state).expect("state serializes");
    seal(&mut value, cipher).map_err(|source| StateError::Secrets { stack: state.stack.clone(), source })?;
    let body = serde_json::to_string(&value).expect("state serializes");
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
