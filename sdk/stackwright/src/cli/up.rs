//! `up` and `destroy`: apply the program (or a saved plan), or delete every resource.

use crate::engine::UpOptions;
use std::process::ExitCode;

use anyhow::Context;

use crate::saved_plan::SavedPlan;
use crate::stack::Program;

use super::args::{DestroyArgs, UpArgs};
use super::context::Context_;
use super::ui::{confirm, finish};

/// Applies the program, or exactly a saved plan.
pub(super) async fn up(
    ctx: &Context_,
    flag: &Option<String>,
    program: &Program,
    args: UpArgs,
) -> anyhow::Result<ExitCode> {
    let UpArgs { yes, refresh, parallel, plan } = args;
    let opened = ctx.open(flag).await?;
    let stack = opened.name.clone();
    println!("Updating stack `{stack}`\n");
    let engine = ctx.engine(&opened, parallel, "up", true);
    let confirm = confirm(yes, "apply these changes");
    let report = match &plan {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading the plan {}", path.display()))?;
            let saved = SavedPlan::from_bytes(path, &stack, &bytes, opened.cipher.as_deref())?;
            engine.up_with_plan(&stack, program, &saved, &confirm).await?
        }
        None => engine.up(&stack, program, UpOptions { refresh }, &confirm).await?,
    };
    finish(report, "Update")
}

/// Deletes every resource of the stack.
pub(super) async fn destroy(
    ctx: &Context_,
    flag: &Option<String>,
    program: &Program,
    args: DestroyArgs,
) -> anyhow::Result<ExitCode> {
    let DestroyArgs { yes, parallel } = args;
    let opened = ctx.open(flag).await?;
    let stack = opened.name.clone();
    println!("Destroying stack `{stack}`\n");
    let report = ctx
        .engine(&opened, parallel, "destroy", true)
        .destroy(&stack, program, &confirm(yes, "delete these resources"))
        .await?;
    finish(report, "Destroy")
}
