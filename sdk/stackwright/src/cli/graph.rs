//! `graph`: print the program's dependency graph. The program runs with the stack's
//! configuration and its declarations are checked exactly as `preview` checks them; nothing is
//! written.

use std::process::ExitCode;

use crate::stack::Program;

use super::args::{GraphArgs, GraphFormat};
use super::context::Context_;

/// Runs the program and prints its declarations as DOT or Mermaid.
pub(super) async fn run(
    ctx: &Context_,
    flag: &Option<String>,
    program: &Program,
    args: GraphArgs,
) -> anyhow::Result<ExitCode> {
    let opened = ctx.open_read_only(flag).await?;
    let graph = ctx.engine(&opened, 1, "graph", false).graph(&opened.name, program).await?;
    print!(
        "{}",
        match args.format {
            GraphFormat::Dot => graph.dot(),
            GraphFormat::Mermaid => graph.mermaid(),
        }
    );
    Ok(ExitCode::SUCCESS)
}
