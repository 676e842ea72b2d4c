//! `preview`: what `up` (or `destroy`) would change, as text or JSON, optionally saved for `up --plan`.
//! It writes nothing but the plan file it is asked for: no configuration, state, lock or
//! selection.

use crate::engine::PreviewOptions;
use std::process::ExitCode;

use anyhow::{Context, bail};
use stackwright_state::SecretsError;

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
    let opened = ctx.open_read_only(flag).await?;
    let stack = opened.name.clone();
    let engine = ctx.engine(&opened, 16, "preview", false);
    let report = match &save_plan {
        Some(path) => {
            let (report, saved) = engine.preview_to_save(&stack, program, destroy).await?;
            let bytes = match saved.to_bytes(opened.cipher.as_deref()) {
                Err(SecretsError::NoProvider) if opened.salt_deferred => bail!(
                    "the plan holds secrets and stack `{stack}` has no encryption salt yet ({}), so they cannot be encrypted (preview writes no configuration); run `up` or `config set --secret` once with the passphrase to give the stack its salt, then save the plan again",
                    opened.config_path.display()
                ),
                bytes => bytes?,
            };
            std::fs::write(path, bytes).with_context(|| format!("writing the plan to {}", path.display()))?;
            report
        }
        None => engine.preview(&stack, program, PreviewOptions { refresh, destroy }).await?,
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
