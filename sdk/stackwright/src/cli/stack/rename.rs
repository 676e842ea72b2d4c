//! `stack rename`: renames a stack — its state, history, configuration file and selection — in
//! one transaction, so that after a crash at any point the stack is wholly old or wholly new.

use std::process::ExitCode;

use anyhow::{Context, bail};
use stackwright_state::{Backend, StackState, validate_stack_name};

use crate::cli::context::Context_;

/// Renames a stack: its state, configuration file and selection.
pub(super) async fn run(ctx: &Context_, flag: &Option<String>, new_name: String) -> anyhow::Result<ExitCode> {
    validate_stack_name(&new_name)?;
    let opened = ctx.open(flag).await?;
    let old = opened.name.clone();
    if ctx.known_stacks().await?.contains(&new_name) {
        bail!("cannot rename `{old}` to `{new_name}`: a stack named `{new_name}` already exists");
    }
    let holder = stackwright_state::LockInfo::current("stack rename");
    let old_lock = opened.backend.lock(&old, holder.clone()).await?;
    let new_lock = opened.backend.lock(&new_name, holder).await?;
    if opened.backend.list_stacks().await?.contains(&new_name) || ctx.config_file(&new_name).exists() {
        bail!("cannot rename `{old}` to `{new_name}`: a stack named `{new_name}` already exists");
    }
    let state = opened.backend.load(&old).await?.unwrap_or_else(|| StackState::new(&old));
    if !state.pending.is_empty() {
        bail!("stack `{old}` has operations from an interrupted run; run `up` or `refresh` first");
    }
    let mut txn = opened.backend.transaction();
    opened.backend.stage_rename(&mut txn, &old, old_lock.token(), &new_name, new_lock.token()).await?;
    let new_config = ctx.config_file(&new_name);
    if opened.config_path.exists() {
        let text =
            std::fs::read(&opened.config_path).with_context(|| format!("reading {}", opened.config_path.display()))?;
        txn.write(&new_config, text);
        txn.remove(&opened.config_path);
    }
    if std::fs::read_to_string(ctx.current_file()).unwrap_or_default().trim() == old {
        txn.write(ctx.current_file(), new_name.clone().into_bytes());
    }
    txn.commit()?;
    println!("Renamed stack `{old}` to `{new_name}` (configuration now in {}).", new_config.display());
    Ok(ExitCode::SUCCESS)
}
