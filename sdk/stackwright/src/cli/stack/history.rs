//! `stack history`: prints a stack's update history.

use std::process::ExitCode;

use stackwright_state::Backend;

use crate::cli::context::Context_;

/// Prints a stack's update history.
pub(super) async fn run(ctx: &Context_, flag: &Option<String>, json: bool) -> anyhow::Result<ExitCode> {
    let stack = ctx.stack(flag).await?;
    let history = ctx.backend.history(&stack).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&history)?);
    } else if history.is_empty() {
        println!("Stack `{stack}` has no history yet.");
    } else {
        for h in history {
            let changes: Vec<String> = h.changes.iter().map(|(k, n)| format!("{n} {k}")).collect();
            let changes = if changes.is_empty() { "no changes".to_string() } else { changes.join(", ") };
            println!("{}  {:<8} {:<14} {}@{}  {changes}", h.started_at, h.command, h.result, h.user, h.host);
        }
    }
    Ok(ExitCode::SUCCESS)
}
