//! `stack ls`: lists the known stacks, marking the selected one.

use std::process::ExitCode;

use stackwright_state::Backend;

use crate::cli::context::Context_;

/// Lists the known stacks, marking the selected one.
pub(super) async fn run(ctx: &Context_) -> anyhow::Result<ExitCode> {
    let current = std::fs::read_to_string(ctx.current_file()).unwrap_or_default();
    for s in ctx.known_stacks().await? {
        let mark = if s == current.trim() { "*" } else { " " };
        let has_state = ctx.backend.list_stacks().await?.contains(&s);
        println!("{mark} {s:<20} {}", if has_state { "has state" } else { "no state yet" });
    }
    Ok(ExitCode::SUCCESS)
}
