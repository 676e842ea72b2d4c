//! `stack unlock`: breaks a stack's lock.

use std::process::ExitCode;

use stackwright_state::Backend;

use crate::cli::context::Context_;

/// Breaks a stack's lock.
pub(super) async fn run(ctx: &Context_, flag: &Option<String>) -> anyhow::Result<ExitCode> {
    let stack = ctx.stack(flag).await?;
    match ctx.backend.force_unlock(&stack).await? {
        Some(holder) => println!("Removed the lock on stack `{stack}` held by {holder}."),
        None => println!("Stack `{stack}` was not locked."),
    }
    Ok(ExitCode::SUCCESS)
}
