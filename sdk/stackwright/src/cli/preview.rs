//! `preview`: what `up` (or `destroy`) would change, as text or JSON, optionally saved for `up --plan`.

use std::process::ExitCode;

use anyhow::Context;

use crate::render;
use crate::stack::Program;

use super::args::PreviewArgs;
use super::context::Context_;
use super::ui::redacted_json;

/// Shows the plan; exits 2 with `--detailed-exitcode` when there are changes.
pub(super) async fn run(
    ctx: &Context_,
    flag: &Option<String>,
    program: &Program,
    args: PreviewArgs,
) -> anyhow::Result<ExitCode> {
    let PreviewArgs { refresh, detailed_exitcode, json, destroy, save_plan } = args;
    let opened = ctx.open(flag).await?;
    let stack = opened.name.clone();
    let engine = ctx.engine(&opened, 16, "preview", false);
    let report = match &save_plan {
        Some(path) => {
            let (report, saved) = engine.preview_to_save(&stack, program, destroy).await?;
            let bytes = saved.to_bytes(opened.cipher.as_deref())?;
            std::fs::write(path, bytes).with_context(|| format!("writing the plan to {}", path.display()))?;
            report
        }
        None => engine.preview(&stack, program, refresh, destroy).await?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&redacted_json(&report)?)?);
    } else {
        println!("Previewing {} of stack `{stack}`\n", if destroy { "destroy" } else { "update" });
        print!("{}", render::drift(&report.drift));
        print!("{}", render::plan(&report.plan));
        for w in &report.policy_warnings {
            println!("warning: {w}");
        }
        if report.pending > 0 {
            println!(
                "note: {} operation(s) from an interrupted run are pending; `up` reconciles them first.",
                report.pending
            );
        }
    }
    if let Some(path) = &save_plan {
        println!("Saved the plan to {}; apply it with `up --plan {}`.", path.display(), path.display());
    }
    let changes = report.plan.has_changes() || !report.drift.is_empty();
    Ok(ExitCode::from(if detailed_exitcode && changes { 2 } else { 0 }))
}
