//! Saved plans: `preview --save-plan FILE` writes the plan with a fingerprint of the state it
//! was made from (secrets sealed); `up --plan FILE` applies it only if planning again from the
//! current program, configuration and state gives exactly the same steps.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use stackwright_state::{Cipher, StackState};

use crate::plan::Plan;

const FORMAT: &str = "stackwright-plan";
const VERSION: u32 = 1;

/// A plan saved to a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    format: String,
    version: u32,
    /// The stack it is for.
    pub stack: String,
    /// Whether it is a destroy.
    pub destroy: bool,
    /// Fingerprint of the state the plan was made from.
    pub state: String,
    /// The steps, without their full arguments (secrets sealed in the file).
    pub steps: Value,
}

/// Why a saved plan cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    /// The file could not be read or parsed.
    #[error("plan file {file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
}

/// A fingerprint of a state that ignores its serial and never depends on secret values.
pub fn fingerprint(state: &StackState) -> String {
    let mut copy = state.clone();
    copy.serial = 0;
    let value = stackwright_core::value::redact(&serde_json::to_value(&copy).expect("state serializes"));
    format!("sha256:{}", hex_digest(&serde_json::to_vec(&value).expect("value serializes")))
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The comparable form of a plan's steps.
pub(crate) fn steps_value(plan: &Plan) -> Value {
    let mut v = serde_json::to_value(&plan.steps).expect("steps serialize");
    if let Value::Array(steps) = &mut v {
        for s in steps {
            if let Value::Object(m) = s {
                m.remove("inputs");
            }
        }
    }
    v
}

impl SavedPlan {
    /// A saved form of `plan` for `stack`, made from a state with fingerprint `state`.
    pub fn new(stack: &str, destroy: bool, state: String, plan: &Plan) -> Self {
        SavedPlan {
            format: FORMAT.into(),
            version: VERSION,
            stack: stack.into(),
            destroy,
            state,
            steps: steps_value(plan),
        }
    }

    /// The file's bytes, secrets sealed with `cipher`.
    pub fn to_bytes(&self, cipher: Option<&Cipher>) -> Result<Vec<u8>, stackwright_state::SecretsError> {
        let mut v = serde_json::to_value(self).expect("plan serializes");
        stackwright_state::secrets::seal(&mut v, cipher)?;
        Ok(serde_json::to_vec_pretty(&v).expect("plan serializes"))
    }

    /// Reads a saved plan for `stack`.
    pub fn from_bytes(file: &Path, stack: &str, bytes: &[u8], cipher: Option<&Cipher>) -> Result<Self, SavedPlanError> {
        let invalid = |message: String| SavedPlanError::Invalid { file: file.display().to_string(), message };
        let mut v: Value = serde_json::from_slice(bytes).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
        if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(invalid("not a Stackwright plan file".into()));
        }
        let version = v.get("version").and_then(Value::as_u64).unwrap_or(0);
        if version > u64::from(VERSION) {
            return Err(invalid(format!(
                "format version {version} is newer than this Stackwright understands ({VERSION})"
            )));
        }
        stackwright_state::secrets::unseal(&mut v, cipher).map_err(|e| invalid(e.to_string()))?;
        let plan: SavedPlan = serde_json::from_value(v).map_err(|e| invalid(format!("malformed: {e}")))?;
        if plan.stack != stack {
            return Err(invalid(format!("it was saved for stack `{}`, not `{stack}`", plan.stack)));
        }
        Ok(plan)
    }

    /// Why `plan`, made now from a state with fingerprint `state`, differs from this one.
    pub(crate) fn mismatch(&self, destroy: bool, state: &str, plan: &Plan) -> Option<String> {
        if destroy != self.destroy {
            return Some(format!("it is a {} plan", if self.destroy { "destroy" } else { "update" }));
        }
        if state != self.state {
            return Some("the stack's state changed since the plan was saved (another update or a refresh ran)".into());
        }
        let now = steps_value(plan);
        if now == self.steps {
            return None;
        }
        let (saved, now) =
            (self.steps.as_array().cloned().unwrap_or_default(), now.as_array().cloned().unwrap_or_default());
        for (i, step) in now.iter().enumerate() {
            if saved.get(i) != Some(step) {
                let name = step.get("urn").and_then(Value::as_str).unwrap_or("?");
                return Some(format!(
                    "the program or its configuration changed since the plan was saved: `{name}` now plans differently"
                ));
            }
        }
        Some("the program changed since the plan was saved: it now has fewer steps".into())
    }
}
