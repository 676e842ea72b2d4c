//! The snapshot file: self-describing JSON with a format name, a format version and a SHA-256
//! checksum over the exact bytes of the state, so corruption and truncation are detected.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::error::StateError;
use crate::model::{FORMAT_VERSION, StackState};

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

/// Serializes a state into snapshot bytes.
pub fn encode(state: &StackState) -> Vec<u8> {
    let body = serde_json::to_string(state).expect("state serializes");
    let raw = RawValue::from_string(body).expect("serialized state is valid JSON");
    let envelope = EnvelopeOut {
        format: FORMAT_NAME,
        version: FORMAT_VERSION,
        checksum: checksum(raw.get().as_bytes()),
        state: &raw,
    };
    let mut out = serde_json::to_vec(&envelope).expect("envelope serializes");
    out.push(b'\n');
    out
}

/// Parses and verifies snapshot bytes read from `file` for stack `stack`.
pub fn decode(file: &Path, stack: &str, bytes: &[u8]) -> Result<StackState, StateError> {
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
    let state: StackState = serde_json::from_str(envelope.state.get())
        .map_err(|e| corrupt(format!("the state does not match the schema: {e}")))?;
    if state.stack != stack {
        return Err(StateError::WrongStack { file: file.to_owned(), found: state.stack, expected: stack.to_owned() });
    }
    Ok(state)
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
        let bytes = encode(&sample());
        assert_eq!(decode(Path::new("x"), "dev", &bytes).unwrap(), sample());
    }

    #[test]
    fn detects_truncation_tampering_newer_format_and_wrong_stack() {
        let bytes = encode(&sample());
        let p = Path::new("dev.json");
        let truncated = &bytes[..bytes.len() / 2];
        assert!(matches!(decode(p, "dev", truncated), Err(StateError::Corrupt { .. })));
        let tampered = String::from_utf8(bytes.clone()).unwrap().replace("\"serial\":7", "\"serial\":8");
        let err = decode(p, "dev", tampered.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        let newer = String::from_utf8(bytes.clone()).unwrap().replace("\"version\":1", "\"version\":9");
        assert!(matches!(decode(p, "dev", newer.as_bytes()), Err(StateError::NewerFormat { found: 9, .. })));
        assert!(matches!(decode(p, "prod", &bytes), Err(StateError::WrongStack { .. })));
        assert!(matches!(decode(p, "dev", b"{\"hello\":1}"), Err(StateError::Corrupt { .. })));
    }
}
