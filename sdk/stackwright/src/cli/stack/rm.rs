//! `stack rm`: deletes a stack's state, keeping its configuration file.

use std::process::ExitCode;

use stackwright_state::{Backend, StackState};

use crate::cli::context::Context_;
use crate::state_edit::{RemoveStackOptions, check_remove_stack};

/// Deletes a stack's state, keeping its configuration file.
pub(super) async fn run(ctx: &Context_, name: String, force: bool) -> anyhow::Result<ExitCode> {
    let opened = ctx.open(&Some(name.clone())).await?;
    let lock = opened.backend.lock(&name, stackwright_state::LockInfo::current("stack rm")).await?;
    let state = opened.backend.load(&name).await?.unwrap_or_else(|| StackState::new(&name));
    check_remove_stack(&state, RemoveStackOptions { force })?;
    opened.backend.remove_stack(&name, lock.token()).await?;
    if std::fs::read_to_string(ctx.current_file()).unwrap_or_default().trim() == name {
        let _ = std::fs::remove_file(ctx.current_file());
    }
    println!("Removed the state of stack `{name}`; its configuration file {} is kept.", opened.config_path.display());
    Ok(ExitCode::SUCCESS)
}
