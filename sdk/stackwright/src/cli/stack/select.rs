//! `stack select`: makes a stack the default for later commands.

use std::process::ExitCode;

use crate::cli::context::{Context_, write_current};

/// Makes a stack the default for later commands.
pub(super) async fn run(ctx: &Context_, name: String) -> anyhow::Result<ExitCode> {
    let name = ctx.stack(&Some(name)).await?;
    write_current(ctx, &name)?;
    println!("Selected stack `{name}`.");
    Ok(ExitCode::SUCCESS)
}
