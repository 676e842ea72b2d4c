//! `stack rename`: renames a stack: its state, configuration file and selection.

use std::process::ExitCode;

use anyhow::{Context, bail};
use stackwright_state::{Backend, StackState, validate_stack_name};

use crate::cli::context::{Context_, write_current};

/// Renames a stack: its state, configuration file and selection.
pub(super) async fn run(ctx: &Context_, flag: &Option<String>, new_name: String) -> anyhow::Result<ExitCode> {
    validate_stack_name(&new_name)?;
    let opened = ctx.open(flag).await?;
    let old = opened.name.clone();
    if ctx.known_stacks().await?.contains(&new_name) {
        bail!("cannot rename `{old}` to `{new_name}`: a stack named `{new_name}` already exists");
    }
    let _lock = opened.backend.lock(&old, stackwright_state::LockInfo::current("stack rename")).await?;
    let mut state = opened.backend.load(&old).await?.unwrap_or_else(|| StackState::new(&old));
    if !state.pending.is_empty() {
        bail!("stack `{old}` has operations from an interrupted run; run `up` or `refresh` first");
    }
    state.stack = new_name.clone();
    let new_config = ctx.config_file(&new_name);
    if opened.config_path.exists() {
        std::fs::rename(&opened.config_path, &new_config)
            .with_context(|| format!("renaming {}", opened.config_path.display()))?;
    }
    opened.backend.write_snapshot(&state).await?;
    opened.backend.remove_stack(&old).await?;
    if std::fs::read_to_string(ctx.current_file()).unwrap_or_default().trim() == old {
        write_current(ctx, &new_name)?;
    }
    println!("Renamed stack `{old}` to `{new_name}` (configuration now in {}).", new_config.display());
    Ok(ExitCode::SUCCESS)
}
