//! `state …`: list, forget (`rm`) and rename (`mv`) resources in the stack's state.

use std::process::ExitCode;

use stackwright_state::{Backend, StackState};

use crate::state_edit::{self, RemoveOptions};

use super::args::StateCommand;
use super::context::Context_;

/// Runs one `state` subcommand.
pub(super) async fn run(ctx: &Context_, flag: &Option<String>, command: StateCommand) -> anyhow::Result<ExitCode> {
    match command {
        StateCommand::Ls => ls(ctx, flag).await,
        StateCommand::Rm { name, force } => rm(ctx, flag, name, force).await,
        StateCommand::Mv { from, to } => mv(ctx, flag, from, to).await,
    }
}

/// Lists the resources, replaced resources awaiting delete, and pending operations.
async fn ls(ctx: &Context_, flag: &Option<String>) -> anyhow::Result<ExitCode> {
    let opened = ctx.open_read_only(flag).await?;
    let stack = opened.name.clone();
    let state = opened.backend.load(&stack).await?.unwrap_or_else(|| StackState::new(&stack));
    for r in state.resources.values() {
        let flags = [(r.protect, " [protected]"), (r.retain_on_delete, " [retain]")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, t)| *t)
            .collect::<String>();
        println!("{:<32} {:<24} {}{flags}", r.urn, r.type_token, r.id);
    }
    for r in &state.retired {
        println!("{:<32} {:<24} {} [replaced, awaiting delete]", r.urn, r.type_token, r.id);
    }
    for (op, p) in &state.pending {
        println!("{:<32} {:<24} pending {:?} ({op})", p.urn, p.type_token, p.kind);
    }
    Ok(ExitCode::SUCCESS)
}

/// Forgets a resource; the rules (protection, dependents, `--force`) are in [`state_edit::remove`].
async fn rm(ctx: &Context_, flag: &Option<String>, name: String, force: bool) -> anyhow::Result<ExitCode> {
    let opened = ctx.open(flag).await?;
    let stack = opened.name.clone();
    ctx.engine(&opened, 1, "state rm", false)
        .edit_state(&stack, |state| Ok(state_edit::remove(state, &name, RemoveOptions { force })?))
        .await?;
    println!("Removed `{name}` from the state of stack `{stack}`; the real object was not touched.");
    Ok(ExitCode::SUCCESS)
}

/// Renames a resource in the state; the checks are in [`state_edit::rename`].
async fn mv(ctx: &Context_, flag: &Option<String>, from: String, to: String) -> anyhow::Result<ExitCode> {
    let opened = ctx.open(flag).await?;
    let stack = opened.name.clone();
    ctx.engine(&opened, 1, "state mv", false)
        .edit_state(&stack, |state| Ok(state_edit::rename(state, &from, &to)?))
        .await?;
    println!("Renamed `{from}` to `{to}` in the state of stack `{stack}`.");
    Ok(ExitCode::SUCCESS)
}
