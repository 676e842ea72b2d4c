//! `refresh`: read every resource and record changes made outside the program.

use std::process::ExitCode;

use crate::render;
use crate::stack::Program;

use super::args::RefreshArgs;
use super::context::Context_;

/// Records drift in the state and prints it.
pub(super) async fn run(
    ctx: &Context_,
    flag: &Option<String>,
    program: &Program,
    args: RefreshArgs,
) -> anyhow::Result<ExitCode> {
    let RefreshArgs { parallel } = args;
    let opened = ctx.open(flag).await?;
    let stack = opened.name.clone();
    let drift = ctx.engine(&opened, parallel, "refresh", false).refresh(&stack, program).await?;
    if drift.is_empty() {
        println!("No changes outside the program.");
    } else {
        print!("{}", render::drift(&drift));
        println!("Recorded {} change(s) in the state of stack `{stack}`.", drift.len());
    }
    Ok(ExitCode::SUCCESS)
}
