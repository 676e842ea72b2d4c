//! `stack unlock`: breaks a stack's lock; refuses while its holder is alive unless `--force`.

use std::process::ExitCode;

use stackwright_state::Backend;

use crate::cli::context::Context_;

/// Breaks a stack's lock; with `force`, takes it from a live holder and fences that holder off.
pub(super) async fn run(ctx: &Context_, flag: &Option<String>, force: bool) -> anyhow::Result<ExitCode> {
    let stack = ctx.stack(flag).await?;
    match ctx.backend.unlock(&stack, force).await? {
        Some(holder) if force => eprintln!(
            "warning: took the lock on stack `{stack}` from {holder}, which may still be running. Its later writes to the state will be refused, but what it is doing to resources right now goes on; run `preview` to check the stack before the next `up`."
        ),
        Some(holder) => println!("Stack `{stack}` was not locked (cleared the lock left by {holder}, which is gone)."),
        None => println!("Stack `{stack}` was not locked."),
    }
    Ok(ExitCode::SUCCESS)
}
