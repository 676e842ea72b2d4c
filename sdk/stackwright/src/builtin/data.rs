//! `Data`: stores an input in state and echoes it as its output; replaced when its triggers
//! change. Useful for wiring, for tests and for benchmarks of the engine itself.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stackwright_core::{
    Args, Created, Handler, Input, Observed, OpContext, Outputs, PropertyChange, ProviderError, Resource, Stored,
};

/// The `builtin:Data` resource type.
pub struct Data;

impl Resource for Data {
    const TYPE: &'static str = "builtin:Data";
    type Args = DataArgs;
    type Outputs = DataOutputs;
}

/// Arguments of `Data`.
#[derive(Clone, Default, Serialize, Deserialize, Args)]
pub struct DataArgs {
    /// The value to store; it is echoed as `output`.
    #[serde(default)]
    pub input: Input<Value>,
    /// Any change to this value replaces the resource.
    #[sw(replace)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers_replace: Option<Input<Value>>,
}

impl DataArgs {
    /// Arguments storing `input`.
    pub fn new(input: impl Into<Input<Value>>) -> Self {
        DataArgs { input: input.into(), triggers_replace: None }
    }

    /// Replaces the resource whenever `triggers` changes.
    pub fn triggers_replace(mut self, triggers: impl Into<Input<Value>>) -> Self {
        self.triggers_replace = Some(triggers.into());
        self
    }
}

/// Outputs of `Data`.
#[derive(Clone, Serialize, Deserialize, Outputs)]
pub struct DataOutputs {
    /// The stored input.
    pub output: Value,
}

/// The handler of `Data`: everything lives in state.
pub struct DataHandler;

fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[async_trait]
impl Handler<Data> for DataHandler {
    async fn create(&self, _ctx: &OpContext, args: &DataArgs) -> Result<Created<DataOutputs>, ProviderError> {
        Ok(Created { id: new_id(), outputs: DataOutputs { output: args.input.get().clone() } })
    }

    async fn read(&self, _ctx: &OpContext, stored: &Stored<Data>) -> Result<Option<Observed<Data>>, ProviderError> {
        Ok(Some(Observed { id: stored.id.clone(), args: stored.args.clone(), outputs: stored.outputs.clone() }))
    }

    async fn update(
        &self,
        _ctx: &OpContext,
        _stored: &Stored<Data>,
        args: &DataArgs,
        _changes: &[PropertyChange],
    ) -> Result<DataOutputs, ProviderError> {
        Ok(DataOutputs { output: args.input.get().clone() })
    }

    async fn delete(&self, _ctx: &OpContext, _stored: &Stored<Data>) -> Result<(), ProviderError> {
        Ok(())
    }

    fn has_side_effects(&self) -> bool {
        false
    }
}
