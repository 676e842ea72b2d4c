//! `state …`: list, forget (`rm`) and rename (`mv`) resources in the stack's state.

use std::process::ExitCode;

use stackwright_state::{Backend, StackState};

use crate::error::EngineError;

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
    let opened = ctx.open(flag).await?;
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

/// Forgets a resource, refusing protected or depended-on ones without `--force`.
async fn rm(ctx: &Context_, flag: &Option<String>, name: String, force: bool) -> anyhow::Result<ExitCode> {
    let opened = ctx.open(flag).await?;
    let stack = opened.name.clone();
    let urn = stackwright_core::Urn::from(name.as_str());
    ctx.engine(&opened, 1, "state rm", false)
        .edit_state(&stack, |state| {
            let r = state.resources.get(&urn).ok_or_else(|| EngineError::UnknownResource(name.clone()))?;
            let users: Vec<&str> =
                state.resources.values().filter(|o| o.dependencies.contains(&urn)).map(|o| o.urn.as_str()).collect();
            if !force && (r.protect || !users.is_empty()) {
                return Err(EngineError::StateEdit {
                    resource: name.clone(),
                    message: format!(
                        "it is {}; pass --force to forget it anyway",
                        if r.protect { "protected".to_string() } else { format!("used by {}", users.join(", ")) }
                    ),
                });
            }
            Ok(vec![stackwright_state::Record::Remove { op: None, urn: urn.clone() }])
        })
        .await?;
    println!("Removed `{name}` from the state of stack `{stack}`; the real object was not touched.");
    Ok(ExitCode::SUCCESS)
}

/// Renames a resource in the state.
async fn mv(ctx: &Context_, flag: &Option<String>, from: String, to: String) -> anyhow::Result<ExitCode> {
    let opened = ctx.open(flag).await?;
    let stack = opened.name.clone();
    let (old, new) = (stackwright_core::Urn::from(from.as_str()), stackwright_core::Urn::from(to.as_str()));
    ctx.engine(&opened, 1, "state mv", false)
        .edit_state(&stack, |state| {
            if !state.resources.contains_key(&old) {
                return Err(EngineError::UnknownResource(from.clone()));
            }
            if state.resources.contains_key(&new) {
                return Err(EngineError::StateEdit {
                    resource: to.clone(),
                    message: "a resource with that name already exists".into(),
                });
            }
            Ok(vec![stackwright_state::Record::Rename { from: old.clone(), to: new.clone() }])
        })
        .await?;
    println!("Renamed `{from}` to `{to}` in the state of stack `{stack}`.");
    Ok(ExitCode::SUCCESS)
}
